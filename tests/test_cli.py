"""The command line, run as a user runs it: `gigacity ...` and `python -m sim ...` in a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
GIGACITY = Path(sys.executable).parent / "gigacity"


def run_cli(*args, cwd=None, module=False):
    cmd = [sys.executable, "-m", "sim", *args] if module or not GIGACITY.exists() else [str(GIGACITY), *args]
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))  # this checkout's sim, not the installed one
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def _one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("gigacity: error: ")
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


def test_validate_prints_summary():
    proc = run_cli("validate", str(CONFIGS / "shanghai-2021.toml"))
    assert proc.returncode == 0, proc.stderr
    assert "population 24,870,895" in proc.stdout
    assert "52,000 sites" in proc.stdout
    assert proc.stdout.strip().endswith("config OK")


@pytest.mark.slow
def test_python_dash_m_same_as_script():
    a = run_cli("validate", str(CONFIGS / "tiny.toml"), module=True)
    b = run_cli("validate", str(CONFIGS / "tiny.toml"))
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout


def test_unknown_key_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    text = (CONFIGS / "tiny.toml").read_text(encoding="utf-8").replace("k_sites = 24", "k_sites = 24\nfoo = 1")
    bad.write_text(text.replace('"../geodata/', f'"{(ROOT / "geodata").as_posix()}/'), encoding="utf-8")
    _one_line_error(run_cli("validate", str(bad)), "bad.toml", "radio.foo", "unknown key")


def test_missing_config_exit_2(tmp_path):
    _one_line_error(run_cli("validate", str(tmp_path / "none.toml")), "none.toml", "config file not found")


def test_missing_geodata_exit_2(tmp_path):
    bad = tmp_path / "c.toml"
    text = (CONFIGS / "tiny.toml").read_text(encoding="utf-8")
    bad.write_text(text.replace('"../geodata/shanghai_districts.geojson"', '"missing.geojson"').replace(
        '"../geodata/', f'"{(ROOT / "geodata").as_posix()}/'), encoding="utf-8")
    _one_line_error(run_cli("validate", str(bad)), "missing.geojson", "file not found")


def test_bad_resolution_flag_exit_2():
    _one_line_error(run_cli("validate", str(CONFIGS / "tiny.toml"), "--resolution-m", "-5"), "--resolution-m",
                    "expected a number in [10, 2000]")


@pytest.mark.slow
def test_resolution_too_fine_for_memory(tmp_path):
    bad = tmp_path / "c.toml"
    text = (CONFIGS / "shanghai-2021.toml").read_text(encoding="utf-8")
    text = text.replace('"../geodata/', f'"{(ROOT / "geodata").as_posix()}/').replace('dir = "../runs"', 'dir = "runs"')
    bad.write_text(text.replace("resolution_m = 100.0", "resolution_m = 10.0\nmax_memory_gb = 1.0"), encoding="utf-8")
    proc = run_cli("run", str(bad), "--out", str(tmp_path / "run"), "--quiet")
    _one_line_error(proc, "region.max_memory_gb", "GiB", "at 10 m", "use a coarser region.resolution_m")


@pytest.mark.slow
def test_run_tiny_writes_folder_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", str(CONFIGS / "tiny.toml"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "reading geodata" in proc.stderr  # progress on stderr
    for name in ("grid_summary.json", "grid_districts.csv", "map_districts.png"):
        assert (out / name).stat().st_size > 0, name
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert hidden == [".gigacity-run"], f"temporary files left behind: {hidden}"  # only the run-folder marker
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = run_cli("run", str(CONFIGS / "tiny.toml"), "--out", str(out), "--quiet")
    _one_line_error(again, "already exists")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    forced = run_cli("run", str(CONFIGS / "tiny.toml"), "--out", str(out), "--quiet", "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stderr == ""
    left = [p.name for p in out.iterdir()
            if (p.name.startswith(".") or ".tmp-" in p.name) and p.name != ".gigacity-run"]
    assert not left, f"temporary files left: {left}"


@pytest.mark.slow
def test_run_tiny_outputs_open_in_gis_tools(tmp_path):
    """The wired run: sites, coverage rasters and criteria land in files GIS tools open."""
    import json

    import pyogrio
    import rasterio

    out = tmp_path / "run"
    proc = run_cli("run", str(CONFIGS / "tiny.toml"), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    from sim.report.runfolder import validate_summary

    validate_summary(summary)
    # tiny.toml: 30 + 40 sites, 3 sectors; n41 + n28 on China Mobile, n78 on the shared grid
    sites = pyogrio.read_dataframe(out / "sites.gpkg", layer="sectors")
    assert sites["site_id"].nunique() == 70
    assert len(sites) == 30 * 3 * 2 + 40 * 3
    # 70 sites over Huangpu's 662,030 residents (census 2020) -> 1.057 per 10,000
    assert summary["citywide"]["bs_5g_per_10k"] == __import__("pytest").approx(70 / 662030 * 1e4, rel=1e-9)
    with rasterio.open(out / "ctcu-n78_rsrp_dbm.tif") as ds:
        assert ds.crs.to_epsg() == 32651
        band = ds.read(1)
        assert ds.shape == tuple(summary["grid"]["shape"])
    land = band[~__import__("numpy").isnan(band)]
    assert land.size == summary["grid"]["land_pixels"]
    assert -140 < float(land.min()) and float(land.max()) < -30
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "http://" not in html and "https://" not in html


@pytest.mark.slow
def test_compare_two_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out, k in ((a, "24"), (b, "8")):
        cfg = tmp_path / f"k{k}.toml"
        text = (CONFIGS / "tiny.toml").read_text(encoding="utf-8").replace("k_sites = 24", f"k_sites = {k}")
        cfg.write_text(text.replace('"../geodata/', f'"{(ROOT / "geodata").as_posix()}/'), encoding="utf-8")
        assert run_cli("run", str(cfg), "--out", str(out), "--quiet").returncode == 0
    proc = run_cli("compare", str(a), str(a), "--out", str(tmp_path / "cmp"))
    assert proc.returncode == 0, proc.stderr
    # a run against itself: every change is exactly zero
    rows = [line.split() for line in proc.stdout.splitlines()[1:] if line and not line.startswith("written")]
    table = [r for r in rows if not r[0].endswith(".tif")]
    assert table and all(float(r[-1]) == 0.0 for r in table)
    assert {"sites_5g", "sites_5g_per_km2", "bs_5g_per_10k"} <= {r[0] for r in table}  # deployment beside indicators
    # every throughput raster: unloaded and busy hour per layer, busy hour per radio network
    tifs = sorted([f"{lid}_rate_{k}_mbps.tif" for lid in ("cmcc-n28", "cmcc-n41", "ctcu-n78")
                   for k in ("busy", "indoor")]
                  + ["cmcc_rate_busy_mbps.tif", "ctcu_rate_busy_mbps.tif"])
    assert [r[:4] for r in rows if r[0].endswith(".tif")] == [[t, "mean", "change", "+0.0"] for t in tifs]
    assert (tmp_path / "cmp" / "compare.csv").stat().st_size > 0
    _one_line_error(run_cli("compare", str(a), str(tmp_path / "none")), "summary.json not found")
    # K = 24 -> K = 8: the difference raster is B - A exactly, pixel by pixel, on the shared grid
    cmp = tmp_path / "cmp_ab"
    proc = run_cli("compare", str(a), str(b), "--out", str(cmp))
    assert proc.returncode == 0, proc.stderr
    import numpy as np
    import rasterio

    name = "ctcu-n78_rate_indoor_mbps.tif"
    with rasterio.open(a / name) as da, rasterio.open(b / name) as db, rasterio.open(cmp / f"diff_{name}") as dd:
        va, vb, vd = da.read(1).astype(np.float64), db.read(1).astype(np.float64), dd.read(1)
        assert dd.crs == da.crs and dd.transform == da.transform and np.isnan(dd.nodata)
        assert dd.descriptions[0].startswith("ctcu-n78 Downlink rate") and dd.units == ("Mbit/s",)
    land = np.argwhere(np.isfinite(va))
    assert np.isnan(vd[~np.isfinite(va)]).all()
    changed = land[(vb - va)[tuple(land.T)] != 0]
    assert len(changed) > 0  # K = 8 changes some rates
    for r, c in (*land[:: max(1, len(land) // 5)], *changed[:3]):
        assert vd[r, c] == np.float32(vb[r, c] - va[r, c]), (r, c)
    for f in ("compare.md", "map_diff_ctcu-n78_rate_indoor.png"):
        assert (cmp / f).stat().st_size > 0, f
    again = run_cli("compare", str(a), str(b), "--out", str(cmp))
    _one_line_error(again, "compare.csv", "--force")


def test_version():
    from sim import __version__

    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"gigacity {__version__}"


def test_set_error_names_the_key():
    _one_line_error(run_cli("validate", str(CONFIGS / "tiny.toml"), "--set", "radio.k_sitez=3"),
                    "--set: radio.k_sitez: unknown key")


@pytest.mark.slow
def test_run_log_lines_when_not_a_terminal_and_quiet(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", str(CONFIGS / "tiny.toml"), "--out", str(out), "--set", "region.resolution_m=400")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    # piped: one plain "[   t s] stage" line per stage, no progress bar (no carriage return)
    assert "\r" not in proc.stderr and all(line.startswith("[") and " s] " in line for line in lines), lines
    stages = [line.split(" s] ", 1)[1] for line in lines]
    assert stages[0] == "reading geodata" and "coverage ctcu-n78" in stages and stages[-1] == "writing outputs"
    assert proc.stdout.splitlines()[-1] == f"report: {out / 'report.html'}"
    quiet = run_cli("run", str(CONFIGS / "tiny.toml"), "--out", str(tmp_path / "q"), "--quiet",
                    "--set", "region.resolution_m=400")
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert quiet.stdout.splitlines() == [f"report: {tmp_path / 'q' / 'report.html'}"]
    debug = run_cli("validate", str(CONFIGS / "tiny.toml"), "--log-level", "warning")
    assert debug.returncode == 0 and debug.stdout.strip().endswith("config OK")


def test_a_signal_handler_run_in_a_forked_worker_leaves_the_stop_to_the_command(monkeypatch):
    """CPython runs a signal handler tripped just before a fork in the child too: in a worker the command's handler
    does nothing (the command's process stops it), where the command's process raises Terminated (a SIGINT just as
    the workers started printed a worker's traceback)."""
    import multiprocessing
    import signal

    from sim import cli

    monkeypatch.setattr(cli, "_HANDLER_PID", [os.getpid()])
    monkeypatch.setattr(cli, "_SIGTERM_SEEN", [])

    def in_worker():
        try:
            cli._on_signal(signal.SIGTERM, None)
        except BaseException:  # noqa: BLE001 - the exit code says it
            os._exit(1)
        os._exit(0 if cli._SIGTERM_SEEN == [] else 2)

    proc = multiprocessing.get_context("fork").Process(target=in_worker)
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    with pytest.raises(cli.Terminated):
        cli._on_signal(signal.SIGTERM, None)
    assert cli._SIGTERM_SEEN == [signal.SIGTERM]
