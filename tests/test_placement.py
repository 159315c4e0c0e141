"""Tests of sim.placement: district weights, largest-remainder counts, density placement, small cells."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from sim.errors import InputError
from sim.placement import (
    allocate_counts,
    build_small_cells,
    district_weights,
    hex_lattice,
    place_by_density,
)
from sim.sites import CarrierSpec

SPACING_TOL_FRAC = 0.15
"""How far the final lattice spacing may sit from the area estimate sqrt(2A/(sqrt3 n))."""

HUANGPU, XUHUI, PUDONG = 0, 1, 10


# --------------------------------------------------------------------------------------
# allocate_counts, district_weights
# --------------------------------------------------------------------------------------


def test_allocate_counts_largest_remainder_hand_example():
    # hand evaluation: quotas 3.5, 2.1, 1.4 -> floors 3, 2, 1 (6); the 7th to the largest remainder (0.5)
    assert allocate_counts(7, [0.5, 0.3, 0.2]).tolist() == [4, 2, 1]
    # ties go to the lower index: quotas 10/3 each -> 3, 3, 3 plus one to index 0
    assert allocate_counts(10, [1, 1, 1]).tolist() == [4, 3, 3]
    assert allocate_counts(0, [1, 2]).tolist() == [0, 0]
    assert allocate_counts(5, [0, 1]).dtype == np.int64


@given(total=st.integers(0, 10**6),
       weights=st.lists(st.floats(0.0, 1e6, allow_nan=False), min_size=1, max_size=20).filter(lambda w: sum(w) > 0))
def test_allocate_counts_property(total, weights):
    counts = allocate_counts(total, weights)
    quota = total * np.asarray(weights) / np.sum(weights)
    assert counts.sum() == total and np.all(counts >= 0) and np.all(np.abs(counts - quota) < 1.0 + 1e-9)


@pytest.mark.parametrize("total", [1, 999, 100_000])
@pytest.mark.parametrize("rule", ["population", "area", "blend"])
def test_allocate_counts_exact_total(districts, total, rule):
    counts = allocate_counts(total, district_weights(districts, rule))
    assert counts.sum() == total and counts.shape == (16,) and counts.min() >= 0
    quota = total * district_weights(districts, rule)
    assert np.all(np.abs(counts - quota) < 1.0)     # Hamilton: each count within 1 of its quota


def test_district_weights_blend_is_the_weighted_sum(districts):
    pop = districts["population"].to_numpy(float)
    area = districts["area_km2_official"].to_numpy(float)
    w = district_weights(districts, "blend", population_weight=0.7)
    np.testing.assert_allclose(w, 0.7 * pop / pop.sum() + 0.3 * area / area.sum(), rtol=1e-12)
    # Pudong: 5,681,512 of 24,870,895 residents (census table) -> 22.84 %
    assert district_weights(districts, "population")[PUDONG] == pytest.approx(5_681_512 / 24_870_895, rel=1e-9)


@pytest.mark.parametrize(("total", "weights", "match"), [
    (-1, [1.0], "total: expected an integer >= 0, got -1"),
    (2.5, [1.0], "total: expected an integer >= 0, got 2.5"),
    (3, [0.0, 0.0], "weights: expected finite weights >= 0 with a positive sum"),
    (3, [1.0, -1.0], "weights: expected finite weights"),
    (3, [1.0, np.nan], "weights: expected finite weights"),
])
def test_allocate_counts_errors(total, weights, match):
    with pytest.raises(InputError, match=match):
        allocate_counts(total, weights)


def test_district_weights_unknown_rule(districts):
    with pytest.raises(InputError, match="rule: expected 'population', 'area' or 'blend', got 'people'"):
        district_weights(districts, "people")


# --------------------------------------------------------------------------------------
# place_by_density
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def placement(districts):
    counts = allocate_counts(3000, district_weights(districts, "population"))
    return counts, place_by_density(districts, counts, np.random.default_rng(7), jitter_frac=0.25)


def test_density_counts_per_district_are_exact(placement):
    counts, p = placement
    assert np.bincount(p.district_idx, minlength=16).tolist() == counts.tolist()
    assert p.x_m.dtype == np.float64 and p.district_idx.dtype == np.int16


def test_density_sites_lie_inside_their_district(districts, placement):
    _, p = placement
    geoms = districts.geometry.values
    inside = np.array([shapely.contains_xy(geoms[d], x, y) for x, y, d in zip(p.x_m, p.y_m, p.district_idx)])
    assert inside.all()


def test_density_nearest_neighbours_respect_jitter_bound(districts, placement):
    # lattice neighbours are s apart and each moves <= jitter * s: NN >= (1 - 2 jitter) s
    counts, p = placement
    jitter = 0.25
    for k in np.flatnonzero(counts > 1):
        m = p.district_idx == k
        pts = np.c_[p.x_m[m], p.y_m[m]]
        nn, _ = cKDTree(pts).query(pts, k=2)
        assert nn[:, 1].min() >= (1 - 2 * jitter) * p.spacing_m[k] * (1 - 1e-9), districts["name_en"].iloc[k]
        area = districts.geometry.values[k].area
        s0 = math.sqrt(2 * area / (math.sqrt(3) * counts[k]))   # hexagonal lattice density 2/(sqrt3 s^2)
        assert abs(p.spacing_m[k] / s0 - 1) < SPACING_TOL_FRAC


def test_density_without_jitter_is_a_hexagonal_lattice(districts):
    counts = np.zeros(16, np.int64)
    counts[PUDONG] = 400
    p = place_by_density(districts, counts, np.random.default_rng(3), jitter_frac=0.0)
    pts = np.c_[p.x_m, p.y_m]
    nn, _ = cKDTree(pts).query(pts, k=2)
    # every lattice neighbour is exactly one spacing away
    np.testing.assert_allclose(nn[:, 1], p.spacing_m[PUDONG], rtol=1e-9)
    assert np.isnan(p.spacing_m[HUANGPU])


def test_density_same_seed_same_sites_other_seed_other_sites(districts):
    counts = allocate_counts(500, district_weights(districts, "area"))
    a = place_by_density(districts, counts, np.random.default_rng(11))
    b = place_by_density(districts, counts, np.random.default_rng(11))
    c = place_by_density(districts, counts, np.random.default_rng(12))
    np.testing.assert_array_equal(a.x_m, b.x_m)
    np.testing.assert_array_equal(a.y_m, b.y_m)
    assert not np.array_equal(a.x_m, c.x_m)


def test_density_too_dense_for_the_grid_names_district_and_count(districts):
    # Huangpu 20.6 km2 with 100,000 sites: s0 = sqrt(2 * 20.6e6 / (sqrt3 * 1e5)) = 15 m < 2 x 25 m
    counts = np.zeros(16, np.int64)
    counts[HUANGPU] = 100_000
    with pytest.raises(InputError, match=r"district 310101 Huangpu: 100000 sites need a lattice spacing of 15 m, "
                                         r"below the minimum spacing 50 m \(2 x grid resolution\); "
                                         r"about 9\d\d\d sites fit"):
        place_by_density(districts, counts, np.random.default_rng(0), grid_res_m=25.0)
    counts[HUANGPU] = 2000      # s0 = 154 m
    with pytest.raises(InputError,
                       match=r"310101 Huangpu: 2000 sites .* below the minimum spacing 200 m \(min_spacing_m\)"):
        place_by_density(districts, counts, np.random.default_rng(0), min_spacing_m=200.0, grid_res_m=25.0)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"jitter_frac": 0.5}, r"jitter_frac: expected a number in \[0, 0.5\), got 0.5"),
    ({"counts_per_district": [1, 2]}, "counts_per_district: expected 16 integers >= 0"),
    ({"counts_per_district": [-1] + [0] * 15}, "counts_per_district: expected 16 integers >= 0"),
    ({"rng": 42}, "rng: expected a numpy.random.Generator, got int"),
])
def test_density_argument_errors(districts, kwargs, match):
    args = {"counts_per_district": np.ones(16, np.int64), "rng": np.random.default_rng(0), "jitter_frac": 0.25}
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        place_by_density(districts, args["counts_per_district"], args["rng"], args["jitter_frac"])


def test_hex_lattice_covers_the_box_with_neighbours_one_spacing_apart():
    bounds, s = (1000.0, 2000.0, 3000.0, 3500.0), 100.0
    x, y = hex_lattice(bounds, s, (0.3, 0.6))
    assert x.dtype == np.float64 and x.shape == y.shape
    assert x.min() < bounds[0] and y.min() < bounds[1] and x.max() > bounds[2] and y.max() > bounds[3]
    nn, _ = cKDTree(np.c_[x, y]).query(np.c_[x, y], k=7)
    np.testing.assert_allclose(nn[:, 1], s, rtol=1e-9)                 # nearest neighbour one spacing away
    inner = (x > bounds[0]) & (x < bounds[2]) & (y > bounds[1]) & (y < bounds[3])
    np.testing.assert_allclose(nn[inner, 1:], s, rtol=1e-9)            # six of them inside the box


def test_small_cells_are_umi_in_central_districts_only(districts):
    counts = np.zeros(16, np.int64)
    counts[[HUANGPU, XUHUI]] = [30, 40]
    small = CarrierSpec("cmcc-n41", "n41", ptx_dbm=30.0, g_max_dbi=6.0, hpbw_h_deg=360.0, hpbw_v_deg=30.0, tilt_deg=0.0)
    t = build_small_cells(districts, counts, np.random.default_rng(1), ran="cmcc", carriers=[small],
                          site_id_start=5000)
    assert t.n_sites == 70 and t.n_sectors == 70                   # one sector per small cell
    assert set(t.scenario) == {"umi"} and set(t.h_bs_m) == {10.0}   # TR 38.901 Table 7.4.1-1 UMi h_BS 10 m
    assert t.sites_per_district(16).tolist() == counts.tolist() and t.site_id.min() == 5000
