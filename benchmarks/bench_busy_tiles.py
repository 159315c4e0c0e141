"""Benchmark of the busy-hour fixed point: whole-grid (before) against the map-reduce over tiles (after).

    .venv/bin/python benchmarks/bench_busy_tiles.py                      # Shanghai 2021 at 100 m, both modes
    .venv/bin/python benchmarks/bench_busy_tiles.py --resolution-m 25    # 11.2 M land pixels (several minutes)
    .venv/bin/python benchmarks/bench_busy_tiles.py --mode after         # one mode only
    .venv/bin/python benchmarks/bench_busy_tiles.py --mode incremental   # whole vs incremental iterations
    .venv/bin/python benchmarks/bench_busy_tiles.py --mode flowstats --resolution-m 25   # cell_flow_stats

Each mode runs in its own process, back to back (the peak resident memory of a process only grows):

* ``before``: every layer's coverage with whole-grid top-8 interference terms in the parent
  (``compute_coverage(top_m=8)``), then per layer ``traffic.busy_hour_layer`` over
  ``busyload.rates_for_load`` (every pixel's SINR and rates in float64 per iteration);
* ``after``: coverage and busy hour on one engine stage as ``gigacity run`` does
  (``app.run.layer_inputs`` / ``compute_layers(stage=...)`` / ``solve_busy_hour(stage=...)``): the
  terms stay with the tiles (spilled by the local engine), each iteration is one task per tile.

Printed per mode: seconds of coverage and of the busy hour, iterations per layer, and the
parent process's peak resident memory (``ru_maxrss``) after the coverage and after the busy hour.
Worker processes (forked per stage) are not counted; the whole-run benchmark measures the tree.
Setup (geodata, grid, sites) outside the timed regions; fixed seed (the config's).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim import traffic as T  # noqa: E402
from sim.app import busyhour  # noqa: E402
from sim.app import inputs as R  # noqa: E402
from sim.app.assess import mobile_share_by_ran  # noqa: E402
from sim.app.run import compute_layers, layer_inputs  # noqa: E402
from sim.app.stages import StageTimer  # noqa: E402
from sim.busyload import rates_for_load  # noqa: E402
from sim.config import load_scenario, with_overrides  # noqa: E402
from sim.engine import LocalEngine  # noqa: E402


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _before(sc, districts, rasters, sites, sectors, workers):
    t0 = time.perf_counter()
    cov = compute_layers(sc, rasters, sectors, StageTimer(), workers)
    t_cov, m_cov = time.perf_counter() - t0, _peak_mib()
    t0 = time.perf_counter()
    tr, codes, share = sc.traffic, list(districts["code"]), mobile_share_by_ran(sc)
    fiveg = R.fiveg_user_share_by_district(sc, codes)[rasters.district_land.astype(np.int64)]
    iters = {}
    for ran in sc.ran_ids:
        lids = [(lid, c) for lid, op, c in sc.layers() if op.id == ran]
        users = T.users_per_pixel(rasters.population_land, share[ran], fiveg, tr.busy_hour_active_share,
                                  tr.mobile_penetration)
        masks = T.users_layer_masks([cov[lid].rate_indoor_bps for lid, _ in lids])
        for (lid, carrier), mask in zip(lids, masks):
            bh = T.busy_hour_layer(rates_for_load(cov[lid], R.layer_radio(sc, lid, carrier), sc.radio.default_load),
                                   cov[lid].best_sector, np.where(mask, users, 0.0), tr.flows_per_active_user_per_h,
                                   tr.mean_flow_mb * 8e6, sectors[lid].n_sectors, indoor_share=sc.radio.indoor_share,
                                   tol=tr.fixed_point_tol, max_iter=tr.fixed_point_max_iter,
                                   damping=busyhour.BUSY_DAMPING)
            T.cell_flow_stats(bh.fixed_point.serving_cell, bh.arrival_rate_per_s, bh.throughput_indoor_bps,
                              bh.throughput_outdoor_bps, sc.radio.indoor_share, sectors[lid].n_sectors)
            iters[lid] = bh.fixed_point.iterations
    return t_cov, m_cov, time.perf_counter() - t0, _peak_mib(), iters


def _after(sc, districts, rasters, sites, sectors, workers):
    shared = layer_inputs(sc, rasters, sectors)
    with LocalEngine(workers).stage(shared) as st:
        t0 = time.perf_counter()
        cov = compute_layers(sc, rasters, sectors, StageTimer(), stage=st, inputs=shared)
        t_cov, m_cov = time.perf_counter() - t0, _peak_mib()
        t0 = time.perf_counter()
        busy = busyhour.solve_busy_hour(sc, rasters, cov, sites, mobile_share_by_ran(sc), list(districts["code"]),
                                        stage=st)
        t_busy = time.perf_counter() - t0
    return t_cov, m_cov, t_busy, _peak_mib(), {k: v["iterations"] for k, v in busy.layer_summary.items()}


def _incremental(sc, districts, rasters, sites, sectors, workers, repeats=2):
    """Per layer, the fixed point over tiles with whole evaluations (every pixel every iteration) and
    incremental ones (only the pixels with a changed interferer), timed alternately on the same kept tile
    states; the loads must be bitwise equal. Returns per layer the seconds of each and the passes."""
    from sim import busyload

    shared = layer_inputs(sc, rasters, sectors)
    tr, codes, share = sc.traffic, list(districts["code"]), mobile_share_by_ran(sc)
    fiveg = R.fiveg_user_share_by_district(sc, codes)[rasters.district_land.astype(np.int64)]
    out = {}
    with LocalEngine(workers).stage(shared) as st:
        cov = compute_layers(sc, rasters, sectors, StageTimer(), stage=st, inputs=shared)
        for ran in sc.ran_ids:
            lids = [(lid, c) for lid, op, c in sc.layers() if op.id == ran]
            users = T.users_per_pixel(rasters.population_land, share[ran], fiveg, tr.busy_hour_active_share,
                                      tr.mobile_penetration)
            masks = T.users_layer_masks([np.asarray(cov[lid].rate_indoor_bps) for lid, _ in lids])
            for (lid, carrier), mask in zip(lids, masks):
                radio = R.layer_radio(sc, lid, carrier)
                params = busyload.layer_params(radio, sc.radio.default_load, sc.radio.indoor_share,
                                               tr.mean_flow_mb * 8e6, cov[lid].interference.noise_mw)
                sources, blocks = busyload.tile_sources(cov[lid], sc.radio.block_size)
                lam = T.flow_arrival_rate_per_s(np.where(mask, users, 0.0), tr.flows_per_active_user_per_h)
                n = sectors[lid].n_sectors
                tl = busyload.TileLoad(st, sources, blocks, [lam[a:b] for a, b in blocks], n, params)
                times = {False: [], True: []}
                fps = {}
                for _ in range(repeats):
                    for inc in (False, True):
                        tl.incremental = inc
                        tl.forget()
                        tl.passes.clear()
                        t0 = time.perf_counter()
                        fps[inc] = T.fixed_point_cells(tl.offered_load, n, tol=tr.fixed_point_tol,
                                                       max_iter=tr.fixed_point_max_iter, damping=busyhour.BUSY_DAMPING)
                        times[inc].append(time.perf_counter() - t0)
                for name in ("load", "implied_load", "change_history"):
                    if not np.array_equal(getattr(fps[True], name), getattr(fps[False], name)):
                        raise SystemExit(f"{lid}: incremental {name} differs from whole evaluations")
                out[lid] = dict(whole_s=min(times[False]), incremental_s=min(times[True]), passes=list(tl.passes),
                                iterations=int(fps[True].iterations))
                st.release(tl.states)
    return out


def _print_incremental(args) -> None:
    sc = with_overrides(load_scenario(args.config), resolution_m=args.resolution_m)
    districts = R.load_region(sc)
    rasters = R.build_rasters(sc, districts)
    sites = R.build_sites(sc, districts, np.random.default_rng(np.random.SeedSequence(sc.scenario.seed))).table
    sectors = {lid: sites.sector_arrays(lid) for lid, _, _ in sc.layers()}
    res = _incremental(sc, districts, rasters, sites, sectors, args.workers or None)
    print(f"{Path(args.config).name} at {sc.region.resolution_m:g} m, {rasters.n_land:,} land pixels: fixed point "
          f"over tiles, whole vs incremental iterations (best of 2, alternated; loads bitwise equal)")
    print(f"{'layer':12s} {'iter':>4s} {'whole s':>8s} {'incr. s':>8s} {'ratio':>6s}  tiles / pixels re-evaluated")
    tot_w = tot_i = 0.0
    for lid, r in res.items():
        tot_w, tot_i = tot_w + r["whole_s"], tot_i + r["incremental_s"]
        per = ", ".join(f"{k}/{n} {100.0 * px / max(na, 1):.1f}%" for k, n, px, na in r["passes"])
        print(f"{lid:12s} {r['iterations']:>4d} {r['whole_s']:>8.2f} {r['incremental_s']:>8.2f} "
              f"{r['incremental_s'] / r['whole_s']:>6.2f}  {per}")
    print(f"{'all':12s} {'':>4s} {tot_w:>8.2f} {tot_i:>8.2f} {tot_i / tot_w:>6.2f}")


def _cell_flow_stats_lexsort(cell2, tp, w, n_cells):
    """The per-cell percentiles of ``traffic.cell_flow_stats`` as they were computed before (``np.lexsort``,
    a gather per class, ``np.unique``): the reference of ``--mode flowstats``."""
    total = np.bincount(cell2, weights=w, minlength=n_cells)
    out = {}
    order = np.lexsort((tp, cell2))
    c_s, tp_s, w_s = cell2[order], tp[order], w[order]
    cum = np.cumsum(w_s)
    before = np.zeros(n_cells)
    if c_s.size:
        first = np.flatnonzero(np.r_[True, c_s[1:] != c_s[:-1]])
        before[c_s[first]] = cum[first] - w_s[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = (cum - before[c_s]) / total[c_s]
    for q, key in ((0.05, "p5_bps"), (0.50, "p50_bps")):
        val = np.full(n_cells, np.nan)
        hit = np.flatnonzero(frac >= q * (1.0 - 1e-12))
        cells, at = np.unique(c_s[hit], return_index=True)
        val[cells] = tp_s[hit[at]]
        out[key] = val
    return out


def _print_flowstats(args) -> None:
    """``traffic.cell_flow_stats`` (packed-integer sorts) against the lexsort reference, alternated, on
    synthetic classes as many as the busy hour of ``--resolution-m`` has (2 per land pixel with demand)."""
    rng = np.random.default_rng(1)
    n_pix = int(700_350 * (100.0 / args.resolution_m) ** 2 * 0.6)
    n_cells = 20_000
    cell = rng.integers(-1, n_cells, n_pix)
    lam = rng.uniform(0, 1, n_pix)
    t_in = np.where(rng.uniform(0, 1, n_pix) < 0.2, 0.0, rng.uniform(0, 2e9, n_pix)).astype(np.float32)
    t_out = np.where(rng.uniform(0, 1, n_pix) < 0.2, 0.0, rng.uniform(0, 2e9, n_pix)).astype(np.float32)
    keep = cell >= 0
    cell2 = np.concatenate([cell[keep], cell[keep]]).astype(np.int32)
    tp = np.concatenate([t_in[keep], t_out[keep]])
    w = np.concatenate([lam[keep] * 0.8, lam[keep] * 0.2])
    times = {"lexsort": [], "new": []}
    for _ in range(3):
        t0 = time.perf_counter()
        ref = _cell_flow_stats_lexsort(cell2, tp, w, n_cells)
        times["lexsort"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        got = T.cell_flow_stats(cell, lam, t_in, t_out, 0.8, n_cells)
        times["new"].append(time.perf_counter() - t0)
    for k in ref:
        if not np.array_equal(ref[k], got[k], equal_nan=True):
            raise SystemExit(f"cell_flow_stats {k} differs from the lexsort reference")
    a, b = min(times["lexsort"]), min(times["new"])
    print(f"cell_flow_stats, {cell2.size:,} classes of {n_cells:,} cells (as at {args.resolution_m:g} m): "
          f"lexsort reference {a:.2f} s, now {b:.2f} s (best of 3, alternated): {b / a:.2f}x the time; same bits")


def run_mode(args) -> dict:
    sc = with_overrides(load_scenario(args.config), resolution_m=args.resolution_m)
    districts = R.load_region(sc)
    rasters = R.build_rasters(sc, districts)
    sites = R.build_sites(sc, districts, np.random.default_rng(np.random.SeedSequence(sc.scenario.seed))).table
    sectors = {lid: sites.sector_arrays(lid) for lid, _, _ in sc.layers()}
    if args.workers:
        sc = dataclasses.replace(sc, radio=dataclasses.replace(sc.radio, workers=args.workers))
    m0 = _peak_mib()
    fn = _before if args.mode == "before" else _after
    t_cov, m_cov, t_busy, m_busy, iters = fn(sc, districts, rasters, sites, sectors, args.workers or None)
    return dict(mode=args.mode, n_land=int(rasters.n_land), res_m=sc.region.resolution_m, setup_mib=m0,
                coverage_s=t_cov, coverage_peak_mib=m_cov, busy_s=t_busy, busy_peak_mib=m_busy, iterations=iters)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "shanghai-2021.toml"))
    ap.add_argument("--resolution-m", type=float, default=100.0)
    ap.add_argument("--workers", type=int, default=0, help="worker processes (default: all cores)")
    ap.add_argument("--mode", choices=("both", "before", "after", "incremental", "flowstats"), default="both",
                    help="incremental: the fixed point's whole vs incremental iterations, in one process; "
                         "flowstats: cell_flow_stats against its lexsort reference")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.mode == "incremental":
        _print_incremental(args)
        return 0
    if args.mode == "flowstats":
        _print_flowstats(args)
        return 0
    if args.mode != "both":
        out = run_mode(args)
        print(json.dumps(out) if args.json else out)
        return 0
    rows = []
    for mode in ("before", "after"):
        cmd = [sys.executable, __file__, "--mode", mode, "--json", "--config", args.config,
               "--resolution-m", str(args.resolution_m), "--workers", str(args.workers)]
        rows.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1]))
    r = rows[0]
    print(f"{Path(args.config).name}: {r['n_land']:,} land pixels at {r['res_m']:g} m "
          f"(setup peak {r['setup_mib']:.0f} MiB)")
    print(f"{'mode':8s} {'coverage s':>11s} {'busy hour s':>12s} {'peak MiB after coverage':>24s} "
          f"{'peak MiB after busy hour':>25s}  iterations")
    for r in rows:
        print(f"{r['mode']:8s} {r['coverage_s']:>11.1f} {r['busy_s']:>12.1f} {r['coverage_peak_mib']:>24.0f} "
              f"{r['busy_peak_mib']:>25.0f}  {r['iterations']}")
    b, a = rows
    print(f"after / before: busy hour {a['busy_s'] / b['busy_s']:.2f}x the time, parent peak "
          f"{a['busy_peak_mib'] / b['busy_peak_mib']:.2f}x "
          f"({(a['busy_peak_mib'] - a['setup_mib']) / max(b['busy_peak_mib'] - b['setup_mib'], 1):.2f}x above setup)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
