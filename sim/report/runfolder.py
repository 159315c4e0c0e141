"""The ``summary.json`` schema, and reading run folders back.

``summary.json`` follows a versioned schema (:data:`SUMMARY_SCHEMA_VERSION`, checked by
:func:`validate_summary`, hand-written, no extra dependency):

=============  ===========================================================================
key            content
=============  ===========================================================================
schema_version ``"1.0"``
scenario       ``{name: str, year: int, seed: int, config_path: str | None}``
inputs         dict, the scenario echoed (free form)
grid           ``{crs: str, res_m: number, shape: [rows, cols], ...}``
districts      list of ``{code: str, name_en: str, indicators: {key: number | None}}``
citywide       ``{key: number | None}``
criteria       list of criteria rows (``scope, key, value, passed, kind``, ...; see
               :func:`sim.criteria.evaluate`)
timings_s      ``{stage: seconds >= 0}``
versions       ``{python: str, numpy: str, gigacity: str, ...}``
outputs        list of file paths relative to the run folder
busy_hour      optional: ``{iterations: int, max_change: number, converged: bool,
               saturated_cells: int, layers: {layer: {cells, iterations, max_change,
               converged, saturated_cells, mean_load, max_load}}, simpy_cells: [rows],
               simpy_agreement: str, day: [rows], pon: [rows]}`` (``sim.app.busyhour``)
methods        optional: list of method notes added to the report
=============  ===========================================================================

``gigacity compare`` reads two run folders back with :func:`read_summary`,
:func:`rate_rasters`, :func:`read_geotiff`, :func:`read_geotiff_onto` and :func:`read_gpkg`,
and sets their indicators side by side with :func:`compare_runs` (which knows the summary
layout). The files themselves are written by :mod:`sim.report.files`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.report.files import as_frame, grid_transform, jsonable

__all__ = [
    "SUMMARY_SCHEMA_VERSION",
    "SUMMARY_JSON_SCHEMA",
    "summary_problems",
    "validate_summary",
    "read_png_bytes",
    "criteria_records",
    "read_summary",
    "rate_rasters",
    "rate_unit_mbps",
    "read_geotiff",
    "read_geotiff_onto",
    "read_gpkg",
    "compare_runs",
]

SUMMARY_SCHEMA_VERSION = "1.0"
"""Version of the ``summary.json`` layout; bump the major on a breaking change."""

SUMMARY_JSON_SCHEMA = Path(__file__).with_name("summary.schema.json")
"""The JSON Schema (draft 2020-12) of ``summary.json``, shipped as package data: the same
layout as :func:`summary_problems`, for tools outside Python (tests hold the two together)."""

# ----------------------------------------------------------------------------- summary schema


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_num_or_none(v) -> bool:
    return v is None or _is_num(v)


def summary_problems(summary) -> list[str]:
    """Every way ``summary`` departs from the schema, as ``"key.path: problem"`` strings."""
    p: list[str] = []
    if not isinstance(summary, Mapping):
        return [f"$: expected an object, got {type(summary).__name__}"]
    required = ("schema_version", "scenario", "inputs", "grid", "districts", "citywide",
                "criteria", "timings_s", "versions", "outputs")
    for key in required:
        if key not in summary:
            p.append(f"{key}: missing")
    sv = summary.get("schema_version")
    if "schema_version" in summary and sv != SUMMARY_SCHEMA_VERSION:
        p.append(f"schema_version: expected {SUMMARY_SCHEMA_VERSION!r}, got {sv!r}")

    def obj(key):
        v = summary.get(key)
        if key in summary and not isinstance(v, Mapping):
            p.append(f"{key}: expected an object, got {type(v).__name__}")
            return None
        return v

    sc = obj("scenario")
    if sc is not None:
        for k, ok, what in (("name", lambda v: isinstance(v, str) and v, "a non-empty string"),
                            ("year", lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
                            ("seed", lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
                            ("config_path", lambda v: v is None or isinstance(v, str), "a string or null")):
            if k not in sc:
                p.append(f"scenario.{k}: missing")
            elif not ok(sc[k]):
                p.append(f"scenario.{k}: expected {what}, got {sc[k]!r}")
    obj("inputs")
    grid = obj("grid")
    if grid is not None:
        if not isinstance(grid.get("crs"), str):
            p.append("grid.crs: expected a string")
        if not (_is_num(grid.get("res_m")) and grid.get("res_m") > 0):
            p.append("grid.res_m: expected a positive number")
        shp = grid.get("shape")
        if not (isinstance(shp, (list, tuple)) and len(shp) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shp)):
            p.append(f"grid.shape: expected [rows, cols] positive integers, got {shp!r}")
    districts = summary.get("districts")
    if "districts" in summary:
        if not isinstance(districts, list):
            p.append("districts: expected a list")
        else:
            for i, d in enumerate(districts):
                if not isinstance(d, Mapping):
                    p.append(f"districts[{i}]: expected an object")
                    continue
                for k in ("code", "name_en"):
                    if not isinstance(d.get(k), str):
                        p.append(f"districts[{i}].{k}: expected a string")
                ind = d.get("indicators")
                if not isinstance(ind, Mapping):
                    p.append(f"districts[{i}].indicators: expected an object")
                else:
                    p += [f"districts[{i}].indicators.{k}: expected a number or null, got {v!r}"
                          for k, v in ind.items() if not _is_num_or_none(v)]
    city = obj("citywide")
    if city is not None:
        p += [f"citywide.{k}: expected a number or null, got {v!r}"
              for k, v in city.items() if not _is_num_or_none(v)]
    crit = summary.get("criteria")
    if "criteria" in summary:
        if not isinstance(crit, list):
            p.append("criteria: expected a list")
        else:
            for i, r in enumerate(crit):
                if not isinstance(r, Mapping):
                    p.append(f"criteria[{i}]: expected an object")
                    continue
                for k in ("scope", "key", "kind"):
                    if not isinstance(r.get(k), str):
                        p.append(f"criteria[{i}].{k}: expected a string")
                if not _is_num_or_none(r.get("value", "missing")):
                    p.append(f"criteria[{i}].value: expected a number or null")
                if r.get("passed", "missing") not in (True, False, None):
                    p.append(f"criteria[{i}].passed: expected true, false or null")
    tim = obj("timings_s")
    if tim is not None:
        p += [f"timings_s.{k}: expected a number >= 0, got {v!r}"
              for k, v in tim.items() if not (_is_num(v) and v >= 0)]
    ver = obj("versions")
    if ver is not None:
        for k in ("python", "numpy", "gigacity"):
            if not isinstance(ver.get(k), str):
                p.append(f"versions.{k}: expected a string")
    p += _busy_hour_problems(summary)
    p += _compute_problems(summary)
    outs = summary.get("outputs")
    if "outputs" in summary and not (isinstance(outs, list) and all(isinstance(o, str) for o in outs)):
        p.append("outputs: expected a list of strings")
    return p


def _compute_problems(summary) -> list[str]:
    """``compute`` (optional): ``engine`` 'local' or 'dask', ``workers`` >= 0, ``scheduler`` a string or null."""
    if "compute" not in summary:
        return []
    c = summary["compute"]
    if not isinstance(c, Mapping):
        return [f"compute: expected an object, got {type(c).__name__}"]
    p = []
    if c.get("engine") not in ("local", "dask"):
        p.append(f"compute.engine: expected 'local' or 'dask', got {c.get('engine')!r}")
    w = c.get("workers")
    if not (isinstance(w, int) and not isinstance(w, bool) and w >= 0):
        p.append(f"compute.workers: expected an integer >= 0, got {w!r}")
    if not (c.get("scheduler") is None or isinstance(c.get("scheduler"), str)):
        p.append(f"compute.scheduler: expected a string or null, got {c.get('scheduler')!r}")
    return p


def _busy_hour_problems(summary) -> list[str]:
    if "busy_hour" not in summary:
        return []
    bh = summary["busy_hour"]
    if not isinstance(bh, Mapping):
        return [f"busy_hour: expected an object, got {type(bh).__name__}"]
    p = []
    it = bh.get("iterations", 0)
    if not (isinstance(it, int) and not isinstance(it, bool) and it >= 0):
        p.append(f"busy_hour.iterations: expected an integer >= 0, got {it!r}")
    if not _is_num_or_none(bh.get("max_change")):
        p.append(f"busy_hour.max_change: expected a number, got {bh.get('max_change')!r}")
    layers = bh.get("layers", {})
    if not isinstance(layers, Mapping):
        p.append("busy_hour.layers: expected an object")
    else:
        for lid, v in layers.items():
            if not isinstance(v, Mapping) or not all(_is_num(v.get(k)) for k in ("iterations", "max_change")):
                p.append(f"busy_hour.layers.{lid}: expected an object with numeric iterations and max_change")
    for k in ("simpy_cells", "day", "pon"):
        if k in bh and not (isinstance(bh[k], list) and all(isinstance(r, Mapping) for r in bh[k])):
            p.append(f"busy_hour.{k}: expected a list of objects")
    return p


def validate_summary(summary) -> None:
    """Raise :class:`InputError` naming the first problem of ``summary`` (see the schema)."""
    problems = summary_problems(summary)
    if problems:
        field, _, message = problems[0].partition(": ")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError("summary.json", field, message + more)


def criteria_records(table) -> list[dict]:
    """Criteria table rows as JSON-ready dicts (NaN -> None) for ``summary["criteria"]``."""
    return jsonable(as_frame(table).to_dict(orient="records"))


# ----------------------------------------------------------------------------- run-folder readers

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png_bytes(src) -> bytes:
    """A PNG as bytes: ``src`` itself (bytes) or the file it names; one-line error if not a PNG."""
    data = bytes(src) if isinstance(src, (bytes, bytearray)) else Path(src).read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise InputError(str(src)[:80] if not isinstance(src, (bytes, bytearray)) else "image",
                         None, "expected a PNG image")
    return data

_RATE_TIF = re.compile(r"^(?!diff_)[A-Za-z0-9._-]+_rate_[a-z]+_m?bps\.tif$")


def read_summary(run_dir) -> dict:
    """``summary.json`` of a run folder; one-line :class:`InputError` when missing or broken."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise InputError(path, None, "not a run folder: summary.json not found")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(path, None, f"not valid JSON ({exc.__class__.__name__})") from None
    problems = summary_problems(summary)
    if problems:
        field, _, message = problems[0].partition(": ")
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InputError(path, field, f"not a gigacity summary: {message}{more}")
    return summary


def rate_rasters(run_dir) -> list[str]:
    """File names of the throughput GeoTIFFs of a run folder, sorted.

    ``{layer}_rate_{kind}_mbps.tif`` (Mbit/s); run folders of gigacity before 0.2 wrote
    ``..._bps.tif`` in bit/s (:func:`rate_unit_mbps` gives the factor to Mbit/s).
    """
    return sorted(p.name for p in Path(run_dir).glob("*_rate_*bps.tif") if _RATE_TIF.match(p.name))


def rate_unit_mbps(name: str) -> float:
    """Factor from a rate GeoTIFF's values to Mbit/s: 1 for ``*_mbps.tif``, 1e-6 for the older ``*_bps.tif``."""
    return 1.0 if name.endswith("_mbps.tif") else 1e-6


def _grid_of(ds, path):
    from sim.grid import Grid

    t = ds.transform
    if not (t.b == 0.0 and t.d == 0.0 and t.a > 0 and math.isclose(t.a, -t.e, rel_tol=1e-9)):
        raise InputError(path, "transform", f"expected a north-up grid of square pixels, got {tuple(t)[:6]}")
    if ds.crs is None:
        raise InputError(path, "crs", "expected a CRS (EPSG:32651), got none")
    return Grid(ds.crs.to_string(), float(t.c), float(t.f), float(t.a), (int(ds.height), int(ds.width)))


def read_geotiff(path):
    """Band 1 of a GeoTIFF as float64 (nodata -> NaN), its :class:`~sim.grid.Grid` and band tags.

    Returns
    -------
    values : ndarray [n_rows, n_cols], float64
    grid : sim.grid.Grid
    meta : dict
        ``description`` and ``units`` of the band.
    """
    import rasterio

    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, "GeoTIFF not found")
    try:
        with rasterio.open(path, driver="GTiff") as ds:   # never a driver GDAL picks from the content (VRT)
            grid = _grid_of(ds, path)
            values = ds.read(1, masked=True).astype(np.float64).filled(np.nan)
            meta = {"description": ds.descriptions[0] or "", "units": ds.units[0] or ""}
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(path, None, f"not a readable GeoTIFF ({exc.__class__.__name__})") from None
    return values, grid, meta


def read_geotiff_onto(path, grid, resampling: str = "average"):
    """Band 1 of a GeoTIFF resampled onto ``grid`` (float64, NaN where nothing maps).

    Used when two runs have different grids (resolution or extent). Warped with
    :func:`rasterio.warp.reproject`; ``average`` (the default) is the area-weighted mean of
    the source pixels that fall in a target pixel when the source is finer, and the value
    of the covering source pixel when it is coarser; NaN (nodata) source pixels are left out.

    Returns
    -------
    values : ndarray [grid.shape], float64
    meta : dict
        ``description``, ``units``, and ``resampled`` (bool: whether the grids differed).
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    values, src_grid, meta = read_geotiff(path)
    same = (src_grid.shape == tuple(grid.shape) and src_grid.res_m == grid.res_m
            and src_grid.x0_m == grid.x0_m and src_grid.y0_m == grid.y0_m
            and rasterio.crs.CRS.from_user_input(src_grid.crs) == rasterio.crs.CRS.from_user_input(grid.crs))
    if same:
        return values, dict(meta, resampled=False)
    try:
        method = Resampling[resampling]
    except KeyError:
        raise InputError(path, "resampling", f"unknown resampling {resampling!r}") from None
    out = np.full(tuple(grid.shape), np.nan, dtype=np.float64)
    reproject(values, out, src_transform=src_grid.transform, src_crs=src_grid.crs, src_nodata=np.nan,
              dst_transform=grid_transform(grid), dst_crs=grid.crs, dst_nodata=np.nan, resampling=method)
    return out, dict(meta, resampled=True)


def read_gpkg(path, layer: str | None = None, crs: str | None = None):
    """A GeoPackage layer as a GeoDataFrame (projected to ``crs`` when given; run folders
    store WGS84); one-line :class:`InputError` when missing."""
    import pyogrio
    import pyogrio.errors

    path = Path(path)
    if not path.is_file():
        raise InputError(path, layer, "GeoPackage not found")
    with open(path, "rb") as fh:
        if not fh.read(16).startswith(b"SQLite format 3\x00"):
            raise InputError(path, None, "expected a GeoPackage (an SQLite file)")
    try:   # the GPKG driver by name: GDAL never picks another (VRT) from the content
        gdf = pyogrio.read_dataframe(f"GPKG:{path.resolve()}", layer=layer)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputError(path, layer, f"not a readable GeoPackage ({str(exc).splitlines()[0][:200]})") from None
    return gdf if crs is None or gdf.crs is None else gdf.to_crs(crs)


# ----------------------------------------------------------------------------- compare


def _flatten_numeric(summary) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for k, v in (summary.get("citywide") or {}).items():
        out[("citywide", k)] = v
    for d in summary.get("districts") or []:
        for k, v in (d.get("indicators") or {}).items():
            out[(str(d.get("code")), k)] = v
    for r in summary.get("criteria") or []:
        out.setdefault((str(r.get("scope")), str(r.get("key"))), r.get("value"))
    # the site counts and densities of the deployment (summary "sites" and per district)
    for k in _COMPARED_SITE_KEYS:
        if k in (summary.get("sites") or {}):
            out.setdefault(("citywide", k), summary["sites"][k])
        for d in summary.get("districts") or []:
            if k in d:
                out.setdefault((str(d.get("code")), k), d[k])
    return {k: (math.nan if v is None else float(v)) for k, v in out.items() if _is_num_or_none(v)}


_COMPARED_SITE_KEYS = ("sites_5g", "sites_5g_per_km2")
"""Deployment figures ``gigacity compare`` sets side by side besides the indicators."""


def compare_runs(summary_a, summary_b) -> pd.DataFrame:
    """Every numeric indicator of two runs side by side (for ``gigacity compare``).

    Returns
    -------
    DataFrame
        Columns ``scope, key, value_a, value_b, change`` (``b - a``; NaN when either is
        missing) and ``passed_a, passed_b`` (criteria rows; None otherwise), ``standing``
        (``"confirmed"``, ``"benchmark"`` or ``""``: of B's threshold, else A's), citywide rows
        first, then by scope and key.
    """
    a, b = _flatten_numeric(summary_a), _flatten_numeric(summary_b)
    st = {}
    for summ in (summary_a, summary_b):
        for r in summ.get("criteria") or []:
            if r.get("op"):
                st[(str(r.get("scope")), str(r.get("key")))] = r.get("standing") or (
                    "confirmed" if r.get("confirmed") is True else "benchmark")
    pa = {(str(r.get("scope")), str(r.get("key"))): r.get("passed") for r in summary_a.get("criteria") or []}
    pb = {(str(r.get("scope")), str(r.get("key"))): r.get("passed") for r in summary_b.get("criteria") or []}
    keys = sorted(set(a) | set(b), key=lambda sk: (sk[0] != "citywide", sk[0], sk[1]))
    rows = []
    for k in keys:
        va, vb = a.get(k, math.nan), b.get(k, math.nan)
        rows.append({"scope": k[0], "key": k[1], "value_a": va, "value_b": vb, "change": vb - va,
                     "passed_a": pa.get(k), "passed_b": pb.get(k), "standing": st.get(k, "")})
    df = pd.DataFrame(rows, columns=["scope", "key", "value_a", "value_b", "change", "passed_a", "passed_b",
                                     "standing"])
    df["passed_a"] = df["passed_a"].astype(object)
    df["passed_b"] = df["passed_b"].astype(object)
    return df
