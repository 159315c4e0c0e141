"""Atomic writers of the run folder: JSON, CSV, PNG, GeoTIFF and GeoPackage.

Every write goes to a hidden temporary name in the destination folder and is moved into
place with :func:`os.replace` (atomic on one file system), so an interrupted run never
leaves a half-written file under a final name; on failure the temporary file is removed.

matplotlib is imported only by :func:`figure_rgba` (its Agg canvas): :func:`write_png` takes a Figure
made by :mod:`sim.maps`.
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
import threading
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.errors import InputError

from .csvtext import csv_bytes

__all__ = [
    "OVERVIEW_FACTORS",
    "atomic_path",
    "RUN_MARKER",
    "check_run_dir",
    "create_run_dir",
    "written_outputs",
    "record_output",
    "outputs_snapshot",
    "outputs_since",
    "finish_run_dir",
    "abandon_run_dir",
    "ensure_dir",
    "jsonable",
    "as_frame",
    "write_json",
    "write_csv",
    "write_parquet",
    "csv_bytes",
    "write_toml",
    "write_png",
    "figure_rgba",
    "write_png_rgba",
    "background_writes",
    "grid_transform",
    "write_geotiff",
    "geotiff_dtype",
    "geotiff_resampling",
    "cog_options",
    "COG_TEMP_OPTIONS",
    "describe_geotiff_band",
    "submit_write",
    "write_gpkg",
    "write_gpkg_layers",
    "versions",
]

PNG_COLOURS = 256
"""Every map PNG is a palette PNG of this many colours (median cut, no dither), encoded once: the file
is what ``report.html`` embeds as it is (:func:`sim.report.render.embed_png_bytes`)."""

PNG_COMPRESS_LEVEL = 6
"""zlib level of the PNGs (Pillow's default): level 9 makes the maps about 1 % smaller at 2-3 times the time."""

OVERVIEW_FACTORS = (2, 4, 8, 16)
"""GeoTIFF overview levels, so that QGIS opens a city raster fast."""

GEOTIFF_COMPRESS = "ZSTD"
"""Compression of the GeoTIFFs: Zstandard (TIFF compression 50000; read by GDAL >= 2.3 built with libzstd, as
every QGIS >= 3.4 and rasterio / GDAL wheel is). Measured on the 18 GeoTIFFs of Shanghai at 25 m (5212 x 4412,
float32; ``benchmarks/bench_cog_compress.py``): ZSTD level 1 without predictor (and the temporary overviews
uncompressed, :data:`COG_TEMP_OPTIONS`) makes the COG copies 3.3 times cheaper in CPU than DEFLATE level 1 with the
floating-point predictor (8.9 s against 29.3 s), the files 9 % smaller in all (662 MB against 730 MB: rates 10-55 %
smaller, SS-RSRP 11 % larger, SINR 2 % larger)."""

GEOTIFF_LEVEL = 1
"""Compression level of the GeoTIFFs (ZSTD 1, the fastest: level 2 makes the rates a few % smaller for about a fifth
more CPU)."""

GEOTIFF_PREDICTOR = "NO"
"""TIFF predictor of the GeoTIFFs: none. The floating-point predictor (3) that suits smooth float32 fields
costs as much CPU as the compression itself and gains nothing in all on these rasters with ZSTD (see
:data:`GEOTIFF_COMPRESS`): rates, quantised by the link curve, compress better without it."""

COG_TEMP_OPTIONS = {"COG_TMP_COMPRESSION": "NONE"}
"""GDAL configuration of a COG copy: the temporary overview file the COG driver builds before it writes the COG
(``<dest>.ovr.tmp``, a third of the raster's size) uncompressed rather than ZSTD: the same overviews in the COG, a
quarter less CPU per copy. (GDAL's option, documented in its COG driver source as for debugging; a GDAL without it
compresses that temporary file, and writes the same COG.)"""

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
        _record(path)
    except OSError as exc:   # a full disk, a read-only folder: one line naming the file
        raise _os_error(path, exc, f"write {path.name}") from None
    except RuntimeError as exc:
        # GDAL's own I/O errors arrive as pyogrio / rasterio exceptions (not OSError)
        if type(exc).__module__.split(".")[0] not in ("pyogrio", "rasterio"):
            raise
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InputError(path, None, f"cannot write {path.name} ({reason})") from None
    finally:
        with contextlib.suppress(OSError):   # the clean-up's own error never hides the real one
            _remove_temp(tmp)


RUN_MARKER = ".gigacity-run"
"""The file that makes a folder a gigacity run folder: written first, before any output,
and rewritten at the end with the list of the files the run wrote. ``--force`` replaces
only a folder that has it (or an empty one)."""

_RUNS: dict[Path, list[str]] = {}   # open run folders -> files written into them, in order
_CREATED: set[Path] = set()          # open run folders this process created (not reused with --force)
_RECORD_LOCK = threading.Lock()


def _refused_folder(folder: Path) -> str | None:
    """Why ``folder`` may never be a run folder (``/``, the home folder, the working folder, an ancestor)."""
    real = folder.resolve()
    for what, other in (("the working folder", Path.cwd()), ("the home folder", Path.home())):
        other = other.resolve()
        if real == other or real in other.parents:
            return f"is {what} or contains it"
    if real == Path(real.anchor):
        return "is the root of the file system"
    return None


def _os_error(folder, exc: OSError, doing: str) -> InputError:
    reason = exc.strerror or str(exc) or exc.__class__.__name__
    where = exc.filename if exc.filename is not None else folder
    return InputError(where, None, f"cannot {doing} ({reason})")


def _first_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_run_dir(folder, force: bool = False, *, key: str = "--out") -> Path:
    """Refuse, before any work, a run folder that :func:`create_run_dir` would refuse.

    ``folder`` exists: refused without ``force``; with it, refused unless it is a gigacity
    run folder (:data:`RUN_MARKER`) or empty. Never ``/``, the home or the working folder.
    Missing: its nearest existing ancestor must be a writable folder. ``key`` names the
    option or config key the folder comes from.
    """
    if folder is None or str(folder) == "":
        raise InputError(key, None, "expected a folder path, got ''")
    folder = Path(folder)
    why = _refused_folder(folder)
    if why:
        raise InputError(folder, key, f"refused as a run folder: it {why}")
    if folder.exists() or folder.is_symlink():
        if not folder.is_dir():
            raise InputError(folder, key, "exists and is not a folder")
        if not force:
            raise InputError(folder, "force", "run folder already exists; choose another or pass --force")
        if not (folder / RUN_MARKER).is_file() and any(folder.iterdir()):
            raise InputError(folder, key, f"not a gigacity run folder (no {RUN_MARKER}) and not empty; "
                                          "--force replaces only run folders: choose another folder")
        return folder
    anc = _first_existing(folder.parent)
    if not anc.is_dir():
        raise InputError(folder, key, f"cannot create the run folder: {anc} is a file, not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise InputError(folder, key, f"cannot create the run folder: {anc} is not writable")
    return folder


def _clear_previous(folder: Path) -> None:
    """Empty a gigacity run folder before it is reused (``--force``): the previous run's files,
    the temporary files of a killed run, everything but the marker. Links are removed, never followed."""
    import shutil

    for entry in os.scandir(folder):
        if entry.name == RUN_MARKER:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def create_run_dir(base, scenario: str, force: bool = False, *, now: _dt.datetime | None = None,
                   name: str | None = None, key: str = "--out") -> Path:
    """Create the run folder ``<base>/<scenario>-<YYYYmmdd-HHMMSS>/``, mark it, and return it.

    Parameters
    ----------
    base : str or Path
        Parent folder (``runs`` by convention); created if missing.
    scenario : str
        Scenario name: letters, digits, ``.``, ``_``, ``-``.
    force : bool
        Reuse an existing folder that is a gigacity run folder (or empty): its content (the
        previous run's files, stale temporary files of a killed run) is removed first.
    now : datetime, optional
        Time stamp (default: local time now).
    name : str, optional
        Folder name instead of ``<scenario>-<stamp>``.
    key : str
        The option or config key the folder comes from, for error messages.

    Notes
    -----
    :data:`RUN_MARKER` is the first file written. Files written by the writers of this
    module into the folder from then on are recorded (:func:`written_outputs`).
    """
    if not isinstance(scenario, str) or not _SCENARIO_NAME.match(scenario):
        raise InputError("create_run_dir", "scenario",
                         f"expected letters, digits, '.', '_' or '-', got {scenario!r}")
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    folder = Path(base) / (name if name is not None else f"{scenario}-{stamp}")
    check_run_dir(folder, force, key=key)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()
            created = True
        except FileExistsError:
            check_run_dir(folder, force, key=key)   # appeared meanwhile: the same rules
            _clear_previous(folder)
            created = False
        _RUNS[folder.resolve()] = []
        _write_marker(folder, scenario, None)
        if created:
            _CREATED.add(folder.resolve())
    except OSError as exc:
        raise _os_error(folder, exc, "create the run folder") from None
    return folder


def _write_marker(folder: Path, scenario: str, outputs) -> None:
    data = {"gigacity_run": True, "scenario": scenario, "pid": os.getpid(),
            "started": _dt.datetime.now().isoformat(timespec="seconds")}
    if outputs is not None:
        data["outputs"] = list(outputs)
    tmp = folder / f"{RUN_MARKER}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, folder / RUN_MARKER)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _record(path: Path) -> None:
    real = path.resolve()
    with _RECORD_LOCK:   # writer threads (background_writes) record too
        for folder, written in _RUNS.items():
            if folder in real.parents:
                rel = real.relative_to(folder).as_posix()
                if rel not in written:
                    written.append(rel)


def record_output(path) -> None:
    """Record ``path`` (a complete file, e.g. written by a forked process) as an output of its open run folder."""
    _record(Path(path))


def outputs_snapshot() -> dict:
    """How many files each open run folder has recorded so far (for :func:`outputs_since`)."""
    with _RECORD_LOCK:
        return {folder: len(written) for folder, written in _RUNS.items()}


def outputs_since(snapshot: dict) -> list[str]:
    """The files (absolute paths) recorded in the open run folders since :func:`outputs_snapshot` gave ``snapshot``."""
    with _RECORD_LOCK:
        return [str(folder / rel) for folder, written in _RUNS.items() for rel in written[snapshot.get(folder, 0):]]


def _after_fork_in_child() -> None:   # no parent's writer threads here (one may have held the lock at the fork)
    global _RECORD_LOCK
    _RECORD_LOCK = threading.Lock()
    _WRITERS.clear()


def written_outputs(run_dir) -> list[str]:
    """Files this process wrote into the run folder ``run_dir`` since it was created (relative, sorted)."""
    return sorted(_RUNS.get(Path(run_dir).resolve(), []))


def abandon_run_dir(run_dir) -> None:
    """A run that failed or was stopped: remove its folder if this process created it and wrote
    nothing into it but the marker (a later error leaves no empty run folder behind)."""
    real = Path(run_dir).resolve()
    written = _RUNS.pop(real, None)
    created = real in _CREATED
    _CREATED.discard(real)
    if written or not created:
        return
    with contextlib.suppress(OSError):
        (real / RUN_MARKER).unlink()
        real.rmdir()


def finish_run_dir(run_dir, scenario: str, outputs) -> None:
    """Rewrite the marker of ``run_dir`` with the ``outputs`` the run wrote (what ``--force`` later removes)."""
    _write_marker(Path(run_dir), scenario, sorted(outputs))
    _RUNS.pop(Path(run_dir).resolve(), None)
    _CREATED.discard(Path(run_dir).resolve())


def ensure_dir(path) -> Path:
    """The folder ``path``, created with its parents if missing (an output folder that may hold files)."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ----------------------------------------------------------------------------- background writes


class _Writers:
    """Pools of writer threads: jobs (closures writing one file atomically) run in submission order across
    ``threads`` threads; at most ``max_pending`` of the jobs that hold arrays wait, so their arrays stay bounded in
    memory. Jobs that hold no array (a COG copied from its temporary file) run in a second pool of ``threads``
    threads, unbounded: the caller never waits for them, and they do not hold up the others."""

    def __init__(self, threads: int, max_pending: int):
        from concurrent.futures import ThreadPoolExecutor

        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gigacity-writer")
        self.unbounded = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gigacity-copier")
        self.slots = threading.BoundedSemaphore(max_pending)
        self.futures: list = []
        self.on_cancel: dict = {}

    def submit(self, job, bounded: bool = True, on_cancel=None) -> None:
        self.raise_first_error(done_only=True)
        if not bounded:
            fut = self.unbounded.submit(job)
        else:
            self.slots.acquire()
            try:
                fut = self.pool.submit(job)
            except BaseException:
                self.slots.release()
                raise
            fut.add_done_callback(lambda _f: self.slots.release())
        self.futures.append(fut)
        if on_cancel is not None:
            self.on_cancel[fut] = on_cancel

    def raise_first_error(self, done_only: bool) -> None:
        for fut in self.futures:
            if (done_only and not fut.done()) or fut.cancelled():
                continue
            exc = fut.exception()
            if exc is not None:
                raise exc

    def close(self, failed: bool) -> None:
        """Wait for every job (or, after an error in the block, for the running ones only: a job cancelled
        before it started runs its ``on_cancel``, e.g. removes its temporary source file)."""
        try:
            self.pool.shutdown(wait=True, cancel_futures=failed)
            self.unbounded.shutdown(wait=True, cancel_futures=failed)
        finally:
            for fut, clean in self.on_cancel.items():
                if fut.cancelled() or not fut.done():
                    with contextlib.suppress(Exception):
                        clean()
        if not failed:
            self.raise_first_error(done_only=False)


_WRITERS: list[_Writers] = []   # the open background_writes block of this process (at most one)
os.register_at_fork(after_in_child=_after_fork_in_child)


def _submit(job, bounded: bool = True, on_cancel=None) -> None:
    """Run ``job`` now, or in a writer thread inside :func:`background_writes` (called from the main thread)."""
    if _WRITERS and threading.current_thread() is threading.main_thread():
        _WRITERS[-1].submit(job, bounded, on_cancel)
    else:
        job()


@contextlib.contextmanager
def background_writes(threads: int = 2, max_pending: int | None = None):
    """Within the block, :func:`write_geotiff`, :func:`write_png` (and :func:`write_png_rgba`) and :func:`write_csv`
    return once their data is in hand and write the file in one of ``threads`` writer threads.

    GDAL (compression, overviews), Pillow (palette, zlib) and Arrow (a CSV's columns) release the GIL, so
    the files are written while the main thread draws the next map. Each file is still written atomically
    and is the same, byte for byte, whatever ``threads`` (each job writes one file on its own). At most ``max_pending``
    jobs (default ``threads + 1``: one waits while each thread writes) are running or waiting, each holding
    its array (a 2-D raster, a map's pixels); a writer called then waits for a slot. Jobs that hold no array
    (:func:`submit_write` ``holds_arrays=False``: the COG copies of :class:`sim.report.rasterfile.LandRasterWriter`)
    run in ``threads`` threads of their own and never wait. The block ends when every
    file is written, raising the first writer error; an error (or an interrupt) in the block cancels the
    jobs not yet started and waits for the running ones (no temporary file is left). ``threads < 1``:
    every write runs at once in the caller, as outside the block. Used from the main thread; one block
    at a time.
    """
    if threads < 1 or _WRITERS:
        yield
        return
    writers = _Writers(int(threads), int(max_pending or threads + 1))
    _WRITERS.append(writers)
    failed = True
    try:
        yield
        failed = False
    finally:
        _WRITERS.remove(writers)
        writers.close(failed)


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
    """Write a DataFrame, or rows (dataclasses or dicts), as UTF-8 CSV without index.

    The bytes are those of ``DataFrame.to_csv(index=False, lineterminator="\\n")``; a frame whose columns
    are all numbers, booleans or plain strings is formatted from its column arrays by Arrow
    (:func:`csv_bytes`, several times faster on ``cells.csv``), any other by pandas. Inside
    :func:`background_writes` the file is written in a writer thread (from a copy of a caller's frame).
    """
    path = Path(path)
    df = as_frame(table)
    if _WRITERS and df is table:
        df = df.copy()   # written later in a writer thread: the caller may change its frame

    def write():
        data = csv_bytes(df)
        with atomic_path(path) as tmp:
            if data is not None:
                with open(tmp, "wb") as f:
                    f.write(data)
            else:
                with open(tmp, "w", encoding="utf-8", newline="") as f:
                    df.to_csv(f, index=False, lineterminator="\n")

    _submit(write)
    return path


def write_parquet(path, table) -> Path:
    """Write a DataFrame, or rows, as an Apache Parquet file (pyarrow, ZSTD; no index), atomically.

    The columns keep their dtypes (float64, int64, bool, strings), so a notebook reads the table without
    parsing text: ``pandas.read_parquet(path)``. Inside :func:`background_writes` it is written in a
    writer thread (from a copy of a caller's frame).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    df = as_frame(table)
    if _WRITERS and df is table:
        df = df.copy()

    def write():
        data = pa.Table.from_pandas(df, preserve_index=False)
        with atomic_path(path) as tmp:
            pq.write_table(data, tmp, compression="zstd")

    _submit(write)
    return path


# ----------------------------------------------------------------------------- PNG


def figure_rgba(fig, dpi: int = 170) -> np.ndarray:
    """A matplotlib Figure drawn at ``dpi`` (its Agg canvas) as an RGBA array ``[rows, cols, 4]`` uint8 (a copy).

    What ``fig.savefig(..., dpi=dpi)`` would encode: the figure's dpi is set for the drawing and restored.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    old = fig.get_dpi()
    fig.set_dpi(dpi)
    try:
        canvas.draw()
        return np.array(canvas.buffer_rgba())
    finally:
        fig.set_dpi(old)


def _palette_png(rgba: np.ndarray, path: Path, dpi: float | None = None) -> None:
    """Encode ``rgba`` as a palette PNG of :data:`PNG_COLOURS` colours into ``path`` (``dpi`` in its pHYs chunk)."""
    from PIL import Image

    im = Image.fromarray(rgba, mode="RGBA")
    if rgba[..., 3].min() == 255:   # an opaque figure (every map): median cut over RGB, no dither
        pal = im.convert("RGB").quantize(colors=PNG_COLOURS, method=Image.Quantize.MEDIANCUT,
                                         dither=Image.Dither.NONE)
    else:                            # transparency kept (median cut takes RGB only)
        pal = im.quantize(colors=PNG_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    kw = {} if dpi is None else {"dpi": (float(dpi), float(dpi))}
    pal.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL, **kw)


def write_png_rgba(path, rgba, dpi: float | None = None) -> Path:
    """Write an RGBA image ``[rows, cols, 4]`` uint8 as a palette PNG (:data:`PNG_COLOURS`), atomically;
    ``dpi``, when given, is recorded in the file (what a viewer prints it at).

    Inside :func:`background_writes` the encoding runs in a writer thread (Pillow releases the GIL).
    """
    path = Path(path)
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise InputError(path, "rgba", f"expected an RGBA image [rows, cols, 4], got shape {rgba.shape}")

    def write():
        with atomic_path(path) as tmp:
            _palette_png(rgba, tmp, dpi)

    _submit(write)
    return path


def write_png(fig, path, dpi: int = 170) -> Path:
    """Save a matplotlib Figure as a palette PNG at ``dpi``, encoded once (:func:`write_png_rgba`).

    The figure is drawn here (matplotlib is not thread-safe); a 256-colour palette (Pillow median
    cut, no dither) keeps a colour-mapped map visually unchanged (a fraction of a level of 255 on
    average) at about a third of the RGBA size, and is what ``report.html`` embeds as it is.
    """
    return write_png_rgba(path, figure_rgba(fig, dpi), dpi)


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
    """Write one band as a Cloud Optimized GeoTIFF (COG) with overviews.

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
    GDAL's COG driver (GDAL >= 3.1, https://gdal.org/drivers/raster/cog.html) copies the
    array from memory: 256 x 256 tiles, :data:`GEOTIFF_COMPRESS` at level :data:`GEOTIFF_LEVEL` with no
    predictor (:data:`GEOTIFF_PREDICTOR`), overviews at
    :data:`OVERVIEW_FACTORS` built from the in-memory band, and the COG layout (IFDs and
    overviews before the full-resolution tiles), so that GDAL reports ``LAYOUT=COG``.
    BIGTIFF when needed. Inside :func:`background_writes` the file is written in a writer thread.
    """
    import rasterio
    from rasterio.shutil import copy as copy_dataset

    path = Path(path)
    arr = np.asarray(array2d)
    shape = tuple(int(n) for n in grid.shape)
    if arr.shape != shape:
        raise InputError(path, "array2d", f"expected shape {shape} (the grid), got {arr.shape}")
    arr = arr.astype(geotiff_dtype(arr.dtype), copy=False)
    resampling = geotiff_resampling(path, arr.dtype, resampling)
    profile = {
        "driver": "MEM", "height": shape[0], "width": shape[1], "count": 1,
        "dtype": arr.dtype.name, "crs": grid.crs, "transform": grid_transform(grid), "nodata": nodata,
    }
    if _WRITERS and arr is array2d:
        arr = arr.copy()   # written later in a writer thread: the caller may reuse its array

    def write():
        with atomic_path(path) as tmp:
            with rasterio.open("in-memory", "w", **profile) as mem, rasterio.Env(**COG_TEMP_OPTIONS):
                mem.write(arr, 1)
                describe_geotiff_band(mem, band_description, units, resampling)
                copy_dataset(mem, tmp, driver="COG", **cog_options(resampling))

    _submit(write)
    return path


def geotiff_dtype(dtype) -> np.dtype:
    """The dtype a GeoTIFF band of ``dtype`` values is written in: float64 as float32, bool as uint8."""
    dtype = np.dtype(dtype)
    return {np.dtype(np.float64): np.dtype(np.float32), np.dtype(np.bool_): np.dtype(np.uint8)}.get(dtype, dtype)


def geotiff_resampling(path, dtype, resampling: str | None) -> str:
    """The overview resampling of a GeoTIFF band: ``resampling``, by default ``average`` for floats
    and ``nearest`` for integers (class rasters); :class:`InputError` naming ``path`` if GDAL lacks it."""
    from rasterio.enums import Resampling

    if resampling is None:
        resampling = "average" if np.issubdtype(np.dtype(dtype), np.floating) else "nearest"
    if resampling not in Resampling.__members__:
        raise InputError(path, "resampling", f"unknown resampling {resampling!r}")
    return resampling


def cog_options(resampling: str) -> dict:
    """Creation options of GDAL's COG driver for every GeoTIFF of a run (see :func:`write_geotiff`); the copy runs
    with the GDAL configuration :data:`COG_TEMP_OPTIONS`."""
    return {
        "COMPRESS": GEOTIFF_COMPRESS, "LEVEL": GEOTIFF_LEVEL, "PREDICTOR": GEOTIFF_PREDICTOR, "BLOCKSIZE": 256,
        "OVERVIEWS": "AUTO", "OVERVIEW_COUNT": len(OVERVIEW_FACTORS), "RESAMPLING": resampling.upper(),
        "BIGTIFF": "IF_SAFER",
    }


def describe_geotiff_band(ds, band_description: str, units: str, resampling: str) -> None:
    """Band 1's description and unit (the ``units`` tag too) and the ``overview_resampling`` tag of an open
    rasterio dataset ``ds``: what :func:`sim.report.files.write_geotiff` records (the COG copy keeps them)."""
    ds.set_band_description(1, str(band_description))
    ds.set_band_unit(1, str(units))
    ds.update_tags(1, units=str(units))
    ds.update_tags(overview_resampling=resampling)


def submit_write(job, *, holds_arrays: bool = True, on_cancel=None) -> None:
    """Run ``job`` (a closure writing one file with :func:`atomic_path`) now, or inside
    :func:`background_writes` in a writer thread (called from the main thread).

    ``holds_arrays`` False: a job that holds no array in memory (a COG copied from a file): it never waits for a
    slot and runs in the writer threads of such jobs. ``on_cancel``: called if the job is cancelled before it runs
    (an error ended the block), e.g. to remove its source file."""
    _submit(job, holds_arrays, on_cancel)


def write_gpkg_layers(path, layers: Mapping[str, Any]) -> Path:
    """Write several GeoDataFrames as layers of one GeoPackage, atomically."""
    import pyogrio

    path = Path(path)
    if not layers:
        raise InputError(path, "layers", "expected at least one layer")
    for name, gdf in layers.items():
        if getattr(gdf, "crs", None) is None:
            raise InputError(path, name, "expected a GeoDataFrame with a CRS")
    arrow = {"use_arrow": True} if _arrow_writes() else {}
    with atomic_path(path) as tmp:
        for name, gdf in layers.items():
            pyogrio.write_dataframe(gdf, tmp, layer=str(name), driver="GPKG", **arrow)
    return path


def _arrow_writes() -> bool:
    """Whether pyogrio can hand GDAL whole Arrow columns (pyarrow installed, pyogrio >= 0.8, GDAL >= 3.8): several
    times faster on a 400,000-row layer than feature by feature, and the same layer (fields, types, values,
    geometries)."""
    import pyogrio

    try:
        import pyarrow  # noqa: F401
    except ImportError:   # pragma: no cover - pyarrow is a dependency
        return False
    version = tuple(int(v) for v in re.findall(r"\d+", pyogrio.__version__)[:2])
    return version >= (0, 8) and tuple(pyogrio.__gdal_version__) >= (3, 8, 0)


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
