"""Base stations: the sector-carrier table.

* :class:`PhysicalSites` - physical sites (masts) before they are split into sectors, as
  the site-file readers (:mod:`sim.sitefiles`) and the density placement
  (:mod:`sim.placement`) return them.
* :func:`build_site_table` turns physical sites into a :class:`SiteTable`: one row per
  sector-carrier, with height and propagation scenario from the district class
  (:class:`SiteClass`), sector azimuths (0/120/240 deg plus a seeded random rotation per
  site), tilt and the carriers of the radio network (:class:`CarrierSpec`).
* Spacing and downtilt: :func:`site_spacing_m` (local inter-site distance) and
  :func:`spacing_downtilt_deg` (the tilt that puts the beam edge on the neighbours).
* :meth:`SiteTable.sector_arrays` hands one layer to the kernel as
  :class:`~sim.results.SectorArrays`.

Positions are in the grid CRS (:data:`sim.geodata.GRID_CRS`, UTM zone 51N, EPSG:32651),
metres; ``lon_deg``/``lat_deg`` are WGS84 (EPSG:4326). Randomness comes only from the
``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from .errors import InputError
from .geodata import GRID_CRS, xy_m_to_lonlat
from .results import SCENARIO_CODES, SectorArrays

__all__ = [
    "MAX_SECTORS",
    "SiteTable",
    "PhysicalSites",
    "CarrierSpec",
    "SiteClass",
    "build_site_table",
    "site_spacing_m",
    "spacing_downtilt_deg",
    "SPACING_NEIGHBOURS",
    "TILT_STEP_DEG",
]

MAX_SECTORS = 12
"""Most sectors a site can have (a site file's azimuths, ``build_site_table``'s ``n_sectors``)."""

_STR = "str"
_TABLE_DTYPES = {
    "site_id": np.int32,
    "sector": np.int8,
    "ran": _STR,
    "layer": _STR,
    "x_m": np.float64,
    "y_m": np.float64,
    "lon_deg": np.float64,
    "lat_deg": np.float64,
    "h_bs_m": np.float32,
    "az_deg": np.float32,
    "tilt_deg": np.float32,
    "ptx_dbm": np.float32,
    "g_max_dbi": np.float32,
    "hpbw_h_deg": np.float32,
    "hpbw_v_deg": np.float32,
    "scenario": _STR,
    "district_idx": np.int16,
    "source": _STR,
}


def _coerce(name: str, value, dtype, source: str) -> np.ndarray:
    """One column to its dtype; integers must be integral, floats real, strings strings."""
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise InputError(source, name, f"expected a 1-D array, got shape {arr.shape}")
    if dtype is _STR:
        if arr.size and arr.dtype.kind not in "UO":
            raise InputError(source, name, f"expected strings, got dtype {arr.dtype}")
        if arr.dtype.kind == "O" and not all(isinstance(v, str) for v in arr):
            raise InputError(source, name, "expected strings, got a non-string element")
        return arr.astype(str) if arr.size else np.zeros(0, dtype="<U1")
    if arr.size and arr.dtype.kind not in "biuf":
        raise InputError(source, name, f"expected numbers ({np.dtype(dtype).name}), got dtype {arr.dtype}")
    if np.issubdtype(dtype, np.integer):
        if arr.dtype.kind == "f" and arr.size and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise InputError(source, name, f"expected integers ({np.dtype(dtype).name}), got non-integral values")
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise InputError(source, name,
                             f"expected values in the {np.dtype(dtype).name} range, got {arr.min()}..{arr.max()}")
    return np.ascontiguousarray(arr, dtype=dtype)


# --------------------------------------------------------------------------------------
# the sector-carrier table
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SiteTable:
    """Base stations as a struct of arrays, one row per sector-carrier.

    Parameters
    ----------
    site_id : int32
        Physical site (mast); the sectors and carriers of one site share position,
        height and scenario.
    sector : int8
        Sector index within the site (0, 1, 2, ...).
    ran : str
        Radio network that owns the site grid, e.g. ``"cmcc"`` or ``"ctcu"`` (the
        Telecom/Unicom shared n78 network).
    layer : str
        Coverage layer of the carrier, ``"<ran>-<band>"``, e.g. ``"cmcc-n41"``.
    x_m, y_m : float64
        Position in EPSG:32651, m.
    lon_deg, lat_deg : float64
        Position in WGS84, deg.
    h_bs_m : float32
        Antenna height above ground, m.
    az_deg : float32
        Boresight bearing, deg clockwise from north, in [0, 360).
    tilt_deg : float32
        Downtilt, deg, positive down.
    ptx_dbm : float32
        Transmit power of the sector over the carrier, dBm.
    g_max_dbi : float32
        Maximum antenna gain, dBi.
    hpbw_h_deg, hpbw_v_deg : float32
        Horizontal and vertical half-power beamwidths, deg.
    scenario : str
        TR 38.901 scenario: ``"uma"``, ``"umi"`` or ``"rma"``.
    district_idx : int16
        Row of the district in ``read_districts`` order; -1 outside every district.
    source : str
        ``"file:<name>"``, ``"density"``, ``"small-cell"`` or ``"planned"``.

    Notes
    -----
    Columns are converted to the dtypes above when the table is built. Columns of
    different lengths, non-integral ids, non-finite floats, azimuths outside [0, 360) or
    an unknown scenario raise :class:`~sim.errors.InputError`.
    """

    site_id: np.ndarray
    sector: np.ndarray
    ran: np.ndarray
    layer: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    lon_deg: np.ndarray
    lat_deg: np.ndarray
    h_bs_m: np.ndarray
    az_deg: np.ndarray
    tilt_deg: np.ndarray
    ptx_dbm: np.ndarray
    g_max_dbi: np.ndarray
    hpbw_h_deg: np.ndarray
    hpbw_v_deg: np.ndarray
    scenario: np.ndarray
    district_idx: np.ndarray
    source: np.ndarray

    def __post_init__(self):
        src = "SiteTable"
        n = None
        for f in fields(self):
            arr = _coerce(f.name, getattr(self, f.name), _TABLE_DTYPES[f.name], src)
            if n is None:
                n = arr.size
            elif arr.size != n:
                raise InputError(src, f.name, f"expected {n} rows like site_id, got {arr.size}")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise InputError(src, f.name, "expected finite values, got NaN or inf")
            object.__setattr__(self, f.name, arr)
        if n and (self.az_deg.min() < 0 or self.az_deg.max() >= 360):
            raise InputError(src, "az_deg",
                             f"expected bearings in [0, 360) deg, got {self.az_deg.min()}..{self.az_deg.max()}")
        bad = ~np.isin(self.scenario, SCENARIO_CODES)
        if bad.any():
            raise InputError(src, "scenario",
                             f"expected one of {', '.join(SCENARIO_CODES)}, got {str(self.scenario[bad][0])!r}")
        if n and self.district_idx.min() < -1:
            raise InputError(src, "district_idx", f"expected -1 or a district row, got {self.district_idx.min()}")

    @classmethod
    def empty(cls) -> SiteTable:
        """A table with no rows."""
        return cls(**{name: np.zeros(0, dtype="<U1" if dt is _STR else dt) for name, dt in _TABLE_DTYPES.items()})

    def __len__(self) -> int:
        return int(self.site_id.size)

    @property
    def n_sectors(self) -> int:
        """Number of rows (sector-carriers)."""
        return int(self.site_id.size)

    @property
    def n_sites(self) -> int:
        """Number of physical sites (distinct ``site_id``)."""
        return int(np.unique(self.site_id).size)

    @property
    def layers(self) -> tuple[str, ...]:
        """Layer ids in order of first appearance."""
        uniq, first = np.unique(self.layer, return_index=True)
        return tuple(str(u) for u in uniq[np.argsort(first)])

    def select(self, mask) -> SiteTable:
        """The rows picked by a boolean mask or an integer index array."""
        idx = np.asarray(mask)
        if idx.dtype == bool and idx.shape != (len(self),):
            raise InputError("SiteTable.select", "mask",
                             f"expected a boolean mask of length {len(self)}, got shape {idx.shape}")
        return SiteTable(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def for_layer(self, layer_id: str) -> SiteTable:
        """The rows of one coverage layer (an empty table if it has none)."""
        return self.select(self.layer == layer_id)

    def sector_arrays(self, layer_id: str) -> SectorArrays:
        """One layer as the kernel's :class:`~sim.results.SectorArrays` (scenario as a code)."""
        t = self.for_layer(layer_id)
        code = np.array([SCENARIO_CODES.index(str(v)) for v in t.scenario], dtype=np.int8)
        return SectorArrays(site_id=t.site_id, x_m=t.x_m, y_m=t.y_m, h_bs_m=t.h_bs_m, az_deg=t.az_deg,
                            tilt_deg=t.tilt_deg, ptx_dbm=t.ptx_dbm, g_max_dbi=t.g_max_dbi,
                            hpbw_h_deg=t.hpbw_h_deg, hpbw_v_deg=t.hpbw_v_deg, scenario=code)

    def concat(self, other: SiteTable) -> SiteTable:
        """Rows of ``self`` then rows of ``other``.

        Site ids stay unique: if ``other``'s ids overlap ``self``'s, ``other``'s are
        shifted to start at ``self.site_id.max() + 1`` (keeping their order and gaps).
        """
        oid = other.site_id.astype(np.int64)
        if len(self) and len(other) and np.intersect1d(self.site_id, other.site_id).size:
            oid = oid - oid.min() + int(self.site_id.max()) + 1
        cols = {f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)}
        cols["site_id"] = np.concatenate([self.site_id.astype(np.int64), oid])
        return SiteTable(**cols)

    def to_geodataframe(self, crs: str = GRID_CRS, grid_crs: str = GRID_CRS):
        """A GeoDataFrame of points (one per row) with every column as an attribute.

        The points of a site's rows share its position: each distinct position is projected once
        (the same coordinates, bit for bit, as projecting every row).
        """
        import geopandas as gpd

        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return gpd.GeoDataFrame(data, geometry=_points(self.x_m, self.y_m, crs, grid_crs, self.site_id), crs=crs)

    def mast_columns(self, district_codes=None) -> dict[str, np.ndarray]:
        """One row per physical site (mast), in ``site_id`` order.

        Columns: ``site_id``, ``network`` (the radio network), ``district_code`` (from
        ``district_codes[district_idx]``, "" outside; the index when no codes are given),
        ``h_bs_m``, ``scenario`` (TR 38.901 class of the mast: uma / umi / rma),
        ``site_class`` ("small cell" for ``source == "small-cell"``, else "macro"),
        ``source``, ``n_sectors`` (distinct sector numbers), ``n_carriers`` (distinct
        layers), ``layers`` (their names, sorted, comma-separated), ``x_m``, ``y_m``, ``lon_deg``, ``lat_deg``.
        """
        ids, first, inverse = np.unique(self.site_id, return_index=True, return_inverse=True)
        inverse = inverse.ravel().astype(np.int64)
        pairs = np.sort(inverse * (MAX_SECTORS + 1) + self.sector.astype(np.int64))
        pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]] if pairs.size else pairs   # np.unique, by sorting
        n_sec = np.bincount(pairs // (MAX_SECTORS + 1), minlength=ids.size).astype(np.int64)
        n_carriers, layers = _layer_sets(self.layer, inverse, ids.size)
        d = self.district_idx[first].astype(np.int64)
        if district_codes is None:
            code = d.astype(str)
        else:
            codes = np.asarray([str(c) for c in district_codes] + [""], dtype=object)
            code = codes[np.where(d >= 0, d, len(codes) - 1)]
        return {"site_id": ids.astype(np.int64), "network": self.ran[first], "district_code": code,
                "h_bs_m": self.h_bs_m[first], "scenario": self.scenario[first],
                "site_class": np.where(self.source[first] == "small-cell", "small cell", "macro"),
                "source": self.source[first], "n_sectors": n_sec, "n_carriers": n_carriers, "layers": layers,
                "x_m": self.x_m[first], "y_m": self.y_m[first], "lon_deg": self.lon_deg[first],
                "lat_deg": self.lat_deg[first]}

    def masts_to_geodataframe(self, district_codes=None, crs: str = GRID_CRS, grid_crs: str = GRID_CRS, *,
                              columns: dict | None = None):
        """A GeoDataFrame of :meth:`mast_columns` (or of ``columns``, its result in hand), one point per mast."""
        import geopandas as gpd

        cols = self.mast_columns(district_codes) if columns is None else columns
        return gpd.GeoDataFrame(cols, geometry=_points(cols["x_m"], cols["y_m"], crs, grid_crs), crs=crs)

    def sites_per_district(self, n_districts: int, ran: str | None = None) -> np.ndarray:
        """Physical sites per district, int64 ``[n_districts]`` (sites outside are not counted).

        Parameters
        ----------
        n_districts : int
            Number of districts (length of the result).
        ran : str, optional
            Count only the sites of this radio network.
        """
        mask = self.district_idx >= 0 if ran is None else (self.district_idx >= 0) & (self.ran == ran)
        if mask.any() and self.district_idx[mask].max() >= n_districts:
            raise InputError("SiteTable.sites_per_district", "n_districts",
                             f"expected more than {self.district_idx[mask].max()}, got {n_districts}")
        ids, first = np.unique(self.site_id[mask], return_index=True)
        return np.bincount(self.district_idx[mask][first].astype(np.intp), minlength=n_districts).astype(np.int64)



def _layer_sets(layer: np.ndarray, inverse: np.ndarray, n_sites: int) -> tuple[np.ndarray, np.ndarray]:
    """Per site (``inverse``: each row's site), the number of distinct layers and their sorted names joined by ","."""
    import pandas as pd

    codes, names = pd.factorize(np.asarray(layer), sort=True)   # names sorted: codes are the sorted ranks
    names = [str(n) for n in names]
    if len(names) > 62:   # a set of layers as one int64 bit mask per site
        raise InputError("SiteTable.mast_columns", "layer", f"expected at most 62 layers, got {len(names)}")
    bits = np.zeros(n_sites, dtype=np.int64)
    np.bitwise_or.at(bits, inverse, np.left_shift(np.int64(1), codes.astype(np.int64)))
    sets, which = np.unique(bits, return_inverse=True)
    members = [[n for k, n in enumerate(names) if int(m) >> k & 1] for m in sets.tolist()]
    n_carriers = np.array([len(m) for m in members], dtype=np.int64)[which.ravel()]
    joined = np.array([",".join(m) for m in members] + [""], dtype=object)[:-1]
    return n_carriers, joined[which.ravel()]


def _points(x_m, y_m, crs: str, grid_crs: str, group=None):
    """Points at ``x_m, y_m`` (``grid_crs``) in ``crs`` (a GeometryArray); rows of one ``group`` (a site id) at one
    position are projected once. The coordinates are those of ``GeoSeries.to_crs`` point by point."""
    import geopandas as gpd

    x_m, y_m = np.asarray(x_m, np.float64), np.asarray(y_m, np.float64)
    if group is not None and x_m.size:
        _, first, inverse = np.unique(group, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        if np.array_equal(x_m[first][inverse], x_m) and np.array_equal(y_m[first][inverse], y_m):
            return _points(x_m[first], y_m[first], crs, grid_crs).take(inverse)
    if crs != grid_crs:   # the transformer GeoSeries.to_crs uses, on the coordinates it would take
        from pyproj import Transformer

        x_m, y_m = Transformer.from_crs(grid_crs, crs, always_xy=True).transform(x_m, y_m)
    return gpd.points_from_xy(x_m, y_m, crs=crs)


# --------------------------------------------------------------------------------------
# physical sites
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PhysicalSites:
    """Physical sites (masts) before they are split into sectors and carriers.

    Parameters
    ----------
    x_m, y_m : float64 [n]
        Position in EPSG:32651, m.
    lon_deg, lat_deg : float64 [n]
        Position in WGS84, deg.
    district_idx : int16 [n]
        District row, -1 where no region was given.
    h_bs_m : float32 [n]
        Antenna height, m; NaN where the file gives none (then :func:`build_site_table`
        takes the height of the district class).
    tilt_deg : float32 [n]
        Downtilt, deg; NaN where the file gives none (then the spacing tilt or the carrier's).
    az_deg : float32 [n, s]
        Sector bearings, NaN-padded; a row of NaN (or ``s = 0``) means none given (then
        evenly spaced sectors with a random rotation).
    operator : str [n]
        Operator id; ``""`` where the file gives none.
    band : str [n]
        Bands of the site joined by ``";"`` (e.g. ``"n41;n28"``); ``""`` means all the
        carriers of its radio network.
    source : str [n]
        ``"file:<name>"``, ``"density"`` or ``"planned"``.
    site_ref : str [n]
        The file's own id of the site (CSV ``site_id`` column, GeoJSON ``id``/``site_id``,
        OpenCellID ``mcc-net-area-cell`` of the first cell), or ``""``.
    n_cells : int32 [n]
        Cells collapsed into the site (OpenCellID), else 1.
    """

    x_m: np.ndarray
    y_m: np.ndarray
    lon_deg: np.ndarray
    lat_deg: np.ndarray
    district_idx: np.ndarray
    h_bs_m: np.ndarray
    tilt_deg: np.ndarray
    az_deg: np.ndarray
    operator: np.ndarray
    band: np.ndarray
    source: np.ndarray
    site_ref: np.ndarray
    n_cells: np.ndarray

    def __post_init__(self):
        n = np.asarray(self.x_m).size
        conv = {
            "x_m": np.float64, "y_m": np.float64, "lon_deg": np.float64, "lat_deg": np.float64,
            "district_idx": np.int16, "h_bs_m": np.float32, "tilt_deg": np.float32,
            "operator": _STR, "band": _STR, "source": _STR, "site_ref": _STR, "n_cells": np.int32,
        }
        for name, dt in conv.items():
            arr = _coerce(name, getattr(self, name), dt, "PhysicalSites")
            if arr.size != n:
                raise InputError("PhysicalSites", name, f"expected {n} rows like x_m, got {arr.size}")
            object.__setattr__(self, name, arr)
        az = np.asarray(self.az_deg, dtype=np.float32)
        if az.ndim != 2 or az.shape[0] != n:
            raise InputError("PhysicalSites", "az_deg", f"expected shape ({n}, s), got {az.shape}")
        object.__setattr__(self, "az_deg", np.ascontiguousarray(az))

    def __len__(self) -> int:
        return int(self.x_m.size)

    def select(self, mask) -> PhysicalSites:
        """The sites picked by a boolean mask or an integer index array."""
        idx = np.asarray(mask)
        return PhysicalSites(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @classmethod
    def from_xy(cls, x_m, y_m, district_idx, source: str = "density", crs: str = GRID_CRS) -> PhysicalSites:
        """Sites at positions in the metric ``crs`` (the grid's) with nothing else given."""
        x = np.asarray(x_m, np.float64)
        lon, lat = xy_m_to_lonlat(x, y_m, crs)
        n = x.size
        return cls(
            x_m=x, y_m=y_m, lon_deg=lon, lat_deg=lat, district_idx=district_idx,
            h_bs_m=np.full(n, np.nan, np.float32), tilt_deg=np.full(n, np.nan, np.float32),
            az_deg=np.zeros((n, 0), np.float32), operator=np.full(n, "", "<U1"), band=np.full(n, "", "<U1"),
            source=np.full(n, source), site_ref=np.full(n, "", "<U1"), n_cells=np.ones(n, np.int32),
        )



# --------------------------------------------------------------------------------------
# sector-carrier table from physical sites
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarrierSpec:
    """One carrier a radio network puts on every sector of its sites.

    ``layer`` (``"<ran>-<band>"``), ``band`` (``"n41"``; matched against a site's bands),
    ``ptx_dbm`` (per sector over the carrier), ``g_max_dbi``, ``hpbw_h_deg``,
    ``hpbw_v_deg`` and ``tilt_deg`` (used where the site gives no tilt).
    """

    layer: str
    band: str
    ptx_dbm: float
    g_max_dbi: float
    hpbw_h_deg: float
    hpbw_v_deg: float
    tilt_deg: float


@dataclass(frozen=True)
class SiteClass:
    """Scenario and antenna height of the sites of a district class.

    E.g. central urban and suburban ``SiteClass("uma", 30.0)``, rural (Chongming)
    ``SiteClass("rma", 35.0)``, small cells ``SiteClass("umi", 10.0)`` (TR 38.901
    Table 7.2-1 and 7.4.1-1: h_BS 25 m UMa, 10 m UMi, 35 m RMa default; UMa is valid
    for h_BS 25 m in Table 7.4.1-1 and used here at the Shanghai macro height).
    """

    scenario: str
    h_bs_m: float

    def __post_init__(self):
        if self.scenario not in SCENARIO_CODES:
            raise InputError("SiteClass", "scenario",
                             f"expected one of {', '.join(SCENARIO_CODES)}, got {self.scenario!r}")
        if not (math.isfinite(self.h_bs_m) and self.h_bs_m > 0):
            raise InputError("SiteClass", "h_bs_m", f"expected a height > 0 m, got {self.h_bs_m!r}")


SPACING_NEIGHBOURS = 3
"""Neighbours averaged for the local site spacing: the three nearest sites of a (jittered) hexagonal
grid are all at about the inter-site distance, and the mean is robust to one close pair."""


def site_spacing_m(x_m, y_m, *, query_x_m=None, query_y_m=None, k: int = SPACING_NEIGHBOURS) -> np.ndarray:
    """Local inter-site distance: mean distance (m) to the ``k`` nearest other sites.

    Parameters
    ----------
    x_m, y_m : array [n]
        Sites of one radio network (co-channel), grid CRS metres.
    query_x_m, query_y_m : array [m], optional
        Points to measure from instead of the sites themselves (e.g. candidate sites
        against the existing network); then a site at the query point counts.
    k : int
        Neighbours averaged (fewer when the network has fewer sites).

    Returns
    -------
    ndarray [n] or [m], float64; NaN where there is no other site.
    """
    from scipy.spatial import cKDTree

    pts = np.column_stack([np.asarray(x_m, np.float64), np.asarray(y_m, np.float64)])
    own = query_x_m is None
    q = pts if own else np.column_stack([np.asarray(query_x_m, np.float64), np.asarray(query_y_m, np.float64)])
    n_other = len(pts) - (1 if own else 0)
    if len(q) == 0 or n_other < 1:
        return np.full(len(q), np.nan)
    kk = min(int(k), n_other)
    d, _ = cKDTree(pts).query(q, k=kk + 1 if own else kk)
    d = d.reshape(len(q), -1)                     # k = 1 gives a 1-D answer
    return (d[:, 1:] if own else d).mean(axis=1)  # own: the first neighbour is the site itself


TILT_STEP_DEG = 1.0
"""Downtilts of :func:`spacing_downtilt_deg` are planned in whole degrees (ASSUMPTION: the
step of a tilt plan; remote electrical tilt units set 0.1 deg, plans use whole degrees). It also
keeps the distinct antenna classes few (``sim.planning`` builds one envelope per class)."""


def spacing_downtilt_deg(h_bs_m, spacing_m, hpbw_v_deg, *, h_ut_m: float = 1.5, min_deg=0.0,
                         max_deg: float = 20.0, step_deg: float = TILT_STEP_DEG) -> np.ndarray:
    """Downtilt (deg, positive down) that puts the upper -3 dB edge of the vertical beam on the neighbours.

    ``tilt = atan((h_BS - h_UT) / d) + HPBW_v / 2`` with ``d`` the local inter-site distance
    (:func:`site_spacing_m`): the main beam ends at the neighbouring sites, so a denser grid
    tilts more and a sector does not overshoot into its neighbours' cells. This is the
    planners' geometric rule (upper 3 dB point at the cell range, dense urban); the optimum
    downtilts of Niemelä, Isotalo & Lempiäinen, "Optimum antenna downtilt angles for
    macrocellular WCDMA network", EURASIP J. Wireless Commun. Netw. 2005:5, 816-827, grow the
    same way with antenna height and vertical beamwidth and fall with site spacing. Clipped to
    ``[min_deg, max_deg]`` (``min_deg``: the carrier's configured tilt, the sparse-network
    value; ``max_deg``: ASSUMPTION 20 deg, electrical plus mechanical). NaN spacing (a lone
    site) gives ``min_deg``. The geometric tilt is rounded to ``step_deg`` (0: not rounded)
    before the clipping.
    """
    h = np.asarray(h_bs_m, np.float64) - float(h_ut_m)
    d = np.asarray(spacing_m, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        geo = np.degrees(np.arctan2(np.maximum(h, 0.0), d)) + 0.5 * np.asarray(hpbw_v_deg, np.float64)
    if step_deg > 0:
        geo = np.round(geo / step_deg) * step_deg
    geo = np.where(np.isfinite(d) & (d > 0), geo, -np.inf)
    return np.clip(geo, min_deg, np.maximum(max_deg, min_deg))


def _class_of_sites(sites: PhysicalSites, district_class, site_classes, site_class):
    """Propagation scenario and default height of each site: one class for all, or its district's class."""
    src = "build_site_table"
    n = len(sites)
    if site_class is not None:
        scen = np.full(n, site_class.scenario)
        h_cls = np.full(n, site_class.h_bs_m, np.float32)
    else:
        if district_class is None or site_classes is None:
            raise InputError(src, "district_class", "expected district_class and site_classes, or site_class")
        names = list(district_class)
        for nm in set(names):
            if nm not in site_classes:
                raise InputError(src, "site_classes", f"no parameters for district class {nm!r}; "
                                                      f"expected one of {', '.join(sorted(site_classes))}")
        if n and (sites.district_idx.min() < 0 or sites.district_idx.max() >= len(names)):
            bad = int(np.flatnonzero((sites.district_idx < 0) | (sites.district_idx >= len(names)))[0])
            raise InputError(src, "sites.district_idx",
                             f"site {bad} has district {sites.district_idx[bad]}; expected 0..{len(names) - 1} "
                             "(read the file with a region)")
        cls_scen = np.array([site_classes[nm].scenario for nm in names] or [""])
        cls_h = np.array([site_classes[nm].h_bs_m for nm in names] or [0.0], np.float32)
        scen = cls_scen[sites.district_idx] if n else np.zeros(0, "<U3")
        h_cls = cls_h[sites.district_idx] if n else np.zeros(0, np.float32)
    return scen, h_cls


def _sector_bearings_deg(sites: PhysicalSites, rot, n_sectors: int) -> np.ndarray:
    """Sector bearings ``[n, S]`` (NaN-padded, float32): the site's own azimuths, else evenly spaced and rotated."""
    n = len(sites)
    given = np.isfinite(sites.az_deg)
    has_az = given.any(axis=1) if sites.az_deg.shape[1] else np.zeros(n, bool)
    s_max = max(n_sectors, sites.az_deg.shape[1])
    az = np.full((n, s_max), np.nan, np.float32)
    even = (np.arange(n_sectors)[None, :] * (360.0 / n_sectors) + rot[:, None]) % 360.0
    az[:, :n_sectors] = even
    if has_az.any():
        az[has_az] = np.nan
        az[has_az, : sites.az_deg.shape[1]] = sites.az_deg[has_az]
    az = np.where(az >= 360.0, 0.0, az).astype(np.float32)   # float32 rounding of 359.99999
    return az


def build_site_table(sites: PhysicalSites, *, ran: str, carriers: Sequence[CarrierSpec], rng: np.random.Generator,
                     district_class: Sequence[str] | None = None, site_classes: Mapping[str, SiteClass] | None = None,
                     site_class: SiteClass | None = None, n_sectors: int = 3, site_id_start: int = 0,
                     spacing_m=None, h_ut_m: float = 1.5, max_tilt_deg: float = 20.0) -> SiteTable:
    """Split physical sites into sector-carrier rows.

    Parameters
    ----------
    sites : PhysicalSites
        From a reader or :meth:`sim.placement.DensityPlacement.to_sites`; all of one radio network.
    ran : str
        Radio network id written to every row.
    carriers : sequence of CarrierSpec
        The carriers of the network; a site with bands gets only the carriers of its bands.
    rng : numpy.random.Generator
        Sector rotation per site (always drawn for every site, so results do not depend
        on which sites give azimuths).
    district_class : sequence of str [n_districts], optional
        Class name of each district (e.g. ``"central"``, ``"suburban"``, ``"rural"``).
    site_classes : mapping of str to SiteClass, optional
        Scenario and default height per class name.
    site_class : SiteClass, optional
        One class for every site (e.g. UMi small cells), instead of the two above.
    n_sectors : int
        Sectors of a site without azimuths: bearings ``360 k / n_sectors`` plus a rotation
        uniform in ``[0, 360 / n_sectors)`` per site.
    site_id_start : int
        ``site_id`` of the first site; sites are numbered consecutively.
    spacing_m : array [n_sites], optional
        Local inter-site distance of each site (:func:`site_spacing_m`). Given, a site
        without its own tilt gets :func:`spacing_downtilt_deg` (at least the carrier's tilt,
        at most ``max_tilt_deg``; UE height ``h_ut_m``); None: the carrier's tilt.
    h_ut_m, max_tilt_deg : float
        See ``spacing_m``.

    Returns
    -------
    SiteTable
        Rows ordered by carrier, then site, then sector. Height: the site's own, else its
        class's; tilt: the site's own, else from the spacing (``spacing_m``), else the
        carrier's.

    Raises
    ------
    InputError
        No carriers; a site without a district when classes are per district; a class
        name without parameters; a site whose bands match none of the carriers.
    """
    src = "build_site_table"
    if not carriers:
        raise InputError(src, "carriers", f"expected at least one carrier for radio network {ran!r}")
    int_like = isinstance(n_sectors, (int, np.integer)) and not isinstance(n_sectors, bool)
    if not int_like or not 1 <= n_sectors <= MAX_SECTORS:
        raise InputError(src, "n_sectors", f"expected an integer in [1, {MAX_SECTORS}], got {n_sectors!r}")
    n = len(sites)
    rot = rng.uniform(0.0, 360.0 / n_sectors, n)
    scen, h_cls = _class_of_sites(sites, district_class, site_classes, site_class)
    h = np.where(np.isfinite(sites.h_bs_m), sites.h_bs_m, h_cls).astype(np.float32)
    az = _sector_bearings_deg(sites, rot, n_sectors)
    # bands
    wrapped = np.char.add(np.char.add(";", sites.band.astype(str)), ";") if n else np.zeros(0, "<U2")
    any_band = sites.band == ""
    served = np.zeros(n, bool)
    site_id = site_id_start + np.arange(n, dtype=np.int64)
    cols: dict[str, list] = {name: [] for name in _TABLE_DTYPES}
    for c in carriers:
        m = any_band | (np.char.find(wrapped, f";{c.band.lower()};") >= 0) if n else np.zeros(0, bool)
        served |= m
        si, sec = np.nonzero(m[:, None] & np.isfinite(az))
        k = si.size
        cols["site_id"].append(site_id[si])
        cols["sector"].append(sec)
        cols["ran"].append(np.full(k, ran))
        cols["layer"].append(np.full(k, c.layer))
        for name in ("x_m", "y_m", "lon_deg", "lat_deg", "district_idx", "source"):
            cols[name].append(getattr(sites, name)[si])
        cols["h_bs_m"].append(h[si])
        cols["az_deg"].append(az[si, sec])
        t = sites.tilt_deg[si]
        if spacing_m is None:
            fallback = c.tilt_deg
        else:
            fallback = spacing_downtilt_deg(h[si], np.asarray(spacing_m, np.float64)[si], c.hpbw_v_deg,
                                            h_ut_m=h_ut_m, min_deg=c.tilt_deg, max_deg=max_tilt_deg)
        cols["tilt_deg"].append(np.where(np.isfinite(t), t, fallback))
        for name in ("ptx_dbm", "g_max_dbi", "hpbw_h_deg", "hpbw_v_deg"):
            cols[name].append(np.full(k, getattr(c, name)))
        cols["scenario"].append(scen[si])
    if n and not served.all():
        bad = int(np.flatnonzero(~served)[0])
        raise InputError(src, "carriers", f"site {sites.site_ref[bad] or bad} has band(s) {str(sites.band[bad])!r}, "
                                          f"none of "
                                          f"the carriers of {ran!r} ({', '.join(c.band for c in carriers)})")
    out = {}
    for name, dt in _TABLE_DTYPES.items():
        parts = [np.asarray(a) for a in cols[name]]
        arr = np.concatenate(parts) if parts else np.zeros(0)
        out[name] = arr.astype(str) if dt is _STR else arr.astype(dt)
    return SiteTable(**out)
