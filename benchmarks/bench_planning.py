"""Site planning over Pudong (310115) at 50 m: 500 greedy additions, incremental vs full recompute.

Setup (not timed): configs/shanghai-2021.toml restricted to Pudong at 50 m, with
``--existing`` ctcu sites (default 400) placed by density as ``gigacity run`` does, with the
config's spacing downtilt (Pudong's 11,000 sites of 2021 already cover > 99 %, so 500
additions would have nothing to do); candidates on a 250 m hexagonal lattice, tilted for
their spacing to the existing sites as ``gigacity plan`` does.

Timed and printed: the model set-up, the full recompute of the existing sites, the greedy
plan (wall time, gain evaluations), the incremental update per added site (re-applying the
added sites one by one to a copy of the start state) and a full recompute of the planning
model over existing + added sites, and their ratio (target >= 20x; plan < 2 min).

    .venv/bin/python benchmarks/bench_planning.py [--existing 400] [--budget 500] [--spacing-m 250]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from sim import planning as P
from sim import sites as S
from sim.app import inputs as R
from sim.config import load_scenario

ROOT = Path(__file__).resolve().parent.parent
LAYER = "ctcu-n78"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--existing", type=int, default=400)
    ap.add_argument("--budget", type=int, default=500)
    ap.add_argument("--spacing-m", type=float, default=250.0)
    ap.add_argument("--resolution-m", type=float, default=50.0)
    args = ap.parse_args()

    sc = load_scenario(ROOT / "configs" / "shanghai-2021.toml")
    sc = dataclasses.replace(sc, region=dataclasses.replace(sc.region, resolution_m=args.resolution_m,
                                                            district_codes=("310115",)),
                             deployment=dataclasses.replace(sc.deployment, sites={"cmcc": 0, "ctcu": args.existing}))
    t0 = time.perf_counter()
    districts = R.load_region(sc)
    rasters = R.build_rasters(sc, districts, n_layers=1)
    rng = np.random.default_rng(np.random.SeedSequence(sc.scenario.seed))
    existing = R.build_sites(sc, districts, rng).table.for_layer(LAYER)
    keep, first_row = np.unique(existing.site_id, return_index=True)
    op, car = next((o, c) for lid, o, c in sc.layers() if lid == LAYER)
    spec = S.CarrierSpec(layer=LAYER, band=car.band, ptx_dbm=car.ptx_dbm, g_max_dbi=car.antenna.g_max_dbi,
                         hpbw_h_deg=car.antenna.hpbw_h_deg, hpbw_v_deg=car.antenna.hpbw_v_deg,
                         tilt_deg=car.antenna.tilt_deg)
    cx, cy, cd = P.candidate_lattice(rasters, args.spacing_m, exclude_x_m=existing.x_m, exclude_y_m=existing.y_m)
    dep = sc.deployment
    cand = S.build_site_table(S.PhysicalSites.from_xy(cx, cy, cd, "planned"), ran=op.id, carriers=[spec], rng=rng,
                              site_class=S.SiteClass(dep.suburban.scenario, dep.suburban.h_bs_m),
                              n_sectors=dep.n_sectors, site_id_start=int(existing.site_id.max()) + 1,
                              **R.tilt_args(sc, existing.x_m[first_row], existing.y_m[first_row], cx, cy))
    t_setup = time.perf_counter() - t0
    print(f"Pudong {args.resolution_m:g} m: {rasters.n_land:,} land pixels, {keep.size:,} density-placed "
          f"{LAYER} sites, {cx.size:,} candidates at {args.spacing_m:g} m "
          f"(setup {t_setup:.1f} s)")

    t0 = time.perf_counter()
    model = P.PlanModel(rasters, existing.concat(cand).sector_arrays(LAYER), R.layer_radio(sc, LAYER, car),
                        load=sc.radio.default_load, rsrp_min_dbm=sc.criteria.rsrp_min_dbm,
                        sinr_min_db=sc.criteria.sinr_min_db)
    t_model = time.perf_counter() - t0
    n_ex = keep.size
    t0 = time.perf_counter()
    start = model.full_state(range(n_ex))
    t_start = time.perf_counter() - t0
    print(f"model {t_model:.2f} s (cut-off radius {model.r_cut_m.max():,.0f} m, reach {model.r_reach_m.max():,.0f} m); "
          f"existing sites from scratch {t_start:.2f} s, "
          f"covered {model.covered_population(start) / model.weight_total:.2%}")

    t0 = time.perf_counter()
    res = P.plan_sites(model, start, np.arange(n_ex, model.n_sites), target_share=0.99, budget=args.budget)
    t_plan = time.perf_counter() - t0

    st = start.copy()
    t0 = time.perf_counter()
    for j in res.site_index:
        model.apply_site(st, int(j))
    t_inc = (time.perf_counter() - t0) / max(res.n_added, 1)
    t0 = time.perf_counter()
    full = model.full_state(list(range(n_ex)) + list(res.site_index))
    t_full = time.perf_counter() - t0
    same = bool(np.array_equal(full.covered, st.covered))

    print()
    print(f"{'quantity':52s} {'value':>14s}")
    print(f"{'sites added (stop: ' + res.stop_reason + ')':52s} {res.n_added:14,d}")
    print(f"{'covered population share, start -> end':52s} {res.covered_share[0]:6.2%} -> {res.covered_share[-1]:.2%}")
    print(f"{'greedy plan wall time, s':52s} {t_plan:14.2f}")
    print(f"{'  per added site, s':52s} {t_plan / max(res.n_added, 1):14.4f}")
    print(f"{'  exact gain evaluations':52s} {res.n_evaluations:14,d}")
    print(f"{'incremental update per added site, s':52s} {t_inc:14.4f}")
    print(f"{'full recompute, existing + added sites, s':52s} {t_full:14.2f}")
    print(f"{'ratio full / incremental (target >= 20)':52s} {t_full / t_inc:14.0f}")
    print(f"{'incremental == full recompute (covered mask)':52s} {str(same):>14s}")


if __name__ == "__main__":
    main()
