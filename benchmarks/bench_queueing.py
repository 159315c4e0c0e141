"""Benchmark of the simpy processor-sharing core (sim.queueing); prints a table.

    .venv/bin/python benchmarks/bench_queueing.py            # about 10 s on one core
    .venv/bin/python benchmarks/bench_queueing.py --quick    # a few seconds

Events per second (arrivals + departures) of ``simulate_ps`` on one core, for one PS server:
egalitarian PS at several loads (one group, the cell case), many peak-rate classes (a cell
with 1,000 pixels: still one group), and a PON port with five capped tiers (five groups).
A bare simpy loop of timeouts is timed in the same process as the baseline: the core cannot
beat it. Target: >= 100,000 events/s. Setup outside the timed region, fixed seeds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.queueing import simulate_ps  # noqa: E402

TARGET_EVENTS_PER_S = 100_000


def bare_simpy_events_per_s(n: int) -> float:
    env = simpy.Environment()

    def proc():
        timeout = env.timeout
        for _ in range(n):
            yield timeout(0.001)

    env.process(proc())
    t0 = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t0)


def case_events_per_s(n_flows: int, rho: float, *, classes: int = 1, pon: bool = False, seed: int = 1):
    rng = np.random.default_rng(seed)
    mean = 1e6
    if pon:
        cap_port = 8.46e9
        tiers = np.array([1e8, 3e8, 5e8, 1e9, 2e9])
        mix = np.array([0.35, 0.30, 0.20, 0.14, 0.01])
        peak = np.full(5, cap_port)
        kw = dict(cap_bps=tiers, class_prob=mix)
    elif classes > 1:
        peak = np.random.default_rng(0).uniform(2e7, 1e9, classes)
        kw = dict(class_prob=np.full(classes, 1.0 / classes))
    else:
        peak = np.array([1e8])
        kw = {}
    lam = rho / (mean * np.sum(kw.get("class_prob", np.ones(1)) / peak))
    horizon = n_flows / lam
    t0 = time.perf_counter()
    res = simulate_ps(rng, lam, mean, peak, horizon_s=horizon, **kw)
    dt = time.perf_counter() - t0
    return res.n_events / dt, res.n_events, dt, res.mean_in_system


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes")
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else 200_000

    base = bare_simpy_events_per_s(2 * n)
    rows = [
        ("egalitarian PS, rho 0.3", dict(rho=0.3)),
        ("egalitarian PS, rho 0.6", dict(rho=0.6)),
        ("egalitarian PS, rho 0.9", dict(rho=0.9)),
        ("cell, 1000 peak-rate classes, rho 0.6", dict(rho=0.6, classes=1000)),
        ("PON port, 5 capped tiers, rho 0.6", dict(rho=0.6, pon=True)),
    ]
    print(f"simpy PS core, one core, {n:,} flows per case (target >= {TARGET_EVENTS_PER_S:,} events/s)")
    print(f"{'case':42s} {'events':>10s} {'seconds':>8s} {'events/s':>11s} {'vs bare simpy':>14s} {'E[N]':>7s}")
    print(f"{'bare simpy timeout loop (baseline)':42s} {2 * n:>10,d} {2 * n / base:>8.2f} "
          f"{base:>11,.0f} {1.0:>14.2f} {'':>7s}")
    worst = float("inf")
    for name, kw in rows:
        eps, n_ev, dt, mean_n = case_events_per_s(n, **kw)
        worst = min(worst, eps)
        print(f"{name:42s} {n_ev:>10,d} {dt:>8.2f} {eps:>11,.0f} {eps / base:>14.2f} {mean_n:>7.2f}")
    verdict = "meets" if worst >= TARGET_EVENTS_PER_S else "misses"
    print(f"slowest case {worst:,.0f} events/s: {verdict} the {TARGET_EVENTS_PER_S:,} events/s target")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
