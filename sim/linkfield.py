"""The field link: what a phone gets from a carrier, beyond the peak-rate conventions.

* an effective-SINR ceiling from impairments proportional to the signal (transmitter EVM,
  3GPP TS 38.104 V17 Table 6.5.2.2-1; :func:`evm_sinr_ceiling_db`, :func:`effective_sinr_db`);
* the rank: SINR thresholds mixed over the LOS state (:func:`expected_layers`), or rank
  adaptation with receive combining (:func:`adaptive_layer_se_bps_hz`);
* device classes that aggregate part of an operator's block with their own receive antennas
  (:func:`n_prb_aggregated`, :func:`device_mix_rate_bps`), and the rate of a layer
  (:func:`layer_rate_bps`).

Built on :mod:`sim.linkmodel` (TS 38.214 CQI table, TS 38.101-1 N_RB, TS 38.306 resource
elements). Pure functions of arrays; float32 input stays float32. No-data: a NaN SINR gives a
NaN spectral efficiency and rate and 0 layers.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError
from .linkmodel import (
    CQI_SINR_THRESHOLDS_DB,
    CQI_TABLE_256QAM,
    MIMO_RANK_THRESHOLDS_DB,
    NR_FR1_N_RB,
    NR_OVERHEAD_FR1_DL,
    carrier_split_hz,
    cqi_from_sinr,
    mimo_layers,
    n_prb_total,
    re_rate_hz,
    spectral_efficiency_bps_hz,
)

__all__ = [
    "EVM_256QAM_BS_PCT",
    "evm_sinr_ceiling_db",
    "effective_sinr_db",
    "expected_layers",
    "n_prb_aggregated",
    "DeviceClass",
    "RANK_MODELS",
    "adaptive_layer_se_bps_hz",
    "device_mix_rate_bps",
    "layer_rate_bps",
]

_SOURCE = "sim.linkfield"


def _float_array(x):
    """``x`` as an array of float32 (kept) or float64 (everything else)."""
    a = np.asarray(x)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def _number(value, name, lo, hi, lo_open=False, hi_open=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(_SOURCE, name, f"expected a number, got {value!r}") from None
    bad = (v <= lo if lo_open else v < lo) or (v >= hi if hi_open else v > hi)
    if not np.isfinite(v) or bad:
        raise InputError(_SOURCE, name, f"expected a number in {'(' if lo_open else '['}{lo:g}, {hi:g}"
                                        f"{')' if hi_open else ']'}, got {value!r}")
    return v


def _scs(scs_khz):
    if scs_khz not in NR_FR1_N_RB:
        raise InputError(_SOURCE, "scs_khz", f"expected an FR1 subcarrier spacing 15, 30 or 60 kHz, got {scs_khz!r}")
    return int(scs_khz)



EVM_256QAM_BS_PCT = 3.5
"""Base-station transmitter EVM requirement for 256QAM PDSCH, %: 3GPP TS 38.104 V17,
Table 6.5.2.2-1 (QPSK 17.5 %, 16QAM 12.5 %, 64QAM 8 %, 256QAM 3.5 %)."""


def evm_sinr_ceiling_db(*evm_pct):
    """Largest SINR (dB) a link can reach when impairments add EVM-like noise.

    Parameters
    ----------
    *evm_pct : float
        RMS error vector magnitudes of the independent impairments (transmitter, receiver),
        % of the signal; e.g. ``EVM_256QAM_BS_PCT`` (3.5 %, TS 38.104 Table 6.5.2.2-1).

    Returns
    -------
    sinr_max_db : float
        ``-10 log10(sum (EVM_i / 100)**2)``: an error vector of RMS ``EVM`` is noise of power
        ``EVM**2`` relative to the signal (TS 38.104 Annex B defines EVM as that RMS ratio),
        and independent impairments add in power. 3.5 % alone -> 29.12 dB; 3.5 % and 2 % ->
        27.89 dB.
    """
    if not evm_pct:
        raise InputError(_SOURCE, "evm_pct", "expected at least one EVM in %")
    e = np.asarray([_number(v, "evm_pct", 0.0, 100.0, lo_open=True) for v in evm_pct]) / 100.0
    return float(-10.0 * np.log10(np.sum(e * e)))


def effective_sinr_db(sinr_db, sinr_max_db=None):
    """SINR of the link after a ceiling of impairment noise proportional to the signal.

    Parameters
    ----------
    sinr_db : array_like
        Geometric SINR (path loss, interference and thermal noise), dB; NaN is no-data.
    sinr_max_db : float or None
        Ceiling (:func:`evm_sinr_ceiling_db`); None or 0 or inf: no ceiling (the input is
        returned unchanged, as an array).

    Returns
    -------
    sinr_eff_db : ndarray, shape and float dtype of ``sinr_db``
        ``-10 log10(10**(-SINR/10) + 10**(-SINR_max/10))``: ``1/SINR_eff = 1/SINR +
        1/SINR_max`` (the EVM noise ``EVM**2 S`` adds to ``I + N``). Always below both
        ``SINR`` and ``SINR_max``; monotone increasing in ``SINR``.
    """
    sinr = _float_array(sinr_db)
    if sinr_max_db is None or not np.isfinite(sinr_max_db) or float(sinr_max_db) == 0.0:
        return sinr
    dt = sinr.dtype.type
    inv = np.power(dt(10.0), -sinr / dt(10.0))
    inv += dt(10.0 ** (-float(sinr_max_db) / 10.0))
    out = np.log10(inv)
    out *= dt(-10.0)
    return out


def expected_layers(sinr_db, max_layers, los_prob=None, thresholds_db=MIMO_RANK_THRESHOLDS_DB,
                    los_thresholds_db=None):
    """Expected number of MIMO layers at a SINR, mixing the LOS and NLOS rank curves.

    Parameters
    ----------
    sinr_db : array_like
        (Effective) SINR, dB; NaN is no-data.
    max_layers : int
        Most layers of the UE and cell (min of UE receive antennas and cell ports), >= 1.
    los_prob : array_like or None
        Probability that the serving link is LOS (broadcast with ``sinr_db``); None: 0.
    thresholds_db : sequence of float
        Lowest SINR for rank 2, 3, ... of an NLOS link (:func:`mimo_layers`).
    los_thresholds_db : sequence of float or None
        The same for a LOS link; None: the NLOS thresholds (no LOS dependence).

    Returns
    -------
    layers : ndarray, float dtype of ``sinr_db``
        ``(1 - p) L_NLOS(SINR) + p L_LOS(SINR)`` with ``L = min(1 + #{thr <= SINR}, max)``;
        0 where the SINR is NaN; NaN ``los_prob`` counts as 0.

    Notes
    -----
    No 3GPP table maps SINR to rank (the UE derives its rank indicator from the channel
    matrix, TS 38.214 §5.2.2.2). A LOS channel is dominated by one path per polarisation, so
    with cross-polarised arrays it carries about two layers (TR 38.901 Table 7.5-6: Ricean
    K-factor 9 dB UMa / UMi LOS); NLOS channels need a high SINR to carry more than two.
    The thresholds are ASSUMPTIONS given in the scenario config.
    """
    sinr = _float_array(sinr_db)
    dt = sinr.dtype
    nl = mimo_layers(sinr, max_layers, thresholds_db).astype(dt)
    if los_prob is None or los_thresholds_db is None:
        return nl
    p = np.nan_to_num(np.asarray(los_prob, dtype=dt), nan=0.0)
    lo = mimo_layers(sinr, max_layers, los_thresholds_db).astype(dt)
    return nl + p * (lo - nl)


def n_prb_aggregated(bw_hz, scs_khz, n_carriers):
    """Resource blocks a device uses when it aggregates ``n_carriers`` of a spectrum block.

    The block is split as :func:`carrier_split_hz` does (widest first); a device with
    ``n_carriers`` component carriers uses the widest ``n_carriers`` of them (all when it
    supports more). 160 MHz at 30 kHz, 1 carrier -> 273 PRB (100 MHz); 2 -> 435.
    """
    if isinstance(n_carriers, bool) or not isinstance(n_carriers, (int, np.integer)) or n_carriers < 1:
        raise InputError(_SOURCE, "n_carriers", f"expected an integer >= 1, got {n_carriers!r}")
    scs = _scs(scs_khz)
    widths = carrier_split_hz(bw_hz, scs)[: int(n_carriers)]
    return sum(NR_FR1_N_RB[scs][round(w / 1e6)] for w in widths)


class DeviceClass(tuple):
    """``(share, n_prb, max_layers)`` of one device class on one layer (a plain tuple)."""

    __slots__ = ()

    def __new__(cls, share, n_prb, max_layers):
        return super().__new__(cls, (float(share), int(n_prb), int(max_layers)))

    def __getnewargs__(self):
        # pickling (a layer's radio sent to a worker process or a Dask worker) rebuilds from the three fields
        return tuple(self)


RANK_MODELS = ("thresholds", "adaptive")
"""Rank models of :func:`device_mix_rate_bps`: SINR thresholds (:func:`expected_layers`) or
rank adaptation with receive combining (:func:`adaptive_layer_se_bps_hz`)."""


_CQI_SE = CQI_TABLE_256QAM["qm"].astype(np.float64) * CQI_TABLE_256QAM["rate_x1024"] / 1024.0
_NEVER_DB = 1e9  # a threshold no SINR reaches (finite: thresholds are checked finite)


def _layer_se(sinr, gain_db, sinr_max_db, method):
    """``SE(effective(SINR + gain))`` per layer; for CQI the thresholds move instead of the SINR.

    ``effective(y) >= t`` exactly when ``y >= -10 log10(10**(-t/10) - 10**(-c/10))`` (``t < c``;
    never for ``t >= c``), so the staircase of :func:`sim.linkmodel.spectral_efficiency_bps_hz`
    at the effective SINR is a staircase at the geometric SINR with shifted thresholds: no
    power or logarithm per pixel.
    """
    dt = sinr.dtype.type
    if method != "cqi":
        return spectral_efficiency_bps_hz(effective_sinr_db(sinr + dt(gain_db), sinr_max_db), method=method)
    cqi = cqi_from_sinr(sinr, _shifted_thresholds(sinr_max_db) - gain_db)
    return np.where(np.isnan(sinr), dt(np.nan), _CQI_SE.astype(sinr.dtype)[cqi])


def _cqi_layer_ses(sinr, n, top, sinr_max_db):
    """Per-layer CQI efficiency of ranks 1..top (as :func:`_layer_se`) with one search per pixel.

    The shifted thresholds of every rank are merged into one sorted array; a pixel's position
    in it gives, through a small table per rank, the count of that rank's thresholds below
    its SINR (the CQI).
    """
    dt = sinr.dtype
    thr = [(_shifted_thresholds(sinr_max_db) - 10.0 * np.log10((n - L + 1) / L)).astype(dt) for L in range(1, top + 1)]
    allv = np.sort(np.concatenate(thr))
    pos = np.searchsorted(allv, sinr, side="right")
    se_tab = _CQI_SE.astype(dt)
    nan = np.isnan(sinr)
    out = []
    for t in thr:
        lut = np.concatenate([[0], np.searchsorted(t, allv, side="right")]).astype(np.intp)
        out.append(np.where(nan, dt.type(np.nan), se_tab[lut[pos]]))
    return out


def _shifted_thresholds(sinr_max_db):
    """CQI thresholds on the SINR before the ceiling (see :func:`_layer_se`), float64 [15]."""
    thr = np.asarray(CQI_SINR_THRESHOLDS_DB, dtype=np.float64)
    if sinr_max_db is not None and np.isfinite(sinr_max_db) and float(sinr_max_db) != 0.0:
        gap = 10.0 ** (-thr / 10.0) - 10.0 ** (-float(sinr_max_db) / 10.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            thr = np.where(gap > 0, -10.0 * np.log10(np.where(gap > 0, gap, 1.0)), _NEVER_DB)
    return thr


def adaptive_layer_se_bps_hz(sinr_db, n_rx, max_layers=None, sinr_max_db=None, method="cqi", _keep=None):
    """Spectral efficiency summed over the layers of the best rank, with receive combining.

    Parameters
    ----------
    sinr_db : array_like
        Geometric SINR per receive antenna, dB; NaN is no-data.
    n_rx : int
        Receive antennas of the device (>= 1).
    max_layers : int or None
        Most layers (cell ports, or a LOS channel's limit); None: ``n_rx``.
    sinr_max_db : float or None
        Link ceiling applied to each layer after combining (:func:`effective_sinr_db`).
    method : {"cqi", "shannon"}

    Returns
    -------
    (layers, se_sum) : two ndarrays, float dtype of ``sinr_db``
        The rank ``L`` that maximises ``L SE(SINR_L)`` and that maximum, b/s/Hz; layers 0 and
        SE NaN where the SINR is NaN.

    Notes
    -----
    ``SINR_L = SINR (N_rx - L + 1) / L``: the transmit power split over ``L`` layers, and a
    linear (zero-forcing / MMSE) receiver with ``N_rx`` antennas keeping ``N_rx - L + 1``
    orders of array gain per layer (mean post-processing SNR of ZF in i.i.d. Rayleigh
    fading; J. H. Winters, J. Salz, R. D. Gitlin, IEEE Trans. Commun. 42(2/3/4), 1994;
    R. W. Heath, A. Lozano, Foundations of MIMO Communication, CUP 2018, §6). The UE reports
    the rank indicator that maximises its rate (TS 38.214 §5.2.2.2); the ceiling of
    impairments (transmitter EVM) is not reduced by receive combining, so it is applied to
    each layer's SINR. 4 Rx: rank 1 below about 5 dB, rank 2 to about 15 dB, rank 3 to about
    27 dB, rank 4 above (the CQI thresholds of :mod:`sim.linkmodel`, ceiling 28 dB).
    """
    sinr = _float_array(sinr_db)
    dt = sinr.dtype.type
    n = int(n_rx)
    top = n if max_layers is None else max(1, min(n, int(max_layers)))
    best_se = None
    best_l = None
    ses = _cqi_layer_ses(sinr, n, top, sinr_max_db) if method == "cqi" else None
    for L in range(1, top + 1):
        se = (ses[L - 1] if ses is not None else
              _layer_se(sinr, 10.0 * np.log10((n - L + 1) / L), sinr_max_db, method)) * dt(L)
        if best_se is None:
            best_se, best_l = se, np.where(np.isnan(sinr), dt(0.0), dt(1.0))
        else:
            better = se > best_se
            best_se = np.where(better, se, best_se)
            best_l = np.where(better, dt(L), best_l)
        if _keep is not None and L == _keep[0]:
            _keep.append(best_se)
    return best_l, best_se


class _Stairs:
    """``#{u <= x}`` for sorted distinct thresholds ``u`` (the rank of :func:`numpy.searchsorted` with
    ``side="right"``), exact, by a uniform bin table instead of a binary search per value.

    The bins of width ``h`` cover ``[u_0 - 2h, u_k + 2h)`` (``u_k`` the largest threshold below
    :data:`_STAIRS_FAR`); values below fall in the first bin, values up to :data:`_STAIRS_FAR` in the
    last, values beyond are searched (no SINR comes near: those are the ceiling's never-reached ranks). Each bin,
    widened by :data:`_STAIRS_MARGIN` bins on both sides (more than the rounding of the bin index
    computed in the values' dtype), holds at most one threshold ``t``; a value ``x`` of bin ``b`` then
    has ``base[b] + (x >= t[b])`` thresholds at or below it. ``h`` halves from 1/16 dB until that
    holds; :attr:`ok` is False when it never does (then callers search). NaN gets ``len(u) + 1``.
    """

    def __init__(self, u, dtype):
        dt = np.dtype(dtype)
        u = np.unique(np.asarray(u, dtype=dt)).astype(np.float64)
        self.n = u.size
        self.ok = False
        self.tables: dict = {}      # rate tables over the ranks, filled by _tabulated_rate
        near = u[u < _STAIRS_FAR]
        if near.size == 0:
            return
        h = 1.0 / 16.0
        while h >= 2.0 ** -12 and not self.ok:
            lo = float(np.floor(near[0] / h) * h) - 2.0 * h
            nb = int(np.ceil((near[-1] - lo) / h)) + 3
            edges = lo + h * np.arange(nb + 1, dtype=np.float64)
            first = np.searchsorted(u, edges[:-1] - _STAIRS_MARGIN * h, side="left")   # u below the widened bin
            last = np.searchsorted(u, edges[1:] + _STAIRS_MARGIN * h, side="right")
            last[-1] = near.size            # the last bin runs to _STAIRS_FAR (values beyond: searched)
            # lo lies 2 bins below u_0: the first bin (values below lo fall there too) holds no threshold
            if np.all(last - first <= 1) and last[0] == 0:
                self.ok = True
                self.lo, self.inv_h, self.n_bins = dt.type(lo), dt.type(1.0 / h), nb
                self.base = first.astype(np.int32)
                t = np.full(nb, np.inf)
                one = last > first
                t[one] = u[first[one]]
                self.t = t.astype(dt)
            h *= 0.5
        # one value per rank, in the thresholds' dtype: below u_0 (rank 0), then each u_i (rank i + 1), NaN
        below = np.nextafter(dt.type(u[0]), dt.type(-np.inf))
        self.reps = np.concatenate([[below], u.astype(dt), [np.nan]]).astype(dt)

    def rank(self, x) -> np.ndarray:
        """``#{u <= x}`` per value of ``x`` (int32; NaN: ``len(u) + 1``)."""
        y = np.subtract(x, self.lo)
        y *= self.inv_h
        np.fmax(y, 0, out=y)                  # NaN -> 0 (set apart below)
        np.minimum(y, self.n_bins - 1, out=y)
        b = y.astype(np.int32)
        r = self.base.take(b)
        r += np.greater_equal(x, self.t.take(b))
        far = np.greater_equal(x, _STAIRS_FAR)
        if far.any():
            r[far] = np.searchsorted(self.reps[1:-1], x[far], side="right")
        np.copyto(r, np.int32(self.n + 1), where=np.isnan(x))
        return r


_STAIRS_FAR = 1e6      # thresholds at or above: the _NEVER_DB of a ceiling, shifted per rank
_STAIRS_MARGIN = 0.25  # bins; the bin index of a float32 SINR below 100 dB is off by less than 0.01 bin
_STAIRS_CACHE: dict = {}


def _adaptive_stairs(classes, sinr_max_db, dtype):
    """The :class:`_Stairs` of the CQI thresholds of every rank of every class's receive antennas (as
    :func:`_cqi_layer_ses` shifts them, in ``dtype``): the rates of :func:`device_mix_rate_bps` with
    ``rank_model="adaptive"`` are constant between them. Cached."""
    ns = tuple(sorted({int(c[2]) for c in classes}))
    key = (np.dtype(dtype).str, ns, None if sinr_max_db is None else float(sinr_max_db))
    st = _STAIRS_CACHE.get(key)
    if st is None:
        thr = [(_shifted_thresholds(sinr_max_db) - 10.0 * np.log10((n - L + 1) / L)).astype(dtype)
               for n in ns for L in range(1, n + 1)]
        st = _STAIRS_CACHE[key] = _Stairs(np.concatenate(thr), dtype)
    return st


def device_mix_rate_bps(sinr_db, classes, scs_khz, dl_share, overhead=NR_OVERHEAD_FR1_DL, method="cqi",
                        sinr_max_db=None, los_prob=None, thresholds_db=MIMO_RANK_THRESHOLDS_DB,
                        los_thresholds_db=None, rank_model="thresholds", los_max_layers=None):
    """Downlink rate of a lone user, averaged over the device classes of the population.

    Parameters
    ----------
    sinr_db : array_like
        Geometric SINR, dB; NaN is no-data.
    classes : sequence of (share, n_prb, max_layers)
        Each device class: its population share (shares add up to 1), the resource blocks
        it aggregates (:func:`n_prb_aggregated`) and its most layers (receive antennas,
        capped by the cell's ports).
    scs_khz, dl_share, overhead, method
        As :func:`dl_throughput_bps` (``overhead``: the field overhead, see the config).
    sinr_max_db : float or None
        Link ceiling (:func:`effective_sinr_db`).
    los_prob : array_like or None
        LOS probability of the serving link (None: 0), the weight of the LOS rank curve.
    rank_model : {"thresholds", "adaptive"}
        ``"thresholds"``: rank from ``thresholds_db`` / ``los_thresholds_db``
        (:func:`expected_layers`) at the effective SINR, each layer at that SINR.
        ``"adaptive"``: :func:`adaptive_layer_se_bps_hz` with ``max_layers`` receive antennas,
        LOS links limited to ``los_max_layers`` (None: no limit).

    Returns
    -------
    rate_bps : ndarray, shape of ``sinr_db``, float32 for float32 input
        ``sum_c share_c S_c(SINR) N_PRB,c 12 / T_s dl_share (1 - OH)`` with ``S_c`` the
        spectral efficiency summed over the layers (expected over LOS/NLOS); 0 below CQI 1,
        NaN where the SINR is NaN.

    Notes
    -----
    One class ``(1, N_PRB, L)`` without ceiling at CQI 15 with OH 0.14 and ``dl_share`` 1 gives
    :func:`nr_peak_rate_bps` with Qm 8 (TS 38.306 §4.1.2), whichever rank model. The
    share-weighted sum is the mean rate a user of unknown device gets (ASSUMPTION: the busy
    hour loads its cell with that mean rate, not with the harmonic mean of the classes').
    """
    scs = _scs(scs_khz)
    share = _number(dl_share, "dl_share", 0.0, 1.0, lo_open=True)
    oh = _number(overhead, "overhead", 0.0, 1.0, hi_open=True)
    if not classes:
        raise InputError(_SOURCE, "classes", "expected at least one device class")
    if rank_model not in RANK_MODELS:
        raise InputError(_SOURCE, "rank_model", f"expected one of {RANK_MODELS}, got {rank_model!r}")
    sinr = _float_array(sinr_db)
    dt = sinr.dtype.type
    p = None if los_prob is None else np.nan_to_num(np.asarray(los_prob, dtype=sinr.dtype), nan=0.0)
    if rank_model == "thresholds":
        eff = effective_sinr_db(sinr, sinr_max_db)
        se = spectral_efficiency_bps_hz(eff, method=method)
    if rank_model == "adaptive" and method == "cqi" and sinr.size >= _TABULATE_MIN:
        st = _adaptive_stairs(classes, sinr_max_db, sinr.dtype)
        if st.ok:
            return _tabulated_rate(st, sinr, p, classes, scs, share, oh, sinr_max_db, los_max_layers)
    cache = {}
    out = None
    for c_share, c_prb, c_layers in classes:
        n = int(c_layers)
        if n not in cache:
            if rank_model == "thresholds":
                cache[n] = expected_layers(eff, n, p, thresholds_db, los_thresholds_db)
            else:
                # one pass over the ranks: the best up to los_max_layers (LOS) comes on the way
                keep = [int(los_max_layers)] if p is not None and los_max_layers and los_max_layers < n else None
                s_n = adaptive_layer_se_bps_hz(sinr, n, None, sinr_max_db, method, _keep=keep)[1]
                if keep is not None:
                    s_n = s_n + p * (keep[1] - s_n)
                cache[n] = s_n
        w = dt(float(c_share) * re_rate_hz(int(c_prb), scs) * share * (1.0 - oh))
        part = cache[n] * w
        out = part if out is None else out + part
    return out * se if rank_model == "thresholds" else out


_TABULATE_MIN = 4096
"""Values from which :func:`device_mix_rate_bps` looks the adaptive CQI rates up by rank of the SINR
among the thresholds (:class:`_Stairs`) rather than evaluating every rank (the same bits)."""


def _tabulated_rate(st: _Stairs, sinr, p, classes, scs, share, oh, sinr_max_db, los_max_layers):
    """:func:`device_mix_rate_bps` (adaptive ranks, CQI) from tables over the SINR's rank among the thresholds.

    The tables are that function's own values at one SINR per rank (``st.reps``), so each pixel gets the
    bits the direct evaluation gives it: the per-class efficiencies (and their LOS-limited twins) are
    looked up and mixed with the LOS probability in the same float operations, in the same order.
    """
    dt = sinr.dtype.type
    r = st.rank(sinr)
    los_n = int(los_max_layers) if p is not None and los_max_layers else 0
    key = (tuple(tuple(c) for c in classes), scs, share, oh, los_n if p is not None else -1)
    tabs = st.tables.get(key)
    if tabs is None:
        tabs = {}
        for _, _, c_layers in classes:
            n = int(c_layers)
            if n in tabs:
                continue
            keep = [los_n] if p is not None and los_n and los_n < n else None
            s_n = adaptive_layer_se_bps_hz(st.reps, n, None, sinr_max_db, "cqi", _keep=keep)[1]
            tabs[n] = (s_n, None if keep is None else keep[1] - s_n)
        if p is None:     # no LOS mix: the whole class sum is a function of the rank
            out = None
            for c_share, c_prb, c_layers in classes:
                w = dt(float(c_share) * re_rate_hz(int(c_prb), scs) * share * (1.0 - oh))
                part = tabs[int(c_layers)][0] * w
                out = part if out is None else out + part
            tabs = {"sum": out}
        st.tables[key] = tabs
    if p is None:
        return tabs["sum"].take(r)
    cache = {}
    out = None
    for c_share, c_prb, c_layers in classes:
        n = int(c_layers)
        if n not in cache:
            s_tab, d_tab = tabs[n]
            cache[n] = s_tab.take(r) if d_tab is None else s_tab.take(r) + p * d_tab.take(r)
        w = dt(float(c_share) * re_rate_hz(int(c_prb), scs) * share * (1.0 - oh))
        part = cache[n] * w
        out = part if out is None else out + part
    return out


def layer_rate_bps(sinr_db, radio, los_prob=None):
    """:func:`device_mix_rate_bps` with the parameters of a layer (a :class:`sim.results.LayerRadio`).

    ``radio.device_classes`` empty: one class using the whole block (:func:`n_prb_total`) with
    ``radio.max_layers``; ``radio.overhead`` is the field overhead; ``radio.sinr_max_db`` the
    ceiling (0: none); ``radio.rank_thresholds_db`` / ``rank_thresholds_los_db`` the rank model.
    """
    classes = radio.device_classes or ((1.0, n_prb_total(radio.bw_hz, radio.scs_khz), radio.max_layers),)
    return device_mix_rate_bps(sinr_db, classes, radio.scs_khz, radio.dl_share, radio.overhead, radio.se_method,
                               sinr_max_db=radio.sinr_max_db, los_prob=los_prob,
                               thresholds_db=radio.rank_thresholds_db, los_thresholds_db=radio.rank_thresholds_los_db,
                               rank_model=radio.rank_model, los_max_layers=radio.los_max_layers or None)
