"""Coverage against the number of sites, with the Python API (``sim.api``).

Loads a config, runs it in memory for several site counts of the shared Telecom/Unicom n78
network, and plots the indoor 5G population coverage and the 5G sites per 10,000 residents
against the site count. Nothing is written but the figure. From the repository root::

    python examples/coverage_vs_sites.py                       # the tiny scene, seconds
    python examples/coverage_vs_sites.py configs/shanghai-2021.toml --resolution-m 1000 \\
        --counts 15000 30160 45000

The same steps work in a notebook: ``api.load_config`` then ``api.simulate`` per variant,
reading ``result.citywide`` (or ``result.indicators``, ``result.raster(...)``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))     # run from a source checkout without installing

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sim import api  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", nargs="?", default=str(ROOT / "configs" / "tiny.toml"))
    p.add_argument("--ran", default="ctcu", help="radio network whose site count varies")
    p.add_argument("--counts", type=int, nargs="+", default=[10, 20, 40, 80])
    p.add_argument("--resolution-m", type=float, default=None)
    p.add_argument("--out", default="coverage_vs_sites.png")
    args = p.parse_args(argv)

    base = {"traffic.simpy_cells": 0, "output.maps": False}       # the indicators only: quicker
    if args.resolution_m:
        base["region.resolution_m"] = args.resolution_m
    rows = []
    for n in args.counts:
        sc = api.load_config(args.config, overrides={**base, f"deployment.sites.{args.ran}": n})
        result = api.simulate(sc)
        city = result.citywide
        rows.append((n, city["pop_cov_5g_indoor_pct"], city["bs_5g_per_10k"]))
        print(f"{args.ran} sites {n:7,d}: indoor 5G population coverage {city['pop_cov_5g_indoor_pct']:6.2f} %, "
              f"5G BS per 10,000 residents {city['bs_5g_per_10k']:5.1f}")

    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot([r[0] for r in rows], [r[1] for r in rows], "o-")
    ax.set_xlabel(f"{args.ran} sites")
    ax.set_ylabel("Indoor 5G population coverage (%)")
    ax.set_title(f"{sc.scenario.name}: coverage vs sites (all networks, mobile-share weighted)")
    ax.grid(alpha=0.3)
    fig.savefig(args.out, dpi=120)
    print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
