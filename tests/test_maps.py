"""Tests of sim.maps on a tiny synthetic city (16 square districts in EPSG:32651)."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from shapely.geometry import MultiPolygon, box  # noqa: E402

from sim import maps  # noqa: E402
from sim.errors import InputError  # noqa: E402
from sim.geodata import ATTRIBUTION  # noqa: E402
from sim.grid import Grid  # noqa: E402

DISTRICT_CODES = (  # Shanghai's 16 district codes, sorted (geodata/shanghai_district_stats.csv)
    "310101", "310104", "310105", "310106", "310107", "310109", "310110", "310112",
    "310113", "310114", "310115", "310116", "310117", "310118", "310120", "310151",
)

PNG_MAX_BYTES = 2_000_000  # a map PNG stays under 2 MB at 170 dpi
DPI = 170
X0_M, Y0_M = 340_000.0, 3_470_000.0  # UTM 51N, near Shanghai
SIDE_M = 2_000.0
CENTRAL = ("310101", "310104", "310105", "310106", "310107", "310109", "310110")  # Shanghai's 7 central districts


@pytest.fixture(scope="module")
def districts():
    """A 4 x 4 checkerboard of 2 km squares carrying the 16 real codes, row 0 north."""
    geoms, names = [], []
    for k, code in enumerate(DISTRICT_CODES):
        r, c = divmod(k, 4)
        x = X0_M + c * SIDE_M
        y = Y0_M - (r + 1) * SIDE_M
        geoms.append(MultiPolygon([box(x, y, x + SIDE_M, y + SIDE_M)]))
        names.append(f"D{code[-3:]}")
    return gpd.GeoDataFrame(
        {"code": list(DISTRICT_CODES), "name_en": names,
         "name_zh": ["区"] * 16, "population": np.arange(1, 17) * 10_000,
         "area_km2_official": np.full(16, 4.0)},
        geometry=geoms, crs="EPSG:32651",
    )


@pytest.fixture(scope="module")
def grid():
    return Grid("EPSG:32651", X0_M, Y0_M, 100.0, (80, 80))


def _png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _texts(fig: Figure) -> list[str]:
    out = [t.get_text() for t in fig.texts]
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts]
        out.append(ax.get_title(loc="left"))
        for child in ax.child_axes:
            out += [t.get_text() for t in child.texts]
        leg = ax.get_legend()
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()]
    return out


def _check_cartography(fig: Figure, title: str) -> None:
    assert isinstance(fig, Figure)
    texts = _texts(fig)
    assert ATTRIBUTION in texts
    assert title in texts
    assert "N" in texts and "km" in texts  # north arrow and scale bar
    main = fig.axes[0]
    assert len(main.child_axes) == 1  # the central inset
    assert any(t.startswith("D101") for t in _texts(fig))  # a central name, in the inset
    data = _png_bytes(fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) < PNG_MAX_BYTES


def test_raster_map_continuous(grid, districts):
    r, c = np.mgrid[0:80, 0:80]
    values = (-70.0 - 0.5 * np.hypot(r - 40, c - 40)).astype(np.float32)
    values[:5] = np.nan
    title = "SS-RSRP, tiny-2025 (2025)"
    fig = maps.raster_map(grid, values, districts, title=title, cbar_label="SS-RSRP (dBm)",
                          vmin=-110, vmax=-70, inset_codes=CENTRAL)
    _check_cartography(fig, title)
    cbar_axes = fig.axes[1]
    assert cbar_axes.get_ylabel() == "SS-RSRP (dBm)"


def test_raster_map_classes_legend(grid, districts):
    values = np.tile(np.linspace(-130, -60, 80, dtype=np.float32), (80, 1))
    labels = ["weak", "fair", "good"]
    fig = maps.raster_map(grid, values, districts, title="classes", cbar_label="SS-RSRP (dBm)",
                          cmap="RdYlGn", classes=[-140, -110, -95, -50], class_labels=labels, inset_codes=CENTRAL)
    _check_cartography(fig, "classes")
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == labels
    assert legend.get_title().get_text() == "SS-RSRP (dBm)"


def test_raster_map_downsamples_large_raster(districts):
    big = Grid("EPSG:32651", X0_M, Y0_M, 8000.0 / 5200, (4400, 5200))
    values = np.zeros(big.shape, dtype=np.float32)
    fig = maps.raster_map(big, values, districts, title="big", cbar_label="x", vmin=0, vmax=1,
                          inset=None)
    image = fig.axes[0].get_images()[0]
    # stride ceil(5200 / 2000) = 3 -> 1467 x 1734 (hand evaluation)
    assert image.get_array().shape == (1467, 1734)
    xmin, xmax, ymin, ymax = image.get_extent()
    assert xmin == X0_M and ymax == Y0_M


def test_district_map_and_choropleth(districts):
    fig = maps.district_map(districts, "Districts, 2020 census", inset_codes=CENTRAL)
    _check_cartography(fig, "Districts, 2020 census")
    passed = [True, False, None, np.nan] * 4
    fig = maps.choropleth(districts, passed, "5G BS / 10k, tiny-2021 (2021)",
                          values=np.linspace(5, 20, 16), legend_title="> 12", inset_codes=CENTRAL)
    _check_cartography(fig, "5G BS / 10k, tiny-2021 (2021)")
    faces = fig.axes[0].collections[0].get_facecolors()
    expected = [matplotlib.colors.to_rgba(c) for c in
                (maps.PASS_COLOUR, maps.FAIL_COLOUR, maps.NONE_COLOUR, maps.NONE_COLOUR)]
    np.testing.assert_allclose(faces[:4], expected)
    assert "D101\n5.0" in _texts(fig)


def test_sites_map(districts):
    rng = np.random.default_rng(7)
    x = X0_M + rng.uniform(0, 8000, 500)
    y = Y0_M - rng.uniform(0, 8000, 500)
    ran = np.where(np.arange(500) < 200, "CMCC n41", "CT/CU n78")
    fig = maps.sites_map(districts, x, y, ran, "Sites, tiny-2025 (2025)", inset_codes=CENTRAL)
    _check_cartography(fig, "Sites, tiny-2025 (2025)")
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["CMCC n41 (200)", "CT/CU n78 (300)"]


def test_no_inset_without_central_districts(grid, districts):
    outer = districts[~districts["code"].isin(CENTRAL)]
    fig = maps.district_map(outer, "outer only", inset_codes=CENTRAL)
    assert fig.axes[0].child_axes == []
    assert maps.district_map(districts, "no codes").axes[0].child_axes == []  # none named: no inset


def test_inset_zooms_on_the_codes_given(districts):
    fig = maps.district_map(districts, "two central", inset_codes=["310115", "310120"])
    (axins,) = fig.axes[0].child_axes
    assert sorted(t.get_text().split("\n")[0] for t in axins.texts) == ["D115", "D120"]
    labelled = {t.get_text().split("\n")[0] for t in fig.axes[0].texts}
    assert "D115" not in labelled and "D101" in labelled  # the main map names the others


def test_shipped_configs_name_the_seven_central_districts():
    from pathlib import Path

    from sim.config import load_scenario

    for cfg in sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.toml")):
        assert load_scenario(cfg).deployment.central_districts == CENTRAL, cfg.name


def test_errors(grid, districts):
    with pytest.raises(InputError, match=r"values2d: expected shape \(80, 80\) \(the grid\), got \(3, 3\)"):
        maps.raster_map(grid, np.zeros((3, 3)), districts, title="t", cbar_label="u")
    with pytest.raises(InputError, match=r"classes: expected at least 2 strictly increasing"):
        maps.raster_map(grid, np.zeros((80, 80)), districts, title="t", cbar_label="u",
                        classes=[1, 0])
    with pytest.raises(InputError, match=r"passed: expected 16 values \(one per district\), got 3"):
        maps.choropleth(districts, [True] * 3, "t")
    with pytest.raises(InputError, match=r"inset: expected 'central' or None"):
        maps.district_map(districts, "t", inset="north", inset_codes=CENTRAL)
    with pytest.raises(InputError, match=r"inset_codes: expected a sequence of district codes, got the string"):
        maps.district_map(districts, "t", inset_codes="310101")
    with pytest.raises(InputError, match=r"crs: expected a metric CRS"):
        maps.district_map(districts.to_crs("EPSG:4326"), "t")


def test_maps_do_not_use_pyplot():
    code = (
        "import sys, numpy as np, geopandas as gpd\n"
        "from shapely.geometry import box\n"
        "from sim import maps\n"
        "g = gpd.GeoDataFrame({'code': ['310101'], 'name_en': ['A']},"
        " geometry=[box(0, 0, 1000, 1000)], crs='EPSG:32651')\n"
        "maps.district_map(g, 't').savefig(__import__('io').BytesIO(), format='png')\n"
        "print('matplotlib.pyplot' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_difference_map_is_centred_on_zero(grid, districts):
    r, c = np.mgrid[0:80, 0:80]
    diff = (c - 30.0) * 10.0  # -300 .. +490 Mbit/s, hand-made
    diff[0, 0] = 1e5  # one outlier does not set the scale
    title = "Indoor rate: tiny-2025 (2025) − tiny-2021 (2021)"
    fig = maps.difference_map(grid, diff, districts, title=title, cbar_label="Change (Mbit/s)", inset_codes=CENTRAL)
    _check_cartography(fig, title)
    norm = fig.axes[0].get_images()[0].norm
    # 98th percentile of |diff| is 470 -> rounded up to 500 (1, 2, 5 x 10^n)
    assert (norm.vmin, norm.vmax) == (-500.0, 500.0)
    assert fig.axes[1].get_ylabel() == "Change (Mbit/s)"
    cmap = fig.axes[0].get_images()[0].get_cmap()
    np.testing.assert_allclose(cmap(0.5)[:3], cmap(0.5)[:3][::-1], atol=0.05)  # white-ish middle
    with pytest.raises(InputError, match=r"limit: expected a positive number"):
        maps.difference_map(grid, diff, districts, title="t", cbar_label="u", limit=0.0)


def test_criteria_panels_one_map_per_criterion(districts):
    panels = {"5G BS per 10,000 > 12": [True] * 10 + [False] * 6,
              "Key places ≥ 80": [None] * 4 + [True] * 12,
              "Fibre > 80": [False] * 16}
    fig = maps.criteria_panels(districts, panels, "Criteria, tiny-2021 (2021)")
    texts = _texts(fig)
    assert ATTRIBUTION in texts and "N" in texts and "km" in texts
    assert fig._suptitle.get_text() == "Criteria, tiny-2021 (2021)"
    maps_axes = [ax for ax in fig.axes if ax.collections]
    assert [ax.get_title() for ax in maps_axes] == [
        "5G BS per 10,000 > 12\n10 pass, 6 fail", "Key places ≥ 80\n12 pass, 0 fail", "Fibre > 80\n0 pass, 16 fail"]
    faces = maps_axes[1].collections[0].get_facecolors()
    np.testing.assert_allclose(faces[0], matplotlib.colors.to_rgba(maps.NONE_COLOUR))
    legend = [ax for ax in fig.axes if ax.get_legend() is not None][0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["passes", "fails", "not judged / no data"]
    assert len(_png_bytes(fig)) < PNG_MAX_BYTES
    with pytest.raises(InputError, match=r"panels: expected at least one criterion"):
        maps.criteria_panels(districts, {}, "t")


def test_label_layout_found_once_per_frame(grid, districts, monkeypatch):
    """Two maps with the same frame place the district labels identically; adjustText runs for the first only."""
    import adjustText

    calls = []
    real = adjustText.adjust_text
    monkeypatch.setattr(adjustText, "adjust_text", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    maps.frame.LAYOUTS.clear()
    figs = [maps.raster_map(grid, np.full((80, 80), v, np.float32), districts, title="x", cbar_label="dB",
                            vmin=0.0, vmax=10.0) for v in (1.0, 7.0)]
    labels = [[t.get_position() for t in f.axes[0].texts if t.get_gid() == maps.frame.LABEL_GID] for f in figs]
    assert len(labels[0]) == 16 and labels[0] == labels[1]
    assert len(calls) == 1


def _rgba(fig: Figure) -> np.ndarray:
    fig.set_dpi(DPI)
    fig.canvas.draw()
    return np.array(fig.canvas.buffer_rgba())


REUSED_FRAME_MAX_LEVELS = 2    # the static layer pasted vs drawn in place: alpha-blending rounding on antialiased edges
REUSED_FRAME_MAX_SHARE = 0.02  # ... on under 2 % of the pixels (0.6 % measured on this 1360 x 1360 map)


def test_a_map_on_a_reused_frame_is_the_map_drawn_from_scratch(grid, districts):
    """Within reused_frames the second and third maps of a frame are one Figure with its raster, scale and title
    swapped, its outlines, labels, scale bar and north arrow drawn once and pasted; each is the map raster_map draws
    from scratch within 2 levels of 255 (colour bar <-> legend both ways)."""
    rng = np.random.default_rng(5)
    values = [rng.normal(-90.0, 10.0, (80, 80)).astype(np.float32) for _ in range(3)]
    values[1][:10] = np.nan
    kwargs = [dict(title="A: SS-RSRP", cbar_label="SS-RSRP (dBm)", vmin=-110.0, vmax=-70.0),
              dict(title="B: classes", cbar_label="Rate (Mbit/s)", cmap="plasma", classes=(-200, -100, -90, -80, 0),
                   class_labels=("low", "mid", "high", "top")),
              dict(title="C: SINR", cbar_label="SINR (dB)", cmap="magma", vmin=-100.0, vmax=-80.0)]
    maps.raster_map(grid, values[0], districts, inset_codes=CENTRAL, **kwargs[0])   # the label layout, found once
    scratch = [_rgba(maps.raster_map(grid, v, districts, inset_codes=CENTRAL, **kw)) for v, kw in zip(values, kwargs)]
    with maps.reused_frames():
        figs, reused = [], []
        for v, kw in zip(values, kwargs):
            figs.append(maps.raster_map(grid, v, districts, inset_codes=CENTRAL, **kw))
            reused.append(_rgba(figs[-1]))
        other = maps.raster_map(Grid("EPSG:32651", X0_M, Y0_M, 100.0, (40, 80)), values[0][:40], districts,
                                inset_codes=CENTRAL, **kwargs[0])
    assert figs[0] is figs[1] is figs[2] and other is not figs[0]   # one frame per grid and districts
    ax = figs[2].axes[0]
    assert len(figs[2].axes) == 2 and len(ax.child_axes) == 1 and ax.get_legend() is None   # map, colour bar, inset
    assert ax.get_title(loc="left") == "C: SINR"
    for k in range(3):
        assert reused[k].shape == scratch[k].shape
        diff = np.abs(reused[k].astype(int) - scratch[k].astype(int))
        assert diff.max() <= REUSED_FRAME_MAX_LEVELS, f"map {k}"
        assert (diff.max(axis=2) > 0).mean() < REUSED_FRAME_MAX_SHARE, f"map {k}"
    assert not np.array_equal(scratch[0], scratch[2])   # the maps differ: the comparison can fail
    # a vector backend draws the static artists themselves (no pasted pixels): the SVG has the elements of the
    # map drawn from scratch (outlines, labels, scale bar, north arrow as paths and text)
    elements = []
    for fig in (figs[2], maps.raster_map(grid, values[2], districts, inset_codes=CENTRAL, **kwargs[2])):
        buf = io.BytesIO()
        fig.savefig(buf, format="svg")
        elements.append(sorted(re.findall(r"<(\w+)", buf.getvalue().decode("utf-8"))))
    assert elements[0] == elements[1] and elements[0].count("image") == 3   # map, inset, colour bar


@pytest.mark.parametrize("side", [80, 3000])   # magnified (the test city), shrunk (a 3000 px raster shown at 2000)
def test_raster_images_coloured_after_picking_are_the_pixels_coloured_first(districts, monkeypatch, side):
    """IMAGE_STAGE "data" (pick the displayed pixels, then colour them) draws the pixels of matplotlib's "rgba"
    stage (colour every value, then pick), for a continuous scale with NaN holes and for classes."""
    from sim.maps import rasters

    g = Grid("EPSG:32651", X0_M, Y0_M, 8 * SIDE_M / side, (side, side))
    rng = np.random.default_rng(11)
    values = rng.normal(-90.0, 10.0, (side, side)).astype(np.float32)
    values[: side // 7] = np.nan
    values[rng.random((side, side)) < 0.05] = np.nan
    out = {}
    for stage in ("rgba", "data"):
        monkeypatch.setattr(rasters, "IMAGE_STAGE", stage)
        out[stage] = [_rgba(maps.raster_map(g, values, districts, title="x", cbar_label="dBm", vmin=-110.0, vmax=-70.0,
                                            inset_codes=CENTRAL)),
                      _rgba(maps.raster_map(g, values, districts, title="x", cbar_label="dBm", cmap="plasma",
                                            classes=(-200, -100, -90, -80, 0), inset_codes=CENTRAL))]
    for a, b in zip(out["rgba"], out["data"]):
        assert np.array_equal(a, b)
    assert not np.array_equal(out["data"][0], out["data"][1])   # the maps differ: the comparison can fail
