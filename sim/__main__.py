"""``python -m sim``: the same as the ``gigacity`` command."""

from .cli import console_main

console_main()
