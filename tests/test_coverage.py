"""sim.coverage: neighbour search, blocks, executors and per-sector aggregates."""

import dataclasses

import numpy as np
import pytest
from reference_loop import make_rasters, make_sectors

from sim.busyload import sinr_for_load
from sim.coverage import CoverageWarning, candidate_sectors, compute_coverage, site_index
from sim.errors import InputError
from sim.results import LayerRadio

RADIO = LayerRadio("n78", fc_ghz=3.5, bw_hz=100e6, scs_khz=30, noise_figure_db=9.0, max_layers=4)
MAX_TRUNCATION_P95_DB = 0.5   # K = 32 vs every site, p95 of |delta SINR| (the accuracy bound set for the kernel)
MAX_ERR_FIXED_POINT_DB = 1e-4
PIXEL_FIELDS = ("rsrp_dbm", "best_sector", "sinr_db", "se_bps_hz", "rate_outdoor_bps", "rate_indoor_bps",
                "rsrp_indoor_dbm", "sinr_indoor_db")


def _city(n_rows=40, n_cols=50, res_m=50.0, n_sites=25, seed=0):
    """A grid with a 'river' of water pixels and sites scattered over (and beyond) it."""
    water = np.zeros((n_rows, n_cols), bool)
    water[:, n_cols // 2: n_cols // 2 + 3] = True
    r = make_rasters(n_rows, n_cols, res_m, water=water)
    rng = np.random.default_rng(seed)
    xmin, ymin, xmax, ymax = r.grid.bounds_m
    sec = make_sectors(rng.uniform(xmin - 300, xmax + 300, n_sites), rng.uniform(ymin - 300, ymax + 300, n_sites),
                       rng=rng)
    return r, sec


def _same(a, b):
    for name in PIXEL_FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.sector_pixels, b.sector_pixels)


def test_bitwise_identical_for_block_sizes_and_workers():
    r, sec = _city()
    ref = compute_coverage(r, sec, RADIO, k_sites=8, load=0.6, block_size=100_000, executor="serial")
    for bs in (37, 256):
        _same(compute_coverage(r, sec, RADIO, k_sites=8, load=0.6, block_size=bs, executor="serial"), ref)
    for workers in (1, 2):
        _same(compute_coverage(r, sec, RADIO, k_sites=8, load=0.6, block_size=300, workers=workers,
                               executor="processes"), ref)
    assert ref.rsrp_dbm.shape == (r.n_land,) and np.all(ref.best_sector >= 0)


def test_sampled_los_is_blocking_independent():
    r, sec = _city(n_rows=20, n_cols=20)
    radio = dataclasses.replace(RADIO, los_mode="sampled")
    a = compute_coverage(r, sec, radio, k_sites=6, block_size=1000, executor="serial", seed=5)
    b = compute_coverage(r, sec, radio, k_sites=6, block_size=23, executor="serial", seed=5)
    c = compute_coverage(r, sec, radio, k_sites=6, block_size=23, executor="serial", seed=6)
    _same(a, b)
    assert not np.array_equal(a.sinr_db, c.sinr_db)


def test_truncation_to_k_sites_is_small():
    # 220 sites over 8 km x 8 km (3.4 sites/km2); K = 32 (default tiles) vs every site.
    r = make_rasters(40, 40, 200.0)
    rng = np.random.default_rng(11)
    xmin, ymin, xmax, ymax = r.grid.bounds_m
    sec = make_sectors(rng.uniform(xmin, xmax, 220), rng.uniform(ymin, ymax, 220), rng=rng)
    k32 = compute_coverage(r, sec, RADIO, k_sites=32, load=0.5, executor="serial")
    full = compute_coverage(r, sec, RADIO, k_sites=220, load=0.5, executor="serial")
    delta = np.abs(k32.sinr_db - full.sinr_db)
    assert np.percentile(delta, 95) <= MAX_TRUNCATION_P95_DB
    assert np.all(k32.sinr_db >= full.sinr_db - 1e-4)  # fewer interferers never lower SINR at equal server
    assert np.mean(k32.best_sector == full.best_sector) > 0.99


def test_tiles_share_the_nearest_sites_of_their_centre():
    r, sec = _city()
    idx = site_index(sec, 5)
    flat = r.land_flat
    per_pixel = idx.tile_candidates(r.grid, flat, 1)
    np.testing.assert_array_equal(per_pixel, candidate_sectors(*r.grid.centres_m(flat), sec, 5))
    tiled = idx.tile_candidates(r.grid, flat, 4)
    # a pixel's list does not depend on the other pixels asked with it
    np.testing.assert_array_equal(idx.tile_candidates(r.grid, flat[101:377], 4), tiled[101:377])
    rows, cols = np.divmod(flat, r.grid.shape[1])
    same_tile = (rows // 4 == rows[0] // 4) & (cols // 4 == cols[0] // 4)
    assert same_tile.sum() == 16 and np.all(tiled[same_tile] == tiled[0])


def test_coarse_grids_still_share_tiles_of_two_by_two_pixels():
    # at 100 m the 100 m default tile would be one pixel (a per-pixel search); it is 2 x 2 instead
    r, sec = _city(res_m=100.0)
    default = compute_coverage(r, sec, RADIO, k_sites=5, load=0.5, executor="serial")
    two = compute_coverage(r, sec, RADIO, k_sites=5, load=0.5, executor="serial", tile_m=200.0)
    per_pixel = compute_coverage(r, sec, RADIO, k_sites=5, load=0.5, executor="serial", tile_m=0)
    _same(default, two)
    assert not np.array_equal(default.sinr_db, per_pixel.sinr_db)


def test_candidates_are_the_k_nearest_sites_with_all_their_sectors():
    r, sec = _city(n_sites=30)
    x, y = r.grid.centres_m(r.land_flat[:200])
    cand = candidate_sectors(x, y, sec, 4)
    assert cand.shape == (200, 4, 3) and cand.dtype == np.int32
    sx, sy = sec.x_m[::3], sec.y_m[::3]
    for i in range(0, 200, 17):
        d = np.hypot(sx - x[i], sy - y[i])
        assert set(sec.site_id[cand[i, :, 0]]) == set(np.argsort(d)[:4])
        for j in range(4):  # a group is one site, sectors ascending
            assert len(set(sec.site_id[cand[i, j]])) == 1 and list(cand[i, j]) == sorted(cand[i, j])


def test_mixed_sector_counts_are_padded():
    a = make_sectors([0.0], [0.0], n_sectors=1)
    b = make_sectors([800.0], [0.0], n_sectors=3, site_id0=1)
    sec = type(a)(**{f: np.concatenate([getattr(a, f), getattr(b, f)]) for f in a.__dataclass_fields__})
    idx = site_index(sec, 2)
    assert idx.site_sectors.tolist() == [[0, -1, -1], [1, 2, 3]]


def test_k_larger_than_sites_warns_and_clips():
    r, sec = _city(n_rows=10, n_cols=10, n_sites=3)
    with pytest.warns(CoverageWarning, match=r"k_sites = 32 is more than the layer's 3 sites; using 3"):
        out = compute_coverage(r, sec, RADIO, executor="serial")
    assert out.k_sites == 3


def test_zero_sectors_raise():
    r, _ = _city(n_rows=5, n_cols=5)
    with pytest.raises(InputError, match="compute_coverage: sectors: expected at least one sector in the layer, got 0"):
        compute_coverage(r, make_sectors([], []), RADIO, executor="serial")


def test_site_lower_than_ue_raises_from_propagation():
    r, _ = _city(n_rows=5, n_cols=5)
    sec = make_sectors([350_100.0], [3_459_900.0], h_bs_m=1.2)
    with pytest.raises(InputError, match=r"h_bs_m: expected a base station higher than the UE"):
        compute_coverage(r, sec, RADIO, k_sites=1, executor="serial")


@pytest.mark.parametrize("kwargs, match", [
    (dict(executor="dask"), r"executor: expected one of \('processes', 'serial'\), got 'dask'"),
    (dict(block_size=0), r"block_size: expected an integer >= 1, got 0"),
    (dict(workers=-1), r"workers: expected an integer >= 0, got -1"),
    (dict(k_sites=0), r"k_sites: expected an integer >= 1, got 0"),
    (dict(load=np.ones(2)), r"load: expected one load per sector \(75\)"),
])
def test_bad_arguments_raise(kwargs, match):
    r, sec = _city(n_rows=5, n_cols=5)
    with pytest.raises(InputError, match=match):
        compute_coverage(r, sec, RADIO, **{"k_sites": 4, **kwargs})


def test_sectors_of_one_site_must_share_position():
    sec = make_sectors([0.0, 500.0], [0.0, 0.0])
    x = sec.x_m.copy()
    x[1] += 1.0
    with pytest.raises(InputError, match=r"sectors\.x_m: expected the sectors of site 0 to share x_m"):
        site_index(dataclasses.replace(sec, x_m=x))


def test_sites_outside_the_grid_serve_edge_pixels_and_colocated_sites_are_both_candidates():
    r = make_rasters(10, 10, 50.0)
    xmin, ymin, xmax, ymax = r.grid.bounds_m
    inside = make_sectors([xmin + 250.0] * 2, [ymin + 250.0] * 2, n_sectors=1)   # two sites, same spot
    outside = make_sectors([xmax + 60.0], [ymin + 250.0], n_sectors=1, site_id0=2, ptx_dbm=49.0)
    sec = type(inside)(**{f: np.concatenate([getattr(inside, f), getattr(outside, f)])
                          for f in inside.__dataclass_fields__})
    out = compute_coverage(r, sec, dataclasses.replace(RADIO, a_max_db=0.0, sla_v_db=0.0), k_sites=3,
                           executor="serial", tile_m=0)
    cols = r.land_flat % 10
    assert np.all(out.best_sector[cols == 9] == 2)           # the east edge is served from outside
    assert np.all(np.isin(out.best_sector[cols == 0], [0, 1]))
    # the co-located pair: equal power, the earlier candidate (the tree's fixed order) serves
    # every pixel the pair wins, and the twin interferes at full strength
    assert min(out.sector_pixels[:2]) == 0 and max(out.sector_pixels[:2]) > 0
    assert np.all(out.sinr_db[cols == 0] < 0.01)


def test_per_sector_aggregates_and_progress():
    r, sec = _city()
    calls = []
    out = compute_coverage(r, sec, RADIO, k_sites=8, block_size=500, executor="serial",
                           progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (r.n_land, r.n_land) and len(calls) == -(-r.n_land // 500)
    assert out.sector_pixels.sum() == np.sum(out.best_sector >= 0) == r.n_land
    np.testing.assert_allclose(out.sector_area_km2, out.sector_pixels * 0.0025)
    assert out.sector_population.sum() == pytest.approx(r.population_grid().sum())
    assert out.sector_households.sum() == pytest.approx(r.households.sum())
    np.testing.assert_array_equal(out.sector_pixels, np.bincount(out.best_sector, minlength=sec.n_sectors))


def test_top_m_terms_reproduce_sinr():
    r, sec = _city(n_rows=20, n_cols=20)
    load = np.random.default_rng(2).uniform(0, 1, sec.n_sectors)
    out = compute_coverage(r, sec, RADIO, k_sites=6, load=load, top_m=5, block_size=97, executor="serial")
    assert out.interference.top_sector.shape == (r.n_land, 5)
    np.testing.assert_allclose(sinr_for_load(out.interference, load), out.sinr_db, atol=MAX_ERR_FIXED_POINT_DB)
