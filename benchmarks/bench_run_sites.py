"""Time the site stage of `gigacity run` on the whole city; print a table.

    .venv/bin/python benchmarks/bench_run_sites.py [--rows 1000000] [--csv-rows 100000] [--small 2000]

Rows: ``read_site_file`` on a synthetic OpenCellID export and on a synthetic site CSV
(operator -> network, band check, co-located merge on top of the readers), then
``build_sites`` for the shanghai-2021 scenario from each file, and by density with and
without ``--small`` UMi small cells. Files are generated (fixed seeds) into a temporary
folder outside the timed region and removed afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np

from sim.app.inputs import build_sites, load_region, read_site_file
from sim.config import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def _bench_sites():
    spec = importlib.util.spec_from_file_location("bench_sites", ROOT / "benchmarks" / "bench_sites.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_site_csv(path: Path, n_rows: int, rng: np.random.Generator) -> None:
    """Masts over Shanghai's bounding box (some in the sea: outside), operators and bands mixed."""
    lon = rng.uniform(121.0, 121.9, n_rows)
    lat = rng.uniform(30.7, 31.8, n_rows)
    op = rng.choice(np.array(["cmcc", "ctcc", "cucc"]), n_rows)
    band = np.where(op == "cmcc", rng.choice(np.array(["n41;n28", "n41", ""]), n_rows), "n78")
    h = rng.choice(np.array(["", "25", "30", "35"]), n_rows)
    lines = ["site_id,lon,lat,height_m,operator,band"]
    lines += [f"S{i},{a:.6f},{b:.6f},{c},{d},{e}" for i, (a, b, c, d, e) in enumerate(zip(lon, lat, h, op, band))]
    path.write_text("\n".join(lines) + "\n")


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="OpenCellID rows")
    ap.add_argument("--csv-rows", type=int, default=100_000, help="site CSV rows")
    ap.add_argument("--small", type=int, default=2_000, help="small cells per network (density run)")
    args = ap.parse_args(argv)
    base = load_scenario(ROOT / "configs" / "shanghai-2021.toml")
    districts = load_region(base)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ocid = Path(tmp) / "ocid.csv"
        _bench_sites().write_opencellid(ocid, args.rows, np.random.default_rng(2024))
        csv = Path(tmp) / "sites.csv"
        write_site_csv(csv, args.csv_rows, np.random.default_rng(7))
        for path, fmt, n in ((ocid, "opencellid", args.rows), (csv, "csv", args.csv_rows)):
            dep = dataclasses.replace(base.deployment, strategy="file", site_file=path, site_format=fmt)
            sc = dataclasses.replace(base, deployment=dep)
            sf, dt = _timed(lambda sc=sc: read_site_file(sc, districts))
            i = sf.info
            rows.append((f"read_site_file {fmt}", f"{n:,} rows", dt,
                         f"{sum(i['sites_by_ran'].values()):,} sites, {i['bad']:,} bad, {i['outside_region']:,} "
                         f"outside, {i['merged_colocated']:,} merged"))
            plan, dt = _timed(lambda sc=sc, sf=sf: build_sites(sc, districts, np.random.default_rng(1), sf))
            rows.append((f"build_sites {fmt}", f"{plan.table.n_sites:,} sites", dt,
                         f"{plan.table.n_sectors:,} sector-carriers"))
    for small in (0, args.small):
        dep = dataclasses.replace(base.deployment, small_cells={r: small for r in base.ran_ids})
        sc = dataclasses.replace(base, deployment=dep)
        plan, dt = _timed(lambda sc=sc: build_sites(sc, districts, np.random.default_rng(1)))
        rows.append(("build_sites density", f"{plan.table.n_sites:,} sites", dt,
                     f"{small:,} small cells per network, {plan.table.n_sectors:,} sector-carriers"))
    print(f"{'what':<26} {'size':<18} {'time s':>8}  note")
    for what, size, dt, note in rows:
        print(f"{what:<26} {size:<18} {dt:8.2f}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
