"""Base stations: the sector-carrier table, site-file readers and density placement.

Three ways in, one table out:

* **Files** - :func:`read_sites_csv`, :func:`read_sites_geojson` and
  :func:`read_opencellid` return the *physical sites* of a file (:class:`PhysicalSites`)
  and a :class:`ReadReport` (rows read, kept, bad, filtered, outside the region).
* **Density** - :func:`allocate_counts` splits a total over the districts (largest
  remainder), :func:`place_by_density` lays a jittered hexagonal lattice per district with
  exactly that many points inside the district polygon.
* :func:`build_site_table` turns physical sites into a :class:`SiteTable`: one row per
  sector-carrier, with height and propagation scenario from the district class, sector
  azimuths (0/120/240 deg plus a seeded random rotation per site), tilt and the carriers
  of the radio network.

Positions are in the grid CRS, UTM zone 51N (EPSG:32651), metres; ``lon_deg``/``lat_deg``
are WGS84 (EPSG:4326). Every pyproj ``Transformer`` is built with ``always_xy=True``.
Randomness comes only from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, SiteFileError

__all__ = [
    "GRID_CRS",
    "SCENARIOS",
    "OPERATOR_OF_MNC",
    "OPERATOR_NAMES",
    "RAN_OF_OPERATOR",
    "OPENCELLID_COLUMNS",
    "MAX_LISTED_BAD_ROWS",
    "SiteTable",
    "PhysicalSites",
    "BadRow",
    "ReadReport",
    "CarrierSpec",
    "SiteClass",
    "DensityPlacement",
    "read_sites_csv",
    "read_sites_geojson",
    "read_opencellid",
    "district_weights",
    "allocate_counts",
    "place_by_density",
    "build_site_table",
    "build_small_cells",
    "site_spacing_m",
    "spacing_downtilt_deg",
]

GRID_CRS = "EPSG:32651"
"""The metric CRS of positions: WGS 84 / UTM zone 51N."""

SCENARIOS = ("uma", "umi", "rma")
"""TR 38.901 propagation scenarios a site can have (Table 7.4.1-1: UMa, UMi-Street Canyon, RMa)."""

OPERATOR_OF_MNC = {
    0: "cmcc", 2: "cmcc", 4: "cmcc", 7: "cmcc", 8: "cmcc",
    1: "cucc", 6: "cucc", 9: "cucc",
    3: "ctcc", 5: "ctcc", 11: "ctcc",
    15: "cbn",
}
"""Operator of each mobile network code under MCC 460 (China).

ITU-T E.212 "List of Mobile Country Codes and Mobile Network Codes" (ITU Operational
Bulletin annex): 460-00/02/04/07/08 China Mobile, 460-01/06/09 China Unicom,
460-03/05/11 China Telecom, 460-15 China Broadcast Network.
"""

OPERATOR_NAMES = {
    "cmcc": "China Mobile",
    "cucc": "China Unicom",
    "ctcc": "China Telecom",
    "cbn": "China Broadcast Network",
}
"""Operator ids used by :func:`read_opencellid` and their names."""

RAN_OF_OPERATOR = {"cmcc": "cmcc", "cucc": "ctcu", "ctcc": "ctcu", "cbn": "cbn"}
"""Radio network that owns an operator's sites: China Telecom and China Unicom share one
n78 network (co-build, co-share since 2019), here ``"ctcu"``. China Broadcast Network's
700 MHz network is co-built with China Mobile but kept apart here (``"cbn"``)."""

OPENCELLID_COLUMNS = (
    "radio", "mcc", "net", "area", "cell", "unit", "lon", "lat", "range",
    "samples", "changeable", "created", "updated", "averageSignal",
)
"""Columns of an OpenCellID cell export (``cell_towers.csv``; per-country files have no header)."""

MAX_LISTED_BAD_ROWS = 100
"""A :class:`ReadReport` lists the first this-many bad rows (all are counted)."""

_MAX_HEIGHT_M = 500.0
_MAX_SECTORS = 12
_WGS84 = "EPSG:4326"

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


def _transformer(src: str, dst: str):
    from pyproj import Transformer

    return Transformer.from_crs(src, dst, always_xy=True)


def _to_xy_m(lon_deg, lat_deg):
    x, y = _transformer(_WGS84, GRID_CRS).transform(np.asarray(lon_deg, float), np.asarray(lat_deg, float))
    return np.asarray(x, np.float64), np.asarray(y, np.float64)


def _to_lonlat_deg(x_m, y_m):
    lon, lat = _transformer(GRID_CRS, _WGS84).transform(np.asarray(x_m, float), np.asarray(y_m, float))
    return np.asarray(lon, np.float64), np.asarray(lat, np.float64)


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
        bad = ~np.isin(self.scenario, SCENARIOS)
        if bad.any():
            raise InputError(src, "scenario",
                             f"expected one of {', '.join(SCENARIOS)}, got {str(self.scenario[bad][0])!r}")
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

    def to_geodataframe(self, crs: str = GRID_CRS):
        """A GeoDataFrame of points (one per row) with every column as an attribute."""
        import geopandas as gpd

        data = {f.name: getattr(self, f.name) for f in fields(self)}
        gdf = gpd.GeoDataFrame(data, geometry=gpd.points_from_xy(self.x_m, self.y_m), crs=GRID_CRS)
        return gdf if crs == GRID_CRS else gdf.to_crs(crs)

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


# --------------------------------------------------------------------------------------
# physical sites and read reports
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
    def from_xy(cls, x_m, y_m, district_idx, source: str = "density") -> PhysicalSites:
        """Sites at positions (EPSG:32651) with nothing else given."""
        x = np.asarray(x_m, np.float64)
        lon, lat = _to_lonlat_deg(x, y_m)
        n = x.size
        return cls(
            x_m=x, y_m=y_m, lon_deg=lon, lat_deg=lat, district_idx=district_idx,
            h_bs_m=np.full(n, np.nan, np.float32), tilt_deg=np.full(n, np.nan, np.float32),
            az_deg=np.zeros((n, 0), np.float32), operator=np.full(n, "", "<U1"), band=np.full(n, "", "<U1"),
            source=np.full(n, source), site_ref=np.full(n, "", "<U1"), n_cells=np.ones(n, np.int32),
        )


@dataclass(frozen=True)
class BadRow:
    """One rejected row: ``line`` (1-based file line, or feature number), ``field``, ``reason``.

    ``label`` is ``"line"`` for CSV files and ``"feature"`` for GeoJSON.
    """

    line: int
    field: str
    reason: str
    label: str = "line"

    def __str__(self) -> str:
        return f"{self.label} {self.line}, column {self.field}: {self.reason}"


@dataclass(frozen=True)
class ReadReport:
    """What a site reader did with a file.

    Attributes
    ----------
    path : str
    n_rows : int
        Data rows read (header and blank lines not counted).
    n_filtered : int
        Rows left out by choice, not by error (OpenCellID: other radio, MCC, or operator).
    n_bad : int
        Rows rejected (all of them, though only the first :data:`MAX_LISTED_BAD_ROWS`
        are listed in ``bad_rows``).
    n_outside : int
        Valid rows outside every region polygon, dropped.
    n_kept : int
        Rows kept (= ``n_rows - n_filtered - n_bad - n_outside``).
    n_sites : int
        Physical sites the kept rows make (OpenCellID collapses cells at one position).
    bad_rows : tuple of BadRow
        The first bad rows in line order.
    """

    path: str
    n_rows: int
    n_filtered: int
    n_bad: int
    n_outside: int
    n_kept: int
    n_sites: int
    bad_rows: tuple[BadRow, ...]

    def summary(self) -> str:
        """One line: ``name: 10 rows, 6 kept (5 sites), 2 bad, 1 outside, 1 filtered``."""
        return (f"{Path(self.path).name}: {self.n_rows} rows, {self.n_kept} kept ({self.n_sites} sites), "
                f"{self.n_bad} bad, {self.n_outside} outside, {self.n_filtered} filtered")


class _Rows:
    """Bad-row bookkeeping over a block of rows, vectorised per check.

    ``flag(mask, field, reason)`` marks rows not yet bad; ``reason(i)`` builds the text for
    row ``i`` only for the rows that end up listed (or raised).
    """

    def __init__(self, path: Path, lines: np.ndarray, label: str):
        self.path, self.lines, self.label = path, lines, label
        self.bad = np.zeros(lines.size, dtype=bool)
        self.checks: list[tuple[np.ndarray, str, object]] = []

    def flag(self, mask, field: str, reason) -> None:
        new = np.asarray(mask, bool) & ~self.bad
        if new.any():
            self.bad |= new
            self.checks.append((np.flatnonzero(new), field, reason))

    def listed(self, limit: int) -> list[BadRow]:
        if not self.checks:
            return []
        idx = np.concatenate([c[0] for c in self.checks])
        which = np.concatenate([np.full(c[0].size, k) for k, c in enumerate(self.checks)])
        order = np.argsort(self.lines[idx], kind="stable")[:limit]
        return [BadRow(int(self.lines[idx[o]]), self.checks[which[o]][1], self.checks[which[o]][2](int(idx[o])),
                       self.label) for o in order]

    def raise_first(self) -> None:
        first = self.listed(1)
        if first:
            b = first[0]
            raise SiteFileError(self.path, f"{b.label} {b.line}, column {b.field}", b.reason)


def _check_on_bad_row(on_bad_row: str) -> None:
    if on_bad_row not in ("skip", "raise"):
        raise InputError("site reader", "on_bad_row", f"expected 'skip' or 'raise', got {on_bad_row!r}")


def _require_file(path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise SiteFileError(p, None, "file not found" if not p.exists() else "expected a file, got a directory")
    return p


def _region_parts(region):
    """Prepared district geometries (EPSG:32651), their bounds, and the region's lon/lat box."""
    import shapely

    if region is None:
        return None
    gdf = region if str(region.crs).upper() in (GRID_CRS, "EPSG:32651") else region.to_crs(GRID_CRS)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    for g in geoms:
        shapely.prepare(g)
    bounds = shapely.bounds(geoms)
    xmin, ymin = bounds[:, 0].min(), bounds[:, 1].min()
    xmax, ymax = bounds[:, 2].max(), bounds[:, 3].max()
    lon, lat = _to_lonlat_deg([xmin, xmax, xmin, xmax], [ymin, ymin, ymax, ymax])
    box = (lon.min() - 0.5, lat.min() - 0.5, lon.max() + 0.5, lat.max() + 0.5)
    return geoms, bounds, box


def _district_of(parts, x_m, y_m) -> np.ndarray:
    """District row of each point (first district that contains it), -1 outside all."""
    import shapely

    out = np.full(np.asarray(x_m).size, -1, dtype=np.int16)
    if parts is None:
        return out
    geoms, bounds, _ = parts
    for k, (g, b) in enumerate(zip(geoms, bounds)):
        cand = np.flatnonzero((out < 0) & (x_m >= b[0]) & (x_m <= b[2]) & (y_m >= b[1]) & (y_m <= b[3]))
        if cand.size:
            inside = shapely.contains_xy(g, x_m[cand], y_m[cand])
            out[cand[inside]] = k
    return out


def _text(col: pd.Series | None, n: int) -> np.ndarray:
    """A column as stripped Python strings ('' for missing)."""
    if col is None:
        return np.full(n, "", dtype=object)
    if col.dtype == object and not col.isna().any() and all(isinstance(v, str) for v in col.to_numpy()):
        return col.str.strip().to_numpy(object)
    s = col.astype(object).where(col.notna(), "")
    s = s.map(lambda v: v if isinstance(v, str) else (f"{v:g}" if isinstance(v, float) else str(v)))
    return s.str.strip().to_numpy(object)


def _numbers(raw) -> np.ndarray:
    """float64 values of a column (already numeric, or text: unparsable text gives NaN)."""
    arr = np.asarray(raw)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    return pd.to_numeric(pd.Series(arr, dtype=object), errors="coerce").to_numpy(float)


def _q(value) -> str:
    """A raw cell value for a message: text quoted as given, numbers as text."""
    if isinstance(value, str):
        return repr(value.strip())
    return repr(f"{float(value):.10g}")


def _check_lonlat(rows: _Rows, lon_raw, lat_raw, parts, lon_name="lon", lat_name="lat"):
    """Numeric lon/lat in range, with the lat/lon swap detected (row- and file-level)."""
    lon = _numbers(lon_raw)
    lat = _numbers(lat_raw)
    rows.flag(~np.isfinite(lon), lon_name, lambda i: f"expected a longitude in degrees, got {_q(lon_raw[i])}")
    rows.flag(~np.isfinite(lat), lat_name, lambda i: f"expected a latitude in degrees, got {_q(lat_raw[i])}")
    numeric = np.isfinite(lon) & np.isfinite(lat)
    in_range = numeric & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    swapped_valid = numeric & (np.abs(lat) <= 180) & (np.abs(lon) <= 90)
    if parts is not None:
        x0, y0, x1, y1 = parts[2]
        in_box = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
        sw_box = (lat >= x0) & (lat <= x1) & (lon >= y0) & (lon <= y1)
        swapped = swapped_valid & sw_box & ~in_box
        where = f"; the region lies near lon {0.5 * (x0 + x1):.0f}, lat {0.5 * (y0 + y1):.0f}"
    else:
        swapped = swapped_valid & ~in_range
        where = ""
    n_num = int(numeric.sum())
    n_sw = int(swapped.sum())
    if n_sw and 2 * n_sw >= n_num:
        i = int(np.flatnonzero(swapped)[0])
        raise SiteFileError(
            rows.path, f"columns {lon_name}/{lat_name}",
            f"lon/lat look swapped in {n_sw} of {n_num} rows ({rows.label} {rows.lines[i]}: "
            f"{lon_name} {lon[i]:g}, {lat_name} {lat[i]:g}){where}; swap the two columns",
        )
    rows.flag(swapped, f"{lon_name}/{lat_name}",
              lambda i: f"lon/lat look swapped ({lon_name} {lon[i]:g}, {lat_name} {lat[i]:g}){where}")
    rows.flag(numeric & (np.abs(lon) > 180), lon_name,
              lambda i: f"expected a longitude in [-180, 180] degrees, got {_q(lon_raw[i])}")
    rows.flag(numeric & (np.abs(lat) > 90), lat_name,
              lambda i: f"expected a latitude in [-90, 90] degrees, got {_q(lat_raw[i])}")
    return lon, lat


def _check_number(rows: _Rows, raw, name, lo, hi, what, unit, lo_open=False):
    """Optional numeric column: '' -> NaN; else a number in [lo, hi] (or (lo, hi])."""
    val = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce").to_numpy(float)
    given = raw != ""
    ok = np.isfinite(val) & (val > lo if lo_open else val >= lo) & (val <= hi)
    rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
    rows.flag(given & ~ok, name, lambda i: f"expected {what} in {rng} {unit}, got {_q(raw[i])}")
    return np.where(given & ok, val, np.nan)


def _check_azimuths(rows: _Rows, raw, name="azimuths"):
    """';'-separated bearings in [0, 360); '' -> none given. Returns float32 [n, s] NaN-padded."""
    n = raw.size
    given = raw != ""
    if not given.any():
        return np.zeros((n, 0), np.float32)
    parts = pd.Series(raw, dtype=object).str.split(";", expand=True)
    parts = parts.where(parts.notna(), "")
    vals = parts.apply(lambda c: pd.to_numeric(c.str.strip(), errors="coerce")).to_numpy(float)
    present = parts.apply(lambda c: c.str.strip() != "").to_numpy(bool)
    ok_each = ~present | (np.isfinite(vals) & (vals >= 0) & (vals < 360))
    bad = given & (~ok_each.all(axis=1) | (present.sum(axis=1) == 0) | (present.sum(axis=1) > _MAX_SECTORS))
    rows.flag(bad, name, lambda i: f"expected 1 to {_MAX_SECTORS} bearings in [0, 360) degrees separated by ';', "
                                   f"got {_q(raw[i])}")
    vals = np.where(present & ok_each & ~bad[:, None], vals, np.nan)
    # move the given bearings to the left, keeping their order
    order = np.argsort(~np.isfinite(vals), axis=1, kind="stable")
    return np.take_along_axis(vals, order, axis=1).astype(np.float32)


def _check_names(rows: _Rows, raw, allowed, name, what):
    """Case-folded names, each ';'-separated item in ``allowed`` (None: any)."""
    folded = np.array([s.lower() for s in raw], dtype=object)
    if allowed is None:
        return folded
    allowed_set = {a.lower() for a in allowed}
    uniq = {v for v in set(folded) if v}
    bad_values = {v for v in uniq if any(item.strip() not in allowed_set for item in v.split(";"))}
    if bad_values:
        bad = np.isin(folded, list(bad_values))
        expected = ", ".join(sorted(allowed_set))
        rows.flag(bad, name, lambda i: f"unknown {what} {raw[i]!r}; expected one of {expected}")
    return folded


def _finish(path, rows: _Rows, on_bad_row, lon, lat, parts, cols, n_filtered=0, src_label=None):
    """Drop bad rows, raise or report; project; drop rows outside the region."""
    if on_bad_row == "raise":
        rows.raise_first()
    keep = ~rows.bad
    x, y = _to_xy_m(lon[keep], lat[keep])
    d = _district_of(parts, x, y)
    inside = d >= 0 if parts is not None else np.ones(x.size, bool)
    n = int(inside.sum())
    sel = {k: v[keep][inside] for k, v in cols.items()}
    sites = PhysicalSites(
        x_m=x[inside], y_m=y[inside], lon_deg=lon[keep][inside], lat_deg=lat[keep][inside], district_idx=d[inside],
        h_bs_m=sel["h_bs_m"], tilt_deg=sel["tilt_deg"], az_deg=sel["az_deg"],
        operator=sel["operator"].astype(str), band=sel["band"].astype(str),
        source=np.full(n, src_label or f"file:{Path(path).name}"), site_ref=sel["site_ref"].astype(str),
        n_cells=np.ones(n, np.int32),
    )
    report = ReadReport(
        path=str(path), n_rows=int(rows.lines.size) + n_filtered, n_filtered=n_filtered, n_bad=int(rows.bad.sum()),
        n_outside=int((~inside).sum()), n_kept=n, n_sites=n, bad_rows=tuple(rows.listed(MAX_LISTED_BAD_ROWS)),
    )
    return sites, report


def _site_columns(rows: _Rows, get, n, operators, bands, default_operator, operator_required=False):
    """The optional columns shared by the CSV and GeoJSON readers."""
    if operator_required and not default_operator and get("operator") is None:
        raise SiteFileError(rows.path, "column operator",
                            "expected an operator column (one operator per site, e.g. cmcc, ctcc, cucc)")
    h = _check_number(rows, _text(get("height_m"), n), "height_m", 0.0, _MAX_HEIGHT_M, "a height", "m",
                      lo_open=True)
    az = _check_azimuths(rows, _text(get("azimuths"), n))
    tilt = _check_number(rows, _text(get("tilt_deg"), n), "tilt_deg", -90.0, 90.0, "a downtilt", "degrees")
    op_raw = _text(get("operator"), n)
    if default_operator:
        op_raw = np.where(op_raw == "", default_operator, op_raw)
    if operator_required:
        known = f"one of {', '.join(sorted(operators))}" if operators else "an operator id"
        rows.flag(op_raw == "", "operator", lambda i: f"expected {known}, got an empty value")
    op = _check_names(rows, op_raw, operators, "operator", "operator")
    band = _check_names(rows, _text(get("band"), n), bands, "band", "band")
    band = np.array([";".join(b.strip() for b in v.split(";")) if v else "" for v in band], dtype=object)
    return {
        "h_bs_m": h.astype(np.float32), "tilt_deg": tilt.astype(np.float32), "az_deg": az,
        "operator": op, "band": band, "site_ref": _text(get("site_id"), n),
    }


_CSV_REQUIRED = ("lon", "lat")
_CSV_OPTIONAL = ("site_id", "height_m", "azimuths", "tilt_deg", "operator", "band")


def read_sites_csv(path, region, *, operators: Sequence[str] | None = None, bands: Sequence[str] | None = None,
                   operator: str | None = None, on_bad_row: str = "skip", delimiter: str = ",",
                   operator_required: bool = False):
    """Read physical sites from a CSV file with WGS84 ``lon``/``lat`` columns.

    Parameters
    ----------
    path : path
        UTF-8 CSV with a header line. Columns (names case-insensitive, others ignored):
        ``lon``, ``lat`` (required, WGS84 degrees); optional ``site_id`` (kept as
        ``site_ref``), ``height_m`` (antenna height, (0, 500] m), ``azimuths`` (bearings
        separated by ``;``, e.g. ``0;120;240``), ``tilt_deg`` ([-90, 90]), ``operator``,
        ``band`` (e.g. ``n41`` or ``n41;n28``).
    region : GeoDataFrame or None
        District polygons (``read_districts``); sites outside all of them are dropped and
        counted. ``None`` keeps every site with ``district_idx = -1``.
    operators, bands : sequence of str, optional
        Allowed operator and band names (case-insensitive); another name makes the row
        bad. ``None`` allows any.
    operator : str, optional
        Operator of rows whose ``operator`` is empty or missing.
    on_bad_row : {"skip", "raise"}
        ``"skip"`` drops and reports bad rows; ``"raise"`` raises on the first one.
    delimiter : str
        Field separator.
    operator_required : bool
        Without ``operator``: a file without an ``operator`` column is an error, a row
        with an empty one is a bad row (e.g. when sites must go to several networks).

    Returns
    -------
    sites : PhysicalSites
    report : ReadReport

    Raises
    ------
    SiteFileError
        One line, naming the file, the line and column, and what was expected: file
        missing or empty, header without ``lon``/``lat`` (with a hint when it looks split
        by another delimiter), a row with the wrong number of fields, lon/lat swapped in
        most rows; and with ``on_bad_row="raise"`` the first bad row (non-numeric or
        out-of-range lon/lat, lon/lat that look swapped, a non-numeric height, a bad
        azimuth or tilt, an unknown operator or band).

    Notes
    -----
    Defaults of missing optional columns: height and tilt NaN (filled by
    :func:`build_site_table` from the district class and the carrier), azimuths none
    (evenly spaced sectors with a random rotation), operator ``operator`` or ``""``,
    band ``""`` (all carriers of the radio network). Line numbers count the header as
    line 1; quoted fields spanning lines are not supported. Parsing is vectorised (pandas).
    """
    _check_on_bad_row(on_bad_row)
    p = _require_file(path)
    parts = _region_parts(region)
    with open(p, encoding="utf-8-sig") as fh:
        header = fh.readline()
    if not header.strip():
        raise SiteFileError(p, "line 1", "expected a header line with columns lon, lat; the file is empty")
    names = [h.strip().lower() for h in header.rstrip("\r\n").split(delimiter)]
    missing = [c for c in _CSV_REQUIRED if c not in names]
    if missing:
        hint = ""
        for other in (";", "\t", ",", "|"):
            if other != delimiter and other in header:
                hint = f"; the header looks {other!r}-delimited (set the delimiter to {other!r})"
                break
        raise SiteFileError(p, "line 1", f"expected columns lon, lat separated by {delimiter!r}, got header "
                                         f"{header.strip()!r}{hint}")
    try:
        df = pd.read_csv(p, sep=delimiter, dtype=str, keep_default_na=False, skip_blank_lines=False,
                         encoding="utf-8-sig", engine="c")
    except pd.errors.ParserError as exc:
        raise SiteFileError(p, None, f"not a valid CSV ({str(exc).strip().splitlines()[-1]})") from None
    df.columns = [c.strip().lower() for c in df.columns]
    lines = np.arange(2, len(df) + 2)
    blank = (df.apply(lambda c: c.str.strip() == "")).all(axis=1).to_numpy()
    df, lines = df.loc[~blank].reset_index(drop=True), lines[~blank]
    rows = _Rows(p, lines, "line")
    n = len(df)
    lon, lat = _check_lonlat(rows, _text(df["lon"], n), _text(df["lat"], n), parts)
    cols = _site_columns(rows, lambda c: df[c] if c in df.columns else None, n, operators, bands, operator,
                         operator_required)
    return _finish(p, rows, on_bad_row, lon, lat, parts, cols)


def read_sites_geojson(path, region, *, operators: Sequence[str] | None = None, bands: Sequence[str] | None = None,
                       operator: str | None = None, on_bad_row: str = "skip", operator_required: bool = False):
    """Read physical sites from a GeoJSON file of points (via pyogrio).

    Parameters, returns and raises as :func:`read_sites_csv`, with feature properties in
    place of columns (``site_id`` or ``id``, ``height_m``, ``azimuths``, ``tilt_deg``,
    ``operator``, ``band``). Positions are the point coordinates, projected to WGS84 if
    the file declares another CRS (RFC 7946 GeoJSON is always WGS84 lon/lat). Rows are
    numbered as features, 1-based (``feature 3``); a feature without a point geometry is
    a bad row (field ``geometry``).
    """
    import geopandas as gpd
    import pyogrio.errors
    import shapely

    _check_on_bad_row(on_bad_row)
    p = _require_file(path)
    parts = _region_parts(region)
    try:
        gdf = gpd.read_file(p, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise SiteFileError(p, None, f"not a readable GeoJSON file ({reason})") from None
    if gdf.crs is not None and gdf.crs.to_epsg() not in (4326, None):
        gdf = gdf.to_crs(_WGS84)
    gdf.columns = [c.strip().lower() if c != gdf.geometry.name else c for c in gdf.columns]
    n = len(gdf)
    rows = _Rows(p, np.arange(1, n + 1), "feature")
    geom = gdf.geometry
    is_point = (geom.geom_type == "Point").to_numpy() & ~geom.is_empty.to_numpy()
    gtypes = geom.geom_type.to_numpy(object)
    rows.flag(~is_point, "geometry", lambda i: f"expected a Point, got {gtypes[i] or 'no geometry'}")
    garr = np.asarray(geom.values, dtype=object)
    xy = np.zeros((n, 2))
    if is_point.any():
        xy[is_point, 0] = shapely.get_x(garr[is_point])
        xy[is_point, 1] = shapely.get_y(garr[is_point])
    lon_raw = np.array([f"{v:.10g}" for v in xy[:, 0]], dtype=object)
    lat_raw = np.array([f"{v:.10g}" for v in xy[:, 1]], dtype=object)
    lon, lat = _check_lonlat(rows, lon_raw, lat_raw, parts, "lon", "lat")

    def get(c):
        if c == "site_id" and c not in gdf.columns and "id" in gdf.columns:
            return gdf["id"]
        return gdf[c] if c in gdf.columns else None

    cols = _site_columns(rows, get, n, operators, bands, operator, operator_required)
    return _finish(p, rows, on_bad_row, lon, lat, parts, cols)


def read_opencellid(path, region, *, radios: Sequence[str] = ("NR", "LTE"),
                    operators: Sequence[str] | None = None, on_bad_row: str = "skip", collapse_m: float = 1.0):
    """Read an OpenCellID cell export and collapse its cells into physical sites.

    Parameters
    ----------
    path : path
        CSV with the columns of :data:`OPENCELLID_COLUMNS` (a header line ``radio,mcc,...``
        is optional: per-country exports have none).
    region : GeoDataFrame or None
        District polygons; cells outside are dropped and counted.
    radios : sequence of str
        Radio technologies kept (``NR``, ``LTE``; also ``GSM``, ``UMTS``, ``CDMA``).
    operators : sequence of str, optional
        Operator ids kept (:data:`OPERATOR_NAMES` keys); ``None`` keeps all four.
    on_bad_row : {"skip", "raise"}
    collapse_m : float
        Cells of one operator whose positions round to the same ``collapse_m`` grid
        point (EPSG:32651) become one site at their mean position.

    Returns
    -------
    sites : PhysicalSites
        ``operator`` from :data:`OPERATOR_OF_MNC`; ``band`` empty (OpenCellID has no
        band); ``site_ref`` ``"mcc-net-area-cell"`` of the first cell; ``n_cells``.
    report : ReadReport
        ``n_filtered`` counts rows of another radio, another MCC than 460, an MNC that
        is not in :data:`OPERATOR_OF_MNC`, or an operator not in ``operators``;
        ``n_kept`` counts cells, ``n_sites`` sites.

    Notes
    -----
    Bad rows: non-integer ``mcc``/``net``; non-numeric, out-of-range or swapped
    ``lon``/``lat``. Parsing is vectorised (pandas C parser, string columns, then
    ``to_numeric``); a million rows take a few seconds (``benchmarks/bench_sites.py``).
    """
    _check_on_bad_row(on_bad_row)
    if not collapse_m > 0:
        raise InputError("read_opencellid", "collapse_m", f"expected a distance > 0 m, got {collapse_m!r}")
    if operators is not None:
        unknown = [o for o in operators if o not in OPERATOR_NAMES]
        if unknown:
            raise InputError("read_opencellid", "operators",
                             f"expected ids among {', '.join(OPERATOR_NAMES)}, got {unknown[0]!r}")
    p = _require_file(path)
    parts = _region_parts(region)
    with open(p, encoding="utf-8-sig") as fh:
        first = fh.readline()
    if not first.strip():
        raise SiteFileError(p, "line 1", "expected OpenCellID rows (radio,mcc,net,...); the file is empty")
    has_header = first.strip().lower().startswith("radio")
    if "," not in first:
        other = next((d for d in (";", "\t", "|") if d in first), None)
        hint = f"; the line looks {other!r}-delimited" if other else ""
        raise SiteFileError(p, "line 1", f"expected {len(OPENCELLID_COLUMNS)} comma-separated columns "
                                         f"radio,mcc,net,...{hint}")
    if has_header:
        head = [h.strip() for h in first.strip().split(",")]
        missing = [c for c in ("radio", "mcc", "net", "area", "cell", "lon", "lat") if c not in head]
        if missing:
            raise SiteFileError(p, "line 1", f"expected OpenCellID columns {','.join(OPENCELLID_COLUMNS)}; "
                                             f"missing {', '.join(missing)}")
    usecols = ["radio", "mcc", "net", "area", "cell", "lon", "lat"]
    try:
        # lon/lat are left to the C parser's inference: float64 for a clean file (fast),
        # text when some cell is not a number (then parsed with to_numeric below).
        df = pd.read_csv(p, header=0 if has_header else None, names=None if has_header else list(OPENCELLID_COLUMNS),
                         usecols=usecols, dtype={c: str for c in ("radio", "mcc", "net", "area", "cell")},
                         keep_default_na=False, encoding="utf-8-sig", engine="c", low_memory=False)
    except pd.errors.ParserError as exc:
        raise SiteFileError(p, None, f"not a valid OpenCellID CSV ({str(exc).strip().splitlines()[-1]})") from None
    n_all = len(df)
    lines_all = np.arange(n_all) + (2 if has_header else 1)

    def coded(col, parse):
        """Per-row values of a column with few distinct values (parse each distinct value once)."""
        codes, uniques = pd.factorize(df[col], sort=False)
        return parse(np.asarray(uniques, dtype=object))[codes]

    wanted_radio = {r.strip().upper() for r in radios}
    keep = coded("radio", lambda u: np.array([v.strip().upper() in wanted_radio for v in u], bool))
    n_filtered = int((~keep).sum())
    df, lines = df.loc[keep].reset_index(drop=True), lines_all[keep]
    mcc = coded("mcc", _numbers)
    net = coded("net", _numbers)
    mcc_ok = np.isfinite(mcc) & (mcc == np.round(mcc))
    net_ok = np.isfinite(net) & (net == np.round(net))
    # choice filters (not errors): MCC 460, a known MNC, a selected operator
    codes = np.array(sorted(OPERATOR_OF_MNC))
    op_ids = list(OPERATOR_NAMES)
    op_of_code = np.array([op_ids.index(OPERATOR_OF_MNC[c]) for c in codes], dtype=np.int8)
    net_i = np.where(net_ok, net, -1).astype(np.int64)
    pos = np.clip(np.searchsorted(codes, net_i), 0, codes.size - 1)
    known = codes[pos] == net_i
    op_code = np.where(known, op_of_code[pos], -1).astype(np.int8)
    wanted = np.ones(len(op_ids), bool) if operators is None else np.isin(op_ids, list(operators))
    chosen = (mcc == 460) & known & wanted[np.maximum(op_code, 0)]
    out_of_scope = mcc_ok & net_ok & ~chosen
    n_filtered += int(out_of_scope.sum())
    sub = np.flatnonzero(~out_of_scope)
    mcc_raw, net_raw = df["mcc"].to_numpy(object)[sub], df["net"].to_numpy(object)[sub]
    rows_sub = _Rows(p, lines[sub], "line")
    rows_sub.flag(~mcc_ok[sub], "mcc", lambda i: f"expected an integer MCC, got {_q(mcc_raw[i])}")
    rows_sub.flag(~net_ok[sub], "net", lambda i: f"expected an integer MNC, got {_q(net_raw[i])}")
    lon_raw = df["lon"].to_numpy()[sub]
    lat_raw = df["lat"].to_numpy()[sub]
    lon, lat = _check_lonlat(rows_sub, lon_raw, lat_raw, parts)
    if on_bad_row == "raise":
        rows_sub.raise_first()
    good = ~rows_sub.bad
    gi = sub[good]
    x, y = _to_xy_m(lon[good], lat[good])
    d = _district_of(parts, x, y)
    inside = d >= 0 if parts is not None else np.ones(x.size, bool)
    gi, x, y, d = gi[inside], x[inside], y[inside], d[inside]
    lon_k, lat_k = lon[good][inside], lat[good][inside]
    op_k = op_code[gi]
    # collapse cells of one operator at one (rounded) position into a site
    xr = np.round(x / collapse_m).astype(np.int64)
    yr = np.round(y / collapse_m).astype(np.int64)
    order = np.lexsort((yr, xr, op_k))
    if order.size:
        ks = np.stack([op_k[order].astype(np.int64), xr[order], yr[order]])
        start = np.flatnonzero(np.concatenate([[True], np.any(ks[:, 1:] != ks[:, :-1], axis=0)]))
    else:
        start = np.zeros(0, np.intp)
    counts = np.diff(np.append(start, order.size))
    mean = (lambda v: np.add.reduceat(v[order], start) / counts) if order.size else (lambda v: np.zeros(0))
    first = order[start]
    n_sites = start.size
    fr = gi[first]
    ref = np.array([f"{a.strip()}-{b.strip()}-{c.strip()}-{e.strip()}" for a, b, c, e in zip(
        df["mcc"].to_numpy(object)[fr], df["net"].to_numpy(object)[fr], df["area"].to_numpy(object)[fr],
        df["cell"].to_numpy(object)[fr])], dtype=object)
    sites = PhysicalSites(
        x_m=mean(x), y_m=mean(y), lon_deg=mean(lon_k), lat_deg=mean(lat_k), district_idx=d[first],
        h_bs_m=np.full(n_sites, np.nan, np.float32), tilt_deg=np.full(n_sites, np.nan, np.float32),
        az_deg=np.zeros((n_sites, 0), np.float32),
        operator=np.asarray(op_ids, dtype=str)[op_k[first]] if n_sites else np.zeros(0, "<U1"),
        band=np.full(n_sites, "", "<U1"), source=np.full(n_sites, f"file:{p.name}"),
        site_ref=ref.astype(str) if n_sites else np.zeros(0, "<U1"), n_cells=counts.astype(np.int32),
    )
    report = ReadReport(
        path=str(p), n_rows=n_all, n_filtered=n_filtered, n_bad=int(rows_sub.bad.sum()),
        n_outside=int((~inside).sum()), n_kept=int(gi.size), n_sites=int(n_sites),
        bad_rows=tuple(rows_sub.listed(MAX_LISTED_BAD_ROWS)),
    )
    return sites, report


# --------------------------------------------------------------------------------------
# density placement
# --------------------------------------------------------------------------------------


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

    def to_sites(self, source: str = "density") -> PhysicalSites:
        """As :class:`PhysicalSites` (WGS84 positions computed, nothing else given)."""
        return PhysicalSites.from_xy(self.x_m, self.y_m, self.district_idx, source)


_SQRT3 = math.sqrt(3.0)


def _hex_lattice(bounds, s: float, offset) -> tuple[np.ndarray, np.ndarray]:
    """Points of a hexagonal lattice with spacing ``s`` covering ``bounds`` (rows along x)."""
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
        x, y = _hex_lattice(bounds, s, offset)
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
    if str(districts_gdf.crs).upper() != GRID_CRS:
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
    cat = (lambda a, dt: np.concatenate(a).astype(dt) if a else np.zeros(0, dt))
    return DensityPlacement(cat(xs, np.float64), cat(ys, np.float64), cat(ds, np.int16), spacing)


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
        if self.scenario not in SCENARIOS:
            raise InputError("SiteClass", "scenario", f"expected one of {', '.join(SCENARIOS)}, got {self.scenario!r}")
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


def build_site_table(sites: PhysicalSites, *, ran: str, carriers: Sequence[CarrierSpec], rng: np.random.Generator,
                     district_class: Sequence[str] | None = None, site_classes: Mapping[str, SiteClass] | None = None,
                     site_class: SiteClass | None = None, n_sectors: int = 3, site_id_start: int = 0,
                     spacing_m=None, h_ut_m: float = 1.5, max_tilt_deg: float = 20.0) -> SiteTable:
    """Split physical sites into sector-carrier rows.

    Parameters
    ----------
    sites : PhysicalSites
        From a reader or :meth:`DensityPlacement.to_sites`; all of one radio network.
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
    if not int_like or not 1 <= n_sectors <= _MAX_SECTORS:
        raise InputError(src, "n_sectors", f"expected an integer in [1, {_MAX_SECTORS}], got {n_sectors!r}")
    n = len(sites)
    rot = rng.uniform(0.0, 360.0 / n_sectors, n)
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
    h = np.where(np.isfinite(sites.h_bs_m), sites.h_bs_m, h_cls).astype(np.float32)
    # sector bearings [n, S], NaN-padded
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


def build_small_cells(districts_gdf, counts_per_district, rng: np.random.Generator, *, ran: str,
                      carriers: Sequence[CarrierSpec], h_bs_m: float = 10.0, n_sectors: int = 1,
                      jitter_frac: float = 0.25, site_id_start: int = 0, min_spacing_m: float = 0.0,
                      grid_res_m: float | None = None, source: str = "density") -> SiteTable:
    """UMi small cells by density (e.g. only in the central districts: zero counts elsewhere).

    :func:`place_by_density` then :func:`build_site_table` with
    ``SiteClass("umi", h_bs_m)`` for every site; pass carriers with the small cells'
    lower power and gain. TR 38.901 Table 7.4.1-1 UMi-Street Canyon: h_BS = 10 m.
    ``source`` labels the rows (``gigacity run`` uses ``"small-cell"``).
    """
    placement = place_by_density(districts_gdf, counts_per_district, rng, jitter_frac,
                                 min_spacing_m=min_spacing_m, grid_res_m=grid_res_m)
    return build_site_table(placement.to_sites(source), ran=ran, carriers=carriers, rng=rng,
                            site_class=SiteClass("umi", h_bs_m), n_sectors=n_sectors, site_id_start=site_id_start)
