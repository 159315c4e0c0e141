"""The 5G busy hour per cell: demand per pixel, flow-level load, the load <-> interference
fixed point (the simpy check of chosen cells is :mod:`sim.cellsim`).

Model
-----
Flow-level model of a downlink data channel (T. Bonald, A. Proutière, "Wireless downlink
data channels: user performance and cell dimensioning", ACM MobiCom 2003, §3): flows arrive
at pixel ``p`` as a Poisson process of rate ``lambda_p`` (flows/s) with mean size ``E[S]``
(bit); the serving cell shares its time equally among its active flows (egalitarian
processor sharing), and a flow at ``p`` alone in its cell gets the *peak rate* ``r_p``
(bit/s: the cell's resources times the spectral efficiency at ``p``). Then

* cell load ``rho_c = sum_{p in c} lambda_p E[S] / r_p`` (the share of time the cell is busy);
* flow throughput at ``p``: ``gamma_p = E[S] / E[T_p] = r_p (1 - rho_c)`` for ``rho_c < 1``;
  the cell is *overloaded* for ``rho_c >= 1`` (no steady state; throughput 0 here).

The result depends on the flow-size law only through ``E[S]`` (insensitivity, Bonald &
Proutière 2003 §3; Kleinrock 1976 §4.4). Pixels with no serving cell (``-1``) or no rate
(``r_p <= 0`` or NaN: outage) carry no load and get a NaN throughput.

Load feeds back into interference: the caller's ``rates_for_load(load)``
(:func:`sim.busyload.rates_for_load`) recomputes each pixel's rates with each interferer
weighted by its cell load; :func:`fixed_point_load`
iterates load -> SINR -> rate -> load.

Everything here is a pure function of arrays; :func:`cell_load` and
:func:`busy_hour_throughput_bps` are vectorised with ``np.bincount`` and gathers (1e7 pixels and
1e5 cells: about 0.6 s and 0.4 s on one core). The simpy core is :mod:`sim.queueing`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.errors import InputError
from sim.queueing import nonneg_array, positive_number

__all__ = [
    "users_per_pixel",
    "users_layer_masks",
    "flow_arrival_rate_per_s",
    "cell_load",
    "busy_hour_throughput_bps",
    "pixel_overloaded",
    "cell_throughput_bps",
    "FixedPointResult",
    "fixed_point_load",
    "CellFixedPoint",
    "fixed_point_cells",
    "mixed_peak_rate_bps",
    "served_arrival_rate_per_s",
    "cell_throughput_from_sums_bps",
    "BusyHourLayer",
    "busy_hour_layer",
    "cell_flow_classes",
    "cell_flow_stats",
]

_SOURCE = "sim.traffic"

# --------------------------------------------------------------------------- validation


def _share(field: str, value) -> np.ndarray:
    x = np.asarray(value, dtype=np.float64)
    bad = np.isnan(x) | (x < 0.0) | (x > 1.0)
    if np.any(bad):
        first = x[bad].ravel()[0]
        raise InputError(_SOURCE, field, f"expected a share in [0, 1], got {first:g}")
    return x


def _nonneg_array(field: str, value) -> np.ndarray:
    return nonneg_array(field, value, source=_SOURCE)


def _serving(serving_cell, n_pix: int, n_cells: int) -> np.ndarray:
    s = np.asarray(serving_cell)
    if not np.issubdtype(s.dtype, np.integer):
        raise InputError(_SOURCE, "serving_cell", f"expected integer cell indices (-1: none), got dtype {s.dtype}")
    if s.shape != (n_pix,):
        raise InputError(_SOURCE, "serving_cell", f"expected shape ({n_pix},), got {s.shape}")
    if s.size and (s.min() < -1 or s.max() >= n_cells):
        raise InputError(_SOURCE, "serving_cell", f"expected indices in [-1, {n_cells - 1}], got {s.min()}..{s.max()}")
    return s


def _n_cells(n_cells) -> int:
    if isinstance(n_cells, bool) or not isinstance(n_cells, (int, np.integer)) or n_cells < 0:
        raise InputError(_SOURCE, "n_cells", f"expected an integer >= 0, got {n_cells!r}")
    return int(n_cells)


# --------------------------------------------------------------------------- demand


def users_per_pixel(population, market_share, fiveg_share, active_share, penetration=1.0) -> np.ndarray:
    """Busy-hour active 5G users of one operator per pixel.

    Parameters
    ----------
    population : array_like [n_pix]
        Residents per pixel (finite, >= 0; zero outside land).
    market_share : float or array_like
        The operator's share of mobile users, in [0, 1].
    fiveg_share : float or array_like
        Share of mobile users on 5G, in [0, 1] (Shanghai: 21.3 % in April 2022, 40.8 % at
        end-2023, Shanghai Communications Administration).
    active_share : float or array_like
        Share of 5G users active in the busy hour, in [0, 1].
    penetration : float
        Mobile users per resident (>= 0).

    Returns
    -------
    users : ndarray [n_pix], float64
        ``population * penetration * market_share * fiveg_share * active_share``.
    """
    pop = _nonneg_array("population", population).astype(np.float64)
    pen = _nonneg_array("penetration", penetration)
    ms = _share("market_share", market_share)
    fs = _share("fiveg_share", fiveg_share)
    act = _share("active_share", active_share)
    return pop * pen * ms * fs * act


def users_layer_masks(rate_indoor_bps_by_layer) -> list[np.ndarray]:
    """Which layer carries each pixel's users: per pixel, the network's layer of highest indoor rate.

    The users of a radio network camp on its best layer (the capacity layer where it
    serves, the coverage layer where only it reaches; the same choice as the network's
    coverage indicators). Pixels no layer serves (rate 0 or NaN everywhere) carry no demand.

    Parameters
    ----------
    rate_indoor_bps_by_layer : sequence of arrays [n_pix]
        The indoor rate of each of the network's layers.

    Returns
    -------
    list of bool arrays [n_pix], one per layer, disjoint.
    """
    rates = np.stack([np.nan_to_num(r, nan=0.0) for r in rate_indoor_bps_by_layer])
    pick = np.argmax(rates, axis=0)
    served = rates.max(axis=0) > 0
    return [served & (pick == i) for i in range(rates.shape[0])]


def flow_arrival_rate_per_s(active_users, flows_per_user_per_h) -> np.ndarray:
    """Poisson flow arrival rate per pixel: ``users * flows_per_user_per_h / 3600`` (flows/s)."""
    u = _nonneg_array("active_users", active_users).astype(np.float64)
    f = _nonneg_array("flows_per_user_per_h", flows_per_user_per_h)
    return u * f / 3600.0


# --------------------------------------------------------------------------- flow-level model


def _served_mask(peak: np.ndarray, serving: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (serving >= 0) & (peak > 0) & np.isfinite(peak)


def cell_load(serving_cell, peak_rate_bps, arrival_rate_per_s, mean_flow_bits, n_cells) -> np.ndarray:
    """Cell load ``rho_c = sum_{p in c} lambda_p E[S] / r_p`` (Bonald & Proutière 2003, §3).

    Parameters
    ----------
    serving_cell : ndarray [n_pix], int
        Serving cell of each pixel (-1: none).
    peak_rate_bps : ndarray [n_pix], float
        Rate a flow at the pixel gets alone in its cell (0 or NaN: outage, no load).
    arrival_rate_per_s : ndarray [n_pix], float
        Flow arrival rate lambda_p (>= 0).
    mean_flow_bits : float
        Mean flow size E[S], bit.
    n_cells : int

    Returns
    -------
    load : ndarray [n_cells], float64
        Uncapped load; ``>= 1`` means overloaded.
    """
    n = _n_cells(n_cells)
    peak = np.asarray(peak_rate_bps)
    lam = _nonneg_array("arrival_rate_per_s", arrival_rate_per_s)
    if peak.shape != lam.shape or peak.ndim != 1:
        raise InputError(_SOURCE, "peak_rate_bps",
                         f"expected the shape of arrival_rate_per_s {lam.shape}, got {peak.shape}")
    s = _serving(serving_cell, peak.size, n)
    es = positive_number("mean_flow_bits", mean_flow_bits, source=_SOURCE)
    ok = _served_mask(peak, s)
    work_s = lam[ok] * es / peak[ok].astype(np.float64)  # seconds of solo service per second
    return np.bincount(s[ok], weights=work_s, minlength=n).astype(np.float64)


def busy_hour_throughput_bps(peak_rate_bps, serving_cell, load) -> np.ndarray:
    """Flow throughput per pixel ``gamma_p = r_p (1 - rho_c)`` (Bonald & Proutière 2003, §3).

    Parameters
    ----------
    peak_rate_bps : ndarray [n_pix], float32 or float64
    serving_cell : ndarray [n_pix], int (-1: none)
    load : ndarray [n_cells], float
        Cell loads (e.g. from :func:`cell_load`).

    Returns
    -------
    throughput_bps : ndarray [n_pix], dtype of ``peak_rate_bps`` (at least float32)
        ``r_p (1 - rho_c)`` for ``rho_c < 1``; 0 where the cell is overloaded
        (``rho_c >= 1``, see :func:`pixel_overloaded`); NaN with no serving cell or no rate.
    """
    peak = np.asarray(peak_rate_bps)
    dtype = np.result_type(peak.dtype, np.float32)
    rho = np.asarray(load, dtype=np.float64)
    s = _serving(serving_cell, peak.size, rho.size)
    ok = _served_mask(peak, s)
    rho_p = rho[np.where(ok, s, 0)]
    out = np.where(rho_p < 1.0, peak * (1.0 - np.minimum(rho_p, 1.0)), 0.0)
    return np.where(ok, out, np.nan).astype(dtype, copy=False)


def pixel_overloaded(serving_cell, load) -> np.ndarray:
    """True where the pixel's serving cell has ``rho_c >= 1`` (no steady state)."""
    rho = np.asarray(load, dtype=np.float64)
    s = np.asarray(serving_cell)
    return (s >= 0) & (rho[np.where(s >= 0, s, 0)] >= 1.0)


def cell_throughput_bps(peak_rate_bps, arrival_rate_per_s, load: float) -> float:
    """Analytic flow throughput of one cell, ``E[S] / E[T]`` over all its flows.

    ``gamma = (1 - rho) / sum_p (lambda_p / Lambda) / r_p``: the flow-weighted harmonic mean
    of the peak rates times ``1 - rho`` (Bonald & Proutière 2003, §3; ``E[T] = sum_p
    (lambda_p / Lambda) E[S] / (r_p (1 - rho))``). 0 for ``rho >= 1``; NaN without demand.
    The quantity the simpy estimate :meth:`sim.queueing.PSResult.throughput_ratio_bps`
    estimates.
    """
    r = np.asarray(peak_rate_bps, dtype=np.float64)
    lam = _nonneg_array("arrival_rate_per_s", arrival_rate_per_s).astype(np.float64)
    ok = (r > 0) & np.isfinite(r)
    total = lam[ok].sum()
    if total <= 0:
        return float("nan")
    if load >= 1.0:
        return 0.0
    return float((1.0 - load) / np.sum(lam[ok] / total / r[ok]))


# --------------------------------------------------------------------------- fixed point


@dataclass(frozen=True)
class FixedPointResult:
    """The load <-> interference fixed point.

    Attributes
    ----------
    load : ndarray [n_cells], float64
        Loads (capped at 1) that weighted the interference of the last rate evaluation.
    implied_load : ndarray [n_cells], float64
        Uncapped loads ``sum lambda E[S] / r`` implied by the last rates.
    saturated : ndarray [n_cells], bool
        ``implied_load >= 1``: overloaded cells (interfering at full load).
    peak_rate_bps : ndarray [n_pix]
        Rates of the last evaluation (consistent with ``load``).
    serving_cell : ndarray [n_pix], int
    throughput_bps : ndarray [n_pix]
        :func:`busy_hour_throughput_bps` of those rates at ``implied_load``.
    iterations : int
        Rate evaluations made.
    max_change : float
        ``max |min(implied_load, 1) - load|`` at the end.
    converged : bool
        ``max_change < tol``.
    change_history, mean_load_history : ndarray [iterations], float64
        Largest load change and mean load of each iteration.
    """

    load: np.ndarray
    implied_load: np.ndarray
    saturated: np.ndarray
    peak_rate_bps: np.ndarray
    serving_cell: np.ndarray
    throughput_bps: np.ndarray
    iterations: int
    max_change: float
    converged: bool
    change_history: np.ndarray
    mean_load_history: np.ndarray


def fixed_point_load(
    compute_peak_rate: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    arrival_rate_per_s,
    mean_flow_bits: float,
    n_cells: int,
    *,
    tol: float = 1e-3,
    max_iter: int = 30,
    damping: float = 0.5,
    initial_load=None,
) -> FixedPointResult:
    """Iterate load -> SINR -> rate -> load to a fixed point.

    Parameters
    ----------
    compute_peak_rate : callable
        ``compute_peak_rate(load [n_cells]) -> (peak_rate_bps [n_pix], serving_cell [n_pix])``:
        the coverage kernel rerun with each interferer's power weighted by its cell's load.
    arrival_rate_per_s : ndarray [n_pix]
        Flow arrival rate per pixel.
    mean_flow_bits : float
        Mean flow size E[S].
    n_cells : int
    tol : float
        Stop when ``max_c |min(rho_c(r(load)), 1) - load_c| < tol``.
    max_iter : int
        Rate evaluations at most.
    damping : float in (0, 1]
        Share of the step taken: ``load <- load + damping (min(rho(r(load)), 1) - load)``;
        1 is the plain iteration. Damping avoids the two-cycle of strongly coupled cells.
    initial_load : None or array_like [n_cells]
        Start (default 0: the unloaded network; since more load never raises a rate, the
        iterates then rise monotonically to the least fixed point).

    Returns
    -------
    FixedPointResult

    Notes
    -----
    Loads are capped at 1 as interference weights (a cell cannot transmit more than all the
    time); cells with ``rho >= 1`` are flagged ``saturated`` and their pixels get throughput
    0 (:func:`busy_hour_throughput_bps`).
    """
    n = _n_cells(n_cells)
    es = positive_number("mean_flow_bits", mean_flow_bits, source=_SOURCE)
    lam = _nonneg_array("arrival_rate_per_s", arrival_rate_per_s)
    last: dict = {}

    def offered(load):
        last["peak"], last["serving"] = compute_peak_rate(load.copy())
        return cell_load(last["serving"], last["peak"], lam, es, n)

    fp = fixed_point_cells(offered, n, tol=tol, max_iter=max_iter, damping=damping, initial_load=initial_load)
    peak, serving = np.asarray(last["peak"]), np.asarray(last["serving"])
    return FixedPointResult(
        load=fp.load,
        implied_load=fp.implied_load,
        saturated=fp.saturated,
        peak_rate_bps=peak,
        serving_cell=serving,
        throughput_bps=busy_hour_throughput_bps(peak, serving, fp.implied_load),
        iterations=fp.iterations,
        max_change=fp.max_change,
        converged=fp.converged,
        change_history=fp.change_history,
        mean_load_history=fp.mean_load_history,
    )


@dataclass(frozen=True)
class CellFixedPoint:
    """The fixed point on cell loads alone (:func:`fixed_point_cells`); fields as :class:`FixedPointResult`."""

    load: np.ndarray
    implied_load: np.ndarray
    saturated: np.ndarray
    iterations: int
    max_change: float
    converged: bool
    change_history: np.ndarray
    mean_load_history: np.ndarray


def fixed_point_cells(
    offered_load: Callable[[np.ndarray], np.ndarray],
    n_cells: int,
    *,
    tol: float = 1e-3,
    max_iter: int = 30,
    damping: float = 0.5,
    initial_load=None,
) -> CellFixedPoint:
    """Iterate ``load <- load + damping (min(offered_load(load), 1) - load)`` to a fixed point.

    ``offered_load(load [n_cells]) -> rho [n_cells]``: the uncapped cell loads ``sum lambda
    E[S] / r`` implied by the rates at interference weighted by ``load`` (a whole-grid
    :func:`cell_load`, or a map-reduce over tiles, :class:`sim.busyload.TileLoad`). The
    iteration of :func:`fixed_point_load` (which calls this) on the loads alone: ``tol``,
    ``max_iter``, ``damping`` and ``initial_load`` as there. ``load`` of the result is the
    load of the last evaluation and ``implied_load`` what it gave.
    """
    n = _n_cells(n_cells)
    tol = positive_number("tol", tol, source=_SOURCE)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise InputError(_SOURCE, "max_iter", f"expected an integer >= 1, got {max_iter!r}")
    d = float(damping)
    if not (0.0 < d <= 1.0):
        raise InputError(_SOURCE, "damping", f"expected a number in (0, 1], got {damping!r}")
    if initial_load is None:
        load = np.zeros(n)
    else:
        load = _share("initial_load", initial_load).astype(np.float64).copy()
        if load.shape != (n,):
            raise InputError(_SOURCE, "initial_load", f"expected shape ({n},), got {load.shape}")

    changes, means = [], []
    converged = False
    for it in range(int(max_iter)):
        implied = np.asarray(offered_load(load.copy()), dtype=np.float64)
        target = np.minimum(implied, 1.0)
        change = float(np.max(np.abs(target - load))) if n else 0.0
        changes.append(change)
        means.append(float(load.mean()) if n else 0.0)
        if change < tol:
            converged = True
            break
        if it == int(max_iter) - 1:
            break  # keep ``load`` the loads of the last evaluation (the rates match it)
        load = load + d * (target - load)
    return CellFixedPoint(load=load, implied_load=implied, saturated=implied >= 1.0, iterations=len(changes),
                          max_change=changes[-1], converged=converged, change_history=np.asarray(changes),
                          mean_load_history=np.asarray(means))


# --------------------------------------------------------------------------- busy hour of a layer


def _inverse_rate(rate_bps) -> np.ndarray:
    """``1 / r`` where a class can be served (``r > 0``, finite), else 0 (outage: no load)."""
    r = np.asarray(rate_bps, dtype=np.float64)
    ok = np.isfinite(r) & (r > 0)
    return np.where(ok, 1.0 / np.where(ok, r, 1.0), 0.0)


def mixed_peak_rate_bps(rate_indoor_bps, rate_outdoor_bps, indoor_share: float) -> np.ndarray:
    """Peak rate of a pixel whose users are a share ``s`` indoors, for the cell load.

    A pixel's flows are two classes: indoor (share ``s``, peak rate ``r_in``) and outdoor
    (``1 - s``, ``r_out``). Their solo service time per flow is ``E[S] (s / r_in +
    (1 - s) / r_out)`` (Bonald & Proutière 2003, §3: the load is additive over classes), so
    the pixel loads its cell like one class of rate::

        r_mix = 1 / (s / r_in + (1 - s) / r_out)

    A class in outage (rate 0 or NaN) carries no load (its users are not served).

    Returns
    -------
    rate_bps : ndarray [n_pix], float64
        0 where neither class can be served.
    """
    s = float(_share("indoor_share", indoor_share))
    w = s * _inverse_rate(rate_indoor_bps) + (1.0 - s) * _inverse_rate(rate_outdoor_bps)
    return np.where(w > 0, 1.0 / np.where(w > 0, w, 1.0), 0.0)


@dataclass(frozen=True)
class BusyHourLayer:
    """The busy hour of one layer: fixed point, per-pixel throughput, per-cell figures.

    Attributes
    ----------
    fixed_point : FixedPointResult
        Of the mixed indoor/outdoor peak rates (:func:`mixed_peak_rate_bps`).
    arrival_rate_per_s : ndarray [n_pix]
        Flow arrival rate of the users the layer serves at each pixel.
    rate_indoor_bps, rate_outdoor_bps : ndarray [n_pix]
        Peak rates (a flow alone in its cell) at the final loads.
    throughput_indoor_bps, throughput_outdoor_bps : ndarray [n_pix]
        ``r (1 - rho_c)`` (:func:`busy_hour_throughput_bps` at the uncapped loads): 0 in
        overloaded cells, NaN without a serving cell or rate.
    cell_users : ndarray [n_cells]
        Busy-hour active users the cell serves (its pixels' users, outage included).
    cell_arrival_rate_per_s : ndarray [n_cells]
        Flows per second the cell serves (classes in outage left out).
    cell_throughput_bps : ndarray [n_cells]
        Analytic flow throughput ``E[S] / E[T] = Lambda E[S] (1 - rho) / rho`` over the
        cell's flows (:func:`cell_throughput_bps`); 0 when overloaded, NaN without demand.
    """

    fixed_point: FixedPointResult
    arrival_rate_per_s: np.ndarray
    rate_indoor_bps: np.ndarray
    rate_outdoor_bps: np.ndarray
    throughput_indoor_bps: np.ndarray
    throughput_outdoor_bps: np.ndarray
    cell_users: np.ndarray
    cell_arrival_rate_per_s: np.ndarray
    cell_throughput_bps: np.ndarray


def busy_hour_layer(
    rates_for_load: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    serving_cell,
    active_users,
    flows_per_user_per_h: float,
    mean_flow_bits: float,
    n_cells: int,
    *,
    indoor_share: float,
    tol: float = 1e-3,
    max_iter: int = 30,
    damping: float = 0.5,
) -> BusyHourLayer:
    """The busy hour of one layer: load <-> interference fixed point and throughputs.

    Parameters
    ----------
    rates_for_load : callable
        ``rates_for_load(load [n_cells]) -> (rate_indoor_bps, rate_outdoor_bps)``, each
        ``[n_pix]``: the peak rates with each interferer weighted by its cell load
        (:func:`sim.busyload.rates_for_load`).
    serving_cell : ndarray [n_pix], int
        Serving cell (-1: none); it does not depend on load (strongest received power).
    active_users : ndarray [n_pix]
        Busy-hour active users of the layer at each pixel (:func:`users_per_pixel`, 0 where
        the users are served by another layer).
    flows_per_user_per_h, mean_flow_bits : float
        Demand of one active user: flows per hour and mean flow size ``E[S]``.
    n_cells : int
    indoor_share : float in [0, 1]
        Share of users indoors (indoor and outdoor users are separate flow classes).
    tol, max_iter, damping
        Of :func:`fixed_point_load`.

    Returns
    -------
    BusyHourLayer

    Notes
    -----
    Flow-level model of Bonald & Proutière 2003 (§3; module notes): the load of cell ``c``
    is ``rho_c = E[S] sum_p lambda_p (s / r_in,p + (1 - s) / r_out,p)``, a flow at ``p``
    gets ``r_p (1 - rho_c)``. The fixed point starts from the unloaded network (loads 0).
    """
    users = _nonneg_array("active_users", active_users).astype(np.float64)
    lam = flow_arrival_rate_per_s(users, flows_per_user_per_h)
    s = float(_share("indoor_share", indoor_share))
    n = _n_cells(n_cells)
    serving = _serving(serving_cell, lam.size, n)
    es = positive_number("mean_flow_bits", mean_flow_bits, source=_SOURCE)
    last: dict[str, np.ndarray] = {}

    def peak_for_load(load):
        r_in, r_out = rates_for_load(load)
        last["in"], last["out"] = np.asarray(r_in), np.asarray(r_out)
        return mixed_peak_rate_bps(r_in, r_out, s), serving

    fp = fixed_point_load(peak_for_load, lam, es, n, tol=tol, max_iter=max_iter, damping=damping)
    return _layer_result(fp, lam, users, last["in"], last["out"], serving, s, es, n)


def served_arrival_rate_per_s(arrival_rate_per_s, rate_indoor_bps, rate_outdoor_bps, indoor_share: float):
    """Per pixel, the flows per second its cell serves: ``lambda (s [r_in > 0] + (1 - s) [r_out > 0])``
    (classes in outage left out; NaN rates count as outage), float64."""
    s = float(indoor_share)
    lam = np.asarray(arrival_rate_per_s, dtype=np.float64)
    return lam * (s * (_inverse_rate(rate_indoor_bps) > 0) + (1.0 - s) * (_inverse_rate(rate_outdoor_bps) > 0))


def cell_throughput_from_sums_bps(cell_arrival_rate_per_s, implied_load, mean_flow_bits: float) -> np.ndarray:
    """Per cell, ``Lambda E[S] (1 - rho) / rho`` (:func:`cell_throughput_bps` from the cell's sums):
    0 when overloaded, NaN without demand."""
    cell_lam = np.asarray(cell_arrival_rate_per_s, dtype=np.float64)
    rho = np.asarray(implied_load, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = np.where(rho >= 1.0, 0.0, cell_lam * mean_flow_bits * (1.0 - rho) / rho)
    return np.where(cell_lam > 0, gamma, np.nan)


def _layer_result(fp: FixedPointResult, lam, users, r_in, r_out, serving, s: float, es: float, n: int):
    rho = fp.implied_load
    has = serving >= 0
    cell = serving[has]
    served_lam = served_arrival_rate_per_s(lam, r_in, r_out, s)
    cell_lam = np.bincount(cell, weights=served_lam[has], minlength=n)
    gamma = cell_throughput_from_sums_bps(cell_lam, rho, es)
    return BusyHourLayer(
        fixed_point=fp,
        arrival_rate_per_s=lam,
        rate_indoor_bps=r_in,
        rate_outdoor_bps=r_out,
        throughput_indoor_bps=busy_hour_throughput_bps(r_in, serving, rho),
        throughput_outdoor_bps=busy_hour_throughput_bps(r_out, serving, rho),
        cell_users=np.bincount(cell, weights=users[has], minlength=n),
        cell_arrival_rate_per_s=cell_lam,
        cell_throughput_bps=gamma,
    )


def cell_flow_classes(bh: BusyHourLayer, cell: int, indoor_share: float) -> tuple[np.ndarray, np.ndarray]:
    """The flow classes of one cell for :func:`sim.cellsim.simulate_cell`: ``(peak_rate_bps, arrival_rate_per_s)``.

    One indoor and one outdoor class per pixel the cell serves (classes in outage and
    pixels without demand dropped), with the rates of the fixed point; their load is the
    cell's ``implied_load`` and :func:`cell_throughput_bps` of them its
    ``cell_throughput_bps``.
    """
    s = float(_share("indoor_share", indoor_share))
    mine = (bh.fixed_point.serving_cell == int(cell)) & (bh.arrival_rate_per_s > 0)
    lam = bh.arrival_rate_per_s[mine]
    r = np.concatenate([bh.rate_indoor_bps[mine], bh.rate_outdoor_bps[mine]]).astype(np.float64)
    lam2 = np.concatenate([lam * s, lam * (1.0 - s)])
    keep = np.isfinite(r) & (r > 0) & (lam2 > 0)
    return r[keep], lam2[keep]


def cell_flow_stats(serving_cell, arrival_rate_per_s, throughput_indoor_bps, throughput_outdoor_bps,
                    indoor_share: float, n_cells: int, marks_bps=(100e6, 1e9)) -> dict[str, np.ndarray]:
    """Per cell, the spread of its flows' throughputs over the users' places: 5th and 50th
    percentile and the share of flows at or above each mark.

    Every pixel the cell serves holds an indoor and an outdoor user class (weights
    ``lambda s`` and ``lambda (1 - s)``), each with its processor-sharing mean throughput
    ``r (1 - rho)`` (the busy-hour rasters). Percentiles are flow-weighted over these class
    means (the lower value at a tie of the cumulative weight); the spread of single flows
    around their class mean (random number of competitors) is left to the simpy check, which
    reports it for the sampled cells. Classes with NaN throughput (no server) or no demand
    are left out; a cell without such classes gets NaN.

    Returns
    -------
    dict: ``p5_bps``, ``p50_bps`` and ``share_ge_<mark>`` per mark (keys from
    :func:`_mark_key`), each an ndarray [n_cells].
    """
    s = float(_share("indoor_share", indoor_share))
    cell = np.asarray(serving_cell)
    lam = np.asarray(arrival_rate_per_s, dtype=np.float64)
    # the served classes only, cells as int32 and throughputs in their own float dtype (float32 from the
    # busy-hour rasters: exact, same order; about half the memory of the 2 x n_pix temporaries in float64)
    t_in, t_out = np.asarray(throughput_indoor_bps), np.asarray(throughput_outdoor_bps)
    t_dtype = np.result_type(t_in.dtype, t_out.dtype, np.float32)
    base = (cell >= 0) & (cell < n_cells) & (lam > 0)
    parts = []
    for tp_c, share_c in ((t_in, s), (t_out, 1.0 - s)):
        keep = np.flatnonzero(base & np.isfinite(tp_c) & (lam * share_c > 0))
        parts.append((cell[keep].astype(np.int32), tp_c[keep].astype(t_dtype), lam[keep] * share_c))
    cell2 = np.concatenate([p[0] for p in parts])
    tp = np.concatenate([p[1] for p in parts])
    w = np.concatenate([p[2] for p in parts])
    del parts
    total = np.bincount(cell2, weights=w, minlength=n_cells)
    out: dict[str, np.ndarray] = {}
    order, c_s = _order_by_cell_then_value(cell2, tp)
    tp_s, w_s = tp[order], w[order]
    del order
    cum = np.cumsum(w_s)
    # each cell's run in the sorted classes: the cumulative weight before it and its total, repeated over it
    first = np.flatnonzero(np.r_[True, c_s[1:] != c_s[:-1]]) if c_s.size else np.zeros(0, np.intp)
    runs = np.diff(np.r_[first, c_s.size])
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = (cum - np.repeat(cum[first] - w_s[first], runs)) / np.repeat(total[c_s[first]], runs)
    for q, key in ((0.05, "p5_bps"), (0.50, "p50_bps")):
        val = np.full(n_cells, np.nan)
        hit = np.flatnonzero(frac >= q * (1.0 - 1e-12))
        c_hit = c_s[hit]           # sorted: each cell's first hit starts a run
        at = np.flatnonzero(np.r_[True, c_hit[1:] != c_hit[:-1]]) if hit.size else hit
        val[c_hit[at]] = tp_s[hit[at]]
        out[key] = val
    for mark in marks_bps:
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.bincount(cell2, weights=w * (tp >= np.float64(mark)), minlength=n_cells) / total
        out[_mark_key(mark)] = np.where(total > 0, share, np.nan)
    return out


def _order_by_cell_then_value(cell, value) -> np.ndarray:
    """``(order, cell[order])`` with ``order = np.lexsort((value, cell))`` (``cell`` int >= 0, ``value``
    finite): the stable order by cell, then by value. For float32 values as two sorts of packed 64-bit
    integers (``key << 32 | position``, unique, so any sort is stable): by value (its bits mapped to an
    order-preserving uint32, -0 as +0), then by cell, a few times faster than ``lexsort``; other dtypes
    use ``lexsort``."""
    cell, value = np.asarray(cell), np.asarray(value)
    n = cell.size
    if value.dtype != np.float32 or n >= 2 ** 32 or (n and int(cell.max()) >= 2 ** 32):
        order = np.lexsort((value, cell))
        return order, cell[order]
    # about 32 bytes per item at the peak: the packed keys are sorted in place and reused as the positions
    bits = (value + np.float32(0.0)).view(np.uint32)          # -0.0 + 0.0 = +0.0: equal values, equal bits
    bits = np.where(bits >= np.uint32(2 ** 31), ~bits, bits | np.uint32(2 ** 31))
    low = np.uint64(2 ** 32 - 1)
    o1 = bits.astype(np.uint64)
    del bits
    o1 <<= np.uint64(32)
    o1 |= np.arange(n, dtype=np.uint64)
    o1.sort()
    o1 &= low
    o1 = o1.view(np.int64)                                    # the positions by value (below 2**32)
    by_cell = cell[o1].astype(np.uint64)
    by_cell <<= np.uint64(32)
    by_cell |= np.arange(n, dtype=np.uint64)
    by_cell.sort()
    cells = (by_cell >> np.uint64(32)).astype(cell.dtype)
    by_cell &= low
    return o1[by_cell.view(np.int64)], cells


def _mark_key(mark_bps: float) -> str:
    """``share_ge_100mbps``, ``share_ge_1gbps``: the column name of a throughput mark."""
    m = float(mark_bps)
    return f"share_ge_{m / 1e9:g}gbps" if m >= 1e9 else f"share_ge_{m / 1e6:g}mbps"
