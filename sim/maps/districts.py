"""Maps of the districts: census density, pass / fail of a criterion, sites, key places, criteria panels."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from sim.errors import InputError
from sim.geodata import ATTRIBUTION

from .frame import (
    CBAR_AXES,
    EDGE,
    FAIL_COLOUR,
    LABEL_GID,
    NONE_COLOUR,
    PASS_COLOUR,
    add_inset,
    check_gdf,
    codes_of,
    district_patches,
    finish,
    label_districts,
    labelled_codes,
    legend,
    new_figure,
    north_arrow,
    scale_bar,
    set_extent,
    style_axes,
)

__all__ = [
    "PLACE_COLOURS", "PANELS_FIGSIZE_IN", "ABOVE_COLOUR", "BELOW_COLOUR", "district_map", "choropleth", "sites_map",
    "key_places_map", "criteria_panels",
]



def district_map(districts_gdf, title: str, *, inset: str | None = "central",
                 inset_codes: Sequence[str] = ()) -> Figure:
    """Map of the districts with their names, coloured by 2020 census density.

    The fill is residents per km² (``population / area_km2_official``, log scale) when
    both columns are present, otherwise a plain fill. ``inset`` and ``inset_codes`` as in
    :func:`raster_map`.
    """
    check_gdf(districts_gdf)
    codes = codes_of(inset_codes)
    fig, ax = new_figure()
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
    ax.add_collection(district_patches(districts_gdf, faces))
    set_extent(ax, districts_gdf.total_bounds)

    def draw_inset(axins, bounds):
        axins.add_collection(district_patches(districts_gdf, faces, linewidth=0.7))
        label_districts(axins, districts_gdf, set(codes), fontsize=6)

    axins = add_inset(ax, districts_gdf, inset, codes, draw_inset)
    label_districts(ax, districts_gdf, labelled_codes(districts_gdf, axins, codes), fontsize=6.5)
    if has_density:
        from matplotlib.cm import ScalarMappable

        cax = fig.add_axes(CBAR_AXES)
        cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cm), cax=cax)
        cb.set_label("Residents per km² (2020 census, official land area)", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    finish(fig, ax, title)
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
    check_gdf(districts_gdf)
    codes = codes_of(inset_codes)
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
    fig, ax = new_figure()
    ax.add_collection(district_patches(gdf, faces))
    set_extent(ax, gdf.total_bounds)

    def draw_inset(axins, bounds):
        axins.add_collection(district_patches(gdf, faces, linewidth=0.7))
        label_districts(axins, gdf, set(codes), fontsize=6)

    axins = add_inset(ax, gdf, inset, codes, draw_inset)
    label_districts(ax, gdf, labelled_codes(gdf, axins, codes), fontsize=6.5)
    handles = [Patch(facecolor=PASS_COLOUR, edgecolor=EDGE, label="passes"),
               Patch(facecolor=FAIL_COLOUR, edgecolor=EDGE, label="fails"),
               Patch(facecolor=NONE_COLOUR, edgecolor=EDGE, label="not judged / no data")]
    legend(ax, handles, title=legend_title)
    finish(fig, ax, title)
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
    check_gdf(districts_gdf)
    codes = codes_of(inset_codes)
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

    fig, ax = new_figure()
    ax.add_collection(district_patches(districts_gdf, "#fbf7ee", zorder=1))
    ax.add_collection(district_patches(districts_gdf, "none", zorder=5))
    scatter(ax, size)
    set_extent(ax, districts_gdf.total_bounds)

    def draw_inset(axins, bounds):
        axins.add_collection(district_patches(districts_gdf, "#fbf7ee", zorder=1))
        axins.add_collection(district_patches(districts_gdf, "none", linewidth=0.7, zorder=5))
        scatter(axins, min(4 * size, 12.0))
        label_districts(axins, districts_gdf, set(codes), fontsize=6)

    axins = add_inset(ax, districts_gdf, inset, codes, draw_inset)
    label_districts(ax, districts_gdf, labelled_codes(districts_gdf, axins, codes), fontsize=6.5)
    handles = [Patch(facecolor=colours[c], edgecolor="none", label=f"{c} ({n:,})")
               for c, n in zip(cats, counts)]
    legend(ax, handles, title=f"Masts ({len(x):,})")
    finish(fig, ax, title)
    return fig


PLACE_COLOURS = {"all": "#1a9850", "some": "#fdae61", "none": "#d73027"}
"""Key places: reached indoors by every network, by some, by none."""


def key_places_map(districts_gdf, x_m, y_m, names, n_reached, n_networks: int, title: str, *,
                   inset_codes: Sequence[str] = ()) -> Figure:
    """Key places (hospitals, stations, airports, ...) coloured by how many networks reach them indoors.

    ``x_m, y_m`` (grid CRS), ``names`` and ``n_reached`` (networks reaching each place) are
    arrays ``[n_places]``; every place is labelled, the labels kept apart by adjustText.
    """
    check_gdf(districts_gdf)
    x, y = np.asarray(x_m, dtype=float), np.asarray(y_m, dtype=float)
    k = np.asarray(n_reached, dtype=int)
    if not (x.shape == y.shape == k.shape == (len(names),)):
        raise InputError("key_places_map", "x_m", "expected x_m, y_m, names and n_reached of one length")
    status = np.where(k >= n_networks, "all", np.where(k > 0, "some", "none"))
    fig, ax = new_figure()
    ax.add_collection(district_patches(districts_gdf, "#fbf7ee", zorder=1))
    ax.add_collection(district_patches(districts_gdf, "none", zorder=3))
    for st, colour in PLACE_COLOURS.items():
        sel = status == st
        ax.scatter(x[sel], y[sel], s=22, color=colour, edgecolors="0.2", linewidths=0.4, zorder=5)
    set_extent(ax, districts_gdf.total_bounds)
    halo = [patheffects.withStroke(linewidth=2.0, foreground="white")]
    # numbers on the map (kept apart by adjustText), the names in a list beside it
    for i, (xi, yi) in enumerate(zip(x, y)):
        ax.text(xi, yi, str(i + 1), fontsize=6, zorder=6, path_effects=halo, gid=LABEL_GID,
                clip_on=True, ha="left", va="bottom")
    listing = "\n".join(f"{i + 1:>2}  {str(n)[:27]}" + ("" if s_ == "all" else f" ({s_})")
                         for i, (n, s_) in enumerate(zip(names, status)))
    fig.text(0.805, 0.93, listing, fontsize=5.2, va="top", ha="left", family="monospace")
    words = {"all": f"reached by all {n_networks} networks", "some": "reached by some networks",
             "none": "reached by no network"}
    handles = [Patch(facecolor=PLACE_COLOURS[st], edgecolor="0.2", label=f"{words[st]} ({int((status == st).sum())})")
               for st in PLACE_COLOURS]
    legend(ax, handles, title=f"Key places, indoors ({len(x)})")
    finish(fig, ax, title)
    return fig

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
    check_gdf(districts_gdf)
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
        style_axes(ax)
        ax.add_collection(district_patches(districts_gdf, fc, linewidth=0.4))
        set_extent(ax, districts_gdf.total_bounds)
        if label in bench:
            ax.set_title(f"{label}\nbenchmark: {fc.count(ABOVE_COLOUR)} above, {fc.count(BELOW_COLOUR)} below",
                         fontsize=8)
        else:
            ax.set_title(f"{label}\n{fc.count(PASS_COLOUR)} pass, {fc.count(FAIL_COLOUR)} fail", fontsize=8)
        if first is None:
            first = ax
            scale_bar(ax)
            north_arrow(ax)
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
