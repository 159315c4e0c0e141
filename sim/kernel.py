"""The coverage kernel: one block of pixels -> RSRP, best server, SINR and throughput.

Pure numpy, no I/O. :func:`coverage_block` evaluates, for every pixel of a block and each
of its candidate sectors (the sectors of its K nearest sites, found by
:mod:`sim.coverage`), the received power

    P = Ptx + G_antenna(phi, theta) - PL(d2D) + G_UE   (dBm, over the whole carrier; G_UE: handset gain - body loss)

and reduces it per pixel to the serving sector (largest P), RSRP, SINR, spectral efficiency
and downlink rates, outdoors and indoors.

The received power of every pair comes from :mod:`sim.pairpower`; this module reduces it per
pixel. Physics comes from :mod:`sim.propagation` (TR 38.901 §7.4 path loss, LOS probability, O2I),
:mod:`sim.antenna` (TR 38.901 Table 7.3-1 pattern, site geometry) and :mod:`sim.linkmodel`
(TS 38.214 / TS 38.306 SINR -> rate). The antenna pattern is evaluated here in a fused,
in-place form of the same Table 7.3-1 equations (see :func:`coverage_block`, Notes); the
slow twin ``tests/reference_loop.py`` calls :func:`sim.antenna.antenna_gain_dbi` per pair and
the tests hold the two within 0.01 dB.

dtype policy
------------
float32 for geometry, angles, path loss, gains and per-pair received powers (mW);
float64 for sums of received power (interference), the serving sector's power and the
per-pixel SINR arithmetic, converted to dB once per pixel; outputs float32 (``best_sector``
int32). Pixel coordinates come in as float64 (UTM metres): differences to the site are
taken in float64 and then rounded to float32.
"""

from __future__ import annotations

import numpy as np

from . import linkfield, linkmodel, pairpower, propagation, shadowing
from .errors import InputError
from .pairpower import (
    CHUNK_PAIRS,
    TABLE_MAX_GROUPS,
    TABLE_N,
    TABLE_STEP,
    PreparedLayer,
    activity,
    noise_mw,
    o2i_loss_expected_db,
    prepare_layer,
    rsrp_offset_db,
    sector_power_mw,
    validate_layer,
)
from .results import SCENARIO_CODES, BlockCoverage, InterferenceTerms, LayerRadio, SectorArrays
from .shadowing import los_uniform

__all__ = [
    "CHUNK_PAIRS",
    "rsrp_offset_db",
    "o2i_loss_expected_db",
    "noise_mw",
    "los_uniform",
    "TABLE_STEP",
    "TABLE_N",
    "TABLE_MAX_GROUPS",
    "PreparedLayer",
    "prepare_layer",
    "validate_layer",
    "coverage_block",
    "coverage_blocks",
    "sector_power_mw",
    "activity",
    "serving_los_probability",
]


_F32 = np.float32
_SOURCE = "coverage_block"


def _check_inputs(pix_x_m, pix_y_m, pix_id, cand, sectors, radio, load):
    n_pix = pix_x_m.shape[0] if pix_x_m.ndim == 1 else -1
    for name, a in (("pix_x_m", pix_x_m), ("pix_y_m", pix_y_m), ("pix_id", pix_id)):
        if a.ndim != 1 or a.shape[0] != n_pix:
            raise InputError(_SOURCE, name, f"expected a 1-D array of {max(n_pix, 0)} pixels, got shape {a.shape}")
    if not np.all(np.isfinite(pix_x_m)) or not np.all(np.isfinite(pix_y_m)):
        raise InputError(_SOURCE, "pix_x_m", "expected finite pixel coordinates in m")
    if cand.dtype.kind not in "iu" or cand.ndim not in (2, 3) or cand.shape[0] != n_pix:
        raise InputError(_SOURCE, "cand",
                         f"expected integer sector indices [n_pix, n_cand] or [n_pix, k, s] with n_pix = {n_pix}, "
                         f"got {cand.dtype} {cand.shape}")
    validate_layer(sectors, radio, load)
    if cand.size and (cand.min() < -1 or cand.max() >= sectors.n_sectors):
        raise InputError(_SOURCE, "cand",
                         f"expected sector indices in [-1, {sectors.n_sectors - 1}], "
                         f"got {int(cand.min())}..{int(cand.max())}")




def serving_los_probability(pix_x_m, pix_y_m, best, lay: PreparedLayer):
    """TR 38.901 Table 7.4.2-1 LOS probability of each pixel's serving link, float32 (NaN: none): the
    rank model's LOS weight (:func:`sim.linkfield.expected_layers`), at the serving site's scenario."""
    ok = best >= 0
    b = np.where(ok, best, 0)
    d2d = np.hypot(pix_x_m - lay.x_m.take(b), pix_y_m - lay.y_m.take(b)).astype(np.float32)
    scen = np.broadcast_to(lay.scen if np.ndim(lay.scen) == 0 else lay.scen.take(b), d2d.shape)
    p = np.full(d2d.shape, np.nan, dtype=np.float32)
    for code in np.unique(scen):
        m = ok & (scen == code)
        p[m] = propagation.los_probability(SCENARIO_CODES[int(code)], d2d[m], _F32(lay.radio.h_ut_m))
    return p


# --------------------------------------------------------------------------- the kernel


def coverage_block(pix_x_m, pix_y_m, pix_id, cand, sectors: SectorArrays, radio: LayerRadio,
                   load, seed: int = 0, *, top_m: int = 0, validate: bool = True,
                   prepared: PreparedLayer | None = None, tables=None,
                   chunk_pairs: int = CHUNK_PAIRS) -> BlockCoverage:
    """Coverage of one block of pixels by one layer.

    Parameters
    ----------
    pix_x_m, pix_y_m : ndarray [n_pix], float64
        Pixel centres in the grid CRS, m.
    pix_id : ndarray [n_pix], int
        A stable id per pixel (the grid's flat index); keys the sampled LOS draws.
    cand : ndarray [n_pix, n_cand] or [n_pix, k, s], int
        Candidate sector indices into ``sectors``, -1 padded. The 3-D, site-grouped layout
        is what :func:`sim.coverage.candidate_sectors` builds: ``cand[:, j, :]`` are the
        sectors of ONE site, pads at the end; the kernel then computes distance, path loss,
        LOS and zenith angle once per pixel-site from the first sector of the group. The
        2-D layout treats every candidate as its own site.
    sectors : SectorArrays
        The layer's sectors.
    radio : LayerRadio
        The layer's radio parameters.
    load : array_like [n_sectors]
        Cell load in [0, 1] that weights each sector's interference.
    seed : int, optional
        Seed of the sampled LOS draws (``radio.los_mode == "sampled"``).
    top_m : int, optional
        Also return the ``top_m`` strongest interferers of each pixel (see
        :class:`~sim.results.InterferenceTerms`, :func:`sim.busyload.sinr_for_load`).
    validate : bool, optional
        Check the inputs (default). :func:`sim.coverage.compute_coverage` validates once per
        layer and passes ``False``.
    prepared : PreparedLayer, optional
        :func:`prepare_layer` of ``sectors``, ``radio`` and ``load``, built once per layer
        (built here when not given).
    tables : bool, optional
        Path gain from tables (True) or by direct evaluation (False); default automatic
        (see :func:`prepare_layer`). Ignored when ``prepared`` is given.
    chunk_pairs : int, optional
        Pairs evaluated at once (memory/speed only; results are identical).

    Returns
    -------
    BlockCoverage
        ``rsrp_dbm``, ``sinr_db``, ``se_bps_hz``, ``rate_outdoor_bps``, ``rate_indoor_bps``,
        ``rsrp_indoor_dbm``, ``sinr_indoor_db`` float32 [n_pix]; ``best_sector`` int32
        [n_pix] (-1 and NaN where a pixel has no candidate).

    Raises
    ------
    InputError
        Bad shapes, sector indices out of range, loads outside [0, 1], zero sectors, or radio
        inputs that :func:`sim.propagation.validate_radio_inputs` rejects (e.g. a base
        station not higher than the UE).

    Notes
    -----
    Received power over the carrier of sector j at a pixel (dBm)::

        P_j = Ptx_j + G_j(phi, theta) - PL(d2D, hBS, hUT, fc) + G_UE

    * ``G_UE = radio.ue_gain_db``: the handset's antenna gain minus the body loss (it scales
      signal and interference alike; the noise stays, so it lowers SINR only where noise-limited).
    * Path loss: TR 38.901 V17.0.0 Table 7.4.1-1 (:func:`sim.propagation.pathloss_db`).
      ``los_mode`` ``"expected"`` (default) uses the expected linear path
      gain over the LOS state, ``P_LOS 10**(-PL_LOS/10) + (1 - P_LOS) 10**(-PL_NLOS/10)``
      with P_LOS of Table 7.4.2-1; ``"nlos"`` uses PL_NLOS; ``"sampled"`` draws the state
      per (pixel, site, seed) with :func:`los_uniform`, or with ``radio.los_consistent``
      from the site's spatially consistent field (§7.6.3.3, :mod:`sim.shadowing`).
    * Shadow fading (``radio.shadow_fading``): ``PL + sigma_SF z`` per pixel-site, Tables 7.4.1-1
      and 7.5-6 for the link's state (expected / nlos: NLOS) (:func:`sim.shadowing.shadow_fading_c`).
    * Tables: for a given (scenario, h_BS) these depend on d2D only, as does the zenith
      angle, so the kernel tabulates them once per layer - evaluated in float64 by the
      functions of :mod:`sim.propagation` and :mod:`sim.antenna` at :data:`TABLE_N` nodes
      uniform in ln(d2D**2) (step :data:`TABLE_STEP`, 0.1 % in distance) - and interpolates
      linearly. The interpolation error is below 0.005 dB (largest at the slope changes at
      10 m, 18 m and the breakpoint; the tests hold the kernel within 0.01 dB of the
      direct evaluation). Distances beyond 200 km are looked up at 200 km.
    * Antenna: TR 38.901 Table 7.3-1 with downtilt as a shift of the vertical cut, as in
      :func:`sim.antenna.antenna_gain_dbi`. Because both cuts are non-negative
      attenuations, ``min(min(12 (phi/phi3)**2, A_max) + A_V, A_max) =
      min(12 (phi/phi3)**2 + A_V, A_max)``; the kernel evaluates that form with
      ``|phi| = min(d, 360 - d)``, ``d = |bearing - az|`` (az in (-180, 180]), bearing
      ``atan2(dx, dy)`` clockwise from north as in :func:`sim.antenna.relative_azimuth_deg`,
      and the zenith angle of :func:`sim.antenna.zenith_angle_deg` on the unclipped d2D.
      When tilt and vertical beamwidth are the same for every sector of the layer, A_V is
      a function of d2D and is tabulated too.
    * Serving sector: largest P_j (ties: the earlier candidate). RSRP per resource element
      (TS 38.215 §5.1.1): ``RSRP = P_best - 10 log10(12 N_PRB) + dG_SSB`` (:func:`rsrp_offset_db`;
      ``dG_SSB = radio.ssb_gain_offset_db``, the SSB beam's peak gain minus the traffic beam's).
    * ``SINR = P_best / (sum_{j != best} load_j P_j + N)``, ``N = kT0 B NF`` over
      ``bw_hz`` (:func:`noise_mw`); sums in linear mW, float64. Interference comes from
      the candidates only (the K nearest sites); the tests bound the truncation error.
    * Indoor: the expected O2I loss ``L`` (:func:`o2i_loss_expected_db`), or with
      ``radio.o2i_random`` each pixel's drawn loss (:func:`sim.shadowing.o2i_loss_pixel_db`),
      lowers signal and interference alike: ``RSRP_in = RSRP - L``,
      ``SINR_in = g P_best / (g I + N)`` with ``g = 10**(-L/10)``; no path loss is
      re-evaluated. LOS probability uses the pixel's outdoor distance (d2D-out).
    * Rates: :func:`sim.linkfield.layer_rate_bps` (device classes, SINR ceiling, rank with the
      serving link's LOS probability outdoors, NLOS indoors); interferers weighted by :func:`activity`.

    Validity: that of the path-loss model (10 m <= d2D, clipped below; 5 km, extrapolated
    beyond) and of the antenna pattern (Table 7.3-1).
    """
    pix_x_m = np.asarray(pix_x_m, dtype=np.float64)
    pix_y_m = np.asarray(pix_y_m, dtype=np.float64)
    pix_id = np.asarray(pix_id, dtype=np.int64)
    cand = np.asarray(cand)
    load = np.asarray(load, dtype=np.float32)
    if validate:
        _check_inputs(pix_x_m, pix_y_m, pix_id, cand, sectors, radio, load)
    if cand.ndim == 2:
        cand = cand[:, :, None]
    lay = prepared if prepared is not None else PreparedLayer(sectors, radio, load, tables)
    return coverage_blocks(pix_x_m, pix_y_m, pix_id, cand, [lay], seed, top_m=top_m, chunk_pairs=chunk_pairs)[0]


def coverage_blocks(pix_x_m, pix_y_m, pix_id, cand, prepared: list, seed: int = 0, *, top_m: int = 0,
                    chunk_pairs: int = CHUNK_PAIRS) -> list:
    """:func:`coverage_block` of several layers over the same pixels and candidates, one per item of ``prepared``
    (each a :func:`prepare_layer`; inputs not re-checked), in that order.

    Layers with the same :meth:`~sim.pairpower.PreparedLayer.geometry_key` (carriers on the same sites: the
    same positions, seed and carrier-independent tables) share the per pixel-site work that does not depend
    on the carrier - distance, bearing, LOS state, shadow-fading field - chunk by chunk
    (:func:`sim.pairpower.pair_power`, ``memo``). Each layer's result has the bits of its own
    :func:`coverage_block`.
    """
    pix_x_m = np.asarray(pix_x_m, dtype=np.float64)
    pix_y_m = np.asarray(pix_y_m, dtype=np.float64)
    pix_id = np.asarray(pix_id, dtype=np.int64)
    cand = np.asarray(cand)
    if cand.ndim == 2:
        cand = cand[:, :, None]
    n_pix, k, s = cand.shape
    keys = [lay.geometry_key(seed) for lay in prepared]
    outs = []
    for _ in prepared:
        top = None
        if top_m > 0:
            m = min(int(top_m), max(k * s - 1, 1))
            top = (np.full((n_pix, m), -1, np.int32), np.zeros((n_pix, m), np.float32), np.empty(n_pix, np.float64))
        outs.append((np.empty(n_pix, dtype=np.float64), np.empty(n_pix, dtype=np.float64),
                     np.empty(n_pix, dtype=np.int32), top))
    step = max(1, int(chunk_pairs) // max(k * s, 1))
    may_pad = pairpower.may_pad(cand)
    for c0 in range(0, n_pix, step):
        c1 = min(c0 + step, n_pix)
        # candidate-major layout [k, s, n]: every inner loop runs over contiguous pixels
        g = np.empty((k, s, c1 - c0), dtype=np.intp)
        g[...] = cand[c0:c1].transpose(1, 2, 0)
        memos: dict = {}
        for lay, key, (s_mw, i_mw, best, top) in zip(prepared, keys, outs):
            memo = None if key is None else memos.setdefault(key, {})
            _chunk(pix_x_m[c0:c1], pix_y_m[c0:c1], pix_id[c0:c1], g, lay, seed, may_pad,
                   s_mw[c0:c1], i_mw[c0:c1], best[c0:c1],
                   None if top is None else tuple(t[c0:c1] for t in top), memo)
    return [_finish(s_mw, i_mw, best, lay, lay.radio, top, pix_id, seed,
                    serving_los_probability(pix_x_m, pix_y_m, best, lay))
            for lay, (s_mw, i_mw, best, top) in zip(prepared, outs)]


def _chunk(px, py, pid, g, lay: PreparedLayer, seed, may_pad, s_out, i_out, best_out, top_out, memo=None):
    n = px.shape[0]
    k, s = g.shape[0], g.shape[1]
    t, all_sites = pairpower.pair_power(px, py, pid, g, lay, seed, may_pad, memo)
    p = t.reshape(k * s, n)
    # ---- reductions per pixel
    cols = np.arange(n)
    ranked = None
    if top_out is None:
        # pixel-major copy: argmax along the contiguous axis (what argmax(p, axis=0) copies to anyway)
        row = np.argmax(np.ascontiguousarray(p.T), axis=1)
    else:
        ranked = _ranked(p, top_out[0].shape[1])
        row = ranked[0]
    sig = p[row, cols]
    g2 = g.reshape(k * s, n)
    best = g2[row, cols]
    if np.ndim(lay.load) == 0:
        tot = np.add.reduce(p, axis=0, dtype=np.float64)
        tot -= sig
        tot *= float(lay.load)
        w = None
    else:
        w = lay.load.take(g2)
        w *= p
        tot = np.add.reduce(w, axis=0, dtype=np.float64)
        tot -= w[row, cols]
    np.maximum(tot, 0.0, out=tot)
    none = sig <= 0.0
    best = best.astype(np.int32)
    best[none] = -1
    s_out[...] = sig
    i_out[...] = tot
    best_out[...] = best
    if top_out is not None:
        _top_m(ranked[1], ranked[2], cols, g2, lay, tot, top_out)


_LOW32 = np.uint64(0xFFFFFFFF)
_REV: dict = {}


def _ranked(p, m: int):
    """``(row, rows, vals)``: per pixel the row of ``p`` (``[k*s, n]`` float32 >= 0) with the largest power
    (the serving candidate: the first of equal maxima, as ``np.argmax``), and the rows ``[n, <= m]`` and powers
    of the next ``m`` strongest, in decreasing power (ties: the earlier row first).

    Each pair is ranked by an exact unsigned key, the power's float32 bits (monotone for non-negative floats)
    above ``k*s - 1 - row``: distinct keys, so the selection (``np.partition`` then a sort of the few kept) has
    one answer whatever the CPU or the partition algorithm.
    """
    ks, n = p.shape
    rev = _REV.get(ks)
    if rev is None:
        rev = _REV[ks] = np.arange(ks - 1, -1, -1, dtype=np.uint64)
    key = np.empty((n, ks), dtype=np.uint64)
    key[...] = p.view(np.uint32).T
    key <<= np.uint64(32)
    key |= rev
    kk = min(m + 1, ks)
    if kk < ks:
        key = np.partition(key, ks - kk, axis=1)[:, ks - kk:]
    key = np.sort(key, axis=1)[:, ::-1]
    rows = (np.uint64(ks - 1) - (key & _LOW32)).astype(np.intp)
    vals = (key >> np.uint64(32)).astype(np.uint32).view(np.float32)
    return rows[:, 0], rows[:, 1:], vals[:, 1:]


def _top_m(rows, vals, cols, g2, lay, tot, top_out):
    """The ``m`` strongest interferers of each pixel (rows and powers from :func:`_ranked`) as sector indices,
    powers and the residual interference (``tot`` less the load-weighted terms)."""
    top_sec, top_mw, resid = top_out
    n, m = top_sec.shape
    got = rows.shape[1]
    sec = np.full((n, m), -1, dtype=np.int32)
    mw = np.zeros((n, m), dtype=np.float32)
    if got:
        rows = rows * n
        rows += cols[:, None]
        sec[:, :got] = g2.take(rows)     # g2 [k*s, n] C-contiguous
        mw[:, :got] = vals
    empty = mw <= 0.0
    sec[empty] = -1
    mw[empty] = 0.0
    top_sec[...] = sec
    top_mw[...] = mw
    loads = lay.load64.take(np.where(sec >= 0, sec, 0))
    r = tot - np.add.reduce(loads * mw, axis=1)
    np.maximum(r, 0.0, out=r)
    resid[...] = r


def _finish(s_mw, i_mw, best, lay: PreparedLayer, radio: LayerRadio, top, pix_id, seed, los_prob) -> BlockCoverage:
    none = best < 0
    o2i_db = shadowing.o2i_loss_pixel_db(radio, pix_id, seed) if radio.o2i_random else lay.o2i_db
    with np.errstate(divide="ignore", invalid="ignore"):
        rsrp = (10.0 * np.log10(s_mw) - (lay.offset_db - radio.ssb_gain_offset_db)).astype(np.float32)
        sinr = (10.0 * np.log10(s_mw / (i_mw + lay.noise_mw))).astype(np.float32)
        g = lay.o2i_gain if not radio.o2i_random else 10.0 ** (-o2i_db / 10.0)
        sinr_in = (10.0 * np.log10((g * s_mw) / (g * i_mw + lay.noise_mw))).astype(np.float32)
    rsrp[none] = np.nan
    sinr[none] = np.nan
    sinr_in[none] = np.nan
    rsrp_in = rsrp - np.asarray(o2i_db, dtype=np.float32)
    se = linkmodel.spectral_efficiency_bps_hz(linkfield.effective_sinr_db(sinr, radio.sinr_max_db),
                                              method=radio.se_method).astype(np.float32, copy=False)
    rate_out = linkfield.layer_rate_bps(sinr, radio, los_prob).astype(np.float32, copy=False)
    rate_in = linkfield.layer_rate_bps(sinr_in, radio).astype(np.float32, copy=False)  # indoor: NLOS rank
    terms = None
    if top is not None:
        sig = np.where(none, 0.0, s_mw)
        terms = InterferenceTerms(signal_mw=sig, top_sector=top[0], top_mw=top[1], residual_mw=top[2],
                                  noise_mw=lay.noise_mw)
    return BlockCoverage(rsrp_dbm=rsrp, best_sector=best, sinr_db=sinr, se_bps_hz=se, rate_outdoor_bps=rate_out,
                         rate_indoor_bps=rate_in, rsrp_indoor_dbm=rsrp_in, sinr_indoor_db=sinr_in,
                         interference=terms, los_prob_serving=los_prob)
