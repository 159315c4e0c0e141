"""Constants and unit conversions, and the glossary of name suffixes.

Suffix glossary (one name, one unit):

=========  ====================================
suffix     unit
=========  ====================================
``_m``     metre
``_km``    kilometre
``_km2``   square kilometre
``_hz``    hertz
``_khz``   kilohertz
``_mhz``   megahertz
``_ghz``   gigahertz
``_db``    decibel (ratio)
``_dbm``   decibel-milliwatt (power)
``_dbi``   decibel relative to isotropic (antenna gain)
``_mw``    milliwatt (linear power)
``_w``     watt
``_deg``   degree (angle)
``_rad``   radian
``_bps``   bit per second
``_mbps``  megabit per second
``_s``     second
``_bps_hz`` bit per second per hertz (spectral efficiency)
=========  ====================================
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SPEED_OF_LIGHT_M_S",
    "BOLTZMANN_J_K",
    "T0_K",
    "THERMAL_NOISE_DBM_HZ",
    "db_to_linear",
    "linear_to_db",
    "dbm_to_mw",
    "mw_to_dbm",
    "w_to_dbm",
    "thermal_noise_dbm",
]

SPEED_OF_LIGHT_M_S = 299_792_458.0
"""Speed of light in vacuum, m/s (exact, SI)."""

BOLTZMANN_J_K = 1.380649e-23
"""Boltzmann constant, J/K (exact, SI 2019)."""

T0_K = 290.0
"""Reference noise temperature, K (ITU-R P.372; IEEE noise-figure convention)."""

THERMAL_NOISE_DBM_HZ = float(10.0 * np.log10(BOLTZMANN_J_K * T0_K * 1e3))
"""Thermal noise density kT0 at 290 K: -173.98 dBm/Hz."""


def db_to_linear(x_db):
    """Power ratio from decibels: ``10 ** (x_db / 10)``."""
    return np.power(10.0, np.asarray(x_db) / 10.0)


def linear_to_db(x):
    """Decibels from a power ratio: ``10 log10(x)``; 0 gives -inf."""
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(x)


def dbm_to_mw(p_dbm):
    """Milliwatts from dBm."""
    return db_to_linear(p_dbm)


def mw_to_dbm(p_mw):
    """dBm from milliwatts; 0 mW gives -inf."""
    return linear_to_db(p_mw)


def w_to_dbm(p_w):
    """dBm from watts: ``10 log10(p_w) + 30``."""
    return linear_to_db(p_w) + 30.0


def thermal_noise_dbm(bw_hz, noise_figure_db=0.0):
    """Receiver noise power in dBm over ``bw_hz`` with noise figure ``noise_figure_db``.

    ``N = -173.98 dBm/Hz + 10 log10(bw_hz) + NF``; e.g. 100 MHz, NF 7 dB gives -86.98 dBm.
    """
    return THERMAL_NOISE_DBM_HZ + linear_to_db(bw_hz) + noise_figure_db
