"""Density placement: sites laid out by district weights on a jittered hexagonal lattice.

:func:`district_weights` weighs the districts (population, area or a blend),
:func:`allocate_counts` splits a total over them (largest remainder), and
:func:`place_by_density` lays a jittered hexagonal lattice (:func:`hex_lattice`) per
district with exactly that many points inside the district polygon
(:class:`DensityPlacement`, turned into :class:`sim.sites.PhysicalSites` by
:meth:`DensityPlacement.to_sites`). :func:`build_small_cells` places UMi small cells the
same way and builds their sector-carrier table.

Positions are in the grid CRS (:data:`sim.geodata.GRID_CRS`), metres. Randomness comes
only from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .geodata import GRID_CRS
from .sites import CarrierSpec, PhysicalSites, SiteClass, SiteTable, build_site_table

__all__ = [
    "DensityPlacement",
    "district_weights",
    "allocate_counts",
    "hex_lattice",
    "place_by_density",
    "build_small_cells",
]


def district_weights(districts_gdf, rule: str, *, population_weight: float = 0.7) -> np.ndarray:
    """Weights of the districts for splitting a site total, float64 ``[n_districts]``.

    Parameters
    ----------
    districts_gdf : GeoDataFrame
        ``read_districts`` output (``population``, ``area_km2_official``; the polygon
        area where there is no official area).
    rule : {"population", "area", "blend"}
        ``blend``: ``w * pop_share + (1 - w) * area_share`` with ``w = population_weight``.
    """
    pop = np.asarray(districts_gdf["population"], dtype=float)
    if "area_km2_official" in districts_gdf.columns:
        area = np.asarray(districts_gdf["area_km2_official"], dtype=float)
    else:
        area = np.asarray(districts_gdf.geometry.area, dtype=float) / 1e6
    if rule == "population":
        return pop / pop.sum()
    if rule == "area":
        return area / area.sum()
    if rule == "blend":
        if not 0.0 <= population_weight <= 1.0:
            raise InputError("district_weights", "population_weight",
                             f"expected a number in [0, 1], got {population_weight!r}")
        return population_weight * pop / pop.sum() + (1.0 - population_weight) * area / area.sum()
    raise InputError("district_weights", "rule", f"expected 'population', 'area' or 'blend', got {rule!r}")


def allocate_counts(total: int, weights) -> np.ndarray:
    """Split ``total`` items over ``weights`` by the largest-remainder (Hamilton) method.

    Parameters
    ----------
    total : int
        Items to allocate, >= 0.
    weights : array_like [n]
        Non-negative, finite, with a positive sum (need not be normalised); e.g.
        :func:`district_weights` or explicit per-district shares.

    Returns
    -------
    counts : ndarray [n], int64
        ``floor(total * w_i / sum w)`` plus one for the districts with the largest
        remainders until the sum is exactly ``total`` (ties to the lower index).
    """
    if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < 0:
        raise InputError("allocate_counts", "total", f"expected an integer >= 0, got {total!r}")
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or w.size == 0:
        raise InputError("allocate_counts", "weights", f"expected a 1-D array of weights, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise InputError("allocate_counts", "weights", "expected finite weights >= 0 with a positive sum")
    quota = int(total) * w / w.sum()
    counts = np.floor(quota).astype(np.int64)
    short = int(total) - int(counts.sum())
    if short > 0:
        order = np.argsort(-(quota - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


@dataclass(frozen=True, eq=False)
class DensityPlacement:
    """Sites laid out by :func:`place_by_density`.

    Attributes
    ----------
    x_m, y_m : float64 [n]
        Positions, EPSG:32651, grouped by district in district order.
    district_idx : int16 [n]
    spacing_m : float64 [n_districts]
        Lattice spacing (distance between lattice neighbours) per district; NaN where the
        count is 0.
    """

    x_m: np.ndarray
    y_m: np.ndarray
    district_idx: np.ndarray
    spacing_m: np.ndarray

    def to_sites(self, source: str = "density", crs: str = GRID_CRS) -> PhysicalSites:
        """As :class:`PhysicalSites` (WGS84 positions computed from the grid ``crs``, nothing else given)."""
        return PhysicalSites.from_xy(self.x_m, self.y_m, self.district_idx, source, crs)


_SQRT3 = math.sqrt(3.0)


def hex_lattice(bounds, s: float, offset) -> tuple[np.ndarray, np.ndarray]:
    """Points of a hexagonal lattice with spacing ``s`` covering ``bounds`` (rows along x).

    Parameters
    ----------
    bounds : (xmin, ymin, xmax, ymax)
        Box to cover, m (the lattice runs about one row and column past it on every side).
    s : float
        Distance between lattice neighbours, m; rows are ``s * sqrt(3) / 2`` apart and every
        other row is shifted by ``s / 2``.
    offset : pair of float
        Shift of the lattice in units of the spacing (x) and the row height (y).

    Returns
    -------
    x, y : ndarray, float64
        The points, row by row.
    """
    xmin, ymin, xmax, ymax = bounds
    h = s * _SQRT3 / 2.0
    nj = int(math.ceil((ymax - ymin) / h)) + 2
    ni = int(math.ceil((xmax - xmin) / s)) + 2
    j = np.arange(-1, nj, dtype=np.float64)
    i = np.arange(-1, ni, dtype=np.float64)
    y = ymin + (j + offset[1]) * h
    x = xmin + (i[None, :] + offset[0] + 0.5 * (np.arange(-1, nj) % 2)[:, None]) * s
    return x.ravel(), np.broadcast_to(y[:, None], x.shape).ravel()


def _district_name(districts_gdf, k: int) -> str:
    parts = [str(districts_gdf[c].iloc[k]) for c in ("code", "name_en") if c in districts_gdf.columns]
    return " ".join(parts) if parts else str(k)


def _lattice_in(geom, bounds, n: int, offset, s0: float):
    """Spacing and lattice points inside ``geom`` with exactly ``n`` points (see place_by_density)."""
    import shapely

    def inside(s):
        x, y = hex_lattice(bounds, s, offset)
        m = shapely.contains_xy(geom, x, y)
        return x[m], y[m]

    lo = hi = None                    # lo: largest spacing with >= n points; hi: smallest with < n
    lo_pts = None
    s = s0
    for _ in range(80):
        x, y = inside(s)
        c = x.size
        if c == n:
            return s, x, y
        if c > n:
            if lo is None or s > lo:
                lo, lo_pts = s, (x, y)
        elif hi is None or s < hi:
            hi = s
        if lo is not None and hi is not None:
            if hi - lo <= 1e-9 * s0:
                break
            s = 0.5 * (lo + hi)
        elif c == 0:
            s *= 0.5
        else:
            s *= math.sqrt(c / n) * (1.02 if c > n else 0.98)
    if lo is None:                     # never reached n points (cannot happen for n >= 1 and a polygon)
        raise InputError("place_by_density", "counts_per_district", f"could not fit {n} lattice points")
    x, y = lo_pts
    # more than n at the largest spacing found: drop the points nearest the boundary
    dist = shapely.distance(shapely.boundary(geom), shapely.points(x, y))
    keep = np.sort(np.argsort(-dist, kind="stable")[:n])
    return lo, x[keep], y[keep]


def _concat(parts, dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def place_by_density(districts_gdf, counts_per_district, rng: np.random.Generator, jitter_frac: float = 0.25, *,
                     min_spacing_m: float = 0.0, grid_res_m: float | None = None) -> DensityPlacement:
    """Lay out sites per district on a jittered hexagonal lattice, exact count per district.

    Parameters
    ----------
    districts_gdf : GeoDataFrame
        District polygons in EPSG:32651 (``read_districts``); row = district index.
    counts_per_district : array_like [n_districts] of int
        Sites per district (e.g. :func:`allocate_counts`).
    rng : numpy.random.Generator
        Lattice offsets and jitter; the same seed gives the same sites.
    jitter_frac : float
        Each site moves from its lattice point by a uniform draw in a disc of radius
        ``jitter_frac * spacing``, in [0, 0.5).
    min_spacing_m : float
        Smallest lattice spacing allowed (e.g. a minimum inter-site distance).
    grid_res_m : float, optional
        Raster resolution; the spacing must also be at least ``2 * grid_res_m``.

    Returns
    -------
    DensityPlacement

    Raises
    ------
    InputError
        A count that needs a spacing below ``max(min_spacing_m, 2 * grid_res_m)``, naming
        the district, the count and about how many sites fit; bad counts or jitter.

    Notes
    -----
    A hexagonal lattice of spacing ``s`` has ``2 / (sqrt(3) s^2)`` points per unit area,
    so ``n`` points in a district of area ``A`` start from ``s0 = sqrt(2 A / (sqrt(3) n))``.
    The lattice (rows along x, a random offset per district, drawn once) is then
    rescaled: secant steps ``s <- s sqrt(c / n)`` on the count ``c`` of points inside
    the polygon (:func:`shapely.contains_xy`) until ``n`` is bracketed, then bisection
    on ``s``. Most districts reach ``c = n`` exactly; when the count jumps past ``n``
    (several points cross the boundary at once) the largest spacing with ``c > n`` is
    taken and the ``c - n`` points nearest the boundary are dropped.
    Jitter keeps a site inside its district: a draw that falls outside is re-drawn (up to
    16 times, then the site stays on its lattice point). Lattice neighbours are ``s``
    apart and each moves at most ``jitter_frac * s``, so within a district nearest
    neighbours are at least ``(1 - 2 jitter_frac) s`` apart. Lattices of neighbouring
    districts are independent, so sites across a district border can be closer.
    """
    import shapely

    if not isinstance(rng, np.random.Generator):
        raise InputError("place_by_density", "rng", f"expected a numpy.random.Generator, got {type(rng).__name__}")
    if not 0.0 <= jitter_frac < 0.5:
        raise InputError("place_by_density", "jitter_frac", f"expected a number in [0, 0.5), got {jitter_frac!r}")
    n_d = len(districts_gdf)
    counts = np.asarray(counts_per_district)
    if counts.shape != (n_d,) or (counts.size and (counts.dtype.kind not in "iu" or counts.min() < 0)):
        raise InputError("place_by_density", "counts_per_district",
                         f"expected {n_d} integers >= 0 (one per district), got {counts.tolist()!r}")
    if districts_gdf.crs is None or not districts_gdf.crs.is_projected:
        districts_gdf = districts_gdf.to_crs(GRID_CRS)
    min_s = max(float(min_spacing_m), 2.0 * float(grid_res_m) if grid_res_m else 0.0)
    why = (f"the minimum spacing {min_s:.0f} m ("
           + ("2 x grid resolution" if grid_res_m and 2.0 * grid_res_m >= min_spacing_m else "min_spacing_m") + ")")
    geoms = np.asarray(districts_gdf.geometry.values, dtype=object)
    offsets = rng.random((n_d, 2))
    xs, ys, ds = [], [], []
    spacing = np.full(n_d, np.nan)
    for k in range(n_d):
        n = int(counts[k])
        if n == 0:
            continue
        g = geoms[k]
        shapely.prepare(g)
        area = float(shapely.area(g))
        s0 = math.sqrt(2.0 * area / (_SQRT3 * n))
        n_fit = int(2.0 * area / (_SQRT3 * min_s ** 2)) if min_s > 0 else None
        if s0 < min_s:
            raise InputError("place_by_density", f"district {_district_name(districts_gdf, k)}",
                             f"{n} sites need a lattice spacing of {s0:.0f} m, below {why}; about {n_fit} sites fit")
        s, x, y = _lattice_in(g, shapely.bounds(g), n, offsets[k], s0)
        if s < min_s:
            raise InputError("place_by_density", f"district {_district_name(districts_gdf, k)}",
                             f"{n} sites need a lattice spacing of {s:.0f} m in this polygon, below {why}; "
                             f"about {n_fit} sites fit")
        spacing[k] = s
        if jitter_frac > 0:
            r_max = jitter_frac * s
            todo = np.arange(n)
            jx, jy = x.copy(), y.copy()
            for _ in range(16):
                u = rng.random((todo.size, 2))
                r = r_max * np.sqrt(u[:, 0])
                th = 2.0 * math.pi * u[:, 1]
                cx, cy = x[todo] + r * np.sin(th), y[todo] + r * np.cos(th)
                ok = shapely.contains_xy(g, cx, cy)
                jx[todo[ok]], jy[todo[ok]] = cx[ok], cy[ok]
                todo = todo[~ok]
                if todo.size == 0:
                    break
            x, y = jx, jy
        xs.append(x)
        ys.append(y)
        ds.append(np.full(n, k, np.int16))
    return DensityPlacement(_concat(xs, np.float64), _concat(ys, np.float64), _concat(ds, np.int16), spacing)


def build_small_cells(districts_gdf, counts_per_district, rng: np.random.Generator, *, ran: str,
                      carriers: Sequence[CarrierSpec], h_bs_m: float = 10.0, n_sectors: int = 1,
                      jitter_frac: float = 0.25, site_id_start: int = 0, min_spacing_m: float = 0.0,
                      grid_res_m: float | None = None, source: str = "density") -> SiteTable:
    """UMi small cells by density (e.g. only in the central districts: zero counts elsewhere).

    :func:`place_by_density` then :func:`sim.sites.build_site_table` with
    ``SiteClass("umi", h_bs_m)`` for every site; pass carriers with the small cells'
    lower power and gain. TR 38.901 Table 7.4.1-1 UMi-Street Canyon: h_BS = 10 m.
    ``source`` labels the rows (``gigacity run`` uses ``"small-cell"``).
    """
    placement = place_by_density(districts_gdf, counts_per_district, rng, jitter_frac,
                                 min_spacing_m=min_spacing_m, grid_res_m=grid_res_m)
    crs = districts_gdf.crs.to_string() if districts_gdf.crs is not None and districts_gdf.crs.is_projected \
        else GRID_CRS
    return build_site_table(placement.to_sites(source, crs), ran=ran, carriers=carriers, rng=rng,
                            site_class=SiteClass("umi", h_bs_m), n_sectors=n_sectors, site_id_start=site_id_start)
