"""Received power of pixel-sector pairs: the per-layer constants and tables of the coverage kernel.

What :mod:`sim.kernel` reduces per pixel comes from here: :class:`PreparedLayer` (built once per layer
by :func:`prepare_layer`: path gain and the vertical pattern tabulated over ln(d2D**2), the sectors'
constants scaled for one ``exp``), the per pixel-site terms (distance, path gain, LOS state, shadow
fading, zenith angle) and the per-pair horizontal pattern and received power
(:func:`pair_power`, :func:`sector_power_mw`). Physics: :mod:`sim.propagation` (TR 38.901 §7.4),
:mod:`sim.antenna` (Table 7.3-1), :mod:`sim.shadowing` (§7.6.3 spatially consistent fields).

Pure numpy, no I/O; the dtype policy is :mod:`sim.kernel`'s (float32 per pair, float64 sums).
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from . import antenna, linkmodel, propagation, shadowing
from .errors import InputError
from .results import LOS_MODES, SCENARIO_CODES, LayerRadio, SectorArrays
from .shadowing import los_uniform
from .units import dbm_to_mw, thermal_noise_dbm

__all__ = [
    "CHUNK_PAIRS",
    "rsrp_offset_db",
    "o2i_loss_expected_db",
    "noise_mw",
    "activity",
    "TABLE_STEP",
    "TABLE_N",
    "TABLE_MAX_GROUPS",
    "PreparedLayer",
    "prepare_layer",
    "validate_layer",
    "sector_power_mw",
    "pair_power",
    "may_pad",
]


CHUNK_PAIRS = 1 << 16
"""Pixel-sector pairs the kernel evaluates at once inside a block (temporaries of
256 KiB each, so they stay in the L2 cache). Results do not depend on it."""

_C = np.float32(math.log(10.0) / 10.0)  # ln(10) / 10: exp(_C * x_db) = 10 ** (x_db / 10)
_F32 = np.float32
_RAD2DEG = np.degrees(np.float32(1.0))
"""The float32 factor of ``np.degrees`` (``180f / pi_f``, numpy's ``npy_rad2degf``): multiplying by it gives
np.degrees' bits, with a vectorised multiply instead of numpy's element-by-element degrees loop."""
_SOURCE = "coverage_block"


# --------------------------------------------------------------------------- per-layer constants


def rsrp_offset_db(bw_hz, scs_khz) -> float:
    """``10 log10(12 N_PRB)``: total carrier power minus RSRP, dB.

    RSRP is the power of one resource element (3GPP TS 38.215 §5.1.1: the linear average
    over the REs that carry the SS/PBCH or CSI reference signal). With the transmit power
    spread evenly over the ``12 N_PRB`` subcarriers of the carrier,
    ``RSRP = Ptx - 10 log10(12 N_PRB) + G - PL``. ``N_PRB`` is the sum over the standard
    carriers the bandwidth splits into (TS 38.101-1 Table 5.3.2-1, via
    :func:`sim.linkmodel.n_prb_total`): 100 MHz at 30 kHz -> 273 PRB -> 35.15 dB.
    """
    return float(10.0 * np.log10(12.0 * linkmodel.n_prb_total(bw_hz, scs_khz)))


def o2i_loss_expected_db(radio: LayerRadio) -> float:
    """Expected O2I penetration loss of the layer's indoor mix, dB.

    TR 38.901 V17.0.0 §7.4.3.1, Table 7.4.3-2: the low- and high-loss models mixed in the
    linear domain with the share of high-loss buildings ``s`` (the expected received power
    of an indoor user)::

        L = -10 log10(s 10**(-L_high / 10) + (1 - s) 10**(-L_low / 10))

    at the layer's ``d2d_in_m`` (default 25/3 m, the mean indoor distance of UMa/UMi).
    The random part N(0, sigma_P**2) is not drawn.
    """
    s = float(radio.o2i_high_share)
    l_low = float(propagation.o2i_loss_db("low", radio.fc_ghz, radio.d2d_in_m))
    l_high = float(propagation.o2i_loss_db("high", radio.fc_ghz, radio.d2d_in_m))
    return float(-10.0 * np.log10(s * 10.0 ** (-l_high / 10.0) + (1.0 - s) * 10.0 ** (-l_low / 10.0)))


def noise_mw(radio: LayerRadio) -> float:
    """Receiver noise over the layer's bandwidth, mW: ``kT0 B NF`` (:func:`sim.units.thermal_noise_dbm`)."""
    return float(dbm_to_mw(thermal_noise_dbm(radio.bw_hz, radio.noise_figure_db)))


def activity(load, min_load: float = 0.0):
    """Interference weight of a cell at load ``load``: ``a + (1 - a) load`` (float64), ``a = min_load`` the
    idle cell's always-on share (SSB, PDCCH, CSI-RS/TRS: TS 38.213 §4.1, TS 38.214 §5.1.6.1.1)."""
    load = np.asarray(load, dtype=np.float64)
    return load if not min_load else min_load + (1.0 - min_load) * load


# --------------------------------------------------------------------------- preparation

TABLE_LN_D2_MIN = math.log(0.25)
"""Lower end of the path-gain tables: ln(d2D**2) at d2D = 0.5 m (shorter distances are
looked up there; path loss itself is clipped at 10 m by TR 38.901)."""
TABLE_STEP = 1.0 / 512.0
"""Node spacing of the path-gain tables in ln(d2D**2): 0.1 % in distance."""
TABLE_N = int(math.ceil((math.log(4.0e10) - TABLE_LN_D2_MIN) / TABLE_STEP)) + 2
"""Nodes per table: d2D from 0.5 m to 200 km (longer distances are looked up at 200 km)."""
TABLE_MAX_GROUPS = 64
"""Most distinct (scenario, h_BS) pairs a layer may have for the kernel to tabulate path
gain; beyond, it evaluates the propagation functions per pixel-site."""

_X_MAX = np.float32(TABLE_N - 1.001)


class PreparedLayer:
    """Per-layer constants of the kernel, built once by :func:`prepare_layer`.

    Quantities that enter the exponent of the received power are scaled by ln(10)/10
    (suffix ``_c``), so ``P_mw = exp(sum of _c terms)``. A numpy scalar stands for a
    parameter that is the same for every sector (the kernel then skips a gather).
    """

    def __init__(self, sectors: SectorArrays, radio: LayerRadio, load, tables=None):
        self.radio = radio
        eirp = sectors.ptx_dbm + sectors.g_max_dbi + np.float32(radio.ue_gain_db)   # + UE antenna gain - body loss
        self.eirp_c = _uniform_or_array(eirp * _C)
        c_h = _F32(12.0) / (sectors.hpbw_h_deg * sectors.hpbw_h_deg)
        self.c_h = _uniform_or_array(c_h * _C)
        az = sectors.az_deg
        # Boresight in (-180, 180]: |bearing - az| then lies in [0, 360].
        self.az = np.where(az > 180.0, az - _F32(360.0), az).astype(np.float32)
        self.tilt = _uniform_or_array(sectors.tilt_deg)
        self.c_v = _uniform_or_array(_F32(12.0) / (sectors.hpbw_v_deg * sectors.hpbw_v_deg))
        self.v_per_site = np.ndim(self.tilt) == 0 and np.ndim(self.c_v) == 0
        # tilt and vertical beamwidth shared by the sectors of each site: A_V once per pixel-site
        self.v_by_site = self.v_per_site or _same_per_site(sectors.site_id, sectors.tilt_deg, self.c_v)
        self.sla = _F32(radio.sla_v_db)
        self.a_max_c = _F32(radio.a_max_db) * _C
        self.h_bs = _uniform_or_array(sectors.h_bs_m)
        self.scen = _uniform_or_array(sectors.scenario)
        self.site_id = sectors.site_id
        self.x_m = sectors.x_m
        self.y_m = sectors.y_m
        load = activity(load, radio.min_load).astype(np.float32)
        self.load = _uniform_or_array(load)
        self.load64 = load.astype(np.float64)
        self.noise_mw = noise_mw(radio)
        self.offset_db = rsrp_offset_db(radio.bw_hz, radio.scs_khz)
        self.o2i_db = o2i_loss_expected_db(radio)
        self.o2i_gain = 10.0 ** (-self.o2i_db / 10.0)
        self.shadowed = bool(radio.shadow_fading)
        self.los_field = radio.los_mode == "sampled" and bool(radio.los_consistent)
        self._sectors = sectors
        self._shadow = {}
        self._records = {}
        self._geometry_keys = {}
        # (scenario, h_BS) groups; h_BS is float32, exact in float64 next to 1e4 * code
        key = sectors.scenario.astype(np.float64) * 1e4 + sectors.h_bs_m.astype(np.float64)
        keys, combo = np.unique(key, return_inverse=True)
        code = np.floor(keys / 1e4)
        groups = list(zip(code.astype(int), (keys - 1e4 * code).astype(np.float32).astype(np.float64)))
        self.use_tables = (len(groups) <= TABLE_MAX_GROUPS) if tables is None else bool(tables)
        self.tables = {}
        if self.use_tables:
            self.combo_off = _uniform_or_array((combo * TABLE_N).astype(np.int32))
            self._build_tables(groups, radio)

    def shadow_terms(self, seed: int) -> dict:
        """Per-sector constants of the shadow-fading and LOS-state fields for ``seed`` (cached)."""
        t = self._shadow.get(int(seed))
        if t is None:
            t = self._shadow[int(seed)] = shadowing.site_field_constants(self._sectors, self.radio, int(seed))
        return t

    def geometry_key(self, seed: int):
        """A digest of what the carrier-independent per pixel-site terms read (cached per seed), or None without
        tables: the sites (positions, ids, field offsets), the seed, the LOS and zenith tables, the shadow-fading
        decorrelation distances. Layers with equal keys (co-sited carriers) share those terms in
        :func:`pair_power` (``memo``); path gain, sigma, tilt and the pattern stay each layer's own."""
        if not self.use_tables:
            return None
        key = self._geometry_keys.get(int(seed))
        if key is None:
            h = hashlib.blake2b(digest_size=16)
            rec = self.site_record(seed).copy()
            rec[:, 2:].view(np.float32)[:, 3] = 0.0            # the tilt is the layer's own
            h.update(repr((self.radio.los_mode, self.los_field, self.shadowed, float(self.radio.h_ut_m), TABLE_N,
                           TABLE_STEP, getattr(self, "state_off", None), int(seed))).encode())
            for a in (rec, np.asarray(self.site_id), np.asarray(self.combo_off)):
                h.update(a.tobytes())
            for name in ("z_los", "p_los", "theta"):
                if name in self.packed:
                    h.update(name.encode())
                    h.update(self.packed[name].tobytes())
            if self.shadowed or self.los_field:
                sh = self.shadow_terms(seed)
                h.update(repr(sh["n_sectors"]).encode())
                for name in ("cpm_state3", "cpm_nlos", "cpm_state", "ox", "oy"):
                    h.update(np.asarray(sh[name]).tobytes())
            key = self._geometry_keys[int(seed)] = h.digest()
        return key

    def site_record(self, seed: int) -> np.ndarray:
        """Per-sector constants gathered together once per pixel-site, ``[n_sectors, 4]`` float64 (cached per seed).

        Columns 0 and 1: ``x_m``, ``y_m``; columns 2-3 hold four float32 (``.view(np.float32)``):
        the site's field offsets ``ox``, ``oy`` (:func:`sim.shadowing.site_offsets`), the LOS-state
        field's cells per metre and the tilt, each 0 where the kernel does not read it. One gather of
        32-byte records costs about as much as one gather of a float32 column.
        """
        rec = self._records.get(int(seed))
        if rec is None:
            rec = np.zeros((self.x_m.size, 4), dtype=np.float64)
            rec[:, 0] = self.x_m
            rec[:, 1] = self.y_m
            f = rec[:, 2:].view(np.float32)
            if self.shadowed or self.los_field:
                sh = self.shadow_terms(seed)
                f[:, 0] = sh["ox"]
                f[:, 1] = sh["oy"]
                f[:, 2] = sh["cpm_state"]
            f[:, 3] = self._sectors.tilt_deg
            self._records[int(seed)] = rec
        return rec

    def _build_tables(self, groups, radio: LayerRadio):
        """Tabulate ln(path gain) (and the vertical pattern) over ln(d2D**2), float64 -> float32."""
        u = TABLE_LN_D2_MIN + TABLE_STEP * np.arange(TABLE_N, dtype=np.float64)
        d = np.exp(0.5 * u)
        c = float(_C)
        kw = dict(h_building_m=radio.h_building_m, w_street_m=radio.w_street_m)
        rows: dict[str, list] = {}
        for code, h_bs in groups:
            scen = SCENARIO_CODES[int(code)]
            pl_l = propagation.pathloss_db(scen, d, h_bs, radio.h_ut_m, radio.fc_ghz, True, **kw)
            pl_n = propagation.pathloss_db(scen, d, h_bs, radio.h_ut_m, radio.fc_ghz, False, **kw)
            p = propagation.los_probability(scen, d, radio.h_ut_m)
            theta = antenna.zenith_angle_deg(d, h_bs, radio.h_ut_m)
            extra = np.zeros_like(d)
            if np.ndim(self.eirp_c) == 0:
                extra += float(self.eirp_c)
            if self.radio.los_mode == "expected":
                v = -c * pl_l + np.log(p + (1.0 - p) * np.exp(-c * (pl_n - pl_l)))
                rows.setdefault("gain", []).append(v + extra)
            elif self.radio.los_mode == "nlos":
                rows.setdefault("gain", []).append(-c * pl_n + extra)
            else:
                rows.setdefault("gain_los", []).append(-c * pl_l + extra)
                rows.setdefault("gain_nlos", []).append(-c * pl_n + extra)
                if self.los_field:    # LOS iff the site's normal field < Phi^-1(Pr_LOS)
                    rows.setdefault("z_los", []).append(shadowing.normal_quantile(p))
                else:
                    rows.setdefault("p_los", []).append(p)
            if self.v_per_site:
                y = theta - 90.0 - float(self.tilt)
                rows.setdefault("a_v", []).append(c * np.minimum(float(self.c_v) * y * y, float(self.sla)))
            else:
                rows.setdefault("theta", []).append(theta)
        if "gain_los" in rows:    # one table, NLOS rows then LOS rows: a LOS pair looks up at k + state_off
            rows["gain_state"] = rows.pop("gain_nlos") + rows.pop("gain_los")
            self.state_off = len(groups) * TABLE_N
        for name, vals in rows.items():
            t = np.concatenate(vals)
            slope = np.diff(t, append=t[-1])
            self.tables[name] = (t.astype(np.float32), slope.astype(np.float32))
        # node value and slope side by side (real, imag): one gather per lookup
        self.packed = {name: (t + 1j * sl).astype(np.complex64) for name, (t, sl) in self.tables.items()}


def prepare_layer(sectors: SectorArrays, radio: LayerRadio, load, *, tables=None) -> PreparedLayer:
    """Per-layer constants of :func:`coverage_block` (build once, reuse for every block).

    ``tables`` (default: when the layer has at most :data:`TABLE_MAX_GROUPS` distinct
    (scenario, h_BS) pairs) makes the kernel look path gain up in tables of the
    propagation functions instead of evaluating them per pixel-site; see
    :func:`coverage_block`, Notes.
    """
    return PreparedLayer(sectors, radio, load, tables)


def _same_per_site(site_id, *arrays) -> bool:
    """Whether every array (per sector, or a numpy scalar) has one value per site."""
    _, first, inverse = np.unique(site_id, return_index=True, return_inverse=True)
    lead = first[inverse]
    return all(np.ndim(a) == 0 or bool(np.all(a == a[lead])) for a in arrays)


_FILLED: dict = {}


def _filled(c, shape) -> np.ndarray:
    """A read-only float32 array of ``shape`` filled with ``c`` (cached): numpy's minimum and maximum
    against a scalar take a strided loop about three times slower than against an array."""
    n = math.prod(shape)
    key = float(c)
    a = _FILLED.get(key)
    if a is None or a.size < n:
        a = np.full(max(n, CHUNK_PAIRS), c, dtype=np.float32)
        a.flags.writeable = False
        _FILLED[key] = a
    return a[:n].reshape(shape)


def _uniform_or_array(a):
    """A numpy scalar when every entry is equal (the kernel then skips a gather), else ``a``."""
    a = np.asarray(a)
    if a.size and np.all(a == a.flat[0]):
        return a.dtype.type(a.flat[0])
    return a


def validate_layer(sectors: SectorArrays, radio: LayerRadio, load) -> None:
    """Check a layer's sectors, radio parameters and loads once (what ``validate=False`` skips).

    Raises
    ------
    InputError
        No sectors; loads not one per sector in [0, 1]; beamwidths outside (0, 360] deg;
        radio inputs rejected by :func:`sim.propagation.validate_radio_inputs` (scenario,
        frequency, a base station not above the UE); an O2I frequency out of range or a
        bandwidth the link model cannot split into carriers.
    """
    load = np.asarray(load)
    if sectors.n_sectors == 0:
        raise InputError(_SOURCE, "sectors", "expected at least one sector in the layer, got 0")
    if load.shape != (sectors.n_sectors,):
        raise InputError(_SOURCE, "load", f"expected one load per sector ({sectors.n_sectors}), got shape {load.shape}")
    if not np.all((load >= 0.0) & (load <= 1.0)):
        raise InputError(_SOURCE, "load", "expected cell loads in [0, 1]")
    for code in np.unique(sectors.scenario):
        m = sectors.scenario == code
        propagation.validate_radio_inputs(SCENARIO_CODES[int(code)], radio.fc_ghz, sectors.h_bs_m[m],
                                          radio.h_ut_m, h_building_m=radio.h_building_m,
                                          w_street_m=radio.w_street_m)
    for name in ("hpbw_h_deg", "hpbw_v_deg"):
        a = getattr(sectors, name)
        if not np.all((a > 0) & (a <= 360)):
            raise InputError(_SOURCE, name, "expected beamwidths in (0, 360] deg")
    if radio.los_mode not in LOS_MODES:
        raise InputError(_SOURCE, "los_mode", f"expected one of {LOS_MODES}, got {radio.los_mode!r}")
    if not (np.all(np.isfinite(sectors.x_m)) and np.all(np.isfinite(sectors.y_m))):
        raise InputError(_SOURCE, "sectors.x_m", "expected finite site coordinates in m")
    o2i_loss_expected_db(radio)
    rsrp_offset_db(radio.bw_hz, radio.scs_khz)


# --------------------------------------------------------------------------- site-level loss


def _log_gain_site(scen_code, d2d, h_bs, radio: LayerRadio, los_mode, u):
    """``(ln g, los)``: ``ln`` of the path gain (expected over the LOS state, or per ``los_mode``),
    float32, and the LOS state (``u < Pr_LOS`` in sampled mode, else None).

    ``ln g = -PL_eff * ln(10) / 10`` with ``PL_eff`` the effective path loss in dB.
    """
    scen = SCENARIO_CODES[int(scen_code)]
    kw = dict(h_building_m=radio.h_building_m, w_street_m=radio.w_street_m, dtype=np.float32, check=False)
    if los_mode == "nlos":
        pl = propagation.pathloss_db(scen, d2d, h_bs, radio.h_ut_m, radio.fc_ghz, False, **kw)
        pl *= -_C
        return pl, None
    p_los = propagation.los_probability(scen, d2d, _F32(radio.h_ut_m))
    if los_mode == "sampled":
        los = u < p_los
        pl = propagation.pathloss_db(scen, d2d, h_bs, radio.h_ut_m, radio.fc_ghz, los, **kw)
        pl *= -_C
        return pl, los
    # expected: ln(p 10**(-PL_L/10) + (1 - p) 10**(-PL_N/10))
    #         = -c PL_L + ln(p + (1 - p) exp(-c (PL_N - PL_L))),   PL_N >= PL_L
    pl_l = propagation.pathloss_db(scen, d2d, h_bs, radio.h_ut_m, radio.fc_ghz, True, **kw)
    pl_n = propagation.pathloss_db(scen, d2d, h_bs, radio.h_ut_m, radio.fc_ghz, False, **kw)
    pl_n -= pl_l
    pl_n *= -_C
    np.exp(pl_n, out=pl_n)
    q = 1.0 - p_los
    pl_n *= q
    pl_n += p_los
    np.log(pl_n, out=pl_n)
    pl_l *= -_C
    pl_l += pl_n
    return pl_l, None


def sector_power_mw(pix_x_m, pix_y_m, pix_id, cand, prepared: PreparedLayer, seed: int = 0, *,
                    chunk_pairs: int = CHUNK_PAIRS) -> np.ndarray:
    """Received power of each pixel-candidate sector pair, before any reduction, mW.

    The first half of :func:`coverage_block` (same path gain, antenna pattern and transmit
    power, see its Notes) for callers that keep their own sums, e.g. :mod:`sim.planning`.

    Parameters
    ----------
    pix_x_m, pix_y_m : ndarray [n_pix], float64
        Pixel centres in the grid CRS, m.
    pix_id : ndarray [n_pix], int
        Stable pixel ids (key the sampled LOS draws).
    cand : ndarray [n_pix, k, s], int
        Candidate sectors grouped by site, -1 padded (as for :func:`coverage_block`).
    prepared : PreparedLayer
        :func:`prepare_layer` of the layer the indices refer to (inputs not re-checked).
    seed : int, optional
        Seed of sampled LOS draws.

    Returns
    -------
    p_mw : ndarray [k, s, n_pix], float32
        Received power over the carrier (0 for pads), candidate-major like the kernel.
    """
    pix_x_m = np.asarray(pix_x_m, dtype=np.float64)
    pix_y_m = np.asarray(pix_y_m, dtype=np.float64)
    pix_id = np.asarray(pix_id, dtype=np.int64)
    cand = np.asarray(cand)
    if cand.ndim != 3 or cand.shape[0] != pix_x_m.shape[0]:
        raise InputError("sector_power_mw", "cand",
                         f"expected [n_pix, k, s] with n_pix = {pix_x_m.shape[0]}, got {cand.shape}")
    n_pix, k, s = cand.shape
    out = np.empty((k, s, n_pix), dtype=np.float32)
    step = max(1, int(chunk_pairs) // max(k * s, 1))
    for c0 in range(0, n_pix, step):
        c1 = min(c0 + step, n_pix)
        g = np.empty((k, s, c1 - c0), dtype=np.intp)
        g[...] = cand[c0:c1].transpose(1, 2, 0)
        out[:, :, c0:c1] = pair_power(pix_x_m[c0:c1], pix_y_m[c0:c1], pix_id[c0:c1], g, prepared, seed)[0]
    return out


def _lookup(lay: PreparedLayer, name, k, f):
    """``tab[k] + f slope[k]`` (float32) from the packed table ``name``."""
    c = lay.packed[name].take(k)
    v = np.multiply(f, c.imag)
    v += c.real
    return v


def _site_terms(lay: PreparedLayer, lead, dx, dy, pid, seed, rec, tilt, memo=None):
    """Per pixel-site ``(ln(path gain) [+ eirp when uniform], theta, c A_V)``, shadow fading included.

    ``theta`` is None when A_V is per pixel-site (tilt and vertical beamwidth uniform, or the
    same for the sectors of each site), else ``c A_V`` is None and the caller evaluates A_V per pair.
    ``tilt``: each pixel-site's tilt (or the layer's one tilt). ``memo`` (tables only): what
    :func:`_site_geometry` found for a layer of the same :meth:`PreparedLayer.geometry_key`, reused.
    """
    radio = lay.radio
    sampled = radio.los_mode == "sampled"
    sh = lay.shadow_terms(seed) if (lay.shadowed or lay.los_field) else None
    if lay.use_tables:
        geo = None if memo is None else memo.get("geo")
        if geo is None:
            geo = _site_geometry(lay, sh, lead, dx, dy, pid, seed, rec)
            if memo is not None:
                memo["geo"] = geo
        k, x = geo["k"], geo["x"]
        ln_g = _lookup(lay, "gain_state", geo["k_state"], x) if sampled else _lookup(lay, "gain", k, x)
        if lay.shadowed:
            idx = shadowing.shadow_sigma_index(sh, lead, geo["los"], d2=geo["d2"])
            ln_g -= np.multiply(geo["sf"], shadowing.shadow_sigma_c(sh, lead, idx), dtype=np.float32)
        if lay.v_per_site:
            return ln_g, None, _lookup(lay, "a_v", k, x)
        theta = geo.get("theta")
        if theta is None:
            theta = geo["theta"] = _lookup(lay, "theta", k, x)
        if lay.v_by_site:
            return ln_g, None, _vertical_att_site_c(lay, theta, lead, tilt)
        return ln_g, theta, None
    ox = oy = None
    if sh is not None:
        ox, oy = rec[..., 0], rec[..., 1]
    draw = _los_draw(lay, sh, lead, ox, oy, dx, dy, pid, seed, rec) if sampled else None
    los = None
    u = draw
    if lay.los_field and draw is not None:
        u = shadowing.uniform_from_normal(draw)
    d2d = np.hypot(dx, dy)
    h_bs = lay.h_bs if np.ndim(lay.h_bs) == 0 else lay.h_bs.take(lead)
    if np.ndim(lay.scen) == 0:
        ln_g, los = _log_gain_site(lay.scen, d2d, h_bs, radio, radio.los_mode, u)
    else:
        scen = lay.scen.take(lead)
        ln_g = np.empty(d2d.shape, dtype=np.float32)
        los = np.zeros(d2d.shape, dtype=bool) if sampled else None
        h_b = np.broadcast_to(h_bs, d2d.shape)
        for code in np.unique(scen):
            msk = scen == code
            ln_g[msk], los_c = _log_gain_site(code, d2d[msk], h_b[msk], radio, radio.los_mode,
                                              None if u is None else u[msk])
            if los is not None:
                los[msk] = los_c
    if lay.shadowed:
        ln_g -= shadowing.shadow_fading_c(sh, lead, ox, oy, dx, dy, los)
    theta = antenna.zenith_angle_deg(d2d, h_bs, _F32(radio.h_ut_m))
    if np.ndim(lay.eirp_c) == 0:
        ln_g += lay.eirp_c
    if lay.v_per_site:
        return ln_g, None, _vertical_att_c(theta, lay.tilt, lay.c_v, lay.sla)
    if lay.v_by_site:
        return ln_g, None, _vertical_att_site_c(lay, theta, lead, tilt)
    return ln_g, theta, None


def _site_geometry(lay: PreparedLayer, sh, lead, dx, dy, pid, seed, rec) -> dict:
    """The per pixel-site terms of the table path that depend on the sites and the UE only, not on the carrier:
    the table node ``k`` and fraction ``x`` of ln(d2D**2) (and ``d2``), the LOS state (and ``k_state``, its row in
    the state tables) and the shadow-fading field value (:func:`sim.shadowing.shadow_field`; its sigma, which the
    carrier may change through the RMa breakpoint, is each layer's)."""
    ox = oy = None
    if sh is not None:
        ox, oy = rec[..., 0], rec[..., 1]
    sampled = lay.radio.los_mode == "sampled"
    draw = _los_draw(lay, sh, lead, ox, oy, dx, dy, pid, seed, rec) if sampled else None
    d2 = dx * dx
    d2 += dy * dy
    x = np.maximum(d2, _filled(_F32(0.25), d2.shape))
    np.log(x, out=x)
    x -= _F32(TABLE_LN_D2_MIN)
    x *= _F32(1.0 / TABLE_STEP)
    np.minimum(x, _filled(_X_MAX, x.shape), out=x)
    kf = np.floor(x)
    x -= kf
    k = kf.astype(np.int32)            # int32 arithmetic is SIMD; take converts once
    if np.ndim(lay.combo_off):
        k += lay.combo_off.take(lead)
    los = k_state = None
    if sampled:
        los = draw < _lookup(lay, "z_los" if lay.los_field else "p_los", k, x)
        k_state = np.multiply(los, np.int32(lay.state_off))
        k_state += k
    sf = shadowing.shadow_field(sh, lead, ox, oy, dx, dy, los) if lay.shadowed else None
    return dict(k=k, x=x, d2=d2, los=los, k_state=k_state, sf=sf)


def _vertical_att_site_c(lay: PreparedLayer, theta, lead, tilt):
    """:func:`_vertical_att_c` per pixel-site with the tilt and beamwidth of the site's first sector
    (the same for all its sectors, ``lay.v_by_site``): the values the per-pair evaluation gives."""
    c_v = lay.c_v if np.ndim(lay.c_v) == 0 else lay.c_v.take(lead)
    return _vertical_att_c(theta, tilt, c_v, lay.sla)


def _los_draw(lay: PreparedLayer, sh, lead, ox, oy, dx, dy, pid, seed, rec):
    """The draw of the sampled LOS state per pixel-site: with ``los_consistent`` the site's
    standard normal LOS-state field (TR 38.901 §7.6.3.3; LOS iff below ``Phi^-1(Pr_LOS)``),
    else an independent uniform hash (LOS iff below ``Pr_LOS``)."""
    if not lay.los_field:
        return los_uniform(pid, lay.site_id.take(lead), seed)
    cpm = sh["cpm_state"] if np.ndim(sh["cpm_state"]) == 0 else rec[..., 2]
    return shadowing.field_at(sh["z32"], ox, oy, dx, dy, cpm, shadowing.LOS_SHIFT_CELLS)


def may_pad(cand) -> bool:
    """Whether a candidate array holds any -1 pad (one pass over the block instead of a mask per chunk)."""
    return bool(cand.size) and bool(cand.min() < 0)


def pair_power(px, py, pid, g, lay: PreparedLayer, seed, may_pad: bool = True, memo=None):
    """Received power over the carrier, mW float32 ``[k, s, n]``, of candidate sectors ``g``
    (``[k, s, n]`` intp, -1 pads get 0 mW); also whether every site slot is filled.

    ``memo`` (a dict, empty for the first layer): layers of one :meth:`PreparedLayer.geometry_key` (the
    same sites, seed and tables of the carrier-independent terms) evaluated on the same ``g`` one after
    the other share the geometry, the bearing, the LOS state and the shadow-fading field through it;
    each layer's powers keep the bits of its own evaluation.
    """
    s = g.shape[1]
    base = None if memo is None else memo.get("base")
    if base is None:
        lead = g[:, 0, :]
        has_site = lead >= 0
        all_sites = bool(has_site.all())
        if not all_sites:
            lead = np.where(has_site, lead, 0)
        # ---- per pixel-site: geometry, path gain (+ vertical pattern)
        r64 = lay.site_record(seed).take(lead, axis=0)          # [k, n, 4]
        rec = r64[..., 2:].view(np.float32)
        tilt = lay.tilt if np.ndim(lay.tilt) == 0 else rec[..., 3]
        dx = np.subtract(px, r64[..., 0], out=np.empty(lead.shape, np.float32), casting="same_kind")
        dy = np.subtract(py, r64[..., 1], out=np.empty(lead.shape, np.float32), casting="same_kind")
        ln_g, theta, a_v = _site_terms(lay, lead, dx, dy, pid, seed, rec, tilt, memo)
        bearing = np.arctan2(dx, dy, out=dx)
        bearing *= _RAD2DEG                          # np.degrees, bit for bit
        if memo is not None:
            memo["base"] = (lead, all_sites, rec, bearing)
    else:
        lead, all_sites, rec, bearing = base
        tilt = lay.tilt if np.ndim(lay.tilt) == 0 else lay.tilt.take(lead)
        ln_g, theta, a_v = _site_terms(lay, lead, None, None, pid, seed, rec, tilt, memo)
    # ---- per pixel-sector: horizontal pattern, received power (mW, float32)
    t = lay.az.take(g)
    np.subtract(bearing[:, None, :], t, out=t)
    np.abs(t, out=t)
    u = np.subtract(_F32(360.0), t)
    np.minimum(t, u, out=t)                      # |phi| in [0, 180]
    np.multiply(t, t, out=t)
    if np.ndim(lay.c_h) == 0:
        t *= lay.c_h
    else:
        t *= lay.c_h.take(g, out=u)
    if a_v is not None:
        t += a_v[:, None, :]
    else:
        th = np.broadcast_to(theta[:, None, :], g.shape)
        t += _vertical_att_c(th, lay.tilt.take(g) if np.ndim(lay.tilt) else lay.tilt,
                             lay.c_v.take(g) if np.ndim(lay.c_v) else lay.c_v, lay.sla)
    np.minimum(t, _filled(lay.a_max_c, t.shape), out=t)
    np.subtract(ln_g[:, None, :], t, out=t)
    if np.ndim(lay.eirp_c) != 0:
        t += lay.eirp_c.take(g, out=u)
    np.exp(t, out=t)
    if may_pad and (s > 1 or not all_sites):
        pads = g < 0
        if pads.any():
            t[pads] = 0.0
    return t, all_sites


def _vertical_att_c(theta, tilt, c_v, sla):
    """``min(12 ((theta - 90 - tilt) / theta_3dB)**2, SLA_V) * ln(10)/10`` (Table 7.3-1 A_V)."""
    y = theta - _F32(90.0)
    y = y - tilt
    y *= y
    y *= c_v
    np.minimum(y, _filled(sla, y.shape) if np.ndim(sla) == 0 else sla, out=y)
    y *= _C
    return y
