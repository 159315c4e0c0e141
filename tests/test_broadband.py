"""sim.broadband: PON table, district FTTH indicators, densest-first 10G-PON rasters and the
PON-port busy hour.

References: ITU-T G.984.1/G.984.2 (GPON 2.48832/1.24416 Gbit/s), G.987.1/G.987.2 (XG-PON
9.95328/2.48832 Gbit/s), G.9807.1 (XGS-PON 9.95328/9.95328 Gbit/s); Bonald & Roberts 2012
(PS with per-flow cap: birth-death of rate min(n c, C)); Kleinrock 1976 §4.4 (M/G/1-PS).
"""

import numpy as np
import pytest

from sim.broadband import (
    PON_TECHNOLOGIES,
    check_split,
    district_fibre,
    fibre_rasters,
    max_simultaneous_at_tier,
    pon_busy_hour,
    pon_busy_hour_table,
    pon_payload_capacity_bps,
    tier_mix_array,
)
from sim.errors import InputError
from sim.queueing import capped_ps_throughput_bps

EXACT = 1e-12
CAPPED_REL_TOL = 0.05  # simpy E[S]/E[T] vs Bonald & Roberts 2012 (2 x 20,000 flows, ~3 standard errors)
TIER_LOW_ACTIVITY_MIN = 0.99  # share of flows at tier when the port is nearly idle (rho = 0.005)

TIERS_BPS = [1e8, 3e8, 5e8, 1e9, 2e9]
MIX_2021 = [0.35, 0.30, 0.20, 0.14, 0.01]
ALL_GIGABIT = [0.0, 0.0, 0.0, 1.0, 0.0]
MEAN_FLOW_BITS = 8e8  # 100 MB


def test_pon_table_line_rates_from_the_recommendations():
    # ITU-T G.984.2 / G.987.2 / G.9807.1 nominal line rates, bit/s
    assert (PON_TECHNOLOGIES["gpon"].down_bps, PON_TECHNOLOGIES["gpon"].up_bps) == (2.48832e9, 1.24416e9)
    assert (PON_TECHNOLOGIES["xg-pon"].down_bps, PON_TECHNOLOGIES["xg-pon"].up_bps) == (9.95328e9, 2.48832e9)
    assert (PON_TECHNOLOGIES["xgs-pon"].down_bps, PON_TECHNOLOGIES["xgs-pon"].up_bps) == (9.95328e9, 9.95328e9)
    # payload: 2.48832e9 x 0.92 = 2.2892544e9; 9.95328e9 x 0.85 = 8.460288e9 (module notes)
    assert pon_payload_capacity_bps("gpon") == pytest.approx(2.2892544e9, rel=EXACT)
    assert pon_payload_capacity_bps("xgs-pon") == pytest.approx(8.460288e9, rel=EXACT)
    assert check_split("xgs-pon", 128) == 128 and check_split("gpon", 64) == 64


def test_district_fibre_hand_evaluation():
    # district 0: 600 of 1000 households on 10G-PON, 400 GPON-only; district 1: GPON only (1800 of 2000)
    df = district_fibre([1000.0, 2000.0], [1000.0, 1800.0], [600.0, 0.0], 0.5, TIERS_BPS, MIX_2021,
                        gpon_split=64, ten_g_split=64, fill_factor=0.8)
    np.testing.assert_allclose(df.gigabit_coverage_share, [0.6, 0.0], rtol=EXACT)
    np.testing.assert_allclose(df.subscribers, [500.0, 900.0], rtol=EXACT)
    np.testing.assert_allclose(df.subscribers_ten_g, [300.0, 0.0], rtol=EXACT)
    # district 0: 500 x mix = 175, 150, 100, 70, 5 (gigabit demand 75 <= 300 on 10G-PON)
    np.testing.assert_allclose(df.tier_subscribers[0], [175, 150, 100, 70, 5], rtol=EXACT)
    # district 1: 900 x mix = 315, 270, 180, 126, 9; gigabit demand 135 unmet (no 10G-PON) -> 500 Mbit/s tier
    np.testing.assert_allclose(df.tier_subscribers[1], [315, 270, 315, 0, 0], rtol=EXACT)
    np.testing.assert_allclose(df.gigabit_demand_unmet, [0.0, 135.0], rtol=EXACT)
    np.testing.assert_allclose(df.users_ge_1000mbps, [75.0, 0.0], rtol=EXACT)
    # >= 500 Mbit/s: (100 + 70 + 5) / 500 = 0.35; 315 / 900 = 0.35
    np.testing.assert_allclose(df.share_ge_500mbps, [0.35, 0.35], rtol=EXACT)
    # ports = ceil(subs / (64 x 0.8 = 51.2)): GPON ceil(200/51.2 = 3.91) = 4, ceil(900/51.2 = 17.6) = 18;
    # 10G ceil(300/51.2 = 5.86) = 6 -> 10G port share 6/10 = 0.6 and 0
    np.testing.assert_array_equal(df.ports_gpon, [4, 18])
    np.testing.assert_array_equal(df.ports_ten_g, [6, 0])
    np.testing.assert_allclose(df.ten_g_port_share, [0.6, 0.0], rtol=EXACT)
    assert df.ports_gpon.dtype == np.int64


def test_fibre_rasters_densest_first_hand_evaluation():
    # district 0 pixels (10, 50, 20, 5), district 1 (40, 30); a NaN pixel and an out-of-district pixel
    hh = np.array([[10.0, 50.0, 20.0, 5.0], [40.0, 30.0, np.nan, 100.0]], dtype=np.float32)
    dist = np.array([[0, 0, 0, 0], [1, 1, 1, -1]], dtype=np.int16)
    r = fibre_rasters(hh, dist, [70.0, 70.0], [60.0, 35.0])
    # district 0, densest first: fibre 70 = 50 + 20; 10G 60 = 50 + 10 of the 20-household pixel
    np.testing.assert_array_equal(r.fibre_households, [[0, 50, 20, 0], [40, 30, 0, 0]])
    np.testing.assert_array_equal(r.ten_g_pon_households, [[0, 50, 10, 0], [35, 0, 0, 0]])
    np.testing.assert_allclose(r.gigabit_capable_share[0], [0.0, 1.0, 0.5, 0.0], rtol=EXACT)
    assert np.isnan(r.gigabit_capable_share[1, 2])
    assert r.fibre_households.dtype == np.float32 and r.fibre_households.shape == hh.shape


def _slow_densest(h, d, target):
    out = np.zeros_like(h)
    for k in range(target.size):
        pix = [i for i in range(h.size) if d[i] == k and h[i] > 0]
        pix.sort(key=lambda i: (-h[i], i))
        left = target[k]
        for i in pix:
            take = min(h[i], max(left, 0.0))
            out[i] = take
            left -= take
    return out


def test_fibre_rasters_equal_a_slow_loop_and_keep_district_totals():
    rng = np.random.default_rng(4)
    h = rng.integers(0, 30, 3000).astype(np.float64)
    d = rng.integers(-1, 5, 3000)
    totals = np.bincount(d[d >= 0], weights=h[d >= 0], minlength=5)
    fib = totals * np.array([1.0, 0.9, 0.5, 0.0, 2.0])  # the last asks for more than the raster holds
    teng = fib * 0.6
    r = fibre_rasters(h, d, fib, teng)
    np.testing.assert_allclose(r.fibre_households, _slow_densest(h, d, fib), rtol=EXACT, atol=1e-9)
    np.testing.assert_allclose(r.ten_g_pon_households, _slow_densest(h, d, teng), rtol=EXACT, atol=1e-9)
    got = np.bincount(d[d >= 0], weights=r.ten_g_pon_households[d >= 0], minlength=5)
    np.testing.assert_allclose(got, np.minimum(teng, totals), rtol=1e-9)
    # uniform: every pixel of a district gets the same share
    u = fibre_rasters(h, d, fib, teng, order="uniform")
    share = u.gigabit_capable_share[(d == 1) & (h > 0)]
    np.testing.assert_allclose(share, 0.54, rtol=1e-9)  # 0.9 x 0.6


def test_pon_low_activity_every_gigabit_flow_gets_its_tier():
    # 64 subscribers at 1000 Mbit/s on XGS-PON 1:64; 0.3 active x 10 flows/h x 100 MB:
    # offered 64 x 0.3 x 10 / 3600 x 8e8 = 42.7 Mbit/s, rho = 0.005 of 8.46 Gbit/s
    res = pon_busy_hour(1, "xgs-pon", 64, TIERS_BPS, ALL_GIGABIT, active_share=0.3, flows_per_active_sub_per_h=10.0,
                        mean_flow_bits=MEAN_FLOW_BITS, horizon_s=40_000.0, n_replications=2)
    assert res.n_subscribers == 64 and res.offered_load == pytest.approx(0.3 * 10 / 3600 * 64 * 8e8 / 8.460288e9)
    assert res.share_at_tier.mean >= TIER_LOW_ACTIVITY_MIN
    assert res.share_gigabit_ge_1gbps.mean >= TIER_LOW_ACTIVITY_MIN


def test_pon_high_activity_share_drops_as_the_capacity_bound_says():
    # all 64 active, 400 flows/h each: offered 64 x 400 / 3600 x 8e8 = 5.69 Gbit/s, rho = 0.672
    lam = 64 * 400 / 3600
    res = pon_busy_hour(2, "xgs-pon", 64, TIERS_BPS, ALL_GIGABIT, active_share=1.0, flows_per_active_sub_per_h=400.0,
                        mean_flow_bits=MEAN_FLOW_BITS, horizon_s=20_000 / lam, warmup_s=200 / lam, n_replications=2)
    c, cap = 1e9, pon_payload_capacity_bps("xgs-pon")
    expected = capped_ps_throughput_bps(lam * MEAN_FLOW_BITS, cap, c)  # Bonald & Roberts 2012
    assert res.throughput_ratio_bps.mean == pytest.approx(expected, rel=CAPPED_REL_TOL)
    # capacity bounds: gamma <= the tier and <= C (1 - rho) (rate min(n c, C) <= C)
    assert expected < min(c, cap * (1 - res.offered_load))
    assert res.share_at_tier.mean < 0.9


def test_gpon_1_64_cannot_give_64_simultaneous_gigabits():
    # 64 x 1 Gbit/s = 64 Gbit/s > 2.48832 Gbit/s x 0.92 = 2.289 Gbit/s: at most floor(2.289) = 2 at once
    assert 64 * 1e9 > PON_TECHNOLOGIES["gpon"].down_bps * PON_TECHNOLOGIES["gpon"].payload_efficiency_down
    assert max_simultaneous_at_tier("gpon", 1e9) == 2
    assert max_simultaneous_at_tier("xgs-pon", 1e9) == 8  # floor(8.460)
    # offered 64 x 100 / 3600 x 8e8 = 1.42 Gbit/s, rho = 0.621: C (1 - rho) = 0.867 Gbit/s < 0.95 Gbit/s,
    # so the mean flow throughput is below the tier and most gigabit flows miss 1 Gbit/s
    lam = 64 * 100 / 3600
    res = pon_busy_hour(3, "gpon", 64, TIERS_BPS, ALL_GIGABIT, active_share=1.0, flows_per_active_sub_per_h=100.0,
                        mean_flow_bits=MEAN_FLOW_BITS, horizon_s=20_000 / lam, warmup_s=200 / lam, n_replications=2)
    bound = res.capacity_bps * (1 - res.offered_load)
    assert bound < 0.95e9
    assert res.throughput_ratio_bps.mean < bound
    assert res.share_gigabit_ge_1gbps.mean < 0.5
    # at 250 flows/h the offered 3.56 Gbit/s exceeds the GPON port: overloaded, nothing gets its tier
    over = pon_busy_hour(3, "gpon", 64, TIERS_BPS, ALL_GIGABIT, active_share=1.0, flows_per_active_sub_per_h=250.0,
                         mean_flow_bits=MEAN_FLOW_BITS, horizon_s=100.0)
    assert over.overloaded and over.share_at_tier.mean == 0.0


def test_pon_table_by_technology_and_split_and_seeds():
    kw = dict(active_share=0.5, flows_per_active_sub_per_h=20.0, mean_flow_bits=MEAN_FLOW_BITS, horizon_s=3000.0,
              n_replications=1)
    table = pon_busy_hour_table(9, ["gpon", "xgs-pon"], [64, 128], TIERS_BPS, MIX_2021, **kw)
    # GPON 1:128 is not modelled (module notes), so three pairs
    assert [(t.technology, t.split) for t in table] == [("gpon", 64), ("xgs-pon", 64), ("xgs-pon", 128)]
    again = pon_busy_hour_table(9, ["gpon", "xgs-pon"], [64, 128], TIERS_BPS, MIX_2021, **kw)
    assert [t.share_at_tier.mean for t in table] == [t.share_at_tier.mean for t in again]
    other = pon_busy_hour(10, "gpon", 64, TIERS_BPS, MIX_2021, **kw)
    assert other.throughput_ratio_bps.mean != table[0].throughput_ratio_bps.mean
    # more subscribers on the same 10G port never help
    assert table[2].offered_load == pytest.approx(2 * table[1].offered_load, rel=EXACT)


def test_bad_input_raises_one_line_errors():
    with pytest.raises(InputError, match=r"split: gpon supports 1:16, 1:32, 1:64, got 128"):
        check_split("gpon", 128)
    with pytest.raises(InputError, match=r"split: xgs-pon supports .*, got 48"):
        district_fibre([10.0], [10.0], [5.0], 0.5, TIERS_BPS, MIX_2021, ten_g_split=48)
    with pytest.raises(InputError, match=r"tier_mix: expected shares summing to 1 \(within 1e-6\), got sum 0\.99"):
        tier_mix_array([0.35, 0.30, 0.20, 0.13, 0.01], 5)
    with pytest.raises(InputError, match=r"households: expected finite values >= 0, got nan at district 1"):
        district_fibre([10.0, np.nan], [10.0, 1.0], [5.0, 0.0], 0.5, TIERS_BPS, MIX_2021)
    with pytest.raises(InputError, match=r"take_up: expected a share in \[0, 1\], got 1\.5"):
        district_fibre([10.0], [10.0], [5.0], 1.5, TIERS_BPS, MIX_2021)
    with pytest.raises(InputError, match=r"ten_g_households: expected at most fibre_households"):
        district_fibre([10.0], [5.0], [6.0], 0.5, TIERS_BPS, MIX_2021)
    with pytest.raises(InputError, match=r"active_share: expected a share in \[0, 1\], got -0\.1"):
        pon_busy_hour(1, "xgs-pon", 64, TIERS_BPS, MIX_2021, active_share=-0.1, flows_per_active_sub_per_h=1.0,
                      mean_flow_bits=1e8, horizon_s=10.0)
    with pytest.raises(InputError, match=r"technology: expected one of"):
        pon_payload_capacity_bps("epon")
    with pytest.raises(InputError) as err:
        district_fibre([10.0], [10.0], [5.0], 0.5, TIERS_BPS, [0.5, 0.5, 0.5, 0.0, 0.0])
    assert "\n" not in str(err.value)
