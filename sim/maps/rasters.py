"""Maps of per-pixel rasters (RSRP, SINR, rates, classes) and of differences of two runs.

Large rasters are shown at a stride so that the image has at most ``max_px`` pixels a
side (a 4,400 x 5,200 raster is drawn from a 1,467 x 1,734 view).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.artist import Artist
from matplotlib.colors import BoundaryNorm, Colormap, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from sim.errors import InputError

from .frame import (
    CBAR_AXES,
    add_inset,
    check_gdf,
    codes_of,
    district_patches,
    districts_key,
    finish,
    label_districts,
    labelled_codes,
    legend,
    new_figure,
    set_extent,
)

__all__ = [
    "MAX_PX", "CONTINUOUS_LEVELS", "INSET_MAX_PX", "raster_map", "difference_map", "reused_frames",
]

MAX_PX = 2000
CONTINUOUS_LEVELS = 64
INSET_MAX_PX = 1000
IMAGE_STAGE = "data"
"""matplotlib's ``interpolation_stage`` of a raster map's images: the display pixels are picked (nearest neighbour)
from the values, then coloured: one float32 band resampled and the colour map applied to the displayed pixels only.
The "rgba" stage that matplotlib picks by default when an image is shown at less than 3 times its size colours every
value of the view, then resamples four float64 bands (premultiplied by alpha): the same pixels (nearest neighbours of
the same values on the same scale; tests/test_maps.py) at about 15 % more of a run's writing-outputs time."""


# ----------------------------------------------------------------------------- maps


def raster_map(
    grid,
    values2d,
    districts_gdf,
    *,
    title: str,
    cbar_label: str,
    cmap: str | Colormap = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    classes: Sequence[float] | None = None,
    class_labels: Sequence[str] | None = None,
    nodata: float | None = None,
    inset: str | None = "central",
    inset_codes: Sequence[str] = (),
    max_px: int = MAX_PX,
) -> Figure:
    """Map of a per-pixel raster (RSRP, SINR, rate, ...) over the districts.

    Parameters
    ----------
    grid : sim.grid.Grid
        Georeference of ``values2d`` (``x0_m`` west edge, ``y0_m`` north edge, ``res_m``,
        ``shape``; row 0 is the north row).
    values2d : ndarray [n_rows, n_cols]
        Values; NaN (or ``nodata``) is not drawn.
    districts_gdf : GeoDataFrame
        Districts in the grid CRS with ``code``, ``name_en`` (``name_zh`` optional).
    title : str
        Title, with the scenario and year.
    cbar_label : str
        Colour-bar (or legend) label with units, e.g. ``"SS-RSRP (dBm)"``.
    cmap, vmin, vmax
        Colour map and limits of a continuous scale.
    classes : sequence of float, optional
        Class edges (``n + 1`` increasing values) for a discrete legend instead of a
        colour bar; ``class_labels`` (``n`` strings) name the classes.
    nodata : float, optional
        A value to leave out besides NaN (e.g. -1 in an index raster).
    inset : {"central", None}
        Add a zoomed inset of the central districts.
    inset_codes : sequence of str
        Codes of the central districts (the scenario's ``deployment.central_districts``);
        no inset when empty or when none of them is in ``districts_gdf``.
    max_px : int
        Largest displayed image side; bigger rasters are shown at a stride.

    Returns
    -------
    matplotlib.figure.Figure
        A new figure; inside :func:`reused_frames`, the figure of the frame (grid, districts, inset),
        shared by the maps of that frame (save each before asking for the next).
    """
    check_gdf(districts_gdf)
    codes = codes_of(inset_codes)
    values = np.asarray(values2d)
    shape = tuple(int(n) for n in grid.shape)
    if values.shape != shape:
        raise InputError("raster_map", "values2d", f"expected shape {shape} (the grid), got {values.shape}")
    norm, cm, handles = _raster_norm(values, cmap, vmin, vmax, classes, class_labels, cbar_label)
    key = None
    if _FRAMES:
        key = (_grid_key(grid), districts_key(districts_gdf), inset, codes, int(max_px))
        frame = _FRAMES[-1].get(key)
        if frame is not None:   # the frame of an earlier map: swap in this map's raster, scale and title
            frame.show(values, nodata, cm, norm)
            frame.scale(values, norm, handles, cbar_label)
            frame.ax.set_title(str(title), fontsize=11, loc="left")
            return frame.fig
    frame = _Frame(grid, max_px)
    fig, ax = frame.fig, frame.ax
    frame.images.append(frame.image(ax, values, nodata, cm, norm, None, max_px))
    ax.add_collection(district_patches(districts_gdf, "none"))
    set_extent(ax, districts_gdf.total_bounds)

    def draw_inset(axins, bounds):
        frame.images.append(frame.image(axins, values, nodata, cm, norm, bounds, INSET_MAX_PX))
        axins.add_collection(district_patches(districts_gdf, "none", linewidth=0.7))
        label_districts(axins, districts_gdf, set(codes), fontsize=6)

    axins = add_inset(ax, districts_gdf, inset, codes, draw_inset)
    label_districts(ax, districts_gdf, labelled_codes(districts_gdf, axins, codes), fontsize=6.5)
    frame.scale(values, norm, handles, cbar_label)
    finish(fig, ax, title)
    if key is not None:
        frame.freeze()
        _FRAMES[-1][key] = frame
    return fig


_FRAMES: list[dict] = []
"""The open :func:`reused_frames` blocks: frame key -> :class:`_Frame` (the last block is used)."""


@contextlib.contextmanager
def reused_frames():
    """Within the block, :func:`raster_map` draws the frame of a map once and reuses it.

    The first map of a frame (grid, districts, inset) is built as always; a later map with the same
    frame returns *the same Figure*, its raster images (map and inset), colour bar or legend and title
    swapped in, the district outlines, labels (laid out once), inset, scale bar, north arrow and
    attribution kept. Save (or draw) each map before asking for the next. The figures are dropped
    when the block ends.
    """
    frames: dict = {}
    _FRAMES.append(frames)
    try:
        yield
    finally:
        _FRAMES.remove(frames)
        frames.clear()


def _grid_key(grid) -> tuple:
    return (str(grid.crs), float(grid.x0_m), float(grid.y0_m), float(grid.res_m), tuple(int(n) for n in grid.shape))


class _Frame:
    """One raster map's figure and what a later map with the same frame swaps: images, colour bar or legend."""

    def __init__(self, grid, max_px: int):
        self.grid, self.max_px = grid, max_px
        self.fig, self.ax = new_figure()
        self.images: list = []        # (axes image, window, pixel limit): the map's, then the inset's
        self.colorbar = None

    def image(self, axis, values, nodata, cm, norm, window, limit):
        shown, extent = _shown(self.grid, values, window, limit, nodata)
        im = axis.imshow(shown, extent=extent, origin="upper", cmap=cm, norm=norm, interpolation="nearest",
                         interpolation_stage=IMAGE_STAGE, zorder=2)
        return im, window, limit

    def show(self, values, nodata, cm, norm) -> None:
        """Swap the raster of every image (the map's, the inset's) for ``values`` on the scale ``cm``, ``norm``."""
        if self.colorbar is not None:   # it follows its image: remove it before the image changes scale
            self.colorbar.remove()
            self.colorbar = None
        if self.ax.get_legend() is not None:
            self.ax.get_legend().remove()
        for im, window, limit in self.images:
            im.set_data(_shown(self.grid, values, window, limit, nodata)[0])
            im.set_cmap(cm)
            im.set_norm(norm)

    def scale(self, values, norm, handles, cbar_label: str) -> None:
        """The colour bar (continuous scale) or the legend of classes (``handles``)."""
        if handles is None:
            cax = self.fig.add_axes(CBAR_AXES)
            cb = self.fig.colorbar(self.images[0][0], cax=cax, extend=_extend(values, norm))
            cb.set_label(cbar_label, fontsize=8)
            cb.ax.tick_params(labelsize=7)
            self.colorbar = cb
        else:
            legend(self.ax, handles, title=cbar_label)


    def freeze(self) -> None:
        """Hand the static artists (outlines, labels and leaders, inset frame, scale bar, north arrow) to
        :class:`_StaticLayer` artists that draw them once per canvas size and then paste the pixels."""
        images = {im for im, _, _ in self.images}
        axins = self.ax.child_axes
        for axis in (self.ax, *axins):
            # semi-transparent artists (the inset indicator) stay live: Agg blends them wrongly onto a clear canvas
            static = [a for a in axis.get_children() if a in axis._children and a not in images
                      and a.get_alpha() in (None, 1.0)]
            if axis is self.ax:   # the inset axes (zorder 5) lies between the two layers of the map's axes
                under = [a for a in static if a.get_zorder() < INSET_ZORDER]
                over = [a for a in static if a.get_zorder() >= INSET_ZORDER]
                layers = [(under, INSET_ZORDER - 1.0), (over, INSET_ZORDER + 1.0)] if axins else [(static, 3.0)]
            else:
                layers = [(static, 3.0)]
            for members, zorder in layers:
                if members:
                    axis.add_artist(_StaticLayer(members, zorder))


INSET_ZORDER = 5.0
"""matplotlib's zorder of an inset axes (``Axes.inset_axes``)."""


class _StaticLayer(Artist):
    """Artists that stay the same from map to map, drawn once per canvas (size and dpi) into an RGBA layer
    that later draws paste (Agg); other renderers (PDF, SVG) draw the artists themselves.

    The members are hidden from their axes' own drawing; the layer draws them in zorder. Drawing them on a
    transparent canvas and pasting it differs from drawing them in place by the rounding of alpha blending
    (a level or two of 255 on antialiased edges, tests/test_maps.py)."""

    def __init__(self, members, zorder: float):
        super().__init__()
        self.members = sorted(members, key=lambda a: a.get_zorder())
        self.set_zorder(zorder)
        self.pixels: dict = {}
        for a in self.members:
            a.set_visible(False)

    def _draw_members(self, renderer) -> None:
        for a in self.members:
            a.set_visible(True)
            try:
                a.draw(renderer)
            finally:
                a.set_visible(False)

    def draw(self, renderer) -> None:
        if not self.get_visible():
            return
        from matplotlib.backends.backend_agg import RendererAgg

        if not isinstance(renderer, RendererAgg):
            self._draw_members(renderer)
            return
        key = (int(renderer.width), int(renderer.height), float(renderer.dpi))
        if key not in self.pixels:
            side = RendererAgg(key[0], key[1], key[2])
            self._draw_members(side)
            rgba = np.asarray(side.buffer_rgba())
            rows = np.flatnonzero(rgba[..., 3].any(axis=1))
            cols = np.flatnonzero(rgba[..., 3].any(axis=0))
            if rows.size == 0:
                self.pixels[key] = None
            else:   # the part that holds anything, and its lower-left corner in pixels
                crop = rgba[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1][::-1].copy()   # Agg: bottom row first
                self.pixels[key] = (int(cols[0]), key[1] - int(rows[-1]) - 1, crop)
        if self.pixels[key] is not None:
            x, y, crop = self.pixels[key]
            gc = renderer.new_gc()
            renderer.draw_image(gc, x, y, crop)
            gc.restore()
        self.stale = False


def _shown(grid, values, window, limit, nodata):
    """The displayed (strided, masked) view of ``values`` in ``window`` and its extent."""
    arr, extent = _display_view(grid, values, window, limit)
    shown = np.ma.masked_invalid(arr.astype(np.float32, copy=False))
    if nodata is not None:
        shown = np.ma.masked_where(arr == nodata, shown)
    return shown, extent


def _extend(values, norm) -> str:
    finite = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
    if finite.size == 0 or norm.vmin is None:
        return "neither"
    lo, hi = finite.min() < norm.vmin, finite.max() > norm.vmax
    return {(True, True): "both", (True, False): "min", (False, True): "max"}.get((lo, hi), "neither")


def _raster_norm(values, cmap, vmin, vmax, classes, class_labels, unit_label):
    base = colormaps[cmap] if isinstance(cmap, str) else cmap
    if classes is None:
        if vmin is None or vmax is None:
            finite = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
            lo = float(finite.min()) if finite.size else 0.0
            hi = float(finite.max()) if finite.size else 1.0
            vmin = lo if vmin is None else vmin
            vmax = (hi if hi > vmin else vmin + 1.0) if vmax is None else vmax
        if not vmax > vmin:
            raise InputError("raster_map", "vmax", f"expected vmax > vmin, got {vmin} and {vmax}")
        # 64 levels: invisible steps on screen, and a noisy raster compresses to a PNG < 2 MB
        cm = base.resampled(CONTINUOUS_LEVELS).with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
        return Normalize(vmin, vmax), cm, None
    edges = np.asarray(classes, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise InputError("raster_map", "classes", "expected at least 2 strictly increasing class edges")
    n = edges.size - 1
    if class_labels is None:
        class_labels = [f"{edges[k]:g} to {edges[k + 1]:g}" for k in range(n)]
    elif len(class_labels) != n:
        raise InputError("raster_map", "class_labels", f"expected {n} labels (one per class), got {len(class_labels)}")
    colours = base(np.linspace(0.0, 1.0, n)) if n > 1 else base([0.5])
    clear = (0.0, 0.0, 0.0, 0.0)
    cm = ListedColormap(colours).with_extremes(bad=clear, under=clear, over=clear)
    norm = BoundaryNorm(edges, n)
    handles = [Patch(facecolor=colours[k], edgecolor="0.3", linewidth=0.4, label=str(class_labels[k]))
               for k in range(n)]
    return norm, cm, handles


def _display_view(grid, values, window, limit):
    """A strided view of ``values`` (optionally a window in metres) and its extent."""
    res = float(grid.res_m)
    x0, y0 = float(grid.x0_m), float(grid.y0_m)
    n_rows, n_cols = values.shape
    r0, r1, c0, c1 = 0, n_rows, 0, n_cols
    if window is not None:
        xmin, ymin, xmax, ymax = window
        c0 = int(np.clip(math.floor((xmin - x0) / res), 0, n_cols))
        c1 = int(np.clip(math.ceil((xmax - x0) / res), 0, n_cols))
        r0 = int(np.clip(math.floor((y0 - ymax) / res), 0, n_rows))
        r1 = int(np.clip(math.ceil((y0 - ymin) / res), 0, n_rows))
        if r1 <= r0 or c1 <= c0:
            return np.full((1, 1), np.nan, dtype=np.float32), (xmin, xmin + res, ymin, ymin + res)
    step = max(1, math.ceil(max(r1 - r0, c1 - c0) / limit))
    view = values[r0:r1:step, c0:c1:step]
    extent = (
        x0 + c0 * res,
        x0 + (c0 + view.shape[1] * step) * res,
        y0 - (r0 + view.shape[0] * step) * res,
        y0 - r0 * res,
    )
    return view, extent

def _symmetric_limit(values, quantile: float = 98.0) -> float:
    """A round limit L for a scale [-L, L]: the ``quantile`` of |values|, rounded up to 1, 2 or 5 x 10^n."""
    finite = np.abs(values[np.isfinite(values)])
    q = float(np.percentile(finite, quantile)) if finite.size else 0.0
    if not q > 0:
        q = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    e = 10.0 ** math.floor(math.log10(q))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * e >= q * (1 - 1e-12):
            return m * e
    return 10.0 * e


def difference_map(
    grid,
    diff2d,
    districts_gdf,
    *,
    title: str,
    cbar_label: str,
    limit: float | None = None,
    cmap: str | Colormap = "RdBu",
    inset: str | None = "central",
    inset_codes: Sequence[str] = (),
) -> Figure:
    """Map of a difference raster (B - A) on a diverging scale centred on 0.

    Parameters
    ----------
    grid : sim.grid.Grid
        Georeference of ``diff2d``.
    diff2d : ndarray [n_rows, n_cols]
        Differences in the unit of ``cbar_label`` (e.g. Mbit/s); NaN not drawn.
    districts_gdf : GeoDataFrame
        Districts in the grid CRS.
    title : str
        Title naming both scenarios, e.g. ``"Indoor rate: shanghai-2025 (2025) − shanghai-2021 (2021)"``.
    cbar_label : str
        Colour-bar label with units.
    limit : float, optional
        The scale is ``[-limit, limit]``; default: the 98th percentile of ``|diff2d|``
        rounded up to 1, 2 or 5 x 10^n (so that a few extreme pixels do not wash the map
        out; pixels beyond are drawn in the end colours, the colour bar shows arrows).
    cmap : str or Colormap
        A diverging colour map; ``RdBu``: losses red, gains blue, no change white.
    inset, inset_codes
        The zoomed inset of the central districts, as in :func:`raster_map`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    values = np.asarray(diff2d, dtype=np.float64)
    lim = _symmetric_limit(values) if limit is None else float(limit)
    if not lim > 0:
        raise InputError("difference_map", "limit", f"expected a positive number, got {limit!r}")
    return raster_map(grid, values, districts_gdf, title=title, cbar_label=cbar_label, cmap=cmap,
                      vmin=-lim, vmax=lim, inset=inset, inset_codes=inset_codes)
