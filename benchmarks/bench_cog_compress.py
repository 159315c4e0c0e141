"""CPU seconds and file size of the COG copy of a run's GeoTIFFs, per compression setting.

    .venv/bin/python benchmarks/bench_cog_compress.py RUN_FOLDER [--names a,b,...]

Each GeoTIFF of ``RUN_FOLDER`` (a finished run: its pixels are the real rasters) is read, written as the
uncompressed tiled temporary GTiff that :class:`sim.report.rasterfile.LandRasterWriter` makes, and copied by
GDAL's COG driver (what the run does) with each setting of :data:`VARIANTS`: compression, level, predictor, and
the COG driver's temporary overview file compressed (GDAL's default, ZSTD) or not (``COG_TMP_COMPRESSION=NONE``).
Prints per raster the CPU seconds of the copy (this process: GDAL runs in it) and the file's size, and the totals.
The pixels of every variant are the same (lossless); the bytes differ. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

VARIANTS = {
    "DEFLATE 1, fp predictor": ({"COMPRESS": "DEFLATE", "LEVEL": 1, "PREDICTOR": "YES"}, {}),
    "ZSTD 1, fp predictor, tmp none": ({"COMPRESS": "ZSTD", "LEVEL": 1, "PREDICTOR": "YES"},
                                       {"COG_TMP_COMPRESSION": "NONE"}),
    "ZSTD 1, tmp ZSTD": ({"COMPRESS": "ZSTD", "LEVEL": 1, "PREDICTOR": "NO"}, {}),
    "ZSTD 1, tmp none (the run's)": ({"COMPRESS": "ZSTD", "LEVEL": 1, "PREDICTOR": "NO"},
                                     {"COG_TMP_COMPRESSION": "NONE"}),
    "ZSTD 2, tmp none": ({"COMPRESS": "ZSTD", "LEVEL": 2, "PREDICTOR": "NO"}, {"COG_TMP_COMPRESSION": "NONE"}),
    "DEFLATE 1, tmp none": ({"COMPRESS": "DEFLATE", "LEVEL": 1, "PREDICTOR": "NO"}, {"COG_TMP_COMPRESSION": "NONE"}),
}
"""Name -> (COG creation options, GDAL configuration of the copy)."""


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def main(argv=None) -> int:
    import numpy as np
    import rasterio
    from rasterio.shutil import copy

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--names", help="comma-separated GeoTIFF stems (default: every .tif of the folder)")
    args = ap.parse_args(argv)
    names = args.names.split(",") if args.names else sorted(p.stem for p in args.run.glob("*.tif"))
    totals = {k: [0.0, 0] for k in VARIANTS}
    print(f"{'raster':30s} " + " | ".join(f"{k[:22]:>22s}" for k in VARIANTS))
    with tempfile.TemporaryDirectory(prefix="bench-cog-") as tmp:
        for name in names:
            with rasterio.open(args.run / f"{name}.tif") as ds:
                band, profile, resampling = ds.read(1), ds.profile, ds.tags().get("overview_resampling", "average")
            src = Path(tmp) / "src.tif"
            with rasterio.open(src, "w", driver="GTiff", height=band.shape[0], width=band.shape[1], count=1,
                               dtype=band.dtype.name, crs=profile["crs"], transform=profile["transform"],
                               nodata=profile["nodata"], tiled=True, blockxsize=256, blockysize=256) as ds:
                ds.write(band, 1)
            cells = []
            for k, (options, env) in VARIANTS.items():
                out = Path(tmp) / "out.tif"
                c0 = _cpu_s()
                with rasterio.Env(GTIFF_DIRECT_IO="YES", **env):
                    copy(src, out, driver="COG", BLOCKSIZE=256, OVERVIEWS="AUTO", OVERVIEW_COUNT=4,
                         RESAMPLING=resampling.upper(), BIGTIFF="IF_SAFER", **options)
                cpu, size = _cpu_s() - c0, out.stat().st_size
                with rasterio.open(out) as ds:
                    assert np.array_equal(ds.read(1), band, equal_nan=True), (name, k)
                totals[k][0] += cpu
                totals[k][1] += size
                cells.append(f"{cpu:6.2f} s {size / 1e6:7.1f} MB")
            print(f"{name[:30]:30s} " + " | ".join(f"{c:>22s}" for c in cells), flush=True)
    print(f"{'all (' + str(len(names)) + ')':30s} " +
          " | ".join(f"{f'{cpu:6.2f} s {size / 1e6:7.1f} MB':>22s}" for cpu, size in totals.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
