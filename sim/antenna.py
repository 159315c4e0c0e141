"""Sector antenna pattern of 3GPP TR 38.901 V17.0.0 Table 7.3-1, and the site geometry it needs.

The single-element radiation pattern of Table 7.3-1 serves as the sector pattern of a site
(one pattern per sector-carrier, no array gain). Angles follow TR 38.901 §7.1: the zenith
angle theta is 0 deg straight up, 90 deg at the horizon and above 90 deg below it; the azimuth
phi is measured from the sector boresight.

Planner conventions used by :func:`relative_azimuth_deg` and :func:`sector_azimuths_deg`:
x east, y north (metres, a projected CRS); bearings and boresight azimuths in degrees
clockwise from grid north (the y axis); a positive relative azimuth means the UE lies
clockwise of the boresight. Downtilt is positive downwards.

dtype policy: the angle functions return the floating dtype of their array inputs
(float32 in, float32 out; integer arrays give float64; plain Python numbers do not
promote), unless ``dtype`` is given.
"""

from __future__ import annotations

import numpy as np

from sim.errors import InputError

__all__ = [
    "HPBW_DEFAULT_DEG",
    "SLA_V_DEFAULT_DB",
    "A_MAX_DEFAULT_DB",
    "G_MAX_DEFAULT_DBI",
    "antenna_gain_dbi",
    "zenith_angle_deg",
    "relative_azimuth_deg",
    "sector_azimuths_deg",
    "wrap_deg",
]

HPBW_DEFAULT_DEG = 65.0
"""Half-power beamwidth theta_3dB = phi_3dB of Table 7.3-1, deg."""
SLA_V_DEFAULT_DB = 30.0
"""Vertical side-lobe attenuation SLA_V of Table 7.3-1, dB."""
A_MAX_DEFAULT_DB = 30.0
"""Front-to-back ratio A_max of Table 7.3-1, dB."""
G_MAX_DEFAULT_DBI = 8.0
"""Maximum directional gain G_E,max of an antenna element, Table 7.3-1, dBi."""


def _float_array(x, dtype=None) -> np.ndarray:
    a = np.asarray(x)
    if dtype is not None:
        return a.astype(dtype, copy=False)
    return a if a.dtype.kind == "f" else a.astype(np.float64)


def _result_dtype(*arrays, dtype=None) -> np.dtype:
    """Output dtype: ``dtype`` if given, else the float dtype of the array arguments.

    Plain Python numbers are "weak" (as in NumPy's own promotion rules): a float32 array with
    a Python float stays float32. Only Python numbers give float64.
    """
    if dtype is not None:
        return np.dtype(dtype)
    strong = [a for a in arrays if type(a) not in (int, float, bool)]
    if not strong:
        return np.dtype(np.float64)
    return np.result_type(*(_float_array(a).dtype for a in strong))


def wrap_deg(angle_deg):
    """Angle wrapped into [-180, 180) deg: ``(angle + 180) mod 360 - 180``; keeps float dtype."""
    a = _float_array(angle_deg)
    return np.mod(a + a.dtype.type(180.0), a.dtype.type(360.0)) - a.dtype.type(180.0)


def _check_positive(source, field, value, *, upper=None, allow_zero=False):
    a = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(a) | ((a < 0) if allow_zero else (a <= 0))
    if upper is not None:
        bad |= a > upper
    if bad.any():
        rng = "a non-negative number" if allow_zero else "a positive number"
        if upper is not None:
            rng = f"a number in (0, {upper:g}]"
        raise InputError(source, field, f"expected {rng}, got {float(a[bad].flat[0]):g}")


def antenna_gain_dbi(phi_deg, theta_deg, *, tilt_deg=0.0, hpbw_h_deg=HPBW_DEFAULT_DEG,
                     hpbw_v_deg=HPBW_DEFAULT_DEG, sla_v_db=SLA_V_DEFAULT_DB,
                     a_max_db=A_MAX_DEFAULT_DB, g_max_dbi=G_MAX_DEFAULT_DBI):
    """Sector antenna gain, 3GPP TR 38.901 V17.0.0 Table 7.3-1 (antenna element pattern).

    Parameters
    ----------
    phi_deg : array_like
        Azimuth of the UE relative to the sector boresight, deg; any value (wrapped to
        [-180, 180)).
    theta_deg : array_like
        Zenith angle of the UE seen from the antenna, deg (90 = horizon, > 90 below it),
        e.g. from :func:`zenith_angle_deg`.
    tilt_deg : float or array_like, optional
        Downtilt (electrical plus mechanical), deg, positive downwards. The vertical cut is
        evaluated at ``theta - 90 - tilt``, so the beam peak lies at ``theta = 90 + tilt``.
    hpbw_h_deg, hpbw_v_deg : float or array_like, optional
        Horizontal and vertical half-power beamwidths phi_3dB, theta_3dB, deg (default 65).
    sla_v_db : float or array_like, optional
        Vertical side-lobe attenuation limit SLA_V, dB (default 30).
    a_max_db : float or array_like, optional
        Front-to-back ratio A_max, dB (default 30): the attenuation never exceeds it.
    g_max_dbi : float or array_like, optional
        Maximum directional gain G_E,max, dBi (default 8).

    Returns
    -------
    gain_dbi : ndarray, broadcast shape, float dtype of ``phi_deg`` and ``theta_deg``
        ``g_max_dbi + A(phi, theta)``, dBi. float32 inputs give float32 (the keyword
        parameters are cast to that dtype).

    Raises
    ------
    InputError
        A beamwidth outside (0, 360] deg, or a negative ``sla_v_db`` or ``a_max_db``.

    Notes
    -----
    Table 7.3-1 (attenuations as negative dB values)::

        A_V(theta) = -min(12 ((theta - 90 - tilt) / theta_3dB)**2, SLA_V)
        A_H(phi)   = -min(12 (phi / phi_3dB)**2, A_max)
        A(theta, phi) = -min(-(A_V + A_H), A_max)
        G = G_E,max + A

    The table's default is theta_3dB = phi_3dB = 65 deg, SLA_V = A_max = 30 dB, G_E,max = 8 dBi;
    the pattern is -3 dB at phi = +-phi_3dB / 2 (12 (1/2)**2 = 3) and likewise vertically.
    Downtilt is applied as a shift of the vertical cut, the usual system-level
    simplification of the coordinate rotation of §7.1 (exact in the vertical plane of the
    boresight).
    """
    src = "antenna_gain_dbi"
    _check_positive(src, "hpbw_h_deg", hpbw_h_deg, upper=360.0)
    _check_positive(src, "hpbw_v_deg", hpbw_v_deg, upper=360.0)
    _check_positive(src, "sla_v_db", sla_v_db, allow_zero=True)
    _check_positive(src, "a_max_db", a_max_db, allow_zero=True)
    dt = _result_dtype(phi_deg, theta_deg)
    phi = wrap_deg(_float_array(phi_deg, dt))
    theta = _float_array(theta_deg, dt)
    tilt = _float_array(tilt_deg, dt)
    a_max = _float_array(a_max_db, dt)
    twelve = dt.type(12.0)

    # Attenuations as positive numbers: a_h = -A_H, a_v = -A_V.
    x = phi / _float_array(hpbw_h_deg, dt)
    a_h = np.minimum(twelve * x * x, a_max)
    y = (theta - dt.type(90.0) - tilt) / _float_array(hpbw_v_deg, dt)
    a_v = np.minimum(twelve * y * y, _float_array(sla_v_db, dt))
    att = np.minimum(a_h + a_v, a_max)
    return _float_array(g_max_dbi, dt) - att


def zenith_angle_deg(d2d_m, h_bs_m, h_ut_m, *, dtype=None):
    """Zenith angle of the UE seen from the base-station antenna (TR 38.901 §7.1 convention).

    Parameters
    ----------
    d2d_m : array_like
        Horizontal distance, m (>= 0).
    h_bs_m, h_ut_m : float or array_like
        Antenna heights above ground, m.
    dtype : numpy dtype, optional
        Output dtype; default the float dtype of the inputs.

    Returns
    -------
    theta_deg : ndarray, broadcast shape
        ``90 + atan2(h_bs - h_ut, d2d)`` in degrees: 90 at the horizon, 180 straight below,
        below 90 when the UE is higher than the antenna.
    """
    dt = _result_dtype(d2d_m, h_bs_m, h_ut_m, dtype=dtype)
    d = _float_array(d2d_m, dt)
    dh = _float_array(h_bs_m, dt) - _float_array(h_ut_m, dt)
    return dt.type(90.0) + np.degrees(np.arctan2(dh, d))


def relative_azimuth_deg(dx_m, dy_m, az_deg, *, dtype=None):
    """Azimuth of the UE relative to a sector boresight, deg in [-180, 180).

    Parameters
    ----------
    dx_m, dy_m : array_like
        UE minus site position, m (x east, y north).
    az_deg : float or array_like
        Boresight bearing, deg clockwise from grid north (the planner convention:
        0 = north, 90 = east).
    dtype : numpy dtype, optional
        Output dtype; default the float dtype of the inputs.

    Returns
    -------
    phi_deg : ndarray, broadcast shape
        ``wrap(atan2(dx, dy) - az)``; positive when the UE lies clockwise of the boresight.
        A UE at the site itself (dx = dy = 0) gets the bearing 0 (north).
    """
    dt = _result_dtype(dx_m, dy_m, az_deg, dtype=dtype)
    bearing = np.degrees(np.arctan2(_float_array(dx_m, dt), _float_array(dy_m, dt)))
    return wrap_deg(bearing - _float_array(az_deg, dt))


def sector_azimuths_deg(n_sectors=3, offset_deg=0.0):
    """Boresight azimuths of ``n_sectors`` evenly spaced sectors, deg in [0, 360).

    Parameters
    ----------
    n_sectors : int, optional
        Number of sectors (default 3, the 120 deg layout of TR 38.901 Table 7.8-1 /
        ITU-R M.2412 hexagonal sites).
    offset_deg : float, optional
        Azimuth of the first sector, deg clockwise from north.

    Returns
    -------
    az_deg : ndarray [n_sectors], float64
        ``(offset + 360 k / n) mod 360`` for k = 0 .. n - 1.
    """
    if isinstance(n_sectors, (bool, np.bool_)) or not isinstance(n_sectors, (int, np.integer)) or n_sectors < 1:
        raise InputError("sector_azimuths_deg", "n_sectors", f"expected an integer >= 1, got {n_sectors!r}")
    off = float(offset_deg)
    if not np.isfinite(off):
        raise InputError("sector_azimuths_deg", "offset_deg", f"expected a finite angle in deg, got {offset_deg!r}")
    return np.mod(off + 360.0 * np.arange(n_sectors) / n_sectors, 360.0)
