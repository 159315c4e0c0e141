"""The Grid and the census rasters."""

import numpy as np
import pytest

from sim.errors import InputError
from sim.grid import Grid, build_city_rasters, estimate_memory_bytes, grid_for_bounds, iter_blocks, scatter_to_raster

# District totals must survive rasterization "to float rounding": relative 1e-9 of a
# district total is far below one person yet well above float64 summation error.
SUM_REL_TOL = 1e-9


@pytest.mark.parametrize("res_m", [2000.0, 500.0, 100.0])
def test_district_sums_equal_census_at_three_resolutions(districts, res_m):
    r = build_city_rasters(districts, res_m)
    n = len(districts)
    pop = np.bincount(r.district_land, weights=r.population_land, minlength=n)
    hh = np.bincount(r.district_land, weights=r.households_land, minlength=n)
    np.testing.assert_allclose(pop, districts["population"].to_numpy(float), rtol=SUM_REL_TOL)
    np.testing.assert_allclose(hh, districts["households"].to_numpy(float), rtol=SUM_REL_TOL)
    # every district has pixels, outside pixels carry nothing
    assert (r.pixels_per_district(n) > 0).all()
    outside = r.district_idx < 0
    assert r.population_grid()[outside].sum() == 0.0


def test_land_area_close_to_polygon_area(districts):
    r = build_city_rasters(districts, 100.0)
    area = r.n_land * r.grid.pixel_area_km2
    # pixel-centre rasterization of 7,003 km² at 100 m: error of the order of the perimeter x res/2 / 2
    assert area == pytest.approx(districts["area_km2_polygon"].sum(), rel=0.005)


def test_grid_georeference():
    g = Grid("EPSG:32651", 1000.0, 5000.0, 100.0, (3, 4))
    x, y = g.centres_m([0, 5, 11])
    np.testing.assert_array_equal(x, [1050.0, 1150.0, 1350.0])
    np.testing.assert_array_equal(y, [4950.0, 4850.0, 4750.0])
    assert g.transform @ (0, 0) == (1000.0, 5000.0)
    assert g.bounds_m == (1000.0, 4700.0, 1400.0, 5000.0)
    np.testing.assert_array_equal(g.flat_index_of([1050.0, 999.0, 1399.0], [4950.0, 4950.0, 4701.0]), [0, -1, 11])


def test_grid_for_bounds_aligned():
    g = grid_for_bounds((1234.0, 5678.0, 4321.0, 8765.0), 100.0, "EPSG:32651")
    assert g.x0_m == 1200.0 and g.y0_m == 8800.0
    xmin, ymin, xmax, ymax = g.bounds_m
    assert xmin <= 1234.0 and ymin <= 5678.0 and xmax >= 4321.0 and ymax >= 8765.0


def test_blocks_cover_once():
    blocks = list(iter_blocks(10, 4))
    assert blocks == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(InputError, match="block_size"):
        list(iter_blocks(10, 0))


def test_scatter_round_trip(districts):
    r = build_city_rasters(districts, 2000.0)
    raster = scatter_to_raster(r.grid, r.land_flat, r.population_land, fill=np.nan)
    assert np.isnan(raster[r.district_idx < 0]).all()
    np.testing.assert_array_equal(raster[r.district_idx >= 0], r.population_grid()[r.district_idx >= 0])


@pytest.mark.parametrize("res_m", [0.0, -100.0, 5.0, 5000.0])
def test_bad_resolution(districts, res_m):
    with pytest.raises(InputError, match=r"grid: res_m: expected 10 to 2000 m"):
        build_city_rasters(districts, res_m)


def test_refuses_grid_that_does_not_fit(districts):
    # Shanghai at 10 m: about 144 million pixels -> several GiB; refuse with the estimate
    msg = r"a 10 m grid of \d+ x \d+ pixels needs about \d+\.\d GiB, more than the 1\.0 GiB"
    with pytest.raises(InputError, match=msg):
        build_city_rasters(districts, 10.0, max_memory_bytes=2**30)


def test_shanghai_25m_estimate_under_1gb(districts):
    g = grid_for_bounds(districts.total_bounds, 25.0, districts.crs.to_string())
    # the grid itself (district index) and what a streamed run keeps per land pixel (index, population ...)
    assert estimate_memory_bytes(g) < 2**30


def test_shanghai_10m_fits_half_of_a_24_gib_machine(districts):
    """The layers' per-pixel results are on disk (the run's pixel store), so 10 m needs memory for the grid only."""
    g = grid_for_bounds(districts.total_bounds, 10.0, districts.crs.to_string())
    assert estimate_memory_bytes(g) < 6 * 2**30


def test_disk_estimate_counts_the_busy_hour_interference_terms(districts):
    """Per land pixel and layer: 9 float32/int32 outputs (36 B, in the store and in the kept tiles); with
    top-M terms two float64 (signal, residual) and M (int32 sector, float32 power) pairs: 16 + 8 M bytes more."""
    from sim.grid import estimate_disk_bytes

    g = grid_for_bounds(districts.total_bounds, 25.0, districts.crs.to_string())
    n_land = g.n_pixels * 0.6
    base = estimate_disk_bytes(g, n_layers=3)
    busy = estimate_disk_bytes(g, n_layers=3, top_m=8)
    assert busy - base == pytest.approx(n_land * 3 * (16 + 8 * 8), abs=2)
