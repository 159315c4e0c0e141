"""Per-land-pixel arrays of a run kept on disk, written tile by tile and read back in chunks.

A run's per-pixel results (each layer's coverage, the busy-hour rates, the rasters of the
assessment) are flat arrays over the land pixels (``CityRasters.land_flat`` order). Held in
memory they grow with the grid (about 40 bytes per pixel per layer, 11.2 M land pixels at
25 m, 70 M at 10 m); a :class:`PixelStore` keeps each one as a raw file in a scratch folder
instead. Tiles write their slice wherever and in whatever order they finish
(:meth:`PixelStore.write`); later stages read fixed chunks of :data:`CHUNK_PX` pixels in land
order (:meth:`PixelStore.read`, :func:`chunks`), so a reduction sees the same chunks, hence
the same numbers, whatever the tile size, the number of workers or the engine.

The folder is removed by :meth:`PixelStore.close`, or when the store is garbage collected, or
at exit. :meth:`PixelStore.array` maps a whole array read-only (``numpy.memmap``: pages are
read when touched) for callers that want it whole (``Simulation.raster``, tests).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref

import numpy as np

from .errors import InputError

__all__ = ["CHUNK_PX", "PixelStore", "chunks", "bincount_onto"]

CHUNK_PX = 1 << 20
"""Land pixels of one chunk of a reduction over a store (4 MiB of float32): fixed, so a
reduction's floating-point sums are the same whatever the tiles the arrays were written in."""


def chunks(n: int, chunk_px: int = CHUNK_PX) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive chunks of ``chunk_px`` over ``n`` items, in order."""
    return [(a, min(a + int(chunk_px), int(n))) for a in range(0, int(n), int(chunk_px))]


class PixelStore:
    """Named flat arrays of ``n_land`` values each, as raw files in a scratch folder.

    Parameters
    ----------
    n_land : int
        Values per array.
    scratch_dir : str or Path, optional
        Where the store's folder is made (default: the system's temporary folder).
    """

    def __init__(self, n_land: int, scratch_dir=None):
        self.n_land = int(n_land)
        self.dir = tempfile.mkdtemp(prefix="gigacity-pixels-", dir=scratch_dir)
        self._dtypes: dict[str, np.dtype] = {}
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.dir, ignore_errors=True)

    def __contains__(self, name: str) -> bool:
        return name in self._dtypes

    @property
    def names(self) -> list[str]:
        return list(self._dtypes)

    def _path(self, name: str) -> str:
        if name not in self._dtypes:
            raise KeyError(f"no array {name!r} in the pixel store; it has {', '.join(self._dtypes) or 'none'}")
        return os.path.join(self.dir, name.replace(os.sep, "__") + ".raw")

    def create(self, name: str, dtype) -> None:
        """An array ``name`` of ``dtype`` (zeros until written; an existing one is replaced)."""
        dt = np.dtype(dtype)
        self._dtypes[name] = dt
        with open(self._path(name), "wb") as f:
            f.truncate(self.n_land * dt.itemsize)

    def write(self, name: str, start: int, values) -> None:
        """Values ``start:start + len(values)`` of array ``name`` (converted to its dtype)."""
        dt = self._dtypes.get(name)
        if dt is None:
            self.create(name, np.asarray(values).dtype)
            dt = self._dtypes[name]
        v = np.ascontiguousarray(values, dtype=dt)
        if v.ndim != 1 or start < 0 or start + v.size > self.n_land:
            raise InputError("PixelStore", name, f"expected values for land pixels within 0..{self.n_land}, got "
                                                 f"{v.size} values at {start}")
        fd = os.open(self._path(name), os.O_WRONLY)
        try:
            os.pwrite(fd, v.tobytes(), int(start) * dt.itemsize)
        finally:
            os.close(fd)

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Values ``start:stop`` of array ``name`` (a new array in memory)."""
        dt = self._dtypes.get(name)
        path = self._path(name)
        stop = self.n_land if stop is None else int(stop)
        return np.fromfile(path, dtype=dt, count=max(stop - int(start), 0), offset=int(start) * dt.itemsize)

    def array(self, name: str) -> np.ndarray:
        """The whole array ``name``, mapped read-only from its file (read when touched)."""
        dt = self._dtypes.get(name)
        path = self._path(name)
        if self.n_land == 0:
            return np.zeros(0, dtype=dt)
        return np.memmap(path, dtype=dt, mode="r", shape=(self.n_land,))

    def chunks(self, chunk_px: int | None = None) -> list[tuple[int, int]]:
        """The fixed chunks of a reduction over the store (:func:`chunks`, default :data:`CHUNK_PX`)."""
        return chunks(self.n_land, chunk_px or CHUNK_PX)

    def close(self) -> None:
        """Remove the store's folder (arrays mapped by :meth:`array` stay readable until dropped)."""
        self._finalizer()


def bincount_onto(total, keys, weights=None) -> np.ndarray:
    """``total`` (float64 [n]) plus ``np.bincount(keys, weights, minlength=n)``, added in the order of ``keys``.

    ``np.bincount`` adds the weights of a bin one after another in input order; adding each weight onto its
    bin's running total in that order (``np.add.at``, unbuffered, element by element) makes a reduction over
    consecutive chunks give the bits of one ``np.bincount`` over the whole array, whatever the chunks.
    Keys must lie in ``[0, n)`` (``ValueError`` otherwise).
    """
    out = np.array(total, dtype=np.float64)
    n = out.size
    k = np.asarray(keys, dtype=np.intp)
    if k.size and (k.min() < 0 or k.max() >= n):
        raise ValueError(f"bincount_onto: keys outside [0, {n}): {int(k.min())}..{int(k.max())}")
    np.add.at(out, k, 1.0 if weights is None else np.asarray(weights, dtype=np.float64))
    return out
