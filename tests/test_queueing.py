"""sim.queueing: the simpy processor-sharing core against M/G/1-PS theory.

References
----------
* Kleinrock 1976, Queueing Systems Vol. 2, §4.4 (M/G/1-PS): E[T] = E[S] / (C (1 - rho)),
  P(busy) = rho, E[N] = rho / (1 - rho), insensitive to the size law.
* Bonald & Proutière 2003 §3: class k of peak r_k has E[S] / E[T_k] = r_k (1 - rho),
  rho = lambda E[S] sum_k p_k / r_k.
* Bonald & Roberts 2012 ("Internet and the Erlang formula"): PS with per-flow cap c on
  capacity C is the birth-death process of rate min(n c, C).

Estimator: the PS formula C (1 - rho) is E[S] / E[T], estimated by sum S / sum T (pooled over
flows and replications); the mean of per-flow S / T is a larger quantity (checked below).

Tolerances are about 3 standard errors of the estimate at the stated number of flows (the
time-average number in system of M/M/1 has asymptotic variance 2 rho (1 + rho) / (1 - rho)^4
per mean service time, Whitt 1989), so a fixed seed passes with margin.
"""

import math

import numpy as np
import pytest

from sim.errors import InputError
from sim.queueing import (
    capped_ps_mean_in_system,
    capped_ps_throughput_bps,
    flow_sizes_bits,
    mean_ci95,
    ps_flow_throughput_bps,
    ps_mean_in_system,
    ps_mean_sojourn_s,
    simulate_ps,
    simulate_ps_replications,
    spawn_rngs,
    t_quantile_975,
    time_shares,
)

C_BPS = 1.0e8  # one cell: 100 Mbit/s
MEAN_BITS = 1.0e6  # 1 Mbit flows: mean service time 10 ms

PS_REL_TOL = 0.03  # simpy E[S]/E[T] vs C(1 - rho), M/G/1-PS (3 %: the accuracy asked of the simpy check)
BUSY_REL_TOL = 0.02  # busy fraction vs rho (P(N > 0) = rho, Kleinrock 1976 §4.4)
CLASS_REL_TOL = 0.05  # per-class r_k (1 - rho), Bonald & Proutière 2003 §3
INSENSITIVITY_REL_TOL = 0.05  # exponential vs Pareto at equal mean
CAPPED_REL_TOL = 0.03  # capped PS vs Bonald & Roberts 2012 birth-death
MEAN_SIZE_REL_TOL = 0.02  # sample mean of 200,000 sizes vs the mean asked for
EXACT = 1e-12
# event times are float64 seconds: a flow's duration is exact to about eps x its finish time
# (1e-13 s at 1000 s); rate bounds allow 1e-10 s on the duration for the tiniest flows
TIME_ABS_TOL_S = 1e-10

# rho -> (replications, flows per replication): ~3 standard errors inside PS_REL_TOL
ONE_CELL_CASES = {0.3: (2, 15_000), 0.6: (2, 90_000), 0.8: (3, 150_000)}


def _pooled_ratio(results, cls=None):
    if cls is None:
        return sum(r.size_bits.sum() for r in results) / sum(r.duration_s.sum() for r in results)
    s = sum(r.size_bits[r.flow_class == cls].sum() for r in results)
    t = sum(r.duration_s[r.flow_class == cls].sum() for r in results)
    return s / t


@pytest.mark.parametrize("rho", sorted(ONE_CELL_CASES))
def test_one_cell_exponential_flow_throughput_is_c_times_one_minus_rho(rho):
    # M/G/1-PS, Kleinrock 1976 §4.4: E[S]/E[T] = C (1 - rho); P(busy) = rho
    n_rep, n_flows = ONE_CELL_CASES[rho]
    lam = rho * C_BPS / MEAN_BITS
    horizon = n_flows / lam
    results = simulate_ps_replications(2024, n_rep, lam, MEAN_BITS, C_BPS, horizon_s=horizon, warmup_s=0.01 * horizon)
    expected = C_BPS * (1 - rho)
    assert _pooled_ratio(results) == pytest.approx(expected, rel=PS_REL_TOL)
    busy = np.mean([r.busy_fraction for r in results])
    assert busy == pytest.approx(rho, rel=BUSY_REL_TOL)
    # without caps the server is in use whenever it is busy
    assert np.mean([r.utilisation for r in results]) == pytest.approx(busy, rel=EXACT)


def test_mean_of_per_flow_throughput_is_not_the_ps_formula():
    # E[S/T] > E[S]/E[T] (Jensen): at rho = 0.6 the mean of S/T is well above C(1 - rho)
    rho = 0.6
    lam = rho * C_BPS / MEAN_BITS
    r = simulate_ps(np.random.default_rng(5), lam, MEAN_BITS, C_BPS, horizon_s=20_000 / lam)
    assert r.throughput_bps.mean() > 1.2 * C_BPS * (1 - rho)
    assert r.throughput_ratio_bps() < 1.1 * C_BPS * (1 - rho)


def _two_class(distribution, seed):
    # two pixels of spectral efficiency ratio 4 (100 and 25 Mbit/s peak), half the flows each
    peak = np.array([1.0e8, 2.5e7])
    prob = np.array([0.5, 0.5])
    rho = 0.5
    lam = rho / (MEAN_BITS * np.sum(prob / peak))
    horizon = 40_000 / lam
    res = simulate_ps_replications(seed, 3, lam, MEAN_BITS, peak, class_prob=prob, horizon_s=horizon,
                                   warmup_s=0.01 * horizon, distribution=distribution, shape=2.5)
    return peak, rho, res


def test_heterogeneous_classes_and_insensitivity():
    # Bonald & Proutière 2003 §3: gamma_k = r_k (1 - rho), rho = lambda E[S] sum p_k / r_k;
    # Kleinrock 1976 §4.4: insensitive to the size law (Pareto alpha = 2.5, equal mean)
    peak, rho, exp_res = _two_class("exponential", 31)
    _, _, par_res = _two_class("pareto", 32)
    assert exp_res[0].offered_load == pytest.approx(rho, rel=EXACT)
    for k in (0, 1):
        g_exp = _pooled_ratio(exp_res, k)
        g_par = _pooled_ratio(par_res, k)
        assert g_exp == pytest.approx(peak[k] * (1 - rho), rel=CLASS_REL_TOL)
        assert g_par == pytest.approx(peak[k] * (1 - rho), rel=CLASS_REL_TOL)
        assert g_par == pytest.approx(g_exp, rel=INSENSITIVITY_REL_TOL)


def test_capped_ps_matches_bonald_roberts_birth_death():
    # Bonald & Roberts 2012: cap c = C/10 (m = 10, an M/G/10-PS), rho = 0.6
    cap = C_BPS / 10
    rho = 0.6
    lam = rho * C_BPS / MEAN_BITS
    horizon = 40_000 / lam
    res = simulate_ps_replications(77, 2, lam, MEAN_BITS, C_BPS, cap_bps=cap, horizon_s=horizon,
                                   warmup_s=0.01 * horizon)
    expected = capped_ps_throughput_bps(lam * MEAN_BITS, C_BPS, cap)
    assert _pooled_ratio(res) == pytest.approx(expected, rel=CAPPED_REL_TOL)
    assert np.mean([r.mean_in_system for r in res]) == pytest.approx(
        capped_ps_mean_in_system(lam * MEAN_BITS, C_BPS, cap), rel=CAPPED_REL_TOL)
    for r in res:
        assert np.all(r.size_bits <= cap * (r.duration_s + TIME_ABS_TOL_S))


def test_capped_ps_formula_hand_evaluations():
    # m = 1 (cap = C): M/M/1, E[N] = rho / (1 - rho) = 1.5 at rho = 0.6
    assert capped_ps_mean_in_system(0.6, 1.0, 1.0) == pytest.approx(1.5, rel=EXACT)
    # m = 2 (cap = C/2): M/M/2 birth-death, E[N] = 2 rho / (1 - rho^2) with rho = a/2;
    # a = 1 -> rho = 0.5 -> E[N] = 1 / 0.75 = 4/3 (hand evaluation)
    assert capped_ps_mean_in_system(1.0, 2.0, 1.0) == pytest.approx(4.0 / 3.0, rel=EXACT)
    # cap far above C: the cap never binds, throughput C(1 - rho)
    assert capped_ps_throughput_bps(0.3, 1.0, 10.0) == pytest.approx(0.7, rel=EXACT)
    # no traffic: a flow gets its cap
    assert capped_ps_throughput_bps(0.0, 10.0, 1.0) == 1.0


def test_time_shares_water_filling_hand_cases():
    # no caps: 1/n each
    np.testing.assert_allclose(time_shares([3], [np.inf]), [1 / 3], rtol=EXACT)
    # two capped flows at 0.1 leave 0.8 to the one uncapped flow
    np.testing.assert_allclose(time_shares([2, 1], [0.1, np.inf]), [0.1, 0.8], rtol=EXACT)
    # a cap above the fair share does not bind: 3 flows, caps 0.5 -> 1/3 each
    np.testing.assert_allclose(time_shares([1, 2], [0.5, np.inf]), [1 / 3, 1 / 3], rtol=EXACT)
    # all capped: each at its cap, the server idles 0.7
    np.testing.assert_allclose(time_shares([3, 0], [0.1, 0.2]), [0.1, 0.0], rtol=EXACT)


def test_analytic_ps_helpers_hand_evaluation():
    # Kleinrock 1976 §4.4 at C = 100 Mbit/s, E[S] = 1 Mbit, rho = 0.8:
    # E[T] = 1e6 / (1e8 * 0.2) = 0.05 s, E[N] = 4, gamma = 20 Mbit/s; overload -> 0 and inf
    assert float(ps_mean_sojourn_s(MEAN_BITS, C_BPS, 0.8)) == pytest.approx(0.05, rel=EXACT)
    assert float(ps_mean_in_system(0.8)) == pytest.approx(4.0, rel=EXACT)
    np.testing.assert_allclose(ps_flow_throughput_bps([C_BPS, C_BPS], [0.8, 1.2]), [2.0e7, 0.0], rtol=1e-6)
    assert np.isinf(ps_mean_sojourn_s(MEAN_BITS, C_BPS, 1.0))


@pytest.mark.parametrize("distribution", ["exponential", "lognormal", "pareto"])
def test_flow_sizes_have_the_requested_mean(distribution):
    x = flow_sizes_bits(np.random.default_rng(3), 200_000, MEAN_BITS, distribution, sigma=1.0, shape=2.5)
    assert x.mean() == pytest.approx(MEAN_BITS, rel=MEAN_SIZE_REL_TOL)
    assert np.all(x > 0)
    if distribution == "pareto":
        # Pareto I scale x_m = mean (alpha - 1) / alpha = 0.6 Mbit is the minimum
        assert x.min() >= 0.6 * MEAN_BITS * (1 - EXACT)


def test_records_are_consistent():
    rho = 0.5
    lam = rho * C_BPS / MEAN_BITS
    r = simulate_ps(np.random.default_rng(9), lam, MEAN_BITS, C_BPS, horizon_s=2000 / lam, warmup_s=100 / lam)
    assert r.n_flows > 0
    assert np.all((r.arrival_s >= r.warmup_s) & (r.arrival_s < r.horizon_s))
    assert np.all(r.duration_s > 0)
    assert np.all(r.size_bits <= C_BPS * (r.duration_s + TIME_ABS_TOL_S))  # nobody beats being alone
    np.testing.assert_allclose(r.throughput_bps, r.size_bits / r.duration_s, rtol=EXACT)
    assert r.n_events >= 2 * r.n_flows


def test_same_seed_same_numbers_different_seed_differs():
    lam = 0.5 * C_BPS / MEAN_BITS
    kw = dict(horizon_s=2000 / lam, distribution="lognormal", sigma=1.0)
    a = simulate_ps(np.random.default_rng(42), lam, MEAN_BITS, C_BPS, **kw)
    b = simulate_ps(np.random.default_rng(42), lam, MEAN_BITS, C_BPS, **kw)
    c = simulate_ps(np.random.default_rng(43), lam, MEAN_BITS, C_BPS, **kw)
    np.testing.assert_array_equal(a.duration_s, b.duration_s)
    assert a.mean_in_system == b.mean_in_system
    assert a.n_flows != c.n_flows or not np.array_equal(a.duration_s, c.duration_s)
    # replication streams are independent and reproducible
    r1 = [g.random() for g in spawn_rngs(7, 3)]
    assert r1 == [g.random() for g in spawn_rngs(7, 3)]
    assert len(set(r1)) == 3


def test_mean_ci95_hand_evaluation():
    # [1, 2, 3, 4]: mean 2.5, s = 1.2910, t_{0.975,3} = 3.182 -> half width 3.182 * 1.2910 / 2 = 2.0540
    ci = mean_ci95([1.0, 2.0, 3.0, 4.0])
    assert ci.mean == 2.5
    assert ci.half_width == pytest.approx(3.182 * math.sqrt(5 / 3) / 2, rel=EXACT)
    assert (ci.low, ci.high, ci.n) == (pytest.approx(2.5 - ci.half_width), pytest.approx(2.5 + ci.half_width), 4)
    assert math.isnan(mean_ci95([1.0]).half_width)
    # Student t 0.975 quantiles beyond the table (exact: df 40 2.0211, 60 2.0003, 120 1.9799)
    for df, t in ((40, 2.0211), (60, 2.0003), (120, 1.9799)):
        assert t_quantile_975(df) == pytest.approx(t, abs=1e-3)


def test_bad_input_raises_one_line_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match=r"arrival_rate_per_s: offered load rho = 1\.2 >= 1"):
        simulate_ps(rng, 120.0, MEAN_BITS, C_BPS, horizon_s=10.0)
    with pytest.raises(InputError, match=r"distribution: expected one of"):
        simulate_ps(rng, 10.0, MEAN_BITS, C_BPS, horizon_s=10.0, distribution="weibull")
    with pytest.raises(InputError, match=r"shape: expected a Pareto shape alpha > 1"):
        flow_sizes_bits(rng, 10, MEAN_BITS, "pareto", shape=1.0)
    with pytest.raises(InputError, match=r"class_prob: expected shares >= 0 summing to 1"):
        simulate_ps(rng, 10.0, MEAN_BITS, [C_BPS, C_BPS], class_prob=[0.5, 0.6], horizon_s=10.0)
    with pytest.raises(InputError, match=r"warmup_s: expected less than horizon_s"):
        simulate_ps(rng, 10.0, MEAN_BITS, C_BPS, horizon_s=10.0, warmup_s=10.0)
    with pytest.raises(InputError, match=r"n_replications: expected an integer >= 1"):
        spawn_rngs(1, 0)
    with pytest.raises(InputError) as err:
        simulate_ps(rng, -1.0, MEAN_BITS, C_BPS, horizon_s=10.0)
    assert "\n" not in str(err.value)


class _ScriptedRng:
    """A stand-in Generator whose exponential draws are scripted: first the inter-arrival
    gaps, then the sizes (the order simulate_ps draws a chunk in), padded to the chunk."""

    def __init__(self, gaps, sizes):
        self._script = [list(gaps), list(sizes)]

    def exponential(self, scale, size):
        vals = self._script.pop(0) if self._script else []
        return np.array(vals + [1e9] * (size - len(vals)), dtype=np.float64)


def test_exact_ps_trace_by_hand():
    # C = 1 bit/s. Flow A (2 bit) arrives at t = 1, flow B (0.5 bit) at t = 2.
    # A alone on [1, 2] sends 1 bit; then each gets 0.5 bit/s: B is done at t = 3,
    # A has 0.5 bit left and finishes alone at t = 3.5. Durations 2.5 s and 1 s.
    rng = _ScriptedRng(gaps=[1.0, 1.0, 100.0], sizes=[2.0, 0.5])
    r = simulate_ps(rng, 0.1, 1.0, 1.0, horizon_s=2.5)
    np.testing.assert_allclose(r.arrival_s, [1.0, 2.0], rtol=EXACT)
    np.testing.assert_allclose(r.duration_s, [2.5, 1.0], rtol=EXACT)
    np.testing.assert_allclose(r.throughput_bps, [0.8, 0.5], rtol=EXACT)
    # over [0, 2.5]: one flow on [1, 2], two on [2, 2.5] -> E[N] = (1 + 1) / 2.5, busy 1.5 / 2.5
    assert r.mean_in_system == pytest.approx(2.0 / 2.5, rel=EXACT)
    assert r.busy_fraction == pytest.approx(1.5 / 2.5, rel=EXACT)
