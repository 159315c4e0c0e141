"""Files written by a forked process while this one writes others: the maps of a run on both cores.

:func:`forked_writes` forks one process that runs a list of write jobs (closures that write files with
:mod:`sim.report.files`' writers, e.g. draw a map and :func:`~sim.report.files.write_png` it) while the caller
goes on with its own. The child inherits what the jobs need (copy on write: the rasters' previews, the map frames
drawn so far, the label layouts) and nothing is sent to it. Each file is still written atomically
(:func:`sim.report.files.atomic_path`) and the same, byte for byte, as in one process; the files the child wrote are
recorded as the run's outputs here, when the block ends.

Errors: the first error of a child job stops the child and is raised here when the block ends, the same one-line
:class:`sim.errors.GigacityError` (same class, file, field and message); another exception as a ``RuntimeError``
with its type, message and the child's traceback. A child that dies (killed, out of memory) is an
:class:`~sim.errors.InputError`. An error in the caller's block (or an interrupt) stops the child at once.
Either way no temporary file of the child is left (the child's own clean-up, or its temporary names, which
carry its pid, removed here).

The child ignores SIGINT (the parent stops it), dies with its parent (Linux ``prctl``), writes its files in
its own thread (no writer threads: :func:`sim.report.files.background_writes` is left in the parent) and ends
with :func:`os._exit` after its jobs.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
import warnings
from pathlib import Path

from sim.errors import GigacityError, InputError

from . import files

__all__ = ["forked_writes", "shared_writes"]

_SOURCE = "writing outputs"


@contextlib.contextmanager
def forked_writes(jobs, folder):
    """Run ``jobs`` (callables, in order) in one forked process during the block; ``folder``: where they write.

    An empty ``jobs`` forks nothing. See the module notes for the errors and the clean-up.
    """
    jobs = list(jobs)
    if not jobs:
        yield
        return
    with _forked(jobs, folder):
        yield


@contextlib.contextmanager
def shared_writes(jobs, folder):
    """Run ``jobs`` on two processes, this one and one forked, each taking the next job not yet taken (a counter in
    shared memory) until none is left: neither waits for the other while jobs are left, whatever their costs.

    Yields the jobs of this process: run them in the block (``for job in mine: job()``). Which process runs a job
    changes from run to run; each writes its files as :func:`forked_writes` says (the same files whichever
    process writes them, when the jobs do not depend on one another's order). Errors as :func:`forked_writes`'.
    """
    jobs = list(jobs)
    if not jobs:
        yield iter(())
        return
    claims = _Claims(jobs, multiprocessing.get_context("fork").Value("q", 0))
    with _forked(claims, folder):
        yield iter(claims)


class _Claims:
    """Iterating takes the next job not yet taken by any process sharing ``counter`` (copied by a fork)."""

    def __init__(self, jobs: list, counter):
        self.jobs, self.counter = jobs, counter

    def __iter__(self):
        while True:
            with self.counter.get_lock():
                i = self.counter.value
                self.counter.value = i + 1
            if i >= len(self.jobs):
                return
            yield self.jobs[i]


@contextlib.contextmanager
def _forked(jobs, folder):
    """:func:`forked_writes` of an iterable of jobs (iterated in the child alone)."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, jobs), name="gigacity-writes", daemon=True)
    with warnings.catch_warnings():
        # Python >= 3.12 warns of fork() with threads alive (the writer threads): the child takes no lock they may
        # hold (a fresh record lock, no writer threads: sim.report.files' fork hook; the maps call no GDAL)
        warnings.filterwarnings("ignore", r".*use of fork\(\) may lead to deadlocks", DeprecationWarning)
        proc.start()
    send.close()
    ok = False
    try:
        yield
        ok = True
    finally:
        if not ok:   # the caller's error or an interrupt: the child's files are not waited for
            _stop(proc)
            recv.close()
            _remove_temps(Path(folder), proc.pid)
    try:
        try:
            status, written, error = recv.recv()
        except (EOFError, OSError):
            status, written, error = "died", [], None
        proc.join()
    except BaseException:   # an interrupt while waiting
        _stop(proc)
        raise
    finally:
        recv.close()
        _remove_temps(Path(folder), proc.pid)
    for path in written:
        files.record_output(path)
    if status == "died":
        raise InputError(_SOURCE, None, f"the process writing the maps stopped (exit code {proc.exitcode}) "
                                        "before writing every file")
    if status == "error":
        raise _rebuilt(error)


def _stop(proc) -> None:
    if proc.is_alive():
        proc.terminate()
    proc.join()


def _remove_temps(folder: Path, pid: int) -> None:
    """Remove the temporary files of process ``pid`` in ``folder`` (:func:`files.atomic_path` names them)."""
    with contextlib.suppress(OSError):
        for p in folder.glob(f".*.tmp-{pid}-*"):
            with contextlib.suppress(OSError):
                p.unlink()


def _child(send, jobs) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    before = files.outputs_snapshot()
    code = 0
    try:
        for job in jobs:
            job()
        message = ("ok", files.outputs_since(before), None)
    except BaseException as exc:   # noqa: BLE001 - every error goes back to the parent
        message = ("error", files.outputs_since(before), _described(exc))
        code = 1
    try:
        send.send(message)
        send.close()
    finally:
        os._exit(code)   # no atexit handlers, no parent's buffers flushed twice


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGTERM to this process when its parent dies (``prctl(PR_SET_PDEATHSIG)``)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _described(exc: BaseException) -> tuple:
    if isinstance(exc, GigacityError):
        cls = type(exc)
        return ("gigacity", cls.__module__, cls.__qualname__, exc.source, exc.field, exc.message)
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)
    except Exception:  # noqa: BLE001 - an exception that does not travel: its text does
        data = None
    return ("other", data, f"{type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


def _rebuilt(error: tuple) -> BaseException:
    if error[0] == "gigacity":
        _, module, qualname, source, field, message = error
        try:
            cls = getattr(importlib.import_module(module), qualname)
            return cls(source, field, message)
        except Exception:  # noqa: BLE001 - an error class that cannot be rebuilt: an InputError, same text
            return InputError(source, field, message)
    _, data, text, tb = error
    if data is not None:
        exc = pickle.loads(data)
        exc.__cause__ = RuntimeError(f"in the process writing the maps:\n{tb}")
        return exc
    return RuntimeError(f"{text} (in the process writing the maps)\n{tb}")
