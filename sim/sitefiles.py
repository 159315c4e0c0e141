"""Site-file readers: CSV, GeoJSON and OpenCellID exports to physical sites.

:func:`read_sites_csv`, :func:`read_sites_geojson` and :func:`read_opencellid` return
the *physical sites* of a file (:class:`sim.sites.PhysicalSites`) and a
:class:`ReadReport` (rows read, kept, bad, filtered, outside the region). Bad rows are
skipped and reported (:class:`BadRow`, the first :data:`MAX_LISTED_BAD_ROWS` listed) or
raised as :class:`~sim.errors.SiteFileError`. OpenCellID operators come from the mobile
network code (:data:`OPERATOR_OF_MNC`); :data:`RAN_OF_OPERATOR` maps an operator to the
radio network that owns its sites.

Positions are projected to the grid CRS (:data:`sim.geodata.GRID_CRS`) and matched to
the region's districts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError, SiteFileError
from .geodata import GRID_CRS, WGS84_CRS, check_utf8, lonlat_to_xy_m, read_vector, xy_m_to_lonlat
from .sites import MAX_SECTORS, PhysicalSites

__all__ = [
    "OPERATOR_OF_MNC",
    "OPERATOR_NAMES",
    "RAN_OF_OPERATOR",
    "OPENCELLID_COLUMNS",
    "MAX_LISTED_BAD_ROWS",
    "MAX_SITE_ROWS",
    "count_rows",
    "BadRow",
    "ReadReport",
    "read_sites_csv",
    "read_sites_geojson",
    "read_opencellid",
]

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

MAX_SITE_ROWS = 2_000_000
"""Most rows of a site file a run reads (:func:`count_rows`, checked before parsing): about
forty times Shanghai's 5G sites. The memory estimate (``sim.app.inputs.SITE_ROW_BYTES``, about
9 kB per row) usually refuses a large file first: a 1,000,000-row file peaked at 7.1 GiB."""


def count_rows(path, site_format: str) -> int:
    """Data rows of a site file, counted without parsing: lines (less a header) for CSV and
    OpenCellID, ``"Feature"`` members for GeoJSON. Constant memory (1 MiB chunks)."""
    p = _require_file(path)
    token = b'"Feature"' if site_format == "geojson" else b"\n"
    n, tail, last = 0, b"", b""
    with open(p, "rb") as fh:
        while chunk := fh.read(1 << 20):
            buf = tail + chunk
            n += buf.count(token)
            tail = buf[-(len(token) - 1):] if len(token) > 1 else b""
            last = chunk[-1:]
    if site_format != "geojson":
        n += 1 if last not in (b"\n", b"") else 0
        n = max(n - 1, 0) if site_format == "csv" else n
    return n


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
    crs = region.crs.to_string() if region.crs is not None and region.crs.is_projected else GRID_CRS
    gdf = region if region.crs is not None and region.crs.to_string() == crs else region.to_crs(crs)
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    for g in geoms:
        shapely.prepare(g)
    bounds = shapely.bounds(geoms)
    xmin, ymin = bounds[:, 0].min(), bounds[:, 1].min()
    xmax, ymax = bounds[:, 2].max(), bounds[:, 3].max()
    lon, lat = xy_m_to_lonlat([xmin, xmax, xmin, xmax], [ymin, ymin, ymax, ymax], crs)
    box = (lon.min() - 0.5, lat.min() - 0.5, lon.max() + 0.5, lat.max() + 0.5)
    return geoms, bounds, box, crs


def _district_of(parts, x_m, y_m) -> np.ndarray:
    """District row of each point (first district that contains it), -1 outside all."""
    import shapely

    out = np.full(np.asarray(x_m).size, -1, dtype=np.int16)
    if parts is None:
        return out
    geoms, bounds, *_ = parts
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
    bad = given & (~ok_each.all(axis=1) | (present.sum(axis=1) == 0) | (present.sum(axis=1) > MAX_SECTORS))
    rows.flag(bad, name, lambda i: f"expected 1 to {MAX_SECTORS} bearings in [0, 360) degrees separated by ';', "
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
    x, y = lonlat_to_xy_m(lon[keep], lat[keep], parts[3] if parts is not None else GRID_CRS)
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
    :func:`sim.sites.build_site_table` from the district class and the carrier), azimuths none
    (evenly spaced sectors with a random rotation), operator ``operator`` or ``""``,
    band ``""`` (all carriers of the radio network). Line numbers count the header as
    line 1; quoted fields spanning lines are not supported. Parsing is vectorised (pandas).
    """
    _check_on_bad_row(on_bad_row)
    p = _require_file(path)
    check_utf8(p, SiteFileError, "site file")
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
        df = pd.read_csv(_local(p), sep=delimiter, dtype=str, keep_default_na=False, skip_blank_lines=False,
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
    import shapely

    _check_on_bad_row(on_bad_row)
    p = _require_file(path)
    parts = _region_parts(region)
    gdf = read_vector(p, error=SiteFileError, what="site file")   # the GeoJSON driver only (no VRT, no URL)
    if gdf.crs is not None and gdf.crs.to_epsg() not in (4326, None):
        gdf = gdf.to_crs(WGS84_CRS)
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


def _local(p: Path) -> str:
    """The absolute local path of ``p`` for pandas (never taken for a URL: it starts with '/')."""
    return str(Path(p).resolve())


def _opencellid_frame(p: Path):
    """The OpenCellID columns of ``p`` as a frame (header line optional), and whether it had a header."""
    check_utf8(p, SiteFileError, "site file")
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
        df = pd.read_csv(_local(p), header=0 if has_header else None,
                         names=None if has_header else list(OPENCELLID_COLUMNS),
                         usecols=usecols, dtype={c: str for c in ("radio", "mcc", "net", "area", "cell")},
                         keep_default_na=False, encoding="utf-8-sig", engine="c", low_memory=False)
    except pd.errors.ParserError as exc:
        raise SiteFileError(p, None, f"not a valid OpenCellID CSV ({str(exc).strip().splitlines()[-1]})") from None
    return df, has_header


def _collapse_cells(p: Path, df, gi, x, y, d, lon_k, lat_k, op_k, op_ids, collapse_m: float) -> PhysicalSites:
    """Cells of one operator whose positions round to one ``collapse_m`` grid point, as one site at their mean."""
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
    return sites


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
    df, has_header = _opencellid_frame(p)
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
    x, y = lonlat_to_xy_m(lon[good], lat[good], parts[3] if parts is not None else GRID_CRS)
    d = _district_of(parts, x, y)
    inside = d >= 0 if parts is not None else np.ones(x.size, bool)
    gi, x, y, d = gi[inside], x[inside], y[inside], d[inside]
    lon_k, lat_k = lon[good][inside], lat[good][inside]
    op_k = op_code[gi]
    sites = _collapse_cells(p, df, gi, x, y, d, lon_k, lat_k, op_k, op_ids, collapse_m)
    n_sites = len(sites)
    report = ReadReport(
        path=str(p), n_rows=n_all, n_filtered=n_filtered, n_bad=int(rows_sub.bad.sum()),
        n_outside=int((~inside).sum()), n_kept=int(gi.size), n_sites=int(n_sites),
        bad_rows=tuple(rows_sub.listed(MAX_LISTED_BAD_ROWS)),
    )
    return sites, report
