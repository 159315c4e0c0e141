"""The run folder as its users meet it: GIS files, maps, failure safety, compare on other grids.

One in-process run of ``configs/tiny.toml`` (Huangpu, 100 m) is shared by the module; its
coverage threshold is raised so that some key places are reached and some are not, which
makes the key-place check below able to fail.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import matplotlib

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyogrio  # noqa: E402
import pytest  # noqa: E402
import rasterio  # noqa: E402
from PIL import Image  # noqa: E402

from sim.app.assess import mobile_share_by_ran  # noqa: E402
from sim.app.compare import compare_run_dirs  # noqa: E402
from sim.app.run import run_scenario  # noqa: E402
from sim.config import load_scenario  # noqa: E402
from sim.errors import InputError  # noqa: E402
from sim.indicators import ran_weights  # noqa: E402
from sim.report import files, runfolder  # noqa: E402

pytestmark = pytest.mark.slow  # each test reads a full run of configs/tiny.toml

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

DPI_RANGE = (150, 200)  # maps at 150-200 dpi: print quality, small files
PNG_MAX_BYTES = 2_000_000  # each map under 2 MB
RSRP_MIN_DBM = -85.0  # raised from -105 dBm: about half of Huangpu's key places reached indoors (see module doc)
MIN_RATE_LAND_SHARE = 0.95  # at least 95 % of the land has a rate on every layer (tiny.toml: Huangpu)
VALUE_RTOL = 1e-12  # float64 written and read back through GeoPackage REAL
FLOAT32_ULP_MBPS = 2.5e-4  # float32 spacing at 2-4 Gbit/s = 2000-4000 Mbit/s (GeoTIFF rates are float32)


def _scenario():
    sc = load_scenario(CONFIGS / "tiny.toml")
    return dataclasses.replace(sc, criteria=dataclasses.replace(sc.criteria, rsrp_min_dbm=RSRP_MIN_DBM))


def _temp_files(folder):
    """Temporary files (``*.tmp-*``, hidden names) under ``folder``; the run-folder marker is not one."""
    return [p.name for p in folder.rglob("*")
            if ".tmp-" in p.name or (p.name.startswith(".") and p.name != ".gigacity-run")]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = run_scenario(_scenario(), out_dir=out)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return out, summary, result


# ----------------------------------------------------------------------------- GIS outputs


def test_every_geotiff_opens_with_crs_nodata_description_overviews(tiny_run):
    out, summary, _ = tiny_run
    tifs = sorted(out.glob("*.tif"))
    layers, rans = summary["inputs"]["layers"], summary["sites"]["by_ran"]
    # rsrp, sinr, unloaded rate and busy-hour rate per layer; busy-hour rate per radio network; fibre households
    expected = {f"{lid}_{k}.tif" for lid in layers for k in ("rsrp_dbm", "sinr_db", "rate_indoor_mbps",
                                                                "rate_busy_mbps")}
    expected |= {f"{ran}_rate_busy_mbps.tif" for ran in rans} | {"fibre_gigabit_households.tif"}
    expected |= {f"{ran}_coverage_holes_indoor.tif" for ran in rans}  # classes 0..3 per network, indoor
    expected |= {"speedtest_mean_mbps.tif"}  # the speed test, mean over the networks
    assert {t.name for t in tifs} == expected
    for tif in tifs:
        with rasterio.open(tif) as ds:
            assert ds.crs.to_epsg() == 32651, tif.name
            assert ds.shape == tuple(summary["grid"]["shape"]), tif.name
            assert ds.nodata is not None and math.isnan(ds.nodata), tif.name
            first_word = ds.descriptions[0].split()[0] if ds.descriptions[0] else "?"
            assert first_word in tif.name or (first_word, tif.name[:9]) == ("5G", "speedtest"), tif.name
            assert ds.units[0] == ("Mbit/s" if "_rate_" in tif.name else ds.units[0]), tif.name
            assert ds.units[0] in ("dBm", "dB", "Mbit/s", "households", "class"), tif.name
            assert ds.overviews(1), tif.name
            assert tuple(ds.transform)[:6] == (summary["grid"]["res_m"], 0.0, summary["grid"]["x0_m"],
                                               0.0, -summary["grid"]["res_m"], summary["grid"]["y0_m"])
            band = ds.read(1)
        n_finite, n_land = int(np.isfinite(band).sum()), summary["grid"]["land_pixels"]
        if tif.name.startswith(tuple(f"{lid}_rate_" for lid in layers)) or tif.name.startswith("speedtest"):
            # a layer's rates are NaN where it serves no one: in outage under the neighbours'
            # always-on interference (radio.min_load), or (speed test) where no layer serves
            assert MIN_RATE_LAND_SHARE * n_land <= n_finite <= n_land, tif.name
        else:
            assert n_finite == n_land, tif.name
    assert f"{summary['inputs']['layers'][0]}_rate_indoor_mbps.tif" in summary["outputs"]


def test_every_geotiff_is_a_valid_cog(tiny_run):
    """Each raster passes rio-cogeo's validator (GDAL's COG layout rules: tiles, overviews, IFDs first)."""
    from rio_cogeo.cogeo import cog_validate

    out, _, _ = tiny_run
    tifs = sorted(out.glob("*.tif"))
    assert tifs
    for tif in tifs:
        valid, errors, warnings = cog_validate(tif, quiet=True)
        assert valid and not errors, (tif.name, errors)
        assert not warnings, (tif.name, warnings)


def test_districts_gpkg_carries_every_indicator_of_the_summary(tiny_run):
    out, summary, _ = tiny_run
    gdf = pyogrio.read_dataframe(out / "districts.gpkg")
    assert gdf.crs.to_epsg() == 4326  # every GeoPackage of a run folder is WGS84
    assert len(gdf) == len(summary["districts"]) == 1  # tiny.toml: Huangpu only
    assert set(gdf.geom_type) <= {"Polygon", "MultiPolygon"}
    for d in summary["districts"]:
        row = gdf[gdf["code"] == d["code"]].iloc[0]
        assert d["indicators"], d["code"]
        for key, value in d["indicators"].items():
            assert key in gdf.columns, key
            if value is None:
                assert math.isnan(row[key]), key
            else:
                assert row[key] == pytest.approx(value, rel=VALUE_RTOL), key


def test_sites_gpkg_counts_the_summary_sites(tiny_run):
    out, summary, _ = tiny_run
    sites = pyogrio.read_dataframe(out / "sites.gpkg", layer="sectors")
    n_sites = sum(summary["inputs"]["sites"].values())
    assert sites["site_id"].nunique() == n_sites == sum(d["sites_5g"] for d in summary["districts"])
    assert sites.crs.to_epsg() == 4326


def test_sites_layer_has_one_row_per_mast_and_sectors_layer_every_sector_carrier(tiny_run):
    """tiny.toml: 30 China Mobile masts (n41 + n28) and 40 shared n78 masts, 3 sectors each."""
    out, summary, _ = tiny_run
    sc = load_scenario(CONFIGS / "tiny.toml")
    assert pyogrio.list_layers(out / "sites.gpkg")[:, 0].tolist() == ["sites", "sectors"]
    masts = pyogrio.read_dataframe(out / "sites.gpkg", layer="sites")
    sectors = pyogrio.read_dataframe(out / "sites.gpkg", layer="sectors")
    assert len(masts) == sum(sc.deployment.sites.values()) == 70
    assert masts["site_id"].is_unique
    assert masts.groupby("network").size().to_dict() == dict(sc.deployment.sites)
    carriers = {op.id: len(op.carriers) for op in sc.operators if op.carriers}
    assert (masts["n_carriers"] == masts["network"].map(carriers)).all()
    assert (masts["n_sectors"] == sc.deployment.n_sectors).all()
    assert len(sectors) == int((masts["n_sectors"] * masts["n_carriers"]).sum()) == 30 * 3 * 2 + 40 * 3
    assert set(masts["district_code"]) == {"310101"} and set(sectors["district_code"]) == {"310101"}
    assert set(masts["site_class"]) == {"macro"} and masts.crs.to_epsg() == 4326
    for name in ("districts.gpkg", "key_places.gpkg"):
        assert pyogrio.read_info(out / name)["crs"] == "EPSG:4326", name


def test_key_places_reached_share_equals_summary_indicator(tiny_run):
    """Share reached, weighted by each network's mobile share (``indicators.ran_weights``, tested
    on its own; tiny.toml: China Mobile 0.58, the shared n78 network 0.23 + 0.19)."""
    out, summary, _ = tiny_run
    kp = pyogrio.read_dataframe(out / "key_places.gpkg")
    sc = load_scenario(CONFIGS / "tiny.toml")
    weights = ran_weights(mobile_share_by_ran(sc))   # China Telecom and China Unicom add up on ctcu
    assert weights == pytest.approx({"cmcc": 0.58, "ctcu": 0.42})
    assert sorted(c for c in kp.columns if c.startswith("reached_")) == ["reached_cmcc", "reached_ctcu"]
    for d in summary["districts"]:
        places = kp[kp["district_code"] == d["code"]]
        share = sum(w * 100.0 * places[f"reached_{ran}"].astype(bool).mean() for ran, w in weights.items())
        assert share == pytest.approx(d["indicators"]["key_place_5g_reach_pct"], rel=VALUE_RTOL)
    # the threshold splits the places: the check above is not 100 = 100
    assert 0.0 < summary["citywide"]["key_place_5g_reach_pct"] < 100.0


# ----------------------------------------------------------------------------- maps


def test_every_map_is_150_to_200_dpi_under_2_mb_and_in_the_report(tiny_run):
    out, summary, _ = tiny_run
    pngs = sorted(out.glob("*.png"))
    names = {p.name for p in pngs}
    layers = summary["inputs"]["layers"]
    expected = {"map_districts.png", "map_sites.png", "map_criteria.png", "map_bs_per_10k.png"}
    expected |= {f"map_{lid}_{k}.png" for lid in layers for k in ("rsrp_dbm", "sinr_db", "serving_distance")}
    expected |= {f"map_{ran}_coverage_holes.png" for ran in summary["sites"]["by_ran"]} | {"map_key_places.png"}
    assert expected <= names
    for p in pngs:
        assert 0 < p.stat().st_size < PNG_MAX_BYTES, p.name
        with Image.open(p) as im:
            dpi_x, dpi_y = im.info["dpi"]
            assert DPI_RANGE[0] <= round(dpi_x) <= DPI_RANGE[1] and round(dpi_x) == round(dpi_y), p.name
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count('<img src="data:image/png;base64,') == len(pngs)  # every map, the district map too
    assert "http://" not in html and "https://" not in html


# ----------------------------------------------------------------------------- failure safety


def test_failure_mid_write_leaves_no_temp_and_no_partial_file(tmp_path, monkeypatch):
    """A map writer that dies half-way through its third PNG (in a writer thread): the run raises, nothing
    partial stays."""
    import re
    import threading

    real = files._palette_png
    calls, lock = [], threading.Lock()

    def failing_palette_png(rgba, path, dpi=None):
        with lock:
            calls.append(re.sub(r"^\.(.*)\.tmp-[0-9]+-[0-9a-f]+(\.png)$", r"\1\2", path.name))
            third = len(calls) == 3
        if third:
            with open(path, "wb") as f:
                f.write(b"\x89PNG\r\n\x1a\n truncated")
            raise OSError(28, "No space left on device")
        return real(rgba, path, dpi)

    monkeypatch.setattr(files, "_palette_png", failing_palette_png)
    out = tmp_path / "run"
    with pytest.raises(InputError, match="No space left"):
        run_scenario(_scenario(), out_dir=out)
    assert len(calls) == 3
    assert _temp_files(out) == []
    assert not (out / calls[2]).exists()  # the map being written when it failed
    assert not (out / "summary.json").exists() and not (out / "report.html").exists()
    written = sorted(p.name for p in out.iterdir())
    assert calls[0] in written and calls[1] in written
    for p in out.iterdir():  # whatever has a final name is complete
        if p.suffix == ".png":
            with Image.open(p) as im:
                im.load()
        elif p.suffix == ".tif":
            with rasterio.open(p) as ds:
                ds.read(1)
        elif p.suffix == ".gpkg":
            for layer in pyogrio.list_layers(p)[:, 0]:
                assert pyogrio.read_info(p, layer=layer)["features"] > 0


def test_existing_folder_refused_and_untouched(tiny_run):
    out, _, _ = tiny_run
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in out.iterdir()}
    with pytest.raises(InputError, match=r"tiny: force: run folder already exists") as exc:
        run_scenario(_scenario(), out_dir=out)
    assert "\n" not in str(exc.value)
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in out.iterdir()} == before


# ----------------------------------------------------------------------------- compare


def _rewrite_finer(src_tif, dst_tif, add: float):
    """Write ``src + add`` (in the raster's unit) on a grid of half the pixel size (each pixel split in 2 x 2)."""
    from sim.grid import Grid

    values, grid, meta = runfolder.read_geotiff(src_tif)
    fine = Grid(grid.crs, grid.x0_m, grid.y0_m, grid.res_m / 2, (2 * grid.shape[0], 2 * grid.shape[1]))
    up = np.repeat(np.repeat(values + add, 2, axis=0), 2, axis=1)
    files.write_geotiff(dst_tif, fine, up, np.nan, meta["description"], meta["units"])
    return values


def test_compare_resamples_a_finer_grid_onto_a(tiny_run, tmp_path):
    out, summary, _ = tiny_run
    b = tmp_path / "b"
    shutil.copytree(out, b)
    name = f"{summary['inputs']['layers'][0]}_rate_indoor_mbps.tif"
    a_vals = _rewrite_finer(out / name, b / name, add=1.0)   # + 1 Mbit/s
    text, csv = compare_run_dirs(out, b, out_dir=tmp_path / "cmp")
    assert "(B resampled onto A's grid)" in text
    with rasterio.open(tmp_path / "cmp" / f"diff_{name}") as ds:
        assert ds.shape == tuple(summary["grid"]["shape"]) and ds.crs.to_epsg() == 32651
        assert ds.units == ("Mbit/s",) and "B - A" in ds.descriptions[0]
        diff = ds.read(1)
    land = np.isfinite(a_vals)
    assert np.array_equal(np.isfinite(diff), land)
    np.testing.assert_allclose(diff[land], 1.0, atol=FLOAT32_ULP_MBPS)
    md = (tmp_path / "cmp" / "compare.md").read_text(encoding="utf-8")
    assert f"`diff_{name}` | +1.0 |" in md and "| yes |" in md
    # the other layers were not touched: zero change on the same grid, not resampled
    other = f"{summary['inputs']['layers'][1]}_rate_indoor_mbps.tif"
    with rasterio.open(tmp_path / "cmp" / f"diff_{other}") as ds:
        assert np.nanmax(np.abs(ds.read(1))) == 0.0
    with pytest.raises(InputError, match=r"compare.csv: force: exists; pass --force"):
        compare_run_dirs(out, b, out_dir=tmp_path / "cmp")
    compare_run_dirs(out, b, out_dir=tmp_path / "cmp", force=True)
    assert _temp_files(tmp_path / "cmp") == []


def test_maps_on_one_or_two_processes_write_the_same_run_folder(tmp_path, monkeypatch):
    """write_run_folder with the maps drawn by this process alone (MAP_PROCESSES 1) and by it and a forked one (2):
    the same files, byte for byte (GeoTIFFs, PNGs, CSVs, GeoPackages), and the same report and outputs list."""
    import re

    from sim.app import outputs, run
    from sim.maps import frame

    sim = run.simulate(_scenario())
    folders = {}
    for n in (1, 2):
        monkeypatch.setattr(outputs, "MAP_PROCESSES", n)
        frame.LAYOUTS.clear()   # each as a run's first maps
        folders[n] = run.O.create_run_dir(sim.scenario, tmp_path / f"p{n}", False)
        run.write_run_folder(sim, folders[n])
    names = sorted(p.name for p in folders[1].iterdir())
    assert names == sorted(p.name for p in folders[2].iterdir()) and len(names) > 40
    run_to_run = {"summary.json", "grid_summary.json", "report.md", "report.html", ".gigacity-run"}
    for name in names:
        if name.endswith(".gpkg"):   # its bytes hold the time it was written: the layers are compared
            for layer in pyogrio.list_layers(folders[1] / name)[:, 0]:
                a, b = (pyogrio.read_dataframe(folders[n] / name, layer=layer) for n in (1, 2))
                assert a.equals(b), (name, layer)
        elif name not in run_to_run:
            assert (folders[1] / name).read_bytes() == (folders[2] / name).read_bytes(), name
    stamp = re.compile(rb"<dd>reading geodata [^<]*</dd>|run \d{4}-\d\d-\d\d \d\d:\d\d UTC|\d+\.\d+ s")
    for name in ("report.html", "report.md"):
        a, b = (stamp.sub(b"", (folders[n] / name).read_bytes()) for n in (1, 2))
        assert a == b, name
    summaries = [json.loads((folders[n] / "summary.json").read_text(encoding="utf-8")) for n in (1, 2)]
    assert summaries[0]["outputs"] == summaries[1]["outputs"]
    assert sum(1 for n in names if n.endswith(".png")) >= 15


def test_map_only_serving_distance_at_the_shown_pixels_is_the_full_ones():
    """The best-server distance map's raster computed at the pixels its preview shows alone (positions ``pos`` of a
    chunk) gives the values of the whole chunk at those positions, no-server pixels NaN."""
    from types import SimpleNamespace

    from sim.app import outputs
    from sim.grid import Grid

    rng = np.random.default_rng(4)
    grid = Grid("EPSG:32651", 340_000.0, 3_470_000.0, 100.0, (50, 40))
    land = np.flatnonzero(rng.random(2000) < 0.6)
    rasters = SimpleNamespace(grid=grid, land_flat=land, n_land=land.size)
    sectors = SimpleNamespace(x_m=340_000.0 + rng.random(5) * 4000.0, y_m=3_465_000.0 + rng.random(5) * 5000.0)
    best = rng.integers(-1, 5, land.size)
    values = outputs._serving_distance(rasters, sectors, SimpleNamespace(read=lambda key, a, b: best[a:b]), "L")
    full = values(100, 900)
    pos = np.array([0, 3, 17, 250, 798])
    assert np.isnan(full).any() and np.isfinite(full[pos]).any()
    np.testing.assert_array_equal(values(100, 900, pos), full[pos])
    assert not np.array_equal(values(100, 900, pos + 1), full[pos])   # other pixels, other distances


def test_hole_shares_counted_while_streaming_are_those_read_again():
    """The residents per coverage-holes class added up as the holes raster streams (outputs._counting_holes) are
    hole_shares_pct's, bit for bit; a chunk missing or twice, and the count is not complete (read again then)."""
    from sim.app import outputs, run
    from sim.pixelstore import chunks

    sim = run.simulate(_scenario())
    rasters = sim.inputs.rasters
    jobs = outputs.pixel_outputs(sim.scenario, rasters, sim.inputs.sectors, sim.store, sim.busy, sim.fibre_px,
                                 sim.speed_px is not None, list(sim.assessment.best_by_ran))
    counted = outputs._counting_holes(rasters, jobs, list(sim.assessment.best_by_ran))
    assert counted and set(counted) == set(sim.assessment.best_by_ran)
    for ran, count in counted.items():
        ref = outputs.hole_shares_pct(sim.scenario, rasters, sim.store, ran)
        for a, b in chunks(rasters.n_land):
            count(a, b)
        assert count.complete() and count.shares_pct() == ref and sum(ref) == pytest.approx(100.0)
        count(*chunks(rasters.n_land)[0])   # the first chunk again
        assert not count.complete()


def test_the_cells_table_is_finished_before_the_outputs_fork(tmp_path, monkeypatch):
    """write_run_folder while the busy hour's thread still builds the cells table (as on a 10 m grid, where the flow
    statistics outlast the assessment): the table is waited for here, before the forked writer of cells.csv starts,
    and the run folder holds it (the forked process used to wait forever for a thread it has no copy of)."""
    import threading
    from concurrent.futures import Future

    from sim.app import outputs, run

    sim = run.simulate(_scenario())
    table = sim.busy.cells
    pending = Future()
    sim.busy.cells_future = pending
    threading.Timer(1.0, pending.set_result, (table,)).start()
    monkeypatch.setattr(outputs, "MAP_PROCESSES", 2)
    folder = run.O.create_run_dir(sim.scenario, tmp_path / "r", False)
    run.write_run_folder(sim, folder)
    import pandas as pd

    written = pd.read_csv(folder / "cells.csv")
    assert len(table) > 0 and len(written) == len(table)
