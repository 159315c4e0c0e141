"""Check that a refactor leaves every file of a run folder unchanged.

Runs ``configs/tiny.toml`` and ``configs/shanghai-2021.toml --resolution-m 1000`` with the
code of a base revision (a temporary ``git worktree``) and with the working tree, and
compares the two run folders file by file:

* CSV, Markdown and PNG files: byte for byte;
* GeoTIFF: pixel arrays (NaN equal to NaN), dtype, CRS, transform, nodata, band
  descriptions and tags of the file and of each band;
* GeoPackage: every layer's attributes and geometries (WKB), CRS;
* GeoPackage layer declarations too (``pyogrio.read_info``: field names and types, geometry
  type, feature count, CRS);
* ``summary.json`` and ``grid_summary.json``: equal after removing ``timings_s``,
  ``versions`` and ``scenario.created_utc`` (the only run-to-run differences);
* the run folder's marker ``.gigacity-run``: the same scenario and list of outputs;
* ``report.md`` and ``report.html``: equal after removing the run-time line (``timings``) and
  the run's time stamp ("run 2026-11-30 20:09 UTC"), the only parts that differ between two
  runs of the same code.

Usage::

    python benchmarks/check_outputs_unchanged.py                 # base: BASE_REV
    python benchmarks/check_outputs_unchanged.py --base HEAD~3
    python benchmarks/check_outputs_unchanged.py --dirs RUN_A RUN_B   # two existing folders

Prints one line per file and a table per scenario; exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

BASE_REV = "7073f76"
"""The last commit before the modules were split into one room per job."""

SCENARIOS = {
    "tiny": ["configs/tiny.toml"],
    "shanghai-2021-1000m": ["configs/shanghai-2021.toml", "--resolution-m", "1000"],
}
RUN_TO_RUN_KEYS = ("timings_s", "versions")
_TIMINGS_HTML = re.compile(r"<dd>reading geodata [^<]*</dd>")
_RUN_STAMP = re.compile(r"run \d{4}-\d\d-\d\d \d\d:\d\d UTC")


def compare_json(a: Path, b: Path) -> str | None:
    ja, jb = (json.loads(p.read_text(encoding="utf-8")) for p in (a, b))
    for j in (ja, jb):
        for k in RUN_TO_RUN_KEYS:
            j.pop(k, None)
        if isinstance(j.get("scenario"), dict):
            j["scenario"].pop("created_utc", None)
    if ja == jb:
        return None
    keys = sorted(k for k in set(ja) | set(jb) if ja.get(k) != jb.get(k))
    return f"keys differ: {', '.join(keys)}"


def compare_geotiff(a: Path, b: Path) -> str | None:
    import rasterio

    with rasterio.open(a) as da, rasterio.open(b) as db:
        for what in ("crs", "transform", "dtypes", "count", "descriptions", "shape"):
            if getattr(da, what) != getattr(db, what):
                return f"{what}: {getattr(da, what)} != {getattr(db, what)}"
        if not np.array_equal(np.float64(da.nodata if da.nodata is not None else 0.0),
                              np.float64(db.nodata if db.nodata is not None else 0.0), equal_nan=True) \
                or (da.nodata is None) != (db.nodata is None):
            return f"nodata: {da.nodata} != {db.nodata}"
        if da.tags() != db.tags():
            return f"tags: {da.tags()} != {db.tags()}"
        for i in range(1, da.count + 1):
            if da.tags(i) != db.tags(i):
                return f"band {i} tags differ"
            xa, xb = da.read(i), db.read(i)
            if not np.array_equal(xa, xb, equal_nan=np.issubdtype(xa.dtype, np.floating)):
                n = int((~((xa == xb) | (np.isnan(xa) & np.isnan(xb)))).sum())
                return f"band {i}: {n} pixels differ"
        if da.overviews(1) != db.overviews(1):
            return f"overviews: {da.overviews(1)} != {db.overviews(1)}"
    return None


def compare_gpkg(a: Path, b: Path) -> str | None:
    import geopandas as gpd
    import pyogrio

    la, lb = ([n for n, _ in pyogrio.list_layers(p)] for p in (a, b))
    if la != lb:
        return f"layers {la} != {lb}"
    for layer in la:
        ia, ib = pyogrio.read_info(a, layer=layer), pyogrio.read_info(b, layer=layer)
        for what in ("fields", "dtypes", "geometry_type", "features", "crs"):
            if not np.array_equal(np.asarray(ia[what]), np.asarray(ib[what])):
                return f"{layer}: {what} {ia[what]} != {ib[what]}"
        ga, gb = gpd.read_file(a, layer=layer), gpd.read_file(b, layer=layer)
        if list(ga.columns) != list(gb.columns):
            return f"{layer}: columns {list(ga.columns)} != {list(gb.columns)}"
        if ga.crs != gb.crs:
            return f"{layer}: crs {ga.crs} != {gb.crs}"
        if not ga.drop(columns="geometry").equals(gb.drop(columns="geometry")):
            return f"{layer}: attributes differ"
        if list(ga.geometry.to_wkb()) != list(gb.geometry.to_wkb()):
            return f"{layer}: geometries differ"
    return None


def compare_html(a: Path, b: Path) -> str | None:
    ta, tb = (_RUN_STAMP.sub("", _TIMINGS_HTML.sub("", p.read_text(encoding="utf-8"))) for p in (a, b))
    return None if ta == tb else "differs outside the run-time line and time stamp"


def compare_file(a: Path, b: Path) -> str | None:
    """None when ``a`` and ``b`` hold the same output, else a short reason."""
    if a.name in ("summary.json", "grid_summary.json", "plan_summary.json"):
        return compare_json(a, b)
    if a.name == ".gigacity-run":   # the run folder's marker: the same list of outputs (pid, start time aside)
        ma, mb = (json.loads(p.read_text(encoding="utf-8")) for p in (a, b))
        return None if ma.get("outputs") == mb.get("outputs") and ma.get("scenario") == mb.get("scenario") \
            else "lists other outputs"
    if a.suffix == ".tif":
        return compare_geotiff(a, b)
    if a.suffix == ".gpkg":
        return compare_gpkg(a, b)
    if a.suffix in (".html", ".md"):
        return compare_html(a, b)
    return None if a.read_bytes() == b.read_bytes() else "bytes differ"


def compare_dirs(dir_a: Path, dir_b: Path) -> list[tuple[str, str]]:
    """``(file, result)`` for every file of either folder; result 'same' or the difference."""
    names = sorted({p.name for p in dir_a.iterdir()} | {p.name for p in dir_b.iterdir()})
    out = []
    for name in names:
        a, b = dir_a / name, dir_b / name
        if not a.exists() or not b.exists():
            out.append((name, f"only in {'B' if not a.exists() else 'A'}"))
            continue
        out.append((name, compare_file(a, b) or "same"))
    return out


def run_scenario(code_dir: Path, args: list[str], out: Path) -> None:
    """``python -m sim run`` with the package of ``code_dir``, in ``code_dir`` (same relative config paths)."""
    env = dict(os.environ, PYTHONPATH=str(code_dir))
    cmd = [sys.executable, "-m", "sim", "run", *args, "--out", str(out), "--quiet"]
    subprocess.run(cmd, cwd=code_dir, env=env, check=True, stdout=subprocess.DEVNULL)


def report(label: str, rows: list[tuple[str, str]]) -> bool:
    same = sum(r == "same" for _, r in rows)
    kinds: dict[str, list[int]] = {}
    for name, r in rows:
        k = kinds.setdefault(Path(name).suffix or name, [0, 0])
        k[0] += 1
        k[1] += r == "same"
    print(f"\n{label}: {same} of {len(rows)} files unchanged")
    print(f"  {'kind':8s} {'files':>5s} {'same':>5s}")
    for k, (n, s) in sorted(kinds.items()):
        print(f"  {k:8s} {n:5d} {s:5d}")
    for name, r in rows:
        if r != "same":
            print(f"  DIFFERS {name}: {r}")
    return same == len(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", default=BASE_REV, help=f"git revision of the reference outputs (default {BASE_REV})")
    p.add_argument("--dirs", nargs=2, type=Path, metavar=("RUN_A", "RUN_B"), help="compare two existing run folders")
    args = p.parse_args(argv)
    if args.dirs:
        return 0 if report(f"{args.dirs[0]} vs {args.dirs[1]}", compare_dirs(*args.dirs)) else 1
    ok = True
    with tempfile.TemporaryDirectory(prefix="gigacity-unchanged-") as tmp:
        tmp = Path(tmp)
        base_tree = tmp / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(base_tree), args.base], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for label, scenario_args in SCENARIOS.items():
                run_scenario(base_tree, scenario_args, tmp / "A" / label)
                run_scenario(ROOT, scenario_args, tmp / "B" / label)
                rows = compare_dirs(tmp / "A" / label, tmp / "B" / label)
                ok &= report(f"{label} ({args.base} vs working tree)", rows)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)], cwd=ROOT, check=False)
    print("\nresult:", "every output unchanged" if ok else "OUTPUTS CHANGED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
