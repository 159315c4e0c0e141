"""Spatially correlated shadow fading and LOS state per site, and per-pixel O2I draws.

Pure numpy, counter-based: every value depends only on the scenario seed, the site id (or
pixel id) and the position, never on a stream of a generator, so the kernel gives the same
numbers whatever the block size, the worker count or the evaluation order.

The field
---------
TR 38.901 V17.0.0 §7.5 step 4 and §7.6.3.1 model the shadow fading (SF) of the links of one
base station as a zero-mean Gaussian field over the UE position with the exponential
autocorrelation ``R(d) = exp(-d / d_cor)``; the decorrelation distances are in Table 7.5-6
(SF: UMa 37 m LOS / 50 m NLOS, UMi 10 m / 13 m, RMa 37 m / 120 m). The LOS state is made
spatially consistent the same way (§7.6.3.3): a uniform variable from such a field, with
``d_cor`` 50 m (UMa, UMi) or 60 m (RMa), compared with Pr_LOS (Table 7.6.3.1-2).

One unit-variance field with unit decorrelation distance serves every site and every
``d_cor``: :func:`unit_field` synthesises it once per seed on a periodic lattice
(:data:`N_CELLS` x :data:`N_CELLS` cells, :data:`CELLS_PER_DCOR` cells per decorrelation
distance, i.e. a torus of 128 decorrelation distances a side) by the spectral method: white
Gaussian noise filtered with the square root of the discrete spectrum of ``exp(-r)``, so its
covariance is exactly the periodised exponential. Site ``s`` reads the field at

    cell = offset_s + (x_UE - x_s) * CELLS_PER_DCOR / d_cor      (nearest cell)

with a uniform random offset per site (:func:`site_offsets`, a hash of seed and site id);
the LOS-state field of the site is read half a torus away. Two sites read far-apart parts
of the torus (a collision within a few ``d_cor`` has a probability of a few 1e-4), so their fields are
independent (TR 38.901 draws the LSPs of each BS independently); two UEs of one site see
the correlation ``exp(-d / d_cor)``. Scaling the read position by ``1 / d_cor`` gives every
scenario and link state its own distance from the same lattice.

Why this design: a sum of random Fourier features per pair costs one cosine per feature
per pixel-site (16 features: about 40 times the kernel's own cost per pair); a hashed
lattice with interpolation costs four hashes and four normal draws per pair. The lookup
costs one gather of a 4 MiB table per pair, and its covariance is exact up to the
nearest-cell rounding (a quarter of ``d_cor``).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from . import propagation
from .results import SCENARIO_CODES, LayerRadio, SectorArrays

__all__ = [
    "N_CELLS",
    "CELLS_PER_DCOR",
    "SF_DECORRELATION_M",
    "LOS_DECORRELATION_M",
    "LOS_SHIFT_CELLS",
    "mix64",
    "hash_uniform",
    "los_uniform",
    "unit_field",
    "uniform_from_normal",
    "normal_quantile",
    "site_offsets",
    "field_at",
    "o2i_draws",
    "site_field_constants",
    "shadow_fading_c",
    "shadow_field",
    "shadow_sigma_index",
    "shadow_sigma_c",
    "o2i_loss_pixel_db",
]

N_CELLS = 512
"""Cells per side of the periodic lattice (a power of two: the wrap is a bit mask)."""
CELLS_PER_DCOR = 4.0
"""Lattice cells per decorrelation distance: the torus spans 128 decorrelation distances
(6.4 km for UMa NLOS, 1.3 km for UMi LOS: a site's field repeats beyond, where its signal is
far below its neighbours')."""

SF_DECORRELATION_M = {("uma", True): 37.0, ("uma", False): 50.0,
                      ("umi", True): 10.0, ("umi", False): 13.0,
                      ("rma", True): 37.0, ("rma", False): 120.0}
"""Shadow-fading decorrelation distance, m: TR 38.901 V17.0.0 Table 7.5-6 Part-1 (UMa, UMi -
Street Canyon) and Part-2 (RMa), row 'Correlation distance in the horizontal plane', SF."""

LOS_DECORRELATION_M = {"uma": 50.0, "umi": 50.0, "rma": 60.0}
"""Correlation distance of the LOS state, m: TR 38.901 V17.0.0 §7.6.3.3, Table 7.6.3.1-2."""

_STREAM_SF = 0
_STREAM_O2I = 2

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MASK = N_CELLS - 1
LOS_SHIFT_CELLS = N_CELLS // 2
"""Where a site's LOS-state field is read, relative to its shadow-fading field (both axes)."""
_SHIFT = N_CELLS.bit_length() - 1


def mix64(z):
    """SplitMix64 finaliser (Steele, Lea & Flood 2014) on a uint64 array, in place; returns it."""
    z ^= z >> np.uint64(30)
    z *= _M1
    z ^= z >> np.uint64(27)
    z *= _M2
    z ^= z >> np.uint64(31)
    return z


def hash_uniform(seed: int, key, counter) -> np.ndarray:
    """A uniform number in [0, 1) per ``(seed, key, counter)``, float64 with 53 random bits.

    ``h = mix(mix(mix(seed) ^ key) + (counter + 1) * 0x9E3779B97F4A7C15)`` modulo 2**64;
    ``key`` and ``counter`` (integer arrays) broadcast together.
    """
    s = mix64(np.array([seed], dtype=np.uint64))
    h = mix64(np.asarray(key).astype(np.uint64) ^ s)
    with np.errstate(over="ignore"):      # arithmetic modulo 2**64 on numpy scalars
        q = (np.asarray(counter).astype(np.uint64) + np.uint64(1)) * _GOLDEN
        h = np.add(h, q)
    mix64(h)
    h >>= np.uint64(11)
    return h.astype(np.float64) * 2.0**-53


def los_uniform(pix_id, site_id, seed):
    """A uniform number in [0, 1) per (pixel, site, seed), from a counter-based hash.

    The value depends only on the three integers, so it does not change with the block
    size, the worker count or the order of evaluation (unlike a stream of a
    ``numpy.random.Generator``, which would tie the draw to the blocking).

    Parameters
    ----------
    pix_id, site_id : array_like of int
        Broadcast together (e.g. ``[n]`` and ``[k, n]``).
    seed : int
        The scenario seed (>= 0).

    Returns
    -------
    u : ndarray, float32, broadcast shape
        ``(h >> 40) / 2**24`` of the 64-bit hash ``h`` (24 significant bits).

    Notes
    -----
    ``h = mix(mix(pix_id ^ mix(seed)) + (site_id + 1) * 0x9E3779B97F4A7C15)`` with ``mix`` the
    SplitMix64 finaliser, all modulo 2**64.
    """
    s = mix64(np.array([seed], dtype=np.uint64))
    p = np.asarray(pix_id).astype(np.uint64)
    h = mix64(p ^ s)
    q = np.asarray(site_id).astype(np.uint64)
    q += np.uint64(1)
    q *= _GOLDEN
    h = np.add(h, q)
    mix64(h)
    h >>= np.uint64(40)
    return h.astype(np.float32) * np.float32(2.0**-24)


def _normal_from_uniform(u1, u2):
    """Box-Muller: a standard normal from two uniforms in [0, 1)."""
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


@lru_cache(maxsize=4)
def unit_field(seed: int) -> np.ndarray:
    """The unit Gaussian field of a seed on the torus.

    Returns
    -------
    z : ndarray [N_CELLS * N_CELLS], float16 (read-only, flat row-major)
        Zero mean, unit variance (normalised to exactly 0 and 1 over the lattice before the
        rounding to float16, 3 significant digits), covariance ``exp(-r / CELLS_PER_DCOR)``
        between cells ``r`` apart on the torus. float16 keeps the table at 512 KiB, within a
        core's L2 cache: the kernel reads it at random for every pixel-site.

    Notes
    -----
    Spectral synthesis on the torus: ``z = IFFT(sqrt(S) FFT(w))`` with ``w`` white Gaussian
    noise (a :class:`numpy.random.Generator` seeded from ``SeedSequence([seed, 0x5F])``) and
    ``S`` the DFT of the periodised covariance (non-negative: ``exp(-r)`` is positive
    definite in the plane; rounding below zero is clipped).
    """
    n = N_CELLS
    i = np.minimum(np.arange(n), n - np.arange(n)).astype(np.float64)
    r = np.hypot(i[:, None], i[None, :])
    spec = np.fft.rfft2(np.exp(-r / CELLS_PER_DCOR)).real
    np.maximum(spec, 0.0, out=spec)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 0x5F])))
    w = rng.standard_normal((n, n))
    z = np.fft.irfft2(np.fft.rfft2(w) * np.sqrt(spec), s=(n, n))
    z -= z.mean()
    z /= z.std()
    z = z.astype(np.float16).ravel()
    z.flags.writeable = False
    return z


_PHI_Z0 = -8.0
_PHI_STEP = 1.0 / 256.0
_PHI = np.array([0.5 * math.erfc(-(_PHI_Z0 + i * _PHI_STEP) / math.sqrt(2.0)) for i in range(4097)], np.float32)
_PHI_SLOPE = np.diff(_PHI, append=_PHI[-1])


def uniform_from_normal(z) -> np.ndarray:
    """``Phi(z)``, the standard normal CDF, float32: a uniform variable from a standard normal one.

    Linear interpolation in a table of :func:`math.erfc` at 1/256 steps over [-8, 8] (error
    below 1e-6); beyond, 0 or 1.
    """
    x = np.asarray(z, dtype=np.float32) - np.float32(_PHI_Z0)
    x *= np.float32(1.0 / _PHI_STEP)
    np.clip(x, 0.0, np.float32(_PHI.size - 1), out=x)
    k = x.astype(np.int32)
    x -= k
    u = _PHI.take(k)
    u += x * _PHI_SLOPE.take(k)
    return u


def site_offsets(site_id, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Where each site reads the torus: cell offsets ``(ox, oy)``, whole cells in [8 N, 9 N), float32.

    The shadow-fading field of a site is read at the offset, its LOS-state field
    :data:`LOS_SHIFT_CELLS` further along both axes (half the torus: the two fields of a site
    are independent). The offsets start at 8 :data:`N_CELLS` so that a read position stays
    positive, and truncation is the floor, up to 8 N cells from the site (51 km for UMa NLOS,
    10 km for UMi LOS); farther pairs read the next cell towards the site.
    """
    key = np.asarray(site_id).astype(np.int64) * 4 + _STREAM_SF
    ox = np.floor(hash_uniform(seed, key, 0) * N_CELLS) + 8 * N_CELLS
    oy = np.floor(hash_uniform(seed, key, 1) * N_CELLS) + 8 * N_CELLS
    return ox.astype(np.float32), oy.astype(np.float32)


def field_at(table, ox, oy, dx_m, dy_m, cells_per_m, shift_cells: int = 0):
    """The field of ``table`` (:func:`unit_field`) seen by a site at UE offset ``(dx_m, dy_m)``.

    Parameters
    ----------
    table : ndarray [N_CELLS**2]
        :func:`unit_field`.
    ox, oy : array_like, float32
        The site's offsets (:func:`site_offsets`), broadcast with ``dx_m``.
    dx_m, dy_m : ndarray, float32
        UE position minus site position, m.
    cells_per_m : float or ndarray, float32
        ``CELLS_PER_DCOR / d_cor``.
    shift_cells : int
        Added to both cell indices (:data:`LOS_SHIFT_CELLS` for the LOS-state field).

    Returns
    -------
    v : ndarray, dtype of ``table``, shape of ``dx_m``
        The value of the lattice cell the position falls in (the torus wraps).
    """
    gx = dx_m * cells_per_m
    gx += ox
    gy = dy_m * cells_per_m
    gy += oy
    ix = gx.astype(np.int32)           # truncation: the floor of a positive position (see site_offsets)
    iy = gy.astype(np.int32)
    if shift_cells:
        ix += shift_cells
        iy += shift_cells
    ix &= _MASK
    iy &= _MASK
    iy <<= _SHIFT
    iy |= ix
    return table.take(iy)


def normal_quantile(p) -> np.ndarray:
    """``Phi^-1(p)``, float64: the inverse of :func:`uniform_from_normal`'s table (-8 at 0, 8 at 1)."""
    return np.interp(np.asarray(p, dtype=np.float64), _PHI.astype(np.float64),
                     _PHI_Z0 + _PHI_STEP * np.arange(_PHI.size))


def o2i_draws(pix_id, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel O2I draws: a uniform (building type) and a standard normal (the sigma_P part).

    TR 38.901 V17.0.0 §7.4.3.1: an indoor UE is in a low- or a high-loss building and its
    O2I loss carries a N(0, sigma_P**2) term (Table 7.4.3-2). The draws depend on the seed
    and the pixel only, so every carrier sees the same building and the same standardised
    deviate (the loss itself differs with frequency).

    Returns
    -------
    u_type : ndarray, float64, uniform in [0, 1)
        The pixel's building is high-loss when ``u_type < share_high``.
    z : ndarray, float64, standard normal (Box-Muller)
    """
    key = np.asarray(pix_id).astype(np.int64) * 4 + _STREAM_O2I
    u_type = hash_uniform(seed, key, 0)
    z = _normal_from_uniform(hash_uniform(seed, key, 1), hash_uniform(seed, key, 2))
    return u_type, z


_C = math.log(10.0) / 10.0


def _uniform(a):
    """A numpy scalar when every entry is equal, else ``a``."""
    a = np.asarray(a)
    if a.size and np.all(a == a.flat[0]):
        return a.dtype.type(a.flat[0])
    return a


def _take(a, lead):
    return a if np.ndim(a) == 0 else a.take(lead)


def site_field_constants(sectors: SectorArrays, radio: LayerRadio, seed: int) -> dict:
    """Constants of the shadow-fading and LOS-state fields of a layer's sectors for ``seed``.

    A dict: the table ``z`` (:func:`unit_field`) and ``z32``, its values in float32; each sector's site offsets ``ox``,
    ``oy`` (:func:`site_offsets`); per sector - a numpy scalar when the same for all - the cells per metre of the shadow
    fading in LOS and NLOS (``cpm_los``, ``cpm_nlos``, Table 7.5-6) and of the LOS state
    (``cpm_state``, §7.6.3.3), and ``sigma_SF ln(10)/10`` (``sig_los_c``; ``sig_los_far_c``
    beyond the RMa breakpoint, ``d_bp2`` its square; ``sig_nlos_c``; TR 38.901 Table 7.4.1-1
    via :func:`sim.propagation.shadow_fading_std_db`); ``far``: some sector is RMa, whose LOS
    sigma depends on the distance; ``cpm_state3`` and ``sig_state3`` (``[3 n_sectors]``): the
    cells per metre and sigma of link state 0 (NLOS), 1 (LOS) and 2 (LOS beyond the RMa
    breakpoint) one after the other, ``n_sectors`` their stride (:func:`shadow_fading_c`
    gathers each once per pixel-site).
    """
    t = dict(z=unit_field(seed))
    # the same values in float32 (1 MiB): numpy converts float16 one element at a time (about
    # 2 ns each), a float32 gather costs about what a float16 one does
    t["z32"] = t["z"].astype(np.float32)
    t["ox"], t["oy"] = site_offsets(sectors.site_id, seed)
    codes = range(len(SCENARIO_CODES))
    c = _C
    kw = dict(fc_ghz=radio.fc_ghz, h_bs_m=35.0, h_ut_m=radio.h_ut_m)

    def per_sector(f):
        return _uniform(np.array([f(SCENARIO_CODES[i]) for i in codes], dtype=np.float32)[sectors.scenario])

    cells = CELLS_PER_DCOR
    t["cpm_los"] = per_sector(lambda s: cells / SF_DECORRELATION_M[(s, True)])
    t["cpm_nlos"] = per_sector(lambda s: cells / SF_DECORRELATION_M[(s, False)])
    t["cpm_state"] = per_sector(lambda s: cells / LOS_DECORRELATION_M[s])
    t["sig_nlos_c"] = per_sector(lambda s: c * float(propagation.shadow_fading_std_db(s, False)))
    t["sig_los_c"] = per_sector(lambda s: c * float(propagation.shadow_fading_std_db(s, True, 10.0, **kw)))
    t["sig_los_far_c"] = per_sector(lambda s: c * float(propagation.shadow_fading_std_db(s, True, 1e6, **kw)))
    rma = sectors.scenario == SCENARIO_CODES.index("rma")
    t["far"] = bool(rma.any())
    d_bp = propagation.breakpoint_distance_m("rma", 100.0, sectors.h_bs_m.astype(np.float64), radio.h_ut_m,
                                             radio.fc_ghz)
    t["d_bp2"] = _uniform(np.where(rma, d_bp * d_bp, np.inf).astype(np.float32))
    # per link state (0 NLOS, 1 LOS, 2 LOS beyond the RMa breakpoint) and sector: one gather per quantity
    n = sectors.n_sectors
    t["n_sectors"] = n
    t["cpm_state3"] = np.concatenate([np.broadcast_to(t[k], n) for k in ("cpm_nlos", "cpm_los", "cpm_los")])
    t["sig_state3"] = np.concatenate([np.broadcast_to(t[k], n) for k in ("sig_nlos_c", "sig_los_c", "sig_los_far_c")])
    return t


def shadow_fading_c(sh, lead, ox, oy, dx, dy, los, d2=None):
    """Shadow fading ``X_SF * ln(10) / 10`` per pixel-site (added to the path loss), float32.

    ``X_SF = sigma_SF z`` with ``z`` the site's unit field (:func:`field_at`) at the state's
    decorrelation distance. ``sh``: :func:`site_field_constants`; ``lead``: the sector index of
    each pixel-site (``[k, n]``); ``ox``, ``oy``: its site's offsets (``sh["ox"].take(lead)``);
    ``dx``, ``dy``: UE minus site, m (float32); ``los``: the
    LOS state, bool, or None for the NLOS sigma and distance (TR 38.901 Table 7.4.1-1 and
    Table 7.5-6); ``d2``: ``dx * dx + dy * dy`` if the caller has it.
    """
    v = shadow_field(sh, lead, ox, oy, dx, dy, los)
    return np.multiply(v, shadow_sigma_c(sh, lead, shadow_sigma_index(sh, lead, los, dx, dy, d2)), dtype=np.float32)


def shadow_field(sh, lead, ox, oy, dx, dy, los):
    """The unit field value ``z`` of :func:`shadow_fading_c` per pixel-site, float32: read at the decorrelation
    distance of the link's state (LOS or NLOS; an RMa link beyond the breakpoint keeps the LOS distance, Table
    7.5-6). It does not depend on the carrier when the sites, the seed and the decorrelation distances agree."""
    if los is None:
        cpm = _take(sh["cpm_nlos"], lead)
    else:
        state = los.astype(np.intp)
        state *= sh["n_sectors"]
        state += lead
        cpm = sh["cpm_state3"].take(state)     # rows 1 and 2 (LOS, RMa LOS beyond d_BP) hold the same distance
    return field_at(sh["z32"], ox, oy, dx, dy, cpm)


def shadow_sigma_index(sh, lead, los, dx=None, dy=None, d2=None):
    """The row of each pixel-site's sigma in ``sh["sig_state3"]`` (link state times ``n_sectors`` plus ``lead``:
    state 0 NLOS, 1 LOS, 2 RMa LOS beyond the breakpoint, 4 dB up to it and 6 dB beyond, Table 7.4.1-1), or None
    for ``los`` None (the NLOS sigma). ``d2``: ``dx * dx + dy * dy`` if the caller has it."""
    if los is None:
        return None
    state = los.astype(np.intp)
    if sh["far"]:
        if d2 is None:
            d2 = dx * dx
            d2 += dy * dy
        beyond = np.greater(d2, _take(sh["d_bp2"], lead))
        beyond &= los
        state += beyond
    state *= sh["n_sectors"]
    state += lead
    return state


def shadow_sigma_c(sh, lead, idx):
    """``sigma_SF ln(10) / 10`` per pixel-site for the row :func:`shadow_sigma_index` gives."""
    return _take(sh["sig_nlos_c"], lead) if idx is None else sh["sig_state3"].take(idx)


def o2i_loss_pixel_db(radio: LayerRadio, pix_id, seed: int) -> np.ndarray:
    """O2I penetration loss of each pixel's indoor user, with its random part, dB (float64).

    TR 38.901 V17.0.0 §7.4.3.1, Table 7.4.3-2: the pixel's building is high-loss with
    probability ``radio.o2i_high_share``, else low-loss, and the loss is
    ``PL_tw + PL_in + N(0, sigma_P**2)`` with sigma_P 6.5 dB (high) or 4.4 dB (low), at the
    layer's ``d2d_in_m``. Draws: :func:`sim.shadowing.o2i_draws` (seed and pixel only, the
    same building and deviate for every carrier).
    """
    u, z = o2i_draws(pix_id, seed)
    high = u < float(radio.o2i_high_share)
    mean = np.where(high, float(propagation.o2i_loss_db("high", radio.fc_ghz, radio.d2d_in_m)),
                    float(propagation.o2i_loss_db("low", radio.fc_ghz, radio.d2d_in_m)))
    sigma = np.where(high, propagation.o2i_loss_std_db("high"), propagation.o2i_loss_std_db("low"))
    return mean + sigma * z
