"""``gigacity run``: a scenario end to end, as a short list of stages.

config -> region and grid -> sites -> coverage per layer -> busy hour -> indicators and
criteria (:func:`simulate`, in memory) -> run folder (:meth:`Simulation.write`). Every stage
is timed (``summary.json`` ``timings_s``) and announced to the ``progress`` callback
(``progress(stage, done, total)``). :func:`run_scenario` is the two together, with the run
folder made once the inputs have been read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import Scenario
from ..coverage import compute_coverage, coverage_group_on_stage, coverage_inputs, layer_groups
from ..engine import LocalEngine
from ..grid import scatter_to_raster
from ..pixelstore import PixelStore
from ..report.files import grid_transform
from . import assess as A
from . import outputs as O
from .busyhour import simpy_check, solve_busy_hour
from .inputs import (
    BUSY_TOP_M,
    build_rasters,
    build_sites,
    check_inputs,
    grid_summary_rows,
    layer_radio,
    link_summary,
    read_site_file,
    region_info,
)
from .stages import RunResult, StageTimer, noop_progress

__all__ = ["run_scenario", "compute_layers", "layer_inputs", "simulate", "read_inputs", "Inputs", "Simulation",
           "open_engine", "engine_info"]


def run_workers(sc: Scenario, workers=None) -> int | None:
    """Workers of a run: ``workers`` (``--workers``), else ``compute.workers``, else ``radio.workers``; None: all
    cores (0 counts as not given)."""
    return workers if workers is not None else (sc.compute.workers or sc.radio.workers or None)


@contextlib.contextmanager
def open_engine(sc: Scenario, workers=None, timer: StageTimer | None = None):
    """The engine of a run (``[compute]``): a :class:`~sim.engine.LocalEngine`, or a Dask engine on
    ``compute.scheduler`` or on a LocalCluster started here (stage "starting Dask"); closed (cluster
    shut down) on the way out."""
    n = run_workers(sc, workers)
    if sc.compute.engine_name == "dask":
        # dask is imported only when a run asks for it
        from ..dask_engine import DaskEngine

        with (timer or StageTimer()).stage("starting Dask"):
            engine = DaskEngine(scheduler=sc.compute.scheduler or None, workers=n,
                                connect_timeout_s=sc.compute.connect_timeout_s, source=_compute_source(sc))
    else:
        engine = LocalEngine(n)
    try:
        yield engine
    finally:
        engine.close()


def _compute_source(sc: Scenario) -> str:
    """Where ``[compute]`` came from, for errors: the command line (``--scheduler``, ``--set``) or the config."""
    given = {k for k, _ in sc.overrides}
    return "command line" if given & {"compute.scheduler", "compute.engine"} else str(sc.source_path)


def engine_info(engine) -> dict:
    """``{"engine", "workers", "scheduler"}`` of an engine, for ``summary.json`` ``compute``."""
    workers = engine.workers if getattr(engine, "executor", "processes") == "processes" else 1
    return {"engine": engine.name, "workers": int(workers), "scheduler": getattr(engine, "scheduler", None)}


def compute_layers(sc: Scenario, rasters, sectors, timer: StageTimer, workers=None, *, stage=None,
                   inputs=None, engine=None, store=None) -> dict:
    """Coverage of every layer at the reference load (with top-M interference terms for a busy hour).

    With ``stage`` (an open engine stage whose shared inputs are ``inputs``, from
    :func:`layer_inputs`) each layer's tiles stay on the stage with their interference terms
    (:func:`sim.coverage.coverage_on_stage`) for :func:`sim.app.busyhour.solve_busy_hour` on
    the same stage, and with ``store`` (a :class:`~sim.pixelstore.PixelStore`) its per-pixel outputs
    go there rather than into this process; else each layer runs on its own stage of ``engine``
    (default a local engine of ``workers``) with whole-grid terms.
    """
    n_workers = run_workers(sc, workers)
    coverage = {}
    if stage is not None:
        # carriers on the same sites run their tiles together: the per pixel-site geometry, LOS state and
        # shadow fading are computed once (sim.coverage.layer_groups; each layer keeps its bits)
        for keys in layer_groups(inputs):
            name = "coverage " + " + ".join(keys)
            with timer.stage(name):
                prog = functools.partial(timer.progress, name)
                coverage.update(coverage_group_on_stage(stage, keys, inputs, sc.radio.block_size, prog, store=store))
        return {lid: coverage[lid] for lid, _, _ in sc.layers()}
    for lid, _, carrier in sc.layers():
        with timer.stage(f"coverage {lid}"):
            prog = functools.partial(timer.progress, f"coverage {lid}")
            coverage[lid] = compute_coverage(
                rasters, sectors[lid], layer_radio(sc, lid, carrier), k_sites=sc.radio.k_sites,
                load=sc.radio.default_load, block_size=sc.radio.block_size, workers=n_workers,
                progress=prog, seed=sc.scenario.seed,
                top_m=BUSY_TOP_M if sc.traffic is not None else 0, engine=engine)
    return coverage


def layer_inputs(sc: Scenario, rasters, sectors, top_m: int = BUSY_TOP_M) -> dict:
    """Layer id -> the shared inputs of its coverage tiles (:func:`sim.coverage.coverage_inputs`), with
    the busy hour's top-M terms: the ``shared`` of a stage running :func:`compute_layers` and the busy hour."""
    return {lid: coverage_inputs(rasters, sectors[lid], layer_radio(sc, lid, carrier), sc.radio.k_sites,
                                 sc.radio.default_load, seed=sc.scenario.seed, top_m=top_m)
            for lid, _, carrier in sc.layers()}


@dataclass
class Inputs:
    """What a run reads and builds before any physics: districts, rasters, sites."""

    districts: object
    rasters: object
    grid_rows: list
    plan: object
    sectors: dict

    @property
    def codes(self) -> list[str]:
        return list(self.districts["code"])


def read_inputs(sc: Scenario, timer: StageTimer) -> Inputs:
    """The region, its rasters, the site file (if any) and the sites of every network."""
    prog = timer.progress
    with timer.stage("reading geodata"):
        districts = check_inputs(sc)   # every input check before any computation (as `validate`)
    with timer.stage("building the grid"):
        rasters = build_rasters(sc, districts)
    site_file = None
    if sc.deployment.strategy == "file":
        with timer.stage("reading the site file"):
            site_file = read_site_file(sc, districts)
        for line in site_file.lines():
            prog(line)
    with timer.stage("placing sites"):
        plan = build_sites(sc, districts, np.random.default_rng(np.random.SeedSequence(sc.scenario.seed)), site_file)
    sectors = {lid: plan.table.sector_arrays(lid) for lid, _, _ in sc.layers()}
    return Inputs(districts=districts, rasters=rasters, grid_rows=grid_summary_rows(districts, rasters), plan=plan,
                  sectors=sectors)


@dataclass
class Simulation:
    """A scenario simulated in memory: every array and table a run folder is written from.

    ``raster(name)`` gives a 2-D array on the grid (row 0 north, NaN off land; names as the
    GeoTIFFs: ``<layer>_rsrp_dbm``, ``<layer>_rate_busy_bps`` ...), ``transform`` and
    ``crs`` its georeference; ``indicators`` (district x indicator), ``criteria`` and
    ``sites`` are pandas DataFrames; :meth:`write` writes the run folder.
    """

    scenario: Scenario
    inputs: Inputs
    coverage: dict
    busy: object
    simpy_rows: list
    day_rows: list
    pon_rows: list
    fibre_px: object
    assessment: A.Assessment
    timer: StageTimer = field(repr=False)
    speed_px: object = field(default=None, repr=False)
    compute: dict | None = field(default=None, repr=False)   # the engine that ran it (engine_info)
    store: PixelStore | None = field(default=None, repr=False)   # where the per-pixel arrays live (on disk)

    # ---- in memory
    @property
    def grid(self):
        return self.inputs.rasters.grid

    @property
    def transform(self):
        """The affine transform of the grid (north-up, row 0 north; :mod:`affine`)."""
        return grid_transform(self.grid)

    @property
    def crs(self) -> str:
        return self.grid.crs

    def raster_names(self) -> list[str]:
        """Names :meth:`raster` knows."""
        names = [f"{lid}_{name}" for lid in self.coverage for name, *_ in O.COVERAGE_RASTERS]
        if self.busy is not None:
            names += [f"{lid}_rate_busy_bps" for lid in self.busy.layers]
            names += [f"{ran}_rate_busy_bps" for ran in self.busy.rate_by_ran]
        if self.speed_px is not None:
            names.append("speedtest_mean_bps")
        return names

    def raster(self, name: str) -> np.ndarray:
        """One raster as a 2-D float32 array on the grid (NaN off land), e.g. ``"ctcu-n78_rsrp_dbm"``."""
        values = self._land_values(name)
        r = self.inputs.rasters
        return scatter_to_raster(r.grid, r.land_flat, np.asarray(values, np.float32)).astype(np.float32, copy=False)

    def _land_values(self, name: str):
        """The per-land-pixel values of raster ``name``."""
        if name == "speedtest_mean_bps" and self.speed_px is not None:
            return self.speed_px
        if self.busy is not None:
            for lid, bh in self.busy.layers.items():
                if name == f"{lid}_rate_busy_bps":
                    return bh.throughput_indoor_bps
            for ran, arr in self.busy.rate_by_ran.items():
                if name == f"{ran}_rate_busy_bps":
                    return arr
        for lid, cov in self.coverage.items():
            field_name = name[len(lid) + 1:]
            if name.startswith(f"{lid}_") and any(field_name == f for f, *_ in O.COVERAGE_RASTERS):
                return getattr(cov, field_name)
        raise KeyError(f"no raster {name!r}; expected one of {', '.join(self.raster_names())}")

    @property
    def indicators(self):
        """Indicators per district (rows: district codes) as a DataFrame."""
        import pandas as pd

        a = self.assessment
        return pd.DataFrame({k: np.asarray(v, float) for k, v in a.by_district.items()},
                            index=pd.Index(self.inputs.codes, name="code"))

    @property
    def citywide(self) -> dict:
        """Citywide value of every indicator."""
        return {k: float(v) for k, v in self.assessment.citywide.items()}

    @property
    def criteria(self):
        """The criteria table (:func:`sim.criteria.evaluate`) as a DataFrame."""
        return self.assessment.table

    @property
    def sites(self):
        """The sector-carrier table as a DataFrame (one row per sector and carrier)."""
        import pandas as pd

        t = self.inputs.plan.table
        return pd.DataFrame({f.name: getattr(t, f.name) for f in dataclasses.fields(t)})

    @property
    def headline(self) -> str:
        return O.headline(self.scenario, self.assessment)

    # ---- files
    def write(self, folder, *, force: bool = False, progress=None) -> RunResult:
        """Write the run folder (``folder``, made if missing; an existing one needs ``force``)."""
        if progress is not None:
            self.timer.progress = progress
        run_dir = O.create_run_dir(self.scenario, folder, force)
        return write_run_folder(self, run_dir)


def _compute(sc: Scenario, inp: Inputs, timer: StageTimer, workers=None, engine=None) -> Simulation:
    """Coverage, busy hour, fibre and the assessment of a scenario's inputs (tiles on ``engine``, default a
    :class:`~sim.engine.LocalEngine` of ``workers`` or ``radio.workers``)."""
    prog = timer.progress
    rasters, districts, codes = inp.rasters, inp.districts, inp.codes
    sites = inp.plan.table
    busy, simpy_rows, day_rows = None, [], []
    if engine is None:
        engine = LocalEngine(run_workers(sc, workers))
    # one stage for coverage and busy hour: each layer's tiles and their interference terms stay on the
    # engine (spilled / on the workers) and the fixed point runs there tile by tile; the per-pixel arrays
    # go to the run's pixel store on disk, and every later stage reads them chunk by chunk
    shared = layer_inputs(sc, rasters, inp.sectors, BUSY_TOP_M if sc.traffic is not None else 0)
    store = PixelStore(rasters.n_land)
    with engine.stage(shared) as st:
        coverage = compute_layers(sc, rasters, inp.sectors, timer, workers, stage=st, inputs=shared, store=store)
        if sc.traffic is not None:
            with timer.stage("busy hour"):
                busy = solve_busy_hour(sc, rasters, coverage, sites, A.mobile_share_by_ran(sc), codes, prog,
                                       stage=st, store=store)
    coverage = {lid: dataclasses.replace(c, interference=None) for lid, c in coverage.items()}
    if busy is not None:
        with timer.stage("simpy check"):
            simpy_rows, day_rows = simpy_check(sc, busy.layers, store)
    a = A.Assessment()
    with timer.stage("assessing the networks"), ThreadPoolExecutor(1, thread_name_prefix="gigacity-speed") as pool:
        # the speed test reads its own arrays of the store: its passes (numpy, mostly without the GIL) run beside
        # the radio indicators' on the second core; its figures are put after the radio ones, in the same order
        speed = None if busy is None else pool.submit(A.speed_test_sums, sc, rasters, store, len(codes))
        A.assess_radio(sc, rasters, store, len(codes), a, busy=busy is not None)
        speed_px = None if speed is None else store.array(A.put_speed_test(a, speed.result()))
    A.assess_sites(sc, sites, districts, a)
    A.assess_key_places(sc, rasters, codes, a)
    fibre_px, pon_rows = None, []
    if sc.broadband is not None:
        with timer.stage("fibre to the home"):
            fibre, fibre_px = A.assess_fibre(sc, districts, rasters, a, store)
        with timer.stage("PON busy hour"):
            pon_rows = A.assess_pon(sc, fibre, a)
    A.assess_criteria(sc, codes, a, districts["population"].to_numpy(float))
    return Simulation(scenario=sc, inputs=inp, coverage=coverage, busy=busy, simpy_rows=simpy_rows,
                      day_rows=day_rows, pon_rows=pon_rows, fibre_px=fibre_px, assessment=a, timer=timer,
                      speed_px=speed_px, compute=engine_info(engine), store=store)


def write_run_folder(sim: Simulation, run_dir: Path) -> RunResult:
    """Every file of the run folder from a :class:`Simulation` (stage "writing outputs", counted in steps)."""
    sc, inp, a, timer = sim.scenario, sim.inputs, sim.assessment, sim.timer
    title = f"{sc.scenario.name} ({sc.scenario.year})"
    n_steps = 4 + (1 if sc.output.maps else 0)
    step = [0]

    def done():
        step[0] += 1
        timer.progress("writing outputs", step[0], n_steps)

    # both cores (O.MAP_PROCESSES): the tables (cells.csv and its Parquet copy too) and GeoPackages written by a forked
    # process while this one streams the GeoTIFFs (each finished as a COG by writer threads while the next is
    # streamed), then the maps drawn by both (frames drawn once; every map after the first raster map, whose label
    # layout the district maps reuse)
    with timer.stage("writing outputs"), O.writing_outputs():
        timer.progress("writing outputs", 0, n_steps)
        sim.busy.finish()   # the cells table's thread, here: the forked writer of cells.csv has no copy of it
        with O.alongside([lambda: O.write_busy_tables(run_dir, sim.busy, sim.simpy_rows, sim.day_rows, sim.pon_rows),
                          lambda: O.write_tables(run_dir, inp.grid_rows, a, inp.plan.table, inp.districts)], run_dir):
            done()
            jobs = O.stream_pixel_outputs(sc, run_dir, inp.rasters, inp.districts, inp.sectors, sim.store,
                                          sim.busy, sim.fibre_px, sim.speed_px is not None, a, title)
            done()
            if sc.output.maps:
                jobs += O.overview_map_jobs(sc, run_dir, inp.districts, inp.plan.table, a.table, title, a)
            images = O.report_order(O.draw_maps(sc, jobs, run_dir))
            done()
        if sc.output.maps:
            done()
    summary = O.build_summary(sc, inp.rasters, inp.grid_rows, a, inp.plan, sim.busy, sim.simpy_rows,
                              sim.day_rows, sim.pon_rows, timer.timings_s, region_info(sc, inp.districts))
    summary["inputs"]["link"] = link_summary(sc)
    if sim.compute is not None:
        summary["compute"] = sim.compute
    O.write_summary_and_reports(run_dir, summary, a, images)
    done()
    return RunResult(run_dir=run_dir, headline=O.headline(sc, a), summary=summary)


def simulate(sc: Scenario, *, workers=None, progress=None, engine=None) -> Simulation:
    """A scenario end to end in memory (no files); :meth:`Simulation.write` writes its run folder.

    ``engine``: an engine to run the tiles on (kept open, e.g. one Dask cluster for many
    scenarios); default the scenario's ``[compute]`` engine, opened and closed here."""
    timer = StageTimer(progress)
    inp = read_inputs(sc, timer)
    if engine is not None:
        return _compute(sc, inp, timer, workers, engine)
    with open_engine(sc, workers, timer) as eng:
        return _compute(sc, inp, timer, workers, eng)


def run_scenario(sc: Scenario, *, out_dir=None, force: bool = False, workers=None, progress=None,
                 engine=None) -> RunResult:
    """Run a scenario end to end and write its run folder; returns the folder and headline."""
    O.check_run_dir(sc, out_dir, force)   # an existing --out is refused before any work
    timer = StageTimer(progress or noop_progress)
    inp = read_inputs(sc, timer)
    run_dir = None
    try:
        with contextlib.ExitStack() as stack:
            if engine is None:   # before the run folder: a scheduler that does not answer leaves no folder
                engine = stack.enter_context(open_engine(sc, workers, timer))
            # the run folder is made once the inputs have been read: a bad site file leaves no folder behind
            run_dir = O.create_run_dir(sc, out_dir, force)
            sim = _compute(sc, inp, timer, workers, engine)
        # the engine (a LocalCluster's workers) is closed before the outputs are written
        return write_run_folder(sim, run_dir)
    except BaseException:
        if run_dir is not None:
            O.abandon_run_dir(run_dir)   # a run that wrote nothing leaves no folder behind
        raise
