"""Maps of the city: rasters, districts, criteria choropleths and sites.

Every function returns a :class:`matplotlib.figure.Figure` built with the object API (no
pyplot state) and never saves it: :func:`sim.report.files.write_png` does. Each map has the
district boundaries and English names (Chinese too when a CJK font is installed), a
colour bar with units or a legend, the title passed in (scenario and year), a scale bar in
km and a north arrow drawn with matplotlib primitives, the ODbL attribution line, and an
inset zooming on the central districts (``inset_codes``: the scenario's
``deployment.central_districts``).

Coordinates are metres in the grid CRS (EPSG:32651, UTM 51N). The north arrow points to
grid north; over Shanghai grid north is within about 1° of true north (meridian
convergence ``(lon - 123°) sin(lat)`` ≈ -0.8°), below what the arrow can show.

Large rasters are shown at a stride so that the image has at most ``max_px`` pixels a
side (a 4,400 x 5,200 raster is drawn from a 1,467 x 1,734 view).

``import sim`` does not import this module; matplotlib is imported here only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps, font_manager, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection
from matplotlib.colors import BoundaryNorm, Colormap, ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch, PathPatch, Polygon, Rectangle
from matplotlib.path import Path

from sim.errors import InputError
from sim.geodata import ATTRIBUTION

__all__ = [
    "raster_map",
    "district_map",
    "choropleth",
    "sites_map",
    "difference_map",
    "criteria_panels",
    "cjk_font_family",
    "plan_curve_figure",
]

FIGSIZE_IN = (8.0, 8.0)
MAIN_AXES = (0.02, 0.07, 0.80, 0.85)  # left, bottom, width, height (figure fraction)
CBAR_AXES = (0.85, 0.22, 0.025, 0.52)
INSET_BOX = (0.005, 0.645, 0.35, 0.35)  # axes fraction: upper left (outside the city)
MAX_PX = 2000
CONTINUOUS_LEVELS = 64
INSET_MAX_PX = 1000
BACKGROUND = "#eef1f4"
EDGE = "0.15"
PASS_COLOUR = "#1a9850"
FAIL_COLOUR = "#d73027"
NONE_COLOUR = "#bdbdbd"

_CJK_NAMES = (
    # sans first: map labels are small, a serif CJK face reads poorly at 6 pt
    "Noto Sans CJK", "Source Han Sans", "WenQuanYi", "Microsoft YaHei", "PingFang", "Heiti", "SimHei",
    "Droid Sans Fallback", "Sarasa", "Noto Serif CJK", "Source Han Serif", "SimSun", "AR PL",
)


@functools.lru_cache(maxsize=1)
def cjk_font_family() -> str | None:
    """Family name of an installed font with CJK glyphs (a sans face preferred), or None (names stay English)."""
    names = [f.name for f in font_manager.fontManager.ttflist]
    for want in _CJK_NAMES:
        for n in names:
            if n.startswith(want):
                return n
    return None


_LABEL_GID = "district-label"


_LAYOUTS: dict = {}
"""Label layouts adjustText found, by axes frame and labels: every map of a run shares its district
frame, so the iterative layout (about two thirds of a map's drawing time) runs once per frame."""

_LEADER = {"arrowstyle": "-", "color": "0.35", "lw": 0.4}


def _layout_key(axis, texts) -> tuple:
    fig = axis.figure
    return (tuple(fig.get_size_inches().round(4)), tuple(np.round(axis.get_position().bounds, 6)),
            tuple(np.round(axis.get_xlim(), 3)), tuple(np.round(axis.get_ylim(), 3)),
            tuple((t.get_text(), *np.round(t.get_position(), 3), t.get_fontsize()) for t in texts))


def _declutter(ax) -> None:
    """Move the district labels of ``ax`` and its insets apart (adjustText), with a leader line when moved.

    Positions found for a frame (figure size, axes box and limits, labels) are reused for the next
    map with the same frame. adjustText imports ``matplotlib.pyplot`` (it draws nothing through it
    here: the figures stay pyplot-free objects); it is imported only when two labels or more are placed.
    """
    for axis in (ax, *ax.child_axes):
        texts = [t for t in axis.texts if t.get_gid() == _LABEL_GID]
        if len(texts) < 2:
            continue
        key = _layout_key(axis, texts)
        before = [tuple(t.get_position()) for t in texts]
        if key not in _LAYOUTS:
            from adjustText import adjust_text

            adjust_text(texts, ax=axis, ensure_inside_axes=True, expand=(1.05, 1.15), iter_lim=200,
                        arrowprops=_LEADER)
            if len(_LAYOUTS) > 64:
                _LAYOUTS.clear()
            _LAYOUTS[key] = [tuple(t.get_position()) for t in texts]
            continue
        for t, xy0, xy in zip(texts, before, _LAYOUTS[key]):
            t.set_position(xy)
            if not np.allclose(xy0, xy):
                axis.annotate("", xy=xy0, xytext=xy, arrowprops=_LEADER, annotation_clip=False)


# ----------------------------------------------------------------------------- helpers


def _figure() -> tuple[Figure, object]:
    fig = Figure(figsize=FIGSIZE_IN)
    FigureCanvasAgg(fig)
    ax = fig.add_axes(MAIN_AXES)
    _style_axes(ax)
    return fig, ax


def _style_axes(ax) -> None:
    ax.set_facecolor(BACKGROUND)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def _check_gdf(gdf) -> None:
    for col in ("code", "name_en", "geometry"):
        if col not in gdf.columns:
            raise InputError("districts", col, "expected a column of that name in the districts table")
    if gdf.crs is not None and not gdf.crs.is_projected:
        raise InputError("districts", "crs", f"expected a metric CRS (EPSG:32651), got {gdf.crs}")


def _ring_path(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes = np.full(len(coords), Path.LINETO, dtype=Path.code_type)
    codes[0] = Path.MOVETO
    codes[-1] = Path.CLOSEPOLY
    return coords, codes


def _geom_path(geom) -> Path:
    """One compound path (exteriors and holes) of a Polygon or MultiPolygon."""
    polys = getattr(geom, "geoms", [geom])
    verts, codes = [], []
    for poly in polys:
        for ring in (poly.exterior, *poly.interiors):
            v, c = _ring_path(np.asarray(ring.coords)[:, :2])
            verts.append(v)
            codes.append(c)
    return Path(np.concatenate(verts), np.concatenate(codes))


def _district_patches(gdf, facecolors, *, edgecolor=EDGE, linewidth=0.6, zorder=3) -> PatchCollection:
    patches = [PathPatch(_geom_path(g)) for g in gdf.geometry]
    return PatchCollection(patches, facecolors=facecolors, edgecolors=edgecolor,
                           linewidths=linewidth, zorder=zorder)


def _set_extent(ax, bounds, pad_frac: float = 0.03) -> None:
    xmin, ymin, xmax, ymax = bounds
    pad = pad_frac * max(xmax - xmin, ymax - ymin)
    ax.set_xlim(xmin - pad, xmax + pad)
    ax.set_ylim(ymin - pad, ymax + pad)


def _label(ax, gdf, codes: set[str] | None, fontsize: float) -> None:
    cjk = cjk_font_family()
    halo = [patheffects.withStroke(linewidth=2.0, foreground="white")]
    for code, name, name_zh, geom in zip(
        gdf["code"], gdf["name_en"],
        gdf["name_zh"] if "name_zh" in gdf.columns else [None] * len(gdf), gdf.geometry,
    ):
        if codes is not None and str(code) not in codes:
            continue
        p = geom.representative_point()
        text = f"{name}\n{name_zh}" if (cjk and name_zh) else str(name)
        kw = {"fontfamily": [cjk, "DejaVu Sans"]} if (cjk and name_zh) else {}
        ax.text(p.x, p.y, text, ha="center", va="center", fontsize=fontsize, zorder=6,
                path_effects=halo, clip_on=True, gid=_LABEL_GID, **kw)


def _nice_length_km(width_m: float) -> float:
    target = width_m / 5000.0  # a fifth of the map width, in km
    for v in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 25, 50, 100, 200):
        if v >= target:
            return float(v)
    return 500.0


def _scale_bar(ax) -> None:
    """A 4-segment black/white scale bar in the lower left, in km."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length_km = _nice_length_km(x1 - x0)
    length_m = 1000.0 * length_km
    h = 0.012 * (y1 - y0)
    bx = x0 + 0.04 * (x1 - x0)
    by = y0 + 0.04 * (y1 - y0)
    seg = length_m / 4
    for k in range(4):
        ax.add_patch(Rectangle((bx + k * seg, by), seg, h, facecolor="black" if k % 2 == 0 else "white",
                               edgecolor="black", linewidth=0.6, zorder=7))
    for v, x in ((0, bx), (length_km / 2, bx + length_m / 2), (length_km, bx + length_m)):
        ax.text(x, by + 1.6 * h, f"{v:g}", ha="center", va="bottom", fontsize=7, zorder=7)
    ax.text(bx + length_m + 0.6 * seg, by + 0.5 * h, "km", ha="left", va="center", fontsize=7, zorder=7)


def _north_arrow(ax) -> None:
    """A north arrow (triangle and N) in the upper right, in axes coordinates."""
    cx, top, base, half = 0.95, 0.965, 0.895, 0.018
    ax.add_patch(Polygon([(cx, top), (cx - half, base), (cx, base + 0.015)], closed=True,
                         facecolor="black", edgecolor="black", linewidth=0.6,
                         transform=ax.transAxes, zorder=8))
    ax.add_patch(Polygon([(cx, top), (cx + half, base), (cx, base + 0.015)], closed=True,
                         facecolor="white", edgecolor="black", linewidth=0.6,
                         transform=ax.transAxes, zorder=8))
    ax.text(cx, base - 0.008, "N", ha="center", va="top", fontsize=9, fontweight="bold",
            transform=ax.transAxes, zorder=8)


def _finish(fig, ax, title: str) -> None:
    _declutter(ax)
    ax.set_title(str(title), fontsize=11, loc="left")
    _scale_bar(ax)
    _north_arrow(ax)
    fig.text(0.01, 0.012, ATTRIBUTION, fontsize=5.5, color="0.3", ha="left", va="bottom")


def _codes(inset_codes) -> tuple[str, ...]:
    """The inset's district codes as strings; a lone string is refused (it is not a list of codes)."""
    if isinstance(inset_codes, str):
        raise InputError("maps", "inset_codes",
                         f"expected a sequence of district codes, got the string {inset_codes!r}")
    return tuple(str(c) for c in inset_codes)


def _central(gdf, codes):
    mask = gdf["code"].astype(str).isin(codes).to_numpy()
    return gdf[mask] if mask.any() else None


def _inset(ax, gdf, inset, codes, draw):
    """Add the zoomed inset of the districts ``codes``; ``draw(axins, bounds)`` fills it."""
    if inset is None:
        return None
    if inset != "central":
        raise InputError("maps", "inset", f"expected 'central' or None, got {inset!r}")
    central = _central(gdf, codes)
    if central is None:
        return None
    axins = ax.inset_axes(INSET_BOX)
    _style_axes(axins)
    xmin, ymin, xmax, ymax = central.total_bounds
    # square window around the central districts
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    half = 0.53 * max(xmax - xmin, ymax - ymin)
    bounds = (cx - half, cy - half, cx + half, cy + half)
    draw(axins, bounds)
    axins.set_xlim(bounds[0], bounds[2])
    axins.set_ylim(bounds[1], bounds[3])
    for spine in axins.spines.values():
        spine.set_linewidth(0.9)
    # the zoomed window on the main map (a rectangle, no connector lines across the city)
    ax.indicate_inset((bounds[0], bounds[1], bounds[2] - bounds[0], bounds[3] - bounds[1]),
                      edgecolor="0.25", linewidth=0.8)
    return axins


def _labelled_codes(gdf, axins, codes) -> set[str] | None:
    """Codes to label on the main map: all but the inset's ``codes`` when the inset shows them."""
    if axins is None:
        return None
    return {str(c) for c in gdf["code"] if str(c) not in codes}


def _legend(ax, handles, title=None) -> None:
    leg = ax.legend(handles=handles, loc="lower right", fontsize=7, title=title, title_fontsize=7,
                    framealpha=0.9)
    leg.set_zorder(9)


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
    """
    _check_gdf(districts_gdf)
    codes = _codes(inset_codes)
    values = np.asarray(values2d)
    shape = tuple(int(n) for n in grid.shape)
    if values.shape != shape:
        raise InputError("raster_map", "values2d", f"expected shape {shape} (the grid), got {values.shape}")
    norm, cm, handles = _raster_norm(values, cmap, vmin, vmax, classes, class_labels, cbar_label)

    def show(axis, window, limit):
        arr, extent = _display_view(grid, values, window, limit)
        shown = np.ma.masked_invalid(arr.astype(np.float32, copy=False))
        if nodata is not None:
            shown = np.ma.masked_where(arr == nodata, shown)
        return axis.imshow(shown, extent=extent, origin="upper", cmap=cm, norm=norm,
                           interpolation="nearest", zorder=2)

    fig, ax = _figure()
    im = show(ax, None, max_px)
    ax.add_collection(_district_patches(districts_gdf, "none"))
    _set_extent(ax, districts_gdf.total_bounds)

    def draw_inset(axins, bounds):
        show(axins, bounds, INSET_MAX_PX)
        axins.add_collection(_district_patches(districts_gdf, "none", linewidth=0.7))
        _label(axins, districts_gdf, set(codes), fontsize=6)

    axins = _inset(ax, districts_gdf, inset, codes, draw_inset)
    _label(ax, districts_gdf, _labelled_codes(districts_gdf, axins, codes), fontsize=6.5)
    if handles is None:
        cax = fig.add_axes(CBAR_AXES)
        cb = fig.colorbar(im, cax=cax, extend=_extend(values, norm))
        cb.set_label(cbar_label, fontsize=8)
        cb.ax.tick_params(labelsize=7)
    else:
        _legend(ax, handles, title=cbar_label)
    _finish(fig, ax, title)
    return fig


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


def district_map(districts_gdf, title: str, *, inset: str | None = "central",
                 inset_codes: Sequence[str] = ()) -> Figure:
    """Map of the districts with their names, coloured by 2020 census density.

    The fill is residents per km² (``population / area_km2_official``, log scale) when
    both columns are present, otherwise a plain fill. ``inset`` and ``inset_codes`` as in
    :func:`raster_map`.
    """
    _check_gdf(districts_gdf)
    codes = _codes(inset_codes)
    fig, ax = _figure()
    has_density = {"population", "area_km2_official"} <= set(districts_gdf.columns)
    if has_density:
        density = districts_gdf["population"].to_numpy(float) / districts_gdf["area_km2_official"].to_numpy(float)
        lo = 10 ** math.floor(math.log10(max(density.min(), 1.0)))
        hi = 10 ** math.ceil(math.log10(max(density.max(), lo * 10)))
        norm = LogNorm(lo, hi)
        cm = colormaps["YlOrRd"]
        faces = cm(norm(density))
    else:
        faces = "#fbf7ee"
    ax.add_collection(_district_patches(districts_gdf, faces))
    _set_extent(ax, districts_gdf.total_bounds)

    def draw_inset(axins, bounds):
        axins.add_collection(_district_patches(districts_gdf, faces, linewidth=0.7))
        _label(axins, districts_gdf, set(codes), fontsize=6)

    axins = _inset(ax, districts_gdf, inset, codes, draw_inset)
    _label(ax, districts_gdf, _labelled_codes(districts_gdf, axins, codes), fontsize=6.5)
    if has_density:
        from matplotlib.cm import ScalarMappable

        cax = fig.add_axes(CBAR_AXES)
        cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cm), cax=cax)
        cb.set_label("Residents per km² (2020 census, official land area)", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    _finish(fig, ax, title)
    return fig


def _passed_colours(passed, n: int) -> list[str]:
    passed = list(passed)
    if len(passed) != n:
        raise InputError("choropleth", "passed", f"expected {n} values (one per district), got {len(passed)}")
    out = []
    for p in passed:
        if p is None or (isinstance(p, float) and math.isnan(p)):
            out.append(NONE_COLOUR)
        elif isinstance(p, (bool, np.bool_)):
            out.append(PASS_COLOUR if p else FAIL_COLOUR)
        else:
            raise InputError("choropleth", "passed", f"expected True, False or None, got {p!r}")
    return out


def choropleth(
    districts_gdf,
    passed,
    title: str,
    *,
    values=None,
    value_fmt: str = "{:.1f}",
    legend_title: str | None = None,
    inset: str | None = "central",
    inset_codes: Sequence[str] = (),
) -> Figure:
    """Pass / fail map of one criterion by district.

    Parameters
    ----------
    districts_gdf : GeoDataFrame
        Districts in the grid CRS.
    passed : sequence [n_districts] of bool or None
        Pass (green), fail (red), not judged / no data (grey).
    title : str
        Title with the indicator, scenario and year.
    values : sequence of float, optional
        Values to print under each district name (``value_fmt``).
    legend_title : str, optional
        E.g. the indicator and its threshold ("5G BS per 10,000 residents > 12").
    inset, inset_codes
        The zoomed inset of the central districts, as in :func:`raster_map`.
    """
    _check_gdf(districts_gdf)
    codes = _codes(inset_codes)
    faces = _passed_colours(passed, len(districts_gdf))
    gdf = districts_gdf
    if values is not None:
        vals = np.asarray(values, dtype=np.float64)
        if vals.shape != (len(gdf),):
            raise InputError("choropleth", "values", f"expected {len(gdf)} values, got shape {vals.shape}")
        gdf = gdf.copy()
        gdf["name_en"] = [f"{n}\n{value_fmt.format(v)}" if np.isfinite(v) else f"{n}\n–"
                          for n, v in zip(gdf["name_en"], vals)]
        if "name_zh" in gdf.columns:
            gdf = gdf.drop(columns="name_zh")
    fig, ax = _figure()
    ax.add_collection(_district_patches(gdf, faces))
    _set_extent(ax, gdf.total_bounds)

    def draw_inset(axins, bounds):
        axins.add_collection(_district_patches(gdf, faces, linewidth=0.7))
        _label(axins, gdf, set(codes), fontsize=6)

    axins = _inset(ax, gdf, inset, codes, draw_inset)
    _label(ax, gdf, _labelled_codes(gdf, axins, codes), fontsize=6.5)
    handles = [Patch(facecolor=PASS_COLOUR, edgecolor=EDGE, label="passes"),
               Patch(facecolor=FAIL_COLOUR, edgecolor=EDGE, label="fails"),
               Patch(facecolor=NONE_COLOUR, edgecolor=EDGE, label="not judged / no data")]
    _legend(ax, handles, title=legend_title)
    _finish(fig, ax, title)
    return fig


def sites_map(
    districts_gdf,
    x_m,
    y_m,
    ran,
    title: str = "5G sites",
    *,
    inset: str | None = "central",
    inset_codes: Sequence[str] = (),
) -> Figure:
    """Map of base-station sites coloured by RAN label (operator, band or layer).

    Parameters
    ----------
    districts_gdf : GeoDataFrame
        Districts in the grid CRS.
    x_m, y_m : array [n_sites]
        Site positions, metres (grid CRS).
    ran : array [n_sites] of str
        Category of each site, e.g. ``"CMCC n41"``; the legend counts each. Give one point
        per mast (:meth:`sim.sites.SiteTable.mast_columns`): the legend counts masts.
    title : str
        Title with the scenario and year.
    inset, inset_codes
        The zoomed inset of the central districts, as in :func:`raster_map`.
    """
    _check_gdf(districts_gdf)
    codes = _codes(inset_codes)
    x = np.asarray(x_m, dtype=np.float64)
    y = np.asarray(y_m, dtype=np.float64)
    labels = np.asarray(ran).astype(str)
    if not (x.shape == y.shape == labels.shape) or x.ndim != 1:
        raise InputError("sites_map", "x_m", f"expected x_m, y_m and ran of one 1-D shape, got "
                         f"{x.shape}, {y.shape} and {labels.shape}")
    cats, counts = np.unique(labels, return_counts=True)
    palette = colormaps["tab10" if len(cats) <= 10 else "tab20"]
    colours = {c: palette(k % palette.N) for k, c in enumerate(cats)}
    size = float(np.clip(12000.0 / max(len(x), 1), 0.3, 12.0))

    def scatter(axis, s):
        for c in cats:
            sel = labels == c
            axis.scatter(x[sel], y[sel], s=s, color=colours[c], linewidths=0, zorder=4, rasterized=True)

    fig, ax = _figure()
    ax.add_collection(_district_patches(districts_gdf, "#fbf7ee", zorder=1))
    ax.add_collection(_district_patches(districts_gdf, "none", zorder=5))
    scatter(ax, size)
    _set_extent(ax, districts_gdf.total_bounds)

    def draw_inset(axins, bounds):
        axins.add_collection(_district_patches(districts_gdf, "#fbf7ee", zorder=1))
        axins.add_collection(_district_patches(districts_gdf, "none", linewidth=0.7, zorder=5))
        scatter(axins, min(4 * size, 12.0))
        _label(axins, districts_gdf, set(codes), fontsize=6)

    axins = _inset(ax, districts_gdf, inset, codes, draw_inset)
    _label(ax, districts_gdf, _labelled_codes(districts_gdf, axins, codes), fontsize=6.5)
    handles = [Patch(facecolor=colours[c], edgecolor="none", label=f"{c} ({n:,})")
               for c, n in zip(cats, counts)]
    _legend(ax, handles, title=f"Masts ({len(x):,})")
    _finish(fig, ax, title)
    return fig


PLACE_COLOURS = {"all": "#1a9850", "some": "#fdae61", "none": "#d73027"}
"""Key places: reached indoors by every network, by some, by none."""


def key_places_map(districts_gdf, x_m, y_m, names, n_reached, n_networks: int, title: str, *,
                   inset_codes: Sequence[str] = ()) -> Figure:
    """Key places (hospitals, stations, airports, ...) coloured by how many networks reach them indoors.

    ``x_m, y_m`` (grid CRS), ``names`` and ``n_reached`` (networks reaching each place) are
    arrays ``[n_places]``; every place is labelled, the labels kept apart by adjustText.
    """
    _check_gdf(districts_gdf)
    x, y = np.asarray(x_m, dtype=float), np.asarray(y_m, dtype=float)
    k = np.asarray(n_reached, dtype=int)
    if not (x.shape == y.shape == k.shape == (len(names),)):
        raise InputError("key_places_map", "x_m", "expected x_m, y_m, names and n_reached of one length")
    status = np.where(k >= n_networks, "all", np.where(k > 0, "some", "none"))
    fig, ax = _figure()
    ax.add_collection(_district_patches(districts_gdf, "#fbf7ee", zorder=1))
    ax.add_collection(_district_patches(districts_gdf, "none", zorder=3))
    for st, colour in PLACE_COLOURS.items():
        sel = status == st
        ax.scatter(x[sel], y[sel], s=22, color=colour, edgecolors="0.2", linewidths=0.4, zorder=5)
    _set_extent(ax, districts_gdf.total_bounds)
    halo = [patheffects.withStroke(linewidth=2.0, foreground="white")]
    # numbers on the map (kept apart by adjustText), the names in a list beside it
    for i, (xi, yi) in enumerate(zip(x, y)):
        ax.text(xi, yi, str(i + 1), fontsize=6, zorder=6, path_effects=halo, gid=_LABEL_GID,
                clip_on=True, ha="left", va="bottom")
    listing = "\n".join(f"{i + 1:>2}  {str(n)[:27]}" + ("" if s_ == "all" else f" ({s_})")
                         for i, (n, s_) in enumerate(zip(names, status)))
    fig.text(0.805, 0.93, listing, fontsize=5.2, va="top", ha="left", family="monospace")
    words = {"all": f"reached by all {n_networks} networks", "some": "reached by some networks",
             "none": "reached by no network"}
    handles = [Patch(facecolor=PLACE_COLOURS[st], edgecolor="0.2", label=f"{words[st]} ({int((status == st).sum())})")
               for st in PLACE_COLOURS]
    _legend(ax, handles, title=f"Key places, indoors ({len(x)})")
    _finish(fig, ax, title)
    return fig


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


PANELS_FIGSIZE_IN = (11.0, 7.6)


ABOVE_COLOUR, BELOW_COLOUR = "#4575b4", "#fdb863"
"""Benchmark panels: above / below the benchmark (not a pass or a fail)."""


def criteria_panels(districts_gdf, panels, title: str, *, n_cols: int = 4, benchmarks: Sequence[str] = ()) -> Figure:
    """Small multiples: one pass / fail district map per criterion, with one legend.

    Parameters
    ----------
    districts_gdf : GeoDataFrame
        Districts in the grid CRS.
    panels : mapping label -> sequence [n_districts] of bool or None
        Panel title (indicator and threshold, e.g. ``"5G BS per 10,000 > 12"``) and the
        pass (green) / fail (red) / not judged or no data (grey) of each district.
    title : str
        Figure title with the scenario and year.
    n_cols : int
        Panels per row; one cell is kept for the legend.
    benchmarks : sequence of str
        Labels of the panels whose threshold is a benchmark: blue above, amber below.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per panel (no inset: a panel is too small for one; the district names
        are on the district map), a scale bar and north arrow on the first panel, the
        legend with the count of districts per class, the ODbL attribution.
    """
    _check_gdf(districts_gdf)
    items = list(panels.items())
    if not items:
        raise InputError("criteria_panels", "panels", "expected at least one criterion")
    faces = [(label, _passed_colours(p, len(districts_gdf))) for label, p in items]
    bench = set(benchmarks)
    swap = {PASS_COLOUR: ABOVE_COLOUR, FAIL_COLOUR: BELOW_COLOUR}
    faces = [(label, [swap.get(c, c) for c in fc] if label in bench else fc) for label, fc in faces]
    n_rows = math.ceil((len(items) + 1) / n_cols)
    fig = Figure(figsize=PANELS_FIGSIZE_IN if n_rows == 2 else (PANELS_FIGSIZE_IN[0], 3.8 * n_rows))
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(n_rows, n_cols, left=0.01, right=0.99, top=0.86, bottom=0.04, wspace=0.06, hspace=0.42)
    first = None
    for k, (label, fc) in enumerate(faces):
        ax = fig.add_subplot(gs[divmod(k, n_cols)])
        _style_axes(ax)
        ax.add_collection(_district_patches(districts_gdf, fc, linewidth=0.4))
        _set_extent(ax, districts_gdf.total_bounds)
        if label in bench:
            ax.set_title(f"{label}\nbenchmark: {fc.count(ABOVE_COLOUR)} above, {fc.count(BELOW_COLOUR)} below",
                         fontsize=8)
        else:
            ax.set_title(f"{label}\n{fc.count(PASS_COLOUR)} pass, {fc.count(FAIL_COLOUR)} fail", fontsize=8)
        if first is None:
            first = ax
            _scale_bar(ax)
            _north_arrow(ax)
    lax = fig.add_subplot(gs[divmod(len(items), n_cols)])
    lax.set_axis_off()
    lax.legend(handles=[Patch(facecolor=PASS_COLOUR, edgecolor=EDGE, label="passes"),
                        Patch(facecolor=FAIL_COLOUR, edgecolor=EDGE, label="fails"),
                        *([Patch(facecolor=ABOVE_COLOUR, edgecolor=EDGE, label="above the benchmark"),
                           Patch(facecolor=BELOW_COLOUR, edgecolor=EDGE, label="below the benchmark")]
                          if bench else []),
                        Patch(facecolor=NONE_COLOUR, edgecolor=EDGE, label="not judged / no data")],
               loc="center", fontsize=9, title="District, against the\ncitywide threshold",
               title_fontsize=9, frameon=False)
    fig.suptitle(str(title), fontsize=11, x=0.01, y=0.985, ha="left")
    fig.text(0.01, 0.012, ATTRIBUTION, fontsize=5.5, color="0.3", ha="left", va="bottom")
    return fig


def plan_curve_figure(sites_added, covered_share, target_share: float, title: str = "Site planning") -> Figure:
    """Covered population share against the number of sites added (``gigacity plan``).

    Parameters
    ----------
    sites_added : array [n] of int
        0, 1, 2, ... sites added.
    covered_share : array [n]
        Covered share of the population after that many additions, in [0, 1].
    target_share : float
        The target, drawn as a dashed line.
    title : str
        Title with the scenario and layer.
    """
    x = np.asarray(sites_added, dtype=np.float64)
    y = 100.0 * np.asarray(covered_share, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise InputError("plan_curve_figure", "covered_share",
                         f"expected two 1-D arrays of one non-zero length, got {x.shape} and {y.shape}")
    fig = Figure(figsize=(7.0, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.11, 0.12, 0.85, 0.78))
    ax.plot(x, y, color="#2c7fb8", linewidth=1.6, marker="o" if x.size <= 40 else None, markersize=3,
            label="covered population")
    ax.axhline(100.0 * float(target_share), color=FAIL_COLOUR, linestyle="--", linewidth=1.0,
               label=f"target {100.0 * float(target_share):.2f} %")
    hit = np.flatnonzero(y >= 100.0 * float(target_share) - 1e-9)
    if hit.size:
        ax.axvline(x[hit[0]], color=PASS_COLOUR, linestyle=":", linewidth=1.0,
                   label=f"reached with {int(x[hit[0]]):,} sites")
    ax.set_xlabel("sites added")
    ax.set_ylabel("population covered indoors (%)")
    ax.grid(True, color="0.85", linewidth=0.6)
    ax.set_xlim(0, max(float(x.max()), 1.0))
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10)
    return fig
