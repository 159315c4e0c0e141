"""Tests of sim.sites: the sector-carrier table, site spacing and downtilt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sim.errors import InputError
from sim.placement import allocate_counts, district_weights, place_by_density
from sim.results import SCENARIO_CODES, SectorArrays
from sim.sitefiles import read_sites_csv
from sim.sites import (
    CarrierSpec,
    SiteClass,
    SiteTable,
    build_site_table,
)

FIX = Path(__file__).parent / "fixtures"

ANGLE_TOL_DEG = 1e-3
"""Bearing tolerance (float32 storage of values < 360: resolution ~3e-5 deg)."""

PUDONG, CHONGMING = 10, 15
CLASSES = {"central": SiteClass("uma", 30.0), "suburban": SiteClass("uma", 30.0), "rural": SiteClass("rma", 35.0)}
N41 = CarrierSpec("cmcc-n41", "n41", ptx_dbm=46.0, g_max_dbi=17.0, hpbw_h_deg=65.0, hpbw_v_deg=10.0, tilt_deg=6.0)
N28 = CarrierSpec("cmcc-n28", "n28", ptx_dbm=43.0, g_max_dbi=14.0, hpbw_h_deg=65.0, hpbw_v_deg=12.0, tilt_deg=3.0)
N78 = CarrierSpec("ctcu-n78", "n78", ptx_dbm=46.0, g_max_dbi=17.0, hpbw_h_deg=65.0, hpbw_v_deg=10.0, tilt_deg=6.0)


@pytest.fixture(scope="module")
def district_class(districts):
    central = {"310101", "310104", "310105", "310106", "310107", "310109", "310110"}
    return ["central" if c in central else "rural" if c == "310151" else "suburban" for c in districts["code"]]


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


def test_mast_columns_one_row_per_mast_with_sectors_and_carriers(districts, district_class):
    """200 masts with n41 + n28 and 3 sectors: 200 rows, 3 sectors and 2 carriers each, 1,200 sector rows."""
    counts, t = _density_table(districts, district_class)
    m = t.mast_columns(list(districts["code"]))
    assert len(m["site_id"]) == t.n_sites == 200 and np.unique(m["site_id"]).size == 200
    assert (m["n_sectors"] == 3).all() and (m["n_carriers"] == 2).all() and set(m["layers"]) == {"cmcc-n28,cmcc-n41"}
    assert int((m["n_sectors"] * m["n_carriers"]).sum()) == len(t) == 1200
    by_code = {c: int((m["district_code"] == c).sum()) for c in districts["code"]}
    assert list(by_code.values()) == counts.tolist()
    assert set(m["site_class"]) == {"macro"} and set(m["network"]) == {"cmcc"}
    gdf = t.masts_to_geodataframe(list(districts["code"]), "EPSG:4326")
    assert len(gdf) == 200 and gdf.crs.to_epsg() == 4326
    np.testing.assert_allclose(gdf.geometry.x, m["lon_deg"], atol=1e-7)


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


def test_sector_arrays_of_one_layer(districts, district_class):
    sites, _ = read_sites_csv(FIX / "sites_good.csv", districts)
    t = build_site_table(sites, ran="x", carriers=[N41, N28, N78], rng=np.random.default_rng(0),
                         district_class=district_class, site_classes=CLASSES)
    for layer in ("cmcc-n41", "ctcu-n78"):
        one = t.for_layer(layer)
        sa = t.sector_arrays(layer)
        assert isinstance(sa, SectorArrays) and sa.n_sectors == len(one) > 0
        for name in ("site_id", "x_m", "y_m", "h_bs_m", "az_deg", "tilt_deg", "ptx_dbm", "g_max_dbi",
                     "hpbw_h_deg", "hpbw_v_deg"):
            np.testing.assert_array_equal(getattr(sa, name), getattr(one, name), err_msg=name)
        assert [SCENARIO_CODES[c] for c in sa.scenario] == one.scenario.tolist()
        assert sa.scenario.dtype == np.int8
    rma = np.concatenate([t.sector_arrays(lid).scenario[t.for_layer(lid).district_idx == CHONGMING]
                          for lid in t.layers])
    assert rma.size and set(rma.tolist()) == {SCENARIO_CODES.index("rma")}
    assert t.sector_arrays("nope").n_sectors == 0


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
