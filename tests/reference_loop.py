"""The kernel's slow twin: a plain loop over pixel x sector in float64, no vectorisation.

It calls the physics functions of :mod:`sim.propagation`, :mod:`sim.antenna`,
:mod:`sim.linkmodel` and :mod:`sim.units` on scalars, exactly as their docstrings define
them, and reduces per pixel with Python arithmetic. ``tests/test_kernel.py`` compares
:func:`sim.kernel.coverage_block` against it; ``benchmarks/bench_kernel.py`` times it.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from sim import antenna, linkmodel, propagation, shadowing
from sim.kernel import los_uniform
from sim.results import SCENARIO_CODES
from sim.units import dbm_to_mw, thermal_noise_dbm


def reference_coverage(pix_x_m, pix_y_m, pix_id, cand, sectors, radio, load, seed=0):
    """RSRP, SINR and serving sector of each pixel by a scalar loop.

    ``cand`` is ``[n_pix, n]`` or ``[n_pix, k, s]`` sector indices (-1 padded); every
    candidate is evaluated as its own pair. Returns a dict of float64 arrays ``rsrp_dbm``,
    ``sinr_db``, ``rsrp_indoor_dbm``, ``sinr_indoor_db`` and int array ``best_sector``.
    """
    cand = np.asarray(cand).reshape(len(pix_x_m), -1)
    n_pix = cand.shape[0]
    noise = float(dbm_to_mw(thermal_noise_dbm(radio.bw_hz, radio.noise_figure_db)))
    offset = 10.0 * math.log10(12 * linkmodel.n_prb_total(radio.bw_hz, radio.scs_khz))
    s_hi = radio.o2i_high_share
    l_low = float(propagation.o2i_loss_db("low", radio.fc_ghz, radio.d2d_in_m))
    l_high = float(propagation.o2i_loss_db("high", radio.fc_ghz, radio.d2d_in_m))
    g_in = s_hi * 10.0 ** (-l_high / 10.0) + (1.0 - s_hi) * 10.0 ** (-l_low / 10.0)
    out = {k: np.full(n_pix, np.nan) for k in ("rsrp_dbm", "sinr_db", "rsrp_indoor_dbm", "sinr_indoor_db")}
    out["best_sector"] = np.full(n_pix, -1)
    field = shadowing.unit_field(seed) if radio.shadow_fading or radio.los_consistent else None
    for i in range(n_pix):
        powers = []
        for j in cand[i]:
            j = int(j)
            if j < 0:
                continue
            dx = float(pix_x_m[i]) - float(sectors.x_m[j])
            dy = float(pix_y_m[i]) - float(sectors.y_m[j])
            d2d = math.hypot(dx, dy)
            h_bs = float(sectors.h_bs_m[j])
            scen = SCENARIO_CODES[int(sectors.scenario[j])]
            phi = float(antenna.relative_azimuth_deg(dx, dy, float(sectors.az_deg[j])))
            theta = float(antenna.zenith_angle_deg(d2d, h_bs, radio.h_ut_m))
            gain = float(antenna.antenna_gain_dbi(
                phi, theta, tilt_deg=float(sectors.tilt_deg[j]), hpbw_h_deg=float(sectors.hpbw_h_deg[j]),
                hpbw_v_deg=float(sectors.hpbw_v_deg[j]), sla_v_db=radio.sla_v_db, a_max_db=radio.a_max_db,
                g_max_dbi=float(sectors.g_max_dbi[j])))
            kw = dict(h_building_m=radio.h_building_m, w_street_m=radio.w_street_m)
            pl_n = float(propagation.pathloss_db(scen, d2d, h_bs, radio.h_ut_m, radio.fc_ghz, False, **kw))
            if radio.los_mode == "nlos":
                path_gain = 10.0 ** (-pl_n / 10.0)
            else:
                p_los = float(propagation.los_probability(scen, d2d, radio.h_ut_m))
                pl_l = float(propagation.pathloss_db(scen, d2d, h_bs, radio.h_ut_m, radio.fc_ghz, True, **kw))
                if radio.los_mode == "expected":
                    path_gain = p_los * 10.0 ** (-pl_l / 10.0) + (1.0 - p_los) * 10.0 ** (-pl_n / 10.0)
                else:  # sampled
                    if radio.los_consistent:
                        z = _field(field, sectors.site_id[j], seed, dx, dy, shadowing.LOS_DECORRELATION_M[scen],
                                   shadowing.LOS_SHIFT_CELLS)
                        u = 0.5 * math.erfc(-z / math.sqrt(2.0))
                    else:
                        u = float(los_uniform(np.array([pix_id[i]]), np.array([sectors.site_id[j]]), seed)[0])
                    path_gain = 10.0 ** (-(pl_l if u < p_los else pl_n) / 10.0)
            if radio.shadow_fading:
                los = radio.los_mode == "sampled" and u < p_los      # expected / nlos: NLOS sigma and distance
                sigma = float(propagation.shadow_fading_std_db(scen, los, d2d, fc_ghz=radio.fc_ghz, h_bs_m=h_bs,
                                                               h_ut_m=radio.h_ut_m))
                z = _field(field, sectors.site_id[j], seed, dx, dy, shadowing.SF_DECORRELATION_M[(scen, bool(los))])
                path_gain *= 10.0 ** (-sigma * z / 10.0)
            p_mw = 10.0 ** ((float(sectors.ptx_dbm[j]) + gain + radio.ue_gain_db) / 10.0) * path_gain
            powers.append((p_mw, j))
        if not powers:
            continue
        s_mw, best = max(powers, key=lambda t: t[0])  # first of equal maxima, as in candidate order
        i_mw = sum(float(load[j]) * p for p, j in powers if j != best)
        if radio.o2i_random:
            u_type, z_o2i = shadowing.o2i_draws(np.array([pix_id[i]]), seed)
            model = "high" if u_type[0] < s_hi else "low"
            loss = float(propagation.o2i_loss_db(model, radio.fc_ghz, radio.d2d_in_m))
            g_in = 10.0 ** (-(loss + propagation.o2i_loss_std_db(model) * z_o2i[0]) / 10.0)
        out["best_sector"][i] = best
        out["rsrp_dbm"][i] = 10.0 * math.log10(s_mw) - offset + radio.ssb_gain_offset_db
        out["sinr_db"][i] = 10.0 * math.log10(s_mw / (i_mw + noise))
        out["rsrp_indoor_dbm"][i] = 10.0 * math.log10(s_mw * g_in) - offset + radio.ssb_gain_offset_db
        out["sinr_indoor_db"][i] = 10.0 * math.log10(g_in * s_mw / (g_in * i_mw + noise))
    return out


@functools.lru_cache(maxsize=65536)
def _offsets(site_id, seed):
    return shadowing.site_offsets(np.array([site_id]), seed)


def _field(table, site_id, seed, dx, dy, d_cor_m, shift_cells=0):
    """The site's unit field at the UE (sim.shadowing), read at the kernel's float32 offset."""
    ox, oy = _offsets(int(site_id), int(seed))
    cpm = np.float32(shadowing.CELLS_PER_DCOR / d_cor_m)
    return float(shadowing.field_at(table, ox, oy, np.array([dx], np.float32), np.array([dy], np.float32), cpm,
                                    shift_cells)[0])


# --------------------------------------------------------------------------- test scenes


def make_sectors(site_x_m, site_y_m, *, rng=None, n_sectors=3, h_bs_m=25.0, scenario=0, tilt_deg=6.0,
                 ptx_dbm=46.0, g_max_dbi=17.0, hpbw_h_deg=65.0, hpbw_v_deg=10.0, site_id0=0):
    """Sites with ``n_sectors`` evenly spaced sectors each (first azimuth random when ``rng``).

    Scalars are per-layer values; arrays of one value per site are repeated per sector.
    """
    from sim.results import SectorArrays

    site_x_m = np.asarray(site_x_m, dtype=np.float64)
    n = site_x_m.size
    offset = rng.uniform(0.0, 360.0 / n_sectors, n) if rng is not None else np.zeros(n)
    az = (offset[:, None] + 360.0 * np.arange(n_sectors) / n_sectors) % 360.0

    def per_sector(v):
        v = np.asarray(v, dtype=np.float64)
        return np.repeat(np.broadcast_to(v, (n,)), n_sectors)

    return SectorArrays(
        site_id=np.repeat(np.arange(site_id0, site_id0 + n), n_sectors), x_m=per_sector(site_x_m),
        y_m=per_sector(site_y_m), h_bs_m=per_sector(h_bs_m), az_deg=az.ravel(), tilt_deg=per_sector(tilt_deg),
        ptx_dbm=per_sector(ptx_dbm), g_max_dbi=per_sector(g_max_dbi), hpbw_h_deg=per_sector(hpbw_h_deg),
        hpbw_v_deg=per_sector(hpbw_v_deg), scenario=per_sector(scenario))


def make_rasters(n_rows, n_cols, res_m=50.0, *, x0_m=350_000.0, y0_m=3_460_000.0, water=None):
    """A synthetic :class:`sim.grid.CityRasters`: one district, 10 people and 4 homes per pixel.

    ``water`` is an optional boolean [n_rows, n_cols] mask of non-land pixels.
    """
    from sim.grid import CityRasters, Grid

    grid = Grid("EPSG:32651", x0_m, y0_m, res_m, (n_rows, n_cols))
    district = np.zeros((n_rows, n_cols), dtype=np.int16)
    if water is not None:
        district[water] = -1
    land = district >= 0
    return CityRasters(grid=grid, district_idx=district, population=np.where(land, 10.0, 0.0),
                       households=np.where(land, 4.0, 0.0), land_flat=np.flatnonzero(land.ravel()))
