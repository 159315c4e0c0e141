"""Tests of sim.linkmodel against TS 38.214 / 38.306 / 38.101-1 tables and hand evaluations."""

from __future__ import annotations

import numpy as np
import pytest

from sim import linkmodel as lm
from sim.errors import InputError

# Table entries are transcribed numbers: compared exactly (or to their printed 4 decimals).
TABLE_TOL = 5e-5
# Hand evaluations of closed-form expressions, float64.
HAND_TOL_DB = 0.01
HAND_TOL_BPS_HZ = 1e-6
# TS 38.306 peak-rate check, quoted to 1 Mbit/s.
PEAK_TOL_BPS = 1e6
# Fit of the CQI thresholds to the published link-level points (linkmodel docstring).
FIT_TOL_DB = 1.6
# Documented largest difference between the CQI staircase and TR 36.942 A.2 (alpha 0.6).
MAX_GAP_CQI_SHANNON_BPS_HZ = 1.1
# float32 vs float64 relative agreement of a throughput raster.
F32_RTOL = 1e-6

SINR_GRID_DB = np.linspace(-15.0, 45.0, 6001)


# ------------------------------------------------------------------------ CQI table


@pytest.mark.parametrize(
    ("cqi", "qm", "rate_x1024", "efficiency"),
    [
        (1, 2, 78, 0.1523),  # TS 38.214 Table 5.2.2.1-3, row 1: QPSK 78 0.1523
        (3, 2, 449, 0.8770),  # row 3: QPSK 449 0.8770
        (4, 4, 378, 1.4766),  # row 4: 16QAM 378 1.4766
        (7, 6, 466, 2.7305),  # row 7: 64QAM 466 2.7305
        (12, 8, 711, 5.5547),  # row 12: 256QAM 711 5.5547
        (15, 8, 948, 7.4063),  # row 15: 256QAM 948 7.4063
    ],
)
def test_cqi_table_rows(cqi, qm, rate_x1024, efficiency):
    row = lm.CQI_TABLE_256QAM[cqi]
    assert (row["cqi"], row["qm"], row["rate_x1024"]) == (cqi, qm, rate_x1024)
    assert row["efficiency"] == efficiency


def test_cqi_table_efficiency_column_is_qm_times_rate():
    # TS 38.214 Table 5.2.2.1-3: efficiency = Qm * R / 1024, printed to 4 decimals.
    # Checks all 15 rows at once, so a mistyped rate or efficiency fails here.
    t = lm.CQI_TABLE_256QAM[1:]
    np.testing.assert_allclose(t["efficiency"], t["qm"] * t["rate_x1024"] / 1024, rtol=0, atol=TABLE_TOL)
    assert t["cqi"].tolist() == list(range(1, 16))
    assert t["qm"].tolist() == [2] * 3 + [4] * 3 + [6] * 5 + [8] * 4


def test_cqi_thresholds_hand_evaluation():
    # hand evaluation of thr = 5.2 + 10 log10(2 ** (SE / 0.82) - 1), SE = Qm R / 1024
    thr = lm.CQI_SINR_THRESHOLDS_DB
    assert thr.shape == (15,)
    assert thr[0] == pytest.approx(-3.419, abs=HAND_TOL_DB)  # CQI 1, SE 0.15234
    assert thr[6] == pytest.approx(14.769, abs=HAND_TOL_DB)  # CQI 7, SE 2.73047
    assert thr[14] == pytest.approx(32.381, abs=HAND_TOL_DB)  # CQI 15, SE 7.40625
    assert np.all(np.diff(thr) > 0)
    with pytest.raises(ValueError):
        thr[0] = 0.0  # read-only module constant


def test_cqi_thresholds_fit_published_link_level_points():
    # SINR (dB) for 10 % BLER, SISO CDL-C, of CQI table 1 rows 1,3,5,7..14 (MathWorks "5G NR
    # CQI Reporting", via the AIMM simulator): the same (Qm, R) pairs as table-2 CQI 1..11.
    published_db = np.array([-1.89, 0.95, 4.90, 8.89, 11.02, 13.32, 14.68, 16.62, 18.91, 21.58, 24.88])
    err = lm.CQI_SINR_THRESHOLDS_DB[:11] - published_db
    assert np.max(np.abs(err)) <= FIT_TOL_DB


def test_cqi_from_sinr_edges_and_nodata():
    thr = lm.CQI_SINR_THRESHOLDS_DB
    sinr = np.array([np.nan, -np.inf, thr[0] - 1e-6, thr[0], thr[7], thr[14] - 1e-6, thr[14], np.inf])
    cqi = lm.cqi_from_sinr(sinr)
    assert cqi.dtype == np.int8
    assert cqi.tolist() == [0, 0, 0, 1, 8, 14, 15, 15]


def test_cqi_from_sinr_custom_thresholds_and_errors():
    cqi = lm.cqi_from_sinr([-1.0, 0.0, 14.0, 20.0], thresholds_db=np.arange(15.0))
    assert cqi.tolist() == [0, 1, 15, 15]
    with pytest.raises(InputError, match=r"thresholds_db: expected 15 values, got shape \(3,\)"):
        lm.cqi_from_sinr(0.0, thresholds_db=[1.0, 2.0, 3.0])
    with pytest.raises(InputError, match="non-decreasing"):
        lm.cqi_from_sinr(0.0, thresholds_db=np.arange(15.0)[::-1])


# --------------------------------------------------------------- spectral efficiency


def test_se_cqi_method_values():
    thr = lm.CQI_SINR_THRESHOLDS_DB
    se = lm.spectral_efficiency_bps_hz(np.array([-20.0, thr[0], thr[11], 40.0]))
    # Table 5.2.2.1-3: 0 below CQI 1; CQI 1 = 2*78/1024; CQI 12 = 8*711/1024; CQI 15 = 8*948/1024
    np.testing.assert_allclose(se, [0.0, 2 * 78 / 1024, 8 * 711 / 1024, 8 * 948 / 1024], rtol=0, atol=1e-12)


def test_se_shannon_method_hand_evaluation():
    # TR 36.942 Annex A.2, alpha 0.6, SINR_MIN -10 dB, Thr_MAX 7.40625 b/s/Hz:
    # 20 dB -> 0.6 log2(101) = 3.994927; -10 dB -> 0.6 log2(1.1) = 0.082502; -10.01 dB -> 0
    se = lm.spectral_efficiency_bps_hz(np.array([20.0, -10.0, -10.01, 37.0, 37.2, 100.0]), method="shannon")
    np.testing.assert_allclose(se[:3], [3.994927, 0.082502, 0.0], rtol=0, atol=HAND_TOL_BPS_HZ)
    # SINR_MAX = 10 log10(2 ** (7.40625 / 0.6) - 1) = 37.158 dB: below it still rising, above it capped
    assert lm.SHANNON_SINR_MAX_DB == pytest.approx(37.158, abs=HAND_TOL_DB)
    assert se[3] < 7.40625
    assert se[4] == se[5] == 7.40625


@pytest.mark.parametrize("method", ["cqi", "shannon"])
def test_se_monotone_bounded_and_zero_below_threshold(method):
    se = lm.spectral_efficiency_bps_hz(SINR_GRID_DB, method=method)
    assert np.all(np.diff(se) >= 0)
    assert se.min() == 0.0 and se.max() == pytest.approx(7.40625, abs=1e-12)
    lowest = lm.CQI_SINR_THRESHOLDS_DB[0] if method == "cqi" else lm.SHANNON_SINR_MIN_DB
    assert np.all(se[SINR_GRID_DB < lowest] == 0.0)
    assert np.all(se[SINR_GRID_DB >= lowest] > 0.0)


def test_cqi_vs_shannon_maximum_gap():
    # Documented in spectral_efficiency_bps_hz: over -10..40 dB the CQI staircase is within
    # -1.05 / +0.95 b/s/Hz of the attenuated Shannon curve (alpha 0.6).
    sinr = np.linspace(-10.0, 40.0, 50001)
    gap = lm.spectral_efficiency_bps_hz(sinr) - lm.spectral_efficiency_bps_hz(sinr, method="shannon")
    assert np.max(np.abs(gap)) <= MAX_GAP_CQI_SHANNON_BPS_HZ
    assert gap.min() < -1.0 and gap.max() > 0.9  # the quoted figures, not a looser bound
    # both saturate at the same maximum
    assert gap[-1] == 0.0


@pytest.mark.parametrize("method", ["cqi", "shannon"])
def test_se_dtype_preserved_and_nan_is_nodata(method):
    x32 = np.array([np.nan, -5.0, 10.0, 25.0], dtype=np.float32)
    se32 = lm.spectral_efficiency_bps_hz(x32, method=method)
    assert se32.dtype == np.float32 and se32.shape == (4,)
    assert np.isnan(se32[0])
    assert lm.spectral_efficiency_bps_hz(x32.astype(np.float64), method=method).dtype == np.float64
    assert lm.spectral_efficiency_bps_hz(np.array([3, 20]), method=method).dtype == np.float64
    big = lm.spectral_efficiency_bps_hz(np.full((3, 4), 1000.0, dtype=np.float32), method=method)
    assert big.shape == (3, 4) and np.all(big == np.float32(7.40625))  # no overflow warning


def test_se_unknown_method():
    with pytest.raises(InputError, match=r"method: expected 'cqi' or 'shannon', got 'ideal'"):
        lm.spectral_efficiency_bps_hz(10.0, method="ideal")


# ------------------------------------------------------------------------------ MIMO


def test_mimo_layers_default_thresholds_and_cap():
    sinr = np.array([np.nan, -10.0, 4.99, 5.0, 9.0, 11.99, 12.0, 30.0])
    assert lm.mimo_layers(sinr, 4).tolist() == [0, 1, 1, 2, 3, 3, 4, 4]
    assert lm.mimo_layers(sinr, 2).tolist() == [0, 1, 1, 2, 2, 2, 2, 2]
    assert lm.mimo_layers(sinr, 8).max() == 4  # rank at most len(thresholds) + 1
    assert lm.mimo_layers(sinr, 4).dtype == np.int8


def test_mimo_layers_monotone_and_custom():
    layers = lm.mimo_layers(SINR_GRID_DB, 4)
    assert np.all(np.diff(layers) >= 0) and layers[0] == 1 and layers[-1] == 4
    assert lm.mimo_layers([0.0, 3.0], 8, thresholds_db=[1, 2, 3, 4, 5, 6, 7]).tolist() == [1, 4]


def test_mimo_layers_errors():
    with pytest.raises(InputError, match="max_layers: expected an integer >= 1, got 0"):
        lm.mimo_layers(10.0, 0)
    with pytest.raises(InputError, match="max_layers: expected an integer >= 1, got 2.5"):
        lm.mimo_layers(10.0, 2.5)
    with pytest.raises(InputError, match="thresholds_db: expected finite, non-decreasing"):
        lm.mimo_layers(10.0, 4, thresholds_db=[12.0, 5.0])


# ------------------------------------------------------------------- carriers, PRBs


@pytest.mark.parametrize(
    ("bw_hz", "scs_khz", "expected"),
    [
        # TS 38.101-1 Table 5.3.2-1
        (100e6, 30, 273),
        (20e6, 15, 106),
        (30e6, 15, 160),
        (50e6, 15, 270),
        (5e6, 30, 11),
        (40e6, 30, 106),
        (60e6, 30, 162),
        (80e6, 30, 217),
        (100e6, 60, 135),
        (10e6, 60, 11),
    ],
)
def test_n_prb_table_spot_checks(bw_hz, scs_khz, expected):
    assert lm.n_prb(bw_hz, scs_khz) == expected


def test_n_prb_table_shape():
    # Table 5.3.2-1 structure: 15 kHz stops at 50 MHz, 60 kHz starts at 10 MHz, N_RB grows with BW
    assert max(lm.NR_FR1_N_RB[15]) == 50 and min(lm.NR_FR1_N_RB[60]) == 10
    for table in lm.NR_FR1_N_RB.values():
        bws = sorted(table)
        assert all(table[a] < table[b] for a, b in zip(bws, bws[1:]))
        # N_RB * 12 * SCS fits inside the channel bandwidth
        scs = [k for k, v in lm.NR_FR1_N_RB.items() if v is table][0]
        assert all(table[b] * 12 * scs * 1e3 < b * 1e6 for b in bws)


def test_n_prb_errors():
    with pytest.raises(InputError, match=r"no 160 MHz carrier at 30 kHz SCS \(defined: 5, 10,.*100 MHz\)"):
        lm.n_prb(160e6, 30)
    with pytest.raises(InputError, match="no 60 MHz carrier at 15 kHz SCS"):
        lm.n_prb(60e6, 15)
    with pytest.raises(InputError, match="scs_khz: expected an FR1 subcarrier spacing 15, 30 or 60 kHz, got 12"):
        lm.n_prb(100e6, 120)
    with pytest.raises(InputError, match=r"bw_hz: expected a positive bandwidth in Hz, got -2e\+07 Hz"):
        lm.n_prb(-20e6, 30)
    with pytest.raises(InputError, match=r"bw_hz: expected a whole number of MHz, got 2.05e\+07 Hz"):
        lm.n_prb(20.5e6, 30)


def test_carrier_split_and_total():
    # 160 MHz n41 block at 30 kHz: 100 + 60 MHz carriers, 273 + 162 PRB (Table 5.3.2-1)
    assert lm.carrier_split_hz(160e6, 30) == (100e6, 60e6)
    assert lm.n_prb_total(160e6, 30) == 435
    assert lm.n_prb_total(100e6, 30) == lm.n_prb(100e6, 30) == 273
    # 60 kHz has no 5 MHz carrier: 55 MHz is 45 + 10, not 50 + 5 (which a greedy split would try)
    assert lm.carrier_split_hz(55e6, 60) == (45e6, 10e6)
    assert lm.n_prb_total(55e6, 60) == 58 + 11
    # 200 MHz at 15 kHz: four 50 MHz carriers of 270 PRB
    assert lm.n_prb_total(200e6, 15) == 4 * 270
    with pytest.raises(InputError, match="2 MHz cannot be split into TS 38.101-1 Table 5.3.2-1 carriers"):
        lm.n_prb_total(2e6, 30)


# ---------------------------------------------------------------------- peak rate


def test_re_rate_hand_evaluation():
    # 273 PRB * 12 / (1e-3 / (14 * 2)) = 91,728,000 RE/s = 273 * 12 * 30 kHz * 14/15
    assert lm.re_rate_hz(273, 30) == pytest.approx(91_728_000.0, rel=1e-12)
    assert lm.re_rate_hz(273, 30) == pytest.approx(273 * 12 * 30e3 * 14 / 15, rel=1e-12)


def test_nr_peak_rate_ts38306_example():
    # TS 38.306 4.1.2: 273 PRB, 30 kHz, 4 layers, 256QAM, f = 1, R = 948/1024, OH 0.14 -> 2.337 Gbit/s
    assert lm.nr_peak_rate_bps(273, 30, 4, 8) == pytest.approx(2.337e9, abs=PEAK_TOL_BPS)
    # linear in layers, Qm, f and (1 - OH)
    base = lm.nr_peak_rate_bps(273, 30, 4, 8)
    assert lm.nr_peak_rate_bps(273, 30, 2, 8) == pytest.approx(base / 2, rel=1e-12)
    assert lm.nr_peak_rate_bps(273, 30, 4, 6, scaling=0.75) == pytest.approx(base * 6 / 8 * 0.75, rel=1e-12)
    assert lm.nr_peak_rate_bps(273, 30, 4, 8, overhead=0.0) == pytest.approx(base / 0.86, rel=1e-12)
    np.testing.assert_allclose(lm.nr_peak_rate_bps(np.array([273, 162]), 30, 4, 8)[0], base, rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layers": 0}, r"layers: expected an integer in 1\.\.8, got 0"),
        ({"layers": 9}, r"layers: expected an integer in 1\.\.8, got 9"),
        ({"qm": 7}, r"qm: expected a modulation order in \(1, 2, 4, 6, 8, 10\), got 7"),
        ({"scaling": 0.5}, r"scaling: expected one of 1, 0.8, 0.75, 0.4 \(TS 38.306 4.1.2\), got 0.5"),
        ({"overhead": 1.0}, r"overhead: expected a number in \[0, 1\), got 1.0"),
        ({"r_max": 0.0}, r"r_max: expected a number in \(0, 1\], got 0.0"),
        ({"n_prb": 0}, r"n_prb: expected integers >= 1, got 0"),
        ({"scs_khz": 45}, r"scs_khz: expected 15, 30, 60, 120 or 240 kHz, got 45"),
    ],
)
def test_nr_peak_rate_errors(kwargs, match):
    args = {"n_prb": 273, "scs_khz": 30, "layers": 4, "qm": 8} | kwargs
    with pytest.raises(InputError, match=match):
        lm.nr_peak_rate_bps(**args)


# ------------------------------------------------------------------ DL throughput


@pytest.mark.parametrize("dl_share", [1.0, 0.643, 0.25])
def test_dl_throughput_equals_peak_rate_at_high_sinr(dl_share):
    # SINR 40 dB, method cqi: CQI 15 (Qm 8, R 948/1024), 4 layers -> TS 38.306 peak * dl_share
    rate = lm.dl_throughput_bps(40.0, 100e6, 30, 4, dl_share)
    assert float(rate) == pytest.approx(lm.nr_peak_rate_bps(273, 30, 4, 8) * dl_share, rel=1e-12)


def test_dl_throughput_hand_evaluation_mid_sinr():
    # SINR 10 dB: CQI 4 (9.15 <= 10 < 11.27 dB), SE 4*378/1024, rank 3 (9 <= 10 < 12 dB);
    # 160 MHz n41 at 30 kHz = 435 PRB; DL share 0.7, OH 0.14
    expected = 3 * (4 * 378 / 1024) * 435 * 12 * 28_000 * 0.7 * 0.86
    assert float(lm.dl_throughput_bps(10.0, 160e6, 30, 4, 0.7)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("method", ["cqi", "shannon"])
def test_dl_throughput_monotone_dtype_nodata(method):
    r64 = lm.dl_throughput_bps(SINR_GRID_DB, 100e6, 30, 4, 0.75, method=method)
    assert r64.dtype == np.float64 and np.all(np.diff(r64) >= 0) and r64[0] == 0.0
    r32 = lm.dl_throughput_bps(SINR_GRID_DB.astype(np.float32), 100e6, 30, 4, 0.75, method=method)
    assert r32.dtype == np.float32
    # away from the staircase edges the float32 raster matches float64
    away = np.abs(SINR_GRID_DB[:, None] - lm.CQI_SINR_THRESHOLDS_DB[None, :]).min(axis=1) > 1e-3
    np.testing.assert_allclose(r32[away], r64[away], rtol=F32_RTOL)
    nodata = lm.dl_throughput_bps(np.array([np.nan], np.float32), 100e6, 30, 4, 0.75, method=method)
    assert np.isnan(nodata[0])


def test_dl_throughput_errors():
    with pytest.raises(InputError, match=r"dl_share: expected a number in \(0, 1\], got 1.5"):
        lm.dl_throughput_bps(10.0, 100e6, 30, 4, 1.5)
    with pytest.raises(InputError, match=r"dl_share: expected a number in \(0, 1\], got 0"):
        lm.dl_throughput_bps(10.0, 100e6, 30, 4, 0)
    with pytest.raises(InputError, match=r"bw_hz: expected a positive bandwidth in Hz, got -1e\+08 Hz"):
        lm.dl_throughput_bps(10.0, -100e6, 30, 4, 0.7)
    with pytest.raises(InputError, match="max_layers: expected an integer >= 1, got 0"):
        lm.dl_throughput_bps(10.0, 100e6, 30, 0, 0.7)
    with pytest.raises(InputError, match="method: expected 'cqi' or 'shannon', got 'CQI'"):
        lm.dl_throughput_bps(10.0, 100e6, 30, 4, 0.7, method="CQI")
    with pytest.raises(InputError, match="^sim.linkmodel: overhead: "):
        lm.dl_throughput_bps(10.0, 100e6, 30, 4, 0.7, overhead=-0.1)


# ------------------------------------------------------------------------ TDD share


def test_tdd_dl_share_hand_evaluation():
    # DDDSUDDSUU, S = 10 DL symbols: (5*14 + 2*10) / 140 = 0.642857
    assert lm.tdd_dl_share("DDDSUDDSUU", 10) == pytest.approx(90 / 140, abs=1e-15)
    # DDDDDDDSUU, S = 6 DL symbols: (7*14 + 6) / 140 = 0.742857
    assert lm.tdd_dl_share("DDDDDDDSUU", 6) == pytest.approx(104 / 140, abs=1e-15)
    assert lm.tdd_dl_share("D") == 1.0 and lm.tdd_dl_share("UUS") == 0.0


def test_tdd_dl_share_errors():
    with pytest.raises(InputError, match="pattern: expected a string of D, S and U slots, got 'DDXU'"):
        lm.tdd_dl_share("DDXU")
    with pytest.raises(InputError, match=r"special_dl_symbols: expected an integer in 0\.\.14, got 15"):
        lm.tdd_dl_share("DDDSU", 15)
