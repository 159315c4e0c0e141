"""Stage timing and the progress callback shared by the commands.

A progress callback is ``progress(stage, done=None, total=None)``: the command line draws
it (:class:`sim.cli.Progress`); the library only calls it.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["noop_progress", "StageTimer", "RunResult"]


@dataclass
class RunResult:
    """What a command that writes a run folder returns: the folder, its one-line answer, its summary."""

    run_dir: Path
    headline: str
    summary: dict = field(repr=False)


def noop_progress(stage, done=None, total=None):
    """The progress callback that reports nothing."""
    return None


class StageTimer:
    """Times named stages (``timings_s``, seconds) and announces each to the progress callback."""

    def __init__(self, progress=None):
        self.progress = progress or noop_progress
        self.timings_s: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        self.progress(name)
        t0 = time.perf_counter()
        try:
            yield self
        finally:
            self.timings_s[name] = round(time.perf_counter() - t0, 3)
