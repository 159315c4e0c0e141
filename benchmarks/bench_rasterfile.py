"""Seconds and peak memory of one GeoTIFF of a Shanghai-size raster: whole array against streamed chunks.

    .venv/bin/python benchmarks/bench_rasterfile.py [--rows 5216] [--cols 4416] [--land 0.5] [--chunk 65536]
                                                    [--skip-whole] [--same-process]

A grid of ``--rows x --cols`` pixels (5216 x 4416: Shanghai at 25 m; 13040 x 11040 at 10 m) of which a
fraction ``--land`` (random pixels, seeded) is land, with random float32 values (NaN at 5 % of them), is
written:

* ``whole``: today's path, ``scatter_to_raster`` of the land values (a float64 2-D array) then
  ``files.write_geotiff`` (MEM dataset copied by GDAL's COG driver);
* ``streamed``: ``rasterfile.LandRasterWriter`` fed ``--chunk`` land pixels at a time, then ``close``
  (the COG copied from the temporary raw file through its VRT).

Per row: wall seconds (for the streamed rows, the windows and the COG copy apart), and the peak RSS growth
over the RSS before the step (``VmHWM`` reset through ``/proc/self/clear_refs``; the inputs, land indices and
values, are made before). Each step runs in a fresh interpreter on the same seeded inputs: in one process a
later step reads low, as the allocator and GDAL keep what an earlier step freed (``--same-process`` shows it).
The streamed files are compared byte for byte with the whole-array one. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SEED = 20251130


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} in /proc/self/status")


def _reset_peak() -> int:
    """Reset the peak RSS (Linux >= 4.0) and return the RSS now, KiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS")


def _inputs(args):
    from sim.grid import Grid

    grid = Grid("EPSG:32651", 340_000.0, 3_470_000.0, 25.0, (args.rows, args.cols))
    rng = np.random.default_rng(SEED)
    land = np.flatnonzero(rng.random(grid.n_pixels, dtype=np.float32) < args.land)
    values = rng.normal(-90.0, 8.0, land.size).astype(np.float32)
    values[rng.random(land.size, dtype=np.float32) < 0.05] = np.nan
    return grid, land, values


def _step(step: str, args, folder: Path) -> str:
    """Run one step (``whole`` or ``streamed``) in this process; its result line."""
    from sim.grid import scatter_to_raster
    from sim.report import files, rasterfile

    grid, land, values = _inputs(args)
    path = folder / f"{step}.tif"
    base = _reset_peak()
    t0 = time.perf_counter()
    if step == "whole":
        arr2d = scatter_to_raster(grid, land, values)
        files.write_geotiff(path, grid, arr2d, np.nan, "SS-RSRP outdoor", "dBm")
        del arr2d
        t1 = t2 = time.perf_counter()
    else:
        w = rasterfile.LandRasterWriter(path, grid, land, np.nan, "SS-RSRP outdoor", "dBm")
        for start in range(0, land.size, args.chunk):
            stop = min(start + args.chunk, land.size)
            w.write(start, stop, values[start:stop])
        t1 = time.perf_counter()
        w.close()
        t2 = time.perf_counter()
    peak = (_status_kib("VmHWM") - base) / 1024
    split = "" if step == "whole" else f"{t1 - t0:10.2f} {t2 - t1:7.2f}"
    return f"{step:<18} {t2 - t0:8.2f} {split:>18} {peak:20.0f} {path.stat().st_size / 1e6:8.1f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=5216)
    ap.add_argument("--cols", type=int, default=4416)
    ap.add_argument("--land", type=float, default=0.5)
    ap.add_argument("--chunk", type=int, default=65_536)
    ap.add_argument("--skip-whole", action="store_true", help="only the streamed writer (a 10 m grid)")
    ap.add_argument("--same-process", action="store_true", help="every step in this process, one after another")
    ap.add_argument("--step", help=argparse.SUPPRESS)     # internal: one step, in a child
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step:
        print(_step(args.step, args, Path(args.folder)), flush=True)
        return 0
    steps = ([] if args.skip_whole else ["whole"]) + ["streamed"]
    n_land = int(round(args.rows * args.cols * args.land))
    print(f"grid {args.rows} x {args.cols}, about {n_land:,} land pixels, chunks of {args.chunk:,}; "
          f"{'one process' if args.same_process else 'each step in a fresh process'}")
    print(f"{'step':<18} {'seconds':>8} {'windows s':>10} {'COG s':>7} {'peak RSS growth MiB':>20} {'file MB':>8}")
    with tempfile.TemporaryDirectory(prefix="bench-rasterfile-") as tmp:
        tmp = Path(tmp)
        for step in steps:
            if args.same_process:
                print(_step(step, args, tmp), flush=True)
                continue
            cmd = [sys.executable, __file__, "--step", step, "--folder", str(tmp), "--rows", str(args.rows),
                   "--cols", str(args.cols), "--land", str(args.land), "--chunk", str(args.chunk)]
            print(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip(), flush=True)
        if not args.skip_whole:
            ref = (tmp / "whole.tif").read_bytes()
            for step in steps[1:]:
                same = (tmp / f"{step}.tif").read_bytes() == ref
                print(f"{step}: {'the same bytes as' if same else 'DIFFERENT bytes from'} whole")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
