"""Site planning to a coverage target: greedy additions from a candidate lattice.

Pure: arrays in, arrays out, no file I/O. :func:`sim.app.plan.plan_scenario` composes it with the
grid, the existing sites and the writers (``gigacity plan``).

The planning model (one coverage layer)
---------------------------------------
Per land pixel the model keeps two linear sums over the carrier, float64 mW:

* ``best_mw`` - received power of the strongest sector (the serving sector),
* ``total_mw`` - received power of every sector,

from which, with the uniform cell load ``L`` (``radio.default_load``), the expected O2I
gain ``g = 10**(-L_O2I/10)`` (:func:`sim.kernel.o2i_loss_expected_db`) and the noise
``N = kT0 B NF`` (:func:`sim.kernel.noise_mw`), exactly as :func:`sim.kernel.coverage_block`
reduces them::

    RSRP_in = 10 log10(best) - 10 log10(12 N_PRB) - L_O2I                 (TS 38.215 5.1.1)
    SINR_in = g best / (g L (total - best) + N)

A pixel is **covered** when ``RSRP_in >= criteria.rsrp_min_dbm`` and ``SINR_in >=
sinr_min_db`` (the config's ``criteria.sinr_min_db``, raised by the caller to the SINR at
which the indoor rate reaches ``planning.min_rate_bps`` when that is set). Both tests are
made in the linear domain: ``best >= S_min`` and ``best >= gamma (L (total - best) + N / g)``.

Per-pair received power is the kernel's own (:func:`sim.kernel.sector_power_mw`: TR 38.901
Table 7.4.1-1 path loss with the layer's LOS handling, Table 7.3-1 sector pattern, transmit
power and gain); nothing of TR 38.901 is re-derived here.

Cut-off radius
--------------
A site adds power only to the pixels whose centre lies within its cut-off radius ``R_cut``:
the distance beyond which the site's received power, at any bearing, is below the noise
minus ``cutoff_db`` (default :data:`DEFAULT_CUTOFF_DB` = 10 dB). The bound is the site's
*envelope* ``env(d)``: the kernel's received power at boresight (horizontal attenuation 0,
the vertical pattern and path gain of the distance) on a log grid of distances (0.1 %
steps, 1 m to 200 km), made non-increasing (a running maximum from far to near) and raised
by 0.1 dB for the interpolation between nodes. One omitted site then changes a pixel's
SINR by at most ``10 log10(1 + L 10**(-cutoff_db/10))`` dB (0.21 dB at 10 dB, L = 0.5); the
full-city kernel has a truncation of its own (the K nearest sites). ``los_mode =
"sampled"`` is refused (the envelope would need the LOS path loss at every distance).

Incremental update and full recompute
-------------------------------------
Adding a site evaluates its sectors on the pixels of its disk only (a window of the land
raster): ``best = max(best, site max)``, ``total += site sum``, coverage re-tested there.
:meth:`PlanModel.full_state` recomputes the same model from scratch over every site (in the
given order) and re-tests every pixel; the tests hold the two identical (covered mask equal,
powers within rtol 1e-9).

Greedy with lazy evaluation
---------------------------
The gain of a candidate is the population of the pixels it would newly cover minus the
population of the pixels its interference would un-cover. It is evaluated exactly on a
filtered subset of its disk: the uncovered pixels where ``env(d) >= S_min`` (elsewhere
the candidate can neither serve nor raise any SINR), and the covered pixels whose
interference margin ``m = best / gamma - N / g - L (total - best)`` is below ``L env(d)``
(with a margin at least ``L P`` a covered pixel stays covered, whether or not the new site
becomes its server). Population outside the planned districts has weight 0.

Candidates are kept in a max-heap of their last exact gain (CELF, Leskovec et al. 2007):
the top is re-evaluated against the current state and accepted only when its fresh gain
is still the largest stored value. Interference makes the objective non-submodular - a
gain can *grow* after other additions (a pixel un-covered by a new site can be won back,
a new server can lift a pixel's SINR) - so a stale value is not an upper bound and lazy
greedy may differ from the exhaustive greedy. Handling: every accepted candidate was
re-evaluated exactly against the current state just before acceptance (its recorded gain
is the true change in covered population), and when the best fresh gain is not positive
every remaining candidate is re-evaluated before the search stops.

Candidates: a hexagonal lattice (:func:`sim.placement.hex_lattice`, the density placement's
lattice) at ``spacing_m`` over the land pixels of the planned districts, without the points
closer than ``min_distance_m`` to an existing site.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from . import kernel
from .coverage import site_index
from .errors import InputError
from .grid import CityRasters
from .placement import hex_lattice
from .results import LayerRadio, SectorArrays

__all__ = [
    "DEFAULT_CUTOFF_DB",
    "ENVELOPE_MARGIN_DB",
    "CELL_M",
    "PlanState",
    "PlanResult",
    "PlanModel",
    "candidate_lattice",
    "plan_sites",
]

DEFAULT_CUTOFF_DB = 10.0
"""A site's power is dropped where it is this far below the noise (see module docs)."""
ENVELOPE_MARGIN_DB = 0.1
"""Added to the sampled envelope of a site's power (interpolation between distance nodes)."""
CELL_M = 400.0
"""Side of the coarse cells that summarise pixels for the gain's culling, m (results do not depend on it)."""
_ENV_D_M = np.exp(np.arange(0.0, math.log(2.0e5) + 1e-3, 1e-3))   # 1 m .. 200 km, 0.1 % steps
_SOURCE = "planning"


@dataclass
class PlanState:
    """The planning model's per-pixel sums (flat over land pixels), and the coverage they give.

    ``best_mw``, ``total_mw`` float64 [n_land]: strongest sector and all sectors, mW over the
    carrier; ``covered`` bool [n_land]; ``sites`` the model's site indices applied, in order.
    ``cell_margin_mw`` and ``cell_uncovered`` summarise coarse cells of pixels for the gain's
    culling (see :meth:`PlanModel.gain`): the smallest margin of a counted covered pixel
    (inf: none) and whether a counted pixel is uncovered.
    """

    best_mw: np.ndarray
    total_mw: np.ndarray
    covered: np.ndarray
    sites: list
    cell_margin_mw: np.ndarray
    cell_uncovered: np.ndarray

    def copy(self) -> PlanState:
        return PlanState(self.best_mw.copy(), self.total_mw.copy(), self.covered.copy(), list(self.sites),
                         self.cell_margin_mw.copy(), self.cell_uncovered.copy())


@dataclass(frozen=True)
class PlanResult:
    """What :func:`plan_sites` added, in order.

    ``site_index`` int64 [n_added] (model site indices); ``gain_population`` float64
    [n_added] (exact gain when accepted); ``covered_population`` and ``covered_share``
    float64 [n_added + 1] (before any addition, then after each); ``reached`` whether
    ``covered_share[-1] >= target_share``; ``stop_reason`` one of ``"target"``,
    ``"budget"``, ``"no gain"``, ``"no candidates"``; ``n_evaluations`` exact gain
    evaluations made; ``state`` the final :class:`PlanState`.
    """

    site_index: np.ndarray
    gain_population: np.ndarray
    covered_population: np.ndarray
    covered_share: np.ndarray
    target_share: float
    budget: int
    reached: bool
    stop_reason: str
    n_candidates: int
    n_evaluations: int
    state: PlanState

    @property
    def n_added(self) -> int:
        return int(self.site_index.size)


class PlanModel:
    """The planning model of one layer over a grid: sites, envelopes, thresholds.

    Parameters
    ----------
    rasters : CityRasters
        Grid and land pixels.
    sectors : SectorArrays
        Every sector the plan may use: the existing sites and the candidates (3 sectors
        each, e.g. from :func:`sim.sites.build_site_table`). Sites are the distinct
        ``site_id`` in ascending order (``site_ids``); model methods take site indices.
    radio : LayerRadio
        The layer's radio parameters (``los_mode`` "expected" or "nlos").
    load : float
        Uniform cell load in [0, 1] weighting interference.
    rsrp_min_dbm, sinr_min_db : float
        Indoor coverage thresholds.
    weight : ndarray [n_land], optional
        Population counted per land pixel (default ``rasters.population_land``); 0 for the
        pixels outside the planned districts.
    cutoff_db : float
        Cut-off below the noise, dB (> 0).
    seed : int
        Seed of the kernel (unused unless LOS is sampled; kept for the kernel's signature).

    Raises
    ------
    InputError
        Sampled LOS, a load outside [0, 1], a non-positive cut-off, a weight of the wrong
        length, or sectors the kernel rejects (:func:`sim.kernel.validate_layer`).
    """

    def __init__(self, rasters: CityRasters, sectors: SectorArrays, radio: LayerRadio, *, load: float,
                 rsrp_min_dbm: float, sinr_min_db: float, weight=None, cutoff_db: float = DEFAULT_CUTOFF_DB,
                 seed: int = 0):
        if radio.los_mode == "sampled":
            raise InputError(_SOURCE, "radio.los_mode", "expected 'expected' or 'nlos' for planning, got 'sampled'")
        if not 0.0 <= float(load) <= 1.0:
            raise InputError(_SOURCE, "load", f"expected a cell load in [0, 1], got {load!r}")
        if not (math.isfinite(cutoff_db) and cutoff_db > 0.0):
            raise InputError(_SOURCE, "cutoff_db", f"expected a number of dB > 0, got {cutoff_db!r}")
        loads = np.full(sectors.n_sectors, float(load), dtype=np.float32)
        kernel.validate_layer(sectors, radio, loads)
        self.rasters = rasters
        self.grid = rasters.grid
        self.radio = radio
        self.load = float(kernel.activity(float(load), radio.min_load))  # interference weight of a cell
        self.seed = int(seed)
        self.sectors = sectors
        self.prepared = kernel.prepare_layer(sectors, radio, loads)
        idx = site_index(sectors, 1)
        self.site_ids = np.unique(sectors.site_id)
        self.site_x_m = idx.site_x_m
        self.site_y_m = idx.site_y_m
        self.site_sectors = idx.site_sectors                      # [n_sites, s_max], -1 padded
        # thresholds (linear, outdoor-referred)
        self.noise_mw = kernel.noise_mw(radio)
        self.o2i_db = kernel.o2i_loss_expected_db(radio)
        self.o2i_gain = 10.0 ** (-self.o2i_db / 10.0)
        self.offset_db = kernel.rsrp_offset_db(radio.bw_hz, radio.scs_khz)
        self.rsrp_min_dbm = float(rsrp_min_dbm)
        self.sinr_min_db = float(sinr_min_db)
        self.s_min_mw = 10.0 ** ((self.rsrp_min_dbm + self.offset_db + self.o2i_db) / 10.0)
        self.gamma = 10.0 ** (self.sinr_min_db / 10.0)
        self.cutoff_db = float(cutoff_db)
        self.cutoff_mw = self.noise_mw * 10.0 ** (-self.cutoff_db / 10.0)
        # pixels
        n_land = rasters.n_land
        w = rasters.population_land if weight is None else np.asarray(weight, dtype=np.float64)
        if w.shape != (n_land,) or not np.all(np.isfinite(w)) or (w.size and w.min() < 0):
            raise InputError(_SOURCE, "weight", f"expected {n_land} finite weights >= 0 (one per land pixel)")
        self.weight = np.ascontiguousarray(w, dtype=np.float64)
        self.weight_total = float(self.weight.sum())
        self.pix_x_m, self.pix_y_m = rasters.grid.centres_m(rasters.land_flat)
        self.pix_id = np.asarray(rasters.land_flat, dtype=np.int64)
        pos = np.full(rasters.grid.n_pixels, -1, dtype=np.int64)
        pos[rasters.land_flat] = np.arange(n_land)
        self.pos2d = pos.reshape(rasters.grid.shape)
        self._build_cells()
        # envelopes: one per distinct site class
        self._build_envelopes()

    # ----------------------------------------------------------------------- envelopes

    def _build_envelopes(self):
        sec = self.sectors
        has = self.site_sectors >= 0
        s_idx = np.where(has, self.site_sectors, 0)
        tilt = np.where(has, sec.tilt_deg[s_idx], np.nan)
        hv = np.where(has, sec.hpbw_v_deg[s_idx], np.nan)
        if not (np.all((tilt == tilt[:, :1]) | ~has) and np.all((hv == hv[:, :1]) | ~has)):
            raise InputError(_SOURCE, "sectors.tilt_deg",
                             "expected the sectors of a site to share tilt and vertical beamwidth for planning")
        # a site's class: scenario, height, its largest EIRP, tilt, vertical beamwidth
        eirp = sec.ptx_dbm.astype(np.float64) + sec.g_max_dbi.astype(np.float64)
        lead = self.site_sectors[:, 0]
        key = np.stack([sec.scenario[lead].astype(np.float64), sec.h_bs_m[lead].astype(np.float64),
                        np.where(has, eirp[s_idx], -np.inf).max(axis=1), tilt[:, 0], hv[:, 0]], axis=1)
        classes, self.site_class = np.unique(key, axis=0, return_inverse=True)
        self.site_class = self.site_class.ravel()
        n_c = classes.shape[0]
        g_max = np.zeros(n_c, np.float32)     # EIRP carried in ptx, so that the probe's g_max is 0
        probe = SectorArrays(site_id=np.arange(n_c), x_m=np.zeros(n_c), y_m=np.zeros(n_c),
                             h_bs_m=classes[:, 1], az_deg=np.zeros(n_c), tilt_deg=classes[:, 3],
                             ptx_dbm=classes[:, 2], g_max_dbi=g_max, hpbw_h_deg=np.full(n_c, 65.0),
                             hpbw_v_deg=classes[:, 4], scenario=classes[:, 0].astype(np.int8))
        lay = kernel.prepare_layer(probe, self.radio, np.full(n_c, self.load, np.float32))
        d = _ENV_D_M
        n_d = d.size
        env = np.empty((n_c, n_d))
        for c in range(n_c):
            cand = np.full((n_d, 1, 1), c, dtype=np.int32)
            p = kernel.sector_power_mw(np.zeros(n_d), d, np.arange(n_d), cand, lay, self.seed)[0, 0]
            env[c] = np.maximum.accumulate(p[::-1].astype(np.float64))[::-1]
        env *= 10.0 ** (ENVELOPE_MARGIN_DB / 10.0)
        self.env_mw = env                                     # [n_classes, n_d] non-increasing
        self.env_ln_d = np.log(d)
        self.r_cut_m = self._radius(env, self.cutoff_mw)      # [n_classes]
        self.r_reach_m = self._radius(env, self.s_min_mw)

    @staticmethod
    def _radius(env, level_mw):
        """Per class, the smallest node distance beyond which the envelope is below ``level_mw``."""
        below = env < level_mw
        first = np.where(below.any(axis=1), np.argmax(below, axis=1), env.shape[1] - 1)
        return _ENV_D_M[first]

    def envelope_mw(self, j: int, d2_m2) -> np.ndarray:
        """Upper bound of site ``j``'s received power at squared distances ``d2_m2`` (float64)."""
        ln_d = 0.5 * np.log(np.maximum(np.asarray(d2_m2, dtype=np.float64), 1.0))
        k = np.floor(ln_d / 1e-3).astype(np.intp)             # node at or below d (env non-increasing)
        np.clip(k, 0, _ENV_D_M.size - 1, out=k)
        return self.env_mw[self.site_class[j]].take(k)

    @property
    def n_sites(self) -> int:
        return int(self.site_ids.size)

    def site_radius_m(self, j: int) -> float:
        """Cut-off radius of site ``j``, m."""
        return float(self.r_cut_m[self.site_class[j]])

    # ----------------------------------------------------------------------- per site

    def _d2(self, j: int, idx) -> np.ndarray:
        """Squared distances from site ``j`` to the centres of land pixels ``idx``, m2."""
        dx = self.pix_x_m[idx] - float(self.site_x_m[j])
        dy = self.pix_y_m[idx] - float(self.site_y_m[j])
        return dy * dy + dx * dx

    def site_pixels(self, j: int):
        """Land pixels within the cut-off radius of site ``j``: ``(idx, d2_m2)``, ascending idx."""
        g = self.grid
        x, y = float(self.site_x_m[j]), float(self.site_y_m[j])
        r = self.site_radius_m(j)
        res = g.res_m
        c0 = max(int(math.floor((x - r - g.x0_m) / res)), 0)
        c1 = min(int(math.ceil((x + r - g.x0_m) / res)) + 1, g.shape[1])
        r0 = max(int(math.floor((g.y0_m - y - r) / res)), 0)
        r1 = min(int(math.ceil((g.y0_m - y + r) / res)) + 1, g.shape[0])
        if c0 >= c1 or r0 >= r1:
            return np.zeros(0, np.int64), np.zeros(0)
        sub = self.pos2d[r0:r1, c0:c1]
        idx = sub[sub >= 0]
        d2 = self._d2(j, idx)
        m = d2 <= r * r
        return idx[m], d2[m]

    def site_power(self, j: int, idx):
        """Site ``j``'s strongest-sector and summed received power at land pixels ``idx``, mW float64."""
        idx = np.asarray(idx, dtype=np.int64)
        sec = self.site_sectors[j]
        cand = np.broadcast_to(sec[None, None, :], (idx.size, 1, sec.size))
        p = kernel.sector_power_mw(self.pix_x_m[idx], self.pix_y_m[idx], self.pix_id[idx], cand, self.prepared,
                                   self.seed)[0]
        return p.max(axis=0).astype(np.float64), np.add.reduce(p, axis=0, dtype=np.float64)

    # ----------------------------------------------------------------------- coarse cells

    def _build_cells(self):
        """Coarse cells of about :data:`CELL_M` a side; land pixels listed per cell (CSR)."""
        g = self.grid
        b = max(1, int(round(CELL_M / g.res_m)))
        rows, cols = np.divmod(np.asarray(self.rasters.land_flat, dtype=np.int64), g.shape[1])
        nbr, nbc = -(-g.shape[0] // b), -(-g.shape[1] // b)
        cell = (rows // b) * nbc + cols // b
        self.cell_of = cell
        self.cell_pix = np.argsort(cell, kind="stable")
        counts = np.bincount(cell, minlength=nbr * nbc)
        self.cell_start = np.concatenate([[0], np.cumsum(counts)])
        self.cell_shape = (nbr, nbc)
        self.cell_px = b
        # extents of the pixel centres of each coarse cell, m
        cb = np.arange(nbc)
        rb = np.arange(nbr)
        self.cell_x_lo = g.x0_m + (cb * b + 0.5) * g.res_m
        self.cell_x_hi = g.x0_m + (np.minimum(cb * b + b, g.shape[1]) - 0.5) * g.res_m
        self.cell_y_hi = g.y0_m - (rb * b + 0.5) * g.res_m
        self.cell_y_lo = g.y0_m - (np.minimum(rb * b + b, g.shape[0]) - 0.5) * g.res_m

    def _cell_pixels(self, cells) -> np.ndarray:
        """Land pixels of the coarse cells ``cells`` (concatenated, cell by cell)."""
        start = self.cell_start[cells]
        n = self.cell_start[cells + 1] - start
        total = int(n.sum())
        if total == 0:
            return np.zeros(0, np.int64)
        offs = np.repeat(start - np.concatenate([[0], np.cumsum(n)[:-1]]), n)
        return self.cell_pix[np.arange(total) + offs]

    def _cells_near(self, j: int):
        """Coarse cells that may hold pixels of site ``j``'s disk, and their nearest distance², m2."""
        x, y = float(self.site_x_m[j]), float(self.site_y_m[j])
        r = self.site_radius_m(j)
        g = self.grid
        span = self.cell_px * g.res_m
        c0 = max(int(math.floor((x - r - g.x0_m) / span)), 0)
        c1 = min(int(math.floor((x + r - g.x0_m) / span)) + 1, self.cell_shape[1])
        r0 = max(int(math.floor((g.y0_m - y - r) / span)), 0)
        r1 = min(int(math.floor((g.y0_m - y + r) / span)) + 1, self.cell_shape[0])
        if c0 >= c1 or r0 >= r1:
            return np.zeros(0, np.int64), np.zeros(0)
        dx = np.maximum(np.maximum(self.cell_x_lo[c0:c1] - x, x - self.cell_x_hi[c0:c1]), 0.0)
        dy = np.maximum(np.maximum(self.cell_y_lo[r0:r1] - y, y - self.cell_y_hi[r0:r1]), 0.0)
        d2 = dy[:, None] ** 2 + dx[None, :] ** 2
        cells = (np.arange(r0, r1)[:, None] * self.cell_shape[1] + np.arange(c0, c1)[None, :])
        m = d2 <= r * r
        return cells[m], d2[m]

    def _refresh_cells(self, state: PlanState, cells) -> None:
        """Recompute the coarse summaries of ``cells`` (non-empty ones) from their pixels."""
        cells = np.asarray(cells, dtype=np.int64)
        n = self.cell_start[cells + 1] - self.cell_start[cells]
        cells = cells[n > 0]
        if cells.size == 0:
            return
        pix = self._cell_pixels(cells)
        n = self.cell_start[cells + 1] - self.cell_start[cells]
        seg = np.concatenate([[0], np.cumsum(n)[:-1]])
        counted = self.weight[pix] > 0
        cov = state.covered[pix]
        m = self._margin_slack(state.best_mw[pix], state.total_mw[pix])
        m = np.where(cov & counted, m, np.inf)
        state.cell_margin_mw[cells] = np.minimum.reduceat(m, seg)
        state.cell_uncovered[cells] = np.logical_or.reduceat(~cov & counted, seg)

    # ----------------------------------------------------------------------- coverage

    def covered_of(self, best_mw, total_mw) -> np.ndarray:
        """Indoor RSRP and SINR at least the thresholds (linear-domain test), bool."""
        interf = np.maximum(total_mw - best_mw, 0.0) * self.load
        return (best_mw >= self.s_min_mw) & (best_mw >= self.gamma * (interf + self.noise_mw / self.o2i_gain))

    def margin_mw(self, best_mw, total_mw) -> np.ndarray:
        """Load-weighted interference a pixel can still take and stay SINR-covered, mW."""
        interf = np.maximum(total_mw - best_mw, 0.0) * self.load
        return best_mw / self.gamma - self.noise_mw / self.o2i_gain - interf

    def _margin_slack(self, best_mw, total_mw) -> np.ndarray:
        """:meth:`margin_mw` less a rounding allowance (1e-9 of the terms), for the culling tests."""
        slack = 1e-9 * (best_mw / self.gamma + self.noise_mw / self.o2i_gain + self.load * total_mw)
        return self.margin_mw(best_mw, total_mw) - slack

    def _state(self, best_mw, total_mw, covered, sites) -> PlanState:
        n_cells = self.cell_shape[0] * self.cell_shape[1]
        st = PlanState(best_mw, total_mw, covered, list(sites), np.full(n_cells, np.inf), np.zeros(n_cells, bool))
        self._refresh_cells(st, np.arange(n_cells))
        return st

    def empty_state(self) -> PlanState:
        n = self.rasters.n_land
        return self._state(np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool), [])

    def covered_population(self, state: PlanState) -> float:
        return float(self.weight[state.covered].sum())

    def apply_site(self, state: PlanState, j: int) -> float:
        """Add site ``j`` to ``state`` in place (its disk only); returns the change in covered population."""
        idx, _ = self.site_pixels(j)
        gain = 0.0
        if idx.size:
            smax, ssum = self.site_power(j, idx)
            best = np.maximum(state.best_mw[idx], smax)
            total = state.total_mw[idx] + ssum
            cov = self.covered_of(best, total)
            before = state.covered[idx]
            gain = float(self.weight[idx] @ (cov.astype(np.float64) - before))
            state.best_mw[idx] = best
            state.total_mw[idx] = total
            state.covered[idx] = cov
            self._refresh_cells(state, np.unique(self.cell_of[idx]))
        state.sites.append(int(j))
        return gain

    def gain(self, state: PlanState, j: int) -> float:
        """Exact change in covered population if site ``j`` were added (``state`` unchanged).

        Culling, coarse then per pixel, keeps only the pixels whose coverage can change:
        counted uncovered pixels where the envelope reaches ``S_min``, counted covered
        pixels whose margin is below ``L env(d)`` (module docs); a coarse cell is tested
        at its nearest distance to the site (the envelope is non-increasing).
        """
        cells, d2c = self._cells_near(j)
        if cells.size == 0:
            return 0.0
        env_c = self.envelope_mw(j, d2c)
        act = (state.cell_uncovered[cells] & (env_c >= self.s_min_mw)) | (
            self.load * env_c > state.cell_margin_mw[cells])
        if not act.any():
            return 0.0
        idx = self._cell_pixels(cells[act])
        d2 = self._d2(j, idx)
        r = self.site_radius_m(j)
        w = self.weight[idx]
        keep = (d2 <= r * r) & (w > 0)
        idx, d2, w = idx[keep], d2[keep], w[keep]
        cov = state.covered[idx]
        best = state.best_mw[idx]
        total = state.total_mw[idx]
        env = self.envelope_mw(j, d2)
        keep = np.where(cov, self.load * env > self._margin_slack(best, total), env >= self.s_min_mw)
        if not keep.any():
            return 0.0
        smax, ssum = self.site_power(j, idx[keep])
        new = self.covered_of(np.maximum(best[keep], smax), total[keep] + ssum)
        return float(w[keep] @ (new.astype(np.float64) - cov[keep]))

    def full_state(self, sites) -> PlanState:
        """The model from scratch: every site of ``sites`` (in order) summed, then every pixel tested."""
        n = self.rasters.n_land
        best, total = np.zeros(n), np.zeros(n)
        for j in sites:
            idx, _ = self.site_pixels(int(j))
            if idx.size:
                smax, ssum = self.site_power(int(j), idx)
                best[idx] = np.maximum(best[idx], smax)
                total[idx] += ssum
        return self._state(best, total, self.covered_of(best, total), [int(j) for j in sites])


# --------------------------------------------------------------------------- candidates


def candidate_lattice(rasters: CityRasters, spacing_m: float, *, district_idx=None, exclude_x_m=(),
                      exclude_y_m=(), min_distance_m: float | None = None, offset=(0.5, 0.5)):
    """Candidate site positions: a hexagonal lattice over land pixels of some districts.

    Parameters
    ----------
    rasters : CityRasters
        Grid, land pixels and district raster.
    spacing_m : float
        Lattice spacing (distance between neighbours), m, > 0.
    district_idx : sequence of int, optional
        District rows whose land may hold candidates (default every district).
    exclude_x_m, exclude_y_m : array_like
        Existing sites; lattice points closer than ``min_distance_m`` to one are dropped.
    min_distance_m : float, optional
        Default ``spacing_m / 2``.
    offset : pair of float
        Lattice offset in units of the spacing / row height (the density placement's
        :func:`sim.placement.hex_lattice`).

    Returns
    -------
    x_m, y_m : ndarray [n], float64
        Candidate positions (grid CRS), row by row.
    district_idx : ndarray [n], int16
        District of each candidate's pixel.
    """
    if not (math.isfinite(spacing_m) and spacing_m > 0):
        raise InputError(_SOURCE, "spacing_m", f"expected a spacing > 0 m, got {spacing_m!r}")
    grid = rasters.grid
    x, y = hex_lattice(grid.bounds_m, float(spacing_m), offset)
    flat = grid.flat_index_of(x, y)
    land = np.zeros(grid.n_pixels, dtype=bool)
    land[rasters.land_flat] = True
    ok = (flat >= 0)
    ok[ok] = land[flat[ok]]
    d = np.full(x.size, -1, dtype=np.int64)
    d[ok] = rasters.district_idx.ravel()[flat[ok]]
    if district_idx is not None:
        ok &= np.isin(d, np.asarray(list(district_idx), dtype=np.int64))
    ex = np.column_stack([np.asarray(exclude_x_m, np.float64), np.asarray(exclude_y_m, np.float64)])
    if ex.size:
        r = 0.5 * float(spacing_m) if min_distance_m is None else float(min_distance_m)
        dist, _ = cKDTree(ex).query(np.column_stack([x, y]), k=1)
        ok &= dist >= r
    return x[ok], y[ok], d[ok].astype(np.int16)


# --------------------------------------------------------------------------- greedy


def plan_sites(model: PlanModel, state: PlanState, candidates, *, target_share: float, budget: int,
               progress=None) -> PlanResult:
    """Add candidate sites greedily until ``target_share`` of the weighted population is covered.

    Parameters
    ----------
    model : PlanModel
    state : PlanState
        The starting state (e.g. ``model.full_state(existing)``); not modified.
    candidates : array_like of int
        Model site indices that may be added (each at most once).
    target_share : float
        Covered share of ``model.weight`` to reach, in (0, 1].
    budget : int
        Most sites to add, >= 0.
    progress : callable, optional
        ``progress(n_added, covered_share)`` after each addition.

    Returns
    -------
    PlanResult
    """
    if not (0.0 < float(target_share) <= 1.0):
        raise InputError(_SOURCE, "target_share", f"expected a share in (0, 1], got {target_share!r}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise InputError(_SOURCE, "budget", f"expected an integer >= 0, got {budget!r}")
    cands = np.unique(np.asarray(candidates, dtype=np.int64))
    if cands.size and (cands.min() < 0 or cands.max() >= model.n_sites):
        raise InputError(_SOURCE, "candidates", f"expected site indices in [0, {model.n_sites - 1}]")
    st = state.copy()
    total_w = model.weight_total
    pop = model.covered_population(st)
    share = lambda p: p / total_w if total_w > 0 else 1.0   # noqa: E731
    pops, added, gains = [pop], [], []
    n_eval = 0
    heap = []
    if share(pop) < target_share and budget > 0:
        for j in cands:
            heap.append((-model.gain(st, int(j)), int(j), 0))
        n_eval += len(heap)
        heapq.heapify(heap)
    refreshed_at = -1
    reason = "target"
    while share(pop) < target_share:
        if len(added) >= budget:
            reason = "budget"
            break
        if not heap:
            reason = "no candidates"
            break
        neg, j, stamp = heapq.heappop(heap)
        if stamp != len(added):                        # stale: re-evaluate exactly, push back
            heapq.heappush(heap, (-model.gain(st, j), j, len(added)))
            n_eval += 1
            continue
        if -neg <= 0.0:
            if refreshed_at == len(added):
                heapq.heappush(heap, (neg, j, stamp))
                reason = "no gain"
                break
            heap = [(-model.gain(st, i), i, len(added)) for _, i, _ in heap] + [(neg, j, stamp)]
            n_eval += len(heap) - 1
            heapq.heapify(heap)
            refreshed_at = len(added)
            continue
        got = model.apply_site(st, j)
        pop += got
        added.append(j)
        gains.append(-neg)
        pops.append(pop)
        if progress is not None:
            progress(len(added), share(pop))
    pops = np.asarray(pops, dtype=np.float64)
    return PlanResult(site_index=np.asarray(added, dtype=np.int64), gain_population=np.asarray(gains, np.float64),
                      covered_population=pops, covered_share=pops / total_w if total_w > 0 else np.ones_like(pops),
                      target_share=float(target_share), budget=int(budget),
                      reached=bool(share(pop) >= target_share), stop_reason=reason,
                      n_candidates=int(cands.size), n_evaluations=n_eval, state=st)
