"""sim.dask_engine: the engine contract of sim.engine on a Dask LocalCluster, the same numbers as the
local engine, a worker killed mid-run, and the one-line errors of a bad [compute] section.

Needs the optional extra (``pip install -e '.[dask]'``; CI installs it). One 2-worker
LocalCluster serves the whole module (starting one takes seconds).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from sim.engine import Kept, LocalEngine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.toml"


@pytest.fixture(scope="module")
def dask_engine():
    from sim.dask_engine import DaskEngine

    engine = DaskEngine(workers=2)
    yield engine
    engine.close()


@pytest.fixture(params=["local", "dask"])
def engine(request):
    """Both engines, for the contract every engine keeps."""
    return LocalEngine(2, "processes") if request.param == "local" else request.getfixturevalue("dask_engine")


# ----------------------------------------------------------------------------- tasks (module level: picklable)


def _square(shared, i):
    return i, shared["base"][i] ** 2, os.getpid()


def _tile(shared, start, stop):
    return shared["base"][start:stop] * 2.0


def _tile_sum(shared, kept, scale):
    return float(kept.sum()) * scale


def _kill_worker_once(shared, kept, marker):
    """Kills the worker process it runs in the first time (``marker`` not there yet), then computes."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)   # one task of all wins, even at once
    except FileExistsError:
        return float(kept.sum())
    os.close(fd)
    os._exit(1)   # the worker dies mid-task, holding the kept tiles it computed


# ----------------------------------------------------------------------------- the contract, on both engines


def test_map_returns_every_result_once_in_other_processes(engine):
    base = np.arange(10.0)
    with engine.stage({"base": base}, n_tasks=10) as st:
        got = dict(st.map(_square, [(i,) for i in range(10)]))
    assert sorted(got) == list(range(10))
    assert [got[i][1] for i in range(10)] == list(base ** 2)
    assert os.getpid() not in {r[2] for r in got.values()}


def test_kept_results_feed_later_maps_and_are_released_with_the_stage(engine):
    base = np.arange(100.0)
    tiles = [(0, 30), (30, 70), (70, 100)]
    done = []
    with engine.stage({"base": base}) as st:
        kept = st.map(_tile, tiles, keep=True, progress=lambda d, t: done.append((d, t)))
        assert all(isinstance(k, Kept) for k in kept) and len(kept) == 3
        np.testing.assert_array_equal(st.fetch(kept[1]), base[30:70] * 2.0)
        sums = dict(st.map(_tile_sum, [(k, 0.5) for k in kept]))
    assert [sums[i] for i in range(3)] == [float((base[a:b] * 2.0).sum()) * 0.5 for a, b in tiles]
    assert done == [(1, 3), (2, 3), (3, 3)]
    if engine.name == "dask":
        assert all(k.ref.status == "cancelled" for k in kept)   # released on the cluster
        deadline = time.monotonic() + 10.0    # workers drop released data asynchronously
        while any(k.key in _keys_on_cluster(engine) for k in kept) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(k.key in _keys_on_cluster(engine) for k in kept)
    else:
        assert not any(os.path.exists(k.key) for k in kept)


def _two_parts(shared, start, stop):
    return shared["base"][start:stop] * 2.0, shared["base"][start:stop] + 1.0


def test_kept_parts_feed_later_maps_on_either_engine(engine):
    """map(keep=True, parts=2) (two layers' tiles from one task) gives each part its own handle on both
    engines; a later map reads one part, and the parts hold the task's values."""
    base = np.arange(100.0)
    tiles = [(0, 30), (30, 70), (70, 100)]
    with engine.stage({"base": base}) as st:
        kept = st.map(_two_parts, tiles, keep=True, parts=2)
        assert [len(k) for k in kept] == [2, 2, 2]
        np.testing.assert_array_equal(st.fetch(kept[1][0]), base[30:70] * 2.0)
        np.testing.assert_array_equal(st.fetch(kept[1][1]), base[30:70] + 1.0)
        sums = dict(st.map(_tile_sum, [(k[1], 1.0) for k in kept]))
        st.release([k[0] for k in kept])
        np.testing.assert_array_equal(st.fetch(kept[2][1]), base[70:100] + 1.0)
    assert [sums[i] for i in range(3)] == [float((base[a:b] + 1.0).sum()) for a, b in tiles]


def test_a_failing_task_raises_in_the_caller(engine):
    with pytest.raises(IndexError):
        with engine.stage({"base": np.arange(2.0)}) as st:
            list(st.map(_square, [(i,) for i in range(5)]))


def _keys_on_cluster(engine) -> set:
    return {k for keys in engine.client.has_what().values() for k in keys}


def test_task_keys_follow_the_calls_not_the_timing(dask_engine):
    with dask_engine.stage({"base": np.arange(10.0)}) as st:
        kept = st.map(_tile, [(0, 5), (5, 10)], keep=True)
        number = st.number
    assert [k.key for k in kept] == [f"_tile-{dask_engine.token}-{number}.0-{i}" for i in range(2)]


# ----------------------------------------------------------------------------- a worker lost


@pytest.mark.slow
def test_a_killed_worker_costs_a_retry_not_the_result(dask_engine, tmp_path):
    """A task kills its worker (which holds kept tiles): the task runs again elsewhere, the lost kept tiles
    are recomputed from their lineage, and every result is the one of an undisturbed run."""
    base = np.arange(1000.0)
    tiles = [(a, a + 100) for a in range(0, 1000, 100)]
    marker = tmp_path / "killed"
    with dask_engine.stage({"base": base}) as st:
        kept = st.map(_tile, tiles, keep=True)
        time.sleep(3.0)   # longer than the active memory manager's 2 s: it would have dropped replicas by now
        assert len(dask_engine.client.who_has([st.shared_future])[st.shared_future.key]) == 2
        holders = {k.key: set(ws) for k, ws in zip(kept, dask_engine.client.who_has(
            [k.ref for k in kept]).values())}
        got = dict(st.map(_kill_worker_once, [(k, str(marker)) for k in kept]))
        again = [st.fetch(k) for k in kept]
    assert marker.exists(), "no worker was killed: the test could not fail"
    assert len({w for ws in holders.values() for w in ws}) == 2   # kept tiles were on both workers
    assert [got[i] for i in range(len(tiles))] == [float((base[a:b] * 2.0).sum()) for a, b in tiles]
    for (a, b), arr in zip(tiles, again):
        np.testing.assert_array_equal(arr, base[a:b] * 2.0)
    deadline = time.monotonic() + 60.0   # the nanny restarts the killed worker
    while dask_engine.workers < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dask_engine.workers == 2


# ----------------------------------------------------------------------------- a run: the same numbers


def _same_simulation(a, b):
    assert a.raster_names() == b.raster_names()
    for name in a.raster_names():
        np.testing.assert_array_equal(a.raster(name), b.raster(name), err_msg=name)
    assert a.citywide.keys() == b.citywide.keys()
    for k, v in a.citywide.items():
        assert v == b.citywide[k] or (np.isnan(v) and np.isnan(b.citywide[k])), k
    np.testing.assert_array_equal(a.indicators.to_numpy(), b.indicators.to_numpy())
    for lid, cov in a.coverage.items():
        np.testing.assert_array_equal(cov.best_sector, b.coverage[lid].best_sector)


@pytest.mark.parametrize("overrides", [
    {},
    # two districts at 100 m: Huangpu and Xuhui (blocks of 4096 pixels: several tiles per layer)
    {"region.district_codes": ["310101", "310104"], "radio.block_size": 4096},
], ids=["tiny", "two-districts"])
def test_dask_gives_the_local_engines_numbers(dask_engine, overrides):
    from sim import api

    sc = api.load_config(TINY, overrides)
    local = api.simulate(sc, workers=2)
    on_dask = api.simulate(sc, engine=dask_engine)
    assert local.compute == {"engine": "local", "workers": 2, "scheduler": None}
    assert on_dask.compute == {"engine": "dask", "workers": 2, "scheduler": None}
    _same_simulation(local, on_dask)


# ----------------------------------------------------------------------------- the command line


def _cli(*args):
    return [sys.executable, "-m", "sim", *args]


@pytest.mark.slow
def test_run_on_a_local_cluster_records_the_engine_and_leaves_no_process(tmp_path, group_alive):
    out = tmp_path / "run"
    proc = subprocess.Popen(_cli("run", str(TINY), "--out", str(out), "--engine", "dask", "--workers", "2",
                                 "--set", "output.maps=false", "--quiet"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, MPLBACKEND="Agg"), start_new_session=True)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert err == ""
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["compute"] == {"engine": "dask", "workers": 2, "scheduler": None}
    assert "starting Dask" in summary["timings_s"]
    assert group_alive(proc.pid) == []


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_coverage_shuts_the_cluster_down(tmp_path, sig, code, group_alive):
    out = tmp_path / "run"
    proc = subprocess.Popen(_cli("run", str(TINY), "--out", str(out), "--engine", "dask", "--workers", "2",
                                 "--set", "region.district_codes=[\"310101\",\"310104\"]", "--resolution-m", "50",
                                 "--set", "radio.block_size=2048"),
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True,
                            env=dict(os.environ, MPLBACKEND="Agg"))
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "coverage cmcc-n41" in line:
            time.sleep(0.3)
            # Ctrl-C reaches the whole process group (the LocalCluster's workers too); SIGTERM the run only
            (os.killpg if sig == signal.SIGINT else os.kill)(proc.pid, sig)
            break
    rest = proc.stderr.read()
    proc.stderr.close()
    proc.wait(timeout=120)
    deadline = time.monotonic() + 10.0
    while group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.returncode == code, "".join(seen) + rest
    lines = [line for line in rest.splitlines() if line.strip() and not line.startswith("[")]
    assert len(lines) == 1 and lines[0].startswith("gigacity: "), rest
    assert group_alive(proc.pid) == [], "LocalCluster processes outlived the run"
    assert not out.exists()
