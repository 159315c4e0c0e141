"""Benchmark of the busy-hour step of ``gigacity run`` on the whole Shanghai 2021 baseline; prints a table.

    .venv/bin/python benchmarks/bench_busy_hour.py                    # about 1-2 min on 2 cores
    .venv/bin/python benchmarks/bench_busy_hour.py --resolution-m 200 # quicker
    .venv/bin/python benchmarks/bench_busy_hour.py --quick            # 200 m, short simpy

Per layer: coverage with the top-8 interference terms (``sim.app.inputs.BUSY_TOP_M``), then the
busy-hour stage (``sim.app.busyhour.solve_busy_hour``: demand, load <-> interference fixed point,
analytic throughput raster). Printed: seconds of coverage and of the busy hour, fixed-point
iterations and largest last load change per layer, the busy-hour step excluding and
including coverage (target < 2 minutes), and the simpy events/s of the PS core
(``bench_queueing.py``, target >= 100,000 on one core). Setup (geodata, grid, sites)
outside the timed region; fixed seed (the config's).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_queueing import TARGET_EVENTS_PER_S, bare_simpy_events_per_s, case_events_per_s  # noqa: E402

from sim.app import inputs as R  # noqa: E402
from sim.app.assess import mobile_share_by_ran  # noqa: E402
from sim.app.busyhour import solve_busy_hour  # noqa: E402
from sim.config import load_scenario, with_overrides  # noqa: E402
from sim.coverage import compute_coverage  # noqa: E402

TARGET_S = 120.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "shanghai-2021.toml"))
    ap.add_argument("--resolution-m", type=float, default=None)
    ap.add_argument("--workers", type=int, default=None, help="coverage worker processes (default: all cores)")
    ap.add_argument("--quick", action="store_true", help="200 m grid and 20,000 simpy flows")
    args = ap.parse_args(argv)
    res = args.resolution_m or (200.0 if args.quick else None)
    sc = with_overrides(load_scenario(args.config), resolution_m=res)

    districts = R.load_region(sc)
    rasters = R.build_rasters(sc, districts)
    sites = R.build_sites(sc, districts, np.random.default_rng(np.random.SeedSequence(sc.scenario.seed))).table
    share = mobile_share_by_ran(sc)
    print(f"{sc.scenario.name}: {rasters.n_land:,} land pixels at {sc.region.resolution_m:g} m, "
          f"{len(sites):,} sector-carriers, K = {sc.radio.k_sites}, top-M = {R.BUSY_TOP_M}")

    coverage, t_cov = {}, {}
    for lid, _, carrier in sc.layers():
        t0 = time.perf_counter()
        coverage[lid] = compute_coverage(rasters, sites.sector_arrays(lid), R.layer_radio(sc, lid, carrier),
                                         k_sites=sc.radio.k_sites, load=sc.radio.default_load,
                                         block_size=sc.radio.block_size, workers=args.workers,
                                         seed=sc.scenario.seed, top_m=R.BUSY_TOP_M)
        t_cov[lid] = time.perf_counter() - t0
    t0 = time.perf_counter()
    busy = solve_busy_hour(sc, rasters, coverage, sites, share, list(districts["code"]))
    summ = busy.layer_summary
    t_busy = time.perf_counter() - t0

    print(f"{'layer':12s} {'cells':>8s} {'coverage s':>11s} {'iterations':>11s} {'last change':>12s} "
          f"{'converged':>10s} {'saturated':>10s} {'max load':>9s}")
    for lid, v in summ.items():
        print(f"{lid:12s} {v['cells']:>8,d} {t_cov[lid]:>11.2f} {v['iterations']:>11d} {v['max_change']:>12.2e} "
              f"{str(v['converged']):>10s} {v['saturated_cells']:>10,d} {v['max_load']:>9.3f}")
    total = t_busy + sum(t_cov.values())
    print(f"busy-hour step, excluding coverage: {t_busy:.1f} s ({sum(v['iterations'] for v in summ.values())} "
          f"rate evaluations, {t_busy / max(sum(v['iterations'] for v in summ.values()), 1):.2f} s each)")
    print(f"busy-hour step, including coverage with top-M terms: {total:.1f} s: "
          f"{'meets' if total < TARGET_S else 'misses'} the {TARGET_S:.0f} s target")

    n = 20_000 if args.quick else 200_000
    base = bare_simpy_events_per_s(2 * n)
    eps, n_ev, dt, _ = case_events_per_s(n, rho=0.6, classes=1000)
    print(f"simpy PS core, one core: {eps:,.0f} events/s (cell with 1000 peak-rate classes, rho 0.6, "
          f"{n_ev:,} events in {dt:.2f} s; bare simpy loop {base:,.0f} events/s): "
          f"{'meets' if eps >= TARGET_EVENTS_PER_S else 'misses'} the {TARGET_EVENTS_PER_S:,} events/s target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
