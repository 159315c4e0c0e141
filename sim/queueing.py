"""A small simpy processor-sharing (PS) core shared by radio cells and PON ports.

A cell and a PON port are both one shared server of capacity ``C`` (bit/s) over which the
active flows share time equally (egalitarian processor sharing). What differs between them
is each flow's *peak rate* and *cap*:

* a 5G cell: a flow at a pixel of spectral efficiency ``SE_p`` would get ``r_p = B * SE_p``
  alone in the cell (its peak rate); with ``n`` active flows each gets ``1/n`` of the time,
  so a rate ``r_p / n``; no cap;
* a PON port: every flow has the port's payload capacity as peak rate and its subscriber's
  speed tier as cap.

Sources
-------
* L. Kleinrock, *Queueing Systems, Vol. 2: Computer Applications*, Wiley 1976, §4.4
  (M/G/1 processor sharing): the mean sojourn time of a flow of size ``s`` is
  ``E[T | s] = s / (C (1 - rho))``; so ``E[T] = E[S] / (C (1 - rho))``, with
  ``rho = lambda E[S] / C``. The mean depends on the size distribution only through
  ``E[S]`` (insensitivity).
* T. Bonald, A. Proutière, "Wireless downlink data channels: user performance and cell
  dimensioning", ACM MobiCom 2003, §3: flows of class ``k`` (peak rate ``r_k``) sharing time
  equally are an M/G/1-PS queue in units of *time-normalised work* ``u = S / r_k``:
  ``rho = sum_k lambda_k E[S] / r_k`` and the flow throughput of class ``k`` is
  ``gamma_k = E[S] / E[T_k] = r_k (1 - rho)``.
* T. Bonald, J. Roberts, "Internet and the Erlang formula", ACM SIGCOMM CCR 42(1), 2012:
  flows with a peak-rate limit ``c`` on a link of capacity ``C`` form the birth-death
  process of rate ``min(n c, C)`` (an M/G/m-PS queue when ``C / c = m``; insensitive), whose
  stationary distribution gives the flow throughput ``gamma = lambda E[S] / E[N]``
  (an Erlang C formula for integer ``m``): :func:`capped_ps_throughput_bps`.

Rate allocation with caps
-------------------------
With ``n`` active flows, flow ``i`` (peak ``r_i``, cap ``c_i``) would use the time share
``1/n``. A flow whose cap binds (``c_i / r_i < theta``) uses only ``c_i / r_i`` of the time;
the spare time is redistributed equally among the other flows (max-min fair water-filling
over time shares): find ``theta`` with ``sum_i min(c_i / r_i, theta) = 1`` and give flow
``i`` the time share ``tau_i = min(c_i / r_i, theta)`` and the rate ``tau_i r_i``. When every
flow is capped (``sum_i c_i / r_i <= 1``) every flow runs at its cap and the server idles
for the rest. Without caps this is egalitarian PS, ``tau_i = 1/n``.

Event-driven simulation
-----------------------
One simpy process advances from event to event with a ``timeout`` to whichever comes first,
the next arrival or the next departure. Flows with the same *time cap* ``c / r`` always get
the same time share ``tau``, so each such group keeps a *virtual clock* ``V`` that advances
at ``tau`` and a heap of finish virtual times ``V_arrival + S / r``; an event costs
``O(log n + G)`` for ``G`` groups (one group in a cell; one per tier on a PON port), with no
per-flow update. The benchmark ``benchmarks/bench_queueing.py`` prints events per second.

Estimators
----------
The mean of the per-flow throughput ``E[S / T]`` is *not* ``C (1 - rho)`` (by Jensen's
inequality it is larger): ``C (1 - rho)`` is ``E[S] / E[T]``, estimated by
``sum_i S_i / sum_i T_i`` (:meth:`PSResult.throughput_ratio_bps`).

Randomness comes only from the ``numpy.random.Generator`` passed in; replications use
independent streams from ``numpy.random.SeedSequence(seed).spawn(n)``.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
import simpy

from sim.errors import InputError

__all__ = [
    "nonneg_array",
    "SIZE_DISTRIBUTIONS",
    "PSResult",
    "MeanCI",
    "flow_sizes_bits",
    "time_shares",
    "simulate_ps",
    "simulate_ps_replications",
    "spawn_rngs",
    "mean_ci95",
    "t_quantile_975",
    "ps_flow_throughput_bps",
    "ps_mean_sojourn_s",
    "ps_mean_in_system",
    "capped_ps_mean_in_system",
    "capped_ps_throughput_bps",
]

_SOURCE = "sim.queueing"

SIZE_DISTRIBUTIONS = ("exponential", "lognormal", "pareto")
"""Flow-size distributions of :func:`flow_sizes_bits`, all parametrised by their mean."""

_CHUNK = 8192  # flows drawn per refill of the arrival stream


# --------------------------------------------------------------------------- validation


def positive_number(field: str, value, *, allow_inf: bool = False, source: str = _SOURCE) -> float:
    """A validated positive number; ``InputError(source, field, ...)`` otherwise."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(source, field, f"expected a positive number, got {value!r}") from None
    if not (x > 0.0) or (math.isinf(x) and not allow_inf) or math.isnan(x):
        raise InputError(source, field, f"expected a positive finite number, got {value!r}")
    return x


def nonneg_array(field: str, value, *, source: str = _SOURCE) -> np.ndarray:
    """A validated array of finite real numbers >= 0; ``InputError(source, field, ...)`` otherwise."""
    x = np.asarray(value)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(source, field, f"expected real numbers, got dtype {x.dtype}")
    bad = ~np.isfinite(x) | (x < 0)
    if np.any(bad):
        first = x[bad].ravel()[0]
        raise InputError(source, field, f"expected finite values >= 0, got {first:g}")
    return x


def _nonneg(field: str, value) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InputError(_SOURCE, field, f"expected a number >= 0, got {value!r}") from None
    if not (x >= 0.0) or math.isinf(x):
        raise InputError(_SOURCE, field, f"expected a finite number >= 0, got {value!r}")
    return x


def _check_distribution(distribution: str, sigma: float, shape: float) -> None:
    if distribution not in SIZE_DISTRIBUTIONS:
        raise InputError(_SOURCE, "distribution", f"expected one of {SIZE_DISTRIBUTIONS}, got {distribution!r}")
    if distribution == "lognormal":
        positive_number("sigma", sigma)
    if distribution == "pareto":
        a = float(shape)
        if not (a > 1.0) or math.isinf(a):
            raise InputError(_SOURCE, "shape", f"expected a Pareto shape alpha > 1 (finite mean), got {shape!r}")


# --------------------------------------------------------------------------- sizes


def flow_sizes_bits(
    rng: np.random.Generator,
    n: int,
    mean_bits: float,
    distribution: str = "exponential",
    *,
    sigma: float = 1.0,
    shape: float = 2.5,
) -> np.ndarray:
    """Draw ``n`` flow sizes of mean ``mean_bits``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    n : int
        Number of sizes.
    mean_bits : float
        Mean flow size E[S], bit (> 0).
    distribution : {"exponential", "lognormal", "pareto"}
        ``"exponential"``: ``S ~ Exp(mean)``. ``"lognormal"``: ``ln S ~ N(mu, sigma^2)`` with
        ``mu = ln(mean) - sigma^2 / 2`` so that ``E[S] = mean``. ``"pareto"``: Pareto type I of
        shape ``alpha > 1`` and scale ``x_m = mean (alpha - 1) / alpha`` (``E[S] = alpha x_m /
        (alpha - 1) = mean``; infinite variance for ``alpha <= 2``).
    sigma : float
        Log-normal sigma (> 0).
    shape : float
        Pareto shape alpha (> 1).

    Returns
    -------
    size_bits : ndarray [n], float64
    """
    mean = positive_number("mean_bits", mean_bits)
    _check_distribution(distribution, sigma, shape)
    if distribution == "exponential":
        return rng.exponential(mean, n)
    if distribution == "lognormal":
        s = float(sigma)
        return rng.lognormal(math.log(mean) - 0.5 * s * s, s, n)
    a = float(shape)
    # numpy's Generator.pareto draws Lomax (Pareto II, scale 1): 1 + X is Pareto I, x_m = 1.
    return mean * (a - 1.0) / a * (1.0 + rng.pareto(a, n))


# --------------------------------------------------------------------------- time shares


def time_shares(counts, time_cap) -> np.ndarray:
    """Per-flow time share of each group under egalitarian PS with caps (water-filling).

    Parameters
    ----------
    counts : array_like [G], int
        Active flows per group.
    time_cap : array_like [G], float
        The group's cap over its peak rate, ``c / r`` (``inf``: no cap).

    Returns
    -------
    tau : ndarray [G], float64
        Time share of one flow of each group: ``min(time_cap, theta)`` with ``theta`` such
        that ``sum_g counts_g min(time_cap_g, theta) = 1``; ``time_cap`` when every group is
        capped (``sum counts * time_cap <= 1``); 0 for empty groups. A flow's rate is
        ``tau * r``.
    """
    counts = np.asarray(counts, dtype=np.int64)
    caps = np.asarray(time_cap, dtype=np.float64)
    tau = np.zeros(caps.shape)
    _water_fill(list(counts), list(caps), sorted(range(len(caps)), key=lambda k: caps[k]), tau)
    return tau


def _water_fill(counts, caps, order, tau) -> float:
    """Fill ``tau`` in place; return the server's busy share ``sum counts * tau``."""
    rem = 1.0
    m = 0
    for k in order:
        m += counts[k]
    if m == 0:
        for k in order:
            tau[k] = 0.0
        return 0.0
    i = 0
    n_order = len(order)
    while i < n_order:
        k = order[i]
        c = counts[k]
        if c:
            theta = rem / m
            if caps[k] < theta:
                tau[k] = caps[k]
                rem -= c * caps[k]
                m -= c
            else:
                break
        else:
            tau[k] = 0.0
        i += 1
    if m == 0:
        return 1.0 - rem
    theta = rem / m
    while i < n_order:
        k = order[i]
        tau[k] = theta if counts[k] else 0.0
        i += 1
    return 1.0


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PSResult:
    """What one PS simulation returns: per-flow records and time averages.

    Per-flow arrays cover the flows that arrived in ``[warmup_s, horizon_s)``; each is
    followed to its departure (arrivals go on after the horizon until the last recorded
    flow leaves, so long flows are not censored). Time averages are over
    ``[warmup_s, horizon_s]``.

    Attributes
    ----------
    arrival_s, size_bits, duration_s, throughput_bps : ndarray [n_flows], float64
        Arrival time, size, sojourn time and ``size / duration``.
    flow_class : ndarray [n_flows], int32
        Index into ``class_peak_bps``.
    class_peak_bps, class_cap_bps : ndarray [n_classes], float64
        Peak rate and cap (``inf``: none) of each class.
    offered_load : float
        ``rho = lambda E[S] sum_k p_k / r_k``.
    mean_in_system : float
        Time-average number of flows in the system.
    busy_fraction : float
        Share of time with at least one flow.
    utilisation : float
        Time-average share of server time in use (``rho`` without caps).
    n_events : int
        Arrivals plus departures simulated (including warm-up and drain).
    warmup_s, horizon_s : float
    """

    arrival_s: np.ndarray
    size_bits: np.ndarray
    duration_s: np.ndarray
    throughput_bps: np.ndarray
    flow_class: np.ndarray
    class_peak_bps: np.ndarray
    class_cap_bps: np.ndarray
    offered_load: float
    mean_in_system: float
    busy_fraction: float
    utilisation: float
    n_events: int
    warmup_s: float
    horizon_s: float

    @property
    def n_flows(self) -> int:
        return int(self.size_bits.size)

    def throughput_ratio_bps(self, flow_class: int | None = None) -> float:
        """``sum S_i / sum T_i`` (of one class), the estimator of ``E[S] / E[T]``.

        This is the quantity of the PS formulas (``C (1 - rho)``, ``r_k (1 - rho)``); the
        mean of ``throughput_bps`` is a different (larger) quantity. NaN without flows.
        """
        if flow_class is None:
            s, t = self.size_bits, self.duration_s
        else:
            sel = self.flow_class == flow_class
            s, t = self.size_bits[sel], self.duration_s[sel]
        total_t = float(t.sum())
        return float(s.sum()) / total_t if total_t > 0 else float("nan")


@dataclass(frozen=True)
class MeanCI:
    """Mean and two-sided 95 % Student-t confidence interval across replications."""

    mean: float
    half_width: float
    low: float
    high: float
    n: int


# --------------------------------------------------------------------------- simulation


def _class_arrays(peak_rate_bps, cap_bps, class_prob):
    peak = np.atleast_1d(np.asarray(peak_rate_bps, dtype=np.float64))
    if peak.ndim != 1 or peak.size == 0:
        raise InputError(_SOURCE, "peak_rate_bps", f"expected a number or a 1-D array, got shape {peak.shape}")
    if not np.all(np.isfinite(peak) & (peak > 0)):
        raise InputError(_SOURCE, "peak_rate_bps", "expected finite rates > 0")
    if cap_bps is None:
        cap = np.full(peak.shape, np.inf)
    else:
        cap = np.asarray(cap_bps, dtype=np.float64)
        if cap.ndim == 0:
            cap = np.full(peak.shape, float(cap))
        if cap.shape != peak.shape:
            raise InputError(_SOURCE, "cap_bps", f"expected {peak.size} caps (one per class), got {cap.size}")
        if np.any(np.isnan(cap) | ~(cap > 0)):
            raise InputError(_SOURCE, "cap_bps", "expected caps > 0 (inf: no cap)")
    if class_prob is None:
        if peak.size != 1:
            raise InputError(_SOURCE, "class_prob", f"expected {peak.size} class probabilities, got none")
        prob = np.ones(1)
    else:
        prob = np.atleast_1d(np.asarray(class_prob, dtype=np.float64))
        if prob.shape != peak.shape:
            raise InputError(_SOURCE, "class_prob",
                             f"expected {peak.size} probabilities (one per class), got {prob.size}")
        if np.any(~np.isfinite(prob) | (prob < 0)) or abs(prob.sum() - 1.0) > 1e-6:
            raise InputError(_SOURCE, "class_prob", f"expected shares >= 0 summing to 1, got sum {prob.sum():.6g}")
    return peak, cap, prob


def simulate_ps(
    rng: np.random.Generator,
    arrival_rate_per_s: float,
    mean_size_bits: float,
    peak_rate_bps,
    *,
    horizon_s: float,
    warmup_s: float = 0.0,
    cap_bps=None,
    class_prob=None,
    distribution: str = "exponential",
    sigma: float = 1.0,
    shape: float = 2.5,
) -> PSResult:
    """Simulate one PS server with Poisson flow arrivals (simpy, event by event).

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness (inter-arrival times, classes, sizes drawn in chunks).
    arrival_rate_per_s : float
        Poisson flow arrival rate lambda (> 0).
    mean_size_bits : float
        Mean flow size E[S], bit.
    peak_rate_bps : float or array_like [n_classes]
        Rate of a flow alone on the server, per class (a cell: ``B * SE_p``; a PON port: its
        payload capacity).
    horizon_s : float
        End of the recording window (> warmup_s).
    warmup_s : float
        Flows arriving before ``warmup_s`` are simulated but not recorded.
    cap_bps : None, float or array_like [n_classes]
        Per-flow rate cap of each class (``inf`` or None: none); spare time goes to the
        uncapped flows (see the module notes).
    class_prob : None or array_like [n_classes]
        Probability that a flow is of each class (required with more than one class).
    distribution, sigma, shape
        Flow-size law, see :func:`flow_sizes_bits`.

    Returns
    -------
    PSResult

    Raises
    ------
    InputError
        On a bad argument, or an offered load ``rho >= 1`` (no steady state; the flow-level
        answer is then "overloaded", see ``sim.traffic``).

    Notes
    -----
    Offered load ``rho = lambda E[S] sum_k p_k / r_k``; the PS answers of the module notes
    hold for ``rho < 1``. Flows of equal ``cap / peak`` share a virtual clock, so the cost
    per event is ``O(log n + G)``.
    """
    lam = positive_number("arrival_rate_per_s", arrival_rate_per_s)
    mean = positive_number("mean_size_bits", mean_size_bits)
    horizon = positive_number("horizon_s", horizon_s)
    warmup = _nonneg("warmup_s", warmup_s)
    if warmup >= horizon:
        raise InputError(_SOURCE, "warmup_s", f"expected less than horizon_s = {horizon:g}, got {warmup:g}")
    _check_distribution(distribution, sigma, shape)
    peak, cap, prob = _class_arrays(peak_rate_bps, cap_bps, class_prob)
    rho = lam * mean * float(np.sum(prob / peak))
    if not rho < 1.0:
        raise InputError(_SOURCE, "arrival_rate_per_s",
                         f"offered load rho = {rho:.4g} >= 1: the PS server has no steady state")

    # groups of equal time cap share a virtual clock
    tcap = cap / peak
    group_caps, class_group = np.unique(tcap, return_inverse=True)

    env = simpy.Environment()
    out: dict = {}
    env.process(_ps_process(env, rng, lam, mean, distribution, float(sigma), float(shape), peak, prob,
                            class_group.astype(np.int64), list(map(float, group_caps)), warmup, horizon, out))
    env.run()

    n_rec = out["n_rec"]
    arrival = out["arrival"][:n_rec]
    size = out["size"][:n_rec]
    duration = out["finish"][:n_rec] - arrival
    with np.errstate(divide="ignore", invalid="ignore"):
        throughput = np.where(duration > 0, size / duration, np.minimum(peak, cap)[out["cls"][:n_rec]])
    window = horizon - warmup
    return PSResult(
        arrival_s=arrival,
        size_bits=size,
        duration_s=duration,
        throughput_bps=throughput,
        flow_class=out["cls"][:n_rec].astype(np.int32),
        class_peak_bps=peak,
        class_cap_bps=cap,
        offered_load=float(rho),
        mean_in_system=out["area"] / window,
        busy_fraction=out["busy"] / window,
        utilisation=out["used"] / window,
        n_events=out["n_events"],
        warmup_s=warmup,
        horizon_s=horizon,
    )


def _ps_process(env, rng, lam, mean, distribution, sigma, shape, peak, prob, class_group, group_caps,
                warmup, horizon, out):
    """The simpy process: one loop, one timeout per event (arrival or departure)."""
    heappush, heappop = heapq.heappush, heapq.heappop
    timeout = env.timeout
    inf = math.inf
    n_groups = len(group_caps)
    single = n_groups == 1
    cap0 = group_caps[0]
    order = sorted(range(n_groups), key=lambda g: group_caps[g])
    heaps = [[] for _ in range(n_groups)]
    clock = [0.0] * n_groups  # virtual clock per group
    tau = [0.0] * n_groups  # time share of one flow per group
    counts = [0] * n_groups
    n_classes = peak.size
    peak_list = peak.tolist()

    # records of flows arriving in [warmup, horizon)
    cap_rec = 1024
    rec_arrival = np.empty(cap_rec)
    rec_size = np.empty(cap_rec)
    rec_finish = np.empty(cap_rec)
    rec_cls = np.empty(cap_rec, dtype=np.int64)
    n_rec = 0
    outstanding = 0

    # arrival stream, drawn in chunks (gaps, then classes, then sizes: a fixed order)
    def refill():
        gaps = rng.exponential(1.0 / lam, _CHUNK)
        cls = rng.choice(n_classes, size=_CHUNK, p=prob) if n_classes > 1 else np.zeros(_CHUNK, dtype=np.int64)
        sizes = flow_sizes_bits(rng, _CHUNK, mean, distribution, sigma=sigma, shape=shape)
        return gaps.tolist(), cls.tolist(), sizes.tolist(), class_group[cls].tolist()

    gaps, clss, sizes, grps = refill()
    j = 0
    t_next = gaps[0]
    now = 0.0
    n = 0
    used_share = 0.0
    area = busy = used = 0.0
    n_events = 0
    recording = True  # arrivals still before horizon

    while True:
        # next departure
        dt_dep = inf
        gd = -1
        if n:
            if single:
                dt_dep = (heaps[0][0][0] - clock[0]) / tau[0]
                gd = 0
            else:
                for g in range(n_groups):
                    if counts[g]:
                        d = (heaps[g][0][0] - clock[g]) / tau[g]
                        if d < dt_dep:
                            dt_dep = d
                            gd = g
        dt_arr = t_next - now
        arrival = dt_arr <= dt_dep
        dt = dt_arr if arrival else dt_dep
        if dt < 0.0:
            dt = 0.0
        yield timeout(dt)
        t_prev = now
        now = env.now
        if n:
            if single:
                clock[0] += tau[0] * dt
            else:
                for g in range(n_groups):
                    if counts[g]:
                        clock[g] += tau[g] * dt
            a = t_prev if t_prev > warmup else warmup
            b = now if now < horizon else horizon
            if b > a:
                w = b - a
                area += n * w
                busy += w
                used += used_share * w
        n_events += 1

        if arrival:
            c = clss[j]
            g = grps[j]
            s = sizes[j]
            fid = -1
            if now >= warmup and recording:
                if now >= horizon:
                    recording = False
                else:
                    if n_rec == cap_rec:
                        cap_rec *= 2
                        rec_arrival = np.resize(rec_arrival, cap_rec)
                        rec_size = np.resize(rec_size, cap_rec)
                        rec_finish = np.resize(rec_finish, cap_rec)
                        rec_cls = np.resize(rec_cls, cap_rec)
                    fid = n_rec
                    rec_arrival[fid] = now
                    rec_size[fid] = s
                    rec_cls[fid] = c
                    n_rec += 1
                    outstanding += 1
            heappush(heaps[g], (clock[g] + s / peak_list[c], fid))
            counts[g] += 1
            n += 1
            j += 1
            if j == _CHUNK:
                gaps, clss, sizes, grps = refill()
                j = 0
            t_next = now + gaps[j]
        else:
            _, fid = heappop(heaps[gd])
            counts[gd] -= 1
            n -= 1
            if fid >= 0:
                rec_finish[fid] = now
                outstanding -= 1
            if n == 0:
                # an idle server: reset the clocks (keeps them small; nothing is in flight)
                for g in range(n_groups):
                    clock[g] = 0.0

        # new time shares
        if single:
            if n:
                t0 = 1.0 / n
                if t0 > cap0:
                    tau[0] = cap0
                    used_share = cap0 * n
                else:
                    tau[0] = t0
                    used_share = 1.0
            else:
                used_share = 0.0
        else:
            used_share = _water_fill(counts, group_caps, order, tau)
        if not recording and outstanding == 0:
            break

    out.update(n_rec=n_rec, arrival=rec_arrival, size=rec_size, finish=rec_finish, cls=rec_cls,
               area=area, busy=busy, used=used, n_events=n_events)


def spawn_rngs(seed, n: int) -> list[np.random.Generator]:
    """``n`` independent generators from ``SeedSequence(seed).spawn(n)``.

    ``seed`` is an int, a sequence of ints or a ``numpy.random.SeedSequence``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(_SOURCE, "n_replications", f"expected an integer >= 1, got {n!r}")
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.default_rng(child) for child in ss.spawn(int(n))]


def simulate_ps_replications(seed, n_replications: int, *args, **kwargs) -> tuple[PSResult, ...]:
    """Run :func:`simulate_ps` ``n_replications`` times on independent streams.

    The streams come from :func:`spawn_rngs`; the remaining arguments go to
    :func:`simulate_ps` (without its ``rng``).
    """
    return tuple(simulate_ps(rng, *args, **kwargs) for rng in spawn_rngs(seed, n_replications))


# --------------------------------------------------------------------------- statistics

_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)
_Z975 = 1.959963984540054


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom.

    ``df <= 30``: the standard table (e.g. NIST/SEMATECH e-Handbook, Table 1.4.2.7.3, to 3
    decimals); ``df > 30``: the Cornish-Fisher expansion
    ``z + (z^3 + z) / (4 df) + (5 z^5 + 16 z^3 + 3 z) / (96 df^2)`` (Abramowitz & Stegun
    26.7.5), within 1e-3 of the exact value there.
    """
    if df < 1:
        raise InputError(_SOURCE, "df", f"expected degrees of freedom >= 1, got {df!r}")
    if df <= 30:
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df * df)


def mean_ci95(values) -> MeanCI:
    """Mean and 95 % Student-t confidence interval of independent replication values.

    ``half_width = t_{0.975, n-1} s / sqrt(n)`` with ``s`` the sample standard deviation;
    NaN half width for a single value. NaN values are dropped.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        nan = float("nan")
        return MeanCI(nan, nan, nan, nan, 0)
    m = float(x.mean())
    if n == 1:
        return MeanCI(m, float("nan"), float("nan"), float("nan"), 1)
    h = t_quantile_975(n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return MeanCI(m, h, m - h, m + h, n)


# --------------------------------------------------------------------------- analytic PS


def ps_flow_throughput_bps(peak_rate_bps, load):
    """Flow throughput ``E[S] / E[T] = r (1 - rho)`` of M/G/1-PS; 0 where ``rho >= 1``.

    Kleinrock 1976 §4.4; Bonald & Proutière 2003 §3 (class of peak rate ``r``).
    Valid for Poisson flow arrivals, any size law (insensitivity).
    """
    r = np.asarray(peak_rate_bps)
    rho = np.asarray(load)
    return np.where(rho < 1.0, r * (1.0 - np.minimum(rho, 1.0)), 0.0).astype(np.result_type(r, np.float32))


def ps_mean_sojourn_s(mean_size_bits, capacity_bps, load):
    """Mean sojourn ``E[T] = E[S] / (C (1 - rho))`` of M/G/1-PS (Kleinrock 1976 §4.4); inf for rho >= 1."""
    rho = np.asarray(load, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(rho < 1.0, np.asarray(mean_size_bits) / (np.asarray(capacity_bps) * (1.0 - rho)), np.inf)


def ps_mean_in_system(load):
    """Mean number of flows ``E[N] = rho / (1 - rho)`` of M/G/1-PS (Kleinrock 1976 §4.4); inf for rho >= 1."""
    rho = np.asarray(load, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(rho < 1.0, rho / (1.0 - rho), np.inf)


def capped_ps_mean_in_system(offered_bps: float, capacity_bps: float, cap_bps: float) -> float:
    """Mean number of flows of PS with a per-flow rate cap (Bonald & Roberts 2012).

    Parameters
    ----------
    offered_bps : float
        Offered traffic ``lambda E[S]``, bit/s (< capacity).
    capacity_bps : float
        Link capacity ``C``.
    cap_bps : float
        Per-flow peak rate ``c`` (all flows alike).

    Returns
    -------
    float
        ``E[N]`` of the birth-death process with arrival rate ``lambda`` and departure rate
        ``min(n c, C) / E[S]`` in state ``n``: ``pi_n ∝ a^n / prod_{k<=n} min(k, m)`` with
        ``a = lambda E[S] / c``, ``m = C / c`` (Erlang C for integer ``m``; insensitive to the
        size law). Summed exactly to ``n = ceil(m)``, the geometric tail (ratio
        ``rho = a / m``) in closed form.
    """
    a = positive_number("offered_bps", offered_bps) / positive_number("cap_bps", cap_bps)
    m = positive_number("capacity_bps", capacity_bps) / float(cap_bps)
    rho = a / m
    if not rho < 1.0:
        raise InputError(_SOURCE, "offered_bps", f"expected less than capacity_bps, got load {rho:.4g}")
    n0 = max(int(math.ceil(m)), 1)
    # log pi_n (unnormalised) for n = 0..n0, departure rate min(n, m) in units of c / E[S]
    logp = [0.0]
    for k in range(1, n0 + 1):
        logp.append(logp[-1] + math.log(a) - math.log(min(k, m)))
    top = max(logp)
    p = [math.exp(v - top) for v in logp]
    # tail n > n0: pi_n = pi_n0 rho^(n - n0)
    tail_mass = p[-1] * rho / (1.0 - rho)
    tail_mean = p[-1] * (n0 * rho / (1.0 - rho) + rho / (1.0 - rho) ** 2)
    z = sum(p) + tail_mass
    mean_n = sum(i * v for i, v in enumerate(p)) + tail_mean
    return mean_n / z


def capped_ps_throughput_bps(offered_bps: float, capacity_bps: float, cap_bps: float) -> float:
    """Flow throughput ``gamma = lambda E[S] / E[N]`` of PS with per-flow cap (Bonald & Roberts 2012).

    Little's law on :func:`capped_ps_mean_in_system`; tends to ``c`` at low load and to
    ``C (1 - rho)`` when ``c >= C``. Returns ``c`` for zero offered traffic.
    """
    if float(offered_bps) == 0.0:
        return float(min(cap_bps, capacity_bps))
    return float(offered_bps) / capped_ps_mean_in_system(offered_bps, capacity_bps, cap_bps)
