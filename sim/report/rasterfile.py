"""Land-pixel rasters written window by window and finished as Cloud Optimized GeoTIFFs.

A run's per-pixel results come in chunks of land pixels (``CityRasters.land_flat`` order: flat
row-major indices of the land pixels, increasing). :class:`LandRasterWriter` takes them chunk by
chunk, so that no whole-grid 2-D array is ever held: full rows are buffered and written as blocks of
:data:`BLOCK_ROWS` rows into a temporary raw file (the band's values row by row, native byte order)
next to the destination, described by a GDAL VRT (``VRTRawRasterBand``, https://gdal.org/drivers/raster/vrt.html:
georeference, no-data value, band description, unit and tags); :meth:`LandRasterWriter.close` then makes the COG
from that VRT with GDAL's COG driver (https://gdal.org/drivers/raster/cog.html), which reads it swath by swath
and builds the overviews from it. A raw file is written with one ``pwrite`` per block (a temporary tiled GTiff
cost GDAL a third of the streaming time at 25 m: tiling, its block cache, the flush at close). The source is
read with ``GDAL_ONE_BIG_READ`` (thread-local GDAL option), past GDAL's block cache.
The COG is the one :func:`sim.report.files.write_geotiff` writes of the scattered array (same creation
options, tags, pixels and overviews: the same bytes), written atomically and recorded as a run output.
A decimated preview for the maps is sampled on the way.

Memory: one block of ``BLOCK_ROWS x n_cols`` pixels, the preview (at most ``preview_max_px`` squared,
float32 for float32 values) and GDAL's working set (its block cache, up to ``GDAL_CACHEMAX``, default 5 %
of the RAM, holds the overviews and the COG's tiles as they are made: a process that sets
``GDAL_CACHEMAX=64`` bounds it there). Measured by ``benchmarks/bench_rasterfile.py`` on 13040 x 11040 float32
(Shanghai at 10 m): the windows 1.3 s instead of 2.1 s through a tiled GTiff, the COG copy the same 8 s, the peak
RSS growth 266 MiB instead of 118 MiB. Disk: the raw file, ``rows x cols x itemsize`` bytes, until the copy ends.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from sim.errors import InputError
from sim.grid import Grid

from . import files

__all__ = ["BLOCK_ROWS", "LandRasterWriter", "PreviewSampler", "preview_factor"]

BLOCK_ROWS = 256
"""Rows per block of the temporary raw file and per write (the COG's tile size)."""

_GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
               "int32": "Int32", "uint64": "UInt64", "int64": "Int64", "float32": "Float32", "float64": "Float64"}


def preview_factor(shape, preview_max_px: int) -> int:
    """The decimation ``f = ceil(max(rows, cols) / preview_max_px)``, at least 1, of a preview."""
    if int(preview_max_px) < 1:
        raise InputError("preview", "preview_max_px", f"expected a positive integer, got {preview_max_px!r}")
    return max(1, math.ceil(max(int(n) for n in shape) / int(preview_max_px)))


def _sample_map(n: int, f: int) -> np.ndarray:
    """Per fine row (or column) of ``n``: the preview row sampling it (``min(i*f + f//2, n-1)``), else -1."""
    out = np.full(n, -1, dtype=np.int64)
    m = -(-n // f)
    out[np.minimum(np.arange(m) * f + f // 2, n - 1)] = np.arange(m)
    return out


class PreviewSampler:
    """Which land pixels of each chunk a preview samples (see :class:`LandRasterWriter`), found once per chunk and
    shared by the writers of one grid (a run streams 20 rasters over the same chunks: the search was a third of
    the streaming time at 25 m).

    ``at(start, stop)``: ``(pos, where)``, the positions in land pixels ``start:stop`` that the preview samples and
    their flat indices in the preview, or None when the preview is the whole raster (factor 1). The chunk's flat
    indices are checked to increase once, here. Parameters as :class:`LandRasterWriter`'s.
    """

    def __init__(self, grid: Grid, land_flat, preview_max_px: int = 2048):
        self.land_flat = np.asarray(land_flat)
        self.rows, self.cols = (int(n) for n in grid.shape)
        self.f = preview_factor(grid.shape, preview_max_px)
        self.shape = (-(-self.rows // self.f), -(-self.cols // self.f))
        self._prow, self._pcol = _sample_map(self.rows, self.f), _sample_map(self.cols, self.f)
        self._plans: dict = {}       # (start, stop) -> (pos, where)
        self._checked: set = set()   # (start, stop) found increasing

    def fits(self, grid: Grid, land_flat, preview_max_px: int) -> bool:
        """Whether this sampler is that of ``grid``, ``land_flat`` (the same array) and ``preview_max_px``."""
        return (land_flat is self.land_flat and tuple(int(n) for n in grid.shape) == (self.rows, self.cols)
                and preview_factor(grid.shape, preview_max_px) == self.f)

    def checked(self, start: int, stop: int, source) -> np.ndarray:
        """``land_flat[start:stop]``, checked to increase (:class:`InputError` naming ``source`` if not)."""
        key = (int(start), int(stop))
        flat = self.land_flat[key[0]:key[1]]
        if key not in self._checked:
            if flat.size > 1 and (np.diff(flat) <= 0).any():
                raise InputError(source, "land_flat", f"expected increasing flat indices (land pixels {start}:{stop})")
            self._checked.add(key)
        return flat

    def at(self, start: int, stop: int):
        """``(pos, where)`` of land pixels ``start:stop`` (None at factor 1); computed once per chunk."""
        if self.f == 1:
            return None
        key = (int(start), int(stop))
        plan = self._plans.get(key)
        if plan is None:
            r, c = np.divmod(self.land_flat[key[0]:key[1]], self.cols)
            pr, pc = self._prow[r], self._pcol[c]
            pos = np.flatnonzero((pr >= 0) & (pc >= 0))
            plan = self._plans[key] = (pos, pr[pos] * self.shape[1] + pc[pos])
        return plan


class LandRasterWriter:
    """A single-band raster of land-pixel values written window by window, finished as a COG.

    Parameters
    ----------
    path : str or Path or None
        The GeoTIFF to write (its folder must exist). Nothing is there until :meth:`close` succeeds.
        ``None``: no file, the preview alone (a map with no GeoTIFF).
    grid : sim.grid.Grid
        CRS, transform and shape.
    land_flat : ndarray of int
        Flat row-major indices of the land pixels, increasing (``CityRasters.land_flat``).
    nodata : float or int
        No-data value, also the value off land (NaN allowed for floats).
    band_description, units : str
        As :func:`sim.report.files.write_geotiff`.
    dtype : str
        The band's dtype (float64 is written as float32, bool as uint8, as ``write_geotiff`` does).
    resampling : str, optional
        Overview resampling; default ``average`` for floats, ``nearest`` for integers.
    preview_max_px : int
        Largest side of :attr:`preview` (see :attr:`preview_grid`).
    scale : float, optional
        Multiplier applied (in float64) to the values before they are cast to ``dtype`` and written,
        e.g. ``1e-6`` for bit/s to Mbit/s. ``1/n`` with ``n`` an integer is applied as a division by
        ``n``: the same bits as ``(values as float64 / n).astype(dtype)``.
    sampler : PreviewSampler, optional
        The preview's sampling of each chunk, shared with other writers of the same grid, ``land_flat`` and
        ``preview_max_px`` (default: one of its own).

    Notes
    -----
    :meth:`write` takes the values of land pixels ``start:stop`` in order (the first ``start`` is 0,
    each next ``start`` the previous ``stop``); :meth:`close` writes the file and returns the preview;
    :meth:`abort` drops everything. As a context manager: :meth:`close` at the end of the block (if not
    called), :meth:`abort` on an exception. Inside :func:`sim.report.files.background_writes` the COG
    copy runs in a writer thread; the preview is ready when :meth:`close` returns.

    The preview: ``f`` = :func:`preview_factor`; ``preview[i, j]`` is the (pre-``scale``) value of pixel
    ``(min(i*f + f//2, rows-1), min(j*f + f//2, cols-1))``, NaN off land, in the values' dtype promoted to a
    float (float32 at least). With ``f == 1`` it is
    ``sim.grid.scatter_to_raster(grid, land_flat, values)``, value for value.
    """

    def __init__(self, path, grid: Grid, land_flat, nodata, band_description: str, units: str, *,
                 dtype="float32", resampling: str | None = None, preview_max_px: int = 2048,
                 scale: float | None = None, sampler: PreviewSampler | None = None):
        self.to_file = path is not None      # None: the preview alone (a map with no GeoTIFF)
        self.path = Path(path) if self.to_file else Path("preview")
        self.grid = grid
        self.land_flat = np.asarray(land_flat)
        self.n_land = int(self.land_flat.size)
        self.dtype = files.geotiff_dtype(dtype)
        self.nodata = nodata
        self.resampling = files.geotiff_resampling(self.path, self.dtype, resampling)
        self.band_description, self.units = str(band_description), str(units)
        self._divisor, self._scale = _scale_of(self.path, scale)
        self.rows, self.cols = (int(n) for n in grid.shape)
        if self.land_flat.ndim != 1 or (self.n_land and (self.land_flat[0] < 0 or
                                                         self.land_flat[-1] >= self.rows * self.cols)):
            raise InputError(self.path, "land_flat", f"expected flat indices of the grid's {self.rows} x "
                                                     f"{self.cols} pixels")
        if self.to_file and not self.path.parent.is_dir():
            raise InputError(self.path, None, "the destination folder does not exist")
        self._fill = nodata if nodata is not None else (np.nan if self.dtype.kind == "f" else 0)
        if sampler is None or not sampler.fits(grid, land_flat, preview_max_px):
            sampler = PreviewSampler(grid, self.land_flat, preview_max_px)
        self._sampler = sampler
        f = sampler.f
        self.preview_grid = Grid(grid.crs, grid.x0_m, grid.y0_m, grid.res_m * f, sampler.shape)
        self.preview = None      # made at the first write, in the values' float dtype (float32 at least)
        self._block_px = BLOCK_ROWS * self.cols
        self._buf = np.full(self._block_px, self._fill, dtype=self.dtype)
        self._block = 0      # the block of rows being filled
        self._next = 0       # the next land pixel expected
        self._last = -1      # the flat index of the last land pixel given
        self._ds = None
        self._closed = False
        self._tmp = None
        if not self.to_file:
            return
        try:
            self._ds, name = tempfile.mkstemp(prefix=f".{self.path.stem}.stream-", suffix=".raw",
                                              dir=self.path.parent)
        except OSError as exc:   # a read-only folder, a full disk
            raise InputError(self.path, None, f"cannot write {self.path.name} ({exc.strerror or exc})") from None
        self._tmp = Path(name)

    # -------------------------------------------------------------------------------- public

    def write(self, start: int, stop: int, values) -> None:
        """Take the values of land pixels ``start:stop`` (``land_flat`` order); calls come in order."""
        self._check_open()
        start, stop = int(start), int(stop)
        if start != self._next:
            raise InputError(self.path, "start", f"expected land pixels in order, from {self._next}; got {start}")
        if not start <= stop <= self.n_land:
            raise InputError(self.path, "stop", f"expected {start} <= stop <= {self.n_land} (land pixels), got {stop}")
        vals = np.asarray(values)
        if vals.shape != (stop - start,):
            raise InputError(self.path, "values", f"expected {stop - start} values (land pixels {start}:{stop}), "
                                                  f"got shape {vals.shape}")
        flat = self._take_chunk(start, stop, vals)
        if not self.to_file:
            return
        out = self._cast(vals)
        i, n = 0, flat.size
        while i < n:
            end = (self._block + 1) * self._block_px
            j = i + int(np.searchsorted(flat[i:], end))
            self._buf[flat[i:j] - self._block * self._block_px] = out[i:j]
            if j < n:   # the chunk goes on past this block of rows
                self._flush_to(int(flat[j]) // self._block_px)
            i = j

    def sampled(self, start: int, stop: int) -> np.ndarray | None:
        """The positions in land pixels ``start:stop`` that the preview samples (None: all of them, factor 1)."""
        plan = self._sampler.at(start, stop)
        return None if plan is None else plan[0]

    def write_sampled(self, start: int, stop: int, values) -> None:
        """As :meth:`write` for a writer without a file (``path`` None), given only the values of the pixels the
        preview samples (those at :meth:`sampled`): the same preview, from the values that are shown."""
        if self.to_file:
            raise InputError(self.path, "values", "expected every land pixel's value: the raster has a file")
        self._check_open()
        start, stop = int(start), int(stop)
        if start != self._next or not start <= stop <= self.n_land:
            raise InputError(self.path, "start", f"expected land pixels in order, from {self._next}; "
                                                 f"got {start}:{stop}")
        pos = self.sampled(start, stop)
        vals = np.asarray(values)
        n = stop - start if pos is None else pos.size
        if vals.shape != (n,):
            raise InputError(self.path, "values", f"expected {n} values (the sampled land pixels of {start}:{stop}), "
                                                  f"got shape {vals.shape}")
        self._take_chunk(start, stop, vals, sampled=True)

    def close(self) -> np.ndarray:
        """Write the COG at ``path`` (atomically, recorded as a run output); return :attr:`preview`.

        :class:`InputError` naming the file if not every land pixel was given (nothing is written then).
        """
        self._check_open()
        try:
            if self._next != self.n_land:
                raise InputError(self.path, "values", f"closed after {self._next} of {self.n_land} land pixels")
            if not self.to_file:
                self._closed = True
                return self._final_preview()
            self._flush_to(-(-self.rows // BLOCK_ROWS))
            with self._gdal_errors():
                os.close(self._ds)
                self._ds = None
                _vrt(self._tmp).write_text(self._vrt_xml(), encoding="utf-8")
        except BaseException:
            self.abort()
            raise
        self._closed = True
        self._buf = None
        src, path, options = self._tmp, self.path, files.cog_options(self.resampling)

        def copy():
            import rasterio
            from rasterio.shutil import copy as copy_dataset

            try:
                with files.atomic_path(path) as tmp, rasterio.Env(GDAL_ONE_BIG_READ="YES", **files.COG_TEMP_OPTIONS):
                    copy_dataset(_vrt(src), tmp, driver="COG", **options)
            finally:
                _remove(src)

        try:   # holds no array: the caller goes on (draws the maps) while the copies run
            files.submit_write(copy, holds_arrays=False, on_cancel=lambda: _remove(src))
        except BaseException:
            _remove(src)
            raise
        return self._final_preview()

    def abort(self) -> None:
        """Drop the raster: its temporary files are removed; nothing is written at ``path``."""
        self._closed = True
        self._buf = None
        if self._ds is not None:
            with contextlib.suppress(OSError):
                os.close(self._ds)
            self._ds = None
        if self._tmp is not None:
            _remove(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.close()
        return False

    # -------------------------------------------------------------------------------- inside

    def _vrt_xml(self) -> str:
        """The GDAL VRT of the raw file: what ``sim.report.files.write_geotiff``'s in-memory dataset holds (CRS,
        transform, no-data value, band description, unit and tags), so that the COG copies are the same bytes."""
        from rasterio.crs import CRS

        t = files.grid_transform(self.grid)
        item = self.dtype.itemsize
        if self.nodata is None:
            nodata = ""
        else:
            v = float(self.nodata)
            nodata = f"<NoDataValue>{'nan' if math.isnan(v) else (int(v) if v.is_integer() else repr(v))}</NoDataValue>"
        return (f'<VRTDataset rasterXSize="{self.cols}" rasterYSize="{self.rows}">\n'
                f"  <SRS>{escape(CRS.from_user_input(self.grid.crs).to_wkt())}</SRS>\n"
                f"  <GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>\n"
                f'  <Metadata><MDI key="AREA_OR_POINT">Area</MDI>'
                f'<MDI key="overview_resampling">{escape(self.resampling)}</MDI></Metadata>\n'
                f'  <VRTRasterBand dataType="{_GDAL_TYPES[self.dtype.name]}" band="1" subClass="VRTRawRasterBand">\n'
                f"    <Description>{escape(self.band_description)}</Description>{nodata}\n"
                f"    <UnitType>{escape(self.units)}</UnitType>\n"
                f'    <Metadata><MDI key="units">{escape(self.units)}</MDI></Metadata>\n'
                f'    <SourceFilename relativeToVRT="1">{escape(self._tmp.name)}</SourceFilename>\n'
                f"    <ImageOffset>0</ImageOffset><PixelOffset>{item}</PixelOffset>"
                f"<LineOffset>{item * self.cols}</LineOffset>"
                f"<ByteOrder>{'LSB' if sys.byteorder == 'little' else 'MSB'}</ByteOrder>\n"
                f"  </VRTRasterBand>\n</VRTDataset>\n")

    @contextlib.contextmanager
    def _gdal_errors(self):
        """GDAL's errors on the temporary file (a full disk) as one line naming the file."""
        try:
            yield
        except Exception as exc:
            if type(exc).__module__.split(".")[0] != "rasterio" and not isinstance(exc, OSError):
                raise
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise InputError(self.path, None, f"cannot write {self.path.name} ({reason})") from None

    def _check_open(self) -> None:
        if self._closed:
            raise InputError(self.path, None, "the raster writer is closed (or aborted)")

    def _cast(self, vals: np.ndarray) -> np.ndarray:
        if self._divisor is not None:
            return (np.asarray(vals, np.float64) / self._divisor).astype(self.dtype)
        if self._scale is not None:
            return (np.asarray(vals, np.float64) * self._scale).astype(self.dtype)
        return vals.astype(self.dtype, copy=False)

    def _final_preview(self) -> np.ndarray:
        if self.preview is None:
            self.preview = np.full(self.preview_grid.shape, np.nan, dtype=np.float32)
        return self.preview

    def _take_chunk(self, start: int, stop: int, vals: np.ndarray, sampled: bool = False) -> np.ndarray:
        """Check that land pixels ``start:stop`` follow the last chunk's in flat order, sample them into the preview
        (:meth:`_sample`) and move on past them; returns their flat indices."""
        flat = self._sampler.checked(start, stop, self.path)
        if flat.size and flat[0] <= self._last:
            raise InputError(self.path, "land_flat", f"expected increasing flat indices (land pixels {start}:{stop})")
        self._sample(start, stop, vals, sampled)
        self._next = stop
        if flat.size:
            self._last = int(flat[-1])
        return flat

    def _sample(self, start: int, stop: int, vals: np.ndarray, sampled: bool = False) -> None:
        """Put the chunk's pixels that the preview samples into it (pre-``scale`` values; ``sampled``: ``vals``
        are those pixels' alone)."""
        if self.preview is None:
            self.preview = np.full(self.preview_grid.shape, np.nan, dtype=np.result_type(vals.dtype, np.float32))
        plan = self._sampler.at(start, stop)
        if plan is None:
            self.preview.ravel()[self.land_flat[start:stop]] = vals
            return
        pos, where = plan
        self.preview.ravel()[where] = vals if sampled else vals[pos]

    def _flush_to(self, block: int) -> None:
        """Write the block being filled and the (empty) blocks before ``block``; ``block`` is filled next."""
        while self._block < block:
            r0 = self._block * BLOCK_ROWS
            n = min(BLOCK_ROWS, self.rows - r0)
            data = memoryview(self._buf[: n * self.cols]).cast("B")
            with self._gdal_errors():
                done = 0
                while done < len(data):   # pwrite may write less than asked (a signal, a nearly full disk)
                    k = os.pwrite(self._ds, data[done:], r0 * self.cols * self.dtype.itemsize + done)
                    if k == 0:
                        raise OSError(28, "No space left on device")
                    done += k
            self._buf.fill(self._fill)
            self._block += 1


def _scale_of(path: Path, scale) -> tuple[int | None, float | None]:
    """``(divisor, multiplier)``: a scale ``1/n`` (``n`` an integer) as the divisor ``n``, else the multiplier."""
    if scale is None:
        return None, None
    scale = float(scale)
    if not math.isfinite(scale) or scale == 0.0:
        raise InputError(path, "scale", f"expected a finite non-zero multiplier, got {scale!r}")
    n = round(1.0 / scale)
    if 0 < abs(n) < 2**53 and 1.0 / n == scale:
        return n, None
    return None, scale


def _vrt(raw: Path) -> Path:
    """The VRT describing the temporary raw file ``raw``."""
    return raw.with_suffix(".vrt")


def _remove(tmp: Path) -> None:
    for p in (tmp, Path(str(tmp) + ".aux.xml"), _vrt(tmp), Path(str(_vrt(tmp)) + ".aux.xml")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
