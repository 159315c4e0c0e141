"""sim.traffic: demand, the Bonald-Proutière flow-level cell model, the load fixed point and
simpy cell statistics.

References: Bonald & Proutière 2003 §3 (rho_c = sum lambda_p E[S] / r_p, gamma_p = r_p (1 -
rho_c)); Kleinrock 1976 §4.4 (M/G/1-PS). Hand evaluations say so.
"""

import numpy as np
import pytest

from sim.cellsim import hourly_scale, relative_error, simulate_cell, simulate_cell_day
from sim.errors import InputError
from sim.traffic import (
    busy_hour_throughput_bps,
    cell_load,
    cell_throughput_bps,
    fixed_point_load,
    flow_arrival_rate_per_s,
    pixel_overloaded,
    users_per_pixel,
)

EXACT = 1e-12
FLOAT32_REL = 1e-6
SIM_REL_TOL = 0.05  # simpy cell E[S]/E[T] vs the analytic formula (~3 standard errors at 60,000 flows)
FP_TOL = 1e-6  # fixed-point stopping tolerance used in the tests

MEAN_FLOW_BITS = 4.0e8  # 50 MB


def test_users_and_arrival_rates_hand_evaluation():
    # 1000 residents x 0.58 (CMCC share) x 0.213 (5G share, Apr 2022) x 0.1 active = 12.354 users;
    # 20 flows per user per hour -> 12.354 x 20 / 3600 = 0.06863 flows/s
    users = users_per_pixel(np.array([1000.0, 0.0]), 0.58, 0.213, 0.1)
    np.testing.assert_allclose(users, [12.354, 0.0], rtol=EXACT)
    np.testing.assert_allclose(flow_arrival_rate_per_s(users, 20.0), [12.354 * 20 / 3600, 0.0], rtol=EXACT)


def test_cell_load_and_throughput_hand_evaluation():
    # cell 0: pixels 0, 1; cell 1: pixel 2; pixel 3 unserved; pixel 4 in outage (rate 0)
    serving = np.array([0, 0, 1, -1, 1], dtype=np.int32)
    peak = np.array([1e9, 2.5e8, 5e8, 1e9, 0.0], dtype=np.float32)
    lam = np.array([0.5, 0.25, 2.0, 9.0, 9.0])
    # rho_0 = (0.5 x 4e8 / 1e9) + (0.25 x 4e8 / 2.5e8) = 0.2 + 0.4 = 0.6; rho_1 = 2 x 4e8 / 5e8 = 1.6
    load = cell_load(serving, peak, lam, MEAN_FLOW_BITS, 2)
    np.testing.assert_allclose(load, [0.6, 1.6], rtol=EXACT)
    thr = busy_hour_throughput_bps(peak, serving, load)
    assert thr.dtype == np.float32
    # gamma = r (1 - rho): 1e9 x 0.4 = 4e8, 2.5e8 x 0.4 = 1e8; overloaded cell -> 0; no service -> NaN
    np.testing.assert_allclose(thr[:3], [4e8, 1e8, 0.0], rtol=FLOAT32_REL)
    assert np.isnan(thr[3]) and np.isnan(thr[4])
    np.testing.assert_array_equal(pixel_overloaded(serving, load), [False, False, True, False, True])
    # the cell's flow-weighted throughput: (1 - 0.6) / (2/3 / 1e9 + 1/3 / 2.5e8) = 2e8
    assert cell_throughput_bps(peak[:2], lam[:2], 0.6) == pytest.approx(2.0e8, rel=FLOAT32_REL)


def test_cell_load_equals_a_slow_loop():
    rng = np.random.default_rng(1)
    n_pix, n_cells = 2000, 37
    serving = rng.integers(-1, n_cells, n_pix).astype(np.int32)
    peak = rng.uniform(0, 1e9, n_pix).astype(np.float32)
    peak[::50] = np.nan
    lam = rng.uniform(0, 0.01, n_pix)
    ref = np.zeros(n_cells)
    for p in range(n_pix):
        if serving[p] >= 0 and np.isfinite(peak[p]) and peak[p] > 0:
            ref[serving[p]] += lam[p] * MEAN_FLOW_BITS / float(peak[p])
    np.testing.assert_allclose(cell_load(serving, peak, lam, MEAN_FLOW_BITS, n_cells), ref, rtol=1e-12)


# -- a small synthetic network for the fixed point: two cells, each pixel hears the other cell
# as interference weighted by its load (busyload.rates_for_load does this with the coverage terms)
BW_HZ = 1.0e8
SIGNAL = np.array([100.0, 40.0, 100.0, 10.0])  # S/N per pixel (linear)
INTERF = np.array([20.0, 30.0, 5.0, 8.0])  # I/N from the other cell at full load
SERVING = np.array([0, 0, 1, 1], dtype=np.int32)
OTHER = np.array([1, 1, 0, 0])


def _peak_rate(load):
    sinr = SIGNAL / (1.0 + INTERF * load[OTHER])
    return BW_HZ * np.log2(1.0 + sinr), SERVING


def _demand(scale):
    return scale * np.array([0.05, 0.05, 0.08, 0.02])


def test_fixed_point_converges_and_is_a_fixed_point():
    res = fixed_point_load(_peak_rate, _demand(1.0), MEAN_FLOW_BITS, 2, tol=FP_TOL)
    assert res.converged and res.max_change < FP_TOL
    assert res.iterations == res.change_history.size <= 30
    # the load that weighted the interference reproduces itself
    peak, serving = _peak_rate(res.load)
    np.testing.assert_allclose(cell_load(serving, peak, _demand(1.0), MEAN_FLOW_BITS, 2), res.load, atol=5 * FP_TOL)
    assert np.all(res.load > 0) and not res.saturated.any()
    # starting from zero the loads rise monotonically (more load never raises a rate)
    assert np.all(np.diff(res.mean_load_history) >= -EXACT)


def test_fixed_point_zero_demand_gives_unloaded_rates():
    res = fixed_point_load(_peak_rate, np.zeros(4), MEAN_FLOW_BITS, 2)
    unloaded, _ = _peak_rate(np.zeros(2))
    assert res.converged and res.iterations == 1
    np.testing.assert_array_equal(res.load, [0.0, 0.0])
    np.testing.assert_allclose(res.throughput_bps, unloaded, rtol=EXACT)


def test_higher_demand_never_raises_throughput():
    previous = None
    for scale in (0.25, 0.5, 1.0, 2.0, 3.0):
        res = fixed_point_load(_peak_rate, _demand(scale), MEAN_FLOW_BITS, 2, tol=FP_TOL, max_iter=200)
        assert res.converged
        if previous is not None:
            assert np.all(res.throughput_bps <= previous * (1 + 1e-9))
        previous = res.throughput_bps


def test_overload_is_capped_and_flagged():
    res = fixed_point_load(_peak_rate, _demand(50.0), MEAN_FLOW_BITS, 2, max_iter=200)
    assert res.converged
    # the interference weight reaches full load within the default tol (1e-3)
    assert np.all(res.load <= 1.0) and np.all(res.load > 1.0 - 1e-3)
    assert res.saturated.all() and np.all(res.implied_load > 1.0)
    np.testing.assert_array_equal(res.throughput_bps, np.zeros(4))


def test_simpy_cell_matches_analytic_flow_throughput():
    # three pixels of one cell (peak 900, 300, 100 Mbit/s), load 0.5; Bonald & Proutière 2003 §3
    peak = np.array([9e8, 3e8, 1e8])
    lam = np.array([1.0, 1.0, 1.0])
    es = 0.5 / np.sum(lam / peak)
    load = float(cell_load(np.zeros(3, dtype=np.int32), peak, lam, es, 1)[0])
    assert load == pytest.approx(0.5, rel=EXACT)
    stats = simulate_cell(11, peak, lam, es, horizon_s=20_000.0, warmup_s=200.0, n_replications=3)
    analytic = cell_throughput_bps(peak, lam, load)
    assert abs(relative_error(stats.throughput_ratio_bps.mean, analytic)) < SIM_REL_TOL
    assert stats.n_flows > 55_000 and stats.throughput_ratio_bps.n == 3
    # a flow never beats its peak: p50 below the largest peak, share >= 1 Gbit/s is 0
    assert stats.p5_throughput_bps.mean < stats.p50_throughput_bps.mean < 9e8
    assert stats.share_ge_1gbps.mean == 0.0
    assert 0.0 < stats.share_ge_100mbps.mean < 1.0
    assert stats.throughput_ratio_bps.low <= stats.throughput_ratio_bps.mean <= stats.throughput_ratio_bps.high


def test_simulate_cell_same_seed_same_numbers():
    kw = dict(horizon_s=200.0, n_replications=2, distribution="lognormal", sigma=1.0)
    a = simulate_cell(5, [3e8, 1e8], [1.0, 1.0], 2e7, **kw)
    b = simulate_cell(5, [3e8, 1e8], [1.0, 1.0], 2e7, **kw)
    c = simulate_cell(6, [3e8, 1e8], [1.0, 1.0], 2e7, **kw)
    assert a == b
    assert a.throughput_ratio_bps.mean != c.throughput_ratio_bps.mean


def test_overloaded_cell_is_not_simulated():
    stats = simulate_cell(1, [1e8], [10.0], 1e8, horizon_s=10.0)
    assert stats.load == pytest.approx(10.0) and stats.throughput_ratio_bps.mean == 0.0 and stats.n_flows == 0


def test_day_profile_scales_demand():
    profile = np.full(24, 0.04)
    profile[20] = 0.08  # busy hour
    profile[3] = 0.0
    scale = hourly_scale(profile)
    assert scale[20] == 1.0 and scale[0] == 0.5 and scale[3] == 0.0
    day = simulate_cell_day(3, [2e8], [1.0], 1e8, profile, horizon_s=100.0, n_replications=1)
    # load = lambda E[S] / r = 1 x 1e8 / 2e8 = 0.5 at the busy hour, 0.25 in the half-demand hours
    assert day.load[20] == pytest.approx(0.5, rel=EXACT) and day.load[0] == pytest.approx(0.25, rel=EXACT)
    assert np.isnan(day.throughput_ratio_bps[3]) and day.hours[3] is None
    assert day.throughput_ratio_bps[0] > day.throughput_ratio_bps[20] > 0


def test_bad_input_raises_one_line_errors():
    with pytest.raises(InputError, match=r"fiveg_share: expected a share in \[0, 1\], got 1\.2"):
        users_per_pixel([100.0], 0.5, 1.2, 0.1)
    with pytest.raises(InputError, match=r"market_share: expected a share in \[0, 1\], got -0\.1"):
        users_per_pixel([100.0], -0.1, 0.2, 0.1)
    with pytest.raises(InputError, match=r"active_share: expected a share in \[0, 1\], got nan"):
        users_per_pixel([100.0], 0.5, 0.2, np.nan)
    with pytest.raises(InputError, match=r"population: expected finite values >= 0, got nan"):
        users_per_pixel([np.nan], 0.5, 0.2, 0.1)
    with pytest.raises(InputError, match=r"daily_profile: expected 24 hourly weights, got shape \(23,\)"):
        hourly_scale(np.ones(23))
    with pytest.raises(InputError, match=r"serving_cell: expected indices in \[-1, 1\]"):
        cell_load(np.array([0, 2]), np.ones(2), np.ones(2), 1.0, 2)
    with pytest.raises(InputError, match=r"damping: expected a number in \(0, 1\]"):
        fixed_point_load(_peak_rate, _demand(1.0), MEAN_FLOW_BITS, 2, damping=0.0)


def test_cell_flow_stats_flow_weighted_over_user_classes():
    """Hand-computed: cell 0 serves two pixels, each an indoor and an outdoor class (share 0.5).

    Classes (throughput, flows/s): (50M, 0.5), (200M, 0.5), (150M, 1.5), (1.2G, 1.5); sorted
    cumulative weight 0.125, 0.5, 0.625, 1 -> p5 = 50M, p50 = 150M (first class reaching half
    of the flows); >= 100 Mbit/s: 3.5 / 4; >= 1 Gbit/s: 1.5 / 4. Cell 1: no server rate (NaN);
    cell 2: no demand; a pixel without a serving cell (-1) counts nowhere.
    """
    from sim.traffic import cell_flow_stats

    serving = np.array([0, 0, 1, 2, -1])
    lam = np.array([1.0, 3.0, 2.0, 0.0, 5.0])
    t_in = np.array([50e6, 150e6, np.nan, 10e6, 1e9])
    t_out = np.array([200e6, 1.2e9, np.nan, 10e6, 1e9])
    out = cell_flow_stats(serving, lam, t_in, t_out, 0.5, 3)
    assert set(out) == {"p5_bps", "p50_bps", "share_ge_100mbps", "share_ge_1gbps"}
    assert out["p5_bps"][0] == 50e6 and out["p50_bps"][0] == 150e6
    assert out["share_ge_100mbps"][0] == pytest.approx(3.5 / 4, rel=EXACT)
    assert out["share_ge_1gbps"][0] == pytest.approx(1.5 / 4, rel=EXACT)
    for k, v in out.items():
        assert np.isnan(v[1:]).all(), k


def test_cell_flow_stats_same_bits_from_float32_as_from_lexsort():
    """The busy-hour rasters' float32 throughputs take a packed-integer sort; float64 ones ``np.lexsort``: the
    same classes in the same order (ties of cell and throughput in land order, -0 equal to +0), so the same
    bits; and at the hand-computed figures of the test above."""
    from sim.traffic import cell_flow_stats

    rng = np.random.default_rng(11)
    n, n_cells = 20000, 37
    serving = rng.integers(-1, n_cells, n)
    lam = rng.uniform(0, 1, n) * (rng.uniform(0, 1, n) < 0.8)
    levels = np.float32([0.0, -0.0, 3e6, 5e7, 1e8, 2.5e8, 1e9, 1.2e9, np.nan])
    t_in = np.where(rng.uniform(0, 1, n) < 0.5, rng.choice(levels, n), rng.uniform(0, 2e9, n)).astype(np.float32)
    t_out = rng.choice(levels, n)
    fast = cell_flow_stats(serving, lam, t_in, t_out, 0.7, n_cells)
    ref = cell_flow_stats(serving, lam, t_in.astype(np.float64), t_out.astype(np.float64), 0.7, n_cells)
    for k in ref:
        np.testing.assert_array_equal(fast[k], ref[k], err_msg=k)
        np.testing.assert_array_equal(np.signbit(fast[k]), np.signbit(ref[k]), err_msg=k)   # -0 where -0 came first
    assert np.isfinite(fast["p5_bps"]).sum() == n_cells and len(set(fast["p50_bps"].tolist())) > 3
    out = cell_flow_stats(np.array([0, 0, 1, 2, -1]), np.array([1.0, 3.0, 2.0, 0.0, 5.0]),
                          np.float32([50e6, 150e6, np.nan, 10e6, 1e9]), np.float32([200e6, 1.2e9, np.nan, 10e6, 1e9]),
                          0.5, 3)
    assert out["p5_bps"][0] == 50e6 and out["p50_bps"][0] == 150e6
