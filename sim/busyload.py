"""Rates of every pixel for new cell loads: the load side of the busy hour.

The coverage kernel (:func:`sim.kernel.coverage_block` with ``top_m > 0``) keeps, per pixel,
the serving sector's power and the strongest interferers
(:class:`~sim.results.InterferenceTerms`); :func:`sinr_for_load` recomputes the SINR for new
cell loads from them without re-running path loss, and :func:`rates_for_load` the rates of a
layer (TS 38.214 CQI / TS 38.306 through :func:`sim.linkfield.layer_rate_bps`): the
whole-grid form, kept as the reference of the tiled one.

The busy-hour fixed point over tiles
------------------------------------
:class:`TileLoad` runs one layer's fixed point as a map-reduce over tiles of land pixels on an
engine stage (:mod:`sim.engine`; only ``stage.map`` with and without ``keep`` (and ``parts``) and
``stage.release``, so any engine of that interface runs it):

1. :func:`tile_state` (kept where it ran) reduces a coverage tile to what the iteration needs,
   float32: the served pixels (those with demand first), serving power, the top-M
   interferers as indices into the tile's own sectors, the residual, the O2I gain, the
   serving link's LOS probability, each class's floor, ``lambda E[S]``; the same task gives the
   parent, apart (:func:`tile_state_and_sectors`), the tile's sectors and its integers at zero load;
2. each iteration, :func:`tile_offered_load` evaluates only the tile's pixels with demand at
   the current loads (mixed indoor/outdoor peak rate, float32 SINR and rates) and returns
   the tile's offered load per cell as exact integers (fixed point ``2**-32``,
   :data:`LOAD_FRACTION_BITS`); the parent adds the tiles' integers (associative: the loads
   are the same for any tiles, workers or completion order) and takes the step
   (:func:`sim.traffic.fixed_point_cells`); the integers at zero load (the first iteration) come
   with the states, and after that only the tiles where an interferer of a pixel with demand
   changed activity get a task, which re-evaluates only those pixels, updating the tile's integers
   (the rates are steps of the SINR, CQI / MCS, so few loads change after the first iterations;
   the same bits as a whole evaluation);
3. :func:`tile_rates`, once at the end, gives every pixel's rates at the final loads.

Only per-cell vectors (the activities of a tile's sectors, its per-cell sums) travel per
iteration; the whole-grid terms (about 112 bytes per pixel and layer) never reach the parent
when the coverage kept its tiles (:func:`sim.coverage.coverage_on_stage`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import linkfield, linkmodel
from .errors import InputError
from .kernel import activity, o2i_loss_expected_db
from .results import BlockCoverage, InterferenceTerms, LayerRadio, TileTerms

__all__ = ["sinr_for_load", "rates_for_load", "lowest_rate_bps", "rate_floor_bps", "LOAD_FRACTION_BITS",
           "MAX_PIXEL_LOAD", "layer_params", "tile_state", "tile_sectors", "tile_offered_load", "tile_rates",
           "load_from_parts", "TileLoad", "tile_sources", "DELTA_MAX_SHARE", "tile_state_and_sectors"]


def sinr_for_load(terms: InterferenceTerms, load, *, o2i_loss_db: float = 0.0):
    """SINR (dB) of each pixel for new cell loads, without re-running path loss.

    Parameters
    ----------
    terms : InterferenceTerms
        From :func:`sim.kernel.coverage_block` / :func:`sim.coverage.compute_coverage` with ``top_m > 0``.
    load : array_like [n_sectors]
        New cell loads in [0, 1].
    o2i_loss_db : float or array_like [n_pix], optional
        Building penetration loss applied to signal and interference alike (0: outdoor;
        :func:`sim.kernel.o2i_loss_expected_db`, or each pixel's loss, for the indoor SINR).

    Returns
    -------
    sinr_db : ndarray [n_pix], float32
        ``S / (sum_m load[top_m] P_m + R + N)`` with the residual ``R`` of the remaining
        candidates at the loads of the original run (exact when ``top_m`` covers every
        candidate); NaN where there is no serving sector.
    """
    load = np.asarray(load, dtype=np.float64)
    if load.ndim != 1 or not np.all((load >= 0.0) & (load <= 1.0)):
        raise InputError("sinr_for_load", "load", "expected a 1-D array of cell loads in [0, 1]")
    sec = terms.top_sector
    if sec.size and sec.max() >= load.size:
        raise InputError("sinr_for_load", "load", f"expected at least {int(sec.max()) + 1} loads, got {load.size}")
    w = load.take(np.where(sec >= 0, sec, 0))
    i_mw = np.add.reduce(w * terms.top_mw, axis=1) + terms.residual_mw
    g = 10.0 ** (-np.asarray(o2i_loss_db, dtype=np.float64) / 10.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        sinr = 10.0 * np.log10((g * terms.signal_mw) / (g * i_mw + terms.noise_mw))
    sinr[terms.signal_mw <= 0.0] = np.nan
    return sinr.astype(np.float32)


def rates_for_load(cov, radio: LayerRadio, default_load: float):
    """``rates(load) -> (rate_indoor_bps, rate_outdoor_bps)`` of a layer for new cell loads.

    SINR from the coverage run's top-M interference terms (:func:`sinr_for_load`; indoor
    with the O2I loss :func:`sim.kernel.coverage_block` used for ``rate_indoor_bps``: the expected one,
    :func:`sim.kernel.o2i_loss_expected_db`, or with ``radio.o2i_random`` each pixel's, recovered as
    ``rsrp_dbm - rsrp_indoor_dbm``), each interferer weighted by its :func:`sim.kernel.activity` (idle
    cells at ``radio.min_load``), then the rate of :func:`sim.linkfield.layer_rate_bps`.
    ``cov`` is a layer's :class:`~sim.results.CoverageLayers` computed with ``top_m > 0`` at
    the load ``default_load``.

    ASSUMPTIONS: (1) the interference of the weaker candidates beyond the top M (computed at
    ``default_load``) scales with the mean activity of the pixel's top-M interferers; exact
    when the top M hold every candidate; ``default_load`` everywhere gives the coverage run's
    rates. (2) A user class the least-loaded network serves keeps at least its floor when
    interference rises: the lowest rate (CQI 1, or the Shannon SINR_MIN, one layer: link
    adaptation at the lowest MCS, :func:`lowest_rate_bps`), or its own rate at zero load
    when that is lower (a link ceiling or a 2 Rx device class can put a served class below
    the one-layer CQI-1 rate; the floor never lifts a rate above the idle network's).
    Without a floor a class dropping to outage would take its load off its cell: the load
    map would not be monotone and the iteration could cycle between CQI steps. With it, a
    rate lies between its floor and its zero-load rate and never rises with load, so more
    load never lowers a rate below its floor, the load map is monotone, and the iteration
    from zero load rises to the least fixed point.
    """
    terms = cov.interference
    o2i_db = o2i_loss_expected_db(radio)
    if radio.o2i_random:
        o2i_db = cov.rsrp_dbm.astype(np.float64) - cov.rsrp_indoor_dbm
    valid = terms.top_sector >= 0
    idx = np.where(valid, terms.top_sector, 0)
    n_valid = np.maximum(valid.sum(axis=1), 1)
    default_act = float(activity(default_load, radio.min_load))
    los = cov.los_prob_serving

    def raw(load):
        act = activity(load, radio.min_load)
        t = terms
        if default_act > 0:
            near = np.add.reduce(act.take(idx) * valid, axis=1) / n_valid
            t = dataclasses.replace(terms, residual_mw=terms.residual_mw * (near / default_act))
        sinr_in = sinr_for_load(t, act, o2i_loss_db=o2i_db)
        sinr_out = sinr_for_load(t, act)
        return linkfield.layer_rate_bps(sinr_in, radio), linkfield.layer_rate_bps(sinr_out, radio, los)

    zero_in, zero_out = raw(np.zeros(cov.load.size))
    floor_in, floor_out = rate_floor_bps(zero_in, radio), rate_floor_bps(zero_out, radio)

    def rates(load):
        r_in, r_out = raw(load)
        return np.maximum(r_in, floor_in), np.maximum(r_out, floor_out)

    return rates


def lowest_rate_bps(radio: LayerRadio) -> float:
    """The lowest rate of a served user: one layer at CQI 1 (TS 38.214 Table 5.2.2.1-3), or at
    the Shannon ``SINR_MIN`` with ``se_method = "shannon"``, without the link ceiling
    (:func:`sim.linkfield.layer_rate_bps` of the layer's device classes), bit/s."""
    lowest_db = (linkmodel.CQI_SINR_THRESHOLDS_DB[0] if radio.se_method == "cqi"
                 else linkmodel.SHANNON_SINR_MIN_DB)
    return float(linkfield.layer_rate_bps(np.float64(lowest_db), dataclasses.replace(radio, sinr_max_db=0.0)))


def rate_floor_bps(zero_load_rate_bps, radio: LayerRadio) -> np.ndarray:
    """Each class's floor (:func:`rates_for_load`, ASSUMPTION 2): ``min(zero-load rate,``
    :func:`lowest_rate_bps` ``)`` where the idle network serves it (rate > 0), else 0
    (dtype of the rates)."""
    r0 = np.asarray(zero_load_rate_bps)
    lowest = r0.dtype.type(lowest_rate_bps(radio))
    with np.errstate(invalid="ignore"):
        return np.where(r0 > 0, np.minimum(r0, lowest), r0.dtype.type(0.0))


# --------------------------------------------------------------------------- the busy hour over tiles
#
# The fixed point of a layer as a map-reduce over tiles of land pixels (sim.engine stages):
# a tile's state (:func:`tile_state`, kept where it was built) holds what its rates need at any
# load, float32; each iteration one task per tile returns the tile's offered load per cell
# (:func:`tile_offered_load`) as exact integers, which the parent sums (:class:`TileLoad`).

LOAD_FRACTION_BITS = 32
"""Fixed point of a pixel's offered load in the reduction: ``round(w 2**32)`` as an integer
(a quantum of 2.3e-10 of a cell's time; the rounding of a cell of 10**6 pixels adds at most
1.2e-4 to its load, 8 times below the default ``traffic.fixed_point_tol`` of 1e-3, and
about 1e-7 typically as errors of both signs cancel)."""
MAX_PIXEL_LOAD = 2.0 ** 20
"""Largest offered load one pixel adds to its cell in the reduction (a pixel alone loading its
cell a million times over; such a cell is saturated whatever the clip). With
:data:`LOAD_FRACTION_BITS` it bounds a pixel's integer below 2**52."""
_SPLIT_BITS = 26
"""A pixel's integer ``q < 2**52`` is summed as ``q >> 26`` and ``q & (2**26 - 1)``, each below
2**26: the float64 sums of ``np.bincount`` over a tile of up to 2**27 pixels stay integers
below 2**53, so they are exact, and the parent adds them as int64 (exact, associative): the
loads do not depend on the tiles, the workers or the order in which tiles complete."""


def layer_params(radio: LayerRadio, default_load: float, indoor_share: float, mean_flow_bits: float,
                 noise_mw: float) -> dict:
    """The per-layer constants of the tile tasks (small; travels with each task)."""
    return dict(radio=radio, default_act=float(activity(default_load, radio.min_load)),
                min_load=float(radio.min_load), indoor_share=float(indoor_share),
                mean_flow_bits=float(mean_flow_bits), noise_mw=float(noise_mw),
                o2i_db=float(o2i_loss_expected_db(radio)))


def tile_state(shared, src, arrival_rate_per_s, params: dict) -> dict:
    """A tile's busy-hour state (an engine task; keep its result).

    ``src`` is the tile's ``(start, stop, BlockCoverage)`` with interference terms (a kept
    coverage tile, or a slice of a whole-grid :class:`~sim.results.CoverageLayers`);
    ``arrival_rate_per_s`` the layer's flow arrival rate of the tile's pixels. The state
    holds the tile's served pixels, those with demand first (``n_active``), float32: serving
    power, top-M interferers (as indices into ``uniq``, the tile's sectors; pads point at an
    extra slot of activity 0), the residual scaled per ASSUMPTION (1) of
    :func:`rates_for_load`, the O2I gain, the serving link's LOS probability, each class's
    floor (ASSUMPTION (2)), and ``lambda E[S]`` of the active pixels.
    """
    start, stop, b = src
    radio = params["radio"]
    t = b.interference
    lam = np.asarray(arrival_rate_per_s, dtype=np.float64)
    served = np.asarray(b.best_sector) >= 0
    active = served & (lam > 0)
    pos = np.concatenate([np.flatnonzero(active), np.flatnonzero(served & ~active)]).astype(np.int32)
    top = np.asarray(t.top_sector)[pos]
    valid = top >= 0
    best = np.asarray(b.best_sector)[pos]
    # the tile's sectors in increasing order and each one's index among them (a mark per sector of the layer)
    mark = np.zeros(int(params["n_cells"]) + 1, dtype=np.int32)
    mark[best] = 1
    mark[top] = 1                         # pads (-1) mark the extra last slot
    mark[-1] = 0
    uniq = np.flatnonzero(mark).astype(np.int32)
    index = np.cumsum(mark, dtype=np.int32) - 1
    index[-1] = uniq.size                 # pads -> the extra slot of activity 0
    local = index.take(top)
    n_valid = np.maximum(valid.sum(axis=1), 1)
    resid = np.asarray(t.residual_mw, dtype=np.float64)[pos]
    if params["default_act"] > 0:
        resid = resid / (n_valid * params["default_act"])
    if radio.o2i_random:
        o2i_db = b.rsrp_dbm[pos].astype(np.float64) - b.rsrp_indoor_dbm[pos]
        gain = (10.0 ** (-o2i_db / 10.0)).astype(np.float32)
    else:
        gain = np.float32(10.0 ** (-params["o2i_db"] / 10.0))
    los = None if b.los_prob_serving is None else np.asarray(b.los_prob_serving, dtype=np.float32)[pos]
    st = dict(n=int(stop - start), n_active=int(active.sum()), pos=pos, uniq=uniq,
              serving=index.take(best),
              top=np.ascontiguousarray(local.T),          # [M, n]: each interferer rank's column contiguous
              top_mw=np.ascontiguousarray(np.asarray(t.top_mw, np.float32)[pos].T),
              resid=resid.astype(np.float32), signal=np.asarray(t.signal_mw, np.float32)[pos], gain=gain, los=los,
              lam_es=(lam[pos[:int(active.sum())]] * params["mean_flow_bits"]).astype(np.float32))
    zero = _local_activity(np.full(uniq.size, params["min_load"], dtype=np.float32))
    r0_in, r0_out = _rates(st, zero, params, slice(None))
    st["floor_in"], st["floor_out"] = rate_floor_bps(r0_in, radio), rate_floor_bps(r0_out, radio)
    # the offered load at zero load (every activity min_load), where fixed points start: the rates of _rates
    # there (floors applied as it applies them), so the first iteration needs no evaluation
    n_act = st["n_active"]
    r_in = np.maximum(r0_in[:n_act], st["floor_in"][:n_act])
    r_out = np.maximum(r0_out[:n_act], st["floor_out"][:n_act])
    hi, lo = _parts_of_rates(st, r_in, r_out, params, slice(0, n_act))
    cell = st["serving"][:n_act]
    st["parts_at_min_load"] = (_sum_by_cell(cell, hi, uniq.size), _sum_by_cell(cell, lo, uniq.size))
    return st


def tile_sectors(shared, state: dict):
    """What the parent needs to know of a tile's state (an engine task): its sectors ``uniq``, which of
    them interfere at a pixel with demand (bool [len(uniq)]: only their activities change the tile's
    offered load, :meth:`TileLoad.offered_load`), its pixels with demand ``n_active``, and its
    :func:`tile_offered_load` ``(hi, lo)`` with every activity at ``min_load`` (zero load)."""
    n_u = state["uniq"].size
    watch = np.zeros(n_u + 1, dtype=bool)
    watch[state["top"][:, :state["n_active"]].ravel()] = True
    return state["uniq"], watch[:n_u], state["n_active"], state["parts_at_min_load"]


def tile_state_and_sectors(shared, src, arrival_rate_per_s, params: dict):
    """``(state, sectors)``: a tile's :func:`tile_state` and its :func:`tile_sectors` in one task (kept in two
    parts: the state stays with the engine, the parent fetches the small second part)."""
    st = tile_state(shared, src, arrival_rate_per_s, params)
    return st, tile_sectors(shared, st)


def _value(shared, value):
    """``value`` itself (an engine task): a kept result brought to the parent."""
    return value


def _local_activity(act_of_uniq) -> np.ndarray:
    """Activities of a tile's sectors plus the pad slot (activity 0), float32."""
    return np.append(np.asarray(act_of_uniq, dtype=np.float32), np.float32(0.0))


def _rates(st: dict, act, params: dict, sl: slice):
    """Indoor and outdoor rates (float32) of the state's pixels ``sl`` at local activities ``act``.

    The interference of :func:`sinr_for_load` with the residual of :func:`rates_for_load`,
    float32, its M terms added in a fixed order (so a pixel's value never depends on its tile).
    """
    radio = params["radio"]
    top, mw = st["top"][:, sl], st["top_mw"][:, sl]      # [M, n]
    a = act.take(top[0])
    i_mw = a * mw[0]
    a_sum = a
    for m in range(1, top.shape[0]):
        a = act.take(top[m])
        i_mw += a * mw[m]
        a_sum = a_sum + a
    i_mw += st["resid"][sl] * (a_sum if params["default_act"] > 0 else np.float32(1.0))
    s_mw = st["signal"][sl]
    n_mw = np.float32(params["noise_mw"])
    g = st["gain"] if np.ndim(st["gain"]) == 0 else st["gain"][sl]
    sinr_out = np.log10(s_mw / (i_mw + n_mw))
    sinr_out *= np.float32(10.0)
    sinr_in = np.log10((g * s_mw) / (g * i_mw + n_mw))
    sinr_in *= np.float32(10.0)
    los = None if st["los"] is None else st["los"][sl]
    r_in = np.asarray(linkfield.layer_rate_bps(sinr_in, radio), dtype=np.float32)
    r_out = np.asarray(linkfield.layer_rate_bps(sinr_out, radio, los), dtype=np.float32)
    if "floor_in" in st:
        np.maximum(r_in, st["floor_in"][sl], out=r_in)
        np.maximum(r_out, st["floor_out"][sl], out=r_out)
    return r_in, r_out


def _inverse(r) -> np.ndarray:
    """``1 / r`` (float64) where ``r > 0``, else 0 (outage, NaN)."""
    r = r.astype(np.float64)
    return np.divide(1.0, r, out=np.zeros_like(r), where=r > 0)


DELTA_MAX_SHARE = 0.3
"""An update of a tile's offered load (:func:`tile_offered_load` with ``prev``) re-evaluates its pixels
with a changed interferer twice (at the old and the new activities); when they are more than this share of
its pixels with demand, it evaluates the tile whole instead (the same integers either way; measured: an
update of 30 % of a tile's pixels takes about as long as evaluating it whole)."""


def _pixel_parts(st: dict, act, params: dict, idx):
    """The high and low :data:`_SPLIT_BITS` parts (int64) of the integer offered load of the active pixels
    ``idx`` (a slice or indices) at local activities ``act``: ``round(w 2**LOAD_FRACTION_BITS)`` of
    :func:`tile_offered_load`, a function of each pixel's own terms alone (elementwise)."""
    r_in, r_out = _rates(st, act, params, idx)
    return _parts_of_rates(st, r_in, r_out, params, idx)


def _parts_of_rates(st: dict, r_in, r_out, params: dict, idx):
    """:func:`_pixel_parts` from the active pixels' rates (float32, floors applied)."""
    s = params["indoor_share"]
    # w = lambda E[S] (s / r_in + (1 - s) / r_out), float64, in place (products commute exactly)
    w = _inverse(r_in)
    w *= s
    w_out = _inverse(r_out)
    w_out *= 1.0 - s
    w += w_out
    w *= st["lam_es"][idx]
    np.minimum(w, MAX_PIXEL_LOAD, out=w)
    np.ldexp(w, LOAD_FRACTION_BITS, out=w)
    q = np.rint(w, out=w).astype(np.int64)
    return q >> _SPLIT_BITS, q & ((1 << _SPLIT_BITS) - 1)


def _sum_by_cell(cell, part, n_u: int) -> np.ndarray:
    """``sum part`` per local cell, int64: the float64 sums of ``np.bincount`` of integers below 2**26 in
    magnitude (either sign) over at most 2**27 pixels stay below 2**53, so they are exact."""
    return np.bincount(cell, weights=part.astype(np.float64), minlength=n_u).astype(np.int64)


def tile_offered_load(shared, state: dict, act, params: dict, prev=None):
    """A tile's offered load per cell at local activities ``act`` (an engine task).

    Per active pixel ``w = lambda E[S] (s / r_in + (1 - s) / r_out)`` (Bonald & Proutière 2003,
    §3; a class in outage adds nothing), clipped at :data:`MAX_PIXEL_LOAD`, as the integer
    ``round(w 2**LOAD_FRACTION_BITS)``; returns ``(hi, lo, n_evaluated)``: int64 [len(uniq)], the sums
    per serving cell of its high and low :data:`_SPLIT_BITS` parts (exact), and the pixels evaluated.

    ``prev = (act_prev, hi_prev, lo_prev)``: the local activities and the result of the tile's last
    evaluation. A pixel's integer depends only on the activities of its interferers (its serving
    cell's does not enter, :func:`_rates`), so only the pixels with an interferer whose activity
    changed are evaluated, at the old and at the new activities, and the differences of their parts
    added to ``hi_prev``, ``lo_prev``: integers, so the result has the bits of a whole evaluation
    (which is done instead when those pixels exceed :data:`DELTA_MAX_SHARE` of the tile's).
    """
    n_act = state["n_active"]
    n_u = state["uniq"].size
    if n_act == 0:
        return np.zeros(n_u, np.int64), np.zeros(n_u, np.int64), 0
    cell = state["serving"][:n_act]
    if prev is not None:
        act_prev, hi_prev, lo_prev = prev
        changed = np.asarray(act) != np.asarray(act_prev)       # the pad slot (activity 0) never changes
        sel = np.flatnonzero(changed.take(state["top"][:, :n_act]).any(axis=0))
        if sel.size <= DELTA_MAX_SHARE * n_act:
            if sel.size == 0:
                return np.asarray(hi_prev, np.int64).copy(), np.asarray(lo_prev, np.int64).copy(), 0
            hi_new, lo_new = _pixel_parts(state, act, params, sel)
            hi_old, lo_old = _pixel_parts(state, act_prev, params, sel)
            c = cell[sel]
            return (hi_prev + _sum_by_cell(c, hi_new - hi_old, n_u), lo_prev + _sum_by_cell(c, lo_new - lo_old, n_u),
                    int(sel.size))
    hi, lo = _pixel_parts(state, act, params, slice(0, n_act))
    return _sum_by_cell(cell, hi, n_u), _sum_by_cell(cell, lo, n_u), int(n_act)


def tile_rates(shared, state: dict, act, params: dict):
    """A tile's indoor and outdoor rates (float32 [n], NaN where no sector serves) at local
    activities ``act`` (an engine task): the last pass of the fixed point."""
    r_in = np.full(state["n"], np.nan, dtype=np.float32)
    r_out = np.full(state["n"], np.nan, dtype=np.float32)
    a, b = _rates(state, act, params, slice(None))
    r_in[state["pos"]] = a
    r_out[state["pos"]] = b
    return r_in, r_out


def load_from_parts(hi, lo) -> np.ndarray:
    """A cell's offered load from the summed integer parts of :func:`tile_offered_load`, float64."""
    return (np.ldexp(np.asarray(hi, dtype=np.float64), _SPLIT_BITS - LOAD_FRACTION_BITS)
            + np.ldexp(np.asarray(lo, dtype=np.float64), -LOAD_FRACTION_BITS))


class TileLoad:
    """The offered load of one layer's cells as a map-reduce over tiles on an engine stage.

    Parameters
    ----------
    stage
        An open engine stage (:meth:`sim.engine.LocalEngine.stage`, or the Dask engine's).
    sources : list
        Per tile, its ``(start, stop, BlockCoverage)`` or the engine's handle of it
        (:class:`~sim.results.TileTerms` ``.kept``).
    blocks : list of (start, stop)
        The tiles' land-pixel ranges, in the order of ``sources``.
    arrival_rate_per_s : ndarray [n_land], or list of ndarray
        The layer's flow arrival rate per land pixel, or each tile's (in the order of ``blocks``).
    n_cells : int
    params : dict
        :func:`layer_params`.

    incremental : bool
        True (default): after the first, each :meth:`offered_load` evaluates only what changed since the
        previous call (see there); False: every call evaluates every tile whole (the reference; the
        same bits).

    :meth:`offered_load` is the ``offered_load(load)`` of :func:`sim.traffic.fixed_point_cells`
    (one map per call); :meth:`rates` the per-pixel rates of the last pass. The tiles' states
    stay with the engine (``keep=True``); only per-cell vectors travel. This object holds the
    previous call's activities and each tile's integer parts (per-cell vectors; the engine keeps
    nothing that changes). ``passes`` lists, per :meth:`offered_load` call, ``(tiles submitted,
    tiles, pixels evaluated, pixels with demand)``.
    """

    def __init__(self, stage, sources, blocks, arrival_rate_per_s, n_cells: int, params: dict, *,
                 incremental: bool = True):
        params = dict(params, n_cells=int(n_cells))
        self.stage, self.blocks, self.params, self.n_cells = stage, list(blocks), params, int(n_cells)
        self.incremental = bool(incremental)
        if isinstance(arrival_rate_per_s, list):
            lams = [np.asarray(v, dtype=np.float64) for v in arrival_rate_per_s]
        else:
            lam = np.asarray(arrival_rate_per_s, dtype=np.float64)
            lams = [lam[a:b] for a, b in self.blocks]
        if len(lams) != len(self.blocks) or any(v.size != b - a for v, (a, b) in zip(lams, self.blocks)):
            raise InputError("TileLoad", "arrival_rate_per_s", "expected one arrival rate per pixel of each tile")
        # each task keeps its state and, apart, what the parent needs of it (brought here by a map, then
        # released): the states are not read back a second time for it
        kept = stage.map(tile_state_and_sectors, [(src, v, params) for src, v in zip(sources, lams)], keep=True,
                         parts=2)
        del lams
        self.states = [k[0] for k in kept]
        n = len(self.states)
        self.uniq, self._watch, self._n_active, self._parts0 = [None] * n, [None] * n, [0] * n, [None] * n
        for i, (u, watch, n_act, parts) in stage.map(_value, [(k,) for _, k in kept]):
            self.uniq[i], self._watch[i], self._n_active[i] = np.asarray(u, dtype=np.intp), watch, int(n_act)
            self._parts0[i] = parts
        stage.release([k for _, k in kept])
        self.n_land = int(self.blocks[-1][1]) if self.blocks else 0
        self.passes: list[tuple[int, int, int, int]] = []
        self.forget()

    def forget(self) -> None:
        """Start over: incremental, from the tiles' integers with every activity at ``min_load`` (zero load,
        computed with the states: a fixed point from zero load needs no evaluation at its first
        iteration); else the next :meth:`offered_load` evaluates every tile whole."""
        if self.incremental:
            self._act_prev = np.full(self.n_cells, self.params["min_load"], dtype=np.float32)
            self._parts = list(self._parts0)
        else:
            self._act_prev = None         # float32 [n_cells]: the activities of the previous call
            self._parts = [None] * len(self.states)   # per tile: (hi, lo) int64 [len(uniq)] at _act_prev

    def _act(self, load) -> np.ndarray:
        load = np.asarray(load, dtype=np.float64)
        if load.shape != (self.n_cells,) or not np.all((load >= 0.0) & (load <= 1.0)):
            raise InputError("TileLoad", "load", f"expected {self.n_cells} cell loads in [0, 1]")
        return activity(load, self.params["min_load"]).astype(np.float32)

    def offered_load(self, load) -> np.ndarray:
        """``sum_p lambda_p E[S] / r_mix,p`` per cell (float64 [n_cells]) with interference at ``load``.

        Incremental (from the tiles' integers at zero load, then the previous call's): a tile none of whose
        sectors interfering at its pixels with demand changed activity (float32) since then gets no task
        (its integers stand); the others update their integers (:func:`tile_offered_load` with
        ``prev``). The sums are of integers, so the loads have the bits of a whole evaluation.
        """
        act = self._act(load)
        prev = self._act_prev if self.incremental else None
        todo, args = [], []
        for i, (k, u) in enumerate(zip(self.states, self.uniq)):
            if prev is None or self._parts[i] is None:
                args.append((k, _local_activity(act[u]), self.params))
            else:
                changed = act[u] != prev[u]
                if not changed[self._watch[i]].any():
                    continue
                args.append((k, _local_activity(act[u]), self.params,
                             (_local_activity(prev[u]), *self._parts[i])))
            todo.append(i)
        n_eval = 0
        for j, (h, low, n) in self.stage.map(tile_offered_load, args):
            self._parts[todo[j]] = (h, low)
            n_eval += n
        self._act_prev = act
        self.passes.append((len(todo), len(self.states), n_eval, sum(self._n_active)))
        hi = np.zeros(self.n_cells, dtype=np.int64)
        lo = np.zeros(self.n_cells, dtype=np.int64)
        for u, (h, low) in zip(self.uniq, self._parts):
            hi[u] += h
            lo[u] += low
        return load_from_parts(hi, lo)

    def rates(self, load):
        """``(rate_indoor_bps, rate_outdoor_bps)`` float32 [n_land] at ``load`` (NaN: no server)."""
        r_in = np.full(self.n_land, np.nan, dtype=np.float32)
        r_out = np.full(self.n_land, np.nan, dtype=np.float32)
        for s, a, b in self.iter_rates(load):
            r_in[s:s + a.size], r_out[s:s + b.size] = a, b
        return r_in, r_out

    def iter_rates(self, load):
        """``(start, rate_indoor_bps, rate_outdoor_bps)`` of each tile at ``load``, as the tiles finish (the
        streaming form of :meth:`rates`: write them where they belong)."""
        act = self._act(load)
        args = [(k, _local_activity(act[u]), self.params) for k, u in zip(self.states, self.uniq)]
        for i, (a, b) in self.stage.map(tile_rates, args):
            yield self.blocks[i][0], a, b


def tile_sources(cov, block_size: int):
    """``(sources, blocks)`` of a layer's coverage for :class:`TileLoad`: the kept tiles of a
    :class:`~sim.results.TileTerms`, or tiles of ``block_size`` land pixels sliced from
    whole-grid :class:`~sim.results.InterferenceTerms` (each sent with its task)."""
    terms = cov.interference
    if isinstance(terms, TileTerms):
        return list(terms.kept), list(terms.blocks)
    if not isinstance(terms, InterferenceTerms):
        raise InputError("busy hour", "coverage", f"expected the interference terms of layer {cov.layer_id} "
                                                  "(coverage with top_m > 0)")
    n = cov.best_sector.size
    blocks = [(a, min(a + int(block_size), n)) for a in range(0, n, int(block_size))]
    names = [f.name for f in dataclasses.fields(BlockCoverage) if f.name != "interference"]
    sources = []
    for a, b in blocks:
        it = InterferenceTerms(signal_mw=terms.signal_mw[a:b], top_sector=terms.top_sector[a:b],
                               top_mw=terms.top_mw[a:b], residual_mw=terms.residual_mw[a:b], noise_mw=terms.noise_mw)
        fields = {k: (None if getattr(cov, k) is None else getattr(cov, k)[a:b]) for k in names}
        sources.append((a, b, BlockCoverage(interference=it, **fields)))
    return sources, blocks
