"""Tests of sim.antenna against 3GPP TR 38.901 V17.0.0 Table 7.3-1 and the planner's geometry."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.antenna import (
    antenna_gain_dbi,
    relative_azimuth_deg,
    sector_azimuths_deg,
    wrap_deg,
    zenith_angle_deg,
)
from sim.errors import InputError

GAIN_TOL_DB = 1e-9         # float64 evaluation of the closed-form pattern
GAIN_TOL_F32_DB = 1e-4     # float32 evaluation
ANGLE_TOL_DEG = 1e-9
WRAP_TOL_DB = 1e-9         # phi and phi + 360 k give the same gain (k up to 3)


# ---------------------------------------------------------------- Table 7.3-1 pattern

def test_boresight_gives_g_max():
    # Table 7.3-1: A(90 deg, 0 deg) = 0 dB, so G = G_E,max = 8 dBi.
    assert antenna_gain_dbi(0.0, 90.0) == pytest.approx(8.0, abs=GAIN_TOL_DB)
    # With downtilt the peak moves to theta = 90 + tilt.
    assert antenna_gain_dbi(0.0, 96.0, tilt_deg=6.0, g_max_dbi=17.0) == pytest.approx(17.0, abs=GAIN_TOL_DB)


@pytest.mark.parametrize("hpbw_h", [65.0, 90.0, 30.0])
def test_minus_3_db_at_half_hpbw_horizontally(hpbw_h):
    # A_H(+-phi_3dB / 2) = -12 (1/2)**2 = -3 dB (Table 7.3-1).
    g = antenna_gain_dbi(np.array([-hpbw_h / 2, hpbw_h / 2]), 90.0, hpbw_h_deg=hpbw_h)
    np.testing.assert_allclose(g, 8.0 - 3.0, atol=GAIN_TOL_DB, rtol=0)


@pytest.mark.parametrize("tilt, hpbw_v", [(0.0, 65.0), (6.0, 10.0), (-2.0, 8.0)])
def test_minus_3_db_at_half_hpbw_vertically_with_tilt(tilt, hpbw_v):
    # A_V(theta) = -min(12 ((theta - 90 - tilt) / theta_3dB)**2, SLA_V): -3 dB at 90 + tilt +- theta_3dB/2.
    theta = np.array([90.0 + tilt - hpbw_v / 2, 90.0 + tilt + hpbw_v / 2])
    g = antenna_gain_dbi(0.0, theta, tilt_deg=tilt, hpbw_v_deg=hpbw_v)
    np.testing.assert_allclose(g, 8.0 - 3.0, atol=GAIN_TOL_DB, rtol=0)


def test_back_lobe_and_side_lobe_limits():
    # Back lobe: A_H(180) = -min(12 (180/65)**2 = 92.0, 30) = -30 dB -> 8 - 30 = -22 dBi.
    assert antenna_gain_dbi(180.0, 90.0) == pytest.approx(-22.0, abs=GAIN_TOL_DB)
    # 3D: A = -min(-(A_V + A_H), A_max) never below -A_max, even off both cuts.
    assert antenna_gain_dbi(120.0, 10.0) == pytest.approx(-22.0, abs=GAIN_TOL_DB)
    # Vertical cut only: A_V(0 deg) = -min(12 (90/65)**2, 30) = -23.0059 dB (hand evaluation).
    assert antenna_gain_dbi(0.0, 0.0) == pytest.approx(8.0 - 12 * (90 / 65) ** 2, abs=GAIN_TOL_DB)
    # SLA_V caps the vertical cut: narrow beam, far off -> -SLA_V = -20 dB with SLA_V = 20 dB.
    assert antenna_gain_dbi(0.0, 30.0, hpbw_v_deg=10.0, sla_v_db=20.0) == pytest.approx(
        8.0 - 20.0, abs=GAIN_TOL_DB)
    # Sum of both capped by A_max: A_H = -3, A_V = -SLA_V = -30 -> -33 -> capped at -30.
    assert antenna_gain_dbi(32.5, 0.0, hpbw_v_deg=10.0) == pytest.approx(-22.0, abs=GAIN_TOL_DB)


@settings(max_examples=200, deadline=None)
@given(phi=st.floats(-180.0, 180.0), theta=st.floats(0.0, 180.0), tilt=st.floats(-10.0, 20.0))
def test_pattern_symmetric_and_bounded(phi, theta, tilt):
    g = antenna_gain_dbi(phi, theta, tilt_deg=tilt)
    assert antenna_gain_dbi(-phi, theta, tilt_deg=tilt) == pytest.approx(g, abs=GAIN_TOL_DB)
    # Vertical symmetry about the tilted peak.
    mirrored = 2 * (90.0 + tilt) - theta
    assert antenna_gain_dbi(phi, mirrored, tilt_deg=tilt) == pytest.approx(g, abs=GAIN_TOL_DB)
    assert 8.0 - 30.0 - GAIN_TOL_DB <= g <= 8.0 + GAIN_TOL_DB


@settings(max_examples=200, deadline=None)
@given(phi=st.floats(-180.0, 180.0), k=st.integers(-3, 3))
def test_phi_wraps(phi, k):
    assert antenna_gain_dbi(phi + 360.0 * k, 95.0) == pytest.approx(antenna_gain_dbi(phi, 95.0), abs=WRAP_TOL_DB)


def test_wrap_examples():
    np.testing.assert_allclose(wrap_deg([190.0, -190.0, 180.0, 540.0, -180.0]),
                               [-170.0, 170.0, -180.0, -180.0, -180.0], atol=ANGLE_TOL_DEG, rtol=0)
    assert antenna_gain_dbi(190.0, 90.0) == pytest.approx(antenna_gain_dbi(-170.0, 90.0), abs=GAIN_TOL_DB)


def test_gain_decreases_away_from_boresight():
    g = antenna_gain_dbi(np.linspace(0.0, 180.0, 181), 90.0)
    assert np.all(np.diff(g) <= 0.0)


def test_dtype_policy_and_broadcasting():
    phi = np.linspace(-180, 180, 7, dtype=np.float32)[:, None]
    theta = np.array([80.0, 95.0, 120.0], dtype=np.float32)
    g32 = antenna_gain_dbi(phi, theta, tilt_deg=np.float64(4.0), g_max_dbi=np.float64(17.0))
    assert g32.dtype == np.float32 and g32.shape == (7, 3)
    g64 = antenna_gain_dbi(phi.astype(np.float64), theta.astype(np.float64), tilt_deg=4.0, g_max_dbi=17.0)
    assert g64.dtype == np.float64
    np.testing.assert_allclose(g32, g64, atol=GAIN_TOL_F32_DB, rtol=0)
    # Per-sector tilt broadcasts against pixels x sectors.
    g = antenna_gain_dbi(np.zeros((2, 3)), np.full((2, 3), 96.0), tilt_deg=np.array([0.0, 6.0, 12.0]))
    np.testing.assert_allclose(g[0], [8.0 - 12 * (6 / 65) ** 2, 8.0, 8.0 - 12 * (6 / 65) ** 2],
                               atol=GAIN_TOL_DB, rtol=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"hpbw_h_deg": 0.0}, r"^antenna_gain_dbi: hpbw_h_deg: expected a number in \(0, 360\], got 0$"),
    ({"hpbw_v_deg": 400.0}, r"^antenna_gain_dbi: hpbw_v_deg: expected a number in \(0, 360\], got 400$"),
    ({"a_max_db": -1.0}, r"^antenna_gain_dbi: a_max_db: expected a non-negative number, got -1$"),
    ({"sla_v_db": float("nan")}, r"^antenna_gain_dbi: sla_v_db: expected a non-negative number, got nan$"),
])
def test_antenna_input_errors(kwargs, match):
    with pytest.raises(InputError, match=match):
        antenna_gain_dbi(0.0, 90.0, **kwargs)


# ---------------------------------------------------------------- geometry helpers

def test_zenith_angle():
    # 90 + atan2(hBS - hUT, d2D): horizon, 45 deg below, straight down, UE above the antenna.
    got = zenith_angle_deg(np.array([100.0, 23.5, 0.0, 10.0]), 25.0, np.array([25.0, 1.5, 1.5, 35.0]))
    np.testing.assert_allclose(got, [90.0, 135.0, 180.0, 45.0], atol=ANGLE_TOL_DEG, rtol=0)
    assert zenith_angle_deg(np.float32([100.0]), 25.0, 1.5).dtype == np.float32


def test_relative_azimuth_planner_convention():
    # Boresight north (0 deg); UE east of the site -> +90 (clockwise), west -> -90.
    got = relative_azimuth_deg(np.array([10.0, -10.0, 0.0, 0.0]), np.array([0.0, 0.0, 10.0, -10.0]), 0.0)
    np.testing.assert_allclose(got, [90.0, -90.0, 0.0, -180.0], atol=ANGLE_TOL_DEG, rtol=0)
    # Boresight 350 deg, UE at bearing 10 deg -> +20 deg; boresight 120, UE due north -> -120.
    assert relative_azimuth_deg(np.sin(np.radians(10)), np.cos(np.radians(10)), 350.0) == pytest.approx(
        20.0, abs=1e-9)
    assert relative_azimuth_deg(0.0, 5.0, 120.0) == pytest.approx(-120.0, abs=ANGLE_TOL_DEG)
    # pixels x sectors broadcast, float32 kept
    phi = relative_azimuth_deg(np.float32([[1.0], [-1.0]]), np.float32([[0.0], [0.0]]),
                               np.float32([0.0, 120.0, 240.0]))
    assert phi.shape == (2, 3) and phi.dtype == np.float32


def test_sector_azimuths():
    np.testing.assert_allclose(sector_azimuths_deg(), [0.0, 120.0, 240.0], atol=ANGLE_TOL_DEG, rtol=0)
    np.testing.assert_allclose(sector_azimuths_deg(3, 300.0), [300.0, 60.0, 180.0], atol=ANGLE_TOL_DEG, rtol=0)
    np.testing.assert_allclose(sector_azimuths_deg(1, -30.0), [330.0], atol=ANGLE_TOL_DEG, rtol=0)
    np.testing.assert_allclose(sector_azimuths_deg(6, 30.0), [30, 90, 150, 210, 270, 330], atol=ANGLE_TOL_DEG,
                               rtol=0)


@pytest.mark.parametrize("n, match", [
    (0, r"^sector_azimuths_deg: n_sectors: expected an integer >= 1, got 0$"),
    (2.5, r"^sector_azimuths_deg: n_sectors: expected an integer >= 1, got 2\.5$"),
    (True, r"^sector_azimuths_deg: n_sectors: expected an integer >= 1, got True$"),
])
def test_sector_azimuths_errors(n, match):
    with pytest.raises(InputError, match=match):
        sector_azimuths_deg(n)


def test_sector_offset_error():
    with pytest.raises(InputError, match=r"^sector_azimuths_deg: offset_deg: expected a finite angle in deg, got inf$"):
        sector_azimuths_deg(3, float("inf"))


def test_imports_only_numpy_units_errors():
    tree = ast.parse(Path(__file__).parents[1].joinpath("sim", "antenna.py").read_text())
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mods.add(node.module)
    assert mods <= {"__future__", "numpy", "sim.units", "sim.errors"}, mods
