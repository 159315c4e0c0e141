"""Seconds per raster map and per GeoTIFF of a run's outputs, the old way and the new way, side by side.

    .venv/bin/python benchmarks/bench_maps.py [--resolution-m 100] [--maps 8] [--rasters 6] [--threads 2]

Over the shipped Shanghai districts, on a grid at ``--resolution-m``, with synthetic SS-RSRP-like
rasters (seeded), every row draws and writes ``--maps`` raster maps (the first map of each row,
which finds the label layout, is timed apart):

* ``scratch + RGBA + embed``: each map built from scratch, saved as an RGBA PNG by ``savefig``
  and quantised again for ``report.html`` (``render.embed_png_bytes``): what a run did before;
* ``scratch + palette``: each map built from scratch, one palette PNG (``files.write_png``),
  embedded as it is;
* ``reused frame + palette``: inside ``maps.reused_frames`` (the frame built once, its static
  artists drawn once and pasted);
* ``... + writer threads``: the same inside ``files.background_writes(--threads)``.

Then ``--rasters`` GeoTIFFs (COG, ZSTD) written one after the other and by writer threads.
Wall and CPU seconds (process time: every thread) per map / raster. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SEED = 20251130


def _region(res_m: float):
    from sim.config import load_scenario
    from sim.geodata import GRID_CRS, read_districts
    from sim.grid import Grid

    g = read_districts(ROOT / "geodata/shanghai_districts.geojson", ROOT / "geodata/shanghai_district_stats.csv")
    xmin, ymin, xmax, ymax = g.total_bounds
    grid = Grid(GRID_CRS, float(np.floor(xmin)), float(np.ceil(ymax)), res_m,
                (int(np.ceil((ymax - ymin) / res_m)), int(np.ceil((xmax - xmin) / res_m))))
    central = load_scenario(ROOT / "configs/shanghai-2021.toml").deployment.central_districts
    return g, grid, tuple(central)


def _rasters(grid, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(SEED)
    r, c = np.ogrid[0:grid.shape[0], 0:grid.shape[1]]
    dist = np.hypot(r - grid.shape[0] * 0.45, c - grid.shape[1] * 0.6) / max(grid.shape)
    return [(-70.0 - 45.0 * dist + rng.normal(0.0, 3.0 + k, grid.shape)).astype(np.float32) for k in range(n)]


def _timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def bench_maps(g, grid, central, values, out: Path, threads: int) -> list[tuple]:
    from sim import maps
    from sim.report import files, render

    def draw(k, v):
        return maps.raster_map(grid, v, g, title=f"SS-RSRP outdoor — bench {k}", cbar_label="SS-RSRP (dBm)",
                               vmin=-120.0, vmax=-60.0, inset_codes=central)

    def old_way(k, v):
        fig = draw(k, v)
        path = out / f"old{k}.png"
        fig.savefig(path, dpi=170, format="png")
        render.embed_png_bytes(path.read_bytes())

    def new_way(k, v):
        files.write_png(draw(k, v), out / f"new{k}.png", dpi=170)

    rows = []
    for label, one, block in (
            ("scratch + RGBA + embed (before)", old_way, contextlib.nullcontext),
            ("scratch + palette", new_way, contextlib.nullcontext),
            ("reused frame + palette", new_way, maps.reused_frames),
            (f"reused frame + palette + {threads} writer threads", new_way,
             lambda: _both(maps.reused_frames(), files.background_writes(threads)))):
        maps.frame.LAYOUTS.clear()
        first, wall, cpu = _row(one, block, values)
        rows.append((label, first, wall, cpu))
    return rows


def _row(one, block, values) -> tuple[float, float, float]:
    """The first map's wall seconds, then wall and CPU seconds per later map (writer threads waited for)."""
    times = []
    w0, c0 = time.perf_counter(), time.process_time()
    with block():
        for k, v in enumerate(values):
            times.append(_timed(lambda k=k, v=v: one(k, v)))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    n = max(len(values) - 1, 1)
    return times[0][0], (wall - times[0][0]) / n, (cpu - times[0][1]) / n


@contextlib.contextmanager
def _both(a, b):
    with b, a:
        yield


def _write_tifs(files, grid, values, out: Path, threads: int) -> None:
    with files.background_writes(threads):
        for k, v in enumerate(values):
            files.write_geotiff(out / f"r{threads}_{k}.tif", grid, v, np.nan, "SS-RSRP", "dBm")


def bench_rasters(grid, values, out: Path, threads: int) -> list[tuple]:
    from sim.report import files

    rows = []
    for label, n in (("one after the other", 0), (f"{threads} writer threads", threads)):
        wall, cpu = _timed(lambda n=n: _write_tifs(files, grid, values, out, n))
        rows.append((label, wall / len(values), cpu / len(values)))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution-m", type=float, default=100.0)
    ap.add_argument("--maps", type=int, default=8, help="raster maps per row (the first timed apart)")
    ap.add_argument("--rasters", type=int, default=6, help="GeoTIFFs per row")
    ap.add_argument("--threads", type=int, default=2, help="writer threads")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    g, grid, central = _region(args.resolution_m)
    values = _rasters(grid, max(args.maps, args.rasters))
    print(f"grid {grid.shape[0]} x {grid.shape[1]} at {args.resolution_m:g} m; 170 dpi maps")
    with tempfile.TemporaryDirectory(prefix="bench_maps-") as tmp:
        out = Path(tmp)
        print(f"{'raster maps':52s} {'first_s':>8s} {'wall_s/map':>11s} {'cpu_s/map':>10s}")
        for label, first, wall, cpu in bench_maps(g, grid, central, values[:args.maps], out, args.threads):
            print(f"{label:52s} {first:8.2f} {wall:11.2f} {cpu:10.2f}")
        print(f"{'GeoTIFFs (COG, ZSTD 1)':52s} {'':8s} {'wall_s/tif':>11s} {'cpu_s/tif':>10s}")
        for label, wall, cpu in bench_rasters(grid, values[:args.rasters], out, args.threads):
            print(f"{label:52s} {'':8s} {wall:11.2f} {cpu:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
