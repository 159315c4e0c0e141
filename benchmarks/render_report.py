"""Render the report as a reader sees it: maps timed, HTML screenshotted by headless Chromium.

Usage::

    python benchmarks/render_report.py [REPORT_HTML] [--out DIR] [--chromium PATH]

Without REPORT_HTML it builds a demo report from the shipped geodata: a synthetic
SS-RSRP raster at 25 m over Shanghai (about 5,200 x 4,400 pixels, seeded noise), the four
kinds of map, and synthetic criteria; it prints the time and PNG size of each map. Then,
when a Chromium binary exists (default ``/usr/bin/chromium``), it takes a desktop
(1280 px) and a phone (390 px) screenshot of the report; without one it says so and exits
0 — the project never requires Chromium. It also measures the horizontal overflow of the page
body at each width (a page wider than the window at 1280 px exits 1).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VIEWPORTS = {"desktop": (1280, 12000), "phone": (390, 24000)}
"""Window sizes (CSS px): tall enough for the whole Shanghai report; the blank space below the
page is trimmed from the screenshot (headless ``--screenshot`` captures the window, not the page)."""
SEED = 20250101


def build_demo(out: Path) -> Path:
    """Write a demo run (maps, report.html, report.md) into ``out``; print map timings."""
    import matplotlib

    matplotlib.use("Agg")
    from sim import criteria as cr
    from sim import maps
    from sim.config import load_scenario
    from sim.geodata import GRID_CRS, read_districts
    from sim.grid import Grid
    from sim.indicators import ratio_by_district
    from sim.report import files, render, runfolder

    g = read_districts(ROOT / "geodata/shanghai_districts.geojson",
                       ROOT / "geodata/shanghai_district_stats.csv")
    xmin, ymin, xmax, ymax = g.total_bounds
    res_m = 25.0
    grid = Grid(GRID_CRS, float(np.floor(xmin)), float(np.ceil(ymax)), res_m,
                (int(np.ceil((ymax - ymin) / res_m)), int(np.ceil((xmax - xmin) / res_m))))
    rng = np.random.default_rng(SEED)
    r, c = np.ogrid[0:grid.shape[0], 0:grid.shape[1]]
    centre_r, centre_c = grid.shape[0] * 0.45, grid.shape[1] * 0.6
    rsrp = (-70.0 - 45.0 * np.hypot(r - centre_r, c - centre_c) / max(grid.shape)
            + rng.normal(0.0, 3.0, grid.shape)).astype(np.float32)

    pop = g["population"].to_numpy(float)
    hh = g["households"].to_numpy(float)
    bs = np.round(pop * rng.uniform(8, 30, 16) / 1e4)
    by_d = {
        "bs_5g_per_10k": ratio_by_district(bs, pop, 1e4)[0],
        "fibre_gigabit_coverage_pct": ratio_by_district(np.minimum(hh, hh * rng.uniform(0.7, 1.2, 16)), hh)[0],
        "pop_cov_5g_outdoor_pct": rng.uniform(85, 100, 16),
    }
    city = {
        "bs_5g_per_10k": ratio_by_district(bs, pop, 1e4)[1],
        "fibre_gigabit_coverage_pct": 97.0,
        "pon_10g_port_share_pct": 52.0,
        "user_5g_share_pct": 45.0,
        "pop_cov_5g_outdoor_pct": 96.0,
    }
    table = cr.evaluate(by_d, city, district_codes=list(g["code"]))
    central = load_scenario(ROOT / "configs/shanghai-2021.toml").deployment.central_districts
    maps_dir = out / "maps"
    maps_dir.mkdir(parents=True, exist_ok=True)
    figures = {
        "SS-RSRP outdoor (synthetic)": lambda: maps.raster_map(
            grid, rsrp, g, title="SS-RSRP outdoor — demo (2025)", cbar_label="SS-RSRP (dBm)",
            vmin=-120, vmax=-70, inset_codes=central),
        "Districts and 2020 census density": lambda: maps.district_map(
            g, "Shanghai districts — demo (2025)", inset_codes=central),
        "5G base stations per 10,000 residents": lambda: maps.choropleth(
            g, table[(table.scope != "citywide") & (table.key == "bs_5g_per_10k")]["passed"].tolist(),
            "5G BS per 10,000 residents — demo (2025)", values=by_d["bs_5g_per_10k"], legend_title="> 12",
            inset_codes=central),
        "Sites (synthetic)": lambda: maps.sites_map(
            g, rng.uniform(xmin, xmax, 20000), rng.uniform(ymin, ymax, 20000),
            rng.choice(["CMCC n41", "CT/CU n78", "CBN n28"], 20000), "Sites — demo (2025)",
            inset_codes=central),
    }
    images = {}
    print(f"{'map':45s} {'build_s':>8s} {'write_s':>8s} {'png_kB':>8s}")
    for k, (caption, make) in enumerate(figures.items()):
        t0 = time.perf_counter()
        fig = make()
        t1 = time.perf_counter()
        path = files.write_png(fig, maps_dir / f"map{k}.png")
        t2 = time.perf_counter()
        images[caption] = path
        print(f"{caption:45s} {t1 - t0:8.2f} {t2 - t1:8.2f} {path.stat().st_size / 1e3:8.0f}")
    summary = {
        "schema_version": runfolder.SUMMARY_SCHEMA_VERSION,
        "scenario": {"name": "demo", "year": 2025, "seed": SEED, "config_path": None},
        "inputs": {}, "grid": {"crs": grid.crs, "res_m": res_m, "shape": list(grid.shape)},
        "districts": [{"code": code, "name_en": name, "indicators": {}}
                      for code, name in zip(g["code"], g["name_en"])],
        "citywide": city, "criteria": runfolder.criteria_records(table),
        "timings_s": {}, "versions": files.versions(), "outputs": [],
    }
    runfolder.validate_summary(summary)
    verdict = cr.verdict(table)
    render.write_report_md(out / "report.md", summary, table, images, verdict=verdict)
    return render.write_report_html(out / "report.html", summary, table, images, verdict=verdict)


def screenshot(chromium: str, html: Path, out: Path) -> None:
    """Desktop and phone screenshots of ``html`` (local file, nothing fetched)."""
    for name, (w, h) in VIEWPORTS.items():
        png = out / f"screenshot-{name}.png"
        with tempfile.TemporaryDirectory() as profile:
            cmd = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                   f"--user-data-dir={profile}", f"--window-size={w},{h}", f"--screenshot={png}",
                   "--virtual-time-budget=10000",
                   html.resolve().as_uri()]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        ok = proc.returncode == 0 and png.exists()
        status = f"ok, page {trim_blank_bottom(png)} px tall" if ok else f"failed ({proc.returncode})"
        print(f"screenshot {name:8s} {w}x{h}: {status} in {time.perf_counter() - t0:.1f} s -> {png}")


_PROBE = ("<script>window.addEventListener('load',function(){var d=document.documentElement;"
          "document.title='overflow:'+Math.max(0,Math.max(d.scrollWidth,document.body.scrollWidth)-d.clientWidth);"
          "});</script>")
"""Appended to a copy of the page: the px by which the body is wider than the window, in the title."""


def body_overflow_px(chromium: str, html: Path, width: int) -> int | None:
    """Horizontal overflow of the page body at ``width`` CSS px (0: none); None when Chromium fails."""
    import re

    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(html.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"), encoding="utf-8")
        cmd = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp}/profile", f"--window-size={width},900", "--virtual-time-budget=10000",
               "--dump-dom", probe.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r"<title>overflow:(\d+)</title>", proc.stdout)
    return int(m.group(1)) if m else None


def trim_blank_bottom(png: Path) -> int:
    """Crop the uniform rows below the page's content from a screenshot; returns the new height."""
    from PIL import Image

    with Image.open(png) as im:
        a = np.asarray(im.convert("RGB"))
    rows = np.flatnonzero((a != a[-1, 0]).any(axis=(1, 2)))
    h = int(rows[-1]) + 17 if rows.size else a.shape[0]
    if h < a.shape[0]:
        Image.fromarray(a[:h]).save(png, optimize=True)
    return min(h, a.shape[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", nargs="?", type=Path, help="report.html to screenshot (default: build a demo)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    ap.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium binary")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="gigacity-render-"))
    out.mkdir(parents=True, exist_ok=True)
    html = args.html if args.html is not None else build_demo(out)
    print(f"report: {html}")
    chromium = shutil.which(args.chromium) or (args.chromium if Path(args.chromium).exists() else None)
    if chromium is None:
        print(f"{args.chromium} not found: screenshots skipped")
        return 0
    screenshot(chromium, html, out)
    rc = 0
    for name, (w, _) in VIEWPORTS.items():
        px = body_overflow_px(chromium, html, w)
        print(f"horizontal overflow of the page body at {w} px ({name}): "
              + ("unknown (Chromium failed)" if px is None else f"{px} px"))
        if name == "desktop" and px:
            rc = 1
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
