"""Engines: where the tile tasks of a run execute (this process, forked workers, or a Dask cluster).

A *tile task* is a module-level function ``fn(shared, *args)``:

* ``shared`` is a dict of the read-only inputs of a stage (rasters, sectors, radio
  parameters ...). An engine sends it to its workers once per stage: forked workers inherit
  it (copy on write), a Dask cluster gets it scattered once (``broadcast=True``).
* ``args`` are small (a tile's ``(start, stop)`` over the land pixels, the cell loads of
  one iteration) or :class:`Kept` handles from an earlier ``map(..., keep=True)`` of the
  same stage, which the engine replaces by the kept value before calling ``fn``.

Usage::

    with engine.stage(shared) as st:
        terms = st.map(coverage_tile, [(a, b) for a, b in tiles], keep=True)   # list of Kept, in order
        for i, part in st.map(load_of_tile, [(k, load) for k in terms]):       # (index, result) as completed
            ...
        st.release(terms)          # no later map needs them: their spill files (futures) go now

``map(fn, ..., keep=True, parts=n)`` keeps the ``n`` values of each task's tuple apart (one
:class:`Kept` each, released one by one): a task computing several layers' tiles at once.

``map`` without ``keep`` yields ``(index into args_list, result)`` pairs in completion order:
a consumer that needs results independent of the number of workers stores them by index or
reduces them with an order-independent sum (integers). With ``keep=True`` it returns one
:class:`Kept` per item, in order, once every task has finished; the results stay where they
were computed (a spill file of the stage for :class:`LocalEngine`, a future on the cluster
for the Dask engine) and never travel to the client.

Engines
-------
:class:`LocalEngine` (this module) runs tasks serially or in forked worker processes
(``executor="processes"``, the Linux ``fork`` start method); the Dask engine
(``sim.dask_engine``, optional extra ``.[dask]``) implements the same interface on
``dask.distributed``.

Interrupts: the parent handles SIGINT and SIGTERM; forked workers ignore SIGINT, die with
their parent (``prctl(PR_SET_PDEATHSIG)``) and are terminated when the stage is left by an
exception.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = ["EXECUTORS", "ENGINES", "Kept", "LocalEngine", "default_workers", "check_workers"]

EXECUTORS = ("processes", "serial")
ENGINES = ("local", "dask")
_SOURCE = "engine"
IN_FLIGHT_PER_WORKER = 2
"""Tasks of a map submitted per worker process at a time (one running, one queued): results are read as
they finish and never pile up in this process."""


@dataclass(frozen=True)
class Kept:
    """A handle to one task result kept by the engine (see the module notes); opaque to callers."""

    key: str
    ref: object = None


def default_workers() -> int:
    """Worker processes of a local engine when none is asked for: one per CPU."""
    return max(1, os.cpu_count() or 1)


def check_workers(workers, source: str = _SOURCE) -> int | None:
    """``workers`` as an int >= 0 (0 or None: :func:`default_workers`); else :class:`InputError`."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                or workers < 0):
        raise InputError(source, "workers", f"expected an integer >= 0, got {workers!r}")
    return None if workers is None else int(workers)


# --------------------------------------------------------------------------- local workers

_SHARED: dict = {}


def _init_worker(shared: dict) -> None:
    # the parent handles SIGINT and SIGTERM and stops its workers; a worker dies with its parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    _SHARED.clear()
    _SHARED.update(shared)


def _die_with_parent() -> None:
    """Linux: ask the kernel to send SIGTERM to this process when its parent dies (``prctl``)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def _stop_workers(started_before: set[int]) -> None:
    """Terminate the worker processes started since ``started_before`` (their pids) and reap them."""
    procs = [p for p in multiprocessing.active_children() if p.pid not in started_before]
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)


def _load_kept(k: Kept):
    with open(k.key, "rb") as f:
        return pickle.load(f)   # a spill file this stage wrote itself


def _resolve(args: tuple) -> tuple:
    return tuple(_load_kept(a) if isinstance(a, Kept) else a for a in args)


def _call(fn, shared, args, spill_path):
    out = fn(shared, *_resolve(args))
    if spill_path is None:
        return out
    if isinstance(spill_path, tuple):   # keep=True, parts=n: each part of the result in its own file
        if not isinstance(out, tuple) or len(out) != len(spill_path):
            raise TypeError(f"{getattr(fn, '__name__', fn)} returned no tuple of {len(spill_path)} parts")
        for part, path in zip(out, spill_path):
            with open(path, "wb") as f:
                pickle.dump(part, f, protocol=pickle.HIGHEST_PROTOCOL)
        return None
    with open(spill_path, "wb") as f:
        pickle.dump(out, f, protocol=pickle.HIGHEST_PROTOCOL)
    return None


def _task(fn, args, spill_path=None):
    """A task in a forked worker: the stage's shared inputs are the worker's ``_SHARED``."""
    return _call(fn, _SHARED, args, spill_path)


class LocalEngine:
    """Tile tasks in this process (``executor="serial"``, or one worker) or in forked worker processes.

    Parameters
    ----------
    workers : int, optional
        Worker processes; None or 0: one per CPU (:func:`default_workers`). Never more than
        the tasks of a map.
    executor : {"processes", "serial"}
    scratch_dir : path, optional
        Where a stage spills kept results (a temporary folder inside it, removed when the
        stage ends); default the system temporary folder.
    """

    name = "local"

    def __init__(self, workers: int | None = None, executor: str = "processes", scratch_dir=None):
        if executor not in EXECUTORS:
            raise InputError(_SOURCE, "executor", f"expected one of {EXECUTORS}, got {executor!r}")
        w = check_workers(workers)
        self.workers = default_workers() if not w else w
        self.executor = executor
        self.scratch_dir = scratch_dir

    def stage(self, shared: dict, n_tasks: int | None = None) -> _LocalStage:
        """A context holding ``shared`` for the stage's tasks; ``n_tasks`` caps the workers forked."""
        n = self.workers if n_tasks is None else max(1, min(self.workers, int(n_tasks)))
        return _LocalStage(shared, n if self.executor == "processes" else 1, self.scratch_dir)

    def close(self) -> None:
        """Nothing to release (stages own their workers)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _LocalStage:
    def __init__(self, shared: dict, n_workers: int, scratch_dir):
        self.shared = shared
        self.n_workers = n_workers
        self._scratch_parent = scratch_dir
        self._scratch: Path | None = None
        self._pool = None
        self._before: set[int] = set()
        self._n_kept = 0
        self._released: set[str] = set()
        self._removers: list = []

    def __enter__(self):
        self._before = {p.pid for p in multiprocessing.active_children()}
        if self.n_workers > 1:
            # fork before any result exists, so the workers do not inherit the outputs
            ctx = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(max_workers=self.n_workers, mp_context=ctx,
                                             initializer=_init_worker, initargs=(self.shared,))
        return self

    def __exit__(self, exc_type, exc, tb):
        pool, self._pool = self._pool, None
        if pool is not None:
            if exc_type is not None:
                # interrupted (SIGINT, SIGTERM) or failed: stop the workers now rather than after their tasks
                _stop_workers(self._before)
                pool.shutdown(wait=False, cancel_futures=True)
            else:
                pool.shutdown(wait=True, cancel_futures=True)
        if self._scratch is not None:
            for t in self._removers:
                t.join()
            self._removers = []
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        return False

    def _spill_path(self) -> str:
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="gigacity-tiles-", dir=self._scratch_parent))
        self._n_kept += 1
        return str(self._scratch / f"{self._n_kept:08d}.pkl")

    def map(self, fn, args_list, *, keep: bool = False, progress=None, parts: int | None = None):
        """Run ``fn(shared, *args)`` for each ``args`` (see the module notes).

        Returns an iterator of ``(index, result)`` in completion order, or with ``keep`` the
        list of :class:`Kept` (in the order of ``args_list``). ``progress(done, total)`` is
        called in this process after each task. With ``keep`` and ``parts=n`` each task returns
        a tuple of ``n`` values kept apart: one tuple of ``n`` :class:`Kept` per task (a part
        is released on its own).
        """
        args_list = [tuple(a) for a in args_list]
        if keep:
            paths = [self._spill_path() if parts is None else tuple(self._spill_path() for _ in range(int(parts)))
                     for _ in args_list]
            for _ in self._run(fn, args_list, paths, progress):
                pass
            return [Kept(p) if parts is None else tuple(Kept(q) for q in p) for p in paths]
        return self._run(fn, args_list, [None] * len(args_list), progress)

    def _run(self, fn, args_list, paths, progress):
        total = len(args_list)
        if self._pool is None:
            for i, (args, path) in enumerate(zip(args_list, paths)):
                out = _call(fn, self.shared, args, path)
                if progress is not None:
                    progress(i + 1, total)
                yield i, out
            return
        # at most IN_FLIGHT_PER_WORKER tasks per worker submitted at a time: a finished future holds its result
        # until dropped, so submitting every tile at once would gather all of a map's results (the whole grid)
        todo = iter(enumerate(zip(args_list, paths)))
        pending: dict = {}
        done = 0
        while True:
            for i, (args, path) in itertools.islice(todo, max(0, IN_FLIGHT_PER_WORKER * self.n_workers - len(pending))):
                pending[self._pool.submit(_task, fn, args, path)] = i
            if not pending:
                return
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = pending.pop(fut)
                out = fut.result()
                del fut
                done += 1
                if progress is not None:
                    progress(done, total)
                yield i, out
                del out

    def fetch(self, kept: Kept):
        """The value behind a :class:`Kept` (read back into this process)."""
        if kept.key in self._released:
            raise FileNotFoundError(f"released: {kept.key}")
        return _load_kept(kept)

    def release(self, kept) -> None:
        """Drop kept results no later map needs (their spill files) before the stage ends.

        The files are removed by a thread of this process (unlinking gigabytes of cached pages took
        seconds of the busy hour at 25 m), as a Dask cluster drops released data asynchronously; a
        released result is no longer readable (:meth:`fetch` raises FileNotFoundError) and its file is
        gone before the stage ends.
        """
        paths = [k.key for k in kept]
        self._released.update(paths)

        def remove():
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)

        t = threading.Thread(target=remove, name="gigacity-release", daemon=True)
        t.start()
        self._removers.append(t)
