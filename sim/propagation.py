"""Large-scale propagation of 3GPP TR 38.901 V17.0.0 §7.4: path loss, LOS probability, O2I loss.

All functions are pure, vectorised over numpy arrays and free of random draws: they return
expected values (path loss without shadow fading, O2I loss without its random part) and,
separately, the standard deviations a caller needs to draw the random parts with its own
``numpy.random.Generator``.

Scenarios (:data:`SCENARIOS`): ``"uma"`` (Urban Macro), ``"umi"`` (Urban Micro, Street
Canyon) and ``"rma"`` (Rural Macro). Names are matched case-insensitively.

Fast path for the coverage kernel
---------------------------------
:func:`pathloss_db` checks its scalar-like arguments (scenario, carrier frequency, heights)
on every call unless ``check=False``. The kernel calls :func:`validate_radio_inputs` once per
layer and then ``pathloss_db(..., check=False, dtype=np.float32)`` on each block of pairs;
the unchecked path does no validation beyond the scenario lookup.

Conventions
-----------
Distances in metres, heights in metres above ground, carrier frequency ``fc_ghz`` in GHz
(as in TR 38.901, where ``fc`` in the path-loss formulas is normalised by 1 GHz and distances
by 1 m), losses in dB (positive numbers). In the breakpoint distances ``fc`` is in Hz and
``c = 3.0e8 m/s`` (Table 7.4.1-1, notes 1 and 5).
"""

from __future__ import annotations

import math

import numpy as np

from sim.errors import InputError
from sim.results import SCENARIO_CODES

__all__ = [
    "SCENARIOS",
    "O2I_MODELS",
    "FC_RANGE_GHZ",
    "D2D_MIN_M",
    "D2D_MAX_M",
    "C_BREAKPOINT_M_S",
    "H_E_M",
    "D2D_IN_DEFAULT_M",
    "validate_radio_inputs",
    "pathloss_db",
    "breakpoint_distance_m",
    "los_probability",
    "shadow_fading_std_db",
    "material_penetration_loss_db",
    "o2i_loss_db",
    "o2i_loss_std_db",
]

SCENARIOS = SCENARIO_CODES
"""Scenario names accepted by the functions of this module (case-insensitive); the one tuple of
:data:`sim.results.SCENARIO_CODES`, whose order the kernel's integer scenario codes follow."""

FC_RANGE_GHZ = {"uma": (0.5, 100.0), "umi": (0.5, 100.0), "rma": (0.5, 30.0)}
"""Carrier frequency range of the path-loss formulas, GHz (note under TR 38.901 Table 7.4.1-1:
0.5 < fc < fH with fH = 30 GHz for RMa and 100 GHz otherwise; the end points are accepted)."""

D2D_MIN_M = 10.0
"""Lower end of the d2D range of every formula of Table 7.4.1-1 (UMa, UMi, RMa); shorter
distances are clipped to it."""

D2D_MAX_M = {("uma", True): 5000.0, ("uma", False): 5000.0,
             ("umi", True): 5000.0, ("umi", False): 5000.0,
             ("rma", True): 10000.0, ("rma", False): 5000.0}
"""Upper end of the d2D range of Table 7.4.1-1 per (scenario, los); beyond it the formulas are
extrapolated (not clipped)."""

C_BREAKPOINT_M_S = 3.0e8
"""Propagation velocity in free space used in the breakpoint distances (Table 7.4.1-1, note 1)."""

H_E_M = 1.0
"""Effective environment height hE for UMi and, with probability 1 for h_UT < 13 m, UMa
(Table 7.4.1-1, note 1)."""

D2D_IN_DEFAULT_M = 25.0 / 3.0
"""Default indoor distance for :func:`o2i_loss_db`: the mean of min(U(0, 25), U(0, 25)),
the UMa/UMi d2D-in distribution of TR 38.901 §7.4.3.1 (E[min of two U(0, L)] = L / 3)."""

# Shadow fading standard deviations, Table 7.4.1-1 (sigma_SF column), dB.
_SIGMA_SF_DB = {("uma", True): 4.0, ("uma", False): 6.0,
                ("umi", True): 4.0, ("umi", False): 7.82,
                ("rma", False): 8.0}
_SIGMA_SF_RMA_LOS_DB = (4.0, 6.0)  # PL1 (d2D <= dBP), PL2 (d2D > dBP)

# UMa / UMi coefficients of Table 7.4.1-1:
# (a, b_pl1, c_bp) for PL1 = a + b_pl1 log10(d3D) + 20 log10(fc),
#                      PL2 = a + 40 log10(d3D) + 20 log10(fc) - c_bp log10(d'BP^2 + (hBS - hUT)^2)
# (a_n, b_n, f_n, h_n) for PL'NLOS = a_n + b_n log10(d3D) + f_n log10(fc) - h_n (hUT - 1.5)
_URBAN = {
    "uma": ((28.0, 22.0, 9.0), (13.54, 39.08, 20.0, 0.6)),
    "umi": ((32.4, 21.0, 9.5), (22.4, 35.3, 21.3, 0.3)),
}

O2I_MODELS = ("low", "high", "tr36873")
"""O2I building penetration models: TR 38.901 Table 7.4.3-2 low-loss and high-loss, and the
< 6 GHz model kept for backwards compatibility with TR 36.873 (§7.4.3.1)."""

_O2I_SIGMA_P_DB = {"low": 4.4, "high": 6.5, "tr36873": 0.0}
_O2I_FC_RANGE_GHZ = {"low": (0.5, 100.0), "high": (0.5, 100.0), "tr36873": (0.5, 6.0)}

# Table 7.4.3-1: L = a + b * f (f in GHz), dB.
_MATERIALS = {
    "glass": (2.0, 0.2),       # standard multi-pane glass
    "irr_glass": (23.0, 0.3),  # infrared reflective glass
    "concrete": (5.0, 4.0),
    "wood": (4.85, 0.12),
}


# --------------------------------------------------------------------------- checks


def _scenario_key(scenario, source: str) -> str:
    key = scenario.lower() if isinstance(scenario, str) else None
    if key not in SCENARIOS:
        allowed = ", ".join(repr(s) for s in SCENARIOS)
        raise InputError(source, "scenario", f"expected one of {allowed}, got {scenario!r}")
    return key


def _fmt(x) -> str:
    """Short text of the first offending value of a scalar or array."""
    return f"{float(x):g}"


def _finite(x, source: str, field: str, unit: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        raise InputError(source, field, f"expected a finite number in {unit}, got {_fmt(a[bad].flat[0])}")
    return a


def _check_fc(scenario: str, fc_ghz, source: str) -> None:
    fc = _finite(fc_ghz, source, "fc_ghz", "GHz")
    lo, hi = FC_RANGE_GHZ[scenario]
    bad = (fc < lo) | (fc > hi)
    if bad.any():
        raise InputError(
            source, "fc_ghz",
            f"expected a carrier frequency in [{lo:g}, {hi:g}] GHz for {scenario!r} "
            f"(TR 38.901 Table 7.4.1-1), got {_fmt(fc[bad].flat[0])} GHz",
        )


def validate_radio_inputs(scenario, fc_ghz, h_bs_m, h_ut_m, *, h_building_m=5.0,
                          w_street_m=20.0, source: str = "pathloss_db") -> str:
    """Check the per-layer inputs of :func:`pathloss_db` once and return the scenario key.

    Parameters
    ----------
    scenario : str
        ``"uma"``, ``"umi"`` or ``"rma"`` (case-insensitive).
    fc_ghz : float or array_like
        Carrier frequency, GHz: [0.5, 100] for UMa/UMi, [0.5, 30] for RMa.
    h_bs_m, h_ut_m : float or array_like
        Base-station and UE antenna heights, m; broadcast together. Every pair must have
        ``h_bs_m > h_ut_m``. For UMa/UMi ``h_ut_m`` must exceed hE = 1 m (otherwise the
        effective UE height of the breakpoint, h'UT = hUT - hE, is not positive); for RMa
        it must be positive.
    h_building_m, w_street_m : float or array_like, optional
        RMa average building height and street width, m; must be positive (RMa only).
    source : str, optional
        Name reported as the source of an :class:`~sim.errors.InputError`.

    Returns
    -------
    str
        The lower-case scenario key.

    Raises
    ------
    InputError
        With ``field`` ``scenario``, ``fc_ghz``, ``h_bs_m``, ``h_ut_m``, ``h_building_m`` or
        ``w_street_m`` and a one-line message saying what was expected and what came.
    """
    key = _scenario_key(scenario, source)
    _check_fc(key, fc_ghz, source)
    h_bs = _finite(h_bs_m, source, "h_bs_m", "m")
    h_ut = _finite(h_ut_m, source, "h_ut_m", "m")
    h_ut_min = 0.0 if key == "rma" else H_E_M
    low = h_ut <= h_ut_min
    if low.any():
        why = "a positive height" if key == "rma" else (
            "a height above the effective environment height hE = 1 m (Table 7.4.1-1, note 1)")
        raise InputError(source, "h_ut_m", f"expected {why} for {key!r}, got {_fmt(h_ut[low].flat[0])} m")
    h_bs_b, h_ut_b = np.broadcast_arrays(h_bs, h_ut)
    bad = h_bs_b <= h_ut_b
    if bad.any():
        raise InputError(
            source, "h_bs_m",
            f"expected a base station higher than the UE (h_bs_m > h_ut_m), got h_bs_m "
            f"{_fmt(h_bs_b[bad].flat[0])} m <= h_ut_m {_fmt(h_ut_b[bad].flat[0])} m",
        )
    if key == "rma":
        for field, value in (("h_building_m", h_building_m), ("w_street_m", w_street_m)):
            a = _finite(value, source, field, "m")
            if (a <= 0).any():
                raise InputError(source, field, f"expected a positive length in m, got {_fmt(a[a <= 0].flat[0])} m")
    return key


# --------------------------------------------------------------------------- path loss


def _uma_expected_h_e_m(d2d_m, h_ut_m):
    """E[hE] for UMa, Table 7.4.1-1 note 1 (see :func:`breakpoint_distance_m`)."""
    dt = d2d_m.dtype
    g = np.where(
        d2d_m > 18.0,
        1.25 * (d2d_m / 100.0) ** 3 * np.exp(-d2d_m / 150.0),
        dt.type(0.0),
    )
    h_c = np.clip(h_ut_m, 13.0, 23.0)
    # Discrete uniform on {12, 15, ..., hUT - 1.5}: n + 1 values, mean 12 + 1.5 n.
    n = np.floor((h_ut_m - 13.5) / 3.0)
    has_set = n >= 0.0
    c = np.where(has_set & (h_ut_m >= 13.0), ((h_c - 13.0) / 10.0) ** 1.5, dt.type(0.0)) * g
    mean_set = 12.0 + 1.5 * np.maximum(n, 0.0)
    return ((H_E_M + c * mean_set) / (1.0 + c)).astype(dt, copy=False)


def breakpoint_distance_m(scenario, d2d_m, h_bs_m, h_ut_m, fc_ghz, *, dtype=np.float64):
    """Breakpoint distance of the LOS path loss, TR 38.901 V17.0.0 Table 7.4.1-1, notes 1 and 5.

    Parameters
    ----------
    scenario : str
        ``"uma"``, ``"umi"`` or ``"rma"``.
    d2d_m : array_like
        2D distance, m (needed for UMa, whose hE depends on it; clipped to >= 10 m).
    h_bs_m, h_ut_m : array_like
        Antenna heights, m.
    fc_ghz : float or array_like
        Carrier frequency, GHz.
    dtype : numpy dtype, optional
        Output dtype.

    Returns
    -------
    d_bp_m : ndarray, broadcast shape, ``dtype``
        d'BP for UMa/UMi, dBP for RMa, m.

    Notes
    -----
    UMi: ``d'BP = 4 h'BS h'UT fc / c`` with ``h'BS = hBS - hE``, ``h'UT = hUT - hE``,
    hE = 1 m, fc in Hz, c = 3.0e8 m/s (note 1).

    UMa: the same with hE random (note 1): hE = 1 m with probability ``1 / (1 + C(d2D, hUT))``,
    otherwise drawn from the discrete uniform set {12, 15, ..., hUT - 1.5} m, where
    ``C = 0`` for hUT < 13 m, ``C = ((hUT - 13) / 10)**1.5 g(d2D)`` for 13 <= hUT <= 23 m,
    ``g = 0`` for d2D <= 18 m and ``g = 5/4 (d2D / 100)**3 exp(-d2D / 150)`` beyond.
    This deterministic model uses the expected value

        E[hE] = (1 + C m) / (1 + C),  m = mean of the set = 12 + 1.5 floor((hUT - 13.5) / 3).

    Justification: it is exact (hE = 1 m) for every UE below 13 m — all outdoor
    street-level users and the lower floors — where the note itself makes hE = 1 m certain,
    and for high-rise UEs it keeps the distance and height dependence of the note instead of
    ignoring it; no random draw hides in a path-loss function. For 13 <= hUT < 13.5 m the set
    is empty and hE = 1 m; hUT above 23 m uses C at 23 m (outside the table's range).

    RMa (note 5): ``dBP = 2 pi hBS hUT fc / c`` with the actual heights.
    """
    key = _scenario_key(scenario, "breakpoint_distance_m")
    dt = np.dtype(dtype)
    d2 = np.maximum(np.asarray(d2d_m, dtype=dt), dt.type(D2D_MIN_M))
    h_bs = np.asarray(h_bs_m, dtype=dt)
    h_ut = np.asarray(h_ut_m, dtype=dt)
    fc = np.asarray(fc_ghz, dtype=dt)
    out = _breakpoint(key, d2, h_bs, h_ut, fc)
    return np.broadcast_to(out, np.broadcast_shapes(d2.shape, h_bs.shape, h_ut.shape, fc.shape)).astype(dt)


def _breakpoint(key, d2, h_bs, h_ut, fc):
    scale = fc * (1e9 / C_BREAKPOINT_M_S)  # fc in Hz over c
    if key == "rma":
        return (2.0 * math.pi) * h_bs * h_ut * scale
    if key == "uma" and np.any(h_ut >= 13.0):
        h_e = _uma_expected_h_e_m(d2, h_ut)
    else:
        h_e = H_E_M
    return 4.0 * (h_bs - h_e) * (h_ut - h_e) * scale


def pathloss_db(scenario, d2d_m, h_bs_m, h_ut_m, fc_ghz, los, *, h_building_m=5.0,
                w_street_m=20.0, dtype=np.float64, check=True):
    """Basic path loss (no shadow fading), TR 38.901 V17.0.0 §7.4.1, Table 7.4.1-1.

    Parameters
    ----------
    scenario : str
        ``"uma"`` (UMa), ``"umi"`` (UMi - Street Canyon) or ``"rma"`` (RMa).
    d2d_m : array_like
        Horizontal (2D) BS-UE distance, m. Values below 10 m are clipped to 10 m; NaN gives NaN.
    h_bs_m, h_ut_m : float or array_like
        Base-station and UE antenna heights above ground, m.
    fc_ghz : float or array_like
        Carrier frequency, GHz.
    los : bool or array_like of bool
        True for a line-of-sight link, False for NLOS.
    h_building_m : float, optional
        RMa average building height h, m (default 5 m, the table's default). Ignored by UMa/UMi.
    w_street_m : float, optional
        RMa average street width W, m (default 20 m). Ignored by UMa/UMi.
    dtype : numpy dtype, optional
        Computation and output dtype; the coverage kernel uses ``np.float32``.
    check : bool, optional
        Validate scenario, frequency and heights with :func:`validate_radio_inputs` (default).
        ``False`` is the kernel's fast path: it assumes the caller validated once per layer.

    Returns
    -------
    pl_db : ndarray, broadcast shape of all numeric arguments and ``los``, ``dtype``
        Path loss, dB.

    Raises
    ------
    InputError
        Unknown scenario, ``fc_ghz`` outside the model's range, ``h_bs_m <= h_ut_m``, or
        ``h_ut_m`` not above hE (see :func:`validate_radio_inputs`).

    Notes
    -----
    ``d3D = sqrt(d2D**2 + (hBS - hUT)**2)``; fc in GHz, distances in m.

    UMa LOS (10 m <= d2D <= 5 km)::

        PL1 = 28.0 + 22 log10(d3D) + 20 log10(fc)                     10 m <= d2D <= d'BP
        PL2 = 28.0 + 40 log10(d3D) + 20 log10(fc)
              - 9 log10(d'BP**2 + (hBS - hUT)**2)                     d'BP < d2D

    UMa NLOS: ``PL = max(PL_LOS, PL')``,
    ``PL' = 13.54 + 39.08 log10(d3D) + 20 log10(fc) - 0.6 (hUT - 1.5)``.

    UMi - Street Canyon LOS: ``PL1 = 32.4 + 21 log10(d3D) + 20 log10(fc)``,
    ``PL2 = 32.4 + 40 log10(d3D) + 20 log10(fc) - 9.5 log10(d'BP**2 + (hBS - hUT)**2)``;
    NLOS: ``max(PL_LOS, PL')``, ``PL' = 35.3 log10(d3D) + 22.4 + 21.3 log10(fc) - 0.3 (hUT - 1.5)``.

    RMa LOS (10 m <= d2D <= 10 km)::

        PL1 = 20 log10(40 pi d3D fc / 3) + min(0.03 h**1.72, 10) log10(d3D)
              - min(0.044 h**1.72, 14.77) + 0.002 log10(h) d3D          10 m <= d2D <= dBP
        PL2 = PL1(dBP) + 40 log10(d3D / dBP)                          dBP < d2D

    RMa NLOS (10 m <= d2D <= 5 km): ``max(PL_LOS, PL')``, ::

        PL' = 161.04 - 7.1 log10(W) + 7.5 log10(h) - (24.37 - 3.7 (h / hBS)**2) log10(hBS)
              + (43.42 - 3.1 log10(hBS)) (log10(d3D) - 3) + 20 log10(fc)
              - (3.2 (log10(11.75 hUT))**2 - 4.97)

    ``PL1(dBP)`` is PL1 with d3D set to dBP, as written in the table, so the RMa LOS curve
    steps up by about 0.01 dB at the breakpoint (d3D exceeds d2D = dBP there by about
    (hBS - hUT)**2 / (2 dBP); 0.007 dB at 0.7 GHz with hBS = 35 m, hUT = 1.5 m). UMa and UMi
    are continuous at d'BP.
    Breakpoint distances: see :func:`breakpoint_distance_m` (UMa uses the expected hE).

    Validity ranges (Table 7.4.1-1): UMa hBS = 25 m, 1.5 <= hUT <= 22.5 m; UMi hBS = 10 m,
    1.5 <= hUT <= 22.5 m; RMa 10 <= hBS <= 150 m, 1 <= hUT <= 10 m, 5 <= h <= 50 m,
    5 <= W <= 50 m. Heights outside these ranges are used as given (no warning). d2D below
    10 m is clipped to 10 m; beyond the upper d2D limit (:data:`D2D_MAX_M`: 5 km, RMa LOS
    10 km) the formulas are extrapolated unchanged. Frequencies: :data:`FC_RANGE_GHZ`.

    Examples
    --------
    >>> round(float(pathloss_db("uma", 500.0, 25.0, 1.5, 3.5, True)), 2)
    98.27
    """
    if check:
        key = validate_radio_inputs(scenario, fc_ghz, h_bs_m, h_ut_m,
                                    h_building_m=h_building_m, w_street_m=w_street_m)
    else:
        key = _scenario_key(scenario, "pathloss_db")
    dt = np.dtype(dtype)
    d2 = np.maximum(np.asarray(d2d_m, dtype=dt), dt.type(D2D_MIN_M))
    h_bs = np.asarray(h_bs_m, dtype=dt)
    h_ut = np.asarray(h_ut_m, dtype=dt)
    fc = np.asarray(fc_ghz, dtype=dt)
    los = np.asarray(los, dtype=bool)
    shape = np.broadcast_shapes(d2.shape, h_bs.shape, h_ut.shape, fc.shape, los.shape)

    dh = h_bs - h_ut
    d3 = np.hypot(d2, dh)
    d_bp = _breakpoint(key, d2, h_bs, h_ut, fc)
    beyond_bp = d2 > d_bp
    if key == "rma":
        h = np.asarray(h_building_m, dtype=dt)
        w = np.asarray(w_street_m, dtype=dt)
        shape = np.broadcast_shapes(shape, h.shape, w.shape)
        pl_los, pl_nlos = _rma(d3, h_bs, h_ut, fc, d_bp, beyond_bp, los, h, w, shape)
    else:
        pl_los, pl_nlos = _urban(key, d3, dh, h_ut, fc, d_bp, beyond_bp, los, shape)
    if pl_nlos is not None:
        np.maximum(pl_nlos, pl_los, out=pl_nlos)          # NLOS = max(PL_LOS, PL'_NLOS)
        np.copyto(pl_los, pl_nlos, where=~los)
    return pl_los


def _scaled(x, k, shape, dt):
    """``x * k`` written into a fresh array of the full broadcast ``shape`` (one allocation)."""
    out = np.empty(shape, dtype=dt)
    np.multiply(x, k, out=out)
    return out


def _urban(key, d3, dh, h_ut, fc, d_bp, beyond_bp, los, shape):
    dt = d3.dtype
    (a, b1, c_bp), (a_n, b_n, f_n, h_n) = _URBAN[key]
    log_fc = np.log10(fc)
    # d3 is not needed any more: take its log in place when it is an array.
    log_d3 = np.log10(d3, out=d3) if isinstance(d3, np.ndarray) else np.log10(d3)
    # LOS: PL1 everywhere, then PL2 where d2D > d'BP.
    pl = _scaled(log_d3, dt.type(b1), shape, dt)
    pl += a + 20.0 * log_fc
    if beyond_bp.any():
        pl2 = _scaled(log_d3, dt.type(40.0), shape, dt)
        pl2 += a + 20.0 * log_fc - c_bp * np.log10(d_bp * d_bp + dh * dh)
        np.copyto(pl, pl2, where=beyond_bp)
    if los.all():
        return pl, None
    nl = _scaled(log_d3, dt.type(b_n), shape, dt)
    nl += a_n + f_n * log_fc - h_n * (h_ut - 1.5)
    return pl, nl


def _rma(d3, h_bs, h_ut, fc, d_bp, beyond_bp, los, h, w, shape):
    dt = d3.dtype
    h172 = h ** 1.72
    k_log = 20.0 + np.minimum(0.03 * h172, 10.0)          # coefficient of log10(d3D) in PL1
    k_0 = 20.0 * np.log10(40.0 * math.pi * fc / 3.0) - np.minimum(0.044 * h172, 14.77)
    k_lin = 0.002 * np.log10(h)                           # coefficient of d3D in PL1
    log_d3 = np.log10(d3)
    pl = _scaled(log_d3, k_log, shape, dt)
    pl += k_0
    pl += k_lin * d3
    if beyond_bp.any():
        log_bp = np.log10(d_bp)
        pl_bp = k_log * log_bp + k_0 + k_lin * d_bp       # PL1(dBP)
        pl2 = _scaled(log_d3, dt.type(40.0), shape, dt)
        pl2 += pl_bp - 40.0 * log_bp
        np.copyto(pl, pl2, where=beyond_bp)
    if los.all():
        return pl, None
    log_hbs = np.log10(h_bs)
    nl = _scaled(log_d3 - 3.0, 43.42 - 3.1 * log_hbs, shape, dt)
    nl += (161.04 - 7.1 * np.log10(w) + 7.5 * np.log10(h)
           - (24.37 - 3.7 * (h / h_bs) ** 2) * log_hbs
           + 20.0 * np.log10(fc)
           - (3.2 * np.log10(11.75 * h_ut) ** 2 - 4.97))
    return pl, nl


# --------------------------------------------------------------------------- LOS probability


def _float_array(x) -> np.ndarray:
    a = np.asarray(x)
    return a if a.dtype.kind == "f" else a.astype(np.float64)


def los_probability(scenario, d2d_m, h_ut_m=1.5):
    """LOS probability of an outdoor user, TR 38.901 V17.0.0 §7.4.2, Table 7.4.2-1.

    Parameters
    ----------
    scenario : str
        ``"uma"``, ``"umi"`` (Street Canyon) or ``"rma"``.
    d2d_m : array_like
        2D distance, m. For an indoor user pass d2D-out (the distance to the building wall),
        as the table prescribes.
    h_ut_m : float or array_like, optional
        UE height, m (UMa only; default 1.5 m).

    Returns
    -------
    p_los : ndarray, broadcast shape, float dtype of ``d2d_m`` (float64 for non-float input)
        Probability in [0, 1].

    Notes
    -----
    RMa: ``1`` for d2D <= 10 m, ``exp(-(d2D - 10) / 1000)`` beyond.

    UMi - Street Canyon: ``1`` for d2D <= 18 m, ``18 / d2D + exp(-d2D / 36) (1 - 18 / d2D)`` beyond.

    UMa: ``1`` for d2D <= 18 m, beyond::

        [18 / d2D + exp(-d2D / 63) (1 - 18 / d2D)] (1 + C'(hUT) 5/4 (d2D / 100)**3 exp(-d2D / 150))

    with ``C'(hUT) = 0`` for hUT <= 13 m and ``((hUT - 13) / 10)**1.5`` for 13 < hUT <= 23 m;
    above 23 m (outside the table) ``C'`` is held at its 23 m value of 1.
    """
    key = _scenario_key(scenario, "los_probability")
    d = _float_array(d2d_m)
    dt = d.dtype
    if key == "rma":
        return np.where(d <= 10.0, dt.type(1.0), np.exp(-(d - 10.0) / 1000.0)).astype(dt, copy=False)
    ds = np.maximum(d, 18.0)                       # no division by zero on the d <= 18 m branch
    r = 18.0 / ds
    p = r + np.exp(-ds / (36.0 if key == "umi" else 63.0)) * (1.0 - r)
    if key == "uma":
        h = _float_array(h_ut_m).astype(dt, copy=False)
        c_prime = np.where(h > 13.0, ((np.clip(h, 13.0, 23.0) - 13.0) / 10.0) ** 1.5, dt.type(0.0))
        p = p * (1.0 + c_prime * 1.25 * (ds / 100.0) ** 3 * np.exp(-ds / 150.0))
        # the UMa product exceeds 1 just above 18 m for h_UT > 13 m (1.0006 at 18.125 m, 18 m): a probability
        p = np.minimum(p, 1.0)
    return np.where(d <= 18.0, dt.type(1.0), p).astype(dt, copy=False)


# --------------------------------------------------------------------------- shadow fading


def shadow_fading_std_db(scenario, los, d2d_m=None, *, fc_ghz=None, h_bs_m=None, h_ut_m=None):
    """Shadow-fading standard deviation sigma_SF, TR 38.901 V17.0.0 Table 7.4.1-1.

    Parameters
    ----------
    scenario : str
        ``"uma"``, ``"umi"`` or ``"rma"``.
    los : bool or array_like of bool
        Link state.
    d2d_m, fc_ghz, h_bs_m, h_ut_m : array_like, optional
        Needed only for RMa LOS, whose sigma_SF is 4 dB up to the breakpoint dBP and 6 dB
        beyond it.

    Returns
    -------
    sigma_db : ndarray, broadcast shape, float64
        UMa 4 (LOS) / 6 (NLOS); UMi - Street Canyon 4 / 7.82; RMa 4 (LOS, d2D <= dBP),
        6 (LOS, d2D > dBP) / 8 (NLOS). dB.

    Raises
    ------
    InputError
        Unknown scenario; RMa LOS links without ``d2d_m``, ``fc_ghz``, ``h_bs_m``, ``h_ut_m``.
    """
    key = _scenario_key(scenario, "shadow_fading_std_db")
    los = np.asarray(los, dtype=bool)
    if key != "rma":
        return np.where(los, _SIGMA_SF_DB[(key, True)], _SIGMA_SF_DB[(key, False)])
    if not los.any():
        return np.full(los.shape, _SIGMA_SF_DB[("rma", False)])
    if d2d_m is None or fc_ghz is None or h_bs_m is None or h_ut_m is None:
        raise InputError(
            "shadow_fading_std_db", "d2d_m",
            "expected d2d_m, fc_ghz, h_bs_m and h_ut_m for RMa LOS (sigma_SF is 4 dB up to the "
            "breakpoint dBP and 6 dB beyond, Table 7.4.1-1), got None",
        )
    d_bp = breakpoint_distance_m("rma", d2d_m, h_bs_m, h_ut_m, fc_ghz)
    d2 = np.maximum(np.asarray(d2d_m, dtype=np.float64), D2D_MIN_M)
    sigma_los = np.where(d2 <= d_bp, *_SIGMA_SF_RMA_LOS_DB)
    return np.where(los, sigma_los, _SIGMA_SF_DB[("rma", False)])


# --------------------------------------------------------------------------- O2I


def _check_o2i_fc(model: str, fc_ghz, source: str) -> np.ndarray:
    fc = _finite(fc_ghz, source, "fc_ghz", "GHz")
    lo, hi = _O2I_FC_RANGE_GHZ[model]
    bad = (fc < lo) | (fc > hi)
    if bad.any():
        raise InputError(source, "fc_ghz",
                         f"expected a carrier frequency in [{lo:g}, {hi:g}] GHz for O2I model "
                         f"{model!r}, got {_fmt(fc[bad].flat[0])} GHz")
    return fc


def _o2i_key(model, source: str) -> str:
    key = model.lower() if isinstance(model, str) else None
    if key not in O2I_MODELS:
        allowed = ", ".join(repr(m) for m in O2I_MODELS)
        raise InputError(source, "model", f"expected one of {allowed}, got {model!r}")
    return key


def material_penetration_loss_db(material, fc_ghz):
    """Penetration loss of one building material, TR 38.901 V17.0.0 Table 7.4.3-1.

    Parameters
    ----------
    material : str
        ``"glass"`` (standard multi-pane), ``"irr_glass"`` (infrared reflective),
        ``"concrete"`` or ``"wood"``.
    fc_ghz : array_like
        Frequency, GHz.

    Returns
    -------
    loss_db : ndarray, float64
        ``L_glass = 2 + 0.2 f``, ``L_IRRglass = 23 + 0.3 f``, ``L_concrete = 5 + 4 f``,
        ``L_wood = 4.85 + 0.12 f`` (f in GHz), dB.
    """
    if material not in _MATERIALS:
        allowed = ", ".join(repr(m) for m in _MATERIALS)
        raise InputError("material_penetration_loss_db", "material", f"expected one of {allowed}, got {material!r}")
    a, b = _MATERIALS[material]
    return a + b * np.asarray(fc_ghz, dtype=np.float64)


def o2i_loss_db(model, fc_ghz, d2d_in_m=D2D_IN_DEFAULT_M):
    """Expected O2I building penetration loss, TR 38.901 V17.0.0 §7.4.3.1, Table 7.4.3-2.

    The expected value ``PL_tw + PL_in`` without the random part N(0, sigma_P**2); draw that
    with :func:`o2i_loss_std_db` and a caller's generator.

    Parameters
    ----------
    model : str
        ``"low"`` (low-loss: standard glass + concrete), ``"high"`` (high-loss: IRR glass +
        concrete), or ``"tr36873"`` (the < 6 GHz model kept for backwards compatibility with
        TR 36.873: PL_tw = 20 dB).
    fc_ghz : array_like
        Carrier frequency, GHz: [0.5, 100] (``"tr36873"``: [0.5, 6]).
    d2d_in_m : array_like, optional
        Indoor 2D distance, m (>= 0). Default :data:`D2D_IN_DEFAULT_M` = 25/3 = 8.33 m, the
        mean of the UMa/UMi d2D-in (minimum of two independent U(0, 25 m)); for RMa, whose
        d2D-in is the minimum of two U(0, 10 m), pass 10/3 m.

    Returns
    -------
    loss_db : ndarray, broadcast shape, float64
        ``PL_tw + PL_in``, dB.

    Notes
    -----
    Table 7.4.3-2, with the material losses of Table 7.4.3-1 (f in GHz)::

        low:  PL_tw = 5 - 10 log10(0.3 * 10**(-L_glass / 10) + 0.7 * 10**(-L_concrete / 10))
        high: PL_tw = 5 - 10 log10(0.7 * 10**(-L_IRRglass / 10) + 0.3 * 10**(-L_concrete / 10))
        PL_in = 0.5 d2D-in

    TR 38.901 §7.4.3.1 allows only the low-loss model for RMa; which model a building gets
    is the caller's choice (the fraction of high-loss buildings is a scenario parameter).
    """
    key = _o2i_key(model, "o2i_loss_db")
    fc = _check_o2i_fc(key, fc_ghz, "o2i_loss_db")
    d_in = _finite(d2d_in_m, "o2i_loss_db", "d2d_in_m", "m")
    if (d_in < 0).any():
        raise InputError("o2i_loss_db", "d2d_in_m",
                         f"expected a non-negative indoor distance in m, got {_fmt(d_in[d_in < 0].flat[0])} m")
    pl_in = 0.5 * d_in
    if key == "tr36873":
        return 20.0 + pl_in + 0.0 * fc
    l_concrete = material_penetration_loss_db("concrete", fc)
    if key == "low":
        w_glass, l_glass = 0.3, material_penetration_loss_db("glass", fc)
    else:
        w_glass, l_glass = 0.7, material_penetration_loss_db("irr_glass", fc)
    pl_tw = 5.0 - 10.0 * np.log10(w_glass * 10.0 ** (-l_glass / 10.0)
                                  + (1.0 - w_glass) * 10.0 ** (-l_concrete / 10.0))
    return pl_tw + pl_in


def o2i_loss_std_db(model):
    """Standard deviation sigma_P of the O2I loss, TR 38.901 V17.0.0 Table 7.4.3-2.

    Returns 4.4 dB (low-loss), 6.5 dB (high-loss) or 0 dB (``"tr36873"``, §7.4.3.1).
    """
    return _O2I_SIGMA_P_DB[_o2i_key(model, "o2i_loss_std_db")]
