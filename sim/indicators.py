"""Indicator values from per-pixel arrays and per-district tables.

The arithmetic behind every number of the criteria table, as pure numpy functions:

* shares of population or area where a mask holds (coverage, rate marks), per district and
  citywide (:func:`weighted_share_by_district_pct`, :func:`physical_indicators`);
* ratios of per-district counts (:func:`ratio_by_district`): fibre coverage, port shares,
  base stations per 10,000 residents;
* the weighting of each radio network's indicators by its operators' mobile shares
  (:func:`ran_weights`, :func:`add_weighted`);
* the best layer of a network per pixel (:func:`best_layer_values`), key places
  (:func:`key_place_pixels`, :func:`key_place_reach_pct`), site densities
  (:func:`site_density`) and the fibre criteria (:func:`fibre_indicators`).

Per-pixel arrays are flat over the land pixels (``CityRasters.land_flat`` order); district
indices run 0..n_districts-1 in the order of the region's district table. Nothing here knows
the city: the number of districts is always given. All shares are in percent (``_pct``).
Imports numpy and :mod:`sim.errors` only; reads no files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import InputError
from .pixelstore import bincount_onto

__all__ = [
    "ratio_by_district",
    "coverage_mask",
    "weighted_share_by_district_pct",
    "area_share_by_district_pct",
    "physical_indicators",
    "physical_sums",
    "shares_from_sums",
    "key_place_reached",
    "key_place_reach_pct",
    "key_place_pixels",
    "ran_weights",
    "add_weighted",
    "best_layer_values",
    "BEST_LAYER_FIELDS",
    "site_density",
    "fibre_indicators",
    "SPEED_TEST_QUANTILES",
    "weighted_quantiles",
    "speed_test_indicators",
    "speed_test_samples",
    "SpeedTestSums",
    "value_bin",
    "mixture_mean",
]


def ratio_by_district(numerator, denominator, scale: float = 100.0):
    """Per-district ratio and its citywide aggregate, ``scale * num / den``.

    Parameters
    ----------
    numerator, denominator : array_like [n_districts]
        E.g. households passed by gigabit fibre and households (``scale=100`` for a
        share in %), or 5G base stations and residents (``scale=1e4`` for a density per
        10,000 residents).
    scale : float
        Multiplier.

    Returns
    -------
    per_district : ndarray [n_districts], float64
        NaN where the denominator is 0.
    citywide : float
        ``scale * sum(num) / sum(den)`` (a ratio of sums, not a mean of ratios).

    Notes
    -----
    The product is taken before the division (``scale * num / den``) so that exact
    fractions give exact percentages (4 of 5 gives 80.0, not 80.00000000000001), which
    matters for strict thresholds.
    """
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    if num.shape != den.shape or num.ndim != 1:
        raise InputError("indicators", "ratio_by_district",
                         f"expected two 1-D arrays of one shape, got {num.shape} and {den.shape}")
    if np.any(num < 0) or np.any(den < 0):
        raise InputError("indicators", "ratio_by_district", "expected non-negative counts")
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(den > 0, scale * num / np.where(den > 0, den, 1.0), np.nan)
    total_den = den.sum()
    city = float(scale * num.sum() / total_den) if total_den > 0 else math.nan
    return per, city


def coverage_mask(rsrp_dbm, sinr_db, rsrp_min_dbm: float, sinr_min_db: float) -> np.ndarray:
    """Covered pixels: ``rsrp_dbm >= rsrp_min_dbm`` and ``sinr_db >= sinr_min_db``.

    NaN (no server) is not covered. Thresholds are inclusive (a pixel exactly at the
    planning threshold is covered), as is usual for SS-RSRP / SS-SINR coverage criteria.
    """
    rsrp = np.asarray(rsrp_dbm)
    sinr = np.asarray(sinr_db)
    if rsrp.shape != sinr.shape:
        raise InputError("indicators", "coverage_mask",
                         f"rsrp_dbm {rsrp.shape} and sinr_db {sinr.shape} differ in shape")
    with np.errstate(invalid="ignore"):
        return (rsrp >= rsrp_min_dbm) & (sinr >= sinr_min_db)


def _check_district_idx(district_idx, n: int, n_districts: int) -> np.ndarray:
    d = np.asarray(district_idx)
    if d.shape != (n,):
        raise InputError("indicators", "district_idx", f"expected shape ({n},), got {d.shape}")
    if not np.issubdtype(d.dtype, np.integer):
        raise InputError("indicators", "district_idx", f"expected integers, got {d.dtype}")
    if n and (d.min() < 0 or d.max() >= n_districts):
        raise InputError("indicators", "district_idx",
                         f"expected values in 0..{n_districts - 1}, got {d.min()}..{d.max()}")
    return d.astype(np.intp)


def weighted_share_by_district_pct(mask, weight, district_idx, n_districts: int):
    """Weighted share (%) of pixels where ``mask`` holds, per district and citywide.

    Parameters
    ----------
    mask : array_like of bool [n_land]
        Per land pixel (``CityRasters.land_flat`` order).
    weight : array_like [n_land]
        Per-pixel weight, e.g. residents (population share) or households.
    district_idx : array_like of int [n_land]
        District index 0..n_districts-1 of each land pixel.
    n_districts : int

    Returns
    -------
    per_district_pct : ndarray [n_districts], float64 (NaN for zero weight)
    citywide_pct : float

    Notes
    -----
    ``share_d = 100 * sum_{p in d} w_p [mask_p] / sum_{p in d} w_p`` with ``np.bincount``;
    the citywide share is the same over all pixels.
    """
    m = np.asarray(mask, dtype=bool)
    w = np.asarray(weight, dtype=np.float64)
    if m.ndim != 1 or w.shape != m.shape:
        raise InputError("indicators", "weight",
                         f"expected mask and weight of one 1-D shape, got {m.shape} and {w.shape}")
    d = _check_district_idx(district_idx, m.size, n_districts)
    num = np.bincount(d, weights=np.where(m, w, 0.0), minlength=n_districts)
    den = np.bincount(d, weights=w, minlength=n_districts)
    return ratio_by_district(num, den, 100.0)


def area_share_by_district_pct(mask, district_idx, n_districts: int):
    """Area share (%) of land pixels where ``mask`` holds (pixels are of equal area)."""
    m = np.asarray(mask, dtype=bool)
    return weighted_share_by_district_pct(m, np.ones(m.shape), district_idx, n_districts)


def physical_indicators(
    district_idx,
    population,
    *,
    rsrp_outdoor_dbm,
    sinr_outdoor_db,
    rsrp_indoor_dbm,
    sinr_indoor_db,
    rate_unloaded_bps,
    rate_busy_bps,
    rsrp_min_dbm: float,
    sinr_min_db: float,
    rate_gigabit_bps: float,
    rate_busy_min_bps: float,
    n_districts: int,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The 5G physical indicators from flat per-land-pixel arrays.

    Parameters
    ----------
    district_idx : int array [n_land]
    population : array [n_land]
        Residents per land pixel.
    rsrp_outdoor_dbm, sinr_outdoor_db, rsrp_indoor_dbm, sinr_indoor_db : array [n_land]
        Best-server SS-RSRP and SINR, outdoor and indoor (after O2I loss); NaN where no
        server.
    rate_unloaded_bps, rate_busy_bps : array [n_land]
        Achievable downlink rate of one user: alone in its cell with the neighbour cells
        at the reference load (``radio.default_load``), and its flow throughput in the busy
        hour (neighbours and own cell at their busy-hour loads); pass None for an indicator
        that was not computed.
    rsrp_min_dbm, sinr_min_db : float
        Coverage thresholds of the scenario (config).
    rate_gigabit_bps, rate_busy_min_bps : float
        Rate marks (inclusive), e.g. 1 Gbit/s and 100 Mbit/s.
    n_districts : int

    Returns
    -------
    values_by_district : dict key -> ndarray [n_districts]
    citywide : dict key -> float
        Keys ``pop_cov_5g_outdoor_pct``, ``area_cov_5g_outdoor_pct``,
        ``pop_cov_5g_indoor_pct``, ``area_cov_5g_indoor_pct``,
        ``pop_5g_1gbps_unloaded_pct``, ``pop_5g_100mbps_busy_pct``, ``pop_5g_1gbps_busy_pct``.
    """
    sums = physical_sums(None, district_idx, population, rsrp_outdoor_dbm=rsrp_outdoor_dbm,
                         sinr_outdoor_db=sinr_outdoor_db, rsrp_indoor_dbm=rsrp_indoor_dbm,
                         sinr_indoor_db=sinr_indoor_db,
                         rate_unloaded_bps=rate_unloaded_bps, rate_busy_bps=rate_busy_bps, rsrp_min_dbm=rsrp_min_dbm,
                         sinr_min_db=sinr_min_db, rate_gigabit_bps=rate_gigabit_bps,
                         rate_busy_min_bps=rate_busy_min_bps, n_districts=n_districts)
    return shares_from_sums(sums)


def physical_sums(sums: dict | None, district_idx, population, *, rsrp_outdoor_dbm, sinr_outdoor_db, rsrp_indoor_dbm,
                  sinr_indoor_db, rate_unloaded_bps, rate_busy_bps, rsrp_min_dbm: float, sinr_min_db: float,
                  rate_gigabit_bps: float, rate_busy_min_bps: float, n_districts: int) -> dict:
    """The running sums of :func:`physical_indicators` over one more chunk of land pixels (arguments as
    there, for the chunk): ``key -> (numerator, denominator)`` per district, added to ``sums`` (None: none
    yet) in pixel order (:func:`sim.pixelstore.bincount_onto`), so that chunks in land order give the bits of
    the whole arrays; :func:`shares_from_sums` turns them into the indicators."""
    sums = {} if sums is None else sums
    d = _check_district_idx(district_idx, np.asarray(population).size, n_districts)
    w = np.asarray(population, dtype=np.float64)

    def add(key, mask, weight):
        m = np.asarray(mask, dtype=bool)
        if m.shape != weight.shape:
            raise InputError("indicators", "weight",
                             f"expected mask and weight of one 1-D shape, got {m.shape} and {weight.shape}")
        num, den = sums.get(key, (np.zeros(n_districts), np.zeros(n_districts)))
        sums[key] = (bincount_onto(num, d, np.where(m, weight, 0.0)), bincount_onto(den, d, weight))

    ones = np.ones(w.shape)
    out_cov = coverage_mask(rsrp_outdoor_dbm, sinr_outdoor_db, rsrp_min_dbm, sinr_min_db)
    in_cov = coverage_mask(rsrp_indoor_dbm, sinr_indoor_db, rsrp_min_dbm, sinr_min_db)
    add("pop_cov_5g_outdoor_pct", out_cov, w)
    add("area_cov_5g_outdoor_pct", out_cov, ones)
    add("pop_cov_5g_indoor_pct", in_cov, w)
    add("area_cov_5g_indoor_pct", in_cov, ones)
    with np.errstate(invalid="ignore"):
        if rate_unloaded_bps is not None:
            add("pop_5g_1gbps_unloaded_pct", np.asarray(rate_unloaded_bps) >= rate_gigabit_bps, w)
        if rate_busy_bps is not None:
            add("pop_5g_100mbps_busy_pct", np.asarray(rate_busy_bps) >= rate_busy_min_bps, w)
            add("pop_5g_1gbps_busy_pct", np.asarray(rate_busy_bps) >= rate_gigabit_bps, w)
    return sums


def shares_from_sums(sums: dict) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """``(values_by_district, citywide)`` in % from the ``key -> (numerator, denominator)`` of
    :func:`physical_sums` (:func:`ratio_by_district`)."""
    by_d: dict[str, np.ndarray] = {}
    city: dict[str, float] = {}
    for key, (num, den) in sums.items():
        by_d[key], city[key] = ratio_by_district(num, den, 100.0)
    return by_d, city


def key_place_reached(rsrp_indoor_dbm, sinr_indoor_db, rsrp_min_dbm: float, sinr_min_db: float):
    """Which key places are reached: indoor RSRP and SINR both meet the thresholds."""
    return coverage_mask(rsrp_indoor_dbm, sinr_indoor_db, rsrp_min_dbm, sinr_min_db)


def key_place_reach_pct(
    rsrp_indoor_dbm,
    sinr_indoor_db,
    place_district_idx,
    *,
    rsrp_min_dbm: float,
    sinr_min_db: float,
    n_districts: int,
):
    """5G reach at key places (重点场所5G网络通达率), per district and citywide (%).

    Parameters
    ----------
    rsrp_indoor_dbm, sinr_indoor_db : array [n_places]
        Indoor best-server values at each key place (NaN: no server).
    place_district_idx : int array [n_places]
        District index of each place.
    n_districts : int

    Returns
    -------
    per_district_pct : ndarray [n_districts] (NaN for a district with no key place)
    citywide_pct : float
        ``100 * reached / places`` (each place counts once).
    """
    reached = key_place_reached(rsrp_indoor_dbm, sinr_indoor_db, rsrp_min_dbm, sinr_min_db)
    reached = np.atleast_1d(reached)
    return weighted_share_by_district_pct(reached, np.ones(reached.shape), place_district_idx,
                                          n_districts)


def key_place_pixels(land_flat, place_flat) -> tuple[np.ndarray, np.ndarray]:
    """Position of each key place among the land pixels, and whether it is on land.

    Parameters
    ----------
    land_flat : int array [n_land], sorted
        Flat raster index of each land pixel (``CityRasters.land_flat``).
    place_flat : int array [n_places]
        Flat raster index of the pixel holding each place (``Grid.flat_index_of``).

    Returns
    -------
    pos : intp array [n_places]
        Index into the land-pixel arrays (clipped; meaningless where not on land).
    on_land : bool array [n_places]
    """
    land_flat = np.asarray(land_flat)
    flat = np.asarray(place_flat)
    pos = np.clip(np.searchsorted(land_flat, flat), 0, land_flat.size - 1)
    return pos, land_flat[pos] == flat


def ran_weights(mobile_share_by_ran: Mapping[str, float]) -> dict[str, float]:
    """Each radio network's weight in the city's indicators: its mobile share, normalised to sum 1.

    ``mobile_share_by_ran``: the mobile share of the operators each network serves, added up
    (two operators sharing one network count together). A subscriber sees the network of its
    own operator, so an indicator of the city is the mobile-share weighted mean of the
    networks' indicators. Shares that are all 0 stay 0 (divided by 1).
    """
    total = sum(mobile_share_by_ran.values()) or 1.0
    return {ran: s / total for ran, s in mobile_share_by_ran.items()}


def add_weighted(by_d: dict, city: dict, weight: float, values_by_district: Mapping, citywide: Mapping) -> None:
    """Add ``weight`` times one network's indicators to the running sums ``by_d`` and ``city``."""
    for k in values_by_district:
        by_d[k] = by_d.get(k, 0.0) + weight * np.asarray(values_by_district[k], dtype=float)
        city[k] = city.get(k, 0.0) + weight * float(citywide[k])


BEST_LAYER_FIELDS = ("rsrp_dbm", "sinr_db", "rsrp_indoor_dbm", "sinr_indoor_db", "rate_outdoor_bps", "rate_indoor_bps")
"""Per-pixel fields taken from a network's best layer."""


def best_layer_values(layers: Sequence, key_rate: str = "rate_indoor_bps") -> dict[str, np.ndarray]:
    """Per pixel, the :data:`BEST_LAYER_FIELDS` of the layer with the highest ``key_rate``.

    A network's users use its best layer (the capacity layer where it serves, the coverage
    layer where only it reaches). ``layers`` are objects with those attributes as arrays
    ``[n_land]`` (:class:`sim.results.CoverageLayers`); NaN rates count as no service.
    """
    rates = np.stack([np.nan_to_num(getattr(c, key_rate), nan=-1.0) for c in layers])
    pick = np.argmax(rates, axis=0)
    out = {}
    for name in BEST_LAYER_FIELDS:
        arr = np.stack([getattr(c, name) for c in layers])
        out[name] = np.take_along_axis(arr, pick[None, :], axis=0)[0]
    return out


def site_density(n_sites_d, area_official_km2, area_polygon_km2, population) -> dict:
    """5G sites per km² and per 10,000 residents, per district and citywide.

    Area: the official land area (statistics bureau; it leaves out the tidal flats of
    coastal polygons), the polygon area where a district has none (NaN or 0). Residents:
    the census population of the district table (as ``bs_5g_per_10k``).
    """
    n = np.asarray(n_sites_d, dtype=float)
    official = np.asarray(area_official_km2, dtype=float)
    has = np.isfinite(official) & (official > 0)
    area = np.where(has, official, np.asarray(area_polygon_km2, dtype=float))
    pop = np.asarray(population, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_km2 = np.where(area > 0, n / area, np.nan)
        per_10k = np.where(pop > 0, 1e4 * n / pop, np.nan)
    city = {"sites_5g": int(n.sum()),
            "sites_5g_per_km2": round(float(n.sum() / area.sum()), 4) if area.sum() > 0 else None,
            "sites_5g_per_10k": round(float(1e4 * n.sum() / pop.sum()), 4) if pop.sum() > 0 else None,
            "area_basis": "official" if has.all() else "official, polygon where none",
            "area_km2": round(float(area.sum()), 4)}
    return {"sites_5g": n.astype(np.int64), "sites_5g_per_km2": per_km2, "sites_5g_per_10k": per_10k,
            "area_basis": np.where(has, "official", "polygon"), "citywide": city}


def fibre_indicators(fibre, households, population) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The fibre criteria per district and citywide from a district FTTH result.

    ``fibre`` has per-district arrays ``ten_g_households``, ``ports_ten_g``, ``ports_gpon``,
    ``share_ge_500mbps``, ``subscribers`` and ``users_ge_1000mbps``
    (:class:`sim.broadband.DistrictFibre`). Returns household gigabit-fibre coverage
    (10G-PON households passed / households), 10G-PON port share, the share of subscribers
    on >= 500 Mbit/s plans (%) and gigabit users per 10,000 residents.
    """
    by_d, city = {}, {}
    by_d["fibre_gigabit_coverage_pct"], city["fibre_gigabit_coverage_pct"] = ratio_by_district(
        fibre.ten_g_households, households, 100.0)
    by_d["pon_10g_port_share_pct"], city["pon_10g_port_share_pct"] = ratio_by_district(
        fibre.ports_ten_g, fibre.ports_ten_g + fibre.ports_gpon, 100.0)
    subs_500 = fibre.share_ge_500mbps * fibre.subscribers
    by_d["fbb_500m_user_share_pct"], city["fbb_500m_user_share_pct"] = ratio_by_district(
        subs_500, fibre.subscribers, 100.0)
    by_d["gigabit_users_per_10k"], city["gigabit_users_per_10k"] = ratio_by_district(
        fibre.users_ge_1000mbps, population, 1e4)
    return by_d, city


SPEED_TEST_QUANTILES = (0.1, 0.5, 0.9)
"""Percentiles of the speed-test indicator (10th, 50th, 90th)."""


def weighted_quantiles(values, weights, quantiles=SPEED_TEST_QUANTILES) -> np.ndarray:
    """Quantiles of the distribution that puts weight ``w_i`` on value ``x_i`` (NaN values left out).

    The inverse of the weighted CDF: the ``q`` quantile is the smallest ``x_k`` (sorted) with
    ``sum_{i <= k} w_i >= q W`` (``W`` the total weight; "inverted CDF", Hyndman & Fan 1996
    definition 1, with weights). NaN for each quantile when no weight is left.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    if x.shape != w.shape:
        raise InputError("indicators", "weights", f"expected the shape of values {x.shape}, got {w.shape}")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise InputError("indicators", "weights", "expected finite weights >= 0")
    ok = ~np.isnan(x) & (w > 0)
    x, w = x[ok], w[ok]
    q = np.asarray(quantiles, dtype=np.float64)
    if x.size == 0:
        return np.full(q.shape, np.nan)
    order = np.argsort(x, kind="stable")
    cw = np.cumsum(w[order])
    k = np.searchsorted(cw, q * cw[-1], side="left")
    return x[order][np.minimum(k, x.size - 1)]


def speed_test_indicators(values_by_net: Sequence, weights_by_net: Sequence, district_idx, n_districts: int,
                          quantiles=SPEED_TEST_QUANTILES, scale: float = 1e-6):
    """Mean and percentiles of a speed test drawn from the population, per district and citywide.

    Parameters
    ----------
    values_by_net : sequence of arrays [n_land]
        Each network's per-pixel result (e.g. busy-hour flow throughput, bit/s); NaN where the
        network does not serve the pixel (no test is run there).
    weights_by_net : sequence of arrays [n_land]
        Weight of each network's result at each pixel (residents x the network's mobile
        share).
    district_idx : int array [n_land]
    n_districts : int
    quantiles : sequence of float in [0, 1]
    scale : float
        Multiplier of the results (1e-6: bit/s -> Mbit/s).

    Returns
    -------
    by_district : dict ``"mean"`` and ``"p10"``, ``"p50"``, ... -> ndarray [n_districts] (NaN: no test)
    citywide : dict of the same keys -> float

    Notes
    -----
    The tests of a district are a weighted sample over its pixels and the networks: the mean
    is ``sum w x / sum w``, the percentiles those of :func:`weighted_quantiles`.
    """
    x = np.concatenate([np.asarray(v, dtype=np.float64) for v in values_by_net])
    w = np.concatenate([np.asarray(v, dtype=np.float64) for v in weights_by_net])
    if x.shape != w.shape:
        raise InputError("indicators", "weights_by_net", "expected one weight per value")
    n_land = np.asarray(values_by_net[0]).size if len(values_by_net) else 0
    d = np.tile(_check_district_idx(district_idx, n_land, n_districts), len(values_by_net))
    x = x * scale
    names = ["mean", *[f"p{round(100 * q)}" for q in quantiles]]
    by_d = {k: np.full(n_districts, np.nan) for k in names}
    city = {}

    def stats(xs, ws):
        ok = ~np.isnan(xs) & (ws > 0)
        tot = ws[ok].sum()
        mean = float(np.dot(xs[ok], ws[ok]) / tot) if tot > 0 else math.nan
        return [mean, *weighted_quantiles(xs, ws, quantiles)]

    for k, v in zip(names, stats(x, w)):
        city[k] = float(v)
    order = np.argsort(d, kind="stable")
    bounds = np.searchsorted(d[order], np.arange(n_districts + 1))
    for i in range(n_districts):
        sel = order[bounds[i]:bounds[i + 1]]
        for k, v in zip(names, stats(x[sel], w[sel])):
            by_d[k][i] = v
    return by_d, city


def speed_test_samples(values, weights, district_idx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The tests among some pixels of one network: ``(values, weights, districts)`` where a value is
    given (not NaN) and its weight is positive, in pixel order, float64 (the samples of
    :class:`SpeedTestSums`)."""
    x = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    keep = ~np.isnan(x) & (w > 0)
    return x[keep], w[keep], np.asarray(district_idx)[keep]


SPEED_BIN_SHIFT = 16
"""A speed test's value falls in bin ``float32 bits >> 16`` (65,536 bins, monotone in a value >= 0:
about 0.8 % wide) in the first pass of :class:`SpeedTestSums`."""


def value_bin(values) -> np.ndarray:
    """The :data:`SPEED_BIN_SHIFT` bin of each value (>= 0, as float32): its IEEE 754 bits shifted (-0 is 0)."""
    v = np.asarray(values, dtype=np.float32) + np.float32(0.0)
    return (v.view(np.uint32) >> SPEED_BIN_SHIFT).astype(np.intp)


class SpeedTestSums:
    """:func:`speed_test_indicators` over chunks of pixels, in two passes, with memory of neither the pixels
    nor the tests.

    Pass 1 (:meth:`add`, each network's chunks in land order): per district the sums of ``w`` and ``w x``
    (the mean) and the weight in each :func:`value_bin` (a histogram, per district and citywide), all
    added in pixel order (:func:`sim.pixelstore.bincount_onto`), so the same whatever the chunks. The
    histogram tells in which bin each percentile lies and the weight below that bin. Pass 2
    (:meth:`add_again`, the same chunks) keeps the tests in those bins only; :meth:`result` sorts them
    and finds each percentile as :func:`weighted_quantiles` does (the smallest value whose cumulative
    weight reaches ``q W``), the cumulative weight starting from the weight below the bin. The mean is
    ``sum w x / sum w`` added in pixel order.
    """

    def __init__(self, n_districts: int, quantiles=SPEED_TEST_QUANTILES, scale: float = 1e-6):
        self.n_d, self.q, self.scale = int(n_districts), np.asarray(quantiles, dtype=np.float64), float(scale)
        n_bins = 1 << (32 - SPEED_BIN_SHIFT)
        self.n_bins = n_bins
        self.num, self.den = np.zeros(self.n_d + 1), np.zeros(self.n_d + 1)   # districts, then the city
        self.hist = np.zeros((self.n_d + 1) * n_bins)
        self.wanted = None
        self.kept: list = []

    def _samples(self, values, weights, district_idx):
        x, w, d = speed_test_samples(values, weights, district_idx)
        return x, w, _check_district_idx(d, x.size, self.n_d)

    def add(self, values, weights, district_idx) -> None:
        """Pass 1: one network's tests at some pixels (arguments as :func:`speed_test_samples`)."""
        x, w, d = self._samples(values, weights, district_idx)
        xs = x * self.scale
        city = np.full(d.size, self.n_d)
        for scope in (d, city):
            self.num = bincount_onto(self.num, scope, xs * w)
            self.den = bincount_onto(self.den, scope, w)
            self.hist = bincount_onto(self.hist, scope * self.n_bins + value_bin(x), w)

    def _targets(self):
        """Per scope (districts, then the city) and quantile: ``(bin, weight below it, q W)``."""
        cum = np.cumsum(self.hist.reshape(self.n_d + 1, self.n_bins), axis=1)
        out = {}
        for s in range(self.n_d + 1):
            total = cum[s, -1]
            if not total > 0:
                continue
            for j, q in enumerate(self.q):
                target = q * total
                b = min(int(np.searchsorted(cum[s], target, side="left")), self.n_bins - 1)
                out[(s, j)] = (b, cum[s, b - 1] if b > 0 else 0.0, target)
        return out

    def add_again(self, values, weights, district_idx) -> None:
        """Pass 2: the same tests again, in the same order; those in a percentile's bin are kept."""
        if self.wanted is None:
            self.wanted = self._targets()
            self._keys = np.unique([s * self.n_bins + b for (s, _), (b, _, _) in self.wanted.items()])
        x, w, d = self._samples(values, weights, district_idx)
        key = value_bin(x)
        for scope in (d, np.full(d.size, self.n_d)):
            k = scope * self.n_bins + key
            keep = np.isin(k, self._keys)
            self.kept.append((k[keep], x[keep], w[keep]))

    def result(self) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """``(by_district, citywide)`` as :func:`speed_test_indicators` returns them."""
        names = ["mean", *[f"p{round(100 * q)}" for q in self.q]]
        vals = np.full((self.n_d + 1, len(names)), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            vals[:, 0] = np.where(self.den > 0, self.num / np.where(self.den > 0, self.den, 1.0), np.nan)
        wanted = self.wanted if self.wanted is not None else self._targets()
        k = np.concatenate([p[0] for p in self.kept]) if self.kept else np.zeros(0, np.intp)
        x = np.concatenate([p[1] for p in self.kept]) if self.kept else np.zeros(0)
        w = np.concatenate([p[2] for p in self.kept]) if self.kept else np.zeros(0)
        for (s, j), (b, before, target) in wanted.items():
            sel = k == s * self.n_bins + b
            if not sel.any():
                continue
            order = np.argsort(x[sel], kind="stable")
            xs = x[sel][order]
            cw = np.cumsum(np.concatenate([[before], w[sel][order]]))[1:]
            vals[s, 1 + j] = xs[min(int(np.searchsorted(cw, target, side="left")), xs.size - 1)] * self.scale
        by_d = {n: vals[:self.n_d, i].copy() for i, n in enumerate(names)}
        city = {n: float(vals[self.n_d, i]) for i, n in enumerate(names)}
        return by_d, city


def mixture_mean(values_by_net: Sequence, weights: Sequence[float]) -> np.ndarray:
    """Per pixel, the ``weights``-weighted mean of the networks' values, over the networks that have one.

    NaN where no network has a value (float32 out). E.g. the mean speed test at a pixel over
    the networks, weighted by their mobile shares.
    """
    num = None
    den = None
    for v, wt in zip(values_by_net, weights):
        v = np.asarray(v, dtype=np.float64)
        ok = ~np.isnan(v)
        n = np.where(ok, v * wt, 0.0)
        dd = np.where(ok, float(wt), 0.0)
        num = n if num is None else num + n
        den = dd if den is None else den + dd
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan).astype(np.float32)
