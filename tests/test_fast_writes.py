"""The fast writers of the run folder's tables keep every value: ``cells.csv`` formatted column by column
(:func:`sim.report.files.csv_bytes`) is pandas' ``to_csv`` byte for byte, ``sites.gpkg`` written as Arrow
columns holds the layer pandas' row-by-row write holds, and the site table builders give the columns and
points of the straightforward way (one projection per row, one Python list per mast)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest

from sim.report import files
from sim.sites import MAX_SECTORS, SiteTable


def _pandas_csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _awkward_floats(rng, n: int) -> np.ndarray:
    """Floats where Python's repr and Arrow's shortest form differ in shape: whole numbers, |x| < 1e-4,
    |x| >= 1e16, Arrow's own exponents (1e+15), signed zeros, infinities, NaN, random bit patterns."""
    bits = rng.integers(0, 2 ** 63, n, dtype=np.uint64).view(np.float64)
    bits = np.where(np.isfinite(bits), bits, 1.5)
    return np.concatenate([
        bits, 10.0 ** rng.uniform(-8, 20, n), np.round(10.0 ** rng.uniform(0, 17, n)),
        rng.random(n).astype(np.float32).astype(np.float64) * 1e9,
        [0.0, -0.0, 1.0, -1.0, 1e15, 1e16, 9999999999999998.0, 1e-4, 9.99e-5, 1e-5, 5e-324, 1.7976931348623157e308,
         np.inf, -np.inf, np.nan, 348813696.0, 0.1, 123456789.5, 1e10, 12345678901.5, 2.0 ** 53, 2.0 ** 53 + 2],
    ])


def test_csv_bytes_are_pandas_to_csv_byte_for_byte():
    rng = np.random.default_rng(20251130)
    x = _awkward_floats(rng, 3000)
    n = x.size
    df = pd.DataFrame({
        "layer": np.where(rng.random(n) < 0.5, "cmcc-n41", "ctcu-n78 小区"),   # non-ASCII kept as UTF-8
        "sector": np.arange(n, dtype=np.int64), "small": rng.integers(-100, 100, n).astype(np.int8),
        "unsigned": rng.integers(0, 2 ** 63, n, dtype=np.uint64), "saturated": rng.random(n) < 0.3,
        "value": x, "shuffled": rng.permutation(x),
        "district": pd.array(np.where(rng.random(n) < 0.1, None, "310101"), dtype=object),
    })
    fast = files.csv_bytes(df)
    assert fast is not None and fast == _pandas_csv(df)
    assert files.csv_bytes(df.rename(columns={"layer": "名"})) == _pandas_csv(df.rename(columns={"layer": "名"}))


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"a": ["x,y", "z"], "b": [1.0, 2.0]}),                   # a value pandas quotes
    pd.DataFrame({"a": ['say "hi"', "z"], "b": [1, 2]}),
    pd.DataFrame({"a,b": [1, 2], "c": [1, 2]}),                            # a quoted column name
    pd.DataFrame({"a": np.float32([0.1, 2.5]), "b": [1, 2]}),              # float32: numpy's own shortest form
    pd.DataFrame({"a": pd.Categorical(["x", "y"]), "b": [1, 2]}),
    pd.DataFrame({"a": [1, None], "b": [{"k": 1}, [2]]}),                  # objects other than strings
    pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": [1, 2]}),
    pd.DataFrame({"a": [1.5, 2.5]}),                                       # one column
    pd.DataFrame({"a": pd.Series([], dtype=float), "b": pd.Series([], dtype=str)}),   # no row
])
def test_write_csv_leaves_other_frames_to_pandas(tmp_path, frame):
    """Frames the column formatter does not cover are written by pandas, so every file is pandas' file."""
    assert files.csv_bytes(frame) is None
    assert files.write_csv(tmp_path / "t.csv", frame).read_bytes() == _pandas_csv(frame)


def test_write_csv_of_rows_is_pandas_csv(tmp_path):
    rows = [{"key": "bs_5g_per_10k", "value": 12.5, "passed": True, "n": 3},
            {"key": "pop_cov", "value": float("nan"), "passed": False, "n": 0}]
    assert files.write_csv(tmp_path / "r.csv", rows).read_bytes() == _pandas_csv(pd.DataFrame(rows))


def _table(rng, n_sites: int, moved_sector: bool = False) -> SiteTable:
    """Sites with 1-3 sectors on 1-3 of three layers (rows shuffled), a few outside every district."""
    rows = []
    for s in range(n_sites):
        x, y = 340_000.0 + rng.uniform(0, 50_000), 3_450_000.0 + rng.uniform(0, 40_000)
        layers = sorted(rng.choice(["cmcc-n41", "cmcc-n28", "ctcu-n78"], rng.integers(1, 4), replace=False))
        for layer in layers:
            for sec in range(int(rng.integers(1, 4))):
                rows.append((s * 7 + 3, sec, layer, x, y, int(rng.integers(-1, 16))))
    rows = [rows[i] for i in rng.permutation(len(rows))]
    site_id, sector, layer, x, y, d = (np.array(c) for c in zip(*rows))
    if moved_sector:
        x = x.copy()
        x[0] += 30.0   # one sector-carrier away from its mast: every row is projected
    d = np.array([d[site_id == s][0] for s in site_id], dtype=np.int16)   # one district per site
    n = len(rows)
    return SiteTable(site_id=site_id.astype(np.int32), sector=sector.astype(np.int8),
                     ran=np.array([lay.split("-")[0] for lay in layer]), layer=layer, x_m=x, y_m=y,
                     lon_deg=np.zeros(n), lat_deg=np.zeros(n), h_bs_m=np.full(n, 30, np.float32),
                     az_deg=np.zeros(n, np.float32), tilt_deg=np.full(n, 6, np.float32),
                     ptx_dbm=np.full(n, 46, np.float32), g_max_dbi=np.full(n, 17, np.float32),
                     hpbw_h_deg=np.full(n, 65, np.float32), hpbw_v_deg=np.full(n, 10, np.float32),
                     scenario=np.full(n, "uma"), district_idx=d, source=np.full(n, "density"))


def _reference_layers(t: SiteTable):
    """n_carriers and layers per mast the straightforward way: a Python list of sorted layer names per mast."""
    ids = np.unique(t.site_id)
    names = [sorted({str(lay) for lay in t.layer[t.site_id == s]}) for s in ids]
    return [len(n) for n in names], [",".join(n) for n in names]


@pytest.mark.parametrize("moved_sector", [False, True])
def test_site_tables_as_the_straightforward_way(moved_sector):
    t = _table(np.random.default_rng(7), 300, moved_sector)
    codes = [f"3101{k:02d}" for k in range(16)]
    m = t.mast_columns(codes)
    n_carriers, layers = _reference_layers(t)
    assert m["n_carriers"].tolist() == n_carriers and m["layers"].tolist() == layers
    assert m["n_sectors"].tolist() == [len({int(v) for v in t.sector[t.site_id == s]}) for s in m["site_id"]]
    assert m["n_sectors"].max() <= MAX_SECTORS and m["layers"].dtype == object
    # points: the WKB of projecting every row / every mast with GeoDataFrame.to_crs
    gdf = t.to_geodataframe("EPSG:4326")
    ref = gpd.GeoDataFrame(geometry=gpd.points_from_xy(t.x_m, t.y_m), crs="EPSG:32651").to_crs("EPSG:4326")
    assert gdf.crs == ref.crs and list(gdf.geometry.to_wkb()) == list(ref.geometry.to_wkb())
    assert list(gdf.columns[:-1]) == list(t.__dataclass_fields__)
    masts = t.masts_to_geodataframe(codes, "EPSG:4326")
    ref = gpd.GeoDataFrame(geometry=gpd.points_from_xy(m["x_m"], m["y_m"]), crs="EPSG:32651").to_crs("EPSG:4326")
    assert list(masts.geometry.to_wkb()) == list(ref.geometry.to_wkb())
    assert masts.drop(columns="geometry").equals(t.masts_to_geodataframe(codes, "EPSG:4326", columns=m)
                                                 .drop(columns="geometry"))
    assert t.select(np.zeros(len(t), bool)).mast_columns(codes)["layers"].size == 0


def test_gpkg_arrow_write_is_the_row_by_row_layer(tmp_path, monkeypatch):
    t = _table(np.random.default_rng(3), 200)
    layers = {"sites": t.masts_to_geodataframe(None, "EPSG:4326"), "sectors": t.to_geodataframe("EPSG:4326")}
    assert files._arrow_writes()   # pyarrow is a dependency and pyogrio's GDAL takes Arrow (>= 3.8)
    fast = files.write_gpkg_layers(tmp_path / "fast.gpkg", layers)
    monkeypatch.setattr(files, "_arrow_writes", lambda: False)
    slow = files.write_gpkg_layers(tmp_path / "slow.gpkg", layers)
    for name in layers:
        a, b = (pyogrio.read_info(p, layer=name) for p in (fast, slow))
        for key in ("fields", "dtypes", "geometry_type", "features", "crs"):
            assert np.array_equal(np.asarray(a[key]), np.asarray(b[key])), (name, key)
        ga, gb = (gpd.read_file(p, layer=name) for p in (fast, slow))
        assert ga.drop(columns="geometry").equals(gb.drop(columns="geometry"))
        assert list(ga.geometry.to_wkb()) == list(gb.geometry.to_wkb())


def test_write_csv_in_a_writer_thread_writes_the_frame_as_handed_over(tmp_path):
    """Inside background_writes the CSV is written by a writer thread, from the frame as it was handed over."""
    df = pd.DataFrame({"cell": np.arange(5000), "load": np.random.default_rng(1).random(5000)})
    expected = _pandas_csv(df)
    with files.background_writes(2):
        p = files.write_csv(tmp_path / "cells.csv", df)
        df["load"] = 0.0   # the caller's frame changes after the hand-off
        rows = files.write_csv(tmp_path / "rows.csv", [{"a": 1, "b": "x"}])
    assert p.read_bytes() == expected and rows.read_bytes() == b"a,b\n1,x\n"
