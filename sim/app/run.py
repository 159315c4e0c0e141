"""``gigacity run``: a scenario end to end, as a short list of stages.

config -> region and grid -> sites -> coverage per layer -> busy hour -> indicators and
criteria -> run folder. Every stage is timed (``summary.json`` ``timings_s``) and announced
to the ``progress`` callback (``progress(stage, done, total)``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import Scenario
from ..coverage import compute_coverage
from . import assess as A
from . import outputs as O
from .busyhour import simpy_check, solve_busy_hour
from .inputs import BUSY_TOP_M, build_rasters, build_sites, check_inputs, grid_summary_rows, layer_radio, read_site_file
from .stages import RunResult, StageTimer, noop_progress

__all__ = ["run_scenario", "compute_layers"]


def compute_layers(sc: Scenario, rasters, sectors, timer: StageTimer, workers=None) -> dict:
    """Coverage of every layer at the reference load (with top-M interference terms for a busy hour)."""
    n_workers = workers if workers is not None else (sc.radio.workers or None)
    coverage = {}
    for lid, _, carrier in sc.layers():
        with timer.stage(f"coverage {lid}"):
            coverage[lid] = compute_coverage(
                rasters, sectors[lid], layer_radio(sc, lid, carrier), k_sites=sc.radio.k_sites,
                load=sc.radio.default_load, block_size=sc.radio.block_size, workers=n_workers,
                progress=lambda d, t, _l=lid: timer.progress(f"coverage {_l}", d, t), seed=sc.scenario.seed,
                top_m=BUSY_TOP_M if sc.traffic is not None else 0)
    return coverage


def run_scenario(sc: Scenario, *, out_dir=None, force: bool = False, workers=None, progress=None) -> RunResult:
    """Run a scenario end to end and write its run folder; returns the folder and headline."""
    O.check_run_dir(sc, out_dir, force)   # an existing --out is refused before any work
    timer = StageTimer(progress)
    prog = progress or noop_progress
    with timer.stage("reading geodata"):
        districts = check_inputs(sc)   # every input check before any computation (as `validate`)
    with timer.stage("building the grid"):
        rasters = build_rasters(sc, districts)
    codes = list(districts["code"])
    grid_rows = grid_summary_rows(districts, rasters)
    site_file = None
    if sc.deployment.strategy == "file":
        with timer.stage("reading the site file"):
            site_file = read_site_file(sc, districts)
        for line in site_file.lines():
            prog(line)
    with timer.stage("placing sites"):
        plan = build_sites(sc, districts, np.random.default_rng(np.random.SeedSequence(sc.scenario.seed)), site_file)
        sites = plan.table
    # the run folder is made once the inputs have been read: a bad site file leaves no folder behind
    run_dir = O.create_run_dir(sc, out_dir, force)
    try:
        sectors = {lid: sites.sector_arrays(lid) for lid, _, _ in sc.layers()}
        coverage = compute_layers(sc, rasters, sectors, timer, workers)
        busy, simpy_rows, day_rows = None, [], []
        if sc.traffic is not None:
            with timer.stage("busy hour"):
                busy = solve_busy_hour(sc, rasters, coverage, sites, A.mobile_share_by_ran(sc), codes, prog)
            coverage = {lid: dataclasses.replace(c, interference=None) for lid, c in coverage.items()}
            with timer.stage("simpy check"):
                simpy_rows, day_rows = simpy_check(sc, busy.layers)
        a = A.Assessment()
        A.assess_radio(sc, rasters, coverage, None if busy is None else busy.rate_by_ran, len(codes), a)
        A.assess_sites(sc, sites, districts, a)
        A.assess_key_places(sc, rasters, codes, a)
        fibre_px, pon_rows = None, []
        if sc.broadband is not None:
            with timer.stage("fibre to the home"):
                fibre, fibre_px = A.assess_fibre(sc, districts, rasters, a)
            with timer.stage("PON busy hour"):
                pon_rows = A.assess_pon(sc, fibre, a)
        A.assess_criteria(sc, codes, a, districts["population"].to_numpy(float))
        title = f"{sc.scenario.name} ({sc.scenario.year})"
        with timer.stage("writing outputs"):
            O.write_tables(run_dir, grid_rows, a, sites, districts)
            images = O.write_coverage_outputs(sc, run_dir, rasters, districts, coverage, sectors, title)
            if busy is not None or sc.broadband is not None:
                images.update(O.write_busy_outputs(sc, run_dir, rasters, districts, busy, simpy_rows, day_rows,
                                                   pon_rows, fibre_px, title))
            images.update(O.write_holes_and_places(sc, run_dir, rasters, districts, a, title))
            if sc.output.maps:
                images = O.write_overview_maps(sc, run_dir, districts, sites, a.table, title, images)
        summary = O.build_summary(sc, rasters, grid_rows, a, plan, busy, simpy_rows, day_rows, pon_rows,
                                  timer.timings_s)
        O.write_summary_and_reports(run_dir, summary, a, images)
        return RunResult(run_dir=run_dir, headline=O.headline(sc, a), summary=summary)
    except BaseException:
        O.abandon_run_dir(run_dir)   # a run that wrote nothing leaves no folder behind
        raise
