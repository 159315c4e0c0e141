"""Time site placement by density and the OpenCellID reader; print a table.

    .venv/bin/python benchmarks/bench_sites.py [--sites 100000] [--rows 1000000]

Targets: 100,000 sites by density over the 16 districts in < 5 s; a 1,000,000-row
OpenCellID CSV read in < 10 s. The CSV is generated (fixed seed) into a temporary
directory that is removed afterwards; generation is outside the timed region.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from sim.geodata import read_districts
from sim.placement import allocate_counts, district_weights, place_by_density
from sim.sitefiles import OPENCELLID_COLUMNS, read_opencellid

ROOT = Path(__file__).resolve().parent.parent
GEODATA = ROOT / "geodata"


def write_opencellid(path: Path, n_rows: int, rng: np.random.Generator) -> None:
    """A synthetic OpenCellID export: mostly Shanghai NR/LTE cells of the four operators,
    3 cells per site position, with some other radios/MCCs, bad rows and outside cells."""
    n_pos = n_rows // 3 + 1
    lon_s = rng.uniform(121.0, 121.9, n_pos)
    lat_s = rng.uniform(30.8, 31.8, n_pos)
    pick = rng.integers(0, n_pos, n_rows)
    lon = lon_s[pick]
    lat = lat_s[pick]
    radio = rng.choice(np.array(["NR", "LTE", "GSM", "UMTS"]), n_rows, p=[0.35, 0.55, 0.05, 0.05])
    net = rng.choice(np.array([0, 1, 2, 3, 11, 15, 20]), n_rows)
    mcc = np.where(rng.random(n_rows) < 0.01, 310, 460)
    lon_txt = np.char.mod("%.6f", lon).astype(object)
    lon_txt[rng.random(n_rows) < 0.001] = "n/a"
    lines = [",".join(OPENCELLID_COLUMNS)]
    cols = [radio, mcc.astype(str), net.astype(str), rng.integers(1, 65535, n_rows).astype(str),
            np.arange(n_rows).astype(str), np.zeros(n_rows, int).astype(str), lon_txt, np.char.mod("%.6f", lat),
            np.full(n_rows, "500"), np.full(n_rows, "3"), np.full(n_rows, "1"),
            np.full(n_rows, "1600000000"), np.full(n_rows, "1700000000"), np.full(n_rows, "0")]
    body = np.array(cols[0], dtype=object)
    for c in cols[1:]:
        body = body + "," + np.asarray(c, dtype=object)
    lines.extend(body.tolist())
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    districts = read_districts(GEODATA / "shanghai_districts.geojson", GEODATA / "shanghai_district_stats.csv")
    counts = allocate_counts(args.sites, district_weights(districts, "population"))

    rows = []
    t0 = time.perf_counter()
    placement = place_by_density(districts, counts, np.random.default_rng(12345))
    dt = time.perf_counter() - t0
    rows.append(("place_by_density", f"{args.sites:,} sites", dt, 5.0, f"{args.sites / dt:,.0f} sites/s"))
    assert placement.x_m.size == args.sites

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "opencellid.csv"
        write_opencellid(path, args.rows, np.random.default_rng(2024))
        size_mib = path.stat().st_size / 2**20
        t0 = time.perf_counter()
        sites, report = read_opencellid(path, districts)
        dt = time.perf_counter() - t0
        rows.append(("read_opencellid", f"{args.rows:,} rows ({size_mib:.0f} MiB)", dt, 10.0,
                     f"{report.n_sites:,} sites, {report.n_bad:,} bad, {report.n_filtered:,} filtered, "
                     f"{report.n_outside:,} outside"))

    print(f"{'what':<18} {'size':<28} {'time s':>8} {'target s':>9}  note")
    for what, size, dt, target, note in rows:
        flag = "" if dt < target else "  OVER TARGET"
        print(f"{what:<18} {size:<28} {dt:8.2f} {target:9.1f}  {note}{flag}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
