"""Link model: SINR -> CQI -> spectral efficiency -> downlink throughput of NR carriers.

Sources
-------
* 3GPP TS 38.214 V17, Table 5.2.2.1-3: 4-bit CQI table 2 (up to 256QAM).
* 3GPP TS 38.306 V17, §4.1.2: approximate peak data rate of one carrier.
* 3GPP TS 38.101-1 V17, Table 5.3.2-1: maximum transmission bandwidth configuration N_RB (FR1).
* 3GPP TR 36.942 V17, Annex A.2: attenuated (truncated) Shannon bound.
* 3GPP TS 38.211 V17, §4.3.2 (14 OFDM symbols per slot, normal CP) and §4.2 (numerology mu).

Everything here is a pure function of arrays (or of scalars, for the carrier geometry).
The array functions keep float32 input float32, so the coverage kernel can call them on
rasters of 1e7 pixels; they use ``np.searchsorted`` on 15-entry tables, no Python loops.
No-data is explicit: a NaN SINR gives CQI 0, 0 layers and a NaN spectral efficiency and
throughput.
"""

from __future__ import annotations

import numpy as np

from sim.errors import InputError

__all__ = [
    "CQI_TABLE_256QAM",
    "CQI_FIT_ALPHA",
    "CQI_FIT_GAP_DB",
    "CQI_SINR_THRESHOLDS_DB",
    "SHANNON_ALPHA",
    "SHANNON_SINR_MIN_DB",
    "SHANNON_SE_MAX_BPS_HZ",
    "SHANNON_SINR_MAX_DB",
    "MIMO_RANK_THRESHOLDS_DB",
    "NR_OVERHEAD_FR1_DL",
    "NR_R_MAX",
    "NR_FR1_N_RB",
    "cqi_from_sinr",
    "spectral_efficiency_bps_hz",
    "mimo_layers",
    "n_prb",
    "carrier_split_hz",
    "n_prb_total",
    "re_rate_hz",
    "nr_peak_rate_bps",
    "dl_throughput_bps",
    "tdd_dl_share",
]

_SOURCE = "sim.linkmodel"

# --------------------------------------------------------------------------- CQI table

CQI_TABLE_256QAM = np.array(
    [
        # CQI, Qm, code rate x 1024, efficiency  (TS 38.214 Table 5.2.2.1-3; CQI 0 = out of range)
        (0, 0, 0, 0.0),
        (1, 2, 78, 0.1523),  # QPSK
        (2, 2, 193, 0.3770),  # QPSK
        (3, 2, 449, 0.8770),  # QPSK
        (4, 4, 378, 1.4766),  # 16QAM
        (5, 4, 490, 1.9141),  # 16QAM
        (6, 4, 616, 2.4063),  # 16QAM
        (7, 6, 466, 2.7305),  # 64QAM
        (8, 6, 567, 3.3223),  # 64QAM
        (9, 6, 666, 3.9023),  # 64QAM
        (10, 6, 772, 4.5234),  # 64QAM
        (11, 6, 873, 5.1152),  # 64QAM
        (12, 8, 711, 5.5547),  # 256QAM
        (13, 8, 797, 6.2266),  # 256QAM
        (14, 8, 885, 6.9141),  # 256QAM
        (15, 8, 948, 7.4063),  # 256QAM
    ],
    dtype=[("cqi", "i1"), ("qm", "i1"), ("rate_x1024", "i2"), ("efficiency", "f8")],
)
"""3GPP TS 38.214 V17, Table 5.2.2.1-3 "4-bit CQI Table 2", transcribed by row.

Fields: ``cqi`` index, modulation order ``qm`` (bits/symbol: 2 QPSK, 4 16QAM, 6 64QAM,
8 256QAM), target code rate ``rate_x1024`` (code rate x 1024) and ``efficiency`` (the
table's column, ``qm * rate_x1024 / 1024`` rounded to 4 decimals; b/s/Hz per layer,
before overhead). Row 0 is "out of range" (zeros here).
"""

_CQI_SE_EXACT = (
    CQI_TABLE_256QAM["qm"].astype(np.float64) * CQI_TABLE_256QAM["rate_x1024"] / 1024.0
)
# The lookup uses qm * R / 1024 unrounded, so CQI 15 gives exactly 8 * 948/1024, the
# TS 38.306 peak-rate product Qm * R_max; the table's rounded column differs by < 5e-5.

CQI_FIT_ALPHA = 0.82
"""Efficiency factor of the Shannon fit behind :data:`CQI_SINR_THRESHOLDS_DB` (see there)."""

CQI_FIT_GAP_DB = 5.2
"""SNR gap (dB) of the Shannon fit behind :data:`CQI_SINR_THRESHOLDS_DB` (see there)."""


def _fit_threshold_db(se_bps_hz):
    # gamma_k = Gap + 10 log10(2 ** (SE_k / alpha) - 1): inverse of SE = alpha log2(1 + gamma/Gap)
    return CQI_FIT_GAP_DB + 10.0 * np.log10(np.exp2(se_bps_hz / CQI_FIT_ALPHA) - 1.0)


CQI_SINR_THRESHOLDS_DB = _fit_threshold_db(_CQI_SE_EXACT[1:])
"""Lowest SINR (dB) at which CQI 1..15 of Table 5.2.2.1-3 is reported (~10 % BLER), shape [15].

Derived, not measured: an attenuated-Shannon fit ``SE = alpha * log2(1 + SINR / Gap)``
with ``alpha = 0.82`` and ``Gap = 5.2 dB``, inverted at each CQI's efficiency
``qm * R / 1024``. The two parameters were fitted by least squares (in dB) to the published
link-level SINR for 10 % BLER of the 11 (modulation, code rate) pairs that CQI table 2
shares with CQI table 1 (TS 38.214 Table 5.2.2.1-2): MathWorks 5G Toolbox example
"5G NR CQI Reporting" (SISO, CDL-C channel, 300 ns delay spread, practical channel
estimation), values as transcribed in the AIMM simulator's ``NR_5G_standard_functions``
(K. Briggs, BT), not checked against the MathWorks page itself. The fit reproduces those
11 points within 1.6 dB (worst at CQI 1) and extrapolates the four 256QAM rows
(CQI 12..15: 25.6, 28.0, 30.6, 32.4 dB). Values in dB:
-3.42, 0.94, 5.61, 9.15, 11.27, 13.42, 14.77, 17.13, 19.36, 21.71, 23.92, 25.55,
28.04, 30.57, 32.38. They describe a faded SISO link with real channel estimation, so
they are conservative against AWGN curves (CQI 15 needs about 22 dB there); pass other
thresholds to :func:`cqi_from_sinr` to use another receiver model.
"""
CQI_SINR_THRESHOLDS_DB.flags.writeable = False

# ------------------------------------------------------------------- attenuated Shannon

SHANNON_ALPHA = 0.6
"""Attenuation alpha of TR 36.942 Annex A.2 (downlink, implementation losses)."""

SHANNON_SINR_MIN_DB = -10.0
"""SINR_MIN of TR 36.942 Annex A.2 (downlink): below it the throughput is 0."""

SHANNON_SE_MAX_BPS_HZ = float(_CQI_SE_EXACT[-1])
"""Thr_MAX of the attenuated Shannon bound, set here to the 256QAM CQI table's maximum,
8 x 948/1024 = 7.40625 b/s/Hz (TR 36.942 uses 4.4 b/s/Hz for LTE 64QAM)."""

SHANNON_SINR_MAX_DB = float(10.0 * np.log10(np.exp2(SHANNON_SE_MAX_BPS_HZ / SHANNON_ALPHA) - 1.0))
"""SINR (dB) where ``alpha log2(1 + SINR)`` reaches Thr_MAX: 37.16 dB."""


def _float_array(x):
    """``x`` as an array of float32 (kept) or float64 (everything else)."""
    a = np.asarray(x)
    if a.dtype != np.float32 and a.dtype != np.float64:
        a = a.astype(np.float64)
    return a


def _cqi_index(sinr, thresholds_db):
    """Index into [0, 1..15, nodata]: count of thresholds <= sinr; NaN -> len + 1."""
    # A NaN sentinel after the thresholds: numpy sorts NaN last, so finite and +inf SINR
    # land at <= 15 and a NaN SINR lands on the sentinel's right, index 16.
    thr = np.append(np.asarray(thresholds_db, dtype=sinr.dtype), np.array(np.nan, sinr.dtype))
    return np.searchsorted(thr, sinr, side="right")


def _check_thresholds(thresholds_db, name, n=None):
    thr = np.asarray(thresholds_db, dtype=np.float64)
    if thr.ndim != 1 or (n is not None and thr.size != n):
        want = f"{n} values" if n is not None else "a 1-D sequence"
        raise InputError(_SOURCE, name, f"expected {want}, got shape {thr.shape}")
    if not np.all(np.isfinite(thr)) or np.any(np.diff(thr) < 0):
        raise InputError(_SOURCE, name, "expected finite, non-decreasing values in dB")
    return thr


def cqi_from_sinr(sinr_db, thresholds_db=CQI_SINR_THRESHOLDS_DB):
    """CQI index (TS 38.214 Table 5.2.2.1-3) a UE reports at a given SINR.

    Parameters
    ----------
    sinr_db : array_like
        SINR in dB, any shape. NaN is no-data.
    thresholds_db : sequence of 15 float, optional
        Lowest SINR for CQI 1..15, non-decreasing. Default :data:`CQI_SINR_THRESHOLDS_DB`.

    Returns
    -------
    cqi : ndarray, int8, shape of ``sinr_db``
        Highest CQI whose threshold is <= SINR; 0 ("out of range") below CQI 1's threshold
        and for NaN.

    Notes
    -----
    ``CQI(SINR) = max{k : SINR >= thr_k}``, 0 if none, the 10 % BLER rule of
    TS 38.214 §5.2.2.1 applied through the thresholds.
    """
    thr = _check_thresholds(thresholds_db, "thresholds_db", 15)
    sinr = _float_array(sinr_db)
    idx = _cqi_index(sinr, thr)
    lookup = np.append(np.arange(16, dtype=np.int8), np.int8(0))
    return lookup[idx]


def spectral_efficiency_bps_hz(sinr_db, method="cqi"):
    """Spectral efficiency per MIMO layer, b/s/Hz, before overhead.

    Parameters
    ----------
    sinr_db : array_like
        SINR in dB, any shape; NaN is no-data.
    method : {"cqi", "shannon"}
        ``"cqi"``: efficiency of the CQI reported at that SINR (:func:`cqi_from_sinr`,
        TS 38.214 Table 5.2.2.1-3). ``"shannon"``: TR 36.942 Annex A.2 attenuated Shannon
        bound with :data:`SHANNON_ALPHA` 0.6, :data:`SHANNON_SINR_MIN_DB` -10 dB and
        :data:`SHANNON_SE_MAX_BPS_HZ` 7.40625 b/s/Hz.

    Returns
    -------
    se_bps_hz : ndarray, shape of ``sinr_db``
        float32 for float32 input, float64 otherwise. 0 below the lowest threshold
        (CQI 1's threshold, or SINR_MIN), NaN where the SINR is NaN.

    Notes
    -----
    ``"cqi"``: ``SE = Qm * R / 1024`` of row ``CQI(SINR)`` (0 for CQI 0), a staircase of
    15 steps from 0.152 (-3.4 dB) to 7.406 b/s/Hz (32.4 dB).

    ``"shannon"`` (TR 36.942 A.2)::

        SE = 0                          SINR < SINR_MIN
        SE = alpha log2(1 + SINR)       SINR_MIN <= SINR < SINR_MAX
        SE = SE_MAX                     SINR >= SINR_MAX  (37.16 dB here)

    Over -10..40 dB the CQI staircase lies between 1.05 b/s/Hz below and 0.95 b/s/Hz
    above the attenuated Shannon curve (largest deficit just below CQI 4's threshold,
    9.15 dB; largest excess at CQI 15's threshold, 32.4 dB, where Shannon with alpha 0.6
    still needs 4.8 dB more to saturate).
    """
    sinr = _float_array(sinr_db)
    if method == "cqi":
        se_table = np.append(_CQI_SE_EXACT, np.nan).astype(sinr.dtype)
        return se_table[_cqi_index(sinr, CQI_SINR_THRESHOLDS_DB)]
    if method == "shannon":
        dt = sinr.dtype.type
        # clip first so 10 ** (x/10) cannot overflow; NaN passes through np.minimum
        x = np.minimum(sinr, dt(SHANNON_SINR_MAX_DB))
        se = dt(SHANNON_ALPHA / np.log(2.0)) * np.log1p(np.power(dt(10.0), x / dt(10.0)))
        se = np.where(sinr >= dt(SHANNON_SINR_MAX_DB), dt(SHANNON_SE_MAX_BPS_HZ), se)
        return np.where(sinr < dt(SHANNON_SINR_MIN_DB), dt(0.0), se)
    raise InputError(_SOURCE, "method", f"expected 'cqi' or 'shannon', got {method!r}")


# ------------------------------------------------------------------------------- MIMO

MIMO_RANK_THRESHOLDS_DB = (5.0, 9.0, 12.0)
"""Lowest SINR (dB) for rank 2, 3 and 4 used by :func:`mimo_layers` by default.

An assumption, not a standard value: no 3GPP table maps SINR to rank (the UE picks the
rank indicator from its channel matrix, TS 38.214 §5.2.2.2). The values follow the usual
planning rule of thumb: single layer at the cell edge (below ~5 dB), two layers in mid
cell, four layers only near the site where the SINR is above ~12 dB and the channel
rich enough; rank 3 is given the band between. Pass other thresholds to change them.
"""


def mimo_layers(sinr_db, max_layers, thresholds_db=MIMO_RANK_THRESHOLDS_DB):
    """Number of spatial layers (rank) a UE is served with at a given SINR.

    Parameters
    ----------
    sinr_db : array_like
        SINR in dB, any shape; NaN is no-data.
    max_layers : int
        Most layers the UE and cell support (min of UE receive and cell transmit ports),
        >= 1.
    thresholds_db : sequence of float, optional
        Lowest SINR for rank 2, 3, ...; non-decreasing. Default
        :data:`MIMO_RANK_THRESHOLDS_DB` (5, 9, 12 dB: an assumption, see there). The rank
        reaches at most ``len(thresholds_db) + 1``.

    Returns
    -------
    layers : ndarray, int8, shape of ``sinr_db``
        ``min(1 + #{thresholds <= SINR}, max_layers)``; 0 where the SINR is NaN.
    """
    if isinstance(max_layers, bool) or not isinstance(max_layers, (int, np.integer)):
        raise InputError(_SOURCE, "max_layers", f"expected an integer >= 1, got {max_layers!r}")
    if max_layers < 1:
        raise InputError(_SOURCE, "max_layers", f"expected an integer >= 1, got {max_layers}")
    thr = _check_thresholds(thresholds_db, "thresholds_db")
    sinr = _float_array(sinr_db)
    n = thr.size
    ranks = np.minimum(np.arange(1, n + 2), max_layers).astype(np.int8)
    lookup = np.append(ranks, np.int8(0))
    return lookup[_cqi_index(sinr, thr)]


# ----------------------------------------------------------------- carriers and PRBs

NR_FR1_N_RB = {
    # SCS kHz: {channel bandwidth MHz: N_RB}; TS 38.101-1 V17, Table 5.3.2-1
    15: {3: 15, 5: 25, 10: 52, 15: 79, 20: 106, 25: 133, 30: 160, 35: 188, 40: 216, 45: 242,
         50: 270},
    30: {5: 11, 10: 24, 15: 38, 20: 51, 25: 65, 30: 78, 35: 92, 40: 106, 45: 119, 50: 133,
         60: 162, 70: 189, 80: 217, 90: 245, 100: 273},
    60: {10: 11, 15: 18, 20: 24, 25: 31, 30: 38, 35: 44, 40: 51, 45: 58, 50: 65, 60: 79,
         70: 93, 80: 107, 90: 121, 100: 135},
}  # fmt: skip
"""Maximum transmission bandwidth configuration N_RB, 3GPP TS 38.101-1 V17, Table 5.3.2-1
(FR1), by subcarrier spacing (kHz) and UE channel bandwidth (MHz). "N/A" cells are absent
(e.g. 15 kHz above 50 MHz, 60 kHz at 5 MHz); the 7 MHz column of later releases is not
transcribed."""


def _check_scs(scs_khz):
    if scs_khz not in NR_FR1_N_RB:
        raise InputError(
            _SOURCE, "scs_khz", f"expected an FR1 subcarrier spacing 15, 30 or 60 kHz, got {scs_khz!r}"
        )
    return int(scs_khz)


def _bw_mhz(bw_hz):
    try:
        bw = float(bw_hz)
    except (TypeError, ValueError):
        raise InputError(_SOURCE, "bw_hz", f"expected a bandwidth in Hz, got {bw_hz!r}") from None
    if not np.isfinite(bw) or bw <= 0:
        raise InputError(_SOURCE, "bw_hz", f"expected a positive bandwidth in Hz, got {bw:g} Hz")
    mhz = round(bw / 1e6)
    if abs(bw / 1e6 - mhz) > 1e-6:
        raise InputError(_SOURCE, "bw_hz", f"expected a whole number of MHz, got {bw:g} Hz")
    return mhz


def n_prb(bw_hz, scs_khz):
    """Maximum number of resource blocks N_RB of one FR1 carrier.

    Parameters
    ----------
    bw_hz : float
        UE channel bandwidth in Hz (e.g. ``100e6``), one of the columns of the table.
    scs_khz : int
        Subcarrier spacing, 15, 30 or 60 kHz.

    Returns
    -------
    n_rb : int
        N_RB from 3GPP TS 38.101-1 V17, Table 5.3.2-1 (:data:`NR_FR1_N_RB`), e.g.
        100 MHz at 30 kHz -> 273.

    Raises
    ------
    InputError
        For a bandwidth/SCS pair the table does not define (a single FR1 carrier is at
        most 100 MHz; use :func:`n_prb_total` for wider blocks).
    """
    scs = _check_scs(scs_khz)
    mhz = _bw_mhz(bw_hz)
    try:
        return NR_FR1_N_RB[scs][mhz]
    except KeyError:
        have = ", ".join(str(b) for b in NR_FR1_N_RB[scs])
        raise InputError(
            _SOURCE,
            "bw_hz",
            f"TS 38.101-1 Table 5.3.2-1 has no {mhz} MHz carrier at {scs} kHz SCS "
            f"(defined: {have} MHz)",
        ) from None


def carrier_split_hz(bw_hz, scs_khz):
    """Split a block of spectrum into standard FR1 carriers (TS 38.101-1 Table 5.3.2-1).

    Parameters
    ----------
    bw_hz : float
        Contiguous spectrum held by one operator in one band, Hz (e.g. 160 MHz of n41).
    scs_khz : int
        Subcarrier spacing, 15, 30 or 60 kHz.

    Returns
    -------
    carriers_hz : tuple of float
        Carrier bandwidths in Hz, widest first, summing to ``bw_hz``: the fewest carriers,
        and among those the most resource blocks. 160 MHz at 30 kHz -> (100e6, 60e6).

    Notes
    -----
    An FR1 carrier is at most 100 MHz (Table 5.3.2-1), so a 160 MHz block (China Mobile's
    2515-2675 MHz in n41) is deployed as carriers aggregated in the UE (intra-band CA);
    the split is a small exact search over the table's bandwidths. Guard bands between
    the carriers are those of each carrier's own channel bandwidth.
    """
    scs = _check_scs(scs_khz)
    total = _bw_mhz(bw_hz)
    widths = sorted(NR_FR1_N_RB[scs], reverse=True)
    # best[m] = (carriers, -n_rb, split) for exactly m MHz, built up from 0
    best: list[tuple[int, int, tuple[int, ...]] | None] = [None] * (total + 1)
    best[0] = (0, 0, ())
    for m in range(1, total + 1):
        for w in widths:
            prev = best[m - w] if w <= m else None
            if prev is None:
                continue
            cand = (prev[0] + 1, prev[1] - NR_FR1_N_RB[scs][w], tuple(sorted((*prev[2], w), reverse=True)))
            if best[m] is None or cand[:2] < best[m][:2]:
                best[m] = cand
    if best[total] is None:
        raise InputError(
            _SOURCE,
            "bw_hz",
            f"{total} MHz cannot be split into TS 38.101-1 Table 5.3.2-1 carriers at {scs} kHz SCS",
        )
    return tuple(w * 1e6 for w in best[total][2])


def n_prb_total(bw_hz, scs_khz):
    """Total resource blocks of a spectrum block split into standard FR1 carriers.

    Parameters
    ----------
    bw_hz : float
        Spectrum in Hz; any whole number of MHz that :func:`carrier_split_hz` can split.
    scs_khz : int
        Subcarrier spacing, 15, 30 or 60 kHz.

    Returns
    -------
    n_rb : int
        Sum of N_RB (TS 38.101-1 Table 5.3.2-1) over the carriers of
        :func:`carrier_split_hz`; equals :func:`n_prb` for a standard bandwidth.
        160 MHz at 30 kHz -> 273 + 162 = 435.
    """
    scs = _check_scs(scs_khz)
    return sum(NR_FR1_N_RB[scs][round(w / 1e6)] for w in carrier_split_hz(bw_hz, scs))


def _check_scalar(value, name, lo, hi, lo_open=False, hi_open=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(_SOURCE, name, f"expected a number, got {value!r}") from None
    below = v <= lo if lo_open else v < lo
    above = v >= hi if hi_open else v > hi
    if not np.isfinite(v) or below or above:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise InputError(_SOURCE, name, f"expected a number in {lb}{lo:g}, {hi:g}{rb}, got {value!r}")
    return v


def re_rate_hz(n_prb, scs_khz):
    """Resource elements per second of ``n_prb`` resource blocks (normal cyclic prefix).

    Parameters
    ----------
    n_prb : int or array_like of int
        Resource blocks, >= 1.
    scs_khz : int
        Subcarrier spacing 15 * 2**mu kHz (15, 30, 60, 120, 240).

    Returns
    -------
    re_per_s : float or ndarray
        ``N_PRB * 12 / T_s`` with ``T_s = 1e-3 / (14 * 2**mu)`` s, the average OFDM symbol
        duration of TS 38.306 §4.1.2 (14 symbols per slot, TS 38.211 §4.3.2). Equals
        ``N_PRB * 12 * SCS * 14/15``: the factor 14/15 is the cyclic prefix.
    """
    mu = {15: 0, 30: 1, 60: 2, 120: 3, 240: 4}.get(scs_khz)
    if mu is None:
        raise InputError(_SOURCE, "scs_khz", f"expected 15, 30, 60, 120 or 240 kHz, got {scs_khz!r}")
    nprb = np.asarray(n_prb)
    if nprb.dtype.kind not in "iu" or np.any(nprb < 1):
        raise InputError(_SOURCE, "n_prb", f"expected integers >= 1, got {n_prb!r}")
    t_s = 1e-3 / (14 * 2**mu)
    out = nprb * 12 / t_s
    return float(out) if out.ndim == 0 else out


NR_OVERHEAD_FR1_DL = 0.14
"""Overhead OH of TS 38.306 §4.1.2 for FR1 downlink (0.18 FR2 DL, 0.08 FR1 UL, 0.10 FR2 UL)."""

NR_R_MAX = 948 / 1024
"""Highest LDPC code rate R_max of TS 38.306 §4.1.2."""

_QM_ALLOWED = (1, 2, 4, 6, 8, 10)
_SCALING_ALLOWED = (1.0, 0.8, 0.75, 0.4)


def nr_peak_rate_bps(n_prb, scs_khz, layers, qm, scaling=1.0, overhead=NR_OVERHEAD_FR1_DL,
                     r_max=NR_R_MAX):
    """Approximate peak data rate of one NR carrier, 3GPP TS 38.306 V17 §4.1.2.

    Parameters
    ----------
    n_prb : int or array_like of int
        N_PRB^{BW(j),mu}, the carrier's maximum RB allocation (:func:`n_prb`).
    scs_khz : int
        Subcarrier spacing 15 * 2**mu kHz.
    layers : int
        v_Layers, maximum number of MIMO layers, 1..8.
    qm : int
        Q_m, maximum modulation order: 2 QPSK, 4 16QAM, 6 64QAM, 8 256QAM, 10 1024QAM
        (1 for pi/2-BPSK uplink).
    scaling : float
        Scaling factor f, one of 1, 0.8, 0.75, 0.4 (signalled by the UE).
    overhead : float
        OH: 0.14 FR1 DL, 0.18 FR2 DL, 0.08 FR1 UL, 0.10 FR2 UL; in [0, 1).
    r_max : float
        Maximum code rate, 948/1024; in (0, 1].

    Returns
    -------
    rate_bps : float or ndarray
        Peak rate in bit/s. 273 PRB at 30 kHz, 4 layers, 256QAM, f = 1, OH 0.14 ->
        2.337e9 bit/s.

    Notes
    -----
    TS 38.306 §4.1.2, one carrier (J = 1), in bit/s rather than Mbps::

        rate = v_Layers * Q_m * f * R_max * N_PRB * 12 / T_s * (1 - OH),
        T_s  = 1e-3 / (14 * 2**mu) s.
    """
    if isinstance(layers, bool) or not isinstance(layers, (int, np.integer)) or not 1 <= layers <= 8:
        raise InputError(_SOURCE, "layers", f"expected an integer in 1..8, got {layers!r}")
    if qm not in _QM_ALLOWED or isinstance(qm, bool):
        raise InputError(_SOURCE, "qm", f"expected a modulation order in {_QM_ALLOWED}, got {qm!r}")
    if scaling not in _SCALING_ALLOWED:
        raise InputError(
            _SOURCE, "scaling", f"expected one of 1, 0.8, 0.75, 0.4 (TS 38.306 4.1.2), got {scaling!r}"
        )
    oh = _check_scalar(overhead, "overhead", 0.0, 1.0, hi_open=True)
    r = _check_scalar(r_max, "r_max", 0.0, 1.0, lo_open=True)
    return layers * qm * scaling * r * re_rate_hz(n_prb, scs_khz) * (1.0 - oh)


def dl_throughput_bps(sinr_db, bw_hz, scs_khz, max_layers, dl_share, overhead=NR_OVERHEAD_FR1_DL,
                      method="cqi"):
    """Achievable downlink rate of one UE alone in its cell (full-buffer, all PRBs).

    Parameters
    ----------
    sinr_db : array_like
        SINR in dB, any shape (e.g. a raster); NaN is no-data.
    bw_hz : float
        Operator's spectrum in the band, Hz; split into standard carriers with
        :func:`n_prb_total` (100 MHz at 30 kHz -> 273 PRB; 160 MHz -> 100 + 60 MHz).
    scs_khz : int
        Subcarrier spacing, 15, 30 or 60 kHz.
    max_layers : int
        Most MIMO layers (see :func:`mimo_layers`), >= 1.
    dl_share : float
        Fraction of the carrier's time-frequency resources given to the downlink, in
        (0, 1]: 1 for FDD; for TDD the share of symbols that are downlink over one
        frame-structure period, e.g. :func:`tdd_dl_share` of "DDDSUDDSUU" with 10 DL
        symbols in S -> 0.643.
    overhead : float
        TS 38.306 §4.1.2 OH (reference signals, control), in [0, 1); 0.14 FR1 DL.
    method : {"cqi", "shannon"}
        Spectral-efficiency model (:func:`spectral_efficiency_bps_hz`).

    Returns
    -------
    rate_bps : ndarray, shape of ``sinr_db``
        float32 for float32 input, float64 otherwise; 0 where the SINR is below CQI 1,
        NaN where the SINR is NaN.

    Notes
    -----
    ::

        rate = layers(SINR) * SE(SINR) * N_PRB * 12 / T_s * dl_share * (1 - OH),
        T_s  = 1e-3 / (14 * 2**mu) s.

    ``12 / T_s`` per PRB is ``12 * SCS * 14/15`` resource elements per second (normal CP),
    as in TS 38.306 §4.1.2, so at high SINR with ``method="cqi"`` (CQI 15,
    ``SE = 8 * 948/1024``) the rate equals :func:`nr_peak_rate_bps` with Qm = 8, R_max =
    948/1024, f = 1, times ``dl_share``. Each layer is assumed to see the same SINR.
    """
    scs = _check_scs(scs_khz)
    share = _check_scalar(dl_share, "dl_share", 0.0, 1.0, lo_open=True)
    oh = _check_scalar(overhead, "overhead", 0.0, 1.0, hi_open=True)
    sinr = _float_array(sinr_db)
    se = spectral_efficiency_bps_hz(sinr, method=method)
    layers = mimo_layers(sinr, max_layers)
    factor = re_rate_hz(n_prb_total(bw_hz, scs), scs) * share * (1.0 - oh)
    dt = sinr.dtype.type
    return (layers.astype(sinr.dtype) * dt(factor)) * se


def tdd_dl_share(pattern, special_dl_symbols=0):
    """Downlink share of a TDD frame-structure pattern (fraction of OFDM symbols).

    Parameters
    ----------
    pattern : str
        Slot pattern of one period, letters D (downlink), U (uplink), S (special), e.g.
        ``"DDDSUDDSUU"`` (2.5 ms double period at 30 kHz) or ``"DDDDDDDSUU"`` (5 ms).
    special_dl_symbols : int
        Downlink symbols of each S slot, 0..14 (the rest are guard and uplink).

    Returns
    -------
    dl_share : float
        ``(n_D * 14 + n_S * special_dl_symbols) / (14 * len(pattern))``, 14 symbols per
        slot with normal CP (TS 38.211 §4.3.2). "DDDSUDDSUU" with S = 10:2:2 -> 0.643;
        "DDDDDDDSUU" with S = 6:4:4 -> 0.743.
    """
    if not isinstance(pattern, str) or not pattern or set(pattern) - set("DSU"):
        raise InputError(_SOURCE, "pattern", f"expected a string of D, S and U slots, got {pattern!r}")
    if (isinstance(special_dl_symbols, bool) or not isinstance(special_dl_symbols, (int, np.integer))
            or not 0 <= special_dl_symbols <= 14):
        raise InputError(
            _SOURCE, "special_dl_symbols", f"expected an integer in 0..14, got {special_dl_symbols!r}"
        )
    n_d = pattern.count("D")
    n_s = pattern.count("S")
    return (14 * n_d + n_s * int(special_dl_symbols)) / (14 * len(pattern))

