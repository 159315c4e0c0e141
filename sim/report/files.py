"""Atomic writers of the run folder: JSON, CSV, PNG, GeoTIFF and GeoPackage.

Every write goes to a hidden temporary name in the destination folder and is moved into
place with :func:`os.replace` (atomic on one file system), so an interrupted run never
leaves a half-written file under a final name; on failure the temporary file is removed.

matplotlib is not imported here: :func:`write_png` takes a Figure made by :mod:`sim.maps`.
rasterio and pyogrio are imported by the functions that need them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import re
import secrets
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.errors import InputError

__all__ = [
    "PNG_MAX_BYTES",
    "OVERVIEW_FACTORS",
    "atomic_path",
    "create_run_dir",
    "ensure_dir",
    "jsonable",
    "as_frame",
    "write_json",
    "write_csv",
    "write_toml",
    "write_png",
    "grid_transform",
    "write_geotiff",
    "write_gpkg",
    "write_gpkg_layers",
    "versions",
]

PNG_MAX_BYTES = 2_000_000
"""A PNG above this size is re-encoded with a 256-colour palette."""

OVERVIEW_FACTORS = (2, 4, 8, 16)
"""GeoTIFF overview levels, so that QGIS opens a city raster fast."""

_SCENARIO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

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


def ensure_dir(path) -> Path:
    """The folder ``path``, created with its parents if missing (an output folder that may hold files)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ----------------------------------------------------------------------------- JSON / CSV


def jsonable(obj: Any, where: str = "$") -> Any:
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
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj.tolist())]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name), f"{where}.{f.name}") for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int, np.integer)):
                raise InputError("write_json", where, f"expected str keys, got {type(k).__name__}")
            out[str(k)] = jsonable(v, f"{where}.{k}")
        return out
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise InputError("write_json", where, f"not JSON-serialisable: {type(obj).__name__}")


def write_json(path, obj) -> Path:
    """Write ``obj`` as UTF-8 JSON (indent 2, NaN as null), atomically."""
    path = Path(path)
    data = jsonable(obj)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            json.dump(data, f, indent=2, ensure_ascii=False, allow_nan=False)
            f.write("\n")
    return path


def write_toml(path, text: str) -> Path:
    """Write a TOML config ``text`` as UTF-8, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
    return path


def as_frame(table) -> pd.DataFrame:
    """A DataFrame as it is, or rows (dataclasses or dicts) as a DataFrame."""
    if isinstance(table, pd.DataFrame):
        return table
    rows = list(table)
    if rows and dataclasses.is_dataclass(rows[0]):
        rows = [dataclasses.asdict(r) for r in rows]
    return pd.DataFrame(rows)


def write_csv(path, table) -> Path:
    """Write a DataFrame, or rows (dataclasses or dicts), as UTF-8 CSV without index."""
    path = Path(path)
    df = as_frame(table)
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


def grid_transform(grid):
    """The affine transform of ``grid`` (north-up, row 0 north)."""
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
        "dtype": arr.dtype.name, "crs": grid.crs, "transform": grid_transform(grid),
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


# ----------------------------------------------------------------------------- versions


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
