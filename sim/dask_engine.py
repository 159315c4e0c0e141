"""The Dask engine: the tile tasks of :mod:`sim.engine` on a ``dask.distributed`` cluster.

Optional: ``pip install -e '.[dask]'``. Nothing imports this module (or dask) unless a run
asks for the Dask engine (``[compute] engine = "dask"``, ``--engine dask`` or
``--scheduler``); ``import sim`` and the local engine never load dask.

Same interface as :class:`sim.engine.LocalEngine`::

    with DaskEngine(workers=2) as engine:                       # a LocalCluster of 2 processes
        with engine.stage(shared, n_tasks) as st:                # shared scattered once to every worker
            kept = st.map(tile_fn, tiles, keep=True)             # futures that stay on the workers
            for i, part in st.map(reduce_fn, [(k, x) for k in kept]):   # (index, result) as completed
                ...

* ``stage(shared)`` scatters ``shared`` once, replicated on every worker
  (``client.scatter(..., broadcast=True)``); a task is ``fn(shared, *args)`` with the
  worker's replica.
* ``map`` submits one task per item; a :class:`~sim.engine.Kept` argument is the future of
  an earlier ``keep=True`` map, which the scheduler resolves on the worker (the kept value
  never travels through the client). Without ``keep`` the results come back as
  ``(index, result)`` in completion order, and each is released on the cluster as soon as
  it has been read.
* Task keys are ``<function>-<engine token>-<stage>.<map>-<index>``: fixed by the order of
  the calls, never by timing; the engine token (random, one per engine) keeps two runs that
  share a scheduler from taking each other's results.
* A lost worker: its running tasks are rescheduled on another worker by the scheduler (up
  to ``distributed.scheduler.allowed-failures`` deaths of one task); kept results that lived
  in the lost worker's memory are recomputed from their lineage (the task and the scattered
  inputs, replicated on every worker). ``retries`` reruns a task that raised. The replicas
  must stay: the scheduler's active memory manager would drop all but one after a few
  seconds, so a LocalCluster started here runs without it (README: the same for a
  scheduler started by hand).
* When the stage ends (normally or by an exception, e.g. SIGINT), every future of the stage
  is cancelled and released: kept tiles live in worker memory only for the stage.

Results are the same numbers as the local engine's: the same task functions run on the same
inputs, and the callers place results by index (or sum integers), never by arrival order.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import signal
import sys
import threading
import uuid

from .engine import Kept, check_workers, default_workers
from .errors import InputError

__all__ = ["DaskEngine", "available", "INSTALL_HINT"]

INSTALL_HINT = "pip install -e '.[dask]'"
LOCAL_CONNECT_TIMEOUT_S = 10.0
"""Connect timeout inside a LocalCluster started here (dask's default, 30 s, is for networks)."""
_SOURCE = "engine"


def available() -> bool:
    """Whether ``dask.distributed`` is installed (looked up, not imported)."""
    try:
        return importlib.util.find_spec("distributed") is not None
    except (ImportError, ValueError):
        return False


def _distributed(source, field):
    try:
        import distributed
    except ImportError:
        raise InputError(source, field, f"the Dask engine needs dask.distributed, which is not installed: "
                                        f"{INSTALL_HINT}") from None
    return distributed


def _worker_environ(dask) -> dict:
    """dask's environment for worker processes without ``MALLOC_TRIM_THRESHOLD_``.

    Setting any glibc malloc threshold turns off glibc's dynamic mmap threshold, so every array
    above 128 KiB is a fresh ``mmap`` whose pages fault in zeroed: the kernel's temporaries
    (tens of MB a tile) made coverage tasks 2-4 times slower in dask workers than in forked
    processes (benchmarks/bench_dask.py). Thread caps (``OMP_NUM_THREADS=1`` ...) are kept."""
    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


MMAP_THRESHOLD_BYTES = 32 * 2**20
"""glibc's largest mmap threshold on 64-bit (``DEFAULT_MMAP_THRESHOLD_MAX``): arrays below it come from the heap."""


def _tune_malloc() -> None:
    """In a worker whose nanny set ``MALLOC_TRIM_THRESHOLD_`` (dask's default; see :func:`_worker_environ`):
    fixed thresholds as large as glibc's dynamic ones grow to, so a tile's temporaries reuse the heap."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-3, MMAP_THRESHOLD_BYTES)       # M_MMAP_THRESHOLD
        libc.mallopt(-1, 2 * MMAP_THRESHOLD_BYTES)   # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _setup_worker(ignore_sigint: bool) -> None:
    _tune_malloc()
    if ignore_sigint and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_plugin(distributed, ignore_sigint: bool):
    """A worker plugin (every worker, restarted ones too): malloc thresholds (:func:`_tune_malloc`); in a
    LocalCluster started here, SIGINT ignored (Ctrl-C reaches the whole process group: the run stops the
    workers it started, they do not each print a KeyboardInterrupt)."""

    class GigacityWorker(distributed.WorkerPlugin):
        name = "gigacity-worker"

        def __init__(self, ignore_sigint):
            self.ignore_sigint = ignore_sigint

        def setup(self, worker):
            _setup_worker(self.ignore_sigint)

    return GigacityWorker(ignore_sigint)


class DaskEngine:
    """Tile tasks on a Dask cluster: an existing scheduler, or a LocalCluster started here.

    Parameters
    ----------
    scheduler : str, optional
        ``tcp://HOST:PORT`` of a running ``dask scheduler``; None: a
        ``dask.distributed.LocalCluster`` of ``workers`` processes (one thread each), closed by
        :meth:`close`.
    workers : int, optional
        LocalCluster worker processes (None or 0: one per CPU); ignored with ``scheduler``
        (the cluster has the workers it has).
    retries : int
        Reruns of a task that raised (a lost worker is handled by the scheduler, see the
        module notes).
    connect_timeout_s : float
        How long to wait for ``scheduler`` to answer.
    source : str
        Where the settings came from (a config file or ``--scheduler``), for error messages.
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None, *, retries: int = 2,
                 connect_timeout_s: float = 10.0, source: str = _SOURCE):
        distributed = _distributed(source, "compute.engine")
        self.scheduler = scheduler or None
        self.retries = int(retries)
        self.cluster = None
        if self.scheduler is None:
            w = check_workers(workers, source)
            n = default_workers() if not w else w
            import dask

            # on one machine a connection refused for LOCAL_CONNECT_TIMEOUT_S is a dead worker: its peers
            # give up fetching from it sooner (default 30 s) and the scheduler recomputes what it held
            with dask.config.set({"distributed.comm.timeouts.connect": f"{LOCAL_CONNECT_TIMEOUT_S:g}s",
                                  "distributed.nanny.pre-spawn-environ": _worker_environ(dask),
                                  # no dashboard to show it: the stack sampler every 10 ms would cost a few %
                                  "distributed.worker.profile.enabled": False,
                                  # the active memory manager drops "extra" replicas: the shared inputs would
                                  # be left on one worker, and a stage could not outlive that worker
                                  "distributed.scheduler.active-memory-manager.start": False}):
                self.cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                                        dashboard_address=None, scheduler_port=0,
                                                        # no dashboard; its HTTP server on a free port, not 8787
                                                        scheduler_kwargs={"dashboard_address": ":0"},
                                                        # workers log into this terminal: errors reach the
                                                        # client as exceptions, shutdown chatter is noise
                                                        silence_logs=logging.CRITICAL)
            try:
                self.client = distributed.Client(self.cluster, set_as_default=False)
                self.client.register_plugin(_worker_plugin(distributed, ignore_sigint=True))
            except BaseException:
                self.cluster.close()
                raise
        else:
            try:
                self.client = distributed.Client(self.scheduler, timeout=connect_timeout_s, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise InputError(source, "compute.scheduler",
                                 f"no Dask scheduler answered at {self.scheduler} within {connect_timeout_s:g} s "
                                 f"({exc.__class__.__name__})") from None
            self.client.register_plugin(_worker_plugin(distributed, ignore_sigint=False))
        self.token = uuid.uuid4().hex[:8]
        self._stages = itertools.count()

    @property
    def workers(self) -> int:
        """Workers connected to the scheduler now."""
        return len(self.client.scheduler_info().get("workers", {}))

    def describe(self) -> dict:
        """``{"engine": "dask", "workers": n, "scheduler": address or None}`` (for ``summary.json``)."""
        return {"engine": self.name, "workers": self.workers, "scheduler": self.scheduler}

    def stage(self, shared: dict, n_tasks: int | None = None) -> _DaskStage:
        """A context holding ``shared`` (scattered once to every worker) for the stage's tasks."""
        return _DaskStage(self, shared, next(self._stages))

    def close(self) -> None:
        """Disconnect; a LocalCluster started here is shut down with its worker processes.

        While it shuts down, dask's loggers in this process are quiet: a cluster closed under
        running work (SIGINT, SIGTERM, an error) logs the work it drops, which tells the user
        nothing (the command prints its own one line)."""
        names = [n for n in list(logging.root.manager.loggerDict)
                 if n.split(".")[0] in ("distributed", "asyncio", "tornado")]
        quiet = [logging.getLogger(n) for n in {"distributed", "asyncio", "tornado", *names}]
        levels = [lg.level for lg in quiet]
        for lg in quiet:
            lg.setLevel(logging.CRITICAL + 1)
        try:
            client, self.client = getattr(self, "client", None), None
            if client is not None:
                client.close()
            cluster, self.cluster = self.cluster, None
            if cluster is not None:
                cluster.close()
        finally:
            for lg, level in zip(quiet, levels):
                lg.setLevel(level)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _part_of(value, i: int):
    """Part ``i`` of a kept tuple (a task on the worker that holds it)."""
    return value[i]


class _DaskStage:
    def __init__(self, engine: DaskEngine, shared: dict, number: int):
        self.engine = engine
        self.client = engine.client
        self.shared = shared
        self.number = number
        self._maps = itertools.count()
        self.shared_future = None
        self._futures: list = []     # every future of the stage, released when it ends

    def __enter__(self):
        # a list of one: scatter would scatter a dict's values one by one
        self.shared_future = self.client.scatter([self.shared], broadcast=True, hash=False)[0]
        return self

    def __exit__(self, exc_type, exc, tb):
        futures = [f for f in self._futures if f is not None]
        if self.shared_future is not None:
            futures.append(self.shared_future)
        self._futures, self.shared_future = [], None
        if futures:
            self.client.cancel(futures)
        return False

    def _submit(self, fn, args_list):
        m = next(self._maps)
        name = getattr(fn, "__name__", "task")
        futures = []
        for i, args in enumerate(args_list):
            plain = [a.ref if isinstance(a, Kept) else a for a in args]
            futures.append(self.client.submit(fn, self.shared_future, *plain, pure=False, retries=self.engine.retries,
                                              key=f"{name}-{self.engine.token}-{self.number}.{m}-{i}"))
        return futures

    def map(self, fn, args_list, *, keep: bool = False, progress=None, parts: int | None = None):
        """Run ``fn(shared, *args)`` for each ``args`` on the cluster (see :meth:`sim.engine.LocalEngine.map`)."""

        args_list = [tuple(a) for a in args_list]
        futures = self._submit(fn, args_list)
        if keep and parts is not None:
            whole = self._wait_kept(futures, progress)
            out = []
            for w in whole:      # each part a task on the worker holding the tuple; the tuple then goes
                out.append(tuple(Kept(f.key, f) for f in (
                    self.client.submit(_part_of, w.ref, i, pure=False, retries=self.engine.retries,
                                       key=f"part-{i}-{w.key}") for i in range(int(parts)))))
            self._futures.extend(k.ref for ks in out for k in ks)
            self.release(whole)
            return out
        if keep:
            return self._wait_kept(futures, progress)
        return self._results(futures, progress)

    def _wait_kept(self, futures, progress):
        """Wait for ``futures`` (kept on the cluster), raising a failed task's exception here; their :class:`Kept`."""
        from distributed import as_completed

        self._futures.extend(futures)
        total = len(futures)
        for done, fut in enumerate(as_completed(futures, loop=self.client.loop), start=1):
            if fut.status == "error":
                fut.result()   # raises the task's exception here
            if progress is not None:
                progress(done, total)
        return [Kept(f.key, f) for f in futures]

    def _results(self, futures, progress):
        from distributed import as_completed

        index = {f.key: i for i, f in enumerate(futures)}
        first = len(self._futures)
        self._futures.extend(futures)
        total = len(futures)
        ac = as_completed(futures, loop=self.client.loop)
        del futures
        for done, fut in enumerate(ac, start=1):
            i = index[fut.key]
            out = fut.result()
            self._futures[first + i] = None     # released on the cluster once read
            del fut
            if progress is not None:
                progress(done, total)
            yield i, out

    def fetch(self, kept: Kept):
        """The value behind a :class:`~sim.engine.Kept` (gathered into this process)."""
        return kept.ref.result()

    def release(self, kept) -> None:
        """Drop kept results no later map needs before the stage ends: the client lets go of their futures and
        the workers free them once no pending task depends on them (not a cancel: that would cancel the tasks
        computed from them too)."""
        drop = {k.key for k in kept}
        self._futures = [None if f is not None and f.key in drop else f for f in self._futures]
        for k in kept:
            if k.ref is not None:
                k.ref.release()
