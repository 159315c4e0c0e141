"""Rates of every pixel for new cell loads: the load side of the busy hour.

The coverage kernel (:func:`sim.kernel.coverage_block` with ``top_m > 0``) keeps, per pixel,
the serving sector's power and the strongest interferers
(:class:`~sim.results.InterferenceTerms`); :func:`sinr_for_load` recomputes the SINR for new
cell loads from them without re-running path loss, and :func:`rates_for_load` the rates of a
layer (TS 38.214 CQI / TS 38.306 through :func:`sim.linkfield.layer_rate_bps`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import linkfield, linkmodel
from .errors import InputError
from .kernel import activity, o2i_loss_expected_db
from .results import InterferenceTerms, LayerRadio

__all__ = ["sinr_for_load", "rates_for_load"]


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
    rates. (2) A user class the least-loaded network serves keeps at least the lowest rate
    (CQI 1, or the Shannon SINR_MIN, one layer: link adaptation at the lowest MCS) when
    interference rises. Without it a class dropping to outage would take its load off its
    cell: the load map would not be monotone and the iteration could cycle between CQI
    steps. With it, more load never lowers a rate, and the iteration from zero load rises to
    the least fixed point.
    """
    terms = cov.interference
    o2i_db = o2i_loss_expected_db(radio)
    if radio.o2i_random:
        o2i_db = cov.rsrp_dbm.astype(np.float64) - cov.rsrp_indoor_dbm
    valid = terms.top_sector >= 0
    idx = np.where(valid, terms.top_sector, 0)
    n_valid = np.maximum(valid.sum(axis=1), 1)
    lowest_db = (linkmodel.CQI_SINR_THRESHOLDS_DB[0] if radio.se_method == "cqi"
                 else linkmodel.SHANNON_SINR_MIN_DB)
    floor_bps = float(linkfield.layer_rate_bps(np.float64(lowest_db), dataclasses.replace(radio, sinr_max_db=0.0)))
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
    served_in, served_out = zero_in > 0, zero_out > 0
    floor = np.float32(floor_bps)

    def rates(load):
        r_in, r_out = raw(load)
        return (np.where(served_in, np.maximum(r_in, floor), r_in),
                np.where(served_out, np.maximum(r_out, floor), r_out))

    return rates
