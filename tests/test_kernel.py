"""sim.kernel: the vectorised coverage kernel against its slow twin and metamorphic checks."""

import dataclasses
import math

import numpy as np
import pytest
from reference_loop import make_sectors, reference_coverage

from sim import kernel, linkmodel, pairpower, propagation
from sim.busyload import sinr_for_load
from sim.coverage import site_index
from sim.errors import InputError
from sim.kernel import coverage_block, los_uniform, prepare_layer, rsrp_offset_db
from sim.results import LayerRadio

# Tolerances (named constants, each with its reason)
MAX_ERR_RSRP_DB = 0.01        # kernel (float32, tabulated path gain) vs float64 scalar loop
MAX_ERR_SINR_DB = 0.05
MAX_ERR_TABLE_DB = 0.01       # tabulated vs directly evaluated path gain, same kernel
PTX_STEP_DB = 3.0
MAX_ERR_PTX_SHIFT_DB = 1e-3   # +3 dB on every Ptx -> +3 dB on every RSRP
MAX_ERR_SINR_SHIFT_DB = 1e-3  # ... and SINR unchanged when noise is negligible
MAX_ERR_FIXED_POINT_DB = 1e-4  # sinr_for_load with every interferer kept vs a fresh kernel run
MAX_ERR_HAND_DB = 0.01         # hand evaluation of eq.

RADIO = LayerRadio("n78", fc_ghz=3.5, bw_hz=100e6, scs_khz=30, noise_figure_db=9.0, max_layers=4, dl_share=0.75)
SIDE_M = 3000.0


def _scene(n_sites=20, n_pix=300, seed=1, **kw):
    rng = np.random.default_rng(seed)
    sec = make_sectors(rng.uniform(0, SIDE_M, n_sites), rng.uniform(0, SIDE_M, n_sites), rng=rng, **kw)
    px = rng.uniform(0, SIDE_M, n_pix)
    py = rng.uniform(0, SIDE_M, n_pix)
    load = rng.uniform(0.1, 1.0, sec.n_sectors).astype(np.float32)
    return sec, px, py, np.arange(1000, 1000 + n_pix), load


def _compare(b, ref):
    np.testing.assert_array_equal(b.best_sector, ref["best_sector"])
    np.testing.assert_allclose(b.rsrp_dbm, ref["rsrp_dbm"], atol=MAX_ERR_RSRP_DB, rtol=0)
    np.testing.assert_allclose(b.sinr_db, ref["sinr_db"], atol=MAX_ERR_SINR_DB, rtol=0)
    np.testing.assert_allclose(b.rsrp_indoor_dbm, ref["rsrp_indoor_dbm"], atol=MAX_ERR_RSRP_DB, rtol=0)
    np.testing.assert_allclose(b.sinr_indoor_db, ref["sinr_indoor_db"], atol=MAX_ERR_SINR_DB, rtol=0)


def test_matches_reference_loop_300_pixels_20_sites():
    # 300 pixels x 20 three-sector sites, K = 10 nearest sites (30 candidate sectors each)
    sec, px, py, pid, load = _scene()
    cand = site_index(sec, 10).candidates(px, py)
    b = coverage_block(px, py, pid, cand, sec, RADIO, load)
    _compare(b, reference_coverage(px, py, pid, cand, sec, RADIO, load))
    assert np.all(np.isfinite(b.sinr_db)) and np.ptp(b.sinr_db) > 10.0  # a scene with real contrast


@pytest.mark.parametrize("los_mode", ["nlos", "sampled"])
def test_matches_reference_loop_other_los_modes(los_mode):
    sec, px, py, pid, load = _scene(n_pix=60, seed=2)
    radio = LayerRadio("n78", 3.5, 100e6, 30, 9.0, 4, los_mode=los_mode)
    cand = site_index(sec, 10).candidates(px, py)
    b = coverage_block(px, py, pid, cand, sec, radio, load, seed=7)
    _compare(b, reference_coverage(px, py, pid, cand, sec, radio, load, seed=7))


@pytest.mark.parametrize("tables", [True, False])
def test_mixed_layer_matches_reference(tables):
    # UMa, UMi and RMa sites of different heights, per-sector tilt, power and beamwidths:
    # exercises the per-(scenario, h_BS) tables and the per-pair vertical pattern.
    rng = np.random.default_rng(3)
    n = 12
    sec = make_sectors(rng.uniform(0, SIDE_M, n), rng.uniform(0, SIDE_M, n), rng=rng,
                       h_bs_m=rng.choice([10.0, 25.0, 35.0], n), scenario=np.arange(n) % 3,
                       tilt_deg=rng.uniform(0, 10, n), ptx_dbm=rng.uniform(40, 49, n),
                       hpbw_h_deg=rng.choice([65.0, 90.0], n), hpbw_v_deg=rng.choice([8.0, 65.0], n))
    px, py = rng.uniform(0, SIDE_M, 50), rng.uniform(0, SIDE_M, 50)
    load = np.full(sec.n_sectors, 0.7, np.float32)
    radio = LayerRadio("n41", 2.595, 160e6, 30, 7.0, 4, o2i_high_share=0.3)
    cand = site_index(sec, n).candidates(px, py)
    b = coverage_block(px, py, np.arange(50), cand, sec, radio, load, tables=tables)
    _compare(b, reference_coverage(px, py, np.arange(50), cand, sec, radio, load))


def test_tables_match_direct_evaluation_close_to_sites():
    # pixels from 0 to 3 km of the sites, including inside the 10 m clip and the 18 m LOS kink
    sec, _, _, _, load = _scene(n_sites=5)
    d = np.geomspace(0.5, 3000.0, 400)
    px = sec.x_m[0] + d
    py = np.full_like(px, sec.y_m[0])
    cand = np.tile(np.arange(sec.n_sectors), (px.size, 1))
    a = coverage_block(px, py, np.arange(px.size), cand, sec, RADIO, load, tables=True)
    b = coverage_block(px, py, np.arange(px.size), cand, sec, RADIO, load, tables=False)
    np.testing.assert_allclose(a.rsrp_dbm, b.rsrp_dbm, atol=MAX_ERR_TABLE_DB, rtol=0)
    np.testing.assert_allclose(a.sinr_db, b.sinr_db, atol=MAX_ERR_TABLE_DB, rtol=0)


def test_single_link_hand_evaluation():
    # One omni-like sector (A_max = SLA_V = 0 dB: G = G_max), UE 500 m away, NLOS:
    # TR 38.901 Table 7.4.1-1 UMa NLOS at 3.5 GHz, hBS 25 m, hUT 1.5 m, d2D 500 m:
    # d3D = 500.55 m, PL' = 13.54 + 39.08 log10(d3D) + 20 log10(3.5) = 129.92 dB
    # (> PL_LOS 98.27 dB), RSRP = 46 + 17 - 129.92 - 10 log10(12 * 273) = -102.07 dBm.
    sec = make_sectors([0.0], [0.0], n_sectors=1)
    radio = LayerRadio("n78", 3.5, 100e6, 30, 9.0, 4, los_mode="nlos", sla_v_db=0.0, a_max_db=0.0)
    b = coverage_block(np.array([500.0]), np.array([0.0]), np.array([0]), np.array([[0]]), sec, radio,
                       np.ones(1))
    d3 = math.hypot(500.0, 23.5)
    pl = 13.54 + 39.08 * math.log10(d3) + 20 * math.log10(3.5)
    assert pl == pytest.approx(129.92, abs=0.01)
    assert rsrp_offset_db(100e6, 30) == pytest.approx(10 * math.log10(12 * 273), abs=1e-9)
    assert float(b.rsrp_dbm[0]) == pytest.approx(-102.07, abs=MAX_ERR_HAND_DB)
    # alone: SINR = S / N, N = -173.98 + 80 + 9 dBm
    assert float(b.sinr_db[0]) == pytest.approx(63 - 129.92 - (-173.98 + 80 + 9), abs=MAX_ERR_HAND_DB)


def test_ptx_plus_3_db_shifts_rsrp_and_keeps_sinr():
    sec, px, py, pid, load = _scene(n_sites=30, n_pix=400, seed=4)
    louder = dataclasses.replace(sec, ptx_dbm=sec.ptx_dbm + np.float32(PTX_STEP_DB))
    quiet = LayerRadio("n78", 3.5, 100e6, 30, noise_figure_db=-100.0, max_layers=4)  # noise negligible
    cand = site_index(sec, 16).candidates(px, py)
    a = coverage_block(px, py, pid, cand, sec, quiet, load)
    b = coverage_block(px, py, pid, cand, louder, quiet, load)
    np.testing.assert_allclose(b.rsrp_dbm - a.rsrp_dbm, PTX_STEP_DB, atol=MAX_ERR_PTX_SHIFT_DB, rtol=0)
    np.testing.assert_allclose(b.sinr_db, a.sinr_db, atol=MAX_ERR_SINR_SHIFT_DB, rtol=0)
    np.testing.assert_array_equal(a.best_sector, b.best_sector)


@pytest.mark.parametrize("scenario", [0, 1, 2])
@pytest.mark.parametrize("los_mode", ["expected", "nlos"])
def test_moving_away_from_the_only_site_never_raises_rsrp(scenario, los_mode):
    # Flat vertical pattern (SLA_V = 0) and a fixed bearing: only path loss changes with distance.
    sec = make_sectors([0.0], [0.0], n_sectors=1, scenario=scenario, h_bs_m=25.0 if scenario != 1 else 10.0)
    radio = LayerRadio("n28", 0.773, 30e6, 15, 7.0, 2, los_mode=los_mode, sla_v_db=0.0)
    d = np.linspace(10.0, 8000.0, 2000)
    az = np.deg2rad(20.0)
    b = coverage_block(d * np.sin(az), d * np.cos(az), np.arange(d.size), np.zeros((d.size, 1), np.int32), sec,
                       radio, np.ones(1))
    assert np.all(np.diff(b.rsrp_dbm) <= 0.0)
    assert b.rsrp_dbm[0] - b.rsrp_dbm[-1] > 60.0


def test_dtype_policy():
    sec, px, py, pid, load = _scene(n_pix=50)
    b = coverage_block(px, py, pid, site_index(sec, 5).candidates(px, py), sec, RADIO, load, top_m=4)
    for name in ("rsrp_dbm", "sinr_db", "se_bps_hz", "rate_outdoor_bps", "rate_indoor_bps", "rsrp_indoor_dbm",
                 "sinr_indoor_db"):
        assert getattr(b, name).dtype == np.float32, name
    assert b.best_sector.dtype == np.int32
    it = b.interference
    assert it.signal_mw.dtype == np.float64 and it.residual_mw.dtype == np.float64
    assert it.top_mw.dtype == np.float32 and it.top_sector.dtype == np.int32
    prep = prepare_layer(sec, RADIO, load)
    assert all(t.dtype == np.float32 and s.dtype == np.float32 for t, s in prep.tables.values())
    assert los_uniform(np.arange(3), np.arange(3), 0).dtype == np.float32


def test_result_does_not_depend_on_chunking_or_splitting():
    sec, px, py, pid, load = _scene(n_pix=500)
    cand = site_index(sec, 8).candidates(px, py)
    whole = coverage_block(px, py, pid, cand, sec, RADIO, load)
    small = coverage_block(px, py, pid, cand, sec, RADIO, load, chunk_pairs=7 * 24)
    parts = [coverage_block(px[a:b], py[a:b], pid[a:b], cand[a:b], sec, RADIO, load) for a, b in
             ((0, 1), (1, 130), (130, 500))]
    for name in ("rsrp_dbm", "sinr_db", "best_sector", "rate_indoor_bps"):
        np.testing.assert_array_equal(getattr(small, name), getattr(whole, name))
        np.testing.assert_array_equal(np.concatenate([getattr(p, name) for p in parts]), getattr(whole, name))


def test_outputs_follow_linkmodel_and_o2i():
    sec, px, py, pid, load = _scene(n_pix=100)
    b = coverage_block(px, py, pid, site_index(sec, 8).candidates(px, py), sec, RADIO, load)
    np.testing.assert_array_equal(b.se_bps_hz, linkmodel.spectral_efficiency_bps_hz(b.sinr_db))
    np.testing.assert_array_equal(b.rate_outdoor_bps, linkmodel.dl_throughput_bps(b.sinr_db, 100e6, 30, 4, 0.75))
    # TR 38.901 Table 7.4.3-2 mixed 50/50 in the linear domain
    lo, hi = (float(propagation.o2i_loss_db(m, 3.5)) for m in ("low", "high"))
    mix = -10 * math.log10(0.5 * 10 ** (-hi / 10) + 0.5 * 10 ** (-lo / 10))
    assert kernel.o2i_loss_expected_db(RADIO) == pytest.approx(mix, abs=1e-9)
    np.testing.assert_allclose(b.rsrp_dbm - b.rsrp_indoor_dbm, mix, atol=1e-4)
    assert np.all(b.sinr_indoor_db <= b.sinr_db + 1e-6)


def test_sinr_for_load_reproduces_a_fresh_run():
    sec, px, py, pid, load = _scene(n_pix=200)
    cand = site_index(sec, 6).candidates(px, py)
    b = coverage_block(px, py, pid, cand, sec, RADIO, load, top_m=6 * 3 - 1)  # every interferer
    new_load = np.random.default_rng(9).uniform(0, 1, sec.n_sectors).astype(np.float32)
    fresh = coverage_block(px, py, pid, cand, sec, RADIO, new_load)
    np.testing.assert_allclose(sinr_for_load(b.interference, new_load), fresh.sinr_db,
                               atol=MAX_ERR_FIXED_POINT_DB, rtol=0)
    np.testing.assert_allclose(sinr_for_load(b.interference, new_load, o2i_loss_db=kernel.o2i_loss_expected_db(RADIO)),
                               fresh.sinr_indoor_db, atol=MAX_ERR_FIXED_POINT_DB, rtol=0)
    # fewer terms: exact at the original loads (the residual carries the rest)
    b3 = coverage_block(px, py, pid, cand, sec, RADIO, load, top_m=3)
    assert b3.interference.top_sector.shape == (200, 3)
    assert np.all(np.diff(b3.interference.top_mw, axis=1) <= 0)  # strongest first
    np.testing.assert_allclose(sinr_for_load(b3.interference, load), b.sinr_db, atol=MAX_ERR_FIXED_POINT_DB, rtol=0)


def test_top_interferers_are_the_strongest_with_ties_to_the_earlier_candidate():
    """The top-M terms are the M strongest candidates after the serving one, strongest first, and equal
    powers rank by candidate order: a fixed answer, whatever the CPU. Equal powers are common: two back
    lobes of one site both clipped at A_max (TR 38.901 Table 7.3-1) receive the same power."""
    sec, px, py, pid, load = _scene(n_pix=400, seed=4)
    cand = site_index(sec, 6).candidates(px, py)
    prep = prepare_layer(sec, RADIO, load)
    m = 5
    b = coverage_block(px, py, pid, cand, sec, RADIO, load, top_m=m, prepared=prep)
    p = kernel.sector_power_mw(px, py, pid, cand, prep)           # [k, s, n]
    ks = p.shape[0] * p.shape[1]
    p = p.reshape(ks, -1).T                                       # [n, k*s]
    flat = cand.reshape(cand.shape[0], -1)
    n_ties = 0
    for i in range(p.shape[0]):
        order = sorted(range(ks), key=lambda j: (-float(p[i, j]), j))   # strongest first, then candidate order
        n_ties += len(set(p[i].tolist())) < ks
        assert flat[i, order[0]] == b.best_sector[i]
        want = [int(flat[i, j]) if p[i, j] > 0 else -1 for j in order[1:m + 1]]
        assert b.interference.top_sector[i].tolist() == want
        np.testing.assert_array_equal(b.interference.top_mw[i], np.maximum(p[i, order[1:m + 1]], 0))
    assert n_ties > 0     # the scene has equal powers for the rule to decide


def test_los_uniform_is_a_stable_uniform():
    pid = np.arange(200_000)
    u = los_uniform(pid, 7, 42)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.005          # 5 sigma of U(0,1) mean over 2e5 draws is 0.0032
    np.testing.assert_array_equal(los_uniform(pid[::-1], 7, 42), u[::-1])
    assert not np.array_equal(los_uniform(pid, 7, 43), u)
    assert not np.array_equal(los_uniform(pid, 8, 42), u)


def test_no_candidate_gives_no_data():
    sec, px, py, pid, load = _scene(n_pix=3)
    cand = np.full((3, 2, 3), -1, np.int32)
    cand[1, 0] = [0, 1, 2]
    b = coverage_block(px, py, pid, cand, sec, RADIO, load)
    assert list(b.best_sector[[0, 2]]) == [-1, -1] and b.best_sector[1] in (0, 1, 2)
    assert np.isnan(b.rsrp_dbm[[0, 2]]).all() and np.isnan(b.rate_outdoor_bps[[0, 2]]).all()
    assert np.isfinite(b.sinr_db[1])


def test_site_lower_than_ue_raises_from_propagation():
    sec = make_sectors([0.0, 500.0], [0.0, 0.0], h_bs_m=[25.0, 1.0])
    with pytest.raises(InputError, match=r"pathloss_db: h_bs_m: expected a base station higher than the UE"):
        coverage_block(np.array([100.0]), np.array([0.0]), np.array([0]), np.array([[0, 3]]), sec, RADIO,
                       np.ones(6))


@pytest.mark.parametrize("kwargs, match", [
    (dict(cand=np.array([[0, 6]])), r"cand: expected sector indices in \[-1, 5\], got 0\.\.6"),
    (dict(load=np.full(6, 1.5)), r"load: expected cell loads in \[0, 1\]"),
    (dict(load=np.ones(5)), r"load: expected one load per sector \(6\), got shape \(5,\)"),
    (dict(cand=np.array([0, 1])), r"cand: expected integer sector indices"),
])
def test_bad_inputs_raise(kwargs, match):
    sec = make_sectors([0.0, 500.0], [0.0, 0.0])
    args = dict(cand=np.array([[0, 3]]), load=np.ones(6))
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        coverage_block(np.array([100.0]), np.array([0.0]), np.array([0]), args["cand"], sec, RADIO, args["load"])


def test_zero_sectors_raise():
    empty = make_sectors([], [])
    with pytest.raises(InputError, match="expected at least one sector in the layer, got 0"):
        coverage_block(np.zeros(0), np.zeros(0), np.zeros(0, np.int64), np.zeros((0, 1), np.int32), empty, RADIO,
                       np.zeros(0))


def _mixed_scene():
    """UMa and RMa sites (RMa: the distance-dependent LOS sigma), one tilt per site, every draw on."""
    rng = np.random.default_rng(7)
    n_sites = 24
    rma = np.arange(n_sites) % 4 == 0
    sec = make_sectors(rng.uniform(0, SIDE_M, n_sites), rng.uniform(0, SIDE_M, n_sites), rng=rng,
                       scenario=np.where(rma, 2, 0), h_bs_m=np.where(rma, 35.0, 25.0),
                       tilt_deg=rng.uniform(3.0, 12.0, n_sites))
    radio = dataclasses.replace(RADIO, los_mode="sampled", los_consistent=True, shadow_fading=True, o2i_random=True)
    px, py = rng.uniform(0, SIDE_M, 400), rng.uniform(0, SIDE_M, 400)
    load = rng.uniform(0.1, 1.0, sec.n_sectors).astype(np.float32)
    return sec, radio, px, py, np.arange(5000, 5400), load


def _bits(b):
    out = {f.name: np.asarray(getattr(b, f.name)).tobytes() for f in dataclasses.fields(b) if f.name != "interference"}
    out.update({f"it.{n}": np.asarray(getattr(b.interference, n)).tobytes()
                for n in ("signal_mw", "top_sector", "top_mw", "residual_mw")})
    return out


@pytest.mark.parametrize("tables", [True, False])
def test_per_site_shortcuts_give_the_bits_of_the_per_pair_path(tables, monkeypatch):
    # A_V once per pixel-site (tilt and vertical beamwidth shared by a site's sectors) and the pad
    # mask skipped for a block without pads are shortcuts: the outputs must be bit for bit those of
    # the per-pair evaluation.
    sec, radio, px, py, pid, load = _mixed_scene()
    cand = site_index(sec, 12).candidates(px, py)
    prep = prepare_layer(sec, radio, load, tables=tables)
    assert prep.v_by_site and not prep.v_per_site
    fast = _bits(coverage_block(px, py, pid, cand, sec, radio, load, 3, top_m=6, prepared=prep))
    slow_prep = prepare_layer(sec, radio, load, tables=tables)
    slow_prep.v_by_site = False                                    # A_V per pixel-sector
    monkeypatch.setattr(pairpower, "may_pad", lambda cand: True)     # the pad mask on every chunk
    slow = _bits(coverage_block(px, py, pid, cand, sec, radio, load, 3, top_m=6, prepared=slow_prep))
    assert fast.keys() == slow.keys()
    assert [k for k in fast if fast[k] != slow[k]] == []


def test_tilt_per_sector_is_evaluated_per_pair():
    sec, radio, px, py, pid, load = _mixed_scene()
    sec = dataclasses.replace(sec, tilt_deg=sec.tilt_deg + np.arange(sec.n_sectors, dtype=np.float32) % 3)
    assert not prepare_layer(sec, radio, load).v_by_site


def test_bearing_in_degrees_is_np_degrees_bit_for_bit():
    # the kernel multiplies by np.degrees' own float32 factor (numpy's npy_rad2degf: x * (180f / pi_f));
    # a numpy that computed degrees otherwise would change the bearings, and this test says so
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-math.pi, math.pi, 200_000),
                        [0.0, -0.0, 1e-38, -1e-38, math.pi, -math.pi, 1e30, np.inf, -np.inf]]).astype(np.float32)
    with np.errstate(over="ignore"):
        assert (x * pairpower._RAD2DEG).tobytes() == np.degrees(x).tobytes()
