"""Tests of sim.indicators: the arithmetic of every indicator on hand-made tiny results."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from sim import indicators as I
from sim.errors import InputError

# Shares are sums of small integers divided once: the arithmetic is exact to float64
# rounding of the final division.
EXACT_TOL = 1e-12


def test_ratio_by_district_hand_values():
    # hand evaluation: 80/100 = 80 %, 170/200 = 85 %, 0/0 undefined; city 250/300
    per, city = I.ratio_by_district([80, 170, 0], [100, 200, 0])
    np.testing.assert_allclose(per[:2], [80.0, 85.0], rtol=0, atol=EXACT_TOL)
    assert math.isnan(per[2])
    assert city == pytest.approx(250 / 300 * 100, abs=EXACT_TOL)


def test_ratio_per_10k_residents():
    # 1,300 5G sites for 1,000,000 residents: 13.0 per 10,000 (hand evaluation)
    per, city = I.ratio_by_district([1300, 0], [1_000_000, 500_000], scale=1e4)
    assert per.tolist() == [13.0, 0.0]
    assert city == pytest.approx(1300 / 1.5e6 * 1e4, abs=EXACT_TOL)


def test_weighted_share_by_district_hand_values():
    mask = np.array([True, False, True, True])
    pop = np.array([10.0, 30.0, 5.0, 5.0])
    d = np.array([0, 0, 1, 1])
    per, city = I.weighted_share_by_district_pct(mask, pop, d, n_districts=3)
    # district 0: 10 / 40 = 25 %; district 1: 10 / 10 = 100 %; district 2: no pixel
    np.testing.assert_allclose(per[:2], [25.0, 100.0], rtol=0, atol=EXACT_TOL)
    assert math.isnan(per[2])
    assert city == pytest.approx(20 / 50 * 100, abs=EXACT_TOL)
    per_a, city_a = I.area_share_by_district_pct(mask, d, n_districts=2)
    np.testing.assert_allclose(per_a, [50.0, 100.0], rtol=0, atol=EXACT_TOL)
    assert city_a == 75.0


def test_coverage_mask_inclusive_and_nan_uncovered():
    rsrp = np.array([-105.0, -105.1, np.nan, -80.0], dtype=np.float32)
    sinr = np.array([-3.0, 10.0, 10.0, -3.5], dtype=np.float32)
    got = I.coverage_mask(rsrp, sinr, rsrp_min_dbm=-105.0, sinr_min_db=-3.0)
    assert got.tolist() == [True, False, False, False]


def test_physical_indicators_tiny_scene():
    d = np.array([0, 0, 1, 1, 1])
    pop = np.array([100.0, 300.0, 50.0, 50.0, 0.0])
    rsrp_out = np.array([-90.0, -120.0, -95.0, -100.0, -90.0])
    sinr_out = np.array([5.0, 5.0, 5.0, -10.0, 5.0])
    rsrp_in = rsrp_out - 20.0
    sinr_in = sinr_out
    unloaded = np.array([1.2e9, 1.0e9, 0.5e9, np.nan, 2e9])
    busy = np.array([150e6, 99e6, 100e6, 0.0, 0.0])
    by_d, city = I.physical_indicators(
        d, pop, rsrp_outdoor_dbm=rsrp_out, sinr_outdoor_db=sinr_out, rsrp_indoor_dbm=rsrp_in,
        sinr_indoor_db=sinr_in, rate_unloaded_bps=unloaded, rate_busy_bps=busy,
        rsrp_min_dbm=-105.0, sinr_min_db=-3.0, rate_gigabit_bps=1e9, rate_busy_min_bps=100e6, n_districts=2,
    )
    # outdoor covered: pixels 0, 2, 4 -> pop d0 100/400 = 25 %, d1 50/100 = 50 %; city 150/500
    np.testing.assert_allclose(by_d["pop_cov_5g_outdoor_pct"], [25.0, 50.0], atol=EXACT_TOL)
    assert city["pop_cov_5g_outdoor_pct"] == pytest.approx(30.0, abs=EXACT_TOL)
    # area: d0 1/2, d1 2/3; city 3/5
    np.testing.assert_allclose(by_d["area_cov_5g_outdoor_pct"], [50.0, 200 / 3], atol=EXACT_TOL)
    assert city["area_cov_5g_outdoor_pct"] == pytest.approx(60.0, abs=EXACT_TOL)
    # indoor: 20 dB lower, RSRP -110 ... -140 dBm, all below -105 dBm -> no pixel covered
    assert city["pop_cov_5g_indoor_pct"] == 0.0
    # >= 1 Gbit/s: pixels 0 (100) and 1 (300, exactly 1e9 counts) -> d0 100 %, d1 0 %
    np.testing.assert_allclose(by_d["pop_5g_1gbps_unloaded_pct"], [100.0, 0.0], atol=EXACT_TOL)
    assert city["pop_5g_1gbps_unloaded_pct"] == pytest.approx(80.0, abs=EXACT_TOL)
    # >= 100 Mbit/s busy: pixel 0 (100) and 2 (50, exactly 100e6) -> city 150/500
    assert city["pop_5g_100mbps_busy_pct"] == pytest.approx(30.0, abs=EXACT_TOL)
    # >= 1 Gbit/s busy: no pixel (150 Mbit/s at most) -> 0 %
    assert city["pop_5g_1gbps_busy_pct"] == 0.0


def test_key_place_reach():
    rsrp = np.array([-100.0, -110.0, -95.0, np.nan])
    sinr = np.array([0.0, 0.0, 0.0, 0.0])
    idx = np.array([0, 0, 2, 2])
    per, city = I.key_place_reach_pct(rsrp, sinr, idx, rsrp_min_dbm=-105.0, sinr_min_db=-3.0,
                                       n_districts=3)
    assert per[0] == 50.0 and math.isnan(per[1]) and per[2] == 50.0
    assert city == 50.0


def test_bad_district_index_and_negative_counts_are_refused():
    with pytest.raises(InputError, match=r"district_idx: expected values in 0..1, got 0..2"):
        I.weighted_share_by_district_pct([True] * 3, [1.0] * 3, [0, 1, 2], n_districts=2)
    with pytest.raises(InputError, match=r"expected non-negative counts"):
        I.ratio_by_district([-1.0], [1.0])


def test_ran_weights_are_the_normalised_mobile_shares():
    # China Mobile 60 %, China Telecom + China Unicom 40 % on their shared network
    assert I.ran_weights({"cmcc": 0.6, "ctcu": 0.4}) == pytest.approx({"cmcc": 0.6, "ctcu": 0.4}, abs=EXACT_TOL)
    # shares that do not sum to 1 are normalised; all zero stays zero (no division by 0)
    assert I.ran_weights({"a": 1.0, "b": 3.0}) == {"a": 0.25, "b": 0.75}
    assert I.ran_weights({"a": 0.0, "b": 0.0}) == {"a": 0.0, "b": 0.0}


def test_add_weighted_is_the_mobile_share_weighted_mean():
    by_d, city = {}, {}
    I.add_weighted(by_d, city, 0.75, {"k": [100.0, 0.0]}, {"k": 80.0})
    I.add_weighted(by_d, city, 0.25, {"k": [0.0, np.nan]}, {"k": 40.0})
    assert by_d["k"][0] == 75.0 and math.isnan(by_d["k"][1])   # a NaN district stays unknown
    assert city["k"] == 70.0


def test_best_layer_values_take_every_field_from_the_highest_rate_layer():
    def layer(rate, rsrp):
        n = len(rate)
        return SimpleNamespace(rate_indoor_bps=np.array(rate), rsrp_dbm=np.array(rsrp), sinr_db=np.zeros(n),
                               rsrp_indoor_dbm=np.array(rsrp) - 10, sinr_indoor_db=np.zeros(n),
                               rate_outdoor_bps=np.array(rate) * 2)
    cap = layer([1e9, np.nan, 0.0], [-80.0, np.nan, -110.0])     # capacity layer: no service at pixel 1
    cov = layer([1e8, 2e7, 5e6], [-70.0, -95.0, -100.0])         # coverage layer: weaker rate, reaches further
    best = I.best_layer_values([cap, cov])
    assert best["rate_indoor_bps"].tolist() == [1e9, 2e7, 5e6]
    assert best["rsrp_dbm"].tolist() == [-80.0, -95.0, -100.0]   # RSRP follows the rate, not the strongest
    assert best["rate_outdoor_bps"].tolist() == [2e9, 4e7, 1e7]


def test_key_place_pixels_on_and_off_land():
    land_flat = np.array([3, 4, 10, 11])
    pos, on_land = I.key_place_pixels(land_flat, np.array([10, 5, 0, 99]))
    assert on_land.tolist() == [True, False, False, False]
    assert pos[0] == 2 and ((pos >= 0) & (pos < 4)).all()


def test_site_density_official_area_with_polygon_fallback():
    out = I.site_density([41, 10], [20.46, np.nan], [20.55, 54.66], [662_030, 1_113_078])
    assert out["sites_5g_per_km2"][0] == pytest.approx(41 / 20.46, rel=EXACT_TOL)
    assert out["sites_5g_per_km2"][1] == pytest.approx(10 / 54.66, rel=EXACT_TOL)
    assert out["area_basis"].tolist() == ["official", "polygon"]
    assert out["citywide"]["sites_5g_per_10k"] == pytest.approx(round(1e4 * 51 / 1_775_108, 4), abs=1e-12)
    assert out["citywide"]["area_basis"] == "official, polygon where none"


def test_fibre_indicators_hand_values():
    fibre = SimpleNamespace(ten_g_households=np.array([80.0, 45.0]), ports_ten_g=np.array([3.0, 1.0]),
                            ports_gpon=np.array([1.0, 3.0]), share_ge_500mbps=np.array([0.5, 0.2]),
                            subscribers=np.array([60.0, 40.0]), users_ge_1000mbps=np.array([13.0, 0.0]))
    by_d, city = I.fibre_indicators(fibre, households=np.array([100.0, 50.0]), population=np.array([1e4, 3e4]))
    assert by_d["fibre_gigabit_coverage_pct"].tolist() == [80.0, 90.0]
    assert city["fibre_gigabit_coverage_pct"] == pytest.approx(125 / 150 * 100, abs=EXACT_TOL)
    assert by_d["pon_10g_port_share_pct"].tolist() == [75.0, 25.0] and city["pon_10g_port_share_pct"] == 50.0
    # 30 of 60 and 8 of 40 subscribers on >= 500 Mbit/s: city 38 of 100
    assert city["fbb_500m_user_share_pct"] == pytest.approx(38.0, abs=EXACT_TOL)
    assert by_d["gigabit_users_per_10k"].tolist() == [13.0, 0.0] and city["gigabit_users_per_10k"] == 3.25
