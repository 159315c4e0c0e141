"""The frame every map of the city shares: figure and axes, district outlines and names, inset, scale bar, north arrow.

The district labels are kept apart by adjustText (:func:`declutter`), the layout found once per
frame and reused (:data:`LAYOUTS`). The north arrow points to grid north; over Shanghai grid
north is within about 1° of true north (meridian convergence ``(lon - 123°) sin(lat)`` ≈ -0.8°),
below what the arrow can show. :func:`finish` adds the title, scale bar, north arrow and the
ODbL attribution line.
"""

from __future__ import annotations

import functools

import numpy as np
from matplotlib import font_manager, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch, Polygon, Rectangle
from matplotlib.path import Path

from sim.errors import InputError
from sim.geodata import ATTRIBUTION

__all__ = [
    "FIGSIZE_IN", "MAIN_AXES", "CBAR_AXES", "INSET_BOX", "BACKGROUND", "EDGE", "PASS_COLOUR", "FAIL_COLOUR",
    "NONE_COLOUR", "LABEL_GID", "LAYOUTS", "cjk_font_family", "declutter", "new_figure", "style_axes", "check_gdf",
    "district_patches", "set_extent", "label_districts", "scale_bar", "north_arrow", "finish", "codes_of",
    "add_inset", "labelled_codes", "legend", "districts_key",
]

FIGSIZE_IN = (8.0, 8.0)
MAIN_AXES = (0.02, 0.07, 0.80, 0.85)  # left, bottom, width, height (figure fraction)
CBAR_AXES = (0.85, 0.22, 0.025, 0.52)
INSET_BOX = (0.005, 0.645, 0.35, 0.35)  # axes fraction: upper left (outside the city)
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


LABEL_GID = "district-label"


LAYOUTS: dict = {}
"""Label layouts adjustText found, by axes frame and labels: every map of a run shares its district
frame, so the iterative layout (about two thirds of a map's drawing time) runs once per frame."""

_LEADER = {"arrowstyle": "-", "color": "0.35", "lw": 0.4}


def _layout_key(axis, texts) -> tuple:
    fig = axis.figure
    return (tuple(fig.get_size_inches().round(4)), tuple(np.round(axis.get_position().bounds, 6)),
            tuple(np.round(axis.get_xlim(), 3)), tuple(np.round(axis.get_ylim(), 3)),
            tuple((t.get_text(), *np.round(t.get_position(), 3), t.get_fontsize()) for t in texts))


def declutter(ax) -> None:
    """Move the district labels of ``ax`` and its insets apart (adjustText), with a leader line when moved.

    Positions found for a frame (figure size, axes box and limits, labels) are reused for the next
    map with the same frame. adjustText imports ``matplotlib.pyplot`` (it draws nothing through it
    here: the figures stay pyplot-free objects); it is imported only when two labels or more are placed.
    """
    # every key before any layout: adjustText draws the figure, which moves an equal-aspect axes' box
    placed = [(axis, texts, _layout_key(axis, texts)) for axis in (ax, *ax.child_axes)
              for texts in [[t for t in axis.texts if t.get_gid() == LABEL_GID]] if len(texts) >= 2]
    for axis, texts, key in placed:
        before = [tuple(t.get_position()) for t in texts]
        if key not in LAYOUTS:
            from adjustText import adjust_text

            adjust_text(texts, ax=axis, ensure_inside_axes=True, expand=(1.05, 1.15), iter_lim=200,
                        arrowprops=_LEADER)
            if len(LAYOUTS) > 64:
                LAYOUTS.clear()
            LAYOUTS[key] = [tuple(t.get_position()) for t in texts]
            continue
        for t, xy0, xy in zip(texts, before, LAYOUTS[key]):
            t.set_position(xy)
            if not np.allclose(xy0, xy):
                axis.annotate("", xy=xy0, xytext=xy, arrowprops=_LEADER, annotation_clip=False)


# ----------------------------------------------------------------------------- helpers


def new_figure() -> tuple[Figure, object]:
    fig = Figure(figsize=FIGSIZE_IN)
    FigureCanvasAgg(fig)
    ax = fig.add_axes(MAIN_AXES)
    style_axes(ax)
    return fig, ax


def style_axes(ax) -> None:
    ax.set_facecolor(BACKGROUND)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def districts_key(gdf) -> tuple:
    """What the frame of a map depends on in the districts table: codes, names, CRS and every geometry (WKB digest)."""
    import hashlib

    import shapely

    digest = hashlib.blake2b(digest_size=16)
    for wkb in shapely.to_wkb(np.asarray(gdf.geometry.values)):
        digest.update(wkb)
    names = tuple(tuple(str(v) for v in gdf[c]) for c in ("code", "name_en", "name_zh") if c in gdf.columns)
    return (str(gdf.crs), names, digest.hexdigest())


def check_gdf(gdf) -> None:
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


def district_patches(gdf, facecolors, *, edgecolor=EDGE, linewidth=0.6, zorder=3) -> PatchCollection:
    patches = [PathPatch(_geom_path(g)) for g in gdf.geometry]
    return PatchCollection(patches, facecolors=facecolors, edgecolors=edgecolor,
                           linewidths=linewidth, zorder=zorder)


def set_extent(ax, bounds, pad_frac: float = 0.03) -> None:
    xmin, ymin, xmax, ymax = bounds
    pad = pad_frac * max(xmax - xmin, ymax - ymin)
    ax.set_xlim(xmin - pad, xmax + pad)
    ax.set_ylim(ymin - pad, ymax + pad)


def label_districts(ax, gdf, codes: set[str] | None, fontsize: float) -> None:
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
                path_effects=halo, clip_on=True, gid=LABEL_GID, **kw)


def _nice_length_km(width_m: float) -> float:
    target = width_m / 5000.0  # a fifth of the map width, in km
    for v in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 25, 50, 100, 200):
        if v >= target:
            return float(v)
    return 500.0


def scale_bar(ax) -> None:
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


def north_arrow(ax) -> None:
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


def finish(fig, ax, title: str) -> None:
    declutter(ax)
    ax.set_title(str(title), fontsize=11, loc="left")
    scale_bar(ax)
    north_arrow(ax)
    fig.text(0.01, 0.012, ATTRIBUTION, fontsize=5.5, color="0.3", ha="left", va="bottom")


def codes_of(inset_codes) -> tuple[str, ...]:
    """The inset's district codes as strings; a lone string is refused (it is not a list of codes)."""
    if isinstance(inset_codes, str):
        raise InputError("maps", "inset_codes",
                         f"expected a sequence of district codes, got the string {inset_codes!r}")
    return tuple(str(c) for c in inset_codes)


def _central(gdf, codes):
    mask = gdf["code"].astype(str).isin(codes).to_numpy()
    return gdf[mask] if mask.any() else None


def add_inset(ax, gdf, inset, codes, draw):
    """Add the zoomed inset of the districts ``codes``; ``draw(axins, bounds)`` fills it."""
    if inset is None:
        return None
    if inset != "central":
        raise InputError("maps", "inset", f"expected 'central' or None, got {inset!r}")
    central = _central(gdf, codes)
    if central is None:
        return None
    axins = ax.inset_axes(INSET_BOX)
    style_axes(axins)
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


def labelled_codes(gdf, axins, codes) -> set[str] | None:
    """Codes to label on the main map: all but the inset's ``codes`` when the inset shows them."""
    if axins is None:
        return None
    return {str(c) for c in gdf["code"] if str(c) not in codes}


def legend(ax, handles, title=None) -> None:
    leg = ax.legend(handles=handles, loc="lower right", fontsize=7, title=title, title_fontsize=7,
                    framealpha=0.9)
    leg.set_zorder(9)
