"""sim.engine: tile tasks run the same in this process and in forked workers; kept results stay put."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sim.engine import Kept, LocalEngine
from sim.errors import InputError


def _square(shared, i):
    return i, shared["base"][i] ** 2, os.getpid()


def _tile_sum(shared, kept, scale):
    return float(kept.sum()) * scale


def _tile(shared, start, stop):
    return shared["base"][start:stop] * 2.0


@pytest.mark.parametrize("executor,workers", [("serial", 1), ("processes", 1), ("processes", 2)])
def test_map_returns_every_result_once_whatever_the_workers(executor, workers):
    base = np.arange(10.0)
    with LocalEngine(workers, executor).stage({"base": base}) as st:
        got = dict(st.map(_square, [(i,) for i in range(10)]))
    assert sorted(got) == list(range(10))
    assert [got[i][1] for i in range(10)] == list(base ** 2)


def test_processes_run_in_other_processes_and_serial_in_this_one():
    with LocalEngine(2, "processes").stage({"base": np.arange(4.0)}) as st:
        pids = {r[2] for _, r in st.map(_square, [(i,) for i in range(4)])}
    assert os.getpid() not in pids
    with LocalEngine(2, "serial").stage({"base": np.arange(4.0)}) as st:
        pids = {r[2] for _, r in st.map(_square, [(i,) for i in range(4)])}
    assert pids == {os.getpid()}


@pytest.mark.parametrize("executor", ["serial", "processes"])
def test_kept_results_feed_later_maps_and_are_removed_with_the_stage(executor):
    base = np.arange(100.0)
    tiles = [(0, 30), (30, 70), (70, 100)]
    with LocalEngine(2, executor).stage({"base": base}) as st:
        kept = st.map(_tile, tiles, keep=True)
        assert all(isinstance(k, Kept) for k in kept) and len(kept) == 3
        np.testing.assert_array_equal(st.fetch(kept[1]), base[30:70] * 2.0)
        sums = dict(st.map(_tile_sum, [(k, 0.5) for k in kept]))
        paths = [k.key for k in kept]
        assert all(os.path.exists(p) for p in paths)
    assert [sums[i] for i in range(3)] == [float((base[a:b] * 2.0).sum()) * 0.5 for a, b in tiles]
    assert not any(os.path.exists(p) for p in paths)


def test_released_results_leave_the_disk_before_the_stage_ends():
    """A stage holding every tile of every layer until it ends would need the disk of all of them (at 10 m
    tens of GB); released results are unreadable at once, their files go soon after (a thread unlinks them, as
    a Dask cluster drops released data asynchronously) and the others stay readable."""
    import time

    tiles = [(0, 30), (30, 70), (70, 100)]
    with LocalEngine(1, "serial").stage({"base": np.arange(100.0)}) as st:
        kept = st.map(_tile, tiles, keep=True)
        st.release(kept[:2])
        deadline = time.monotonic() + 10.0
        while any(os.path.exists(k.key) for k in kept[:2]) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [os.path.exists(k.key) for k in kept] == [False, False, True]
        np.testing.assert_array_equal(st.fetch(kept[2]), np.arange(70.0, 100.0) * 2.0)
        with pytest.raises(FileNotFoundError):
            st.fetch(kept[0])


def _two_parts(shared, start, stop):
    return shared["base"][start:stop] * 2.0, shared["base"][start:stop] + 1.0


@pytest.mark.parametrize(("executor", "workers"), [("serial", 1), ("processes", 2)])
def test_kept_parts_are_kept_and_released_apart(executor, workers):
    """map(keep=True, parts=n): one Kept per part of each task's tuple (a task computing two layers' tiles);
    later maps read a part alone, and releasing one part leaves the other."""
    tiles = [(0, 30), (30, 70), (70, 100)]
    with LocalEngine(workers, executor).stage({"base": np.arange(100.0)}) as st:
        kept = st.map(_two_parts, tiles, keep=True, parts=2)
        assert len(kept) == 3 and all(len(k) == 2 and all(isinstance(x, Kept) for x in k) for k in kept)
        sums = dict(st.map(_tile_sum, [(k[1], 1.0) for k in kept]))
        assert [sums[i] for i in range(3)] == [float(np.sum(np.arange(a, b) + 1.0)) for a, b in tiles]
        st.release([k[0] for k in kept])
        with pytest.raises(FileNotFoundError):
            st.fetch(kept[0][0])
        st._removers[-1].join()     # the release's unlinking thread
        assert [os.path.exists(k[0].key) for k in kept] == [False] * 3
        np.testing.assert_array_equal(st.fetch(kept[2][1]), np.arange(70.0, 100.0) + 1.0)
        with pytest.raises(TypeError, match="2 parts"):
            st.map(_tile, tiles, keep=True, parts=2)


def test_a_failing_task_raises_in_the_caller_and_leaves_no_worker():
    import multiprocessing

    before = {p.pid for p in multiprocessing.active_children()}
    with pytest.raises(IndexError):
        with LocalEngine(2, "processes").stage({"base": np.arange(2.0)}) as st:
            list(st.map(_square, [(i,) for i in range(5)]))
    import time

    deadline = time.monotonic() + 5.0     # the pool's manager thread reaps its workers asynchronously
    while True:
        left = [p for p in multiprocessing.active_children() if p.pid not in before and p.is_alive()]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left


@pytest.mark.parametrize("kw,msg", [(dict(executor="threads"), "executor: expected one of"),
                                    (dict(workers=-1), "workers: expected an integer >= 0"),
                                    (dict(workers=True), "workers: expected an integer >= 0")])
def test_bad_engine_arguments_are_one_line_errors(kw, msg):
    with pytest.raises(InputError, match=msg):
        LocalEngine(**kw)
