"""The busy hour of a run: 5G load <-> interference per layer, simpy checks, PON ports.

:func:`solve_busy_hour` solves every layer's load <-> interference fixed point as a map-reduce
over tiles on an engine stage (:class:`sim.busyload.TileLoad`, :func:`sim.traffic.fixed_point_cells`)
and returns a :class:`BusyHour`;
:func:`simpy_check` simulates sampled cells event by event against the analytic result;
:func:`pon_check` gives the PON ports' busy hour and the fibre tier indicator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import busyload
from .. import cellsim as C
from .. import traffic as T
from ..broadband import GIGABIT_TIER_BPS, pon_busy_hour_table
from ..config import Scenario
from ..engine import LocalEngine
from ..indicators import ratio_by_district
from ..pixelstore import PixelStore, bincount_onto
from ..results import TileTerms
from .inputs import fiveg_user_share_by_district, layer_radio
from .stages import noop_progress

__all__ = ["MAX_SIMPY_FLOWS", "BUSY_DAMPING", "PON_HORIZON_S", "BusyHour", "solve_busy_hour", "simpy_check",
           "pon_check", "agreement_text", "busy_hour_summary"]

BUSY_DAMPING = 1.0
"""Step of the load fixed point: the plain iteration. The rates of a layer make the load map
monotone (more load never lowers another load), so the iterates from zero load rise to the
least fixed point without cycling (:func:`sim.busyload.rates_for_load`); a damped step (0.5)
took 41 iterations instead of 17 on the Shanghai 2021 n41 layer (CQI steps cascade one per
iteration)."""

log = logging.getLogger("gigacity.busyhour")

PON_HORIZON_S = 3600.0
"""Simulated seconds of a PON port's busy hour (one hour: a port sees few flows, so the whole hour)."""



@dataclass
class BusyHour:
    """The solved 5G busy hour of every layer of a run.

    Attributes
    ----------
    layers : dict layer id -> :class:`sim.traffic.BusyHourLayer`
    rate_by_ran : dict RAN id -> float32 [n_land]
        Each radio network's indoor busy-hour flow throughput per land pixel: that of the
        layer carrying the pixel's users (0 bit/s on land no layer serves).
    cells : pandas.DataFrame
        The table of ``cells.csv``: one row per cell (sector-carrier) of every layer (a property:
        the per-cell flow statistics are finished in a thread after :func:`solve_busy_hour` returns,
        and reading it waits for them; ``cells_future`` holds the table or its future). A process forked
        before the table is finished cannot wait for it: call :meth:`finish` first.
    layer_summary : dict layer id -> dict
        Per-layer fixed-point figures of ``summary.json`` (cells, iterations, loads).
    outdoor_rate_by_ran : dict RAN id -> float32 [n_land]
        Each network's outdoor busy-hour flow throughput per land pixel on the users' layer
        (what a speed test measures); NaN where no layer serves.
    """

    layers: dict
    rate_by_ran: dict
    cells_future: object = field(repr=False)     # the cells table, or a concurrent.futures.Future of it
    layer_summary: dict
    outdoor_rate_by_ran: dict = field(default_factory=dict, repr=False)
    store: object = field(default=None, repr=False)   # the PixelStore the per-pixel arrays map
    pid: int = field(default_factory=os.getpid, repr=False)    # the process whose thread builds the cells table

    @property
    def cells(self) -> pd.DataFrame:
        if isinstance(self.cells_future, Future):
            if os.getpid() != self.pid and not self.cells_future.done():
                # a forked process has no copy of the thread: waiting here would never end
                raise RuntimeError("BusyHour.cells read in a process forked before the cells table was finished; "
                                   "call BusyHour.finish() before forking")
            self.cells_future = self.cells_future.result()
        return self.cells_future

    def finish(self) -> None:
        """Wait for what threads of this process still build (the cells table): before a fork, whose child has
        no copy of the threads."""
        self.cells  # noqa: B018 - read for its wait


def _layer_summary(n_cells: int, fp) -> dict:
    return {"cells": int(n_cells), "iterations": int(fp.iterations),
            "max_change": float(fp.max_change), "converged": bool(fp.converged),
            "saturated_cells": int(fp.saturated.sum()),
            "mean_load": float(fp.load.mean()) if n_cells else 0.0,
            "max_load": float(fp.implied_load.max()) if n_cells else 0.0}


def _cell_table(lid: str, t, bh, spread: dict, codes) -> pd.DataFrame:
    """The rows of ``cells.csv`` for one layer's cells (``t``: the layer's site table), built from columns."""
    fp = bh.fixed_point
    code_of = np.append(np.asarray(codes, dtype=object), "")  # district index -1 (outside): ""
    columns = {"layer": np.full(t.n_sectors, lid, dtype=object), "sector": np.arange(t.n_sectors),
               "site": np.asarray(t.site_id, dtype=np.int64), "sector_of_site": np.asarray(t.sector, dtype=np.int64),
               "district": code_of[np.asarray(t.district_idx)],
               "load": fp.implied_load, "load_capped": fp.load, "saturated": np.asarray(fp.saturated, dtype=bool),
               "served_users": bh.cell_users, "arrival_rate_per_s": bh.cell_arrival_rate_per_s,
               "mean_throughput_bps": bh.cell_throughput_bps, **spread}
    return pd.DataFrame({k: (np.asarray(v, dtype=np.float64) if np.asarray(v).dtype.kind == "f" else v)
                         for k, v in columns.items()})


def solve_busy_hour(sc: Scenario, rasters, coverage, sites, ran_share: dict, codes, progress=None, *,
                    engine=None, stage=None, store=None) -> BusyHour:
    """The 5G busy hour of every layer: demand, load <-> interference fixed point, throughput.

    ``coverage``: each layer's :class:`~sim.results.CoverageLayers` with top-M interference
    terms; ``ran_share``: each radio network's mobile share (its operators' together);
    ``codes``: the district codes (for ``cells.csv`` and the per-district 5G user share).

    Each layer's fixed point is a map-reduce over tiles (:class:`sim.busyload.TileLoad`):
    on ``stage``, the open engine stage the coverage kept its tiles on
    (:func:`sim.coverage.coverage_on_stage`), or, for whole-grid terms, on a stage of
    ``engine`` (default a :class:`~sim.engine.LocalEngine` of ``radio.workers``) over tiles of
    ``radio.block_size`` pixels. Loads, rates and figures do not depend on the tiles or workers.

    Per-pixel results stream through ``store`` (a :class:`~sim.pixelstore.PixelStore`; the one
    the coverage wrote its layers to, or a new one): the demand, the rates of the last pass and
    the throughputs are written there tile by tile and reduced chunk by chunk, never held whole;
    the result's per-pixel arrays map the store's files.
    """
    with contextlib.ExitStack() as stack:
        if stage is None:
            eng = engine if engine is not None else LocalEngine(sc.radio.workers or None)
            stage = stack.enter_context(eng.stage({}))
        if store is None:
            store = PixelStore(rasters.n_land)
        for lid, cov in coverage.items():
            for name in ("rate_indoor_bps", "best_sector"):
                if f"{lid}/{name}" not in store:
                    store.write(f"{lid}/{name}", 0, getattr(cov, name))
        return _solve(sc, rasters, coverage, sites, ran_share, codes, progress or noop_progress, stage, store)


def _demand(sc: Scenario, rasters, store, ran: str, lids: list, share: float, fiveg_d) -> None:
    """Busy-hour users of network ``ran`` per pixel on the layer carrying them (``"<layer>/users"``, float64,
    0 elsewhere), their flow arrival rate (``"<layer>/arrival_rate_per_s"``, float64) and the index of that layer
    (``"<ran>/layer"``, int8, -1: none), chunk by chunk."""
    tr = sc.traffic
    for lid in lids:
        store.create(f"{lid}/users", np.float64)
        store.create(f"{lid}/arrival_rate_per_s", np.float64)
    store.create(f"{ran}/layer", np.int8)
    for a, b in store.chunks():
        users = T.users_per_pixel(rasters.population_at(a, b), share, fiveg_d[rasters.district_at(a, b)],
                                  tr.busy_hour_active_share, tr.mobile_penetration)
        masks = T.users_layer_masks([store.read(f"{lid}/rate_indoor_bps", a, b) for lid in lids])
        which = np.full(b - a, -1, dtype=np.int8)
        for i, (lid, m) in enumerate(zip(lids, masks)):
            u = np.where(m, users, 0.0)
            store.write(f"{lid}/users", a, u)
            store.write(f"{lid}/arrival_rate_per_s", a, T.flow_arrival_rate_per_s(u, tr.flows_per_active_user_per_h))
            which[m] = i
        store.write(f"{ran}/layer", a, which)


def _layer_busy_hour(sc: Scenario, stage, cov, radio, lid: str, store, n_cells: int):
    """One layer's fixed point over tiles, the last pass of its rates (to ``store``) and its figures: its
    :class:`sim.traffic.BusyHourLayer` and its pixels with users."""
    tr = sc.traffic
    es = tr.mean_flow_mb * 8e6
    params = busyload.layer_params(radio, sc.radio.default_load, sc.radio.indoor_share, es,
                                   cov.interference.noise_mw)
    sources, blocks = busyload.tile_sources(cov, sc.radio.block_size)
    lams = [store.read(f"{lid}/arrival_rate_per_s", a, b) for a, b in blocks]
    tl = busyload.TileLoad(stage, sources, blocks, lams, n_cells, params)
    del lams
    if isinstance(cov.interference, TileTerms):
        stage.release(cov.interference.kept)     # the states hold what the iterations need of the tiles

    def offered_load(load):
        rho = tl.offered_load(load)
        tiles, n_tiles, pix, n_act = tl.passes[-1]
        log.debug("busy hour %s: iteration %d, %d of %d tiles, %.1f %% of pixels", lid, len(tl.passes), tiles,
                  n_tiles, 100.0 * pix / max(n_act, 1))
        return rho

    fp = T.fixed_point_cells(offered_load, n_cells, tol=tr.fixed_point_tol, max_iter=tr.fixed_point_max_iter,
                             damping=BUSY_DAMPING)
    out = _LayerOutputs(sc, fp, lid, store, n_cells)
    for start, r_in, r_out in tl.iter_rates(fp.load):
        out.add(start, r_in, r_out)      # while the workers compute the next tiles' rates
    stage.release(tl.states)
    return out.result(), out.n_with_demand


class _LayerOutputs:
    """A layer's per-pixel busy-hour arrays and per-cell sums at the fixed point ``fp`` (loads alone,
    :func:`sim.traffic.fixed_point_cells`), built tile by tile as the last pass's rates arrive
    (:meth:`add`, any order): the per-pixel arrays (elementwise, so the same values whatever the tiles) go to
    ``store``; the per-cell sums take the tiles in land order (the bits of whole-array sums,
    :func:`sim.pixelstore.bincount_onto`); :meth:`result` gives the :class:`sim.traffic.BusyHourLayer`."""

    NAMES = ("peak_rate_bps", "throughput_bps", "throughput_indoor_bps", "throughput_outdoor_bps")

    def __init__(self, sc: Scenario, fp, lid: str, store, n: int):
        self.sc, self.fp, self.lid, self.store, self.n = sc, fp, lid, store, int(n)
        self.cell_lam, self.cell_users = np.zeros(self.n), np.zeros(self.n)
        self.n_with_demand = 0          # pixels with users (for the flow statistics' parts)
        self._next, self._ready = 0, {}   # the first pixel not yet summed; tiles waiting for their turn
        for name in ("rate_busy_indoor_bps", "rate_busy_outdoor_bps", *self.NAMES):
            store.create(f"{lid}/{name}", np.float32)

    def add(self, start: int, r_in, r_out) -> None:
        """The rates of land pixels ``start:start + len(r_in)`` (a tile of the last pass)."""
        lid, store, rho, s = self.lid, self.store, self.fp.implied_load, float(self.sc.radio.indoor_share)
        b = start + r_in.size
        store.write(f"{lid}/rate_busy_indoor_bps", start, r_in)
        store.write(f"{lid}/rate_busy_outdoor_bps", start, r_out)
        serving = store.read(f"{lid}/best_sector", start, b)
        users = store.read(f"{lid}/users", start, b)
        lam = store.read(f"{lid}/arrival_rate_per_s", start, b)
        self.n_with_demand += int(np.count_nonzero(users > 0))
        has = serving >= 0
        self._ready[start] = (b, serving[has], T.served_arrival_rate_per_s(lam, r_in, r_out, s)[has], users[has])
        peak = T.mixed_peak_rate_bps(r_in, r_out, s).astype(np.float32)
        for name, v in zip(self.NAMES, (peak, T.busy_hour_throughput_bps(peak, serving, rho),
                                        T.busy_hour_throughput_bps(r_in, serving, rho),
                                        T.busy_hour_throughput_bps(r_out, serving, rho))):
            store.write(f"{lid}/{name}", start, v)
        run = []
        while self._next in self._ready:
            b, *parts = self._ready.pop(self._next)
            run.append(parts)
            self._next = b
        if run:
            cell = np.concatenate([p[0] for p in run])
            self.cell_lam = bincount_onto(self.cell_lam, cell, np.concatenate([p[1] for p in run]))
            self.cell_users = bincount_onto(self.cell_users, cell, np.concatenate([p[2] for p in run]))

    def result(self):
        """The layer's :class:`sim.traffic.BusyHourLayer` (every pixel added); its per-pixel arrays map the store."""
        lid, store, fp, tr = self.lid, self.store, self.fp, self.sc.traffic
        if self._ready or self._next != store.n_land:
            raise RuntimeError(f"busy hour {lid}: the last pass's rates cover pixels 0..{self._next} of "
                               f"{store.n_land}")
        cell_lam, cell_users, rho = self.cell_lam, self.cell_users, fp.implied_load
        full = T.FixedPointResult(load=fp.load, implied_load=fp.implied_load, saturated=fp.saturated,
                                  peak_rate_bps=store.array(f"{lid}/peak_rate_bps"),
                                  serving_cell=store.array(f"{lid}/best_sector"),
                                  throughput_bps=store.array(f"{lid}/throughput_bps"), iterations=fp.iterations,
                                  max_change=fp.max_change, converged=fp.converged, change_history=fp.change_history,
                                  mean_load_history=fp.mean_load_history)
        return T.BusyHourLayer(
            fixed_point=full, arrival_rate_per_s=store.array(f"{lid}/arrival_rate_per_s"),
            rate_indoor_bps=store.array(f"{lid}/rate_busy_indoor_bps"),
            rate_outdoor_bps=store.array(f"{lid}/rate_busy_outdoor_bps"),
            throughput_indoor_bps=store.array(f"{lid}/throughput_indoor_bps"),
            throughput_outdoor_bps=store.array(f"{lid}/throughput_outdoor_bps"),
            cell_users=cell_users, cell_arrival_rate_per_s=cell_lam,
            cell_throughput_bps=T.cell_throughput_from_sums_bps(cell_lam, rho, tr.mean_flow_mb * 8e6))


FLOW_STATS_BUDGET_BYTES = 512 * 2 ** 20
"""Most bytes of served flow classes :func:`_cell_flow_stats` gathers at once (about 40 bytes each, sorted):
more are taken in parts of whole cells (a cell's figures depend only on its own classes)."""


def _cell_flow_stats(sc: Scenario, lid: str, store, n_cells: int, n_served: int | None = None) -> dict:
    """:func:`sim.traffic.cell_flow_stats` of a layer from ``store``: the served pixels with demand gathered
    chunk by chunk in land order (the same classes in the same order, so the same bits), in parts of cells.
    ``n_served``: the layer's pixels with users, if known (else counted here)."""
    if n_served is None:
        n_served = sum(int(np.count_nonzero(store.read(f"{lid}/users", a, b) > 0)) for a, b in store.chunks())
    parts = max(1, -(-2 * n_served * 40 // FLOW_STATS_BUDGET_BYTES))
    out = None
    for p in range(parts):
        cols = {k: [] for k in ("cell", "lam", "in", "out")}
        for a, b in store.chunks():
            serving = store.read(f"{lid}/best_sector", a, b)
            lam = store.read(f"{lid}/arrival_rate_per_s", a, b)
            keep = (serving >= 0) & (lam > 0) & (serving % parts == p)
            cols["cell"].append(serving[keep])
            cols["lam"].append(lam[keep])
            cols["in"].append(store.read(f"{lid}/throughput_indoor_bps", a, b)[keep])
            cols["out"].append(store.read(f"{lid}/throughput_outdoor_bps", a, b)[keep])
        got = T.cell_flow_stats(*(np.concatenate(cols[k]) for k in ("cell", "lam", "in", "out")),
                                sc.radio.indoor_share, n_cells,
                                (sc.criteria.busy_rate_bps, sc.criteria.gigabit_rate_bps))
        mine = np.arange(n_cells) % parts == p
        out = got if out is None else {k: np.where(mine, got[k], out[k]) for k in out}
    return out


def _by_ran(store, ran: str, lids: list) -> None:
    """Each network's busy-hour rasters: indoor throughput on the users' layer (0 where no layer serves) and
    the outdoor one (NaN there), ``"<ran>/rate_busy_bps"`` and ``"<ran>/rate_busy_outdoor_bps"``."""
    for a, b in store.chunks():
        which = store.read(f"{ran}/layer", a, b)
        rate = np.zeros(b - a, dtype=np.float32)
        out = np.full(b - a, np.nan, dtype=np.float32)
        for i, lid in enumerate(lids):
            m = which == i
            rate[m] = store.read(f"{lid}/throughput_indoor_bps", a, b)[m]
            out[m] = store.read(f"{lid}/throughput_outdoor_bps", a, b)[m]
        store.write(f"{ran}/rate_busy_bps", a, rate)
        store.write(f"{ran}/rate_busy_outdoor_bps", a, out)


def _solve(sc: Scenario, rasters, coverage, sites, ran_share: dict, codes, prog, stage, store) -> BusyHour:
    layers, rate_by_ran, summ, out_by_ran = {}, {}, {}, {}
    # each district's 5G user share ([district_inputs], else the citywide input)
    fiveg_d = fiveg_user_share_by_district(sc, codes)
    # a layer's flow statistics (sorts in this process, numpy releases the GIL), the demand of the networks after
    # the first and each network's rasters run in threads while a layer's fixed point waits on the engine's
    # workers: the same computations, the tables built in layer order
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gigacity-flow-stats")
    by_ran_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gigacity-by-ran")
    pending, by_ran = [], []
    ran_lids = {ran: [(lid, carrier) for lid, op, carrier in sc.layers() if op.id == ran] for ran in sc.ran_ids}
    try:
        args = [(sc, rasters, store, ran, [lid for lid, _ in lids], ran_share[ran], fiveg_d)
                for ran, lids in ran_lids.items()]
        later = [by_ran_pool.submit(_demand, *a) for a in args[1:]]     # while the first network's runs here
        if args:
            _demand(*args[0])
        for k, (ran, lids) in enumerate(ran_lids.items()):
            if k:
                later[k - 1].result()
            for lid, carrier in lids:
                prog(f"busy hour {lid}")
                t = sites.for_layer(lid)
                bh, n_served = _layer_busy_hour(sc, stage, coverage[lid], layer_radio(sc, lid, carrier), lid, store,
                                                t.n_sectors)
                layers[lid] = bh
                summ[lid] = _layer_summary(t.n_sectors, bh.fixed_point)
                pending.append((lid, t, bh, pool.submit(_cell_flow_stats, sc, lid, store, t.n_sectors, n_served)))
            by_ran.append((ran, by_ran_pool.submit(_by_ran, store, ran, [lid for lid, _ in lids])))
        for ran, fut in by_ran:
            fut.result()
            rate_by_ran[ran] = store.array(f"{ran}/rate_busy_bps")
            out_by_ran[ran] = store.array(f"{ran}/rate_busy_outdoor_bps")
        # the last layer's flow statistics and the table finish in the thread while the run goes on (simpy
        # check, assessment): the table's future is queued after every layer's statistics (one thread, in order)
        table = pool.submit(_cells_table, pending, codes)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        by_ran_pool.shutdown(wait=True, cancel_futures=True)
    pool.shutdown(wait=False)
    return BusyHour(layers=layers, rate_by_ran=rate_by_ran, cells_future=table, layer_summary=summ,
                    outdoor_rate_by_ran=out_by_ran, store=store)


def _cells_table(pending, codes) -> pd.DataFrame:
    """The table of ``cells.csv`` from ``(layer id, site table, BusyHourLayer, future of its flow statistics)``
    of every layer, in layer order."""
    cells = [_cell_table(lid, t, bh, fut.result(), codes) for lid, t, bh, fut in pending]
    return pd.concat(cells, ignore_index=True) if cells else pd.DataFrame()


MAX_SIMPY_FLOWS = 1_000_000
"""Most flows one simpy replication of one cell simulates (about a minute of simpy time): a cell
whose arrival rate would make ``traffic.horizon_s`` longer is simulated over a shorter horizon
(with its 10 % warm-up) that holds this many flows. Shanghai's busiest cells see about 5 flows/s,
far below (3600 s x 5 = 18,000 flows)."""


def _bounded_horizon(kw: dict, arrivals_per_s: float) -> dict:
    """``kw`` with ``horizon_s`` (and ``warmup_s``) cut so that a replication holds at most
    :data:`MAX_SIMPY_FLOWS` flows."""
    if arrivals_per_s * kw["horizon_s"] <= MAX_SIMPY_FLOWS:
        return kw
    horizon = max(MAX_SIMPY_FLOWS / arrivals_per_s, 1e-3)
    return dict(kw, horizon_s=horizon, warmup_s=0.1 * horizon)


def _sampled_layers(layers: dict, owner, picks, store) -> dict:
    """The layers reduced to the pixels of the sampled cells (read chunk by chunk from ``store``, land order
    kept): what :func:`sim.traffic.cell_flow_classes` reads of them, without mapping whole arrays."""
    by_layer: dict = {}
    for i in picks:
        by_layer.setdefault(owner[i][0], set()).add(int(owner[i][1]))
    out = dict(layers)
    for lid, cells in by_layer.items():
        wanted = np.array(sorted(cells))
        cols = {k: [] for k in ("best_sector", "arrival_rate_per_s", "rate_busy_indoor_bps", "rate_busy_outdoor_bps")}
        for a, b in store.chunks():
            serving = store.read(f"{lid}/best_sector", a, b)
            keep = np.isin(serving, wanted)
            for k in cols:
                cols[k].append(serving[keep] if k == "best_sector" else store.read(f"{lid}/{k}", a, b)[keep])
        got = {k: np.concatenate(v) for k, v in cols.items()}
        bh = layers[lid]
        out[lid] = dataclasses.replace(
            bh, fixed_point=dataclasses.replace(bh.fixed_point, serving_cell=got["best_sector"]),
            arrival_rate_per_s=got["arrival_rate_per_s"], rate_indoor_bps=got["rate_busy_indoor_bps"],
            rate_outdoor_bps=got["rate_busy_outdoor_bps"])
    return out


def simpy_check(sc: Scenario, layers, store=None) -> tuple[list[dict], list[dict]]:
    """simpy against the analytic PS result for ``traffic.simpy_cells`` cells, and one cell's day.

    Cells: :func:`sim.cellsim.sample_cells` over all layers (evenly spaced ranks of load
    among cells with demand below saturation). Each runs :func:`sim.cellsim.simulate_cell`
    with the fixed point's rates, ``traffic.replications`` replications of
    ``traffic.horizon_s`` (ASSUMPTION: the first 10 % is warm-up); its ``E[S]/E[T]`` with the
    95 % CI is compared with :func:`sim.traffic.cell_throughput_bps`. The day: the median
    sampled cell over ``traffic.daily_profile`` (:func:`sim.cellsim.simulate_cell_day`).
    Streams: ``SeedSequence(seed).spawn(3)[1]`` for the cells, ``[2]`` for the day. With ``store`` (the
    :class:`~sim.pixelstore.PixelStore` of the layers) only the sampled cells' pixels are read.
    """
    tr = sc.traffic
    lids = list(layers)
    if not lids or tr.simpy_cells == 0:
        return [], []
    load = np.concatenate([layers[lid].fixed_point.implied_load for lid in lids])
    lam = np.concatenate([layers[lid].cell_arrival_rate_per_s for lid in lids])
    owner = [(lid, c) for lid in lids for c in range(layers[lid].fixed_point.load.size)]
    picks = C.sample_cells(load, lam, int(tr.simpy_cells))
    if store is not None:
        layers = _sampled_layers(layers, owner, picks, store)
    es = tr.mean_flow_mb * 8e6
    kw = dict(horizon_s=tr.horizon_s, warmup_s=0.1 * tr.horizon_s, n_replications=tr.replications,
              distribution=tr.size_distribution, sigma=tr.lognormal_sigma, shape=tr.pareto_shape)
    streams = np.random.SeedSequence(sc.scenario.seed).spawn(3)
    cell_seeds = streams[1].spawn(max(len(picks), 1))
    rows, classes = [], []
    for k, i in enumerate(picks):
        lid, c = owner[i][0], int(owner[i][1])
        bh = layers[lid]
        peak, lam_c = T.cell_flow_classes(bh, c, sc.radio.indoor_share)
        st = C.simulate_cell(cell_seeds[k], peak, lam_c, es, **_bounded_horizon(kw, float(np.sum(lam_c))))
        analytic = T.cell_throughput_bps(peak, lam_c, bh.fixed_point.implied_load[c])
        ci = st.throughput_ratio_bps
        rows.append({"layer": lid, "sector": c, "load": st.load, "analytic_bps": analytic,
                     "simpy_bps": ci.mean, "ci_half_width_bps": ci.half_width,
                     "relative_difference": float(C.relative_error(ci.mean, analytic)),
                     "analytic_in_ci": bool(np.isfinite(ci.half_width) and ci.low <= analytic <= ci.high),
                     "p5_bps": st.p5_throughput_bps.mean, "p50_bps": st.p50_throughput_bps.mean,
                     "share_ge_100mbps": st.share_ge_100mbps.mean, "share_ge_1gbps": st.share_ge_1gbps.mean,
                     "flows": st.n_flows})
        classes.append((peak, lam_c))
    day = []
    if rows:
        mid = len(rows) // 2
        peak, lam_c = classes[mid]
        # each hour's rate is the busy hour's times w_h / max(w) <= 1: the busy hour bounds the flows
        ds = C.simulate_cell_day(streams[2], peak, lam_c, es, tr.daily_profile,
                                 **_bounded_horizon(kw, float(np.sum(lam_c))))
        for h in range(C.HOURS_PER_DAY):
            day.append({"layer": rows[mid]["layer"], "sector": rows[mid]["sector"], "hour": h,
                        "load": float(ds.load[h]), "throughput_bps": float(ds.throughput_ratio_bps[h]),
                        "p5_bps": float(ds.p5_throughput_bps[h]), "share_ge_100mbps": float(ds.share_ge_100mbps[h])})
    return rows, day


def pon_check(sc: Scenario, fibre, n_replications: int, seed):
    """PON ports in the busy hour for the configured GPON and 10G-PON splits, and the indicator.

    :func:`sim.broadband.pon_busy_hour_table` for GPON and ``broadband.xgspon_kind`` at
    ``gpon_split`` and ``xgspon_split`` (each technology at its own split), one busy hour
    (:data:`PON_HORIZON_S`). GPON ports carry no gigabit tier: their gigabit shares move to
    the highest sub-gigabit tier, as :func:`sim.broadband.district_fibre` does. Returns
    ``(rows, fibre_tier_met_busy_pct by district, citywide)``: subscribers of each
    technology receive their tier with that technology's share of flows that do.
    """
    bb = sc.broadband
    tiers = np.asarray(bb.tier_mbps) * 1e6
    mix = np.asarray(bb.tier_mix, dtype=np.float64)
    gig = tiers >= GIGABIT_TIER_BPS
    gpon_mix = mix.copy()
    if gig.any() and (~gig).any():
        gpon_mix[np.flatnonzero(~gig).max()] += mix[gig].sum()
        gpon_mix[gig] = 0.0
    tr = sc.traffic
    kw = dict(active_share=bb.busy_hour_active_share, flows_per_active_sub_per_h=bb.flows_per_active_sub_per_h,
              mean_flow_bits=bb.mean_flow_mb * 8e6, horizon_s=PON_HORIZON_S, fill_factor=bb.fill_factor,
              n_replications=n_replications)
    if tr is not None:
        kw.update(distribution=tr.size_distribution, sigma=tr.lognormal_sigma, shape=tr.pareto_shape)
    ss = (seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)).spawn(2)
    gpon = pon_busy_hour_table(ss[0], ["gpon"], [bb.gpon_split], tiers, gpon_mix, **kw)[0]
    teng = pon_busy_hour_table(ss[1], [bb.xgspon_kind], [bb.xgspon_split], tiers, mix, **kw)[0]
    rows = []
    for r in (gpon, teng):
        rows.append({"technology": r.technology, "split": r.split, "subscribers_per_port": r.n_subscribers,
                     "capacity_bps": r.capacity_bps, "load": r.offered_load, "overloaded": r.overloaded,
                     "share_at_tier": r.share_at_tier.mean, "share_at_tier_ci": r.share_at_tier.half_width,
                     "gigabit_share_ge_1gbps": r.share_gigabit_ge_1gbps.mean,
                     "gigabit_share_ge_1gbps_ci": r.share_gigabit_ge_1gbps.half_width})
    met = fibre.subscribers_gpon * gpon.share_at_tier.mean + fibre.subscribers_ten_g * teng.share_at_tier.mean
    by_d, city = ratio_by_district(met, fibre.subscribers, 100.0)
    return rows, by_d, city


def agreement_text(simpy_rows) -> str:
    """One sentence: how well simpy agrees with the analytic PS throughput of the sampled cells."""
    rows = [r for r in simpy_rows if np.isfinite(r["relative_difference"])]
    if not rows:
        return "No cell was simulated event by event."
    rel = np.abs([r["relative_difference"] for r in rows]) * 100.0
    inside = sum(r["analytic_in_ci"] for r in rows)
    return (f"simpy agrees with the analytic processor-sharing throughput for {inside} of {len(rows)} cells "
            f"(analytic value inside the simpy 95 % confidence interval); relative difference median "
            f"{np.median(rel):.1f} %, largest {rel.max():.1f} %, for loads "
            f"{min(r['load'] for r in rows):.2f} to {max(r['load'] for r in rows):.2f}.")


def busy_hour_summary(busy: BusyHour | None, simpy_rows, day_rows, pon_rows) -> dict:
    """The ``busy_hour`` object of ``summary.json`` (schema: :mod:`sim.report.runfolder`)."""
    out = {"layers": {} if busy is None else busy.layer_summary, "simpy_cells": simpy_rows,
           "simpy_agreement": agreement_text(simpy_rows), "day": day_rows, "pon": pon_rows}
    if busy is not None:
        lay = busy.layer_summary.values()
        out["iterations"] = max((v["iterations"] for v in lay), default=0)
        out["max_change"] = max((v["max_change"] for v in lay), default=0.0)
        out["converged"] = all(v["converged"] for v in lay)
        out["saturated_cells"] = sum(v["saturated_cells"] for v in lay)
    return out
