"""The only layer that writes files: run folder, JSON, CSV, PNG, GeoTIFF, GeoPackage, reports.

Every write goes to a hidden temporary name in the destination folder and is moved into
place with :func:`os.replace` (atomic on one file system), so an interrupted run never
leaves a half-written file under a final name; on failure the temporary file is removed.

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
               simpy_agreement: str, day: [rows], pon: [rows]}`` (``sim.run``)
methods        optional: list of method notes added to the report
=============  ===========================================================================

matplotlib is not imported here: :func:`write_png` takes a Figure made by :mod:`sim.maps`.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as _dt
import html
import json
import math
import os
import platform
import re
import secrets
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from sim.criteria import INDICATORS, verdict
from sim.errors import InputError
from sim.geodata import ATTRIBUTION, CENSUS_SOURCE

__all__ = [
    "SUMMARY_SCHEMA_VERSION",
    "PNG_MAX_BYTES",
    "OVERVIEW_FACTORS",
    "atomic_path",
    "create_run_dir",
    "write_json",
    "write_csv",
    "write_png",
    "write_geotiff",
    "write_gpkg",
    "write_gpkg_layers",
    "write_report_md",
    "write_report_html",
    "summary_problems",
    "validate_summary",
    "criteria_records",
    "versions",
    "run_outputs",
    "compare_runs",
    "write_compare_md",
    "read_summary",
    "read_geotiff",
    "read_geotiff_onto",
    "read_gpkg",
    "rate_rasters",
]

SUMMARY_SCHEMA_VERSION = "1.0"
"""Version of the ``summary.json`` layout; bump the major on a breaking change."""

PNG_MAX_BYTES = 2_000_000
"""A PNG above this size is re-encoded with a 256-colour palette."""

OVERVIEW_FACTORS = (2, 4, 8, 16)
"""GeoTIFF overview levels, so that QGIS opens a city raster fast."""

_SCENARIO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# ----------------------------------------------------------------------------- atomic writes


def _temp_name(path: Path) -> Path:
    # keep the suffix: GDAL drivers (GPKG, GTiff) look at it
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")


def _remove_temp(tmp: Path) -> None:
    for p in (tmp, Path(str(tmp) + ".aux.xml"), Path(str(tmp) + "-journal"),
              Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; on success move it onto ``path``.

    If the body raises, the temporary file (and GDAL/SQLite side files) is removed and
    ``path`` is left as it was (absent, or the previous complete version).
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(path, None, "the destination folder does not exist")
    tmp = _temp_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise InputError(path, None, "the writer produced no file")
        os.replace(tmp, path)
    finally:
        _remove_temp(tmp)


def create_run_dir(base, scenario: str, force: bool = False, *, now: _dt.datetime | None = None,
                   name: str | None = None) -> Path:
    """Create the run folder ``<base>/<scenario>-<YYYYmmdd-HHMMSS>/`` and return it.

    Parameters
    ----------
    base : str or Path
        Parent folder (``runs`` by convention); created if missing.
    scenario : str
        Scenario name: letters, digits, ``.``, ``_``, ``-``.
    force : bool
        Use the folder even if it exists (files in it are replaced one by one, others kept).
    now : datetime, optional
        Time stamp (default: local time now).
    name : str, optional
        Folder name instead of ``<scenario>-<stamp>``.
    """
    if not isinstance(scenario, str) or not _SCENARIO_NAME.match(scenario):
        raise InputError("create_run_dir", "scenario",
                         f"expected letters, digits, '.', '_' or '-', got {scenario!r}")
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    folder = Path(base) / (name if name is not None else f"{scenario}-{stamp}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        folder.mkdir()
    except FileExistsError:
        if not force:
            raise InputError(folder, "force",
                             "run folder already exists; choose another or pass force=True") from None
        if not folder.is_dir():
            raise InputError(folder, None, "exists and is not a folder") from None
    return folder


# ----------------------------------------------------------------------------- JSON / CSV


def _jsonable(obj: Any, where: str = "$") -> Any:
    """Plain JSON types from numpy, pandas, paths and dataclasses; NaN and inf become None."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Path):
        return obj.as_posix()
    if isinstance(obj, (_dt.datetime, _dt.date, pd.Timestamp)):
        return obj.isoformat()
    if isinstance(obj, np.ndarray):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj.tolist())]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name), f"{where}.{f.name}") for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int, np.integer)):
                raise InputError("write_json", where, f"expected str keys, got {type(k).__name__}")
            out[str(k)] = _jsonable(v, f"{where}.{k}")
        return out
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise InputError("write_json", where, f"not JSON-serialisable: {type(obj).__name__}")


def write_json(path, obj) -> Path:
    """Write ``obj`` as UTF-8 JSON (indent 2, NaN as null), atomically."""
    path = Path(path)
    data = _jsonable(obj)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            json.dump(data, f, indent=2, ensure_ascii=False, allow_nan=False)
            f.write("\n")
    return path


def _frame(table) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    rows = list(table)
    if rows and dataclasses.is_dataclass(rows[0]):
        rows = [dataclasses.asdict(r) for r in rows]
    return pd.DataFrame(rows)


def write_csv(path, table) -> Path:
    """Write a DataFrame, or rows (dataclasses or dicts), as UTF-8 CSV without index."""
    path = Path(path)
    df = _frame(table)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            df.to_csv(f, index=False, lineterminator="\n")
    return path


# ----------------------------------------------------------------------------- PNG


def write_png(fig, path, dpi: int = 170) -> Path:
    """Save a matplotlib Figure as PNG at ``dpi``; above 2 MB, re-encode with a palette.

    A map of a noisy raster (shadow fading drawn pixel by pixel) can exceed
    :data:`PNG_MAX_BYTES` in RGBA; a 256-colour palette (Pillow, fast octree) brings it to
    a fraction of that with no visible change for colour-mapped maps.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
        if tmp.stat().st_size > PNG_MAX_BYTES:
            from PIL import Image

            with Image.open(tmp) as im:
                im.load()
                pal = im.quantize(colors=256, method=Image.Quantize.FASTOCTREE)
            pal.save(tmp, format="PNG", optimize=True)
    return path


# ----------------------------------------------------------------------------- GeoTIFF / GPKG


def _grid_transform(grid):
    t = getattr(grid, "transform", None)
    if t is not None:
        return t
    from affine import Affine

    return Affine(grid.res_m, 0.0, grid.x0_m, 0.0, -grid.res_m, grid.y0_m)


def write_geotiff(path, grid, array2d, nodata, band_description: str, units: str,
                  *, resampling: str | None = None) -> Path:
    """Write one band as a tiled, DEFLATE-compressed GeoTIFF with overviews.

    Parameters
    ----------
    path : str or Path
    grid : sim.grid.Grid
        CRS and georeference (``transform``: north-up, row 0 north).
    array2d : ndarray [n_rows, n_cols]
        Values, written in their dtype (float64 is written as float32).
    nodata : float or int
        No-data value (NaN allowed for floats).
    band_description : str
        Band description (what QGIS shows as the band name), e.g. ``"SS-RSRP outdoor"``.
    units : str
        Band unit, e.g. ``"dBm"``.
    resampling : {"average", "nearest", ...}, optional
        Overview resampling; default ``average`` for floats, ``nearest`` for integers.

    Notes
    -----
    256 x 256 tiles, DEFLATE with predictor (2 integers, 3 floats), internal overviews at
    :data:`OVERVIEW_FACTORS`, BIGTIFF when needed.
    """
    import rasterio
    from rasterio.enums import Resampling

    path = Path(path)
    arr = np.asarray(array2d)
    shape = tuple(int(n) for n in grid.shape)
    if arr.shape != shape:
        raise InputError(path, "array2d", f"expected shape {shape} (the grid), got {arr.shape}")
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    is_float = np.issubdtype(arr.dtype, np.floating)
    if resampling is None:
        resampling = "average" if is_float else "nearest"
    try:
        resampling_enum = Resampling[resampling]
    except KeyError:
        raise InputError(path, "resampling", f"unknown resampling {resampling!r}") from None
    profile = {
        "driver": "GTiff", "height": shape[0], "width": shape[1], "count": 1,
        "dtype": arr.dtype.name, "crs": grid.crs, "transform": _grid_transform(grid),
        "nodata": nodata, "tiled": True, "blockxsize": 256, "blockysize": 256,
        "compress": "DEFLATE", "predictor": 3 if is_float else 2, "BIGTIFF": "IF_SAFER",
    }
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(arr, 1)
            dst.set_band_description(1, str(band_description))
            dst.set_band_unit(1, str(units))
            dst.update_tags(1, units=str(units))
        with rasterio.open(tmp, "r+") as dst:
            dst.build_overviews(list(OVERVIEW_FACTORS), resampling_enum)
            dst.update_tags(ns="rio_overview", resampling=resampling)
    return path


def write_gpkg_layers(path, layers: Mapping[str, Any]) -> Path:
    """Write several GeoDataFrames as layers of one GeoPackage, atomically."""
    import pyogrio

    path = Path(path)
    if not layers:
        raise InputError(path, "layers", "expected at least one layer")
    for name, gdf in layers.items():
        if getattr(gdf, "crs", None) is None:
            raise InputError(path, name, "expected a GeoDataFrame with a CRS")
    with atomic_path(path) as tmp:
        for name, gdf in layers.items():
            pyogrio.write_dataframe(gdf, tmp, layer=str(name), driver="GPKG")
    return path


def write_gpkg(path, gdf, layer: str) -> Path:
    """Write a GeoDataFrame as layer ``layer`` of a GeoPackage (replacing the file)."""
    return write_gpkg_layers(path, {layer: gdf})


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
    outs = summary.get("outputs")
    if "outputs" in summary and not (isinstance(outs, list) and all(isinstance(o, str) for o in outs)):
        p.append("outputs: expected a list of strings")
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
    return _jsonable(_frame(table).to_dict(orient="records"))


def versions() -> dict[str, str]:
    """Versions of Python, numpy, gigacity and the geospatial stack (without importing it)."""
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for dist in ("gigacity", "pandas", "geopandas", "shapely", "pyproj", "rasterio", "pyogrio",
                 "matplotlib", "simpy", "scipy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def run_outputs(run_dir) -> list[str]:
    """Files under ``run_dir`` (relative POSIX paths, sorted), temporary files excluded."""
    run_dir = Path(run_dir)
    return sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")
                  if p.is_file() and not p.name.startswith("."))


# ----------------------------------------------------------------------------- run-folder readers
# ``gigacity compare`` reads back what this module wrote; the readers sit beside the writers
# so that the file layout (names, band tags, CRS) is known in one place.

_RATE_TIF = re.compile(r"^(?!diff_)[A-Za-z0-9._-]+_rate_[a-z]+_bps\.tif$")


def read_summary(run_dir) -> dict:
    """``summary.json`` of a run folder; one-line :class:`InputError` when missing or broken."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise InputError(path, None, "not a run folder: summary.json not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"not valid JSON ({exc.__class__.__name__})") from None


def rate_rasters(run_dir) -> list[str]:
    """File names of the throughput GeoTIFFs of a run folder (``{layer}_rate_{kind}_bps.tif``), sorted."""
    return sorted(p.name for p in Path(run_dir).glob("*_rate_*_bps.tif") if _RATE_TIF.match(p.name))


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
        with rasterio.open(path) as ds:
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
              dst_transform=_grid_transform(grid), dst_crs=grid.crs, dst_nodata=np.nan, resampling=method)
    return out, dict(meta, resampled=True)


def read_gpkg(path, layer: str | None = None):
    """A GeoPackage layer as a GeoDataFrame; one-line :class:`InputError` when missing."""
    import pyogrio

    path = Path(path)
    if not path.is_file():
        raise InputError(path, layer, "GeoPackage not found")
    return pyogrio.read_dataframe(path, layer=layer)


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
        missing) and ``passed_a, passed_b`` (criteria rows; None otherwise), citywide rows
        first, then by scope and key.
    """
    a, b = _flatten_numeric(summary_a), _flatten_numeric(summary_b)
    pa = {(str(r.get("scope")), str(r.get("key"))): r.get("passed") for r in summary_a.get("criteria") or []}
    pb = {(str(r.get("scope")), str(r.get("key"))): r.get("passed") for r in summary_b.get("criteria") or []}
    keys = sorted(set(a) | set(b), key=lambda sk: (sk[0] != "citywide", sk[0], sk[1]))
    rows = []
    for k in keys:
        va, vb = a.get(k, math.nan), b.get(k, math.nan)
        rows.append({"scope": k[0], "key": k[1], "value_a": va, "value_b": vb, "change": vb - va,
                     "passed_a": pa.get(k), "passed_b": pb.get(k)})
    df = pd.DataFrame(rows, columns=["scope", "key", "value_a", "value_b", "change", "passed_a", "passed_b"])
    df["passed_a"] = df["passed_a"].astype(object)
    df["passed_b"] = df["passed_b"].astype(object)
    return df


# ----------------------------------------------------------------------------- reports

_METHODS = (
    "Coverage: best-server SS-RSRP and SINR on a raster in EPSG:32651, from 3GPP TR 38.901 path "
    "loss, LOS probability, O2I penetration loss and sector antenna pattern; SINR to spectral "
    "efficiency by the TS 38.214 CQI tables, rate by the TS 38.306 formula.",
    "Busy hour: processor-sharing discrete-event simulation (simpy) of each cell and each PON port; "
    "cell load feeds back into interference until a fixed point.",
    "Population and households: 2020 census district totals spread over each district's land "
    "pixels.",
    "Best-server maps: the distance from each pixel to the site of its serving sector (a map "
    "coloured by serving site is unreadable citywide); long distances show large cells and "
    "pixels served from afar.",
    "Criteria: the One-Gbps city indicators of MIIT's action plan (2021-2023) appendix, per "
    "district and citywide; each threshold is marked confirmed (the criterion's own number), "
    "assumption (a documented stand-in) or input (a scenario assumption, not simulated).",
)


def _defang(text) -> str:
    """Text with any URL scheme separator broken (``https[:]//``): the report links nowhere."""
    return str(text).replace("://", "[:]//")


def _esc(text) -> str:
    return html.escape(_defang(text), quote=True)


def _fmt(v, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    v = float(v)
    s = f"{v:,.1f}" if abs(v) < 1e6 else f"{v:,.0f}"
    return f"{s} %" if unit == "%" else s


def _basis(row) -> str:
    if row.get("kind") == "input":
        return "input"
    c = row.get("confirmed")
    if c is True:
        return "confirmed"
    if c is False:
        return "assumption"
    return "reported"


def _result(passed) -> tuple[str, str]:
    if passed is True:
        return "pass", "pass"
    if passed is False:
        return "fail", "fail"
    return "na", "—"


def _records(criteria_table) -> list[dict]:
    recs = criteria_records(criteria_table)
    for r in recs:
        if r.get("value") is None:
            r["value"] = math.nan
    return recs


def _label_of(key: str) -> str:
    return INDICATORS[key].label if key in INDICATORS else key


def _verdict_text(recs) -> tuple[str, str]:
    df = pd.DataFrame(recs, columns=["scope", "key", "op", "passed"]).astype(object)
    v = verdict(df)
    if v["passed"] is True:
        return "pass", f"Meets all {v['n_passed']} citywide One-Gbps city criteria."
    if v["passed"] is False:
        names = "; ".join(_label_of(k) for k in v["failed"])
        text = (f"Does not meet {len(v['failed'])} of {v['n_criteria']} citywide criteria: {names}. "
                f"{v['n_passed']} of {v['n_criteria']} pass.")
        kinds = {r.get("key"): r.get("kind") for r in recs if r.get("scope") == "citywide"}
        if all(kinds.get(k) == "input" for k in v["failed"]):
            text += (" Every failing criterion is a scenario input, not a simulated result: "
                     "the simulated network meets the criteria it is judged on.")
        return "fail", text
    if v["unknown"]:
        names = "; ".join(_label_of(k) for k in v["unknown"])
        return "na", (f"Not judged: {v['n_passed']} of {v['n_criteria']} citywide criteria pass, "
                      f"{len(v['unknown'])} not evaluated: {names}.")
    return "na", "Not judged: no citywide criterion has a threshold."


_OP_TEXT = {">": ">", ">=": "≥", "<": "<", "<=": "≤"}


def _threshold_text(r) -> str:
    op = r.get("op")
    return f"{_OP_TEXT.get(op, op)} {_fmt(r.get('threshold'), r.get('unit') or '')}" if op else "—"


_KEY_FIGURES = (
    ("bs_5g_per_10k", "5G base stations per 10,000 residents", ""),
    ("pop_cov_5g_indoor_pct", "residents with indoor 5G coverage", "%"),
    ("pop_5g_1gbps_unloaded_pct", "residents where 5G can deliver 1 Gbit/s to a lone user, neighbour cells "
                                  "at the reference load", "%"),
    ("pop_5g_1gbps_busy_pct", "residents with >= 1 Gbit/s flow throughput in the busy hour", "%"),
    ("fibre_gigabit_coverage_pct", "households with gigabit fibre available", "%"),
)
"""Headline figures shown under the verdict: citywide key, caption, unit."""


def _key_figures_html(summary) -> list[str]:
    city = summary.get("citywide") or {}
    cells = [f'<div class="fig"><b>{_esc(_fmt(city[k], u))}</b><span>{_esc(cap)}</span></div>'
             for k, cap, u in _KEY_FIGURES if city.get(k) is not None]
    return ['<div class="figures">', *cells, "</div>"] if cells else []


def _district_names(summary) -> dict[str, str]:
    return {str(d.get("code")): str(d.get("name_en", d.get("code"))) for d in summary.get("districts") or []}


def _title(summary) -> str:
    sc = summary.get("scenario") or {}
    return f"gigacity — {sc.get('name', 'run')} ({sc.get('year', '')})"


def _image_bytes(src) -> bytes:
    data = bytes(src) if isinstance(src, (bytes, bytearray)) else Path(src).read_bytes()
    if not data.startswith(_PNG_SIGNATURE):
        raise InputError(str(src)[:80] if not isinstance(src, (bytes, bytearray)) else "image",
                         None, "expected a PNG image")
    return data


def embed_png_bytes(data: bytes) -> bytes:
    """A smaller PNG of a map for embedding in ``report.html``: 256-colour palette, no dither.

    The map PNG files keep full colour; the embedded copies are quantised (Pillow median
    cut) so the self-contained page stays a few MB for a phone (about 3x smaller on the
    Shanghai maps). Returns the original bytes when the palette copy is not smaller.
    """
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        q = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    q.save(buf, format="PNG", optimize=True)
    small = buf.getvalue()
    return small if len(small) < len(data) else data


def _sources(recs) -> list[str]:
    seen = []
    for r in recs:
        s = r.get("source")
        if s and s not in seen:
            seen.append(s)
    return seen


_CSS = """
:root{--pass:#1a7f3c;--pass-bg:#e3f4e8;--fail:#b3261e;--fail-bg:#fbe4e2;--na:#666;--na-bg:#f1f1f1;
--line:#d8dde3;--ink:#1d232a;--muted:#5b6570}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;
color:var(--ink);background:#fafbfc}
main{max-width:1100px;margin:0 auto;padding:1rem 1rem 3rem}
h1{font-size:1.6rem;margin:.5rem 0}h2{font-size:1.25rem;margin:2rem 0 .6rem;border-bottom:1px solid var(--line)}
.verdict{font-size:1.15rem;font-weight:600;padding:.8rem 1rem;border-radius:.5rem;border-left:.4rem solid}
.verdict.pass{background:var(--pass-bg);border-color:var(--pass);color:var(--pass)}
.verdict.fail{background:var(--fail-bg);border-color:var(--fail);color:var(--fail)}
.verdict.na{background:var(--na-bg);border-color:var(--na);color:var(--na)}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.92rem;background:#fff}
th,td{border:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f4;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.pass{background:var(--pass-bg);color:var(--pass);font-weight:600}
td.fail{background:var(--fail-bg);color:var(--fail);font-weight:600}
td.na{color:var(--na)}
.tag{display:inline-block;padding:0 .4rem;border-radius:.3rem;font-size:.8rem;border:1px solid var(--line)}
.tag.confirmed{background:#e3f4e8}.tag.assumption{background:#fff4d6}.tag.input{background:#e6eefb}
.tag.reported{background:#f1f1f1}
figure{margin:1rem 0;background:#fff;border:1px solid var(--line);padding:.5rem;border-radius:.4rem}
figure img{display:block;max-width:100%;height:auto;margin:0 auto}
figcaption{color:var(--muted);font-size:.9rem;margin-top:.3rem}
.maps{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,480px),1fr));gap:1rem}
footer,.small{color:var(--muted);font-size:.85rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
nav{font-size:.9rem;margin:.2rem 0 .8rem}nav a{color:var(--muted);margin-right:.9rem}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:.6rem;margin:.8rem 0}
.fig{background:#fff;border:1px solid var(--line);border-radius:.4rem;padding:.5rem .7rem}
.fig b{display:block;font-size:1.45rem;font-variant-numeric:tabular-nums}.fig span{color:var(--muted);font-size:.85rem}
table.districts td:first-child,table.districts th:first-child{position:sticky;left:0;z-index:2;
background:#fff;box-shadow:1px 0 0 var(--line)}table.districts th:first-child{background:#eef1f4;z-index:3}
.hint{display:none}
@media (max-width:600px){body{font-size:15px}main{padding:.6rem}h1{font-size:1.3rem}
th,td{padding:.25rem .35rem}.verdict{font-size:1rem}.hint{display:block}
table.cards thead{display:none}table.cards,table.cards tbody,table.cards tr{display:block;width:100%}
table.cards tr{border:1px solid var(--line);border-radius:.4rem;margin:0 0 .6rem;background:#fff}
table.cards td{display:flex;justify-content:space-between;gap:1rem;border:none;
border-top:1px solid var(--line);text-align:right}
table.cards td:first-child{border-top:none;font-weight:600;text-align:left;display:block}
table.cards td[data-label]::before{content:attr(data-label);color:var(--muted);font-weight:400;text-align:left}
table.districts{font-size:.8rem}.maps{gap:.6rem}figure{padding:.25rem;margin:.4rem 0}}
@media print{.scroll{overflow:visible}figure{break-inside:avoid}}
"""


def write_report_html(path, summary, criteria_table, images: Mapping[str, Any] | None = None) -> Path:
    """Write a self-contained HTML report (inline CSS, images as base64 data URIs, no URL).

    Parameters
    ----------
    path : str or Path
    summary : dict
        The run summary (see the schema above).
    criteria_table : DataFrame or rows
        From :func:`sim.criteria.evaluate` (or ``summary["criteria"]``).
    images : mapping caption -> PNG path or bytes, optional
        Maps to embed, in order.

    Notes
    -----
    Sections: headline verdict; citywide criteria with pass/fail colouring and the basis
    of each threshold (confirmed / assumption / input / reported); maps; the district
    table; methods and sources; the ODbL attribution and the census source. All text is
    HTML-escaped and URL schemes are broken (``https[:]//``), so the page neither loads nor
    links anything outside itself; it reads on a phone (fluid grid, scrolling tables).
    """
    path = Path(path)
    recs = _records(criteria_table)
    v_class, v_text = _verdict_text(recs)
    title = _title(summary)
    sc = summary.get("scenario") or {}
    out: list[str] = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>", "<main>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="verdict {v_class}">{_esc(v_text)}</p>',
        *_key_figures_html(summary),
        f'<p class="small">Scenario {_esc(sc.get("name", ""))}, year {_esc(sc.get("year", ""))}, '
        f'seed {_esc(sc.get("seed", ""))}. Shanghai, {len(summary.get("districts") or [])} of 16 districts.</p>',
        '<nav><a href="#criteria">Criteria</a><a href="#maps">Maps</a><a href="#districts">Districts</a>'
        '<a href="#methods">Methods and sources</a></nav>',
        '<section id="criteria"><h2>One-Gbps city criteria, citywide</h2><div class="scroll"><table class="cards">',
        "<thead><tr><th>Indicator</th><th>Value</th><th>Threshold</th><th>Result</th>"
        "<th>Gap to pass</th><th>Basis</th></tr></thead><tbody>",
    ]
    city = [r for r in recs if r.get("scope") == "citywide"]
    for r in city:
        cls, word = _result(r.get("passed"))
        unit = r.get("unit") or ""
        thr = _threshold_text(r)
        basis = _basis(r)
        out.append(
            f"<tr><td>{_esc(r.get('label') or r.get('key'))}</td>"
            f'<td class="num" data-label="Value">{_esc(_fmt(r.get("value"), unit))}</td>'
            f'<td class="num" data-label="Threshold">{_esc(thr)}</td>'
            f'<td class="{cls}" data-label="Result">{word}</td>'
            f'<td class="num" data-label="Gap to pass">{_esc(_fmt(r.get("gap"), unit) if r.get("op") else "—")}</td>'
            f'<td data-label="Basis"><span class="tag {basis}">{basis}</span></td></tr>'
        )
    out.append("</tbody></table></div>")
    out.append('<p class="small">confirmed: the criterion\'s own threshold; assumption: a documented '
               "stand-in (see sources); input: a scenario assumption, not simulated; reported: no "
               "threshold. Per 10,000 residents where not a percentage.</p></section>")
    if images:
        out.append('<section id="maps"><h2>Maps</h2><div class="maps">')
        for caption, src in images.items():
            b64 = base64.b64encode(embed_png_bytes(_image_bytes(src))).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{b64}" alt="{_esc(caption)}" loading="lazy">'
                       f"<figcaption>{_esc(caption)}</figcaption></figure>")
        out.append("</div></section>")
    out += _district_table_html(recs, summary)
    out += _busy_hour_html(summary)
    out.append('<section id="methods"><h2>Methods and sources</h2><ul>')
    out += [f"<li>{_esc(m)}</li>" for m in (*_METHODS, *(summary.get("methods") or []))]
    out.append("</ul><h3>Threshold sources</h3><ul>")
    out += [f"<li>{_esc(s)}</li>" for s in _sources(recs)]
    out.append("</ul><h3>Run</h3><dl>")
    grid = summary.get("grid") or {}
    facts = {
        "config": sc.get("config_path"),
        "grid": f"{grid.get('crs', '')}, {grid.get('res_m', '')} m, {grid.get('shape', '')}",
        "timings": ", ".join(f"{k} {_fmt(v)} s" for k, v in (summary.get("timings_s") or {}).items()),
        "versions": ", ".join(f"{k} {v}" for k, v in (summary.get("versions") or {}).items()),
        "schema": summary.get("schema_version"),
    }
    out += [f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in facts.items()]
    out.append("</dl></section>")
    out.append(f"<footer><p>{_esc(ATTRIBUTION)}.</p><p>{_esc(CENSUS_SOURCE)}.</p></footer>")
    out += ["</main>", "</body>", "</html>", ""]
    text = "\n".join(out)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return path


_SITE_COLUMNS = (("sites_5g", "5G sites", ""), ("sites_5g_per_km2", "5G sites per km²", "official area"),
                 ("sites_5g_per_10k", "5G sites per 10,000 residents", "census"))
"""Site counts and densities of ``summary["districts"]`` rows shown before the indicators."""


def _district_sites(summary) -> dict[str, list[str]]:
    """District code -> formatted site count and densities (empty when the summary has none)."""
    out = {}
    for d in summary.get("districts") or []:
        if "sites_5g_per_km2" in d:
            out[str(d.get("code"))] = [f"{d['sites_5g']:,}" if isinstance(d.get("sites_5g"), int) else "—",
                                       _fmt(d.get("sites_5g_per_km2")) if d.get("sites_5g_per_km2") is None
                                       else f"{float(d['sites_5g_per_km2']):,.2f}",
                                       _fmt(d.get("sites_5g_per_10k")) if d.get("sites_5g_per_10k") is None
                                       else f"{float(d['sites_5g_per_10k']):,.2f}"]
    return out


def _district_table_html(recs, summary) -> list[str]:
    rows = [r for r in recs if r.get("scope") != "citywide"]
    if not rows:
        return []
    keys = [k for k in INDICATORS if any(r["key"] == k for r in rows)]
    keys += sorted({r["key"] for r in rows} - set(keys))
    scopes = list(dict.fromkeys(r["scope"] for r in rows))
    cell = {(r["scope"], r["key"]): r for r in rows}
    names = _district_names(summary)
    site_cells = _district_sites(summary)
    out = ['<section id="districts"><h2>Districts</h2><p class="small hint">The table scrolls sideways; '
           'the district column stays.</p><div class="scroll"><table class="districts"><thead><tr>'
           "<th>District</th>"]
    if site_cells:
        out += [f"<th>{_esc(label)}{f' ({_esc(basis)})' if basis else ''}</th>" for _, label, basis in _SITE_COLUMNS]
    for k in keys:
        spec = INDICATORS.get(k)
        label = spec.label if spec else k
        unit = spec.unit if spec else ""
        out.append(f"<th>{_esc(label)} ({_esc(unit)})</th>")
    out.append("</tr></thead><tbody>")
    for s in scopes:
        out.append(f"<tr><td>{_esc(names.get(s, s))} <span class=\"small\">{_esc(s)}</span></td>")
        if site_cells:
            out += [f'<td class="num">{_esc(v)}</td>' for v in site_cells.get(s, ["—"] * len(_SITE_COLUMNS))]
        for k in keys:
            r = cell.get((s, k))
            if r is None:
                out.append('<td class="num na">—</td>')
                continue
            cls, _ = _result(r.get("passed"))
            out.append(f'<td class="num {cls}">{_esc(_fmt(r.get("value")))}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div><p class=\"small\">Green passes, red fails the citywide "
               "threshold applied to the district; grey: no threshold or no value.</p></section>")
    return out


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_report_md(path, summary, criteria_table, images: Mapping[str, Any] | None = None) -> Path:
    """Write the Markdown report; images (caption -> PNG path) are linked relative to it."""
    path = Path(path)
    recs = _records(criteria_table)
    v_class, v_text = _verdict_text(recs)
    mark = {"pass": "PASS", "fail": "FAIL", "na": "NOT JUDGED"}[v_class]
    sc = summary.get("scenario") or {}
    lines = [f"# {_title(summary)}", "", f"**{mark}**: {v_text}", "",
             f"Scenario `{sc.get('name', '')}`, year {sc.get('year', '')}, seed {sc.get('seed', '')}, "
             f"config `{sc.get('config_path', '')}`.", "",
             "## One-Gbps city criteria, citywide", "",
             "| Indicator | Value | Threshold | Result | Gap to pass | Basis |",
             "| --- | ---: | ---: | --- | ---: | --- |"]
    for r in (r for r in recs if r.get("scope") == "citywide"):
        unit = r.get("unit") or ""
        _, word = _result(r.get("passed"))
        thr = _threshold_text(r)
        gap = _fmt(r.get("gap"), unit) if r.get("op") else "—"
        lines.append(f"| {_md_cell(r.get('label') or r.get('key'))} | {_fmt(r.get('value'), unit)} | "
                     f"{_md_cell(thr)} | {word} | {gap} | {_basis(r)} |")
    if images:
        lines += ["", "## Maps", ""]
        for caption, src in images.items():
            rel = os.path.relpath(Path(src), path.parent) if not isinstance(src, (bytes, bytearray)) else ""
            lines += [f"![{_md_cell(caption)}]({Path(rel).as_posix()})", ""]
    rows = [r for r in recs if r.get("scope") != "citywide"]
    if rows:
        keys = [k for k in INDICATORS if any(r["key"] == k for r in rows)]
        names = _district_names(summary)
        cell = {(r["scope"], r["key"]): r for r in rows}
        site_cells = _district_sites(summary)
        site_heads = [label + (f" ({basis})" if basis else "") for _, label, basis in _SITE_COLUMNS] if site_cells else []
        lines += ["", "## Districts", "",
                  "| District | " + " | ".join(_md_cell(h) for h in site_heads + [INDICATORS[k].label for k in keys])
                  + " |",
                  "| --- |" + " ---: |" * (len(site_heads) + len(keys))]
        for s in dict.fromkeys(r["scope"] for r in rows):
            vals = list(site_cells.get(s, ["—"] * len(_SITE_COLUMNS))) if site_cells else []
            for k in keys:
                r = cell.get((s, k))
                if r is None:
                    vals.append("—")
                    continue
                flag = {True: " ✓", False: " ✗"}.get(r.get("passed"), "")
                vals.append(_fmt(r.get("value")) + flag)
            lines.append(f"| {_md_cell(names.get(s, s))} ({s}) | " + " | ".join(vals) + " |")
    lines += _busy_hour_md(summary)
    lines += ["", "## Methods and sources", ""]
    lines += [f"- {m}" for m in (*_METHODS, *(summary.get("methods") or []))]
    lines += ["", "Threshold sources:", ""] + [f"- {_md_cell(s)}" for s in _sources(recs)]
    lines += ["", "---", "", f"{ATTRIBUTION}.", "", f"{CENSUS_SOURCE}.", ""]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8", newline="\n")
    return path


def _passed_word(p) -> str:
    return {True: "pass", False: "fail"}.get(p, "—")


def write_compare_md(path, summary_a, summary_b, table, diffs: Sequence[Mapping] = (), *,
                     run_a: str = "A", run_b: str = "B") -> Path:
    """Write ``compare.md``: citywide changes, districts whose verdict changed, difference maps.

    Parameters
    ----------
    path : str or Path
    summary_a, summary_b : dict
        The two run summaries.
    table : DataFrame
        From :func:`compare_runs`.
    diffs : sequence of dict
        One per difference raster: ``raster, label, png, tif, resampled, pixels, mean_mbps,
        gain_share_pct, loss_share_pct``.
    """
    path = Path(path)

    def title(s):
        sc = s.get("scenario") or {}
        return f"{sc.get('name', '?')} ({sc.get('year', '?')})"

    ta, tb = title(summary_a), title(summary_b)
    names = {**_district_names(summary_a), **_district_names(summary_b)}
    lines = [f"# gigacity compare — {_md_cell(tb)} vs {_md_cell(ta)}", "",
             f"A: `{_md_cell(run_a)}` ({_md_cell(ta)}); B: `{_md_cell(run_b)}` ({_md_cell(tb)}). "
             "Change = B - A. Every row, per district too, is in `compare.csv`.", "",
             "## Citywide", "", "| Indicator | A | B | Change | Result A → B |", "| --- | ---: | ---: | ---: | --- |"]
    df = _frame(table)
    for r in df[df["scope"] == "citywide"].itertuples():
        res = (f"{_passed_word(r.passed_a)} → {_passed_word(r.passed_b)}"
               if r.passed_a is not None or r.passed_b is not None else "")
        lines.append(f"| {_md_cell(_label_of(r.key))} | {_fmt(r.value_a)} | {_fmt(r.value_b)} | "
                     f"{_fmt(r.change)} | {res} |")
    flips = df[(df["scope"] != "citywide") & df["passed_a"].notna() & df["passed_b"].notna()
               & (df["passed_a"] != df["passed_b"])]
    lines += ["", "## Districts whose result changed", ""]
    if len(flips):
        lines += ["| District | Indicator | A | B | Result A → B |", "| --- | --- | ---: | ---: | --- |"]
        for r in flips.itertuples():
            lines.append(f"| {_md_cell(names.get(r.scope, r.scope))} ({r.scope}) | {_md_cell(_label_of(r.key))} | "
                         f"{_fmt(r.value_a)} | {_fmt(r.value_b)} | {_passed_word(r.passed_a)} → {_passed_word(r.passed_b)} |")
    else:
        lines.append("None: every district passes or fails each criterion in both runs.")
    if diffs:
        lines += ["", "## Throughput difference maps", "",
                  "Downlink rate of B minus A per pixel (GeoTIFF in bit/s on A's grid, map in Mbit/s; "
                  "blue gains, red losses). Where the grids differ, B is resampled onto A's grid "
                  "(rasterio.warp.reproject, area-weighted average).", "",
                  "| Raster | Mean change (Mbit/s) | Pixels gaining | Pixels losing | B resampled |",
                  "| --- | ---: | ---: | ---: | --- |"]
        for d in diffs:
            lines.append(f"| `{_md_cell(d['tif'])}` | {float(d['mean_mbps']):+.1f} | {_fmt(d['gain_share_pct'], '%')} | "
                         f"{_fmt(d['loss_share_pct'], '%')} | {'yes' if d['resampled'] else 'no'} |")
        lines.append("")
        for d in diffs:
            lines += [f"![{_md_cell(d['label'])}]({d['png']})", ""]
    lines += ["", "---", "", f"{ATTRIBUTION}.", ""]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8", newline="\n")
    return path


# ----------------------------------------------------------------------------- busy-hour section


def _mbps(v) -> str:
    return "—" if v is None or not math.isfinite(float(v)) else f"{float(v) / 1e6:,.1f}"


def _pct(v) -> str:
    return "—" if v is None or not math.isfinite(float(v)) else f"{100.0 * float(v):.1f} %"


def _num(v, fmt="{:.3g}") -> str:
    return "—" if v is None or not math.isfinite(float(v)) else fmt.format(float(v))


def _busy_hour_tables(summary) -> list[tuple[str, list[str], list[list[str]], str]]:
    """The busy-hour section as (title, header, rows, note) tables, shared by Markdown and HTML."""
    bh = summary.get("busy_hour")
    if not isinstance(bh, Mapping):
        return []
    out = []
    layers = bh.get("layers") or {}
    if layers:
        rows = [[lid, str(v.get("cells")), str(v.get("iterations")), _num(v.get("max_change"), "{:.2g}"),
                 "yes" if v.get("converged") else "no", str(v.get("saturated_cells")),
                 _num(v.get("mean_load"), "{:.3f}"), _num(v.get("max_load"), "{:.3f}")]
                for lid, v in layers.items()]
        out.append(("Busy hour: load <-> interference fixed point",
                    ["Layer", "Cells", "Iterations", "Largest load change", "Converged", "Saturated cells",
                     "Mean load (capped)", "Largest load"], rows,
                    "Loads are capped at 1 as interference weights; a saturated cell (load >= 1) has no steady "
                    "state and its users get 0 in the busy-hour rasters. Per cell: cells.csv."))
    sim = bh.get("simpy_cells") or []
    if sim:
        rows = [[f"{r['layer']} #{r['sector']}", _num(r.get("load"), "{:.3f}"), _mbps(r.get("analytic_bps")),
                 f"{_mbps(r.get('simpy_bps'))} ± {_mbps(r.get('ci_half_width_bps'))}",
                 _num(100.0 * r["relative_difference"] if r.get("relative_difference") is not None else None,
                      "{:+.1f} %"),
                 _mbps(r.get("p5_bps")), _mbps(r.get("p50_bps")), _pct(r.get("share_ge_100mbps")),
                 _pct(r.get("share_ge_1gbps")), str(r.get("flows"))] for r in sim]
        out.append(("Busy hour: simpy against the analytic processor-sharing result",
                    ["Cell", "Load", "Analytic E[S]/E[T] (Mbit/s)", "simpy (Mbit/s, 95 % CI)", "Difference",
                     "5th pct (Mbit/s)", "Median (Mbit/s)", ">= 100 Mbit/s", ">= 1 Gbit/s", "Flows"], rows,
                    str(bh.get("simpy_agreement", ""))))
    day = bh.get("day") or []
    if day:
        rows = [[f"{r['hour']:02d}h", _num(r.get("load"), "{:.3f}"), _mbps(r.get("throughput_bps")),
                 _mbps(r.get("p5_bps")), _pct(r.get("share_ge_100mbps"))] for r in day]
        out.append((f"Daily profile of cell {day[0]['layer']} #{day[0]['sector']} (simpy)",
                    ["Hour", "Load", "E[S]/E[T] (Mbit/s)", "5th pct (Mbit/s)", ">= 100 Mbit/s"], rows,
                    "Busy-hour demand scaled by the configured hourly weights."))
    pon = bh.get("pon") or []
    if pon:
        rows = [[str(r["technology"]), f"1:{r['split']}", str(r.get("subscribers_per_port")),
                 _num(r.get("load"), "{:.3f}"),
                 f"{_pct(r.get('share_at_tier'))} ± {_pct(r.get('share_at_tier_ci'))}",
                 f"{_pct(r.get('gigabit_share_ge_1gbps'))} ± {_pct(r.get('gigabit_share_ge_1gbps_ci'))}"]
                for r in pon]
        out.append(("Fibre: PON ports in the busy hour (simpy)",
                    ["Technology", "Split", "Subscribers per port", "Load", "Flows receiving their tier",
                     "Gigabit-tier flows >= 1 Gbit/s"], rows,
                    "A flow receives its tier at >= 95 % of the tier rate; 95 % CI across replications."))
    return out


def _busy_hour_md(summary) -> list[str]:
    lines: list[str] = []
    for title, head, rows, note in _busy_hour_tables(summary):
        lines += ["", f"## {title}", "", "| " + " | ".join(_md_cell(h) for h in head) + " |",
                  "| --- |" + " ---: |" * (len(head) - 1)]
        lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
        if note:
            lines += ["", _md_cell(note)]
    return lines


def _busy_hour_html(summary) -> list[str]:
    out: list[str] = []
    for title, head, rows, note in _busy_hour_tables(summary):
        out.append(f'<section class="busy"><h2>{_esc(title)}</h2><div class="scroll"><table><thead><tr>')
        out += [f"<th>{_esc(h)}</th>" for h in head]
        out.append("</tr></thead><tbody>")
        for r in rows:
            out.append("<tr>" + f"<td>{_esc(r[0])}</td>" + "".join(f'<td class="num">{_esc(c)}</td>' for c in r[1:])
                       + "</tr>")
        out.append("</tbody></table></div>")
        if note:
            out.append(f'<p class="small">{_esc(note)}</p>')
        out.append("</section>")
    return out
