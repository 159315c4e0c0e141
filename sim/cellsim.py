"""One cell's busy hour event by event in simpy, and its day: the check of the analytic flow model.

:func:`simulate_cell` runs the flow classes of one cell (one per pixel and indoor/outdoor
class, from :func:`sim.traffic.cell_flow_classes`) through the processor-sharing core of
:mod:`sim.queueing` and summarises the replications (:class:`CellStats`);
:func:`relative_error` compares its ``E[S] / E[T]`` with the analytic
:func:`sim.traffic.cell_throughput_bps` (Bonald & Proutière 2003, §3). :func:`sample_cells`
picks the cells to check, :func:`simulate_cell_day` runs one cell over a daily profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.errors import InputError
from sim.queueing import MeanCI, PSResult, mean_ci95, nonneg_array, positive_number, simulate_ps, spawn_rngs

__all__ = [
    "HOURS_PER_DAY",
    "CellStats",
    "flow_statistics",
    "simulate_cell",
    "hourly_scale",
    "DayStats",
    "simulate_cell_day",
    "relative_error",
    "SIMPY_MAX_LOAD",
    "sample_cells",
]

_SOURCE = "sim.cellsim"

HOURS_PER_DAY = 24


def _nonneg_array(field: str, value) -> np.ndarray:
    return nonneg_array(field, value, source=_SOURCE)


@dataclass(frozen=True)
class CellStats:
    """Flow statistics of one cell from simpy replications (each a :class:`MeanCI`).

    ``throughput_ratio_bps`` estimates ``E[S] / E[T]`` (the analytic
    :func:`cell_throughput_bps`); ``mean_throughput_bps`` is the mean of per-flow ``S / T``
    (larger); percentiles and shares are over flows.
    """

    load: float
    throughput_ratio_bps: MeanCI
    mean_throughput_bps: MeanCI
    p5_throughput_bps: MeanCI
    p50_throughput_bps: MeanCI
    share_ge_100mbps: MeanCI
    share_ge_1gbps: MeanCI
    mean_in_system: MeanCI
    n_flows: int


def flow_statistics(results, load: float = float("nan")) -> CellStats:
    """Summarise replications of :func:`sim.queueing.simulate_ps` into a :class:`CellStats`."""
    rs: tuple[PSResult, ...] = tuple(results)

    def across(f):
        return mean_ci95([f(r) if r.n_flows else np.nan for r in rs])

    return CellStats(
        load=float(load),
        throughput_ratio_bps=across(lambda r: r.throughput_ratio_bps()),
        mean_throughput_bps=across(lambda r: float(r.throughput_bps.mean())),
        p5_throughput_bps=across(lambda r: float(np.percentile(r.throughput_bps, 5))),
        p50_throughput_bps=across(lambda r: float(np.percentile(r.throughput_bps, 50))),
        share_ge_100mbps=across(lambda r: float(np.mean(r.throughput_bps >= 1e8))),
        share_ge_1gbps=across(lambda r: float(np.mean(r.throughput_bps >= 1e9))),
        mean_in_system=across(lambda r: r.mean_in_system),
        n_flows=sum(r.n_flows for r in rs),
    )


def simulate_cell(
    seed,
    peak_rate_bps,
    arrival_rate_per_s,
    mean_flow_bits: float,
    *,
    horizon_s: float,
    warmup_s: float = 0.0,
    n_replications: int = 5,
    distribution: str = "exponential",
    sigma: float = 1.0,
    shape: float = 2.5,
) -> CellStats:
    """Simulate one cell's busy hour in simpy: its pixels are the flow classes.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        Replication ``i`` uses stream ``i`` of ``SeedSequence(seed).spawn(n_replications)``.
    peak_rate_bps, arrival_rate_per_s : ndarray [n_pix_cell]
        Peak rate and flow arrival rate of each pixel the cell serves (pixels with no rate
        or no demand are dropped).
    mean_flow_bits : float
    horizon_s, warmup_s : float
        Recording window of each replication.
    n_replications : int
    distribution, sigma, shape
        Flow-size law (:func:`sim.queueing.flow_sizes_bits`).

    Returns
    -------
    CellStats
        For an overloaded cell (``rho >= 1``) nothing is simulated: throughputs 0 and
        NaN intervals, ``load`` tells why.
    """
    r = np.asarray(peak_rate_bps, dtype=np.float64).ravel()
    lam = _nonneg_array("arrival_rate_per_s", arrival_rate_per_s).astype(np.float64).ravel()
    es = positive_number("mean_flow_bits", mean_flow_bits, source=_SOURCE)
    if r.shape != lam.shape:
        raise InputError(_SOURCE, "peak_rate_bps",
                         f"expected the shape of arrival_rate_per_s {lam.shape}, got {r.shape}")
    keep = (r > 0) & np.isfinite(r) & (lam > 0)
    r, lam = r[keep], lam[keep]
    total = float(lam.sum())
    if total <= 0:
        raise InputError(_SOURCE, "arrival_rate_per_s", "expected some demand at served pixels, got none")
    load = float(np.sum(lam * es / r))
    if load >= 1.0:
        zero = MeanCI(0.0, float("nan"), float("nan"), float("nan"), 0)
        nan = MeanCI(float("nan"), float("nan"), float("nan"), float("nan"), 0)
        return CellStats(load, zero, zero, zero, zero, zero, zero, nan, 0)
    rngs = spawn_rngs(seed, n_replications)
    results = [
        simulate_ps(rng, total, es, r, class_prob=lam / total, horizon_s=horizon_s, warmup_s=warmup_s,
                    distribution=distribution, sigma=sigma, shape=shape)
        for rng in rngs
    ]
    return flow_statistics(results, load)


def hourly_scale(profile) -> np.ndarray:
    """Scale of each hour's demand relative to the busy hour: ``w_h / max(w)``.

    Parameters
    ----------
    profile : array_like [24]
        Hourly demand weights for 0h..23h (>= 0, not all 0); only their ratios matter.

    Returns
    -------
    scale : ndarray [24], float64 in [0, 1], 1 at the busy hour.
    """
    w = np.asarray(profile, dtype=np.float64)
    if w.shape != (HOURS_PER_DAY,):
        raise InputError(_SOURCE, "daily_profile", f"expected {HOURS_PER_DAY} hourly weights, got shape {w.shape}")
    if np.any(~np.isfinite(w) | (w < 0)):
        raise InputError(_SOURCE, "daily_profile", "expected finite weights >= 0")
    if w.max() <= 0:
        raise InputError(_SOURCE, "daily_profile", "expected at least one weight > 0")
    return w / w.max()


@dataclass(frozen=True)
class DayStats:
    """One cell over a day: per hour, the load and the simpy statistics.

    ``load`` [24]; ``throughput_ratio_bps``, ``p5_throughput_bps``, ``share_ge_100mbps``
    [24] (means across replications; 0 for overloaded hours, NaN for idle hours);
    ``hours`` the 24 :class:`CellStats` (None for idle hours).
    """

    load: np.ndarray
    throughput_ratio_bps: np.ndarray
    p5_throughput_bps: np.ndarray
    share_ge_100mbps: np.ndarray
    hours: tuple


def simulate_cell_day(
    seed,
    peak_rate_bps,
    busy_hour_arrival_rate_per_s,
    mean_flow_bits: float,
    profile,
    **kwargs,
) -> DayStats:
    """Run :func:`simulate_cell` for each hour with the demand scaled by :func:`hourly_scale`.

    Hour ``h`` uses stream ``h`` of ``SeedSequence(seed).spawn(24)``; ``kwargs`` go to
    :func:`simulate_cell` (``horizon_s``, ``n_replications``, ...). Busy-hour arrival rates
    are per pixel (those of :func:`flow_arrival_rate_per_s`).
    """
    scale = hourly_scale(profile)
    lam = _nonneg_array("busy_hour_arrival_rate_per_s", busy_hour_arrival_rate_per_s).astype(np.float64)
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    children = ss.spawn(HOURS_PER_DAY)
    loads, thr, p5, share, hours = [], [], [], [], []
    for h in range(HOURS_PER_DAY):
        if scale[h] == 0.0:
            loads.append(0.0)
            thr.append(np.nan)
            p5.append(np.nan)
            share.append(np.nan)
            hours.append(None)
            continue
        st = simulate_cell(children[h], peak_rate_bps, lam * scale[h], mean_flow_bits, **kwargs)
        loads.append(st.load)
        thr.append(st.throughput_ratio_bps.mean)
        p5.append(st.p5_throughput_bps.mean)
        share.append(st.share_ge_100mbps.mean)
        hours.append(st)
    return DayStats(np.asarray(loads), np.asarray(thr), np.asarray(p5), np.asarray(share), tuple(hours))


def relative_error(simulated, analytic):
    """``(simulated - analytic) / analytic``: simpy against the flow-level formula.

    Use ``CellStats.throughput_ratio_bps.mean`` against :func:`cell_throughput_bps`
    (same quantity, ``E[S] / E[T]``). NaN where ``analytic`` is 0 or NaN.
    """
    a = np.asarray(analytic, dtype=np.float64)
    s = np.asarray(simulated, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a != 0, (s - a) / a, np.nan)


SIMPY_MAX_LOAD = 0.9
"""Most loaded cell :func:`sample_cells` picks: near saturation the relaxation time of PS grows
like ``1 / (1 - rho)**2``, beyond a busy hour of simulated time (ASSUMPTION of the check)."""


def sample_cells(load, arrival_rate_per_s, n: int, max_load: float = SIMPY_MAX_LOAD) -> np.ndarray:
    """``n`` cells spread over the load range, for the simpy check (deterministic).

    Among cells with demand and ``0 < load <= max_load``, the cells at the ranks
    ``round((k + 1/2) m / n - 1/2)`` (``k = 0..n-1``) of ``m`` cells sorted by load (ties by
    index): the midpoints of ``n`` equal slices of the load distribution. Fewer if fewer
    cells qualify.

    Returns
    -------
    cells : ndarray [<= n], int64, in increasing order of load.
    """
    rho = np.asarray(load, dtype=np.float64)
    lam = np.asarray(arrival_rate_per_s, dtype=np.float64)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(_SOURCE, "n", f"expected an integer >= 0, got {n!r}")
    ok = np.flatnonzero((lam > 0) & (rho > 0) & (rho <= float(max_load)))
    if n == 0 or ok.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = ok[np.lexsort((ok, rho[ok]))]
    if n >= order.size:
        return order.astype(np.int64)
    m = order.size
    ranks = np.unique(np.clip(np.round((np.arange(n) + 0.5) * m / n - 0.5), 0, m - 1).astype(np.int64))
    return order[ranks].astype(np.int64)
