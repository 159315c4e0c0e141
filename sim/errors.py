"""Errors that gigacity reports to its users.

Every error is one line that names the file, the field (key path, column or line) and
what was expected, so the CLI can print it as it is and exit with code 2.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["GigacityError", "ConfigError", "GeodataError", "SiteFileError", "InputError"]


class GigacityError(Exception):
    """Base class of every error gigacity reports to a user.

    Parameters
    ----------
    source : str or Path or None
        The file (or other input) the problem is in.
    field : str or None
        Key path (``radio.fc_ghz``), column, or ``line 12, column lon``.
    message : str
        What was expected and what came.
    """

    def __init__(self, source: str | Path | None, field: str | None, message: str):
        self.source = str(source) if source is not None else None
        self.field = field
        self.message = message
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [p for p in (self.source, self.field) if p]
        prefix = ": ".join(parts)
        text = f"{prefix}: {self.message}" if prefix else self.message
        return " ".join(text.split("\n"))


class ConfigError(GigacityError):
    """A scenario config (TOML) is missing, malformed or out of range."""


class GeodataError(GigacityError):
    """A geodata file (district polygons, census table, key places) is missing or invalid."""


class SiteFileError(GigacityError):
    """A site file (CSV, GeoJSON, OpenCellID) is missing or has a bad row."""


class InputError(GigacityError):
    """An argument given to a library function is out of its defined domain."""
