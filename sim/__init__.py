"""gigacity: a simulator of a city's 5G and gigabit-fibre infrastructure.

Importing ``sim`` does no I/O and imports neither matplotlib nor geopandas; the layers
live in submodules (see ``docs/architecture.md``).
"""

__version__ = "0.1.0"
