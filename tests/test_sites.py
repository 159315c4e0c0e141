"""Tests of sim.sites: the sector-carrier table, the site-file readers, density placement.

Fixture files under tests/fixtures/ (hand-made; coordinates of Shanghai landmarks):
People's Square 121.4737 E 31.2304 N (Huangpu), Lujiazui 121.5055/31.2397 (Pudong),
Xujiahui 121.4365/31.1951 (Xuhui), Chengqiao 121.3975/31.6228 (Chongming); outside the
region: Suzhou 120.6/31.3, Beijing 116.4/39.9.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from sim.errors import InputError, SiteFileError
from sim.sites import (
    OPERATOR_OF_MNC,
    CarrierSpec,
    PhysicalSites,
    SiteClass,
    SiteTable,
    allocate_counts,
    build_site_table,
    build_small_cells,
    district_weights,
    place_by_density,
    read_opencellid,
    read_sites_csv,
    read_sites_geojson,
)

FIX = Path(__file__).parent / "fixtures"

ABS_TOL_M = 0.01
"""Position tolerance after a WGS84 -> UTM 51N -> WGS84 round trip (pyproj is sub-mm)."""
ANGLE_TOL_DEG = 1e-3
"""Bearing tolerance (float32 storage of values < 360: resolution ~3e-5 deg)."""
SPACING_TOL_FRAC = 0.15
"""How far the final lattice spacing may sit from the area estimate sqrt(2A/(sqrt3 n))."""

HUANGPU, XUHUI, PUDONG, CHONGMING = 0, 1, 10, 15
OPS = ["cmcc", "cucc", "ctcc", "cbn"]
BANDS = ["n28", "n41", "n78"]
CLASSES = {"central": SiteClass("uma", 30.0), "suburban": SiteClass("uma", 30.0), "rural": SiteClass("rma", 35.0)}
N41 = CarrierSpec("cmcc-n41", "n41", ptx_dbm=46.0, g_max_dbi=17.0, hpbw_h_deg=65.0, hpbw_v_deg=10.0, tilt_deg=6.0)
N28 = CarrierSpec("cmcc-n28", "n28", ptx_dbm=43.0, g_max_dbi=14.0, hpbw_h_deg=65.0, hpbw_v_deg=12.0, tilt_deg=3.0)
N78 = CarrierSpec("ctcu-n78", "n78", ptx_dbm=46.0, g_max_dbi=17.0, hpbw_h_deg=65.0, hpbw_v_deg=10.0, tilt_deg=6.0)


@pytest.fixture(scope="module")
def district_class(districts):
    central = {"310101", "310104", "310105", "310106", "310107", "310109", "310110"}
    return ["central" if c in central else "rural" if c == "310151" else "suburban" for c in districts["code"]]


# --------------------------------------------------------------------------------------
# allocate_counts, district_weights
# --------------------------------------------------------------------------------------


def test_allocate_counts_largest_remainder_hand_example():
    # hand evaluation: quotas 3.5, 2.1, 1.4 -> floors 3, 2, 1 (6); the 7th to the largest remainder (0.5)
    assert allocate_counts(7, [0.5, 0.3, 0.2]).tolist() == [4, 2, 1]
    # ties go to the lower index: quotas 10/3 each -> 3, 3, 3 plus one to index 0
    assert allocate_counts(10, [1, 1, 1]).tolist() == [4, 3, 3]
    assert allocate_counts(0, [1, 2]).tolist() == [0, 0]
    assert allocate_counts(5, [0, 1]).dtype == np.int64


@given(total=st.integers(0, 10**6),
       weights=st.lists(st.floats(0.0, 1e6, allow_nan=False), min_size=1, max_size=20).filter(lambda w: sum(w) > 0))
def test_allocate_counts_property(total, weights):
    counts = allocate_counts(total, weights)
    quota = total * np.asarray(weights) / np.sum(weights)
    assert counts.sum() == total and np.all(counts >= 0) and np.all(np.abs(counts - quota) < 1.0 + 1e-9)


@pytest.mark.parametrize("total", [1, 999, 100_000])
@pytest.mark.parametrize("rule", ["population", "area", "blend"])
def test_allocate_counts_exact_total(districts, total, rule):
    counts = allocate_counts(total, district_weights(districts, rule))
    assert counts.sum() == total and counts.shape == (16,) and counts.min() >= 0
    quota = total * district_weights(districts, rule)
    assert np.all(np.abs(counts - quota) < 1.0)     # Hamilton: each count within 1 of its quota


def test_district_weights_blend_is_the_weighted_sum(districts):
    pop = districts["population"].to_numpy(float)
    area = districts["area_km2_official"].to_numpy(float)
    w = district_weights(districts, "blend", population_weight=0.7)
    np.testing.assert_allclose(w, 0.7 * pop / pop.sum() + 0.3 * area / area.sum(), rtol=1e-12)
    # Pudong: 5,681,512 of 24,870,895 residents (census table) -> 22.84 %
    assert district_weights(districts, "population")[PUDONG] == pytest.approx(5_681_512 / 24_870_895, rel=1e-9)


@pytest.mark.parametrize(("total", "weights", "match"), [
    (-1, [1.0], "total: expected an integer >= 0, got -1"),
    (2.5, [1.0], "total: expected an integer >= 0, got 2.5"),
    (3, [0.0, 0.0], "weights: expected finite weights >= 0 with a positive sum"),
    (3, [1.0, -1.0], "weights: expected finite weights"),
    (3, [1.0, np.nan], "weights: expected finite weights"),
])
def test_allocate_counts_errors(total, weights, match):
    with pytest.raises(InputError, match=match):
        allocate_counts(total, weights)


def test_district_weights_unknown_rule(districts):
    with pytest.raises(InputError, match="rule: expected 'population', 'area' or 'blend', got 'people'"):
        district_weights(districts, "people")


# --------------------------------------------------------------------------------------
# place_by_density
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def placement(districts):
    counts = allocate_counts(3000, district_weights(districts, "population"))
    return counts, place_by_density(districts, counts, np.random.default_rng(7), jitter_frac=0.25)


def test_density_counts_per_district_are_exact(placement):
    counts, p = placement
    assert np.bincount(p.district_idx, minlength=16).tolist() == counts.tolist()
    assert p.x_m.dtype == np.float64 and p.district_idx.dtype == np.int16


def test_density_sites_lie_inside_their_district(districts, placement):
    _, p = placement
    geoms = districts.geometry.values
    inside = np.array([shapely.contains_xy(geoms[d], x, y) for x, y, d in zip(p.x_m, p.y_m, p.district_idx)])
    assert inside.all()


def test_density_nearest_neighbours_respect_jitter_bound(districts, placement):
    # lattice neighbours are s apart and each moves <= jitter * s: NN >= (1 - 2 jitter) s
    counts, p = placement
    jitter = 0.25
    for k in np.flatnonzero(counts > 1):
        m = p.district_idx == k
        pts = np.c_[p.x_m[m], p.y_m[m]]
        nn, _ = cKDTree(pts).query(pts, k=2)
        assert nn[:, 1].min() >= (1 - 2 * jitter) * p.spacing_m[k] * (1 - 1e-9), districts["name_en"].iloc[k]
        area = districts.geometry.values[k].area
        s0 = math.sqrt(2 * area / (math.sqrt(3) * counts[k]))   # hexagonal lattice density 2/(sqrt3 s^2)
        assert abs(p.spacing_m[k] / s0 - 1) < SPACING_TOL_FRAC


def test_density_without_jitter_is_a_hexagonal_lattice(districts):
    counts = np.zeros(16, np.int64)
    counts[PUDONG] = 400
    p = place_by_density(districts, counts, np.random.default_rng(3), jitter_frac=0.0)
    pts = np.c_[p.x_m, p.y_m]
    nn, _ = cKDTree(pts).query(pts, k=2)
    # every lattice neighbour is exactly one spacing away
    np.testing.assert_allclose(nn[:, 1], p.spacing_m[PUDONG], rtol=1e-9)
    assert np.isnan(p.spacing_m[HUANGPU])


def test_density_same_seed_same_sites_other_seed_other_sites(districts):
    counts = allocate_counts(500, district_weights(districts, "area"))
    a = place_by_density(districts, counts, np.random.default_rng(11))
    b = place_by_density(districts, counts, np.random.default_rng(11))
    c = place_by_density(districts, counts, np.random.default_rng(12))
    np.testing.assert_array_equal(a.x_m, b.x_m)
    np.testing.assert_array_equal(a.y_m, b.y_m)
    assert not np.array_equal(a.x_m, c.x_m)


def test_density_too_dense_for_the_grid_names_district_and_count(districts):
    # Huangpu 20.6 km2 with 100,000 sites: s0 = sqrt(2 * 20.6e6 / (sqrt3 * 1e5)) = 15 m < 2 x 25 m
    counts = np.zeros(16, np.int64)
    counts[HUANGPU] = 100_000
    with pytest.raises(InputError, match=r"district 310101 Huangpu: 100000 sites need a lattice spacing of 15 m, "
                                         r"below the minimum spacing 50 m \(2 x grid resolution\); "
                                         r"about 9\d\d\d sites fit"):
        place_by_density(districts, counts, np.random.default_rng(0), grid_res_m=25.0)
    counts[HUANGPU] = 2000      # s0 = 154 m
    with pytest.raises(InputError,
                       match=r"310101 Huangpu: 2000 sites .* below the minimum spacing 200 m \(min_spacing_m\)"):
        place_by_density(districts, counts, np.random.default_rng(0), min_spacing_m=200.0, grid_res_m=25.0)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"jitter_frac": 0.5}, r"jitter_frac: expected a number in \[0, 0.5\), got 0.5"),
    ({"counts_per_district": [1, 2]}, "counts_per_district: expected 16 integers >= 0"),
    ({"counts_per_district": [-1] + [0] * 15}, "counts_per_district: expected 16 integers >= 0"),
    ({"rng": 42}, "rng: expected a numpy.random.Generator, got int"),
])
def test_density_argument_errors(districts, kwargs, match):
    args = {"counts_per_district": np.ones(16, np.int64), "rng": np.random.default_rng(0), "jitter_frac": 0.25}
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        place_by_density(districts, args["counts_per_district"], args["rng"], args["jitter_frac"])


# --------------------------------------------------------------------------------------
# build_site_table and SiteTable
# --------------------------------------------------------------------------------------


def _density_table(districts, district_class, total=200, seed=5, carriers=(N41, N28)):
    rng = np.random.default_rng(seed)
    counts = allocate_counts(total, district_weights(districts, "population"))
    p = place_by_density(districts, counts, rng)
    return counts, build_site_table(p.to_sites(), ran="cmcc", carriers=list(carriers), rng=rng,
                                    district_class=district_class, site_classes=CLASSES)


def test_build_site_table_rows_sectors_and_classes(districts, district_class):
    counts, t = _density_table(districts, district_class)
    assert t.n_sites == 200 and t.n_sectors == 200 * 3 * 2 and len(t) == t.n_sectors
    assert t.layers == ("cmcc-n41", "cmcc-n28")
    assert t.sites_per_district(16).tolist() == counts.tolist()
    # three sectors 120 deg apart on every site (bearings mod 360)
    n41 = t.for_layer("cmcc-n41")
    az = n41.az_deg.reshape(-1, 3).astype(float)
    np.testing.assert_allclose((az[:, 1] - az[:, 0]) % 360, 120.0, atol=ANGLE_TOL_DEG)
    np.testing.assert_allclose((az[:, 2] - az[:, 0]) % 360, 240.0, atol=ANGLE_TOL_DEG)
    assert np.unique(np.round(az[:, 0] % 120, 3)).size > 100           # rotated per site
    # class parameters: Chongming RMa 35 m, the rest UMa 30 m
    rural = t.district_idx == CHONGMING
    assert set(t.scenario[rural]) == {"rma"} and np.all(t.h_bs_m[rural] == 35.0)
    assert set(t.scenario[~rural]) == {"uma"} and np.all(t.h_bs_m[~rural] == 30.0)
    # carrier parameters and tilt default from the carrier
    n28 = t.for_layer("cmcc-n28")
    assert np.all(n28.ptx_dbm == 43.0) and np.all(n28.tilt_deg == 3.0) and np.all(n28.hpbw_v_deg == 12.0)
    assert set(t.source) == {"density"} and set(t.ran) == {"cmcc"}
    for name, dt in [("site_id", np.int32), ("sector", np.int8), ("x_m", np.float64), ("h_bs_m", np.float32),
                     ("az_deg", np.float32), ("ptx_dbm", np.float32), ("district_idx", np.int16)]:
        assert getattr(t, name).dtype == dt, name


def test_build_site_table_same_seed_same_table(districts, district_class):
    _, a = _density_table(districts, district_class, seed=9)
    _, b = _density_table(districts, district_class, seed=9)
    for name in ("x_m", "y_m", "az_deg", "site_id", "layer"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_build_site_table_keeps_file_attributes(districts, district_class):
    sites, _ = read_sites_csv(FIX / "sites_good.csv", districts)
    t = build_site_table(sites, ran="x", carriers=[N41, N28, N78], rng=np.random.default_rng(0),
                         district_class=district_class, site_classes=CLASSES, site_id_start=100)
    s1 = t.select(t.site_id == 100)          # SH-001: n41 only, 35 m, 0/120/240, tilt 6
    assert s1.layers == ("cmcc-n41",) and s1.az_deg.tolist() == [0.0, 120.0, 240.0] and set(s1.h_bs_m) == {35.0}
    s3 = t.select(t.site_id == 102)          # SH-003: n78, four given sectors, 28.5 m, tilt 4
    assert s3.layers == ("ctcu-n78",) and s3.az_deg.tolist() == [30.0, 150.0, 270.0, 330.0]
    assert set(s3.tilt_deg) == {4.0} and set(s3.h_bs_m) == {28.5}
    s2 = t.select(t.site_id == 101)          # SH-002: nothing given -> all carriers, class height 30 m
    assert s2.layers == ("cmcc-n41", "cmcc-n28", "ctcu-n78") and set(s2.h_bs_m) == {30.0}
    s4 = t.select(t.site_id == 103)          # SH-004: Chongming -> RMa, own height 40 m
    assert set(s4.scenario) == {"rma"} and set(s4.h_bs_m) == {40.0}
    assert set(t.source) == {"file:sites_good.csv"}


def test_build_site_table_errors(districts, district_class):
    sites, _ = read_sites_csv(FIX / "sites_good.csv", districts)
    rng = np.random.default_rng(0)
    with pytest.raises(InputError,
                       match=r"site SH-003 has band\(s\) 'n78', none of the carriers of 'cmcc' \(n41, n28\)"):
        build_site_table(sites, ran="cmcc", carriers=[N41, N28], rng=rng, district_class=district_class,
                         site_classes=CLASSES)
    with pytest.raises(InputError, match="no parameters for district class 'rural'"):
        build_site_table(sites, ran="cmcc", carriers=[N41], rng=rng, district_class=district_class,
                         site_classes={"central": CLASSES["central"], "suburban": CLASSES["suburban"]})
    nowhere, _ = read_sites_csv(FIX / "sites_good.csv", None)
    with pytest.raises(InputError, match=r"site 0 has district -1; expected 0..15 \(read the file with a region\)"):
        build_site_table(nowhere, ran="cmcc", carriers=[N41, N28, N78], rng=rng, district_class=district_class,
                         site_classes=CLASSES)
    with pytest.raises(InputError, match="carriers: expected at least one carrier for radio network 'cmcc'"):
        build_site_table(sites, ran="cmcc", carriers=[], rng=rng, site_class=CLASSES["central"])
    with pytest.raises(InputError, match="scenario: expected one of uma, umi, rma, got 'urban'"):
        SiteClass("urban", 30.0)


def test_small_cells_are_umi_in_central_districts_only(districts):
    counts = np.zeros(16, np.int64)
    counts[[HUANGPU, XUHUI]] = [30, 40]
    small = CarrierSpec("cmcc-n41", "n41", ptx_dbm=30.0, g_max_dbi=6.0, hpbw_h_deg=360.0, hpbw_v_deg=30.0, tilt_deg=0.0)
    t = build_small_cells(districts, counts, np.random.default_rng(1), ran="cmcc", carriers=[small],
                          site_id_start=5000)
    assert t.n_sites == 70 and t.n_sectors == 70                   # one sector per small cell
    assert set(t.scenario) == {"umi"} and set(t.h_bs_m) == {10.0}   # TR 38.901 Table 7.4.1-1 UMi h_BS 10 m
    assert t.sites_per_district(16).tolist() == counts.tolist() and t.site_id.min() == 5000


def test_site_table_select_concat_geodataframe(districts, district_class):
    _, a = _density_table(districts, district_class, total=20, carriers=(N41,))
    _, b = _density_table(districts, district_class, total=10, seed=6, carriers=(N78,))
    both = a.concat(b)
    assert both.n_sites == 30 and both.n_sectors == a.n_sectors + b.n_sectors   # overlapping ids shifted
    assert both.site_id[a.n_sectors:].min() == a.site_id.max() + 1
    assert both.for_layer("ctcu-n78").n_sectors == b.n_sectors and both.for_layer("nope").n_sectors == 0
    assert both.sites_per_district(16, ran="cmcc").sum() == 30         # both built with ran "cmcc"
    gdf = both.to_geodataframe("EPSG:4326")
    np.testing.assert_allclose(gdf.geometry.x, both.lon_deg, atol=1e-7)
    np.testing.assert_allclose(gdf.geometry.y, both.lat_deg, atol=1e-7)
    assert {"site_id", "layer", "ptx_dbm", "scenario", "source"} <= set(gdf.columns)
    pudong = both.select(both.district_idx == PUDONG)
    assert pudong.sites_per_district(16)[PUDONG] == both.sites_per_district(16)[PUDONG] > 0
    assert SiteTable.empty().n_sites == 0


def test_site_table_validation(districts, district_class):
    _, t = _density_table(districts, district_class, total=5, carriers=(N41,))
    cols = {name: getattr(t, name) for name in t.__dataclass_fields__}
    with pytest.raises(InputError, match="SiteTable: x_m: expected 15 rows like site_id, got 14"):
        SiteTable(**{**cols, "x_m": cols["x_m"][:-1]})
    with pytest.raises(InputError, match="scenario: expected one of uma, umi, rma, got 'urban'"):
        SiteTable(**{**cols, "scenario": np.full(15, "urban")})
    with pytest.raises(InputError, match=r"az_deg: expected bearings in \[0, 360\) deg"):
        SiteTable(**{**cols, "az_deg": cols["az_deg"] + 360})
    with pytest.raises(InputError, match="site_id: expected integers"):
        SiteTable(**{**cols, "site_id": cols["site_id"] + 0.5})
    with pytest.raises(InputError, match="ptx_dbm: expected finite values"):
        SiteTable(**{**cols, "ptx_dbm": np.full(15, np.nan)})
    with pytest.raises(InputError, match="ran: expected strings"):
        SiteTable(**{**cols, "ran": np.zeros(15)})


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
    with pytest.raises(SiteFileError, match=r"sites_bad.csv: line 3, column height_m: expected a height in \(0, 500\] m, "
                                            r"got 'tall'$"):
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
        "line 14, column lon/lat: lon/lat look swapped (lon 31.2304, lat 121.474); the region lies near lon 121, lat 31",
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
    with pytest.raises(SiteFileError, match=r"semi.csv: line 1: expected 14 comma-separated columns radio,mcc,net,\.\.\.; "
                                            r"the line looks ';'-delimited"):
        read_opencellid(semi, districts)
    swapped = tmp_path / "swapped.csv"
    swapped.write_text("".join(f"LTE,460,0,1,{i},0,31.23,121.4{i},500,1,1,0,0,0\n" for i in range(5)))
    with pytest.raises(SiteFileError, match=r"swapped.csv: columns lon/lat: lon/lat look swapped in 5 of 5 rows"):
        read_opencellid(swapped, districts)
    with pytest.raises(SiteFileError, match="missing.csv: file not found"):
        read_opencellid(tmp_path / "missing.csv", districts)


# ----------------------------------------------------------------------------- downtilt from site spacing


def test_spacing_downtilt_puts_the_upper_3db_edge_on_the_neighbours():
    """TR 38.901 Table 7.3-1 vertical cut: A_V = -min(12 ((theta - 90 - tilt) / theta_3dB)^2, SLA_V).

    With tilt = atan((h_BS - h_UT) / d) + theta_3dB / 2, a UE at the neighbour site (distance d)
    sees the beam 3 dB down on its upper edge (the planners' rule, Niemelä et al. 2005).
    """
    from sim.antenna import antenna_gain_dbi, zenith_angle_deg
    from sim.sites import spacing_downtilt_deg

    h_bs, h_ut, hpbw_v, g_max = 30.0, 1.5, 10.0, 24.0
    d = np.array([200.0, 300.0, 500.0])
    tilt = spacing_downtilt_deg(np.full(3, h_bs), d, hpbw_v, h_ut_m=h_ut, min_deg=0.0, max_deg=45.0, step_deg=0.0)
    np.testing.assert_allclose(tilt, np.degrees(np.arctan(28.5 / d)) + 5.0, rtol=1e-12)
    theta = zenith_angle_deg(d, h_bs, h_ut)
    gain = antenna_gain_dbi(np.zeros(3), theta, tilt_deg=tilt, hpbw_v_deg=hpbw_v, g_max_dbi=g_max)
    np.testing.assert_allclose(gain, g_max - 3.0, atol=1e-9)
    # planned in whole degrees by default: 8.26 -> 8, 10.43 -> 10, 13.11 -> 13
    whole = spacing_downtilt_deg(np.full(3, h_bs), d[::-1], hpbw_v, h_ut_m=h_ut, min_deg=0.0, max_deg=45.0)
    np.testing.assert_array_equal(whole, [8.0, 10.0, 13.0])


def test_spacing_downtilt_clipped_to_the_carrier_tilt_and_the_maximum():
    from sim.sites import spacing_downtilt_deg

    # 50 m: atan(28.5/50) + 5 = 34.7 deg -> 20; 5 km: 0.33 + 5 = 5.3 -> the carrier's 6; a lone site -> 6
    t = spacing_downtilt_deg(np.full(3, 30.0), np.array([50.0, 5000.0, np.nan]), 10.0, h_ut_m=1.5,
                             min_deg=6.0, max_deg=20.0)
    np.testing.assert_array_equal(t, [20.0, 6.0, 6.0])


def test_site_spacing_on_a_hexagonal_grid_is_the_inter_site_distance():
    from sim.sites import site_spacing_m

    isd = 250.0
    i, j = np.meshgrid(np.arange(-4, 5), np.arange(-4, 5))
    x = isd * (i + 0.5 * j).ravel()
    y = isd * (np.sqrt(3) / 2 * j).ravel()
    centre = int(np.flatnonzero((x == 0) & (y == 0))[0])
    assert site_spacing_m(x, y)[centre] == pytest.approx(isd, rel=1e-12)
    # a candidate midway between two sites: its 3 nearest are at isd/2, isd/2 and isd * sqrt(3)/2
    q = site_spacing_m(x, y, query_x_m=[isd / 2], query_y_m=[0.0])
    assert q[0] == pytest.approx((isd / 2 + isd / 2 + isd * np.sqrt(3) / 2) / 3, rel=1e-12)
    assert np.isnan(site_spacing_m([0.0], [0.0])).all()


def test_build_site_table_tilt_from_spacing_keeps_a_site_file_tilt():
    from sim.sites import CarrierSpec, PhysicalSites, SiteClass, build_site_table

    ps = PhysicalSites.from_xy(np.array([0.0, 150.0, 300.0]), np.zeros(3), np.zeros(3, np.int16), "density")
    ps.tilt_deg[2] = 4.0    # the file's own tilt wins
    c = CarrierSpec(layer="x-n78", band="n78", ptx_dbm=49.0, g_max_dbi=24.0, hpbw_h_deg=65.0, hpbw_v_deg=10.0,
                    tilt_deg=6.0)
    t = build_site_table(ps, ran="x", carriers=[c], rng=np.random.default_rng(0), site_class=SiteClass("uma", 30.0),
                         spacing_m=np.array([150.0, 150.0, 150.0]), h_ut_m=1.5, max_tilt_deg=20.0)
    expect = np.round(np.degrees(np.arctan(28.5 / 150.0)) + 5.0)      # 15.76 -> 16 deg
    np.testing.assert_array_equal(t.tilt_deg[t.site_id < 2], expect)
    np.testing.assert_array_equal(t.tilt_deg[t.site_id == 2], 4.0)
    fixed = build_site_table(ps, ran="x", carriers=[c], rng=np.random.default_rng(0), site_class=SiteClass("uma", 30.0))
    np.testing.assert_array_equal(fixed.tilt_deg[fixed.site_id < 2], 6.0)
