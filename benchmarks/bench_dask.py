"""The Dask engine against the local engine on a whole-city run; per-tile cost; the 110 One-Gbps cities.

    .venv/bin/python benchmarks/bench_dask.py [--resolution-m 100] [--workers 2] [--engines local,dask]
                                              [--config configs/shanghai-2021.toml] [--cities-km2 31000]

For each engine the scenario is simulated in memory (:func:`sim.api.simulate`: inputs,
coverage of every layer, busy hour, assessment; no files written, the outputs do not depend
on the engine) with ``--workers`` workers: the local engine's forked processes, or a Dask
``LocalCluster`` of as many single-threaded worker processes (started outside the timed
stages; its start is printed). Printed per engine: the stage times (``timings_s``), the
*tile stages* (coverage of every layer + busy hour: what runs as tasks on the engine), and
the per-tile cost in worker-seconds per 1e5 land pixels per layer
(``tile_s * workers / (land_px / 1e5) / layers``). The engines' citywide indicators and
rasters are compared (they must be identical).

From the Dask engine's per-tile cost, the run time of all 110 certified One-Gbps cities
(29 of 2021 + 81 of 2022, MIIT notice of 2022-12-18) at 25 m on a 32-worker cluster:

    T_tiles = A / (25 m)^2 * L * c / (W * eta)

A: the cities' simulated land area (``--cities-km2``); L: layers per city (this scenario's);
c: worker-seconds per land pixel per layer (measured here, at ``--resolution-m``); W = 32;
eta: parallel efficiency of the cluster (ASSUMPTION 0.8: scatter of the inputs to 32
workers, the last tiles of each map, the client's reductions between busy-hour iterations).
The client's serial stages per city (geodata, grid, sites, assessment) are added from this
run's, scaled by pixels; writing outputs is not included (``benchmarks/bench_city.py``).

Areas (ASSUMPTIONS, say which you use): the 110 cities' urban built-up area, about half of
China's 62,420 km2 of urban built-up area at the end of 2021 (MOHURD, 2021 China Urban
Construction Statistical Bulletin; Shanghai alone: 1,242 km2 in 2022) -> 31,000 km2, the
default; or each city's whole land area as this Shanghai run simulates it (all 16 districts,
about 7,000 km2 at 25 m: 11.2 M land pixels) -> 110 x 7,000 = 770,000 km2.

CPU is shared on a development machine: the figures vary run to run by tens of percent.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

from sim import api
from sim.app.run import open_engine

TILE_STAGES = ("coverage ", "busy hour")
PX_25M_M2 = 25.0 * 25.0
CLUSTER_WORKERS = 32
EFFICIENCY = 0.8   # ASSUMPTION, see the module notes
CITIES = 110       # MIIT: 29 One-Gbps cities in 2021, 81 in 2022


def _tile_s(timings: dict) -> float:
    # "busy hour <layer>" are progress lines inside the "busy hour" stage, not stages of their own
    return sum(v for k, v in timings.items() if k.startswith("coverage ") or k == "busy hour")


def _cpu_s(usage) -> float:
    return usage.ru_utime + usage.ru_stime


def _worker_cpu_s(engine) -> float:
    """CPU seconds of the engine's workers so far: a Dask cluster's worker processes (asked), or the
    reaped forked workers of the local engine (this process's children)."""
    if engine.name == "dask":
        return sum(engine.client.run(time.process_time).values())
    return _cpu_s(resource.getrusage(resource.RUSAGE_CHILDREN))


def run_engine(sc, name: str, workers: int):
    """Simulate ``sc`` on engine ``name``; returns (result, start_s, wall_s, worker_cpu_s, client_cpu_s)."""
    sc = dataclasses.replace(sc, compute=dataclasses.replace(sc.compute, engine=name, scheduler=""))
    t0 = time.perf_counter()
    with open_engine(sc, workers) as engine:
        start_s = time.perf_counter() - t0
        cpu0, self0 = _worker_cpu_s(engine), _cpu_s(resource.getrusage(resource.RUSAGE_SELF))
        t1 = time.perf_counter()
        res = api.simulate(sc, workers=workers, engine=engine)
        wall_s = time.perf_counter() - t1
        cpu_s = _worker_cpu_s(engine) - cpu0
        client_s = _cpu_s(resource.getrusage(resource.RUSAGE_SELF)) - self0
    return res, start_s, wall_s, cpu_s, client_s


def _same(a, b) -> bool:
    if a.citywide.keys() != b.citywide.keys():
        return False
    for k, v in a.citywide.items():
        if not (v == b.citywide[k] or (np.isnan(v) and np.isnan(b.citywide[k]))):
            return False
    return all(np.array_equal(a.raster(n), b.raster(n), equal_nan=True) for n in a.raster_names())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "shanghai-2021.toml"))
    ap.add_argument("--resolution-m", type=float, default=100.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--engines", default="local,dask")
    ap.add_argument("--cities-km2", type=float, default=31_000.0,
                    help="land area simulated over the 110 cities (default: their urban built-up area, ASSUMPTION)")
    args = ap.parse_args(argv)
    sc = api.load_config(args.config, {"region.resolution_m": args.resolution_m})
    n_layers = len(sc.layers())
    results = {}
    print(f"{Path(args.config).name} at {args.resolution_m:g} m, {args.workers} workers, {n_layers} layers")
    print(f"{'engine':<7} {'start s':>8} {'wall s':>8} {'tiles s':>8} {'other s':>8} {'land px':>11} "
          f"{'w-s/1e5px/L':>12} {'cpu-s/1e5px/L':>14} {'client cpu s':>13}  stages")
    for name in args.engines.split(","):
        res, start_s, wall_s, cpu_s, client_s = run_engine(sc, name, args.workers)
        t = res.timer.timings_s
        n_px = res.inputs.rasters.n_land
        tile_s = _tile_s(t)
        cost = tile_s * args.workers / (n_px / 1e5) / n_layers
        cpu_cost = cpu_s / (n_px / 1e5) / n_layers
        results[name] = (res, tile_s, wall_s, cost, n_px, cpu_cost)
        stages = ", ".join(f"{k} {v:.1f}" for k, v in t.items())
        print(f"{name:<7} {start_s:8.1f} {wall_s:8.1f} {tile_s:8.1f} {wall_s - tile_s:8.1f} {n_px:11,d} "
              f"{cost:12.3f} {cpu_cost:14.3f} {client_s:13.1f}  {stages}")
    print("w-s/1e5px/L: worker-seconds (tile stages' wall time x workers) per 1e5 land pixels per layer; "
          "cpu-s/1e5px/L: the workers' CPU seconds (whole simulation) per 1e5 land pixels per layer")
    print(f"client peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
          "(workers not counted)")
    if "local" in results and "dask" in results:
        same = _same(results["local"][0], results["dask"][0])
        print(f"identical indicators and rasters, local vs dask: {'yes' if same else 'NO'}")
        print(f"dask / local, tile stages: {results['dask'][1] / results['local'][1]:.2f}; "
              f"whole simulation: {results['dask'][2] / results['local'][2]:.2f}")
    name = "dask" if "dask" in results else next(iter(results))
    res, tile_s, wall_s, cost, n_px, cpu_cost = results[name]
    c = cost / 1e5   # worker-s per land pixel per layer (wall: counts the waits of a shared CPU as work)
    c_client = (wall_s - tile_s) / n_px
    n_all = args.cities_km2 * 1e6 / PX_25M_M2
    t_tiles = n_all * n_layers * c / (CLUSTER_WORKERS * EFFICIENCY)
    t_client = n_all * c_client
    print(f"\n110 One-Gbps cities at 25 m on {CLUSTER_WORKERS} workers (per-tile cost of the {name} run):")
    print(f"  T_tiles  = A / (25 m)^2 * L * c / (W * eta) = {args.cities_km2:,.0f} km2 / 625 m2 * {n_layers} * "
          f"{c:.3g} s / ({CLUSTER_WORKERS} * {EFFICIENCY}) = {n_all:.3g} px * {n_layers} * {c:.3g} s / "
          f"{CLUSTER_WORKERS * EFFICIENCY:g} = {t_tiles:,.0f} s = {t_tiles / 3600:.2f} h")
    print(f"  T_client = A / (25 m)^2 * c_client = {n_all:.3g} px * {c_client:.3g} s = {t_client:,.0f} s "
          f"= {t_client / 3600:.2f} h (serial stages of one client; {CITIES} cities can run on several)")
    t_cpu = n_all * n_layers * cpu_cost / 1e5 / (CLUSTER_WORKERS * EFFICIENCY)
    print(f"  with the workers' CPU seconds instead (c = {cpu_cost / 1e5:.3g} s: dedicated cores): T_tiles = "
          f"{t_cpu:,.0f} s = {t_cpu / 3600:.2f} h")
    print(f"  total (one client) = {(t_tiles + t_client) / 3600:.2f} h; assumptions: A = {args.cities_km2:,.0f} km2, "
          f"eta = {EFFICIENCY}, every city {n_layers} layers as this scenario, cost per pixel as at "
          f"{args.resolution_m:g} m, outputs not included")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
