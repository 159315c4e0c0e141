"""The raster grid of the city and its census rasters.

Conventions (GeoTIFF, "north-up"): row 0 is the northern row; ``(x0_m, y0_m)`` is the
north-west corner; pixel (row ``i``, column ``j``) has its centre at
``x = x0_m + (j + 0.5) res_m``, ``y = y0_m - (i + 0.5) res_m`` in the grid CRS
(EPSG:32651, metres).

Per-pixel results of later layers are *flat* arrays over land pixels (``land_flat``
order: row-major, ascending), which keeps sea and out-of-city pixels out of every
computation; :func:`scatter_to_raster` turns them back into 2-D rasters.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError

__all__ = [
    "Grid",
    "CityRasters",
    "MIN_RES_M",
    "MAX_RES_M",
    "grid_for_bounds",
    "estimate_memory_bytes",
    "estimate_disk_bytes",
    "default_memory_limit_bytes",
    "build_city_rasters",
    "iter_blocks",
    "scatter_to_raster",
]

MIN_RES_M = 10.0
MAX_RES_M = 2000.0

# bytes per pixel of the grid's own rasters: district index int16 + the rasterizer's temporary int16
_GRID_BYTES_PER_PIXEL = 2 + 2
# bytes per land pixel held in memory by a streamed run: the land index int64, population and households
# float64 (CityRasters, land pixels only), one layer's flow arrival rates float64 while its busy-hour
# tiles start, the fibre rasters (gigabit households float64 and their ordering int64)
_LAND_INDEX_BYTES = 8 + 8 + 8 + 8 + 16
# bytes per land pixel and coverage layer of the kernel's outputs (rsrp, sinr, se, two rates, indoor rsrp
# and sinr, LOS probability as float32, best sector int32): in the run's pixel store on disk
_LAYER_BYTES_PER_LAND_PIXEL = 9 * 4
# busy hour: per land pixel and layer, the kernel's interference terms (sim.results.InterferenceTerms:
# signal and residual float64, then per kept interferer an int32 sector and a float32 power): kept by the
# engine (spilled to disk locally) until the layer's busy hour has read them
_TERMS_BYTES_PER_LAND_PIXEL = 16
_TERMS_BYTES_PER_INTERFERER = 8


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid in a metric CRS.

    Parameters
    ----------
    crs : str
        Grid CRS, e.g. ``"EPSG:32651"``.
    x0_m, y0_m : float
        West and north edges (the north-west corner), metres.
    res_m : float
        Pixel size, metres (square pixels).
    shape : tuple of int
        ``(n_rows, n_cols)``.
    """

    crs: str
    x0_m: float
    y0_m: float
    res_m: float
    shape: tuple[int, int]

    @property
    def n_pixels(self) -> int:
        return int(self.shape[0]) * int(self.shape[1])

    @property
    def transform(self):
        """The affine transform (``affine.Affine``) from (col, row) to (x, y)."""
        from affine import Affine

        return Affine(self.res_m, 0.0, self.x0_m, 0.0, -self.res_m, self.y0_m)

    @property
    def bounds_m(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` in metres."""
        return (
            self.x0_m,
            self.y0_m - self.shape[0] * self.res_m,
            self.x0_m + self.shape[1] * self.res_m,
            self.y0_m,
        )

    @property
    def pixel_area_km2(self) -> float:
        return self.res_m * self.res_m / 1e6

    def centres_m(self, flat_idx) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates (float64, metres) of flat row-major indices."""
        flat_idx = np.asarray(flat_idx, dtype=np.int64)
        rows, cols = np.divmod(flat_idx, self.shape[1])
        x_m = self.x0_m + (cols + 0.5) * self.res_m
        y_m = self.y0_m - (rows + 0.5) * self.res_m
        return x_m, y_m

    def flat_index_of(self, x_m, y_m) -> np.ndarray:
        """Flat index of the pixel holding each point; -1 where a point is outside the grid."""
        x_m = np.asarray(x_m, dtype=np.float64)
        y_m = np.asarray(y_m, dtype=np.float64)
        cols = np.floor((x_m - self.x0_m) / self.res_m).astype(np.int64)
        rows = np.floor((self.y0_m - y_m) / self.res_m).astype(np.int64)
        inside = (rows >= 0) & (rows < self.shape[0]) & (cols >= 0) & (cols < self.shape[1])
        return np.where(inside, rows * self.shape[1] + cols, -1)


@dataclass(frozen=True)
class CityRasters:
    """The grid with its district-index, population and household rasters.

    ``population`` and ``households`` are per pixel (persons, homes); their sums over a
    district's pixels equal that district's census totals (to float rounding). Each is either
    a 2-D raster of the grid or, as :func:`build_city_rasters` makes them, flat over the land
    pixels only (``land_flat`` order: 8 bytes a land pixel rather than a grid pixel);
    :attr:`population_land` and :meth:`population_grid` give either form.
    """

    grid: Grid
    district_idx: np.ndarray
    population: np.ndarray
    households: np.ndarray
    land_flat: np.ndarray = field(repr=False)

    @property
    def n_land(self) -> int:
        return int(self.land_flat.size)

    @property
    def district_land(self) -> np.ndarray:
        """District index of each land pixel (int16, ``land_flat`` order)."""
        return self.district_idx.ravel()[self.land_flat]

    @property
    def population_land(self) -> np.ndarray:
        return self.population_at()

    @property
    def households_land(self) -> np.ndarray:
        return self.households_at()

    def _land(self, values, start, stop) -> np.ndarray:
        if values.ndim == 1:
            return values[start:stop]
        return values.ravel()[self.land_flat[start:stop]]

    def population_grid(self) -> np.ndarray:
        """Residents per pixel as a 2-D raster of the grid (0 off land)."""
        return self._grid(self.population)

    def households_grid(self) -> np.ndarray:
        """Households per pixel as a 2-D raster of the grid (0 off land)."""
        return self._grid(self.households)

    def _grid(self, values) -> np.ndarray:
        if values.ndim == 2:
            return values
        out = np.zeros(self.grid.shape, dtype=values.dtype)
        out.ravel()[self.land_flat] = values
        return out

    def district_at(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """:attr:`district_land` of land pixels ``start:stop`` only."""
        return self.district_idx.ravel()[self.land_flat[start:stop]]

    def population_at(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """:attr:`population_land` of land pixels ``start:stop`` only."""
        return self._land(self.population, start, stop)

    def households_at(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """:attr:`households_land` of land pixels ``start:stop`` only."""
        return self._land(self.households, start, stop)

    def land_centres_m(self, start: int = 0, stop: int | None = None):
        """Centres (x_m, y_m) of land pixels ``start:stop``."""
        return self.grid.centres_m(self.land_flat[start:stop])

    def pixels_per_district(self, n_districts: int) -> np.ndarray:
        return np.bincount(self.district_land, minlength=n_districts)


def grid_for_bounds(bounds_m, res_m: float, crs: str) -> Grid:
    """The smallest grid of pixel size ``res_m`` on a ``res_m``-aligned origin covering ``bounds_m``.

    ``bounds_m`` ``(xmin, ymin, xmax, ymax)`` in the metric CRS ``crs`` (the districts' own,
    :data:`sim.geodata.GRID_CRS` for the shipped data).
    """
    xmin, ymin, xmax, ymax = (float(v) for v in bounds_m)
    x0 = math.floor(xmin / res_m) * res_m
    y0 = math.ceil(ymax / res_m) * res_m
    n_cols = max(1, int(math.ceil((xmax - x0) / res_m)))
    n_rows = max(1, int(math.ceil((y0 - ymin) / res_m)))
    return Grid(crs=crs, x0_m=x0, y0_m=y0, res_m=float(res_m), shape=(n_rows, n_cols))


def estimate_memory_bytes(grid: Grid, land_fraction: float = 0.6) -> int:
    """Estimated bytes a run holds in memory for the grid: its rasters and per land pixel what a
    streamed run keeps whole (the layers' per-pixel results live on disk: :func:`estimate_disk_bytes`).

    ``land_fraction`` is the share of the bounding box that is land (Shanghai's
    polygons fill about 49 % of their bounding box; 0.6 leaves a margin).
    """
    n_land = grid.n_pixels * land_fraction
    return int(grid.n_pixels * _GRID_BYTES_PER_PIXEL + n_land * _LAND_INDEX_BYTES)


def estimate_disk_bytes(grid: Grid, land_fraction: float = 0.6, n_layers: int = 1, top_m: int = 0) -> int:
    """Estimated scratch disk of ``n_layers`` coverage layers at most: their per-pixel outputs (the run's
    pixel store) and, with ``top_m`` > 0, each layer's kept tiles with the busy hour's interference terms."""
    n_land = grid.n_pixels * land_fraction
    per_layer = 2 * _LAYER_BYTES_PER_LAND_PIXEL
    if top_m > 0:
        per_layer += _TERMS_BYTES_PER_LAND_PIXEL + int(top_m) * _TERMS_BYTES_PER_INTERFERER
    return int(n_land * n_layers * per_layer)


def _check_res(res_m) -> float:
    try:
        res = float(res_m)
    except (TypeError, ValueError):
        raise InputError("grid", "res_m", f"expected a number of metres, got {res_m!r}") from None
    if not (MIN_RES_M <= res <= MAX_RES_M):
        raise InputError("grid", "res_m", f"expected {MIN_RES_M:g} to {MAX_RES_M:g} m, got {res_m!r}")
    return res


def build_city_rasters(
    districts,
    res_m: float,
    *,
    max_memory_bytes: int | None = None,
) -> CityRasters:
    """Rasterize the districts and spread the census over their pixels.

    Parameters
    ----------
    districts : GeoDataFrame
        From :func:`sim.geodata.read_districts` (EPSG:32651; row = district index),
        with ``population`` and ``households``.
    res_m : float
        Pixel size, 10 m to 2 km.
    max_memory_bytes : int, optional
        Refuse (``InputError`` with the estimate) when the estimated memory of the grid
        (:func:`estimate_memory_bytes`) exceeds this. Default: half the physical memory.

    Notes
    -----
    A pixel belongs to the district that contains its centre (rasterio's default rule).
    A district too small to contain any pixel centre at a coarse resolution gets the
    pixel of its representative point, so no district is lost. Population and
    households are spread uniformly over each district's pixels, so district totals
    are exact whatever the resolution; polygons of coastal districts include tidal
    flats (see ``geodata/SOURCE.md``), which dilutes density there but not totals.
    """
    from rasterio import features

    res = _check_res(res_m)
    grid = grid_for_bounds(districts.total_bounds, res, crs=str(districts.crs.to_string()))
    need = estimate_memory_bytes(grid)
    limit = _default_memory_limit() if max_memory_bytes is None else int(max_memory_bytes)
    if need > limit:
        raise InputError(
            "grid",
            "res_m",
            f"a {res:g} m grid of {grid.shape[0]} x {grid.shape[1]} pixels needs about "
            f"{need / 2**30:.1f} GiB, more than the {limit / 2**30:.1f} GiB allowed; use a coarser resolution",
        )
    shapes = ((geom, int(i)) for i, geom in enumerate(districts.geometry.values))
    district_idx = features.rasterize(
        shapes,
        out_shape=grid.shape,
        transform=grid.transform,
        fill=-1,
        dtype=np.int16,
    )
    n = len(districts)
    flat = district_idx.ravel()
    counts = np.bincount(flat[flat >= 0], minlength=n)
    for i in np.flatnonzero(counts == 0):
        pt = districts.geometry.values[i].representative_point()
        k = int(grid.flat_index_of(pt.x, pt.y))
        flat[k] = i
    land_flat = np.flatnonzero(flat >= 0)
    counts = np.bincount(flat[land_flat], minlength=n)
    pop_per_px = np.asarray(districts["population"], dtype=np.float64) / counts
    hh_per_px = np.asarray(districts["households"], dtype=np.float64) / counts
    d_land = flat[land_flat]
    population = pop_per_px[d_land]       # flat over the land pixels (CityRasters)
    households = hh_per_px[d_land]
    return CityRasters(
        grid=grid,
        district_idx=district_idx,
        population=population,
        households=households,
        land_flat=land_flat,
    )


def default_memory_limit_bytes() -> int:
    """Half the physical memory of this machine (8 GiB assumed where it cannot be read)."""
    return _default_memory_limit()


def _default_memory_limit() -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return int(total // 2)


def iter_blocks(n_items: int, block_size: int):
    """``(start, stop)`` pairs cutting ``range(n_items)`` into blocks of ``block_size``."""
    if block_size < 1:
        raise InputError("grid", "block_size", f"expected a positive integer, got {block_size!r}")
    for start in range(0, int(n_items), int(block_size)):
        yield start, min(start + int(block_size), int(n_items))


def scatter_to_raster(grid: Grid, land_flat, values, fill=np.nan) -> np.ndarray:
    """A 2-D raster with ``values`` (flat, ``land_flat`` order) at land pixels, ``fill`` elsewhere."""
    values = np.asarray(values)
    dtype = np.result_type(values.dtype, np.asarray(fill).dtype)
    out = np.full(grid.shape, fill, dtype=dtype)
    out.ravel()[np.asarray(land_flat)] = values
    return out

