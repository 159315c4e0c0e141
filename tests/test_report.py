"""Tests of sim.report: atomic writes and run folder (files), summary schema and readers
(runfolder), Markdown and HTML reports (render)."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import io
import json
import math
import re
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyogrio  # noqa: E402
import pytest  # noqa: E402
import rasterio  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402
from shapely.geometry import Point, box  # noqa: E402

from sim import criteria as cr  # noqa: E402
from sim.errors import InputError  # noqa: E402
from sim.geodata import ATTRIBUTION, CENSUS_SOURCE  # noqa: E402
from sim.grid import Grid  # noqa: E402
from sim.report import files, render, runfolder  # noqa: E402

X0_M, Y0_M, RES_M = 340_000.0, 3_470_000.0, 100.0
CODES2 = ("310101", "310115")


def _no_temp_left(folder) -> bool:
    return not [p for p in folder.iterdir() if ".tmp-" in p.name]


def _table():
    return cr.evaluate(
        {"bs_5g_per_10k": [30.0, 10.0], "pop_cov_5g_outdoor_pct": [99.0, 90.0]},
        {"bs_5g_per_10k": 15.0, "fibre_gigabit_coverage_pct": 80.0, "user_5g_share_pct": 40.0,
         "pon_10g_port_share_pct": 50.0,
         "pop_cov_5g_outdoor_pct": 95.0},
        district_codes=CODES2,
    )


def _summary(table=None, **scenario):
    table = _table() if table is None else table
    city = table[table["scope"] == "citywide"]
    sc = {"name": "tiny-2025", "year": 2025, "seed": 7, "config_path": "configs/tiny.toml"}
    sc.update(scenario)
    return {
        "schema_version": runfolder.SUMMARY_SCHEMA_VERSION,
        "scenario": sc,
        "inputs": {"sites": {"strategy": "density"}},
        "grid": {"crs": "EPSG:32651", "res_m": RES_M, "shape": [40, 50], "x0_m": X0_M, "y0_m": Y0_M},
        "districts": [
            {"code": c, "name_en": n,
             "indicators": {k: (None if math.isnan(v) else v) for k, v in
                            zip(table.loc[table["scope"] == c, "key"], table.loc[table["scope"] == c, "value"])}}
            for c, n in zip(CODES2, ("Huangpu", "Pudong New Area"))
        ],
        "citywide": dict(zip(city["key"], city["value"])),
        "criteria": runfolder.criteria_records(table),
        "timings_s": {"coverage": 1.5, "total": 2.0},
        "versions": files.versions(),
        "outputs": ["summary.json", "criteria.csv"],
    }


def _png(w_in=2.0, h_in=2.0) -> bytes:
    fig = Figure(figsize=(w_in, h_in))
    fig.add_subplot().plot([0, 1], [0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    return buf.getvalue()


# ----------------------------------------------------------------------------- run folder


def test_create_run_dir_name_and_refusal(tmp_path):
    now = dt.datetime(2025, 3, 4, 5, 6, 7)
    d = files.create_run_dir(tmp_path / "runs", "shanghai-2025", now=now)
    assert d == tmp_path / "runs" / "shanghai-2025-20250304-050607" and d.is_dir()
    with pytest.raises(InputError, match=r"shanghai-2025-20250304-050607: force: run folder already exists"):
        files.create_run_dir(tmp_path / "runs", "shanghai-2025", now=now)
    assert (d / files.RUN_MARKER).is_file()   # the marker is written first
    # --force replaces a gigacity run folder: the previous run's files and a killed run's temp files go
    (d / "old.csv").write_text("x")
    (d / ".old.tmp-123-0123abcd.csv").write_text("x")
    assert files.create_run_dir(tmp_path / "runs", "shanghai-2025", force=True, now=now) == d
    assert sorted(p.name for p in d.iterdir()) == [files.RUN_MARKER]
    with pytest.raises(InputError, match=r"scenario: expected letters, digits"):
        files.create_run_dir(tmp_path, "../evil")


def test_force_never_replaces_a_folder_that_is_not_a_run_folder(tmp_path, monkeypatch):
    mine = tmp_path / "documents"
    mine.mkdir()
    (mine / "report.md").write_text("my own report")
    with pytest.raises(InputError, match=r"documents: --out: not a gigacity run folder .* and not empty"):
        files.create_run_dir(tmp_path, "x", force=True, name="documents")
    assert (mine / "report.md").read_text() == "my own report"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert files.create_run_dir(tmp_path, "x", force=True, name="empty") == empty
    monkeypatch.chdir(mine)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    for folder, why in ((mine, "working folder"), (tmp_path, "working folder"), (tmp_path / "home", "home folder"),
                        (tmp_path.anchor, "working folder|root")):
        with pytest.raises(InputError, match=why):
            files.check_run_dir(folder, force=True)
    with pytest.raises(InputError, match=r"--out: expected a folder path, got ''"):
        files.check_run_dir("", force=True)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InputError, match=r"a-file is a file, not a folder"):
        files.check_run_dir(tmp_path / "a-file" / "run")


def test_outputs_are_the_files_written_and_errors_are_one_line(tmp_path, monkeypatch):
    d = files.create_run_dir(tmp_path, "x", name="run")
    (d / "not-mine.txt").write_text("x")
    files.write_json(d / "a.json", {"a": 1})
    files.write_csv(d / "b.csv", [{"x": 1}])
    assert files.written_outputs(d) == ["a.json", "b.csv"]
    files.finish_run_dir(d, "x", ["a.json", "b.csv"])

    # a full disk while moving into place, and a clean-up that fails as well: the real error is reported
    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", full)
    monkeypatch.setattr(files, "_remove_temp", full)
    with pytest.raises(InputError, match=r"c\.json: cannot write c\.json \(No space left on device\)$"):
        files.write_json(d / "c.json", {"c": 1})
    monkeypatch.undo()

    # GDAL's write error (a pyogrio exception, not an OSError) is one line as well, and no temp file stays
    import geopandas as gpd
    import pyogrio
    import pyogrio.errors
    import shapely

    def gdal_full(*a, **k):
        raise pyogrio.errors.DataSourceError("sqlite3_exec failed: database or disk is full")

    monkeypatch.setattr(pyogrio, "write_dataframe", gdal_full)
    gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(0, 0)], crs="EPSG:4326")
    with pytest.raises(InputError, match=r"d\.gpkg: cannot write d\.gpkg \(sqlite3_exec failed: database or disk"):
        files.write_gpkg(d / "d.gpkg", gdf, "x")
    assert not [p for p in d.iterdir() if p.name.startswith(".d.tmp-")]


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_path_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError, match="interrupted"):
        with files.atomic_path(target) as tmp:
            tmp.write_text('{"half": ')
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_writer_failing_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "criteria.csv"
    files.write_csv(target, pd.DataFrame({"a": [1, 2]}))
    before = target.read_bytes()

    def half_then_fail(self, f, **kwargs):
        f.write("a\n1\n")
        raise OSError("No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(InputError, match="cannot write criteria.csv .No space left"):
        files.write_csv(target, pd.DataFrame({"a": [3, 4]}))
    assert target.read_bytes() == before
    assert _no_temp_left(tmp_path)
    fresh = tmp_path / "new.csv"
    with pytest.raises(InputError, match="No space left"):
        files.write_csv(fresh, pd.DataFrame({"a": [3]}))
    assert not fresh.exists() and _no_temp_left(tmp_path)


def test_write_png_failure_mid_write(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", broken_save)
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1])
    with pytest.raises(KeyboardInterrupt):
        files.write_png(fig, tmp_path / "map.png")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- JSON / CSV / PNG


def test_write_json_converts_numpy_and_nan(tmp_path):
    p = files.write_json(tmp_path / "s.json",
                          {"a": np.float32(1.5), "b": np.array([1, 2]), "c": math.nan, "d": (np.True_,)})
    assert json.loads(p.read_text(encoding="utf-8")) == {"a": 1.5, "b": [1, 2], "c": None, "d": [True]}
    with pytest.raises(InputError, match=r"\$\.x: not JSON-serialisable: object"):
        files.write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists() and _no_temp_left(tmp_path)


def test_write_csv_from_rows(tmp_path):
    rows = cr.evaluate_rows({}, {"bs_5g_per_10k": 12.5}, [cr.DEFAULT_THRESHOLDS[3]], district_codes=())
    p = files.write_csv(tmp_path / "c.csv", rows)
    back = pd.read_csv(p)
    assert back.loc[0, "key"] == "bs_5g_per_10k" and back.loc[0, "value"] == 12.5
    assert list(back.columns) == list(cr.COLUMNS)


PALETTE_MEAN_ABS_LEVELS = 1.0  # a 256-colour median cut of a colour-mapped image: under a level of 255 on average


def test_write_png_is_one_palette_png_of_the_drawn_figure(tmp_path):
    """The map PNG is a palette PNG encoded once, close to the figure as Agg draws it (and as savefig encodes it)."""
    fig = Figure(figsize=(4, 3))
    fig.add_subplot().imshow(np.random.default_rng(0).random((50, 50)))
    p = files.write_png(fig, tmp_path / "a.png", dpi=170)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=170)
    with Image.open(p) as im, Image.open(buf) as full:
        assert im.size == full.size == (680, 510)  # 4 x 3 in at 170 dpi
        assert im.mode == "P" and tuple(round(v) for v in im.info["dpi"]) == (170, 170)
        drawn = np.asarray(full.convert("RGB"), dtype=float)
        diff = np.abs(np.asarray(im.convert("RGB"), dtype=float) - drawn)
    assert diff.mean() < PALETTE_MEAN_ABS_LEVELS
    assert fig.get_dpi() == 100  # the figure's own dpi is restored
    assert _no_temp_left(tmp_path)
    with pytest.raises(InputError, match=r"expected an RGBA image \[rows, cols, 4\], got shape \(4, 4\)"):
        files.write_png_rgba(tmp_path / "bad.png", np.zeros((4, 4), np.uint8))


def test_background_writes_give_the_same_bytes_whatever_the_threads(tmp_path):
    """GeoTIFFs and PNGs written by 0 (in the caller), 1 and 4 writer threads are byte-identical; all are recorded."""
    grid = Grid("EPSG:32651", X0_M, Y0_M, RES_M, (600, 700))

    def inputs():
        rng = np.random.default_rng(3)
        rasters = [rng.normal(-90.0, 8.0, grid.shape).astype(np.float32) for _ in range(5)]
        rasters[2][:100] = np.nan
        rgba = np.concatenate([rng.integers(0, 256, (300, 200, 3), dtype=np.uint8),
                               np.full((300, 200, 1), 255, np.uint8)], axis=2)
        return rasters, rgba

    out = {}
    for threads in (0, 1, 4):
        rasters, rgba = inputs()
        run = files.create_run_dir(tmp_path, "bg", name=f"t{threads}")
        with files.background_writes(threads):
            for k, arr in enumerate(rasters):
                files.write_geotiff(run / f"r{k}.tif", grid, arr, np.nan, f"raster {k}", "dBm")
                arr[:] = 0.0   # the caller reuses its array at once: the file keeps the values given
            files.write_png_rgba(run / "m.png", rgba)
        assert files.written_outputs(run) == ["m.png"] + [f"r{k}.tif" for k in range(5)]
        assert _no_temp_left(run)
        out[threads] = {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.suffix in (".tif", ".png")}
        files.finish_run_dir(run, "bg", files.written_outputs(run))
    assert len(out[0]) == 6 and out[1] == out[0] and out[4] == out[0]
    with rasterio.open(tmp_path / "t4" / "r1.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), inputs()[0][1])


def test_background_writes_raise_the_writer_error_and_leave_no_temporary_file(tmp_path, monkeypatch):
    grid = Grid("EPSG:32651", X0_M, Y0_M, RES_M, (40, 50))
    real = files._palette_png

    def full_disk(rgba, path, dpi=None):
        real(rgba, path, dpi)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "_palette_png", full_disk)
    with pytest.raises(InputError, match="No space left"):
        with files.background_writes(2):
            files.write_geotiff(tmp_path / "ok.tif", grid, np.zeros(grid.shape, np.float32), np.nan, "x", "1")
            files.write_png_rgba(tmp_path / "map.png", np.zeros((8, 8, 4), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.tif"]
    # an interrupt in the block: the jobs not started are dropped, the running ones finish; no temporary file
    monkeypatch.setattr(files, "_palette_png", real)
    with pytest.raises(KeyboardInterrupt):
        with files.background_writes(1):
            for k in range(4):
                files.write_png_rgba(tmp_path / f"m{k}.png", np.zeros((8, 8, 4), np.uint8))
            raise KeyboardInterrupt
    assert _no_temp_left(tmp_path)


# ----------------------------------------------------------------------------- GeoTIFF / GPKG


def test_write_geotiff(tmp_path):
    grid = Grid("EPSG:32651", X0_M, Y0_M, RES_M, (40, 50))
    arr = np.arange(2000, dtype=np.float64).reshape(40, 50)
    arr[0, 0] = np.nan
    p = files.write_geotiff(tmp_path / "rsrp.tif", grid, arr, np.nan, "SS-RSRP outdoor", "dBm")
    with rasterio.open(p) as ds:
        assert ds.crs.to_epsg() == 32651
        assert tuple(ds.transform)[:6] == (RES_M, 0.0, X0_M, 0.0, -RES_M, Y0_M)
        assert math.isnan(ds.nodata)
        assert ds.descriptions == ("SS-RSRP outdoor",)
        assert ds.units == ("dBm",)
        assert ds.dtypes == ("float32",)
        assert ds.profile["tiled"] and ds.compression.name == "zstd"
        assert len(ds.overviews(1)) == len(files.OVERVIEW_FACTORS)
        assert ds.overviews(1)[:2] == [2, 4]
        back = ds.read(1)
    np.testing.assert_array_equal(back[1:], arr[1:].astype(np.float32))
    assert math.isnan(back[0, 0])
    idx = np.full((40, 50), -1, dtype=np.int16)
    p2 = files.write_geotiff(tmp_path / "district.tif", grid, idx, -1, "district index", "1")
    with rasterio.open(p2) as ds:
        assert ds.nodata == -1 and ds.dtypes == ("int16",)
        assert ds.tags()["overview_resampling"] == "nearest"
    assert _no_temp_left(tmp_path)
    assert sorted(q.name for q in tmp_path.iterdir()) == ["district.tif", "rsrp.tif"]
    with pytest.raises(InputError, match=r"array2d: expected shape \(40, 50\) \(the grid\), got \(2, 2\)"):
        files.write_geotiff(tmp_path / "bad.tif", grid, np.zeros((2, 2)), 0, "x", "1")


def test_write_geotiff_is_a_cloud_optimized_geotiff(tmp_path):
    """A raster larger than one tile is a valid COG (rio-cogeo's validator, GDAL's COG layout rules)."""
    from rio_cogeo.cogeo import cog_validate

    grid = Grid("EPSG:32651", X0_M, Y0_M, RES_M, (700, 900))
    arr = np.random.default_rng(1).normal(-90.0, 8.0, grid.shape)
    arr[:50] = np.nan
    p = files.write_geotiff(tmp_path / "rsrp.tif", grid, arr, np.nan, "SS-RSRP outdoor", "dBm")
    valid, errors, warnings = cog_validate(p, quiet=True)
    assert valid and not errors and not warnings, (errors, warnings)
    with rasterio.open(p) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.block_shapes == [(256, 256)]
        overview = ds.read(1, out_shape=(350, 450))  # read from the first overview (average of 2 x 2)
    expect = np.nanmean(arr.astype(np.float32)[100:102, 100:102])
    assert overview[50, 50] == pytest.approx(expect, rel=1e-5)


def test_write_gpkg(tmp_path):
    districts = gpd.GeoDataFrame({"code": list(CODES2), "name_en": ["A", "B"]},
                                 geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1)], crs="EPSG:32651")
    sites = gpd.GeoDataFrame({"site": [1]}, geometry=[Point(0.5, 0.5)], crs="EPSG:32651")
    p = files.write_gpkg(tmp_path / "one.gpkg", districts, "districts")
    info = pyogrio.read_info(p, layer="districts")
    assert info["crs"] == "EPSG:32651" and info["features"] == 2
    p = files.write_gpkg_layers(tmp_path / "run.gpkg", {"districts": districts, "sites": sites})
    assert [name for name, _ in pyogrio.list_layers(p)] == ["districts", "sites"]
    assert pyogrio.read_info(p, layer="sites")["crs"] == "EPSG:32651"
    assert _no_temp_left(tmp_path)
    with pytest.raises(InputError, match=r"districts: expected a GeoDataFrame with a CRS"):
        files.write_gpkg(tmp_path / "x.gpkg", districts.set_crs(None, allow_override=True), "districts")


# ----------------------------------------------------------------------------- schema


def test_summary_schema_good_and_json_roundtrip(tmp_path):
    s = _summary()
    runfolder.validate_summary(s)
    p = files.write_json(tmp_path / "summary.json", s)
    runfolder.validate_summary(json.loads(p.read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.pop("grid"), r"grid: missing"),
        (lambda s: s.update(schema_version="0.9"), r"schema_version: expected '1.0', got '0.9'"),
        (lambda s: s["scenario"].update(year="2025"), r"scenario.year: expected an integer, got '2025'"),
        (lambda s: s["scenario"].pop("seed"), r"scenario.seed: missing"),
        (lambda s: s["grid"].update(shape=[40]), r"grid.shape: expected \[rows, cols\]"),
        (lambda s: s["districts"][1]["indicators"].update(x="high"),
         r"districts\[1\].indicators.x: expected a number or null, got 'high'"),
        (lambda s: s["criteria"][0].update(passed="yes"), r"criteria\[0\].passed: expected true, false or null"),
        (lambda s: s["timings_s"].update(total=-1.0), r"timings_s.total: expected a number >= 0"),
        (lambda s: s["versions"].pop("numpy"), r"versions.numpy: expected a string"),
        (lambda s: s.update(outputs="summary.json"), r"outputs: expected a list of strings"),
    ],
)
def test_summary_schema_bad(mutate, message):
    s = copy.deepcopy(_summary())
    mutate(s)
    with pytest.raises(InputError, match=r"^summary.json: " + message):
        runfolder.validate_summary(s)


def test_summary_problems_lists_all():
    assert runfolder.summary_problems([]) == ["$: expected an object, got list"]
    problems = runfolder.summary_problems({"schema_version": "1.0"})
    assert len(problems) == 9  # every other top-level key missing


# ----------------------------------------------------------------------------- reports


def test_html_report_self_contained(tmp_path):
    table = _table()
    s = _summary(table, name="evil", config_path="https://example.com/x.toml")
    s["methods"] = ["see http://example.org <b>now</b>"]
    img = tmp_path / "map.png"
    img.write_bytes(_png())
    p = render.write_report_html(tmp_path / "report.html", s, table,
                                 {"District map": img, "Raw bytes": _png()}, verdict=cr.verdict(table))
    text = p.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text
    assert "https[:]//example.com" in text
    srcs = re.findall(r"<img[^>]*\ssrc=\"([^\"]*)\"", text)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert len(re.findall(r"<img", text)) == 2
    # one inline script (district-table sorting), nothing loaded: no src, no request API
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", text, flags=re.S | re.I)
    assert len(scripts) == 1 and scripts[0][0] == "" and "<link" not in text.lower()
    assert not re.search(r"fetch|XMLHttpRequest|import\(|src=|http|eval", scripts[0][1])
    assert "&lt;b&gt;now&lt;/b&gt;" in text  # user text escaped
    assert 'name="viewport"' in text and "@media (max-width:600px)" in text
    # citywide 5G BS 15 > 12 passes; fibre exactly 80 fails "> 80 %": the verdict is a fail
    assert ('<p class="verdict fail">Does not meet 1 of 2 confirmed citywide criteria: Household gigabit-fibre '
            "coverage.") in text
    assert ATTRIBUTION in text and "7th national census, 2020" in text
    for tag in ("confirmed", "benchmark", "input", "reported"):
        assert f'<span class="tag {tag}">{tag}</span>' in text
    assert "Pudong New Area" in text  # the district table names districts
    assert _no_temp_left(tmp_path)


def test_html_verdict_not_judged_when_criteria_missing(tmp_path):
    table = cr.evaluate({}, {"bs_5g_per_10k": 15.0}, district_codes=())  # 6 of the 7 criteria not evaluated
    text = render.write_report_html(tmp_path / "r.html", _summary(table), table,
                                    verdict=cr.verdict(table)).read_text(encoding="utf-8")
    # the confirmed fibre criterion has no value: not judged; the benchmarks without value are not counted
    assert '<p class="verdict na">Not judged: 1 of 2 confirmed citywide criteria pass, 1 not evaluated:' in text


def test_reports_state_the_verdict_they_are_given(tmp_path):
    """The reports word the verdict computed by the caller; they do not judge the table again."""
    table = _table()  # judged on its own, it fails on household fibre alone
    given = {"passed": False, "failed": ["bs_5g_per_10k", "fibre_gigabit_coverage_pct"], "unknown": [],
             "n_passed": 5, "n_criteria": 7}
    text = render.write_report_html(tmp_path / "r.html", _summary(table), table,
                                    verdict=given).read_text(encoding="utf-8")
    assert ('<p class="verdict fail">Does not meet 2 of 7 confirmed citywide criteria: 5G base stations per 10,000 '
            "residents; Household gigabit-fibre coverage. 5 of 7 pass.</p>") in text
    md = render.write_report_md(tmp_path / "r.md", _summary(table), table,
                                verdict=dict(given, passed=True, failed=[])).read_text(encoding="utf-8")
    assert "**PASS**: Meets all 5 confirmed One-Gbps city criteria citywide.\n" in md
    with pytest.raises(InputError, match=r"^verdict: unknown: missing: expected the dict returned by "
                                         r"sim.criteria.verdict"):
        render.write_report_md(tmp_path / "bad.md", _summary(table), table,
                               verdict={"passed": None, "failed": [], "n_passed": 0, "n_criteria": 0})
    assert not (tmp_path / "bad.md").exists() and _no_temp_left(tmp_path)


def test_every_report_carries_the_attribution_and_census_source(tmp_path):
    s, table = _summary(), _table()
    md = render.write_report_md(tmp_path / "report.md", s, table, verdict=cr.verdict(table)).read_text(encoding="utf-8")
    assert md.endswith(f"---\n\n{ATTRIBUTION}.\n\n{CENSUS_SOURCE}.\n")
    html_text = render.write_report_html(tmp_path / "report.html", s, table,
                                         verdict=cr.verdict(table)).read_text(encoding="utf-8")
    assert f"<footer><p>{ATTRIBUTION}.</p><p>{CENSUS_SOURCE}.</p></footer>" in html_text
    cmp = render.write_compare_md(tmp_path / "compare.md", s, s, runfolder.compare_runs(s, s))
    assert cmp.read_text(encoding="utf-8").endswith(f"---\n\n{ATTRIBUTION}.\n")


def test_html_rejects_non_png(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"GIF89a")
    with pytest.raises(InputError, match=r"expected a PNG image"):
        render.write_report_html(tmp_path / "r.html", _summary(), _table(), {"x": bad}, verdict=cr.verdict(_table()))
    assert not (tmp_path / "r.html").exists()


def test_markdown_report(tmp_path):
    (tmp_path / "maps").mkdir()
    img = tmp_path / "maps" / "rsrp.png"
    img.write_bytes(_png())
    p = render.write_report_md(tmp_path / "report.md", _summary(), _table(), {"RSRP": img},
                               verdict=cr.verdict(_table()))
    text = p.read_text(encoding="utf-8")
    assert text.startswith("# gigacity — tiny-2025 (2025)\n\n**FAIL**")
    assert "![RSRP](maps/rsrp.png)" in text
    # margin: positive = headroom (pp for percentages); a benchmark is above / below, not pass / fail
    assert "| 5G base stations per 10,000 residents | 15.0 | > 12.0 | pass | +3.0 | confirmed |" in text
    assert "| Household gigabit-fibre coverage | 80.0 % | > 80.0 % | fail | +0.0 pp | confirmed |" in text
    assert ("| 10G-PON port share | 50.0 % | ≥ 46.7 % (certified-city average, Oct 2022) | above benchmark | "
            "+3.3 pp | benchmark |") in text
    assert "| Huangpu (310101) | 30.0 ✓ |" in text
    assert ATTRIBUTION in text


def test_compare_runs():
    a = _summary()
    b = copy.deepcopy(a)
    b["citywide"]["bs_5g_per_10k"] = 18.0
    b["districts"][1]["indicators"]["bs_5g_per_10k"] = 13.0
    for r in b["criteria"]:
        if r["scope"] == "310115" and r["key"] == "bs_5g_per_10k":
            r["value"], r["passed"] = 13.0, True
    df = runfolder.compare_runs(a, b).set_index(["scope", "key"])
    assert df.index[0][0] == "citywide"
    assert df.loc[("citywide", "bs_5g_per_10k"), "change"] == pytest.approx(3.0)
    row = df.loc[("310115", "bs_5g_per_10k")]
    assert (row["value_a"], row["value_b"], row["change"]) == (10.0, 13.0, 3.0)
    assert row["passed_a"] is False and row["passed_b"] is True
    assert df.loc[("citywide", "pop_cov_5g_outdoor_pct"), "change"] == 0.0
    assert row["standing"] == "confirmed" and df.loc[("citywide", "pon_10g_port_share_pct"), "standing"] == "benchmark"


def test_compare_words_a_benchmark_as_above_or_below(tmp_path):
    a = _summary()
    b = copy.deepcopy(a)
    for r in b["criteria"]:
        if r["scope"] == "citywide" and r["key"] == "pon_10g_port_share_pct":
            r["value"], r["passed"] = 40.0, False
    b["citywide"]["pon_10g_port_share_pct"] = 40.0
    text = render.write_compare_md(tmp_path / "c.md", a, b, runfolder.compare_runs(a, b)).read_text("utf-8")
    assert "| 10G-PON port share | 50.0 | 40.0 | -10.0 | above → below |" in text


def test_report_and_criteria_do_not_import_matplotlib():
    code = ("import sys, sim, sim.criteria, sim.report.files, sim.report.runfolder, sim.report.render; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_html_reads_on_a_phone_and_a_benchmark_never_fails_the_city(tmp_path):
    # both confirmed criteria pass; the 5G-user share (a scenario input) is below its 38.9 % benchmark
    table = cr.evaluate({"bs_5g_per_10k": [30.0, 13.0]},
                        {"bs_5g_per_10k": 15.0, "fibre_gigabit_coverage_pct": 99.0, "user_5g_share_pct": 21.3,
                         "pon_10g_port_share_pct": 50.0, "key_place_5g_reach_pct": 90.0,
                         "fbb_500m_user_share_pct": 35.0, "gigabit_users_per_10k": 500.0,
                         "pop_cov_5g_indoor_pct": 96.8},
                        district_codes=CODES2)
    text = render.write_report_html(tmp_path / "r.html", _summary(table), table,
                                    verdict=cr.verdict(table)).read_text(encoding="utf-8")
    assert ('<p class="verdict pass">Meets all 2 confirmed One-Gbps city criteria citywide. Benchmarks, not '
            "criteria (e.g. certified-city averages): above on 4, below on 1 (5G users among mobile users, "
            "scenario input).</p>") in text
    assert '<td class="below" data-label="Result">below benchmark</td>' in text
    assert GIGABIT_NOTE_START not in text  # no 1 Gbit/s figures in this table, no note
    # key figures right under the verdict, before the criteria table
    assert text.index('class="verdict') < text.index('<div class="figures">') < text.index('id="criteria"')
    assert '<div class="fig"><b>15.0</b><span>5G base stations per 10,000 residents</span></div>' in text
    assert '<div class="fig"><b>96.8 %</b><span>residents with indoor 5G coverage</span></div>' in text
    # phone: the criteria table turns into labelled cards; the district table keeps its first column
    assert '<table class="cards">' in text and 'data-label="Threshold">&gt; 12.0</td>' in text
    assert '<table class="districts sortable">' in text and "position:sticky;left:0" in text
    assert re.findall(r'href="([^"]*)"', text) == ["#criteria", "#maps", "#districts", "#files", "#methods",
                                                    "criteria.csv", "summary.json"]


GIGABIT_NOTE_START = "The two 1 Gbit/s figures differ on purpose"


def test_district_table_shows_the_speed_test_when_present(tmp_path):
    """The speed-test mean joins the judged criteria and the key physical columns; absent, no column."""
    by_d = {"bs_5g_per_10k": [30.0, 13.0], "pop_cov_5g_indoor_pct": [90.0, 80.0],
            "speedtest_mean_mbps": [420.0, 310.0], "speedtest_p10_mbps": [90.0, 60.0]}
    table = cr.evaluate(by_d, {"bs_5g_per_10k": 15.0}, district_codes=CODES2)
    text = render.write_report_html(tmp_path / "r.html", _summary(table), table,
                                    verdict=cr.verdict(table)).read_text(encoding="utf-8")
    heads = re.findall(r"<th title=\"[^\"]*\">([^<]*)</th>", text.split('class="districts')[1])
    assert heads[-3:] == ["5G BS per 10k residents", "Indoor 5G coverage, residents %", "Speed test, mean Mbit/s"]
    assert 'data-v="420"' in text
    table = cr.evaluate({"bs_5g_per_10k": [30.0, 13.0]}, {"bs_5g_per_10k": 15.0}, district_codes=CODES2)
    text = render.write_report_html(tmp_path / "s.html", _summary(table), table,
                                    verdict=cr.verdict(table)).read_text(encoding="utf-8")
    assert "Speed test" not in text


def test_html_links_the_data_files_states_the_run_and_sorts_districts(tmp_path):
    table = _table()
    s = _summary(table)
    s["scenario"].update(description="Baseline: 52,000 sites", created_utc="2026-11-30T14:00:00Z")
    s["outputs"] = ["criteria.csv", "maps/a.png", "sites.gpkg", "../escape.csv", "https://x.org/a.csv"]
    s["citywide"].update(pop_5g_1gbps_unloaded_pct=9.5, pop_5g_1gbps_busy_pct=90.4)
    text = render.write_report_html(tmp_path / "r.html", s, table, verdict=cr.verdict(table)).read_text("utf-8")
    links = re.findall(r'href="([^"]*)"', text)
    assert [x for x in links if not x.startswith("#")] == ["criteria.csv", "sites.gpkg", "maps/a.png"]
    assert '<p class="desc">Baseline: 52,000 sites</p>' in text and "run 2026-11-30T14:00:00Z" in text
    assert GIGABIT_NOTE_START in text
    assert '<table class="districts sortable">' in text and 'data-v="30"' in text
    # the district table: judged criteria first, no second name for the 5G site density
    assert "5G sites per 10,000 residents" not in text


def test_embedded_map_is_a_smaller_palette_png_of_the_same_picture():
    import numpy as np
    from PIL import Image

    # a continuous-colour map like the RSRP maps: many colours, large as RGBA
    fig = Figure(figsize=(4.0, 4.0))
    ax = fig.add_subplot()
    ramp = np.add.outer(np.linspace(0, 1, 300), np.linspace(0, 1, 300))
    ax.imshow(ramp + np.random.default_rng(1).normal(0, 0.05, (300, 300)), cmap="viridis")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150)
    full = buf.getvalue()
    small = render.embed_png_bytes(full)
    assert small.startswith(b"\x89PNG") and len(small) < 0.75 * len(full)
    a = np.asarray(Image.open(io.BytesIO(full)).convert("RGB"), dtype=float)
    b = np.asarray(Image.open(io.BytesIO(small)).convert("RGB"), dtype=float)
    assert a.shape == b.shape
    assert np.abs(a - b).mean() < 3.0  # 256 median-cut colours: a few levels of 255 on average
    # an image the palette cannot shrink is embedded as it is
    tiny = _png(0.5, 0.5)
    assert len(render.embed_png_bytes(tiny)) <= len(tiny)


def test_a_palette_map_png_is_embedded_as_it_is(tmp_path):
    """The run's map PNGs are palette PNGs encoded once: report.html embeds their bytes unchanged."""
    fig = Figure(figsize=(3.0, 3.0))
    fig.add_subplot().imshow(np.random.default_rng(2).random((60, 60)), cmap="viridis")
    data = files.write_png(fig, tmp_path / "map.png", dpi=100).read_bytes()
    assert render.embed_png_bytes(data) == data
    table = _table()
    html = render.write_report_html(tmp_path / "report.html", _summary(table), table, {"A map": tmp_path / "map.png"},
                                    verdict=cr.verdict(table))
    assert base64.b64encode(data).decode("ascii") in html.read_text(encoding="utf-8")


def test_a_run_that_wrote_nothing_leaves_no_folder(tmp_path):
    empty = files.create_run_dir(tmp_path, "x", name="empty-run")
    files.abandon_run_dir(empty)
    assert not empty.exists()
    some = files.create_run_dir(tmp_path, "x", name="some-run")
    files.write_json(some / "a.json", {})
    files.abandon_run_dir(some)
    assert (some / "a.json").is_file()          # what was written stays (and says how far the run went)
    reused = tmp_path / "reused"
    reused.mkdir()
    files.create_run_dir(tmp_path, "x", force=True, name="reused")
    files.abandon_run_dir(reused)
    assert reused.is_dir()                      # a folder the user gave is never removed
