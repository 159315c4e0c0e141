"""sim.busyload: the busy-hour fixed point as a map-reduce over tiles, and the rate floor.

Checks: the fixed point gives identical loads, per-pixel throughputs and summary figures for
tiles of 1/4, 1 and 4 times the default block and a few hundred pixels, with 1 and 2 worker
processes (configs/tiny.toml and a two-district variant at 100 m); it agrees with the
whole-grid reference (``traffic.busy_hour_layer`` over ``rates_for_load``) to float32
rounding; the offered load is reduced exactly (integers), whatever the split into tiles;
the floor of a served class is the lower of its zero-load rate and the CQI-1 rate.
"""

import dataclasses
import functools
import logging
import types
from pathlib import Path

import numpy as np
import pytest

from sim import busyload, linkfield, linkmodel
from sim import traffic as T
from sim.app import busyhour
from sim.app import inputs as R
from sim.app.assess import mobile_share_by_ran
from sim.app.run import compute_layers, layer_inputs
from sim.app.stages import StageTimer
from sim.config import load_scenario
from sim.engine import LocalEngine
from sim.results import InterferenceTerms, LayerRadio

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_BLOCK = 65536  # config.radio.block_size default
# float32 SINR arithmetic of the tiles vs float64 of the reference: a pixel within ~1e-6 dB of a CQI
# threshold may flip one step, so loads agree to far below traffic.fixed_point_tol (1e-3) and all but
# a few pixels' throughputs to float32 rounding.
LOAD_ATOL_VS_REFERENCE = 1e-5
THROUGHPUT_RTOL_VS_REFERENCE = 1e-4
MAX_FLIP_SHARE = 0.002
FIXED_POINT_QUANTUM = 2.0 ** -busyload.LOAD_FRACTION_BITS


def _scenario(district_codes=None):
    sc = load_scenario(CONFIGS / "tiny.toml")
    if district_codes is not None:   # Huangpu and Xuhui: a two-district grid at 100 m
        sc = dataclasses.replace(sc, region=dataclasses.replace(sc.region, district_codes=tuple(district_codes)))
    return sc


_CASES = {"tiny": None, "two districts": ("310101", "310104")}


@pytest.fixture(scope="module", params=list(_CASES))
def scene(request):
    sc = _scenario(_CASES[request.param])
    districts = R.load_region(sc)
    rasters = R.build_rasters(sc, districts)
    sites = R.build_sites(sc, districts, np.random.default_rng(np.random.SeedSequence(sc.scenario.seed))).table
    sectors = {lid: sites.sector_arrays(lid) for lid, _, _ in sc.layers()}
    return sc, districts, rasters, sites, sectors


def _busy_on_stage(scene, block_size, workers):
    """Coverage and busy hour on one engine stage (as ``gigacity run``), tiles of ``block_size``."""
    sc, districts, rasters, sites, sectors = scene
    sc = dataclasses.replace(sc, radio=dataclasses.replace(sc.radio, block_size=block_size))
    shared = layer_inputs(sc, rasters, sectors)
    with LocalEngine(workers).stage(shared) as st:
        cov = compute_layers(sc, rasters, sectors, StageTimer(), stage=st, inputs=shared)
        busy = busyhour.solve_busy_hour(sc, rasters, cov, sites, mobile_share_by_ran(sc), list(districts["code"]),
                                        stage=st)
    return cov, busy


def test_fixed_point_is_identical_for_any_tiles_and_workers(scene):
    ref_cov, ref = _busy_on_stage(scene, DEFAULT_BLOCK, 1)
    n_land = scene[2].n_land
    cases = [(DEFAULT_BLOCK // 4, 1), (DEFAULT_BLOCK * 4, 1), (DEFAULT_BLOCK, 2), (max(n_land // 7, 1), 2),
             (max(n_land // 5, 1), 1)]
    assert n_land // 7 < n_land   # the small tiles really split the grid
    for bs, w in cases:
        cov, busy = _busy_on_stage(scene, bs, w)
        assert busy.layer_summary == ref.layer_summary, (bs, w)
        for lid, bh in ref.layers.items():
            other = busy.layers[lid]
            np.testing.assert_array_equal(other.fixed_point.implied_load, bh.fixed_point.implied_load)
            np.testing.assert_array_equal(other.fixed_point.load, bh.fixed_point.load)
            for name in ("rate_indoor_bps", "rate_outdoor_bps", "throughput_indoor_bps", "throughput_outdoor_bps"):
                np.testing.assert_array_equal(getattr(other, name), getattr(bh, name), err_msg=f"{lid} {name}")
            np.testing.assert_array_equal(cov[lid].rate_indoor_bps, ref_cov[lid].rate_indoor_bps)
        for ran in ref.rate_by_ran:
            np.testing.assert_array_equal(busy.rate_by_ran[ran], ref.rate_by_ran[ran])
            np.testing.assert_array_equal(busy.outdoor_rate_by_ran[ran], ref.outdoor_rate_by_ran[ran])
        assert busy.cells.equals(ref.cells), (bs, w)
    # not vacuous: cells carry load, some saturate
    assert any(bh.fixed_point.implied_load.max() > 0.1 for bh in ref.layers.values())


def test_incremental_fixed_point_has_the_bits_of_whole_evaluations(scene, monkeypatch, caplog):
    """The fixed point whose iterations re-evaluate only the pixels with a changed interferer gives the loads,
    iterations, rates and cell table of one evaluating every pixel every iteration, for tiles of 1/4, 1 and 4
    times the default and a seventh of the land, with 1 and 2 workers."""
    whole = functools.partial(busyload.TileLoad, incremental=False)
    with monkeypatch.context() as mp:
        mp.setattr(busyload, "TileLoad", whole)
        ref_cov, ref = _busy_on_stage(scene, DEFAULT_BLOCK, 1)
    n_land = scene[2].n_land
    caplog.set_level(logging.DEBUG, logger="gigacity.busyhour")
    for bs, w in ((DEFAULT_BLOCK // 4, 2), (DEFAULT_BLOCK, 1), (DEFAULT_BLOCK * 4, 1), (max(n_land // 7, 1), 2)):
        caplog.clear()
        cov, busy = _busy_on_stage(scene, bs, w)
        assert busy.layer_summary == ref.layer_summary, (bs, w)
        for lid, bh in ref.layers.items():
            other = busy.layers[lid]
            assert other.fixed_point.iterations == bh.fixed_point.iterations
            np.testing.assert_array_equal(other.fixed_point.implied_load, bh.fixed_point.implied_load)
            np.testing.assert_array_equal(other.fixed_point.load, bh.fixed_point.load)
            np.testing.assert_array_equal(other.fixed_point.change_history, bh.fixed_point.change_history)
            for name in ("rate_indoor_bps", "rate_outdoor_bps", "throughput_indoor_bps", "throughput_outdoor_bps"):
                np.testing.assert_array_equal(getattr(other, name), getattr(bh, name), err_msg=f"{lid} {name}")
        assert busy.cells.equals(ref.cells), (bs, w)
        # not vacuous: the first iteration (zero load) came with the states, later ones re-evaluated part
        shares = [float(r.getMessage().rsplit(",", 1)[1].split("%")[0]) for r in caplog.records
                  if "iteration" in r.getMessage()]
        assert shares and shares[0] == 0.0 and any(0.0 < x < 50.0 for x in shares), shares
    assert max(bh.fixed_point.iterations for bh in ref.layers.values()) > 2


def test_map_reduce_agrees_with_the_whole_grid_reference(scene):
    sc, districts, rasters, sites, sectors = scene
    cov, busy = _busy_on_stage(scene, DEFAULT_BLOCK // 4, 1)
    tr = sc.traffic
    codes = list(districts["code"])
    share = mobile_share_by_ran(sc)
    fiveg = R.fiveg_user_share_by_district(sc, codes)[rasters.district_land.astype(np.int64)]
    whole = compute_layers(sc, rasters, sectors, StageTimer(), workers=1)   # whole-grid InterferenceTerms
    for ran in sc.ran_ids:
        lids = [(lid, c) for lid, op, c in sc.layers() if op.id == ran]
        users = T.users_per_pixel(rasters.population_land, share[ran], fiveg, tr.busy_hour_active_share,
                                  tr.mobile_penetration)
        masks = T.users_layer_masks([whole[lid].rate_indoor_bps for lid, _ in lids])
        assign = dict(zip([lid for lid, _ in lids], masks))
        for lid, carrier in lids:
            ref = T.busy_hour_layer(
                busyload.rates_for_load(whole[lid], R.layer_radio(sc, lid, carrier), sc.radio.default_load),
                whole[lid].best_sector, np.where(assign[lid], users, 0.0), tr.flows_per_active_user_per_h,
                tr.mean_flow_mb * 8e6, sectors[lid].n_sectors, indoor_share=sc.radio.indoor_share,
                tol=tr.fixed_point_tol, max_iter=tr.fixed_point_max_iter, damping=busyhour.BUSY_DAMPING)
            new = busy.layers[lid]
            assert new.fixed_point.iterations == ref.fixed_point.iterations, lid
            np.testing.assert_allclose(new.fixed_point.implied_load, ref.fixed_point.implied_load,
                                       atol=LOAD_ATOL_VS_REFERENCE, rtol=0)
            for name in ("throughput_indoor_bps", "throughput_outdoor_bps", "rate_indoor_bps"):
                a, b = getattr(new, name).astype(np.float64), getattr(ref, name).astype(np.float64)
                assert np.array_equal(np.isnan(a), np.isnan(b)), (lid, name)
                ok = ~np.isnan(a)
                bad = ~np.isclose(a[ok], b[ok], rtol=THROUGHPUT_RTOL_VS_REFERENCE, atol=1.0)
                assert bad.mean() <= MAX_FLIP_SHARE, (lid, name, int(bad.sum()))


def _synthetic(seed=4, n=5000, n_cells=40, m=4, cells_per_tile=None):
    """A random layer (``cov``, ``lam``, ``params``) of ``n`` pixels; with ``cells_per_tile`` the pixels of
    each run of 1000 have their server and interferers among their own ``cells_per_tile`` cells."""
    rng = np.random.default_rng(seed)
    best = rng.integers(-1, n_cells, n).astype(np.int32)
    top = rng.integers(-1, n_cells, (n, m)).astype(np.int32)
    if cells_per_tile is not None:
        base = (np.arange(n) // 1000 * cells_per_tile).astype(np.int32)
        best = np.where(best >= 0, base + best % cells_per_tile, -1).astype(np.int32)
        top = np.where(top >= 0, base[:, None] + top % cells_per_tile, -1).astype(np.int32)
    sig = np.where(best >= 0, 10.0 ** rng.uniform(-12, -6, n), 0.0)
    top_mw = (10.0 ** rng.uniform(-13, -7, (n, m))).astype(np.float32)
    terms = InterferenceTerms(signal_mw=sig, top_sector=top, top_mw=top_mw,
                              residual_mw=10.0 ** rng.uniform(-13, -9, n), noise_mw=1e-10)
    nan = np.full(n, np.nan, np.float32)
    cov = types.SimpleNamespace(interference=terms, best_sector=best, layer_id="x", rsrp_dbm=nan, sinr_db=nan,
                                se_bps_hz=nan, rate_outdoor_bps=nan, rate_indoor_bps=nan, rsrp_indoor_dbm=nan,
                                sinr_indoor_db=nan, los_prob_serving=rng.uniform(0, 1, n).astype(np.float32))
    radio = LayerRadio("n78", fc_ghz=3.5, bw_hz=100e6, scs_khz=30, noise_figure_db=9.0, max_layers=4, min_load=0.05)
    lam = rng.uniform(0, 0.05, n) * (rng.uniform(0, 1, n) < 0.8)
    params = busyload.layer_params(radio, 0.5, 0.8, 4e8, terms.noise_mw)
    return cov, lam, params, rng


def test_offered_load_reduction_is_exact_whatever_the_tiles():
    """The integer reduction gives bitwise the same loads for any split, within one quantum per pixel
    of the float64 sum."""
    n, n_cells = 5000, 40
    cov, lam, params, rng = _synthetic(4, n, n_cells)
    best = cov.best_sector
    load = rng.uniform(0, 1, n_cells)
    got = []
    for bs in (n, 1000, 333, 64):
        with LocalEngine(2 if bs == 333 else 1).stage({}) as st:
            tl = busyload.TileLoad(st, *busyload.tile_sources(cov, bs), lam, n_cells, params)
            got.append((tl.offered_load(load), tl.rates(load)))
    for rho, (r_in, r_out) in got[1:]:
        np.testing.assert_array_equal(rho, got[0][0])
        np.testing.assert_array_equal(r_in, got[0][1][0])
        np.testing.assert_array_equal(r_out, got[0][1][1])
    r_in, r_out = got[0][1]
    peak = T.mixed_peak_rate_bps(r_in, r_out, 0.8)
    exact = T.cell_load(best, peak, lam, 4e8, n_cells)
    np.testing.assert_allclose(got[0][0], exact, rtol=1e-12, atol=n * FIXED_POINT_QUANTUM)
    assert got[0][0].max() > 0.1


def _load_sequence(rng, n_cells, steps=8):
    """Cell loads as a fixed point visits them: a few cells change per step (some back to an earlier value),
    then all of them, then none."""
    seq = [rng.uniform(0, 1, n_cells)]
    for k in range(steps):
        nxt = seq[-1].copy()
        pick = rng.choice(n_cells, size=1 + k % 3, replace=False)
        nxt[pick] = rng.uniform(0, 1, pick.size) if k % 4 else seq[0][pick]
        seq.append(nxt)
    seq.append(rng.uniform(0, 1, n_cells))
    seq.append(seq[-1].copy())
    return seq


def test_incremental_offered_load_has_the_bits_of_whole_evaluations():
    """Each call of the incremental :meth:`TileLoad.offered_load` (only pixels with a changed interferer
    re-evaluated; at zero load the integers the states came with) equals a whole evaluation bit for bit, for
    any tiles and workers; then the rates too."""
    n, n_cells = 5000, 40
    cov, lam, params, rng = _synthetic(7, n, n_cells)
    seq = [np.zeros(n_cells)] + _load_sequence(rng, n_cells)      # from zero load, as a fixed point starts
    with LocalEngine(1).stage({}) as st:
        full = busyload.TileLoad(st, *busyload.tile_sources(cov, 1000), lam, n_cells, params, incremental=False)
        ref = [full.offered_load(x) for x in seq]
        ref_rates = full.rates(seq[-1])
    assert all(p[2] == p[3] for p in full.passes)        # the reference evaluates every pixel every time
    for bs, w in ((n, 1), (1000, 1), (333, 2), (64, 1), (64, 2)):
        with LocalEngine(w).stage({}) as st:
            tl = busyload.TileLoad(st, *busyload.tile_sources(cov, bs), lam, n_cells, params)
            for k, x in enumerate(seq):
                np.testing.assert_array_equal(tl.offered_load(x), ref[k], err_msg=f"block {bs}, workers {w}, call {k}")
            r_in, r_out = tl.rates(seq[-1])
        np.testing.assert_array_equal(r_in, ref_rates[0])
        np.testing.assert_array_equal(r_out, ref_rates[1])
        # not vacuous: some calls re-evaluated part of the pixels (deltas), the last (no change) none
        assert any(0 < p[2] < p[3] for p in tl.passes), (bs, tl.passes)
        assert tl.passes[-1][:3] == tl.passes[0][:3] == (0, len(tl.states), 0)   # zero load: from the states
    assert len(set(np.concatenate(ref).tolist())) > n_cells   # the loads did change between calls


def test_a_tile_update_re_evaluates_only_the_pixels_with_a_changed_interferer():
    """:func:`busyload.tile_offered_load` with ``prev``: one cell's activity changed, the pixels it interferes at
    (fewer than :data:`busyload.DELTA_MAX_SHARE` of the tile's) are re-evaluated, and the integers are those of a
    whole evaluation; with more changed, the tile is evaluated whole."""
    n, n_cells = 5000, 40
    cov, lam, params, rng = _synthetic(9, n, n_cells)
    (src,), _ = busyload.tile_sources(cov, n)
    params = dict(params, n_cells=n_cells)
    st = busyload.tile_state(None, src, lam, params)
    u = st["uniq"]
    old = np.append(rng.uniform(0.05, 1.0, u.size).astype(np.float32), np.float32(0.0))   # + the pad slot
    hi, lo, n_old = busyload.tile_offered_load(None, st, old, params)
    assert n_old == st["n_active"] > 0
    for k in (1, 25):
        new = old.copy()
        new[rng.choice(u.size, k, replace=False)] = np.float32(0.999)   # never the pad slot (index u.size)
        whole = busyload.tile_offered_load(None, st, new, params)
        upd = busyload.tile_offered_load(None, st, new, params, (old, hi, lo))
        np.testing.assert_array_equal(upd[0], whole[0])
        np.testing.assert_array_equal(upd[1], whole[1])
        if k == 1:
            assert 0 < upd[2] <= busyload.DELTA_MAX_SHARE * n_old       # a delta of part of the pixels
        else:
            assert upd[2] == n_old                                       # too many changed: whole
    assert busyload.tile_offered_load(None, st, old, params, (old, hi, lo))[2] == 0


class _CountingStage:
    """An engine stage that counts the tasks of each function it maps."""

    def __init__(self, stage):
        self.stage, self.tasks = stage, {}

    def map(self, fn, args_list, **kw):
        args_list = list(args_list)
        self.tasks[fn.__name__] = self.tasks.get(fn.__name__, 0) + len(args_list)
        return self.stage.map(fn, args_list, **kw)

    def release(self, kept):
        self.stage.release(kept)


def test_a_tile_without_a_changed_interferer_gets_no_task():
    """Tiles of 1000 pixels, each with its own 8 cells: a change of one cell's load submits one task."""
    n, n_cells = 5000, 40
    cov, lam, params, rng = _synthetic(5, n, n_cells, cells_per_tile=8)
    load = rng.uniform(0, 1, n_cells)
    with LocalEngine(1).stage({}) as st:
        full = busyload.TileLoad(st, *busyload.tile_sources(cov, 1000), lam, n_cells, params, incremental=False)
        cst = _CountingStage(st)
        tl = busyload.TileLoad(cst, *busyload.tile_sources(cov, 1000), lam, n_cells, params)
        np.testing.assert_array_equal(tl.offered_load(load), full.offered_load(load))
        assert cst.tasks["tile_offered_load"] == 5
        np.testing.assert_array_equal(tl.offered_load(load), full.offered_load(load))
        assert cst.tasks["tile_offered_load"] == 5                 # nothing changed: no task
        for c in (3, 17):                                            # in tile 0, then tile 2
            load = load.copy()
            load[c] = 1.0 - load[c]
            np.testing.assert_array_equal(tl.offered_load(load), full.offered_load(load))
        assert cst.tasks["tile_offered_load"] == 7                  # one task per change
        assert [p[0] for p in tl.passes] == [5, 0, 1, 1]
        # one task per tile built its state and what the parent needs of it: the states were not read twice
        assert cst.tasks["tile_state_and_sectors"] == 5 and "tile_sectors" not in cst.tasks
        assert 0 < tl.passes[-1][2] < tl.passes[-1][3]


def _adaptive_radio():
    # a 4 Rx device with rank adaptation and the 27.9 dB ceiling (configs/shanghai-2021.toml): receive
    # combining (N_rx - L + 1 = 4 for rank 1, 6 dB) gives CQI 1 at a geometric SINR 6 dB below the CQI-1
    # threshold, where the one-layer CQI-1 rate of lowest_rate_bps is not yet reached
    return LayerRadio("n78", fc_ghz=3.5, bw_hz=100e6, scs_khz=30, noise_figure_db=9.0, max_layers=4,
                      sinr_max_db=28.0, rank_model="adaptive", min_load=0.05, overhead=0.25, dl_share=0.643)


def test_floor_is_the_lower_of_the_zero_load_rate_and_the_cqi1_rate():
    radio = _adaptive_radio()
    lowest = busyload.lowest_rate_bps(radio)
    # TS 38.214 Table 5.2.2.1-3 CQI 1 (QPSK 78/1024) at its Shannon-fit threshold: one layer, no ceiling
    assert lowest == pytest.approx(float(linkfield.layer_rate_bps(np.float64(linkmodel.CQI_SINR_THRESHOLDS_DB[0]),
                                                                  dataclasses.replace(radio, sinr_max_db=0.0))))
    sinr = np.arange(-12.0, 0.0, 0.05)
    r = linkfield.layer_rate_bps(sinr, radio)
    low = (r > 0) & (r < lowest)
    assert low.any()      # served classes below the one-layer CQI-1 rate exist (about 8 vs 19 Mbit/s here)
    # pixels alone with one interferer: SINR at zero load (interferer at min_load) = sinr
    n = sinr.size
    noise = 1e-10
    s_mw = noise * 10.0 ** (sinr / 10.0) * 1.0001
    terms = InterferenceTerms(signal_mw=s_mw, top_sector=np.ones((n, 1), np.int32),
                              top_mw=np.full((n, 1), 1e-7, np.float32), residual_mw=np.zeros(n), noise_mw=noise)
    cov = types.SimpleNamespace(interference=terms, load=np.full(2, 0.5), los_prob_serving=None,
                                rsrp_dbm=np.zeros(n, np.float32), rsrp_indoor_dbm=np.zeros(n, np.float32))
    rates = busyload.rates_for_load(cov, dataclasses.replace(radio, min_load=0.0), 0.5)
    r0_in, r0_out = rates(np.zeros(2))
    r1_in, r1_out = rates(np.ones(2))       # the interferer at full load drowns every pixel
    served = r0_out > 0
    assert served.any() and not np.any(r0_out[~served])
    floor = np.where(served, np.minimum(r0_out, np.float32(lowest)), 0)
    np.testing.assert_array_equal(r1_out, floor)                      # lifted to its floor, no further
    assert np.all(r1_out <= r0_out) and np.any((r1_out < lowest) & served)   # the old floor would lift these
    mid_in, mid_out = rates(np.full(2, 0.3))
    assert np.all((floor <= mid_out) & (mid_out <= r0_out))           # monotone between floor and zero load


@pytest.mark.slow
def test_run_indicators_are_identical_for_any_tiles_and_workers():
    """The whole simulation (coverage, busy hour, indicators) of configs/tiny.toml: the same summary figures
    and busy-hour rasters with tiles of a seventh of the land and 2 workers as with the default."""
    from sim.app.run import simulate

    sc = _scenario()
    ref = simulate(sc, workers=1)
    small = dataclasses.replace(sc, radio=dataclasses.replace(sc.radio, block_size=ref.inputs.rasters.n_land // 7))
    other = simulate(small, workers=2)
    assert other.citywide == ref.citywide
    assert other.indicators.equals(ref.indicators)
    names = [n for n in ref.raster_names() if "busy" in n]
    assert names
    for name in names:
        np.testing.assert_array_equal(other.raster(name), ref.raster(name), err_msg=name)
    assert other.busy.cells.equals(ref.busy.cells)


def test_cell_sums_have_the_bits_of_whole_array_sums(scene):
    """A layer's per-cell sums are built as the last pass's tiles arrive (any order, in land order once their
    turn comes): the bits of one ``np.bincount`` over the whole arrays, for small tiles on two workers."""
    sc, n_land = scene[0], scene[2].n_land
    _, busy = _busy_on_stage(scene, max(n_land // 7, 1), 2)
    for lid, bh in busy.layers.items():
        serving = np.asarray(bh.fixed_point.serving_cell)
        has = serving >= 0
        n = bh.fixed_point.load.size
        users = busy.store.read(f"{lid}/users")
        served = T.served_arrival_rate_per_s(bh.arrival_rate_per_s, bh.rate_indoor_bps, bh.rate_outdoor_bps,
                                             sc.radio.indoor_share)
        np.testing.assert_array_equal(bh.cell_users, np.bincount(serving[has], weights=users[has], minlength=n))
        np.testing.assert_array_equal(bh.cell_arrival_rate_per_s,
                                      np.bincount(serving[has], weights=served[has], minlength=n))
        assert bh.cell_users.max() > 0 and np.count_nonzero(bh.cell_arrival_rate_per_s) > 1
