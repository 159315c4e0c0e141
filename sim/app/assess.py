"""Assess a run: every indicator per district and citywide, then the criteria table.

The wiring between a scenario and :mod:`sim.indicators`: each radio network's coverage and
rate indicators weighted by its operators' mobile shares, 5G site densities, key places
reached, the fibre criteria of ``[broadband]`` and the PON busy hour, the 5G user share
(an input), and finally :func:`sim.criteria.evaluate` and :func:`sim.criteria.verdict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from .. import criteria as C
from .. import indicators as I
from ..broadband import district_fibre, fibre_rasters
from ..config import Scenario
from ..errors import ConfigError
from ..geodata import read_census, read_key_places
from .busyhour import pon_check
from .inputs import district_inputs, fiveg_user_share_by_district

__all__ = ["mobile_share_by_ran", "Assessment", "assess_radio", "assess_speed_test", "speed_test_sums",
           "put_speed_test", "assess_sites", "assess_key_places", "assess_fibre", "assess_pon", "assess_criteria",
           "fibre_inputs_by_district"]


def mobile_share_by_ran(sc: Scenario) -> dict[str, float]:
    """Each radio network's mobile share: the shares of the operators it serves, added up."""
    share: dict[str, float] = {}
    for op in sc.operators:
        share[op.ran_id] = share.get(op.ran_id, 0.0) + op.mobile_share
    return share


@dataclass
class Assessment:
    """Indicators of a run and their evaluation.

    ``by_district`` (key -> float array [n_districts]) and ``citywide`` (key -> float) in the
    order they were added; ``density``: :func:`sim.indicators.site_density`;
    ``sites_by_ran``: sites per district of each network; ``places``: the key places of
    the region and ``reached``: per network, whether each is reached indoors.
    """

    by_district: dict = field(default_factory=dict)
    citywide: dict = field(default_factory=dict)
    best_by_ran: dict = field(default_factory=dict, repr=False)
    density: dict | None = None
    n_sites_d: np.ndarray | None = None
    sites_by_ran: dict = field(default_factory=dict)
    places: object = None
    reached: dict = field(default_factory=dict)
    table: object = None
    verdict: dict | None = None

    def put(self, key: str, pair) -> None:
        """Set one indicator from a ``(per_district, citywide)`` pair."""
        self.by_district[key], self.citywide[key] = pair


def assess_radio(sc: Scenario, rasters, store, n_districts: int, a: Assessment, busy: bool = True) -> None:
    """Coverage and rate indicators of every radio network's best layer, mobile-share weighted.

    Chunk by chunk over ``store`` (:class:`~sim.pixelstore.PixelStore`: each layer's coverage
    ``"<layer>/<field>"`` and, with ``busy``, each network's ``"<ran>/rate_busy_bps"``): each network's
    best-layer values go to the store (``"<ran>/best/<field>"``; ``a.best_by_ran`` maps them) and the
    indicators' sums run over the chunks in land order (:func:`sim.indicators.physical_sums`).
    """
    cr = sc.criteria
    weights = I.ran_weights(mobile_share_by_ran(sc))
    for ran in sc.ran_ids:
        lids = [lid for lid, op, _ in sc.layers() if op.id == ran]
        sums = None
        for name in I.BEST_LAYER_FIELDS:
            store.create(f"{ran}/best/{name}", np.float32)
        for s0, s1 in store.chunks():
            best = I.best_layer_values([SimpleNamespace(**{name: store.read(f"{lid}/{name}", s0, s1)
                                                           for name in I.BEST_LAYER_FIELDS}) for lid in lids])
            for name, v in best.items():
                store.write(f"{ran}/best/{name}", s0, v)
            sums = I.physical_sums(
                sums, rasters.district_at(s0, s1).astype(np.int64), rasters.population_at(s0, s1),
                rsrp_outdoor_dbm=best["rsrp_dbm"], sinr_outdoor_db=best["sinr_db"],
                rsrp_indoor_dbm=best["rsrp_indoor_dbm"], sinr_indoor_db=best["sinr_indoor_db"],
                rate_unloaded_bps=best["rate_indoor_bps"],
                rate_busy_bps=store.read(f"{ran}/rate_busy_bps", s0, s1) if busy else None,
                rsrp_min_dbm=cr.rsrp_min_dbm, sinr_min_db=cr.sinr_min_db, rate_gigabit_bps=cr.gigabit_rate_bps,
                rate_busy_min_bps=cr.busy_rate_bps, n_districts=n_districts)
        a.best_by_ran[ran] = {name: store.array(f"{ran}/best/{name}") for name in I.BEST_LAYER_FIELDS}
        b, c = I.shares_from_sums(sums or {})
        I.add_weighted(a.by_district, a.citywide, weights[ran], b, c)


def assess_speed_test(sc: Scenario, rasters, store, n_districts: int, a: Assessment) -> str:
    """The speed-test indicator: one outdoor flow in the busy hour, as crowd-sourced tests measure
    (:func:`speed_test_sums`, put into ``a``); returns the name of the per-pixel mean in the store."""
    return put_speed_test(a, speed_test_sums(sc, rasters, store, n_districts))


def speed_test_sums(sc: Scenario, rasters, store, n_districts: int) -> tuple[str, dict, dict]:
    """What :func:`assess_speed_test` puts into the assessment: ``(name, by_district, citywide)``.

    Per district and citywide, the mean and the 10th/50th/90th percentiles (Mbit/s) of the
    outdoor busy-hour flow throughput at the solved loads, over the residents and the networks
    (each weighted by its operators' mobile share); land no 5G layer serves runs no 5G test.
    Read chunk by chunk from ``store`` (each network's ``"<ran>/rate_busy_outdoor_bps"``), twice: the
    percentiles from a histogram, then the tests in their bins (:class:`sim.indicators.SpeedTestSums`).
    Writes the per-pixel mean over the networks (bit/s, float32) for the raster, ``name`` in the store.
    Reads and writes only those arrays: it may run beside :func:`assess_radio`.
    """
    weights = I.ran_weights(mobile_share_by_ran(sc))
    rans = list(sc.ran_ids)
    sums = I.SpeedTestSums(n_districts)
    name = "speedtest_mean_bps"
    store.create(name, np.float32)
    # network by network, then chunk by chunk: the sums add the tests in the same order whatever the chunks
    for add in (sums.add, sums.add_again):
        for r in rans:
            for s0, s1 in store.chunks():
                add(store.read(f"{r}/rate_busy_outdoor_bps", s0, s1), rasters.population_at(s0, s1) * weights[r],
                    rasters.district_at(s0, s1).astype(np.int64))
    for s0, s1 in store.chunks():
        store.write(name, s0, I.mixture_mean([store.read(f"{r}/rate_busy_outdoor_bps", s0, s1) for r in rans],
                                             [weights[r] for r in rans]))
    by_d, city = sums.result()
    return name, by_d, city


def put_speed_test(a: Assessment, sums: tuple[str, dict, dict]) -> str:
    """Put :func:`speed_test_sums`' indicators into ``a`` (``speedtest_<figure>_mbps``); returns the store name."""
    name, by_d, city = sums
    for k in by_d:
        a.put(f"speedtest_{k}_mbps", (by_d[k], city[k]))
    return name


def assess_sites(sc: Scenario, sites, districts, a: Assessment) -> None:
    """5G sites per district (every network), their densities and ``bs_5g_per_10k``."""
    n_d = len(districts)
    a.n_sites_d = np.zeros(n_d)
    for ran in sc.ran_ids:
        a.sites_by_ran[ran] = sites.sites_per_district(n_d, ran=ran)
        a.n_sites_d += a.sites_by_ran[ran]
    pop_d = districts["population"].to_numpy(float)
    a.density = I.site_density(a.n_sites_d, districts["area_km2_official"].to_numpy(float),
                               districts["area_km2_polygon"].to_numpy(float), pop_d)
    a.put("bs_5g_per_10k", I.ratio_by_district(a.n_sites_d, pop_d, 1e4))


def assess_key_places(sc: Scenario, rasters, codes, a: Assessment) -> None:
    """Key places of the region reached indoors by each network, and the share-weighted reach."""
    cr = sc.criteria
    places = read_key_places(sc.region.key_places, crs=rasters.grid.crs)
    a.places = places[places["district_code"].isin(codes)].reset_index(drop=True)
    if not len(a.places):
        return
    flat = rasters.grid.flat_index_of(a.places.geometry.x.to_numpy(), a.places.geometry.y.to_numpy())
    pos, on_land = I.key_place_pixels(rasters.land_flat, flat)
    place_d = np.array([codes.index(c) for c in a.places["district_code"]])
    weights = I.ran_weights(mobile_share_by_ran(sc))
    by_d, city = {}, {}
    for ran, best in a.best_by_ran.items():
        rsrp = np.where(on_land, best["rsrp_indoor_dbm"][pos], np.nan)
        sinr = np.where(on_land, best["sinr_indoor_db"][pos], np.nan)
        a.reached[ran] = I.key_place_reached(rsrp, sinr, cr.rsrp_min_dbm, cr.sinr_min_db)
        d_pct, c_pct = I.key_place_reach_pct(rsrp, sinr, place_d, rsrp_min_dbm=cr.rsrp_min_dbm,
                                             sinr_min_db=cr.sinr_min_db, n_districts=len(codes))
        I.add_weighted(by_d, city, weights[ran], {"key_place_5g_reach_pct": d_pct}, {"key_place_5g_reach_pct": c_pct})
    a.put("key_place_5g_reach_pct", (by_d["key_place_5g_reach_pct"], city["key_place_5g_reach_pct"]))


def fibre_inputs_by_district(sc: Scenario, codes, households, census_households: float) -> dict:
    """The fibre inputs of :func:`sim.broadband.district_fibre`, per district.

    Without ``[district_inputs]`` the citywide counts of ``[broadband]`` are split over the
    districts in proportion to their census households (the whole census table's, so a subset
    of districts gets its part), counts given as shares (``*_share``) are shares of each
    district's households, and the citywide take-up and tier mix apply: today's citywide
    totals exactly. A district (or its class) with ``gigabit_passed_share`` has
    ``households x share`` passed by gigabit fibre (at most its fibre households); with
    ``take_up``, ``tier_mix`` or ``ten_g_port_share`` those replace the citywide values.
    Returns ``fibre_households, ten_g_households, take_up, tier_mix, ten_g_port_share``
    (None when no port share is given anywhere).
    """
    bb = sc.broadband
    hh = np.asarray(households, dtype=float)
    share = hh / float(census_households)

    def count(total, of_households):
        """Per district: a citywide total split by households, or a share of each district's households."""
        return hh * of_households if total is None else total * share

    given = district_inputs(sc, codes)
    fib = count(bb.fibre_households, bb.fibre_household_share)
    teng = count(bb.gigabit_households, bb.gigabit_household_share)
    subs = count(bb.fibre_subscribers, bb.fibre_subscriber_share)
    if bb.fibre_subscribers is not None and bb.fibre_households is not None:
        take_up = bb.fibre_subscribers / bb.fibre_households if bb.fibre_households else 0.0
    else:
        take_up = float(subs.sum() / fib.sum()) if fib.sum() > 0 else 0.0
    take = np.full(len(hh), take_up)
    mix = np.tile(np.asarray(bb.tier_mix, dtype=float), (len(hh), 1))
    port = np.full(len(hh), bb.ten_g_port_share if bb.ten_g_port_share >= 0 else np.nan)
    for i, v in given["gigabit_passed_share"].items():
        teng[i] = min(hh[i] * v, fib[i])
    for i, v in given["take_up"].items():
        take[i] = v
    for i, v in given["tier_mix"].items():
        mix[i] = v
    for i, v in given["ten_g_port_share"].items():
        port[i] = v
    if np.isnan(port).all():
        port = None
    elif np.isnan(port).any():
        raise ConfigError(sc.source_path, "broadband.ten_g_port_share",
                          "a citywide value when only some districts give district_inputs ten_g_port_share")
    return {"fibre_households": fib, "ten_g_households": teng, "take_up": take, "tier_mix": mix,
            "ten_g_port_share": port}


def assess_fibre(sc: Scenario, districts, rasters, a: Assessment, store):
    """The fibre criteria of ``[broadband]`` and ``[district_inputs]``; the district FTTH result, and the name
    in ``store`` of the gigabit-capable (10G-PON) households per land pixel (float32, for the raster).

    Inputs per district: :func:`fibre_inputs_by_district`.
    """
    bb = sc.broadband
    hh = districts["households"].to_numpy(float)
    inp = fibre_inputs_by_district(sc, list(districts["code"]), hh,
                                   float(read_census(sc.region.census)["households"].sum()))
    fibre = district_fibre(hh, inp["fibre_households"], inp["ten_g_households"], inp["take_up"],
                           np.asarray(bb.tier_mbps) * 1e6, inp["tier_mix"],
                           gpon_split=bb.gpon_split, ten_g_split=bb.xgspon_split,
                           ten_g_technology=bb.xgspon_kind, fill_factor=bb.fill_factor,
                           ten_g_port_share=inp["ten_g_port_share"])
    by_d, city = I.fibre_indicators(fibre, hh, districts["population"].to_numpy(float))
    for k in by_d:
        a.put(k, (by_d[k], city[k]))
    ten_g = fibre_rasters(rasters.households_land, rasters.district_land, fibre.fibre_households,
                          fibre.ten_g_households, order=bb.upgrade_order).ten_g_pon_households
    store.write("fibre/ten_g_pon_households", 0, ten_g.astype(np.float32))
    return fibre, "fibre/ten_g_pon_households"


def assess_pon(sc: Scenario, fibre, a: Assessment) -> list[dict]:
    """The PON busy hour (:func:`sim.app.busyhour.pon_check`) and ``fibre_tier_met_busy_pct``; its rows."""
    rows, by_d, city = pon_check(sc, fibre, sc.traffic.replications if sc.traffic is not None else 5,
                                 np.random.SeedSequence(sc.scenario.seed).spawn(3)[0])
    a.put("fibre_tier_met_busy_pct", (by_d, city))
    return rows


def user_5g_share_pct(sc: Scenario, codes, population) -> tuple[np.ndarray, float]:
    """The 5G user share input (%) per district and citywide (population-weighted mobile users).

    Without per-district values the citywide value is ``traffic.fiveg_user_share`` exactly.
    """
    share = fiveg_user_share_by_district(sc, codes)
    if not district_inputs(sc, codes)["fiveg_user_share"]:
        return np.full(len(codes), 100.0 * sc.traffic.fiveg_user_share), 100.0 * sc.traffic.fiveg_user_share
    pop = np.asarray(population, dtype=float)
    return 100.0 * share, float(100.0 * (share * pop).sum() / pop.sum())


def assess_criteria(sc: Scenario, codes, a: Assessment, population=None) -> None:
    """The 5G user share (a scenario input), then the criteria table and the verdict (once).

    ``population``: residents per district (weights of the citywide 5G user share when it is
    given per district).
    """
    pop = np.ones(len(codes)) if population is None else population
    if sc.traffic is not None:
        a.put("user_5g_share_pct", user_5g_share_pct(sc, codes, pop))
    thresholds = [C.Threshold(t.key, t.op, t.value, t.unit, t.source, t.confirmed, t.benchmark)
                  for t in sc.criteria.thresholds]
    a.table = C.evaluate(a.by_district, a.citywide, thresholds or None, district_codes=codes)
    a.verdict = C.verdict(a.table)
