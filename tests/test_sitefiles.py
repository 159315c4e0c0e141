"""Tests of sim.sitefiles: the CSV, GeoJSON and OpenCellID site-file readers.

Fixture files under tests/fixtures/ (hand-made; coordinates of Shanghai landmarks):
People's Square 121.4737 E 31.2304 N (Huangpu), Lujiazui 121.5055/31.2397 (Pudong),
Xujiahui 121.4365/31.1951 (Xuhui), Chengqiao 121.3975/31.6228 (Chongming); outside the
region: Suzhou 120.6/31.3, Beijing 116.4/39.9.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.errors import InputError, SiteFileError
from sim.sitefiles import OPERATOR_OF_MNC, read_opencellid, read_sites_csv, read_sites_geojson
from sim.sites import PhysicalSites

FIX = Path(__file__).parent / "fixtures"

ABS_TOL_M = 0.01
"""Position tolerance after a WGS84 -> UTM 51N -> WGS84 round trip (pyproj is sub-mm)."""

HUANGPU, XUHUI, PUDONG, CHONGMING = 0, 1, 10, 15
OPS = ["cmcc", "cucc", "ctcc", "cbn"]
BANDS = ["n28", "n41", "n78"]


# --------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------


def test_csv_good_file(districts):
    sites, rep = read_sites_csv(FIX / "sites_good.csv", districts)
    assert (rep.n_rows, rep.n_kept, rep.n_bad, rep.n_outside) == (4, 4, 0, 0)
    assert sites.district_idx.tolist() == [HUANGPU, PUDONG, XUHUI, CHONGMING]
    assert sites.site_ref.tolist() == ["SH-001", "SH-002", "SH-003", "SH-004"]
    np.testing.assert_allclose(sites.lon_deg, [121.4737, 121.5055, 121.4365, 121.3975], atol=1e-12)
    assert np.isnan(sites.h_bs_m[1]) and np.isnan(sites.tilt_deg[1]) and np.isnan(sites.az_deg[1]).all()
    assert sites.operator.tolist() == ["cmcc", "cmcc", "ctcc", "cucc"]
    # positions are UTM 51N of the given lon/lat: round trip through PhysicalSites.from_xy
    back = PhysicalSites.from_xy(sites.x_m, sites.y_m, sites.district_idx)
    np.testing.assert_allclose(back.lon_deg * 111_000, sites.lon_deg * 111_000, atol=ABS_TOL_M)


def test_csv_bad_rows_are_counted_with_lines(districts):
    _, rep = read_sites_csv(FIX / "sites_bad.csv", districts, operators=OPS, bands=BANDS)
    assert (rep.n_rows, rep.n_kept, rep.n_bad, rep.n_outside, rep.n_filtered) == (10, 2, 7, 1, 0)
    assert [str(b) for b in rep.bad_rows] == [
        "line 3, column height_m: expected a height in (0, 500] m, got 'tall'",
        "line 4, column lat: expected a latitude in [-90, 90] degrees, got '95.1'",
        "line 5, column lon/lat: lon/lat look swapped (lon 31.1951, lat 121.436); the region lies near lon 121, lat 31",
        "line 7, column operator: unknown operator 'orange'; expected one of cbn, cmcc, ctcc, cucc",
        "line 8, column band: unknown band 'n999'; expected one of n28, n41, n78",
        "line 9, column azimuths: expected 1 to 12 bearings in [0, 360) degrees separated by ';', got '0;x;240'",
        "line 12, column lon: expected a longitude in degrees, got 'east'",
    ]
    assert rep.summary() == "sites_bad.csv: 10 rows, 2 kept (2 sites), 7 bad, 1 outside, 0 filtered"


def test_csv_raise_on_first_bad_row(districts):
    msg = r"sites_bad.csv: line 3, column height_m: expected a height in \(0, 500\] m, got 'tall'$"
    with pytest.raises(SiteFileError, match=msg):
        read_sites_csv(FIX / "sites_bad.csv", districts, on_bad_row="raise")


def test_csv_file_level_errors(districts, tmp_path):
    with pytest.raises(SiteFileError, match=r"sites_semicolon.csv: line 1: expected columns lon, lat separated by ',', "
                                            r"got header 'site_id;lon;lat;height_m'; the header looks ';'-delimited"):
        read_sites_csv(FIX / "sites_semicolon.csv", districts)
    sites, rep = read_sites_csv(FIX / "sites_semicolon.csv", districts, delimiter=";")
    assert rep.n_kept == 2
    with pytest.raises(SiteFileError, match=r"sites_swapped.csv: columns lon/lat: lon/lat look swapped in 3 of 3 rows "
                                            r"\(line 2: lon 31.2304, lat 121.474\)"):
        read_sites_csv(FIX / "sites_swapped.csv", districts)
    with pytest.raises(SiteFileError, match="no_such_file.csv: file not found"):
        read_sites_csv(FIX / "no_such_file.csv", districts)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SiteFileError, match="empty.csv: line 1: expected a header line with columns lon, lat"):
        read_sites_csv(empty, districts)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("lon,lat\n121.47,31.23\n121.47,31.23,30,extra\n")
    with pytest.raises(SiteFileError, match=r"ragged.csv: not a valid CSV \(.*line 3.*\)"):
        read_sites_csv(ragged, districts)
    with pytest.raises(InputError, match="on_bad_row: expected 'skip' or 'raise', got 'ignore'"):
        read_sites_csv(FIX / "sites_good.csv", districts, on_bad_row="ignore")


def test_csv_without_region_keeps_everything(tmp_path):
    sites, rep = read_sites_csv(FIX / "sites_bad.csv", None, operator="cmcc")
    assert rep.n_outside == 0 and rep.n_kept == 5 and set(sites.district_idx) == {-1}
    assert sites.operator.tolist()[:2] == ["cmcc", "orange"]    # no allowed list: any name; default fills blanks


def test_geojson_reader(districts):
    sites, rep = read_sites_geojson(FIX / "sites.geojson", districts, operators=OPS, bands=BANDS)
    assert (rep.n_rows, rep.n_kept, rep.n_bad, rep.n_outside) == (5, 2, 2, 1)
    assert [str(b) for b in rep.bad_rows] == [
        "feature 3, column height_m: expected a height in (0, 500] m, got '-5'",
        "feature 4, column geometry: expected a Point, got LineString",
    ]
    assert sites.site_ref.tolist() == ["G-1", "G-2"] and sites.district_idx.tolist() == [HUANGPU, PUDONG]
    assert sites.az_deg[0].tolist() == [10.0, 130.0, 250.0] and sites.h_bs_m[0] == 32.0
    with pytest.raises(SiteFileError, match=r"sites.geojson: feature 3, column height_m: expected a height"):
        read_sites_geojson(FIX / "sites.geojson", districts, on_bad_row="raise")


def test_opencellid_fixture_counts_and_messages(districts):
    sites, rep = read_opencellid(FIX / "opencellid_sample.csv", districts)
    # 16 rows: 3 filtered (GSM, MCC 310, MNC 460-20), 4 bad, 2 outside (Beijing, Suzhou), 7 cells kept
    assert (rep.n_rows, rep.n_filtered, rep.n_bad, rep.n_outside, rep.n_kept) == (16, 3, 4, 2, 7)
    # 7 cells -> 5 sites: the three China Mobile cells at People's Square (460-00 NR, 460-00 LTE,
    # 460-02 LTE within 0.03 m) are one site; China Unicom at the same spot is its own site
    assert rep.n_sites == 5
    assert sites.operator.tolist() == ["cmcc", "cucc", "ctcc", "ctcc", "cbn"]
    assert sites.n_cells.tolist() == [3, 1, 1, 1, 1]
    assert sites.site_ref[0] == "460-0-6201-1001"
    assert sites.district_idx.tolist() == [HUANGPU, HUANGPU, XUHUI, PUDONG, CHONGMING]
    assert [str(b) for b in rep.bad_rows] == [
        "line 12, column lon: expected a longitude in degrees, got 'abc'",
        "line 13, column lat: expected a latitude in [-90, 90] degrees, got '95'",
        "line 14, column lon/lat: lon/lat look swapped (lon 31.2304, lat 121.474); "
        "the region lies near lon 121, lat 31",
        "line 16, column mcc: expected an integer MCC, got 'x46'",
    ]


def test_opencellid_mnc_table_and_filters(districts, tmp_path):
    # ITU-T E.212 MNCs of China
    assert {m for m, o in OPERATOR_OF_MNC.items() if o == "cmcc"} == {0, 2, 4, 7, 8}
    assert {m for m, o in OPERATOR_OF_MNC.items() if o == "cucc"} == {1, 6, 9}
    assert {m for m, o in OPERATOR_OF_MNC.items() if o == "ctcc"} == {3, 5, 11}
    assert OPERATOR_OF_MNC[15] == "cbn"
    sites, rep = read_opencellid(FIX / "opencellid_sample.csv", districts, radios=("NR",), operators=("ctcc",))
    assert rep.n_sites == 1 and sites.site_ref.tolist() == ["460-11-8401-3001"]
    # headerless per-country export: same rows, lines counted from 1
    body = (FIX / "opencellid_sample.csv").read_text().splitlines()[1:]
    headless = tmp_path / "460.csv"
    headless.write_text("\n".join(body) + "\n")
    _, rep2 = read_opencellid(headless, districts)
    assert (rep2.n_rows, rep2.n_kept, rep2.n_sites) == (16, 7, 5) and rep2.bad_rows[0].line == 11
    with pytest.raises(SiteFileError,
                       match=r"460.csv: line 11, column lon: expected a longitude in degrees, got 'abc'"):
        read_opencellid(headless, districts, on_bad_row="raise")
    with pytest.raises(InputError, match="operators: expected ids among cmcc, cucc, ctcc, cbn, got 'chinamobile'"):
        read_opencellid(headless, districts, operators=("chinamobile",))


def test_opencellid_file_level_errors(districts, tmp_path):
    semi = tmp_path / "semi.csv"
    semi.write_text("NR;460;0;6201;1;0;121.47;31.23;500;1;1;0;0;0\n")
    msg = r"semi.csv: line 1: expected 14 comma-separated columns radio,mcc,net,\.\.\.; the line looks ';'-delimited"
    with pytest.raises(SiteFileError, match=msg):
        read_opencellid(semi, districts)
    swapped = tmp_path / "swapped.csv"
    swapped.write_text("".join(f"LTE,460,0,1,{i},0,31.23,121.4{i},500,1,1,0,0,0\n" for i in range(5)))
    with pytest.raises(SiteFileError, match=r"swapped.csv: columns lon/lat: lon/lat look swapped in 5 of 5 rows"):
        read_opencellid(swapped, districts)
    with pytest.raises(SiteFileError, match="missing.csv: file not found"):
        read_opencellid(tmp_path / "missing.csv", districts)
