"""Fibre to the home per district: PON technologies, subscribers and speed tiers, OLT ports,
where 10G-PON passes first, and the PON-port busy hour on the processor-sharing core.

Sources
-------
* ITU-T G.984.1 (03/2008) §8 and G.984.2 §8.2: GPON nominal line rates 2.48832 Gbit/s
  downstream, 1.24416 Gbit/s upstream; logical split up to 1:128; class B+ optics (13-28 dB
  loss budget, the common GPON class).
* ITU-T G.987.1 (03/2016) §6 and G.987.2: XG-PON 9.95328 Gbit/s down, 2.48832 Gbit/s up;
  split of at least 1:64, logically up to 1:256; loss classes N1 29 dB, N2 31 dB, E1 33 dB.
* ITU-T G.9807.1 (06/2016) §7 and Annex C: XGS-PON 9.95328 Gbit/s in both directions,
  same split and loss classes as XG-PON; downstream FEC RS(248,216) mandatory.
* ITU-T G.987.3 §10 (XGTC) and G.984.3 §8, §13 (GTC, optional RS(255,239) FEC).

Payload efficiency (usable Ethernet payload / line rate)
-------------------------------------------------------
* GPON downstream 0.92 (2.29 Gbit/s): RS(255,239) FEC where enabled (239/255 = 0.937)
  times about 0.98 for the GTC frame header (PCBd, BWmap) and 5-byte GEM headers on
  ~1500-byte frames. Upstream 0.85: burst guard time, preamble and delimiter per T-CONT
  burst and DBA reports.
* XG-PON and XGS-PON downstream 0.85 (8.46 Gbit/s): RS(248,216) FEC (216/248 = 0.871)
  times about 0.98 for the PSBd, XGTC header and 8-byte XGEM headers. Upstream: XG-PON 0.85
  (RS(248,232), 0.935, times burst overhead), XGS-PON 0.80 (RS(248,216) upstream).
These are typical figures of the frame structure, not measurements; change them in
:data:`PON_TECHNOLOGIES` to match an operator's equipment.

Split ratios
------------
GPON: 1:16, 1:32, 1:64. A 1:128 splitter costs about 21.1 dB ideal (10 log10 128) plus
~3 dB excess; with 20 km of fibre (~7 dB at 1490 nm) that exceeds class B+ (28 dB), so
GPON 1:128 is not modelled. XG-PON / XGS-PON: 1:16, 1:32, 1:64, 1:128 (split >= 1:64
required by G.987.1 / G.9807.1; 1:128 within the N2/E1 budgets at moderate reach).

Everything is a pure function of arrays; the spatial allocation is vectorised with
``np.lexsort`` and ``np.cumsum`` (no loop over pixels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.errors import InputError
from sim.queueing import MeanCI, mean_ci95, simulate_ps, spawn_rngs

__all__ = [
    "PonTechnology",
    "PON_TECHNOLOGIES",
    "TEN_G_TECHNOLOGIES",
    "GIGABIT_TIER_BPS",
    "pon_technology",
    "check_split",
    "pon_payload_capacity_bps",
    "max_simultaneous_at_tier",
    "tier_mix_array",
    "DistrictFibre",
    "district_fibre",
    "FibreRasters",
    "fibre_rasters",
    "PonBusyHour",
    "pon_busy_hour",
    "pon_busy_hour_table",
]

_SOURCE = "sim.broadband"

GIGABIT_TIER_BPS = 1.0e9
"""Tiers at or above this rate are gigabit tiers (sold on 10G-PON only, see district_fibre)."""

_MIX_TOL = 1e-6
_TIME_TOL_S = 1e-9  # "rate >= tier" allows the float64 rounding of event times (eps x t)


@dataclass(frozen=True)
class PonTechnology:
    """One PON technology: line rates, payload efficiencies and split ratios (see module notes)."""

    name: str
    standard: str
    down_bps: float
    up_bps: float
    payload_efficiency_down: float
    payload_efficiency_up: float
    splits: tuple[int, ...]
    ten_g: bool


PON_TECHNOLOGIES: dict[str, PonTechnology] = {
    "gpon": PonTechnology("gpon", "ITU-T G.984.1/G.984.2", 2.48832e9, 1.24416e9, 0.92, 0.85, (16, 32, 64), False),
    "xg-pon": PonTechnology("xg-pon", "ITU-T G.987.1/G.987.2", 9.95328e9, 2.48832e9, 0.85, 0.85,
                            (16, 32, 64, 128), True),
    "xgs-pon": PonTechnology("xgs-pon", "ITU-T G.9807.1", 9.95328e9, 9.95328e9, 0.85, 0.80,
                             (16, 32, 64, 128), True),
}
"""The PON technologies modelled, by name (line rates in bit/s, module notes for the rest)."""

TEN_G_TECHNOLOGIES = tuple(k for k, v in PON_TECHNOLOGIES.items() if v.ten_g)


def pon_technology(name: str) -> PonTechnology:
    """The :class:`PonTechnology` called ``name`` (InputError otherwise)."""
    tech = PON_TECHNOLOGIES.get(name) if isinstance(name, str) else None
    if tech is None:
        raise InputError(_SOURCE, "technology", f"expected one of {tuple(PON_TECHNOLOGIES)}, got {name!r}")
    return tech


def check_split(technology: str, split) -> int:
    """Return ``split`` as int if ``technology`` supports it; InputError otherwise."""
    tech = pon_technology(technology)
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)) or int(split) not in tech.splits:
        sup = ", ".join(f"1:{s}" for s in tech.splits)
        raise InputError(_SOURCE, "split", f"{tech.name} supports {sup}, got {split!r}")
    return int(split)


def pon_payload_capacity_bps(technology: str, direction: str = "down") -> float:
    """Usable payload of one PON port: line rate times payload efficiency (module notes).

    GPON down: 2.48832e9 x 0.92 = 2.289 Gbit/s; XG(S)-PON down: 9.95328e9 x 0.85 = 8.460 Gbit/s.
    """
    tech = pon_technology(technology)
    if direction == "down":
        return tech.down_bps * tech.payload_efficiency_down
    if direction == "up":
        return tech.up_bps * tech.payload_efficiency_up
    raise InputError(_SOURCE, "direction", f"expected 'down' or 'up', got {direction!r}")


def max_simultaneous_at_tier(technology: str, tier_bps: float, direction: str = "down") -> int:
    """How many flows one port can carry at ``tier_bps`` at once: ``floor(C / tier)``.

    GPON at 1 Gbit/s: floor(2.289 / 1) = 2; XGS-PON: floor(8.460 / 1) = 8.
    """
    t = float(tier_bps)
    if not (t > 0) or not math.isfinite(t):
        raise InputError(_SOURCE, "tier_bps", f"expected a positive finite rate, got {tier_bps!r}")
    return int(math.floor(pon_payload_capacity_bps(technology, direction) / t))


# --------------------------------------------------------------------------- validation


def _district_values(field: str, value, n: int | None = None) -> np.ndarray:
    x = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if x.ndim != 1:
        raise InputError(_SOURCE, field, f"expected one value per district, got shape {x.shape}")
    if n is not None and x.size not in (1, n):
        raise InputError(_SOURCE, field, f"expected {n} values (one per district), got {x.size}")
    bad = np.flatnonzero(~np.isfinite(x) | (x < 0))
    if bad.size:
        i = int(bad[0])
        raise InputError(_SOURCE, field, f"expected finite values >= 0, got {x[i]:g} at district {i}")
    return np.broadcast_to(x, (n,)).copy() if n is not None else x


def _share_values(field: str, value, n: int) -> np.ndarray:
    x = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if x.size not in (1, n) or x.ndim != 1:
        raise InputError(_SOURCE, field, f"expected a share or {n} shares (one per district), got shape {x.shape}")
    bad = np.flatnonzero(np.isnan(x) | (x < 0) | (x > 1))
    if bad.size:
        raise InputError(_SOURCE, field, f"expected a share in [0, 1], got {x[int(bad[0])]:g}")
    return np.broadcast_to(x, (n,)).copy()


def _tiers(tier_bps) -> np.ndarray:
    t = np.atleast_1d(np.asarray(tier_bps, dtype=np.float64))
    if t.ndim != 1 or t.size == 0 or np.any(~np.isfinite(t) | (t <= 0)):
        raise InputError(_SOURCE, "tier_bps", "expected a non-empty list of positive finite rates")
    return t


def tier_mix_array(tier_mix, n_tiers: int, n_districts: int | None = None) -> np.ndarray:
    """Validate a speed-tier mix: shares in [0, 1] summing to 1 within 1e-6.

    ``tier_mix`` is ``[n_tiers]`` (citywide) or ``[n_districts, n_tiers]``; returns it as
    float64, broadcast to ``[n_districts, n_tiers]`` when ``n_districts`` is given.
    """
    m = np.asarray(tier_mix, dtype=np.float64)
    if m.ndim not in (1, 2) or m.shape[-1] != n_tiers:
        raise InputError(_SOURCE, "tier_mix", f"expected {n_tiers} shares per row (one per tier), got shape {m.shape}")
    if np.any(np.isnan(m) | (m < 0) | (m > 1)):
        raise InputError(_SOURCE, "tier_mix", "expected shares in [0, 1]")
    sums = m.sum(axis=-1)
    worst = float(np.max(np.abs(np.atleast_1d(sums) - 1.0)))
    if worst > _MIX_TOL:
        off = float(np.atleast_1d(sums)[np.argmax(np.abs(np.atleast_1d(sums) - 1.0))])
        raise InputError(_SOURCE, "tier_mix", f"expected shares summing to 1 (within 1e-6), got sum {off:.6g}")
    if n_districts is None:
        return m
    if m.ndim == 2 and m.shape[0] != n_districts:
        raise InputError(_SOURCE, "tier_mix", f"expected {n_districts} rows (one per district), got {m.shape[0]}")
    return np.broadcast_to(m, (n_districts, n_tiers)).copy()


def _fill(fill_factor) -> float:
    f = float(fill_factor)
    if not (0.0 < f <= 1.0):
        raise InputError(_SOURCE, "fill_factor", f"expected a share in (0, 1], got {fill_factor!r}")
    return f


# --------------------------------------------------------------------------- districts


@dataclass(frozen=True)
class DistrictFibre:
    """FTTH per district (arrays over districts; ``[n_d, n_tiers]`` for tier counts).

    Attributes
    ----------
    households, fibre_households, ten_g_households, gpon_households : ndarray [n_d]
        Households, passed by any FTTH, by 10G-PON (gigabit-capable) and by GPON only.
    gigabit_coverage_share : ndarray [n_d]
        ``ten_g_households / households`` (NaN for 0 households): the One-Gbps city
        "gigabit fibre coverage" of households.
    subscribers, subscribers_ten_g, subscribers_gpon : ndarray [n_d]
        ``passed x take_up`` in total and per technology.
    tier_subscribers : ndarray [n_d, n_tiers]
        Subscribers per speed tier after gigabit tiers are limited to 10G-PON.
    gigabit_demand_unmet : ndarray [n_d]
        Subscribers who would take a gigabit tier but are passed by GPON only (moved to the
        highest sub-gigabit tier).
    ports_gpon, ports_ten_g : ndarray [n_d], int64
        OLT PON ports ``ceil(subscribers_on_tech / (split x fill_factor))``.
    ten_g_port_share : ndarray [n_d]
        ``ports_ten_g / (ports_gpon + ports_ten_g)`` (NaN with no ports).
    share_ge_500mbps : ndarray [n_d]
        Share of subscribers on tiers >= 500 Mbit/s (NaN with no subscribers).
    users_ge_1000mbps : ndarray [n_d]
        Subscribers on tiers >= 1000 Mbit/s.
    tier_bps : ndarray [n_tiers]
    """

    households: np.ndarray
    fibre_households: np.ndarray
    ten_g_households: np.ndarray
    gpon_households: np.ndarray
    gigabit_coverage_share: np.ndarray
    subscribers: np.ndarray
    subscribers_ten_g: np.ndarray
    subscribers_gpon: np.ndarray
    tier_subscribers: np.ndarray
    gigabit_demand_unmet: np.ndarray
    ports_gpon: np.ndarray
    ports_ten_g: np.ndarray
    ten_g_port_share: np.ndarray
    share_ge_500mbps: np.ndarray
    users_ge_1000mbps: np.ndarray
    tier_bps: np.ndarray


def _ports(subs: np.ndarray, split: int, fill: float) -> np.ndarray:
    # 1e-9 keeps 12.0000000001 ports (float rounding) from becoming 13
    return np.ceil(subs / (split * fill) - 1e-9).clip(min=0).astype(np.int64)


def _check_passed(hh: np.ndarray, fib: np.ndarray, teng: np.ndarray) -> np.ndarray:
    """``teng`` capped at ``fib`` after checking ``teng <= fib <= hh`` (within float rounding)."""
    over = np.flatnonzero(fib > hh * (1 + 1e-9) + 1e-9)
    if over.size:
        i = int(over[0])
        raise InputError(_SOURCE, "fibre_households",
                         f"expected at most households, got {fib[i]:g} > {hh[i]:g} at district {i}")
    over = np.flatnonzero(teng > fib * (1 + 1e-9) + 1e-9)
    if over.size:
        i = int(over[0])
        raise InputError(_SOURCE, "ten_g_households",
                         f"expected at most fibre_households, got {teng[i]:g} > {fib[i]:g} at district {i}")
    return np.minimum(teng, fib)


def _inventory_ports(share, subs_t, subs_g, gsplit: int, tsplit: int, fill: float):
    """Subscribers and ports per technology when the 10G-PON port share is an input.

    Ports: those needed by every subscriber at the GPON split, ``round(share x total)`` of
    them 10G-PON; 10G-PON-passed subscribers beyond the 10G-PON ports' capacity use GPON
    ports (more GPON ports when those are too few). Returns ``subs_t, subs_g, ports_t, ports_g``.
    """
    total = _ports(subs_t + subs_g, gsplit, fill)
    ports_t = np.rint(share * total).astype(np.int64)
    new_t = np.minimum(subs_t, ports_t * tsplit * fill)
    new_g = subs_g + (subs_t - new_t)
    ports_g = np.maximum(total - ports_t, _ports(new_g, gsplit, fill))
    return new_t, new_g, ports_t, ports_g


def district_fibre(
    households,
    fibre_households,
    ten_g_households,
    take_up,
    tier_bps,
    tier_mix,
    *,
    gpon_split: int = 64,
    ten_g_split: int = 64,
    ten_g_technology: str = "xgs-pon",
    fill_factor: float = 0.8,
    ten_g_port_share=None,
) -> DistrictFibre:
    """FTTH indicators per district.

    Parameters
    ----------
    households : array_like [n_d]
        Households per district (census; finite, >= 0).
    fibre_households : array_like [n_d]
        Households passed by any FTTH (<= households).
    ten_g_households : array_like [n_d]
        Households passed by 10G-PON (<= fibre_households).
    take_up : float or array_like [n_d]
        Share of passed households that subscribe, in [0, 1].
    tier_bps : array_like [n_tiers]
        Speed tiers, bit/s (e.g. 100, 300, 500, 1000, 2000 Mbit/s).
    tier_mix : array_like [n_tiers] or [n_d, n_tiers]
        Share of subscribers per tier, summing to 1 within 1e-6.
    gpon_split, ten_g_split : int
        Split ratios (see :func:`check_split`).
    ten_g_technology : {"xg-pon", "xgs-pon"}
    fill_factor : float in (0, 1]
        Share of splitter ports in use.
    ten_g_port_share : None, float or array_like [n_d], optional
        Share of OLT PON ports that are 10G-PON (port inventory; MIIT's 10G-PON端口占比 counts
        ports, not households: 36 % Beijing, 83 % Tianjin in its Dec 2022 notice). None:
        ports follow each technology's subscribers.

    Returns
    -------
    DistrictFibre

    Notes
    -----
    ASSUMPTIONS (documented modelling choices): take-up is the same on GPON and 10G-PON;
    subscribers take tiers by ``tier_mix`` except that gigabit tiers (>= 1 Gbit/s) are sold
    on 10G-PON only, so ``users_ge_1000mbps = min(subscribers x share_ge_1000,
    subscribers_ten_g)`` with each gigabit tier scaled alike and the unmet demand moved to
    the highest tier below 1 Gbit/s. Ports follow subscribers (ASSUMPTION):
    ``ceil(subs / (split x fill_factor))``. With ``ten_g_port_share`` the ports needed by all
    subscribers at the GPON split are divided by that share (rounded to whole ports); 10G-PON
    ports carry at most ``split x fill_factor`` subscribers each, the rest of the 10G-PON-passed
    subscribers stay on GPON ports (added when the GPON ports are too few).
    """
    hh = _district_values("households", households)
    n = hh.size
    fib = _district_values("fibre_households", fibre_households, n)
    teng = _district_values("ten_g_households", ten_g_households, n)
    teng = _check_passed(hh, fib, teng)
    tu = _share_values("take_up", take_up, n)
    tiers = _tiers(tier_bps)
    mix = tier_mix_array(tier_mix, tiers.size, n)
    gsplit = check_split("gpon", gpon_split)
    if ten_g_technology not in TEN_G_TECHNOLOGIES:
        raise InputError(_SOURCE, "ten_g_technology", f"expected one of {TEN_G_TECHNOLOGIES}, got {ten_g_technology!r}")
    tsplit = check_split(ten_g_technology, ten_g_split)
    fill = _fill(fill_factor)

    gpon_hh = fib - teng
    subs_t = teng * tu
    subs_g = gpon_hh * tu
    subs = subs_t + subs_g
    port_inventory = None
    if ten_g_port_share is not None:
        port_inventory = _inventory_ports(_share_values("ten_g_port_share", ten_g_port_share, n), subs_t, subs_g,
                                          gsplit, tsplit, fill)
        subs_t, subs_g = port_inventory[:2]
    tier_subs = subs[:, None] * mix
    gig = tiers >= GIGABIT_TIER_BPS
    demand_gig = tier_subs[:, gig].sum(axis=1)
    served_gig = np.minimum(demand_gig, subs_t)
    unmet = demand_gig - served_gig
    if np.any(unmet > 0):
        below = np.flatnonzero(~gig)
        if below.size == 0:
            raise InputError(_SOURCE, "tier_bps", "expected a tier below 1 Gbit/s for GPON-only subscribers")
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(demand_gig > 0, served_gig / demand_gig, 1.0)
        tier_subs[:, gig] *= scale[:, None]
        tier_subs[:, below[np.argmax(tiers[below])]] += unmet

    if port_inventory is None:
        ports_g, ports_t = _ports(subs_g, gsplit, fill), _ports(subs_t, tsplit, fill)
    else:
        ports_t, ports_g = port_inventory[2:]
    total_ports = ports_g + ports_t
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = np.where(hh > 0, teng / hh, np.nan)
        port_share = np.where(total_ports > 0, ports_t / np.maximum(total_ports, 1), np.nan)
        ge500 = np.where(subs > 0, tier_subs[:, tiers >= 5e8].sum(axis=1) / subs, np.nan)
    return DistrictFibre(
        households=hh,
        fibre_households=fib,
        ten_g_households=teng,
        gpon_households=gpon_hh,
        gigabit_coverage_share=cov,
        subscribers=subs,
        subscribers_ten_g=subs_t,
        subscribers_gpon=subs_g,
        tier_subscribers=tier_subs,
        gigabit_demand_unmet=unmet,
        ports_gpon=ports_g,
        ports_ten_g=ports_t,
        ten_g_port_share=port_share,
        share_ge_500mbps=ge500,
        users_ge_1000mbps=tier_subs[:, gig].sum(axis=1),
        tier_bps=tiers,
    )


# --------------------------------------------------------------------------- spatial


@dataclass(frozen=True)
class FibreRasters:
    """Households passed per pixel (rasters shaped like the household raster).

    ``ten_g_pon_households`` are the gigabit-capable households (the One-Gbps city counts
    households passed by 10G-PON); ``gigabit_capable_share`` is their share of the pixel's
    households (NaN where there are none).
    """

    fibre_households: np.ndarray
    ten_g_pon_households: np.ndarray
    gigabit_capable_share: np.ndarray


def _allocate(h: np.ndarray, d: np.ndarray, target: np.ndarray, order: str, sort_cache):
    """Households passed per pixel, district by district, up to ``target[d]``."""
    out = np.zeros(h.shape, dtype=np.float64)
    if order == "uniform":
        valid = (d >= 0) & (h > 0)
        tot = np.bincount(d[valid], weights=h[valid], minlength=target.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(tot > 0, np.minimum(target / tot, 1.0), 0.0)
        out[valid] = h[valid] * frac[d[valid]]
        return out
    for dist, idx, h_s, running in sort_cache:
        # households in denser pixels, cumulated over all districts (the sequential sum carried from the
        # districts before: the bits of one cumsum over every district), then within the pixel's district
        cs_excl = np.cumsum(np.concatenate([[running], h_s]))[1:] - h_s
        before = cs_excl - cs_excl[0]
        out[idx] = np.clip(target[dist] - before, 0.0, h_s)
    return out


def _densest_order(h: np.ndarray, d: np.ndarray, n: int):
    """Per district with households, in district order: ``(district, its pixels densest first (ties by pixel
    index), their households, the households of the districts before added one by one)``. District by
    district, so the sort's memory is that of the largest district, not of the grid."""
    out = []
    running = 0.0
    for dist in range(n):
        idx = np.flatnonzero((d == dist) & (h > 0))
        if not idx.size:
            continue
        idx = idx[np.lexsort((idx, -h[idx]))]
        h_s = h[idx]
        out.append((dist, idx, h_s, running))
        running = float(np.cumsum(np.concatenate([[running], h_s]))[-1])
    return out


def fibre_rasters(households, district, fibre_households, ten_g_households, order: str = "densest") -> FibreRasters:
    """Which pixels FTTH and 10G-PON pass, given per-district household counts.

    Parameters
    ----------
    households : ndarray, float
        Households per pixel (NaN: no data, taken as 0).
    district : ndarray, int, same shape
        District index per pixel (-1: none).
    fibre_households, ten_g_households : array_like [n_d]
        Households passed by any FTTH and by 10G-PON per district (``ten_g <= fibre``).
    order : {"densest", "uniform"}
        ``"densest"``: pixels are passed in order of decreasing household count (ties by
        pixel index) until the district's count is reached; the last pixel is passed in part.
        ``"uniform"``: every pixel of a district gets the same share.

    Returns
    -------
    FibreRasters
        Dtype of ``households`` (at least float32). A district count above the raster's
        households of that district passes them all.
    """
    hr = np.asarray(households)
    dr = np.asarray(district)
    if hr.shape != dr.shape:
        raise InputError(_SOURCE, "district", f"expected the shape of households {hr.shape}, got {dr.shape}")
    if not np.issubdtype(dr.dtype, np.integer):
        raise InputError(_SOURCE, "district", f"expected integer district indices, got dtype {dr.dtype}")
    if order not in ("densest", "uniform"):
        raise InputError(_SOURCE, "order", f"expected 'densest' or 'uniform', got {order!r}")
    h = np.nan_to_num(np.asarray(hr, dtype=np.float64).ravel(), nan=0.0)   # one copy (float64 in: not two)
    if np.any(~np.isfinite(h) | (h < 0)):
        raise InputError(_SOURCE, "households", "expected finite values >= 0 (NaN: no data) per pixel")
    fib = _district_values("fibre_households", fibre_households)
    n = fib.size
    teng = _district_values("ten_g_households", ten_g_households, n)
    if np.any(teng > fib * (1 + 1e-9) + 1e-9):
        raise InputError(_SOURCE, "ten_g_households", "expected at most fibre_households in every district")
    d = dr.ravel()   # in its own integer type (int16 from the grid): the comparisons need no int64 copy
    if d.size and (d.min() < -1 or d.max() >= n):
        raise InputError(_SOURCE, "district", f"expected indices in [-1, {n - 1}], got {d.min()}..{d.max()}")

    cache = _densest_order(h, d, n) if order == "densest" else None
    fibre = _allocate(h, d, fib, order, cache)
    ten_g = _allocate(h, d, teng, order, cache)
    np.minimum(ten_g, fibre, out=ten_g)
    dtype = np.result_type(hr.dtype, np.float32)
    share = np.full(h.shape, np.nan)
    np.divide(ten_g, h, out=share, where=h > 0)
    return FibreRasters(
        fibre_households=fibre.reshape(hr.shape).astype(dtype, copy=False),
        ten_g_pon_households=ten_g.reshape(hr.shape).astype(dtype, copy=False),
        gigabit_capable_share=share.reshape(hr.shape).astype(dtype, copy=False),
    )


# --------------------------------------------------------------------------- PON busy hour


@dataclass(frozen=True)
class PonBusyHour:
    """The busy hour of one PON port (simpy replications; shares of flows).

    Attributes
    ----------
    technology : str
    split : int
    n_subscribers : int
        ``round(split x fill_factor)``.
    capacity_bps : float
        Downstream payload capacity of the port.
    offered_load : float
        ``lambda E[S] / C``.
    overloaded : bool
        ``offered_load >= 1``: nothing simulated, shares 0.
    share_at_tier : MeanCI
        Share of flows whose throughput is at least ``tier_ok_fraction`` of their tier.
    share_gigabit_ge_1gbps : MeanCI
        Share of flows of gigabit tiers (>= 1 Gbit/s) that got >= 1 Gbit/s (NaN without
        gigabit tiers).
    tier_share_at_tier : ndarray [n_tiers]
        ``share_at_tier`` per tier (mean over replications; NaN for tiers without flows).
    throughput_ratio_bps : MeanCI
        ``sum S / sum T`` over all flows.
    """

    technology: str
    split: int
    n_subscribers: int
    capacity_bps: float
    offered_load: float
    overloaded: bool
    share_at_tier: MeanCI
    share_gigabit_ge_1gbps: MeanCI
    tier_share_at_tier: np.ndarray
    throughput_ratio_bps: MeanCI


def _at_least(size_bits, duration_s, rate_bps):
    """``size / duration >= rate`` up to the rounding of event times (a flow at its cap passes)."""
    return size_bits >= rate_bps * np.maximum(duration_s - _TIME_TOL_S, 0.0)


def pon_busy_hour(
    seed,
    technology: str,
    split: int,
    tier_bps,
    tier_mix,
    *,
    active_share: float,
    flows_per_active_sub_per_h: float,
    mean_flow_bits: float,
    horizon_s: float,
    warmup_s: float = 0.0,
    fill_factor: float = 1.0,
    n_replications: int = 5,
    tier_ok_fraction: float = 0.95,
    distribution: str = "exponential",
    sigma: float = 1.0,
    shape: float = 2.5,
) -> PonBusyHour:
    """Simulate the downstream busy hour of one PON port on the PS core.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
    technology, split
        The port (:data:`PON_TECHNOLOGIES`, :func:`check_split`).
    tier_bps, tier_mix : array_like [n_tiers]
        Speed tiers and the subscribers' shares (sum 1 within 1e-6).
    active_share : float in [0, 1]
        Share of the port's subscribers active in the busy hour.
    flows_per_active_sub_per_h : float
        Downloads per active subscriber per hour.
    mean_flow_bits : float
        Mean flow size.
    horizon_s, warmup_s : float
        Recording window of each replication.
    fill_factor : float in (0, 1]
        Subscribers on the port = ``round(split x fill_factor)``.
    n_replications : int
    tier_ok_fraction : float in (0, 1]
        A flow "receives its tier" when its throughput is >= this fraction of the tier.
    distribution, sigma, shape
        Flow-size law (:func:`sim.queueing.flow_sizes_bits`).

    Returns
    -------
    PonBusyHour

    Notes
    -----
    Flows arrive as a Poisson process of rate ``n_subscribers x active_share x flows / 3600``;
    a flow's tier is drawn from ``tier_mix`` (all subscribers download alike). Each flow has
    peak rate ``C`` (the port payload) and cap = its tier; spare capacity of capped flows is
    shared among the others (:mod:`sim.queueing`). ASSUMPTION: the cap is per flow, so two
    concurrent flows of one subscriber could together exceed the tier (rare at busy-hour
    activity). Bonald & Roberts 2012 give the capped-PS throughput in closed form
    (:func:`sim.queueing.capped_ps_throughput_bps`).
    """
    tech = pon_technology(technology)
    sp = check_split(technology, split)
    tiers = _tiers(tier_bps)
    mix = tier_mix_array(tier_mix, tiers.size)
    if mix.ndim != 1:
        raise InputError(_SOURCE, "tier_mix", f"expected one share per tier for a port, got shape {mix.shape}")
    act = float(active_share)
    if not (0.0 <= act <= 1.0):
        raise InputError(_SOURCE, "active_share", f"expected a share in [0, 1], got {active_share!r}")
    fph = float(flows_per_active_sub_per_h)
    if not (fph >= 0.0) or not math.isfinite(fph):
        raise InputError(_SOURCE, "flows_per_active_sub_per_h",
                         f"expected a finite number >= 0, got {flows_per_active_sub_per_h!r}")
    es = float(mean_flow_bits)
    if not (es > 0.0) or not math.isfinite(es):
        raise InputError(_SOURCE, "mean_flow_bits", f"expected a positive finite number, got {mean_flow_bits!r}")
    okf = float(tier_ok_fraction)
    if not (0.0 < okf <= 1.0):
        raise InputError(_SOURCE, "tier_ok_fraction", f"expected a number in (0, 1], got {tier_ok_fraction!r}")
    fill = _fill(fill_factor)
    n_subs = max(int(round(sp * fill)), 1)
    cap_bps = tech.down_bps * tech.payload_efficiency_down
    lam = n_subs * act * fph / 3600.0
    rho = lam * es / cap_bps
    nan = float("nan")
    empty = MeanCI(nan, nan, nan, nan, 0)
    if lam == 0.0:
        raise InputError(_SOURCE, "active_share", "expected some demand (active_share x flows > 0), got none")
    if rho >= 1.0:
        zero = MeanCI(0.0, nan, nan, nan, 0)
        return PonBusyHour(tech.name, sp, n_subs, cap_bps, rho, True, zero, zero,
                           np.zeros(tiers.size), zero)

    present = np.flatnonzero(mix > 0)
    results = [
        simulate_ps(rng, lam, es, np.full(present.size, cap_bps), cap_bps=tiers[present],
                    class_prob=mix[present] / mix[present].sum(), horizon_s=horizon_s, warmup_s=warmup_s,
                    distribution=distribution, sigma=sigma, shape=shape)
        for rng in spawn_rngs(seed, n_replications)
    ]
    at_tier, gig, per_tier = [], [], []
    for r in results:
        tier_of_flow = tiers[present][r.flow_class]
        ok = _at_least(r.size_bits, r.duration_s, okf * tier_of_flow)
        at_tier.append(ok.mean() if r.n_flows else nan)
        g = tier_of_flow >= GIGABIT_TIER_BPS
        gig.append(np.mean(_at_least(r.size_bits[g], r.duration_s[g], GIGABIT_TIER_BPS)) if g.any() else nan)
        row = np.full(tiers.size, nan)
        for k, t in enumerate(present):
            sel = r.flow_class == k
            if sel.any():
                row[t] = ok[sel].mean()
        per_tier.append(row)
    per = np.asarray(per_tier)
    with np.errstate(invalid="ignore"):
        tier_mean = np.array([np.nanmean(per[:, t]) if np.any(~np.isnan(per[:, t])) else nan
                              for t in range(tiers.size)])
    return PonBusyHour(
        technology=tech.name,
        split=sp,
        n_subscribers=n_subs,
        capacity_bps=cap_bps,
        offered_load=rho,
        overloaded=False,
        share_at_tier=mean_ci95(at_tier),
        share_gigabit_ge_1gbps=mean_ci95(gig) if not np.all(np.isnan(gig)) else empty,
        tier_share_at_tier=tier_mean,
        throughput_ratio_bps=mean_ci95([r.throughput_ratio_bps() for r in results]),
    )


def pon_busy_hour_table(seed, technologies, splits, tier_bps, tier_mix, **kwargs) -> list[PonBusyHour]:
    """:func:`pon_busy_hour` for every supported (technology, split) pair.

    Pairs a technology does not support are skipped; pair ``i`` uses stream ``i`` of
    ``SeedSequence(seed).spawn(n_pairs)``. ``kwargs`` go to :func:`pon_busy_hour`.
    """
    pairs = [(t, s) for t in technologies for s in splits if s in pon_technology(t).splits]
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [pon_busy_hour(child, t, s, tier_bps, tier_mix, **kwargs)
            for child, (t, s) in zip(ss.spawn(len(pairs)), pairs)]
