"""``gigacity plan``: add sites to a scenario's existing ones until a covered population share is met.

Builds the region, grid and existing sites as ``run`` does (same seed, same sites), lays a
candidate lattice over the planned districts, runs :func:`sim.planning.plan_sites` on one
layer, and writes ``added_sites.gpkg`` (WGS84 points), ``added_sites.csv`` (a site file),
``plan.toml`` (the input plus the added sites, ready for ``gigacity run``),
``plan_curve.csv``, ``plan_curve.png`` and ``plan_summary.json`` to a new run folder
(``<output.dir>/<scenario>-plan-<stamp>``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from .. import maps
from .. import planning as P
from .. import sites as S
from ..config import Scenario
from ..errors import ConfigError
from ..linkfield import layer_rate_bps
from ..report import files
from .inputs import build_rasters, build_sites, carrier_specs, check_inputs, district_classes, layer_radio, tilt_args
from .outputs import check_run_dir, create_run_dir
from .stages import RunResult, StageTimer, noop_progress

__all__ = ["plan_scenario"]


def _plan_overrides(sc: Scenario, target, budget) -> tuple[float, int]:
    """The target share and site budget: the command line's, else ``[planning]``'s."""
    pl = sc.planning
    if target is None:
        target = pl.target_pop_share
    elif isinstance(target, bool) or not isinstance(target, (int, float)) or not (0.0 < float(target) <= 1.0):
        raise ConfigError("--target", None, f"expected a population share in (0, 1], got {target!r}")
    if budget is None:
        budget = pl.budget_sites
    elif isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ConfigError("--budget", None, f"expected a number of sites >= 0, got {budget!r}")
    return float(target), int(budget)


def _sinr_for_rate_db(sc: Scenario, radio, rate_bps: float) -> float:
    """Smallest SINR (0.01 dB steps, -20..60 dB) at which the layer's rate reaches ``rate_bps``."""
    sinr = np.round(np.arange(-2000, 6001) * 0.01, 2)
    rate = layer_rate_bps(sinr, radio)
    ok = np.flatnonzero(rate >= rate_bps)
    if ok.size == 0:
        raise ConfigError(sc.source_path, "planning.min_rate_bps",
                          f"expected at most the layer's peak rate {float(rate.max()):.4g} bit/s, got {rate_bps:.4g}")
    return float(sinr[ok[0]])


def _planned_layer(sc: Scenario):
    """The planned layer: its id, operator, carrier, radio parameters and SINR threshold."""
    layers = {lid: (op, c) for lid, op, c in sc.layers()}
    lid = sc.planning.layer or sc.layers()[0][0]
    op, carrier = layers[lid]
    radio = layer_radio(sc, lid, carrier)
    if radio.los_mode == "sampled" or radio.shadow_fading:
        # The sampled LOS and shadow-fading draws are keyed by site id, so a candidate's would not be
        # the site's once built: planning ranks candidates on the expected path gain instead.
        radio = dataclasses.replace(radio, los_mode="expected", shadow_fading=False, los_consistent=False)
    sinr_min_db = sc.criteria.sinr_min_db
    if sc.planning.min_rate_bps > 0:
        sinr_min_db = max(sinr_min_db, _sinr_for_rate_db(sc, radio, sc.planning.min_rate_bps))
    return lid, op, radio, sinr_min_db


def _planned_districts(sc: Scenario, codes) -> list[int]:
    for i, code in enumerate(sc.planning.district_codes):
        if code not in codes:
            raise ConfigError(sc.source_path, f"planning.district_codes[{i}]",
                              f"expected a district code of the region, got {code!r}")
    return [codes.index(c) for c in (sc.planning.district_codes or codes)]


def _site_tables(sc: Scenario, districts, rasters, codes, plan_idx, lid: str, op, rng):
    """The layer's existing sites, the candidate sites on the lattice, and both together."""
    pl, dep = sc.planning, sc.deployment
    existing = build_sites(sc, districts, rng).table.for_layer(lid)
    district_class, classes = district_classes(sc, codes)
    cx, cy, cd = P.candidate_lattice(rasters, pl.candidate_spacing_m, district_idx=plan_idx,
                                     exclude_x_m=existing.x_m, exclude_y_m=existing.y_m,
                                     min_distance_m=pl.min_distance_m or None)
    specs = [s for s in carrier_specs(op) if s.layer == lid]
    start = int(existing.site_id.max()) + 1 if len(existing) else 0
    _, first_row = np.unique(existing.site_id, return_index=True)
    first_row = first_row[existing.source[first_row] != "small-cell"]   # the macro grid sets the spacing
    tilt = tilt_args(sc, existing.x_m[first_row], existing.y_m[first_row], cx, cy) if first_row.size else {}
    physical = S.PhysicalSites.from_xy(cx, cy, cd, "planned", rasters.grid.crs)
    cand = S.build_site_table(physical, ran=op.id, carriers=specs,
                              rng=rng, district_class=district_class, site_classes=classes,
                              n_sectors=dep.n_sectors, site_id_start=start, **tilt)
    table = existing.concat(cand) if len(existing) else cand
    if len(table) == 0:
        raise ConfigError(sc.source_path, "planning.candidate_spacing_m",
                          "expected candidate sites on the planned land, got none")
    return existing, cand, table


def _added_sites(res, model, cand, lid: str, codes, op, band: str) -> dict:
    """Columns of ``added_sites.csv``: each added site in order, where, and what it gained.

    The file is a site file (:func:`sim.sitefiles.read_sites_csv`: ``site_id, lon, lat,
    height_m, azimuths, tilt_deg, operator, band``; the other columns are ignored when read),
    so ``deployment.extra_site_files`` adds the planned sites to a run as they were planned.
    """
    sid = model.site_ids[res.site_index]
    first = {int(s): i for i, s in reversed(list(enumerate(cand.site_id)))}
    rows_c = [first[int(s)] for s in sid]
    az = [";".join(f"{a:.1f}" for a in cand.az_deg[cand.site_id == s]) for s in sid]
    return {
        "site_id": [f"planned-{int(s)}" for s in sid],
        "lon": np.round(cand.lon_deg[rows_c], 7),
        "lat": np.round(cand.lat_deg[rows_c], 7),
        "height_m": cand.h_bs_m[rows_c].astype(float),
        "azimuths": np.array(az, dtype=object),
        "tilt_deg": np.round(cand.tilt_deg[rows_c].astype(float), 3),
        "operator": np.full(res.n_added, op.id, dtype=object),
        "band": np.full(res.n_added, band, dtype=object),
        "order": np.arange(1, res.n_added + 1),
        "layer": np.full(res.n_added, lid),
        "x_m": model.site_x_m[res.site_index],
        "y_m": model.site_y_m[res.site_index],
        "district": np.array([codes[int(d)] for d in cand.district_idx[rows_c]], dtype=object),
        "scenario": cand.scenario[rows_c],
        "gain_population": res.gain_population,
        "covered_population": res.covered_population[1:],
        "covered_share": res.covered_share[1:],
    }


def _toml_value(v) -> str:
    """A TOML literal of a config value (string, number, bool, list, table)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if isinstance(v, int) else json.dumps(float(v))
    if isinstance(v, dict) or hasattr(v, "items"):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return json.dumps(str(v), ensure_ascii=False)


def plan_config_text(sc: Scenario, run_dir: Path, n_added: int, lid: str) -> str:
    """``plan.toml``: the planned scenario, a config that extends the input and adds ``added_sites.csv``.

    The input's ``--set`` items are carried over (a list item, ``operators[0].x``, cannot be
    merged and is listed as a comment); sites already added by ``deployment.extra_site_files``
    stay. ``gigacity run plan.toml`` then runs the scenario with the planned sites.
    """
    src = Path(sc.source_path).absolute()
    try:
        ext = Path(os.path.relpath(src, run_dir.absolute())).as_posix()
    except ValueError:      # another drive
        ext = src.as_posix()
    tables: dict[str, dict] = {"scenario": {"name": f"{sc.scenario.name}-planned"}}
    skipped = []
    for key, value in sc.overrides:
        parts = key.split(".")
        if any("[" in p for p in parts) or key in ("scenario.name", "deployment.extra_site_files"):
            skipped.append(f"{key} = {_toml_value(value)}")
            continue
        node = tables.setdefault(parts[0], {})
        for p in parts[1:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    extras = [Path(p).as_posix() for p in sc.deployment.extra_site_files] + ["added_sites.csv"]
    tables.setdefault("deployment", {})["extra_site_files"] = extras
    lines = [f"# {sc.scenario.name} plus the {n_added} {lid} sites `gigacity plan` added (added_sites.csv).",
             "# Run it with `gigacity run plan.toml`, then `gigacity compare <input run> <this run>`.",
             f'extends = "{ext}"']
    lines += [f"# not carried over from the command line: {t}" for t in skipped]
    for name, table in tables.items():
        lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _write_plan(sc: Scenario, run_dir: Path, added: dict, curve: dict, target: float, lid: str) -> None:
    import geopandas as gpd
    import pandas as pd

    frame = pd.DataFrame(added)
    files.write_csv(run_dir / "added_sites.csv", frame)
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326")
    files.write_gpkg(run_dir / "added_sites.gpkg", gdf, "added_sites")
    files.write_csv(run_dir / "plan_curve.csv", pd.DataFrame(curve))
    fig = maps.plan_curve_figure(curve["sites_added"], curve["covered_share"], target,
                                 title=f"{sc.scenario.name} ({sc.scenario.year}): {lid} sites added "
                                       f"vs indoor population coverage")
    files.write_png(fig, run_dir / "plan_curve.png", dpi=sc.output.dpi)
    files.write_toml(run_dir / "plan.toml", plan_config_text(sc, run_dir, len(frame), lid))


def _plan_summary(sc: Scenario, rasters, res, model, *, lid, codes, plan_idx, target, budget, n_existing,
                  sinr_min_db, timings_s) -> dict:
    pl = sc.planning
    return {
        "scenario": {"name": sc.scenario.name, "year": sc.scenario.year, "seed": sc.scenario.seed,
                     "config_path": str(sc.source_path)},
        "layer": lid,
        "districts": [codes[i] for i in plan_idx],
        "target_share": target,
        "budget_sites": budget,
        "reached": res.reached,
        "stop_reason": res.stop_reason,
        "existing_sites": int(n_existing),
        "candidate_sites": res.n_candidates,
        "added_sites": res.n_added,
        "population_counted": model.weight_total,
        "covered_share_start": float(res.covered_share[0]),
        "covered_share_end": float(res.covered_share[-1]),
        "thresholds": {"rsrp_indoor_min_dbm": sc.criteria.rsrp_min_dbm, "sinr_indoor_min_db": sinr_min_db,
                       "min_rate_bps": pl.min_rate_bps, "load": sc.radio.default_load},
        "candidate_spacing_m": pl.candidate_spacing_m,
        "cutoff_below_noise_db": pl.cutoff_below_noise_db,
        "cutoff_radius_m": [float(r) for r in model.r_cut_m],
        "reach_radius_m": [float(r) for r in model.r_reach_m],
        "gain_evaluations": res.n_evaluations,
        "grid": {"crs": rasters.grid.crs, "res_m": rasters.grid.res_m, "shape": [int(v) for v in rasters.grid.shape],
                 "land_pixels": rasters.n_land},
        "timings_s": timings_s,
        "versions": files.versions(),
        "outputs": ["added_sites.csv", "added_sites.gpkg", "plan.toml", "plan_curve.csv", "plan_curve.png",
                    "plan_summary.json"],
    }


def plan_scenario(sc: Scenario, *, target=None, budget=None, out_dir=None, force: bool = False,
                  progress=None) -> RunResult:
    """``gigacity plan``: add sites to the existing ones until a covered population share is met."""
    timer = StageTimer(progress)
    prog = progress or noop_progress
    target, budget = _plan_overrides(sc, target, budget)
    check_run_dir(sc, out_dir, force)   # before any work
    lid, op, radio, sinr_min_db = _planned_layer(sc)
    with timer.stage("reading geodata"):
        districts = check_inputs(sc)   # every input check before any computation (as `validate`)
    codes = list(districts["code"])
    plan_idx = _planned_districts(sc, codes)
    with timer.stage("building the grid"):
        rasters = build_rasters(sc, districts)
    rng = np.random.default_rng(np.random.SeedSequence(sc.scenario.seed))
    with timer.stage("placing sites"):
        existing, cand, table = _site_tables(sc, districts, rasters, codes, plan_idx, lid, op, rng)
    # the run folder is made once the inputs are read and placed: a bad input leaves no folder behind
    run_dir = create_run_dir(sc, out_dir, force, label="-plan")
    try:
        weight = rasters.population_land * np.isin(rasters.district_land, plan_idx)
        with timer.stage(f"coverage of the existing {lid} sites"):
            model = P.PlanModel(rasters, table.sector_arrays(lid), radio, load=sc.radio.default_load,
                                rsrp_min_dbm=sc.criteria.rsrp_min_dbm, sinr_min_db=sinr_min_db, weight=weight,
                                cutoff_db=sc.planning.cutoff_below_noise_db, seed=sc.scenario.seed)
            ex_idx = np.searchsorted(model.site_ids, np.unique(existing.site_id))
            cand_idx = np.searchsorted(model.site_ids, np.unique(cand.site_id))
            state = model.full_state(ex_idx)
        every = max(1, budget // 20)

        def _step(n, share):
            if n % every == 0 or n == budget or share >= target:
                prog(f"planning: {n} sites added, {100.0 * share:.2f} % of the population covered")

        with timer.stage("planning"):
            res = P.plan_sites(model, state, cand_idx, target_share=target, budget=budget, progress=_step)
        curve = {"sites_added": np.arange(res.n_added + 1), "covered_population": res.covered_population,
                 "covered_share": res.covered_share}
        with timer.stage("writing outputs"):
            band = lid[len(op.id) + 1:]
            _write_plan(sc, run_dir, _added_sites(res, model, cand, lid, codes, op, band), curve, target, lid)
        summary = _plan_summary(sc, rasters, res, model, lid=lid, codes=codes, plan_idx=plan_idx, target=target,
                                budget=budget, n_existing=ex_idx.size, sinr_min_db=sinr_min_db,
                                timings_s=timer.timings_s)
        summary["outputs"] = sorted(set(files.written_outputs(run_dir)) | {"plan_summary.json"})
        files.write_json(run_dir / "plan_summary.json", summary)
        files.finish_run_dir(run_dir, sc.scenario.name, summary["outputs"])
        headline = (f"{sc.scenario.name} {lid}: {res.n_added} sites added, population covered indoors "
                    f"{100 * res.covered_share[0]:.2f} % -> {100 * res.covered_share[-1]:.2f} %; target "
                    f"{100 * target:.2f} % " + ("reached" if res.reached else f"not reached ({res.stop_reason})"))
        return RunResult(run_dir=run_dir, headline=headline, summary=summary)
    except BaseException:
        files.abandon_run_dir(run_dir)   # a run that wrote nothing leaves no folder behind
        raise
