"""The only reader of geodata files: district polygons, census table, key places.

Districts are read in EPSG:4326 (as shipped) and projected to the metric CRS of the
simulation: the one the scenario names, else the UTM zone of the region's centroid
(:func:`utm_crs_of`; Shanghai, 120.85°E–122.01°E: zone 51N, EPSG:32651 = :data:`GRID_CRS`).

Known fact handled here: the OSM-derived polygons of the five coastal districts
(Baoshan, Pudong, Jinshan, Fengxian, Chongming) run to the outer edge of tidal flats, so
the polygon area (7,003.5 km² in EPSG:32651) exceeds the official land area (6,340.5 km²).
Both areas are kept (``area_km2_polygon``, ``area_km2_official``); population and
households are spread so that district totals stay exact (see :mod:`sim.grid`), and every
area-based figure says which area it uses.

This is also the one place of the coordinate reference systems: :data:`GRID_CRS` (the
grid, metres), :data:`WGS84_CRS` (longitude/latitude) and the transforms between them,
:func:`lonlat_to_xy_m` and :func:`xy_m_to_lonlat` (pyproj, ``always_xy=True``).
"""

from __future__ import annotations

import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import GeodataError

__all__ = [
    "GRID_CRS",
    "WGS84_CRS",
    "utm_crs_of",
    "lonlat_to_xy_m",
    "xy_m_to_lonlat",
    "ATTRIBUTION",
    "CENSUS_SOURCE",
    "GeodataWarning",
    "read_census",
    "read_districts",
    "read_key_places",
    "default_geodata_dir",
    "VECTOR_DRIVERS",
    "check_utf8",
    "read_vector",
]

GRID_CRS = "EPSG:32651"
"""Metric CRS of the shipped Shanghai data (WGS 84 / UTM zone 51N); the default of the transforms."""

WGS84_CRS = "EPSG:4326"
"""Geographic CRS of longitudes and latitudes (degrees): WGS 84."""

ATTRIBUTION = "District boundaries © OpenStreetMap contributors, ODbL 1.0, via geoBoundaries"
"""ODbL 1.0 attribution of the district polygons (geodata/SOURCE.md), written without URL;
every map and report that draws or uses the districts carries it."""

CENSUS_SOURCE = (
    "Population: 7th national census, 2020 (National Bureau of Statistics of China, "
    "Tabulation on the 2020 China Population Census by County, China Statistics Press, 2022); "
    "households: estimate from the same tabulation (family households); land areas: "
    "Shanghai Statistical Yearbook"
)
"""Source of the census table (geodata/SOURCE.md, section 2)."""

CENSUS_COLUMNS = (
    "code",
    "name_en",
    "name_zh",
    "population_2020",
    "households_2020",
    "area_km2_official",
)
MAX_DISTRICT_POPULATION = 100_000_000
"""Largest census population (and household count) of one district accepted: ten times the
largest urban district anywhere (Pudong: 5.68 million, census 2020); a typo guard, not a model."""
MAX_DISTRICT_AREA_KM2 = 100_000.0
"""Largest official district area accepted, km² (Shanghai is 6,340.5 km² in all)."""

KEY_PLACE_COLUMNS = ("id", "category", "name_en", "name_zh", "lon", "lat", "district_code")
KEY_PLACE_CATEGORIES = ("airport", "railway_station", "hospital", "university", "scenic_area")


@cache
def _transformer(src: str, dst: str):
    from pyproj import Transformer

    return Transformer.from_crs(src, dst, always_xy=True)


def utm_crs_of(lon_deg: float, lat_deg: float) -> str:
    """The WGS 84 / UTM zone CRS of a point: ``EPSG:326zz`` north, ``EPSG:327zz`` south.

    Zone ``zz = floor((lon + 180) / 6) + 1`` (6° zones from 180°W; the Norway/Svalbard
    exceptions do not concern China). Shanghai (121.5°E) -> EPSG:32651, Chengdu (104.1°E)
    -> EPSG:32648, Beijing (116.4°E) -> EPSG:32650.
    """
    zone = min(60, max(1, int(math.floor((float(lon_deg) + 180.0) / 6.0)) + 1))
    return f"EPSG:{32600 + zone if lat_deg >= 0 else 32700 + zone}"


def _crs_text(crs) -> str:
    return crs if isinstance(crs, str) else crs.to_string()


def lonlat_to_xy_m(lon_deg, lat_deg, crs=GRID_CRS) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 longitudes and latitudes (deg) to positions in the metric grid ``crs`` (m), float64 arrays."""
    x, y = _transformer(WGS84_CRS, _crs_text(crs)).transform(np.asarray(lon_deg, float), np.asarray(lat_deg, float))
    return np.asarray(x, np.float64), np.asarray(y, np.float64)


def xy_m_to_lonlat(x_m, y_m, crs=GRID_CRS) -> tuple[np.ndarray, np.ndarray]:
    """Positions in the metric grid ``crs`` (m) to WGS84 longitudes and latitudes (deg), float64 arrays."""
    lon, lat = _transformer(_crs_text(crs), WGS84_CRS).transform(np.asarray(x_m, float), np.asarray(y_m, float))
    return np.asarray(lon, np.float64), np.asarray(lat, np.float64)


class GeodataWarning(UserWarning):
    """A geodata file was usable but something was repaired or dropped."""


def default_geodata_dir() -> Path:
    """The ``geodata/`` folder shipped beside the package (a source checkout)."""
    return Path(__file__).resolve().parent.parent / "geodata"


def _require_file(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise GeodataError(path, None, "file not found")
    return path


def _read_text_table(path: Path, columns) -> pd.DataFrame:
    """A CSV read as text, with every one of ``columns`` present."""
    _require_file(path)
    check_utf8(path, GeodataError, "CSV table")
    try:
        with open(path, "rb") as fh:   # a file handle: pandas never sees a name it could take for a URL
            df = pd.read_csv(fh, dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise GeodataError(path, None, f"not a readable CSV table ({exc.__class__.__name__})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise GeodataError(
            path, f"column {missing[0]}", f"expected columns {', '.join(columns)}; missing {', '.join(missing)}"
        )
    return df


def _numeric_column(df: pd.DataFrame, column: str, path: Path, *, integer: bool, lo: float | None = None,
                    hi: float | None = None, lo_open: bool = False) -> np.ndarray:
    """A validated numeric column; the first bad cell is reported with its line number.

    ``lo``/``hi`` bound the values (``[lo, hi]``, or ``(lo, hi]`` with ``lo_open``), checked
    before any conversion so that a huge value is reported, not overflowed.
    """
    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if not bad.any():
        bad = values < 0
        what = "a non-negative number"
    else:
        what = "an integer" if integer else "a number"
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise GeodataError(
            path,
            f"line {row + 2}, column {column}",
            f"expected {what}, got {df[column].iloc[row]!r}",
        )
    arr = values.to_numpy(dtype=float)
    if lo is not None or hi is not None:
        lo_v = -np.inf if lo is None else lo
        hi_v = np.inf if hi is None else hi
        out = (arr <= lo_v if lo_open else arr < lo_v) | (arr > hi_v)
        if out.any():
            row = int(np.flatnonzero(out)[0])
            rng = f"{'(' if lo_open else '['}{lo_v:g}, {hi_v:g}]"
            raise GeodataError(path, f"line {row + 2}, column {column}",
                               f"expected a value in {rng}, got {df[column].iloc[row]!r}")
    if integer:
        if np.any(arr != np.round(arr)):
            row = int(np.flatnonzero(arr != np.round(arr))[0])
            raise GeodataError(
                path, f"line {row + 2}, column {column}", f"expected an integer, got {arr[row]!r}"
            )
        return arr.astype(np.int64)
    return arr


def read_census(csv_path) -> pd.DataFrame:
    """Read the per-district census table.

    Columns: ``code, name_en, name_zh, population_2020, households_2020,
    area_km2_official`` (see ``geodata/SOURCE.md``: 7th national census, 2020-11-01;
    family households derived from the NBS county tabulation).

    Returns
    -------
    DataFrame indexed 0..n-1, sorted by ``code``, with ``population`` and
    ``households`` (int64) and ``area_km2_official`` (float64).

    Raises
    ------
    GeodataError
        Missing file or column, duplicate code, non-numeric or negative value.
    """
    path = Path(csv_path)
    df = _read_text_table(path, CENSUS_COLUMNS)
    codes = df["code"].str.strip()
    bad_code = ~codes.str.fullmatch(r"\d{6}")
    if bad_code.any():
        row = int(np.flatnonzero(bad_code.to_numpy())[0])
        raise GeodataError(path, f"line {row + 2}, column code",
                           f"expected a 6-digit code, got {df['code'].iloc[row]!r}")
    dup = codes.duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise GeodataError(path, f"line {row + 2}, column code", f"duplicate district code {codes.iloc[row]}")
    out = pd.DataFrame(
        {
            "code": codes.astype(object),
            "name_en": df["name_en"].astype(object),
            "name_zh": df["name_zh"].astype(object),
            "population": _numeric_column(df, "population_2020", path, integer=True, lo=1, hi=MAX_DISTRICT_POPULATION),
            "households": _numeric_column(df, "households_2020", path, integer=True, lo=1,
                                          hi=MAX_DISTRICT_POPULATION),
            "area_km2_official": _numeric_column(df, "area_km2_official", path, integer=False, lo=0.0,
                                                 hi=MAX_DISTRICT_AREA_KM2, lo_open=True),
        }
    )
    more = out["households"] > out["population"]
    if more.any():
        row = int(np.flatnonzero(more.to_numpy())[0])
        raise GeodataError(path, f"line {row + 2}, column households_2020",
                           f"expected at most population_2020 ({out['population'].iloc[row]}) households "
                           f"(a household has at least one person), got {out['households'].iloc[row]}")
    return out.sort_values("code", kind="stable").reset_index(drop=True)


VECTOR_DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG"}
"""File suffix -> the one GDAL vector driver that opens it. GDAL picks a driver by content
when given a bare path, and some drivers (VRT, and every driver through ``/vsicurl/``) follow
references to other files or URLs: a file named ``.geojson`` holding a VRT would make a read
fetch any URL it names. :func:`read_vector` names the driver (``GeoJSON:path``,
``GPKG:path``) after checking the file starts as that format does, and refuses other suffixes."""

_SQLITE_MAGIC = b"SQLite format 3\x00"
_UTF8_CHUNK = 1 << 20


def check_utf8(path, error=GeodataError, what: str = "file") -> None:
    """Raise ``error`` naming the line of the first byte of ``path`` that is not UTF-8 text.

    Reads in 1 MiB chunks (constant memory whatever the file size).
    """
    import codecs

    dec = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(_UTF8_CHUNK)
            try:
                dec.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                line += chunk.count(b"\n", 0, exc.start)
                raise error(path, f"line {line}",
                            f"expected UTF-8 text in this {what}, got byte 0x{chunk[exc.start]:02x}") from None
            if not chunk:
                return
            line += chunk.count(b"\n")


def _first_bytes(path: Path, n: int = 64) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def read_vector(path, *, error=GeodataError, what: str = "vector file"):
    """A GeoJSON (``.geojson``/``.json``) or GeoPackage (``.gpkg``) file as a GeoDataFrame.

    The driver is the one the suffix names (:data:`VECTOR_DRIVERS`), never chosen by GDAL
    from the content: a GeoJSON file must start with ``{`` (after white space) and be UTF-8,
    a GeoPackage with the SQLite header. Anything else is a one-line ``error`` naming the file.
    """
    import geopandas as gpd
    import pyogrio
    import pyogrio.errors

    path = Path(path)
    driver = VECTOR_DRIVERS.get(path.suffix.lower())
    if driver is None:
        raise error(path, None, f"expected a {what} ending in {', '.join(VECTOR_DRIVERS)} "
                                f"(GeoJSON or GeoPackage), got {path.suffix or 'no suffix'!r}")
    head = _first_bytes(path)
    if driver == "GeoJSON":
        text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not text.startswith(b"{"):
            shown = head[:30].decode("utf-8", "replace").splitlines()[0] if head.strip() else "an empty file"
            raise error(path, None, f"expected GeoJSON (a JSON object starting with '{{'), got {shown!r}")
        check_utf8(path, error, "GeoJSON file")
    elif not head.startswith(_SQLITE_MAGIC):
        raise error(path, None, "expected a GeoPackage (an SQLite file), got something else")
    try:
        return gpd.GeoDataFrame(pyogrio.read_dataframe(f"{driver}:{path.resolve()}"))
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise error(path, None, f"not a readable {driver} file ({reason[:200]})") from None


MIN_DISTRICT_AREA_KM2 = 0.01
"""Smallest district polygon accepted, km² (one hectare; a 100 m grid pixel): below it the
polygon is degenerate (zero area, a line, coordinates in the wrong unit)."""


@cache
def grid_area_of_use(crs: str = GRID_CRS) -> tuple[float, float, float, float]:
    """``(west, south, east, north)`` in degrees where the grid ``crs`` is valid (pyproj's area of use)."""
    from pyproj import CRS

    a = CRS.from_user_input(crs).area_of_use
    if a is None:
        return (-180.0, -90.0, 180.0, 90.0)
    return (a.west, a.south, a.east, a.north)


def _check_district_extent(path: Path, gdf, codes, crs: str | None = None) -> str:
    """Every district polygon in WGS84 range and inside the grid CRS's area of use (before projecting).

    ``crs`` None: the UTM zone of the polygons' centre (:func:`utm_crs_of`). Returns the grid CRS.
    """
    import shapely

    bounds = shapely.bounds(np.asarray(gdf.geometry.values, dtype=object))
    if not gdf.crs.is_geographic:
        finite = np.isfinite(bounds).all(axis=1)
        if finite.all():
            lon, lat = _transformer(gdf.crs.to_string(), WGS84_CRS).transform(bounds[:, [0, 2, 0, 2]],
                                                                               bounds[:, [1, 1, 3, 3]])
            bounds = np.stack([lon.min(axis=1), lat.min(axis=1), lon.max(axis=1), lat.max(axis=1)], axis=1)
    with np.errstate(invalid="ignore"):
        bad_deg = ~(np.isfinite(bounds).all(axis=1) & (bounds[:, 0] >= -180) & (bounds[:, 2] <= 180)
                    & (bounds[:, 1] >= -90) & (bounds[:, 3] <= 90))
    if bad_deg.any():
        i = int(np.flatnonzero(bad_deg)[0])
        raise GeodataError(path, f"feature {i} (code {codes.iloc[i]})",
                           f"expected longitudes in [-180, 180] and latitudes in [-90, 90] degrees "
                           f"({gdf.crs.to_string()}), got bounds {tuple(float(f'{v:.6g}') for v in bounds[i])}")
    # the area once repaired: a bow-tie ring has zero signed area but a valid repair (make_valid is a no-op
    # on valid polygons); a ring of collinear points repairs to a line
    flat = shapely.area(shapely.make_valid(np.asarray(gdf.geometry.values, dtype=object))) <= 0
    if flat.any():
        i = int(np.flatnonzero(flat)[0])
        raise GeodataError(path, f"feature {i} (code {codes.iloc[i]})",
                           "expected a polygon with an area, got a zero-area (degenerate) polygon")
    if crs is None:
        lon0, lat0 = bounds[:, :2].min(axis=0)
        lon1, lat1 = bounds[:, 2:].max(axis=0)
        crs = utm_crs_of(0.5 * (lon0 + lon1), 0.5 * (lat0 + lat1))
    west, south, east, north = grid_area_of_use(crs)
    outside = (bounds[:, 0] < west) | (bounds[:, 2] > east) | (bounds[:, 1] < south) | (bounds[:, 3] > north)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise GeodataError(path, f"feature {i} (code {codes.iloc[i]})",
                           f"expected a polygon inside the grid CRS {crs}'s area of use (lon {west:g} to "
                           f"{east:g}, lat {south:g} to {north:g}), got lon {bounds[i, 0]:.4g} to {bounds[i, 2]:.4g}, "
                           f"lat {bounds[i, 1]:.4g} to {bounds[i, 3]:.4g}")
    return crs


def read_districts(geojson_path, census_csv_path, crs: str | None = None):
    """Read district polygons and join the census table; project to ``crs`` (default: UTM of the centroid).

    Parameters
    ----------
    geojson_path : path
        District polygons (GeoJSON, EPSG:4326) with properties ``code``, ``name_en``,
        ``name_zh`` (geoBoundaries CHN ADM3, © OpenStreetMap contributors, ODbL 1.0).
    census_csv_path : path
        The census table, see :func:`read_census`.
    crs : str, optional
        Metric CRS of the grid, e.g. ``"EPSG:32650"``; None: :func:`utm_crs_of` the centre
        of the polygons' bounding box (EPSG:32651 for Shanghai).

    Returns
    -------
    GeoDataFrame in ``crs``, sorted by ``code`` (row position = district index),
    columns ``code, name_en, name_zh, population, households, area_km2_official,
    area_km2_polygon, geometry``.

    Notes
    -----
    Invalid polygons are repaired with :func:`shapely.make_valid` (keeping the polygonal
    part) and a :class:`GeodataWarning` names each repaired feature. A district in one file
    but not the other is an error.
    """
    import geopandas as gpd
    import shapely

    gpath = _require_file(Path(geojson_path))
    census = read_census(census_csv_path)
    gdf = read_vector(gpath, what="district file")
    for column in ("code", "name_en", "name_zh"):
        if column not in gdf.columns:
            raise GeodataError(gpath, f"property {column}", "expected on every feature; missing")
    if gdf.crs is None:
        raise GeodataError(gpath, "crs", "expected a CRS (EPSG:4326 for GeoJSON); none given")
    if gdf.geometry.isna().any() or gdf.geometry.is_empty.any():
        row = int(np.flatnonzero((gdf.geometry.isna() | gdf.geometry.is_empty).to_numpy())[0])
        raise GeodataError(gpath, f"feature {row} (code {gdf['code'].iloc[row]})",
                           "expected a polygon; geometry is empty")
    gtype = gdf.geometry.geom_type
    bad_type = ~gtype.isin(["Polygon", "MultiPolygon"])
    if bad_type.any():
        row = int(np.flatnonzero(bad_type.to_numpy())[0])
        raise GeodataError(
            gpath, f"feature {row} (code {gdf['code'].iloc[row]})",
            f"expected Polygon or MultiPolygon, got {gtype.iloc[row]}",
        )
    codes = gdf["code"].astype(str).str.strip()
    if codes.duplicated().any():
        raise GeodataError(gpath, "property code", f"duplicate district code {codes[codes.duplicated()].iloc[0]}")
    crs = _check_district_extent(gpath, gdf, codes, crs)
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        names = ", ".join(codes[invalid].tolist())
        repaired = shapely.make_valid(gdf.geometry.values[invalid.to_numpy()])
        polys = [shapely.MultiPolygon([p for p in shapely.get_parts(g) if p.geom_type == "Polygon"]) for g in repaired]
        geoms = gdf.geometry.values.copy()
        geoms[invalid.to_numpy()] = polys
        gdf = gdf.set_geometry(gpd.GeoSeries(geoms, crs=gdf.crs, index=gdf.index))
        warnings.warn(
            f"{gpath}: invalid polygon(s) for district(s) {names} repaired with shapely.make_valid",
            GeodataWarning,
            stacklevel=2,
        )
    poly_codes = set(codes)
    census_codes = set(census["code"])
    only_poly = sorted(poly_codes - census_codes)
    only_census = sorted(census_codes - poly_codes)
    if only_poly:
        raise GeodataError(census_csv_path, "column code",
                           f"district {only_poly[0]} of {gpath.name} missing from the census table")
    if only_census:
        raise GeodataError(gpath, "property code", f"district {only_census[0]} of the census table has no polygon")
    projected = gdf.set_geometry(gdf.geometry).to_crs(crs)
    geom = gpd.GeoSeries(projected.geometry.values, index=codes.values, crs=crs)
    census = census.set_index("code")
    out = gpd.GeoDataFrame(
        {
            "code": census.index.to_numpy(dtype=object),
            "name_en": census["name_en"].to_numpy(),
            "name_zh": census["name_zh"].to_numpy(),
            "population": census["population"].to_numpy(),
            "households": census["households"].to_numpy(),
            "area_km2_official": census["area_km2_official"].to_numpy(),
        },
        geometry=geom.loc[census.index].values,
        crs=crs,
    )
    out["area_km2_polygon"] = out.geometry.area.to_numpy() / 1e6
    tiny = out["area_km2_polygon"].to_numpy() < MIN_DISTRICT_AREA_KM2
    if tiny.any():
        i = int(np.flatnonzero(tiny)[0])
        raise GeodataError(gpath, f"feature code {out['code'].iloc[i]}",
                           f"expected a polygon of at least {MIN_DISTRICT_AREA_KM2:g} km², got "
                           f"{out['area_km2_polygon'].iloc[i]:.3g} km² (a zero-area or degenerate polygon?)")
    return out[
        ["code", "name_en", "name_zh", "population", "households", "area_km2_official", "area_km2_polygon", "geometry"]
    ]


def read_key_places(csv_path, district_codes=None, crs=GRID_CRS):
    """Read the key places (重点场所) for the 5G-reach indicator; project to ``crs`` (the grid's).

    Parameters
    ----------
    csv_path : path
        CSV with ``id, category, name_en, name_zh, lon, lat, district_code`` (WGS84).
    district_codes : sequence of str, optional
        Known district codes; a place naming another code is an error.

    Returns
    -------
    GeoDataFrame (EPSG:32651) with ``id, category, name_en, name_zh, district_code,
    lon_deg, lat_deg, geometry``.
    """
    import geopandas as gpd

    path = Path(csv_path)
    df = _read_text_table(path, KEY_PLACE_COLUMNS)
    lon = _numeric_column(df, "lon", path, integer=False)
    lat = _numeric_column(df, "lat", path, integer=False)
    bad = (lon < -180) | (lon > 180) | (lat < -90) | (lat > 90)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise GeodataError(path, f"line {row + 2}, column lon/lat",
                           f"expected WGS84 degrees, got {lon[row]}, {lat[row]}")
    cat_bad = ~df["category"].isin(KEY_PLACE_CATEGORIES)
    if cat_bad.any():
        row = int(np.flatnonzero(cat_bad.to_numpy())[0])
        raise GeodataError(
            path,
            f"line {row + 2}, column category",
            f"expected one of {', '.join(KEY_PLACE_CATEGORIES)}, got {df['category'].iloc[row]!r}",
        )
    if district_codes is not None:
        unknown = ~df["district_code"].isin(list(district_codes))
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise GeodataError(
                path, f"line {row + 2}, column district_code",
                f"unknown district code {df['district_code'].iloc[row]!r}",
            )
    pts = gpd.GeoSeries.from_xy(lon, lat, crs=WGS84_CRS).to_crs(crs)
    return gpd.GeoDataFrame(
        {
            "id": df["id"].astype(object).to_numpy(),
            "category": df["category"].astype(object).to_numpy(),
            "name_en": df["name_en"].astype(object).to_numpy(),
            "name_zh": df["name_zh"].astype(object).to_numpy(),
            "district_code": df["district_code"].astype(object).to_numpy(),
            "lon_deg": lon,
            "lat_deg": lat,
        },
        geometry=pts.values,
        crs=crs,
    )
