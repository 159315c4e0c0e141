"""``python -m sim``: the same as the ``gigacity`` command."""

import sys

from .cli import main

sys.exit(main())
