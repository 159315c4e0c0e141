"""Files written by a forked process (sim.report.forked); a run's maps drawn on two processes (outputs.draw_maps)."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from shapely.geometry import box  # noqa: E402

from sim import maps  # noqa: E402
from sim.app import outputs  # noqa: E402
from sim.errors import ConfigError, InputError  # noqa: E402
from sim.grid import Grid  # noqa: E402
from sim.report import files, forked  # noqa: E402

X0_M, Y0_M, SIDE_M = 340_000.0, 3_470_000.0, 2_000.0


def _run_folder(tmp_path, name="run") -> Path:
    return files.create_run_dir(tmp_path, "t", name=name)


def _temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp-" in p.name]


def test_files_written_by_the_child_are_recorded_here(tmp_path):
    run = _run_folder(tmp_path)
    parent = os.getpid()
    pids = {}

    def child_job(name):
        def job():
            pids[name] = os.getpid()   # the child's copy of the dict: not seen here
            files.write_json(run / name, {"pid": os.getpid()})
        return job

    with forked.forked_writes([child_job("a.json"), child_job("b.json")], run):
        files.write_json(run / "c.json", {"pid": parent})
    assert files.written_outputs(run) == ["a.json", "b.json", "c.json"]
    assert pids == {}   # the jobs ran in another process ...
    child = json.loads((run / "a.json").read_text())["pid"]
    assert child != parent and json.loads((run / "b.json").read_text())["pid"] == child   # ... one, in order
    files.abandon_run_dir(run)


def test_a_child_error_is_the_same_one_line_error_and_leaves_no_temporary_file(tmp_path):
    run = _run_folder(tmp_path)

    def half_written():
        with files.atomic_path(run / "half.png") as tmp:
            tmp.write_bytes(b"\x89PNG half")
            raise ConfigError("scenario.toml", "output.dpi", "expected 150 to 200, got 20")

    def never():
        files.write_json(run / "never.json", {})

    with pytest.raises(ConfigError) as err:
        with forked.forked_writes([lambda: files.write_json(run / "first.json", {}), half_written, never], run):
            files.write_json(run / "here.json", {})
    assert str(err.value) == "scenario.toml: output.dpi: expected 150 to 200, got 20"
    assert (err.value.source, err.value.field) == ("scenario.toml", "output.dpi")
    assert sorted(p.name for p in run.iterdir()) == [".gigacity-run", "first.json", "here.json"]
    assert "first.json" in files.written_outputs(run)   # complete files of the child are the run's
    files.abandon_run_dir(run)


def test_a_child_killed_mid_write_is_an_error_and_its_temporary_file_goes(tmp_path):
    run = _run_folder(tmp_path)

    def killed():
        with files.atomic_path(run / "map.png") as tmp:
            tmp.write_bytes(b"\x89PNG half")
            os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(InputError, match=r"stopped \(exit code -9\)"):
        with forked.forked_writes([killed], run):
            pass
    assert _temps(run) == [] and not (run / "map.png").exists()
    files.abandon_run_dir(run)


def test_an_error_here_stops_the_child(tmp_path):
    run = _run_folder(tmp_path)
    started = tmp_path / "started"

    def slow():
        started.write_text("1")
        with files.atomic_path(run / "slow.png") as tmp:
            tmp.write_bytes(b"\x89PNG half")
            signal.pause()   # until stopped

    with pytest.raises(KeyError):
        with forked.forked_writes([slow], run):
            while not started.exists():
                pass
            raise KeyError("here")
    assert _temps(run) == [] and not (run / "slow.png").exists()
    files.abandon_run_dir(run)


# ----------------------------------------------------------------------------- maps on two processes


@pytest.fixture(scope="module")
def districts():
    geoms = [box(X0_M + c * SIDE_M, Y0_M - (r + 1) * SIDE_M, X0_M + (c + 1) * SIDE_M, Y0_M - r * SIDE_M)
             for r in range(3) for c in range(3)]
    names = [f"District {k} of the city" for k in range(9)]   # long: the labels are moved apart
    return gpd.GeoDataFrame({"code": [f"31010{k}" for k in range(9)], "name_en": names}, geometry=geoms,
                            crs="EPSG:32651")


def _jobs(folder: Path, districts) -> list:
    g = Grid("EPSG:32651", X0_M, Y0_M, 50.0, (120, 120))
    rng = np.random.default_rng(3)
    jobs = []
    for k in range(5):
        values = rng.normal(-90.0, 10.0, g.shape)
        values[: 10 * k] = np.nan
        kw = (dict(vmin=-110.0, vmax=-70.0) if k % 2 else
              dict(classes=(-200, -100, -90, -80, 0), class_labels=("a", "b", "c", "d")))
        jobs.append(outputs.MapJob(folder / f"map_{k}.png", f"map {k}",
                                   lambda v=values, kw=kw, k=k: maps.raster_map(
                                       g, v, districts, title=f"map {k}", cbar_label="dBm", inset_codes=("310104",),
                                       **kw)))
    jobs.append(outputs.MapJob(folder / "map_districts.png", "Districts",
                               lambda: maps.district_map(districts, title="districts", inset_codes=("310104",))))
    return jobs


class _Output:
    dpi = 150


class _Scenario:
    output = _Output()


def test_maps_drawn_on_two_processes_are_the_maps_drawn_in_one(tmp_path, districts):
    """draw_maps with 2 processes (a forked one) writes the files of 1 process byte for byte, records them, and
    returns the report's images in the order of the jobs."""
    out = {}
    for n in (1, 2):
        run = _run_folder(tmp_path, f"run{n}")
        maps.frame.LAYOUTS.clear()   # each as a run's first maps: the label layout found anew
        with outputs.writing_outputs():
            images = outputs.draw_maps(_Scenario(), _jobs(run, districts), run, processes=n)
        assert list(images) == [f"map {k}" for k in range(5)] + ["Districts"]
        assert files.written_outputs(run) == sorted(p.name for p in images.values())
        out[n] = {p.name: p.read_bytes() for p in images.values()}
        files.abandon_run_dir(run)
    assert out[1] == out[2]
    assert out[1]["map_1.png"] != out[1]["map_3.png"]   # the maps differ: the comparison can fail


def test_a_map_failing_in_the_forked_process_is_one_line_and_leaves_no_partial_file(tmp_path, districts,
                                                                                      monkeypatch):
    run = _run_folder(tmp_path)
    parent = os.getpid()
    real = files._palette_png

    def no_space_in_child(rgba, path, dpi=None):
        if os.getpid() != parent:   # the first map the forked process takes (which one changes from run to run)
            path.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
            raise OSError(28, "No space left on device")
        return real(rgba, path, dpi)

    monkeypatch.setattr(files, "_palette_png", no_space_in_child)
    with pytest.raises(InputError) as err:
        with outputs.writing_outputs():
            outputs.draw_maps(_Scenario(), _jobs(run, districts), run, processes=2)
    failed = re.search(r"cannot write (map_\w+\.png) \(No space left on device\)$", str(err.value))
    assert "\n" not in str(err.value) and failed, str(err.value)
    names = sorted(p.name for p in run.iterdir())
    assert failed.group(1) not in names and _temps(run) == []
    files.abandon_run_dir(run)


def test_shared_writes_run_every_job_once_on_the_two_processes(tmp_path):
    """Each job runs once, on this process or the forked one, taking turns as they come; every file is recorded."""
    import time

    run = _run_folder(tmp_path)
    parent = os.getpid()

    def job(k):
        def write():
            time.sleep(0.05 if k % 3 else 0.2)
            files.write_json(run / f"j{k:02d}.json", {"pid": os.getpid()})
        return write

    with forked.shared_writes([job(k) for k in range(12)], run) as mine:
        here = 0
        for write in mine:
            write()
            here += 1
    names = files.written_outputs(run)
    assert names == [f"j{k:02d}.json" for k in range(12)]   # each once, recorded here
    pids = [json.loads((run / n).read_text())["pid"] for n in names]
    assert 0 < pids.count(parent) == here < 12   # both processes took jobs
    assert _temps(run) == []
    files.abandon_run_dir(run)


def test_a_table_still_built_by_a_thread_is_an_error_in_the_forked_process_not_a_hang(tmp_path):
    """BusyHour.cells in a process forked while this one's thread still builds the table: the child has no copy of
    the thread, so waiting would never end (a 10 m run hung so); it raises instead, and here the table arrives."""
    import threading
    from concurrent.futures import Future

    import pandas as pd

    from sim.app.busyhour import BusyHour

    run = _run_folder(tmp_path)
    pending = Future()
    bh = BusyHour(layers={}, rate_by_ran={}, cells_future=pending, layer_summary={})
    got = {}

    def write_cells():
        files.write_csv(run / "cells.csv", bh.cells)

    def forked_block():
        try:
            with forked.forked_writes([write_cells], run):
                pass
        except Exception as exc:  # noqa: BLE001 - the test reads it
            got["error"] = exc

    t = threading.Thread(target=forked_block, daemon=True)
    t.start()
    t.join(timeout=60.0)
    assert not t.is_alive(), "the forked process waited for a thread it does not have"
    assert "BusyHour.finish()" in str(got.get("error")) and not (run / "cells.csv").exists()
    table = pd.DataFrame({"cell": [1, 2]})
    threading.Timer(0.2, pending.set_result, (table,)).start()
    bh.finish()   # here the thread exists: finish waits for it
    assert bh.cells is table
    with forked.forked_writes([write_cells], run):
        pass
    assert (run / "cells.csv").exists()
    files.abandon_run_dir(run)
