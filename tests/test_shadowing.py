"""sim.shadowing: correlated shadow fading and LOS state per site, per-pixel O2I draws; their use in the kernel.

Reference values: 3GPP TR 38.901 V17.0.0 Table 7.4.1-1 (sigma_SF), Table 7.5-6 (SF decorrelation
distance), §7.6.3.3 / Table 7.6.3.1-2 (LOS-state correlation distance), Table 7.4.3-2 (O2I sigma_P).
"""

import dataclasses
import math

import numpy as np
import pytest
from reference_loop import make_rasters, make_sectors, reference_coverage

from sim import propagation, shadowing
from sim.coverage import compute_coverage, site_index
from sim.kernel import coverage_block, prepare_layer, sector_power_mw
from sim.results import SCENARIO_CODES, LayerRadio

# Tolerances (named constants, each with its reason)
SIGMA_REL_TOL = 0.05          # empirical sigma_SF / sigma_P within 5 % of the table (issue: large sample)
CORR_TOL = 0.1                # autocorrelation at d_cor within 0.1 of exp(-1)
FAR_CORR_TOL = 0.05           # |correlation| of independent sites / far points (200k samples: sd ~ 0.002)
MAX_ERR_TWIN_DB = 0.01        # kernel vs the float64 scalar loop (the lattice is read at the same float32 position)
MAX_ERR_TWIN_SINR_DB = 0.05

RADIO = LayerRadio("n78", fc_ghz=3.5, bw_hz=100e6, scs_khz=30, noise_figure_db=9.0, max_layers=4)
ALL_ON = dict(shadow_fading=True, los_consistent=True, o2i_random=True)
C = math.log(10.0) / 10.0

# TR 38.901 V17.0.0 Table 7.4.1-1 sigma_SF (dB) and Table 7.5-6 SF decorrelation distance (m)
SF_TABLE = [("uma", True, 4.0, 37.0), ("uma", False, 6.0, 50.0), ("umi", True, 4.0, 10.0),
            ("umi", False, 7.82, 13.0), ("rma", True, 4.0, 37.0), ("rma", False, 8.0, 120.0)]


def _sites(scenario: str, n_sites=4000, seed=0):
    rng = np.random.default_rng(seed)
    code = SCENARIO_CODES.index(scenario)
    h = 35.0 if scenario == "rma" else 25.0
    return make_sectors(rng.uniform(0, 1e5, n_sites), rng.uniform(0, 1e5, n_sites), n_sectors=1, h_bs_m=h,
                        scenario=code)


def _shadow_db(sh, lead, dx, dy, los):
    return shadowing.shadow_fading_c(sh, lead, sh["ox"][lead], sh["oy"][lead], dx.astype(np.float32),
                                     dy.astype(np.float32), los) / C


@pytest.mark.parametrize(("scenario", "los", "sigma_db", "d_cor_m"), SF_TABLE)
def test_shadow_fading_sigma_and_autocorrelation_match_tr38901(scenario, los, sigma_db, d_cor_m):
    sec = _sites(scenario)
    sh = shadowing.site_field_constants(sec, RADIO, seed=3)
    rng = np.random.default_rng(1)
    n = 200_000
    lead = rng.integers(0, sec.n_sectors, n)
    # UEs within 200 m of their site (below the RMa breakpoint: sigma_SF LOS 4 dB, Table 7.4.1-1)
    dx, dy = rng.uniform(-200, 200, n), rng.uniform(-200, 200, n)
    state = np.full(n, los)
    a = _shadow_db(sh, lead, dx, dy, state)
    assert abs(a.std() / sigma_db - 1.0) <= SIGMA_REL_TOL
    assert abs(a.mean()) <= 0.05 * sigma_db
    th = rng.uniform(0, 2 * np.pi, n)
    b = _shadow_db(sh, lead, dx + d_cor_m * np.cos(th), dy + d_cor_m * np.sin(th), state)
    assert abs(np.corrcoef(a, b)[0, 1] - math.exp(-1.0)) <= CORR_TOL
    far = _shadow_db(sh, lead, dx + 20 * d_cor_m * np.cos(th), dy + 20 * d_cor_m * np.sin(th), state)
    assert abs(np.corrcoef(a, far)[0, 1]) <= FAR_CORR_TOL
    other = _shadow_db(sh, (lead + 1) % sec.n_sectors, dx, dy, state)   # another site, same UE offset
    assert abs(np.corrcoef(a, other)[0, 1]) <= FAR_CORR_TOL


def test_rma_los_sigma_is_6_db_beyond_the_breakpoint():
    # TR 38.901 Table 7.4.1-1 RMa LOS: sigma_SF 4 dB for d2D <= dBP (PL1), 6 dB beyond (PL2)
    sec = _sites("rma")
    sh = shadowing.site_field_constants(sec, RADIO, seed=3)
    d_bp = float(propagation.breakpoint_distance_m("rma", 100.0, 35.0, RADIO.h_ut_m, RADIO.fc_ghz))
    rng = np.random.default_rng(2)
    n = 200_000
    th = rng.uniform(0, 2 * np.pi, n)
    r = rng.uniform(1.2 * d_bp, 3.0 * d_bp, n)
    x = _shadow_db(sh, rng.integers(0, sec.n_sectors, n), r * np.cos(th), r * np.sin(th), np.ones(n, bool))
    assert abs(x.std() / 6.0 - 1.0) <= SIGMA_REL_TOL


def test_los_state_field_is_uniform_and_spatially_consistent():
    # TR 38.901 §7.6.3.3: a uniform variable per site, correlated over 50 m (UMa), compared with Pr_LOS
    sec = _sites("uma")
    sh = shadowing.site_field_constants(sec, RADIO, seed=3)
    rng = np.random.default_rng(4)
    n = 200_000
    lead = rng.integers(0, sec.n_sectors, n)
    dx, dy = rng.uniform(-500, 500, n).astype(np.float32), rng.uniform(-500, 500, n).astype(np.float32)
    cpm = sh["cpm_state"]
    assert float(cpm) == pytest.approx(shadowing.CELLS_PER_DCOR / 50.0)

    def u_at(x, y):
        return shadowing.uniform_from_normal(shadowing.field_at(sh["z"], sh["ox"][lead], sh["oy"][lead], x, y, cpm,
                                                                shadowing.LOS_SHIFT_CELLS))

    u = u_at(dx, dy)
    for p in (0.1, 0.3, 0.7):
        assert np.mean(u < p) == pytest.approx(p, abs=0.01)
    th = rng.uniform(0, 2 * np.pi, n)
    near = u_at(dx + np.float32(5.0) * np.cos(th).astype(np.float32),
                dy + np.float32(5.0) * np.sin(th).astype(np.float32))
    at_dcor = u_at(dx + np.float32(50.0) * np.cos(th).astype(np.float32),
                   dy + np.float32(50.0) * np.sin(th).astype(np.float32))
    # rank correlation of a Gaussian field with correlation rho: (6 / pi) asin(rho / 2)
    assert np.corrcoef(u, at_dcor)[0, 1] == pytest.approx(6 / math.pi * math.asin(math.exp(-1.0) / 2), abs=CORR_TOL)
    # the site's LOS-state and shadow-fading fields are independent (read half a torus apart)
    sf = shadowing.field_at(sh["z"], sh["ox"][lead], sh["oy"][lead], dx, dy, cpm)
    assert abs(np.corrcoef(u, sf)[0, 1]) <= FAR_CORR_TOL
    # two UEs 5 m apart share their LOS state far more often than independent draws would (p = 0.3)
    both = np.mean((u < 0.3) == (near < 0.3))
    assert both >= 0.85 > 0.3 ** 2 + 0.7 ** 2


def test_kernel_path_gain_carries_the_shadow_fading():
    # NLOS everywhere: P(shadowed) / P(plain) in dB is -X_SF, sigma 6 dB (UMa NLOS, Table 7.4.1-1)
    rng = np.random.default_rng(5)
    sec = make_sectors(rng.uniform(0, 20_000, 400), rng.uniform(0, 20_000, 400), rng=rng)
    px, py = rng.uniform(0, 20_000, 4000), rng.uniform(0, 20_000, 4000)
    cand = site_index(sec, 32).candidates(px, py)
    plain = dataclasses.replace(RADIO, los_mode="nlos")
    shadowed = dataclasses.replace(plain, shadow_fading=True)
    load = np.ones(sec.n_sectors, np.float32)
    a = sector_power_mw(px, py, np.arange(4000), cand, prepare_layer(sec, plain, load), seed=9)
    b = sector_power_mw(px, py, np.arange(4000), cand, prepare_layer(sec, shadowed, load), seed=9)
    x = 10.0 * np.log10(b[:, 0, :] / a[:, 0, :]).ravel()     # one value per pixel-site
    assert abs(x.std() / 6.0 - 1.0) <= SIGMA_REL_TOL
    assert abs(x.mean()) <= 0.05 * 6.0
    np.testing.assert_allclose(10 * np.log10(b[:, 1, :] / a[:, 1, :]).ravel(), x, atol=1e-4)  # sectors share it


@pytest.mark.parametrize(("los_mode", "tables"), [("sampled", True), ("sampled", False), ("nlos", True),
                                                  ("expected", False)])
def test_kernel_matches_reference_loop_with_shadowing_o2i_and_ssb(los_mode, tables):
    rng = np.random.default_rng(1)
    n = 20
    sec = make_sectors(rng.uniform(0, 3000, n), rng.uniform(0, 3000, n), rng=rng, scenario=np.arange(n) % 3,
                       h_bs_m=rng.choice([10.0, 25.0, 35.0], n))
    px, py = rng.uniform(0, 3000, 120), rng.uniform(0, 3000, 120)
    pid = np.arange(120) * 7 + 3
    load = np.full(sec.n_sectors, 0.6, np.float32)
    radio = dataclasses.replace(RADIO, los_mode=los_mode, ssb_gain_offset_db=-6.0, **ALL_ON)
    cand = site_index(sec, 10).candidates(px, py)
    b = coverage_block(px, py, pid, cand, sec, radio, load, seed=11, tables=tables)
    ref = reference_coverage(px, py, pid, cand, sec, radio, load, seed=11)
    np.testing.assert_array_equal(b.best_sector, ref["best_sector"])
    for name, tol in (("rsrp_dbm", MAX_ERR_TWIN_DB), ("rsrp_indoor_dbm", MAX_ERR_TWIN_DB),
                      ("sinr_db", MAX_ERR_TWIN_SINR_DB), ("sinr_indoor_db", MAX_ERR_TWIN_SINR_DB)):
        np.testing.assert_allclose(getattr(b, name), ref[name], atol=tol, rtol=0, err_msg=name)


def test_bitwise_identical_for_block_sizes_and_workers_with_every_draw():
    r = make_rasters(30, 40, 25.0)
    rng = np.random.default_rng(0)
    xmin, ymin, xmax, ymax = r.grid.bounds_m
    sec = make_sectors(rng.uniform(xmin - 200, xmax + 200, 20), rng.uniform(ymin - 200, ymax + 200, 20), rng=rng)
    radio = dataclasses.replace(RADIO, los_mode="sampled", **ALL_ON)
    kw = dict(k_sites=8, load=0.5, seed=4)
    ref = compute_coverage(r, sec, radio, block_size=100_000, executor="serial", **kw)
    runs = [compute_coverage(r, sec, radio, block_size=37, executor="serial", **kw),
            compute_coverage(r, sec, radio, block_size=111, workers=2, executor="processes", **kw)]
    for other in runs:
        for name in ("rsrp_dbm", "best_sector", "sinr_db", "rate_indoor_bps", "rsrp_indoor_dbm", "sinr_indoor_db"):
            np.testing.assert_array_equal(getattr(other, name), getattr(ref, name), err_msg=name)
    seed5 = compute_coverage(r, sec, radio, block_size=100_000, executor="serial", **{**kw, "seed": 5})
    assert not np.array_equal(seed5.rsrp_dbm, ref.rsrp_dbm)


@pytest.mark.parametrize(("model", "sigma_p_db"), [("low", 4.4), ("high", 6.5)])
def test_o2i_random_part_matches_table_7_4_3_2(model, sigma_p_db):
    radio = dataclasses.replace(RADIO, o2i_random=True, o2i_high_share=0.3)
    pid = np.arange(400_000)
    loss = shadowing.o2i_loss_pixel_db(radio, pid, seed=8)
    mean = float(propagation.o2i_loss_db(model, radio.fc_ghz, radio.d2d_in_m))
    u_type, _ = shadowing.o2i_draws(pid, 8)
    sel = (u_type < 0.3) if model == "high" else (u_type >= 0.3)
    assert np.mean(u_type < 0.3) == pytest.approx(0.3, abs=0.005)
    x = loss[sel] - mean
    assert abs(x.std() / sigma_p_db - 1.0) <= SIGMA_REL_TOL
    assert abs(x.mean()) <= 0.05 * sigma_p_db
    # the same building and deviate on every carrier: the loss at 2.6 GHz moves with the one at 3.5 GHz
    other = shadowing.o2i_loss_pixel_db(dataclasses.replace(radio, fc_ghz=2.595), pid[:1000], seed=8)
    assert np.corrcoef(other, loss[:1000])[0, 1] > 0.99


def test_o2i_random_lowers_indoor_values_per_pixel_and_keeps_outdoor():
    rng = np.random.default_rng(6)
    sec = make_sectors(rng.uniform(0, 3000, 20), rng.uniform(0, 3000, 20), rng=rng)
    px, py = rng.uniform(0, 3000, 2000), rng.uniform(0, 3000, 2000)
    cand = site_index(sec, 10).candidates(px, py)
    load = np.full(sec.n_sectors, 0.5, np.float32)
    a = coverage_block(px, py, np.arange(2000), cand, sec, RADIO, load, seed=2)
    b = coverage_block(px, py, np.arange(2000), cand, sec, dataclasses.replace(RADIO, o2i_random=True), load, seed=2)
    np.testing.assert_array_equal(a.rsrp_dbm, b.rsrp_dbm)
    np.testing.assert_array_equal(a.sinr_db, b.sinr_db)
    loss = b.rsrp_dbm - b.rsrp_indoor_dbm
    assert loss.std() > 4.0 and np.ptp(a.rsrp_dbm - a.rsrp_indoor_dbm) < 1e-4


def _covered_share(cov, rsrp_min_dbm=-105.0, sinr_min_db=-3.0, indoor=False):
    rsrp = cov.rsrp_indoor_dbm if indoor else cov.rsrp_dbm
    sinr = cov.sinr_indoor_db if indoor else cov.sinr_db
    return float(np.mean((rsrp >= rsrp_min_dbm) & (sinr >= sinr_min_db)))


def test_stronger_ssb_beam_never_lowers_rsrp_coverage():
    # metamorphic: SS-RSRP on a stronger broadcast beam is higher by the gain step everywhere,
    # the serving cell and SINR (traffic beam) do not change, so coverage cannot fall
    r = make_rasters(30, 30, 100.0)
    rng = np.random.default_rng(7)
    xmin, ymin, xmax, ymax = r.grid.bounds_m
    sec = make_sectors(rng.uniform(xmin, xmax, 6), rng.uniform(ymin, ymax, 6), rng=rng, ptx_dbm=40.0)
    base = dataclasses.replace(RADIO, los_mode="sampled", ssb_gain_offset_db=-9.0, **ALL_ON)
    covs = [compute_coverage(r, sec, dataclasses.replace(base, ssb_gain_offset_db=g), k_sites=6, load=0.5,
                             executor="serial", seed=1) for g in (-9.0, -6.0, -3.0, 0.0)]
    for weak, strong in zip(covs, covs[1:]):
        np.testing.assert_array_equal(weak.best_sector, strong.best_sector)
        np.testing.assert_array_equal(weak.sinr_db, strong.sinr_db)
        np.testing.assert_allclose(strong.rsrp_dbm - weak.rsrp_dbm, 3.0, atol=1e-4)
        for indoor in (False, True):
            assert _covered_share(strong, indoor=indoor) >= _covered_share(weak, indoor=indoor)
    assert _covered_share(covs[-1], indoor=True) > _covered_share(covs[0], indoor=True)  # the scene is RSRP-limited


def test_adding_sites_raises_indoor_coverage_of_a_sparse_district():
    # metamorphic: a sparse suburban grid (30 sites over 100 km2, UMa 30 m) gains indoor coverage
    # when 30 sites are added; the first 30 keep their ids, hence their shadowing and LOS fields
    r = make_rasters(50, 50, 200.0)
    rng = np.random.default_rng(8)
    xmin, ymin, xmax, ymax = r.grid.bounds_m
    x, y = rng.uniform(xmin, xmax, 60), rng.uniform(ymin, ymax, 60)
    radio = dataclasses.replace(RADIO, los_mode="sampled", ssb_gain_offset_db=-6.0, **ALL_ON)
    kw = dict(h_bs_m=30.0, ptx_dbm=53.0, g_max_dbi=24.0, tilt_deg=6.0)
    sparse = make_sectors(x[:30], y[:30], rng=np.random.default_rng(1), **kw)
    dense = make_sectors(x, y, rng=np.random.default_rng(1), **kw)
    np.testing.assert_array_equal(dense.az_deg[:90], sparse.az_deg)
    a = compute_coverage(r, sparse, radio, k_sites=16, load=0.5, executor="serial", seed=2)
    b = compute_coverage(r, dense, radio, k_sites=16, load=0.5, executor="serial", seed=2)
    pop_a, pop_b = _covered_share(a, indoor=True), _covered_share(b, indoor=True)
    assert 0.05 < pop_a < 0.9          # sparse: far from full coverage, so the test can fail
    assert pop_b > pop_a + 0.05


def test_shadow_fading_per_state_tables_match_the_per_state_choice():
    # TR 38.901 Table 7.4.1-1: sigma_SF of the link's state (RMa LOS: 4 dB up to d_BP, 6 dB beyond)
    # and Table 7.5-6: its decorrelation distance; shadow_fading_c gathers both from per-state tables,
    # which must give the values of choosing per state, bit for bit.
    rng = np.random.default_rng(11)
    sec = make_sectors(rng.uniform(0, 1e4, 300), rng.uniform(0, 1e4, 300), rng=rng,
                       scenario=np.where(np.arange(300) % 3 == 0, 2, 0), h_bs_m=35.0)
    sh = shadowing.site_field_constants(sec, RADIO, seed=5)
    n = 50_000
    lead = rng.integers(0, sec.n_sectors, n)
    r, th = rng.uniform(0, 8000.0, n), rng.uniform(0, 2 * np.pi, n)
    dx, dy = (r * np.cos(th)).astype(np.float32), (r * np.sin(th)).astype(np.float32)
    los = rng.random(n) < 0.5

    def per_sector(name):
        return np.broadcast_to(sh[name], sec.n_sectors)[lead]

    d2 = dx * dx + dy * dy
    sig_los = np.where(d2 > per_sector("d_bp2"), per_sector("sig_los_far_c"), per_sector("sig_los_c"))
    sig = np.where(los, sig_los, per_sector("sig_nlos_c"))
    cpm = np.where(los, per_sector("cpm_los"), per_sector("cpm_nlos"))
    want = np.multiply(shadowing.field_at(sh["z"], sh["ox"][lead], sh["oy"][lead], dx, dy, cpm), sig, dtype=np.float32)
    got = shadowing.shadow_fading_c(sh, lead, sh["ox"][lead], sh["oy"][lead], dx, dy, los)
    assert sh["far"] and (los & (d2 > per_sector("d_bp2"))).any()
    assert got.dtype == np.float32 and got.tobytes() == want.tobytes()


def _co_sited_layers(scenario_per_site, rng):
    """Two carriers on the same sites (3.5 and 0.7 GHz, other tilts and powers), sampled consistent LOS,
    shadow fading and random O2I on: what :func:`sim.kernel.coverage_blocks` may share, and what it may not."""
    n = scenario_per_site.size
    x, y = rng.uniform(0, 8000, n), rng.uniform(0, 8000, n)
    tilt = rng.uniform(3.0, 10.0, n)
    a = make_sectors(x, y, rng=np.random.default_rng(5), tilt_deg=tilt, scenario=scenario_per_site,
                     h_bs_m=np.where(scenario_per_site == SCENARIO_CODES.index("rma"), 35.0, 25.0))
    b = dataclasses.replace(a, tilt_deg=(a.tilt_deg + 2.0).astype(np.float32),
                            ptx_dbm=(a.ptx_dbm + 3.0).astype(np.float32))
    ra = dataclasses.replace(RADIO, los_mode="sampled", **ALL_ON)
    rb = dataclasses.replace(ra, layer_id="n28", fc_ghz=0.7, bw_hz=20e6, scs_khz=15)
    return (a, ra), (b, rb)


@pytest.mark.parametrize("scenarios", ["uma", "uma+rma"])
def test_co_sited_carriers_share_site_terms_with_the_bits_of_separate_runs(scenarios):
    """coverage_blocks evaluates the carrier-independent per pixel-site terms (distance, bearing, LOS state
    from the §7.6.3.3 field, shadow-fading field of Table 7.5-6) once for carriers on the same sites; each
    carrier keeps its path gain, sigma (the RMa breakpoint of Table 7.4.1-1 moves with the frequency), tilt and
    power, and every output has the bits of its own coverage_block."""
    from sim.kernel import coverage_blocks

    rng = np.random.default_rng(8)
    codes = [SCENARIO_CODES.index(s) for s in scenarios.split("+")]
    layers = _co_sited_layers(np.array(codes)[rng.integers(0, len(codes), 60)], rng)
    px, py = rng.uniform(0, 8000, 3000), rng.uniform(0, 8000, 3000)
    pid = np.arange(3000) + 77
    cand = site_index(layers[0][0], 12).candidates(px, py)
    load = rng.uniform(0.1, 0.9, layers[0][0].n_sectors).astype(np.float32)
    preps = [prepare_layer(sec, radio, load) for sec, radio in layers]
    assert preps[0].geometry_key(4) == preps[1].geometry_key(4) != preps[0].geometry_key(5)
    fused = coverage_blocks(px, py, pid, cand, preps, 4, top_m=5, chunk_pairs=2000)
    for (sec, radio), prep, got in zip(layers, preps, fused):
        alone = coverage_block(px, py, pid, cand, sec, radio, load, 4, top_m=5, prepared=prep, chunk_pairs=2000)
        for f in dataclasses.fields(alone):
            if f.name == "interference":
                for g in ("signal_mw", "top_sector", "top_mw", "residual_mw"):
                    assert np.asarray(getattr(got.interference, g)).tobytes() == \
                        np.asarray(getattr(alone.interference, g)).tobytes(), g
            else:
                assert np.asarray(getattr(got, f.name)).tobytes() == np.asarray(getattr(alone, f.name)).tobytes(), \
                    f.name
    # the carriers differ: sharing did not copy one carrier's powers into the other
    assert not np.array_equal(fused[0].rsrp_dbm, fused[1].rsrp_dbm)


def test_layer_groups_join_carriers_on_the_same_sites_only():
    from sim.coverage import coverage_inputs, layer_groups

    rng = np.random.default_rng(9)
    (a, ra), (b, rb) = _co_sited_layers(np.zeros(40, dtype=np.int8), rng)
    other = make_sectors(rng.uniform(0, 8000, 40), rng.uniform(0, 8000, 40), rng=rng)
    rasters = make_rasters(20, 20, 400.0)
    inputs = {"a": coverage_inputs(rasters, a, ra, 8, 0.5, seed=3, top_m=4),
              "c": coverage_inputs(rasters, other, ra, 8, 0.5, seed=3, top_m=4),
              "b": coverage_inputs(rasters, b, rb, 8, 0.5, seed=3, top_m=4),
              "b7": coverage_inputs(rasters, b, rb, 8, 0.5, seed=7, top_m=4),
              "b6": coverage_inputs(rasters, b, rb, 6, 0.5, seed=3, top_m=4)}
    assert layer_groups(inputs) == [["a", "b"], ["c"], ["b7"], ["b6"]]
