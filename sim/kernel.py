"""The coverage kernel: one block of pixels -> RSRP, best server, SINR and throughput.

Pure numpy, no I/O. :func:`coverage_block` evaluates, for every pixel of a block and each
of its candidate sectors (the sectors of its K nearest sites, found by
:mod:`sim.coverage`), the received power

    P = Ptx + G_antenna(phi, theta) - PL(d2D) + G_UE   (dBm, over the whole carrier; G_UE: handset gain - body loss)

and reduces it per pixel to the serving sector (largest P), RSRP, SINR, spectral efficiency
and downlink rates, outdoors and indoors.

Physics comes from :mod:`sim.propagation` (TR 38.901 §7.4 path loss, LOS probability, O2I),
:mod:`sim.antenna` (TR 38.901 Table 7.3-1 pattern, site geometry) and :mod:`sim.linkmodel`
(TS 38.214 / TS 38.306 SINR -> rate). The antenna pattern is evaluated here in a fused,
in-place form of the same Table 7.3-1 equations (see :func:`coverage_block`, Notes); the
slow twin ``tests/reference_loop.py`` calls :func:`sim.antenna.antenna_gain_dbi` per pair and
the tests hold the two within 0.01 dB.

dtype policy
------------
float32 for geometry, angles, path loss, gains and per-pair received powers (mW);
float64 for sums of received power (interference), the serving sector's power and the
per-pixel SINR arithmetic, converted to dB once per pixel; outputs float32 (``best_sector``
int32). Pixel coordinates come in as float64 (UTM metres): differences to the site are
taken in float64 and then rounded to float32.
"""

from __future__ import annotations

import math

import numpy as np

from . import antenna, linkfield, linkmodel, propagation, shadowing
from .errors import InputError
from .results import (
    LOS_MODES,
    SCENARIO_CODES,
    BlockCoverage,
    InterferenceTerms,
    LayerRadio,
    SectorArrays,
)
from .shadowing import los_uniform
from .units import dbm_to_mw, thermal_noise_dbm

__all__ = [
    "CHUNK_PAIRS",
    "rsrp_offset_db",
    "o2i_loss_expected_db",
    "noise_mw",
    "los_uniform",
    "TABLE_STEP",
    "TABLE_N",
    "TABLE_MAX_GROUPS",
    "PreparedLayer",
    "prepare_layer",
    "validate_layer",
    "coverage_block",
    "sector_power_mw",
    "activity",
    "serving_los_probability",
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


def _check_inputs(pix_x_m, pix_y_m, pix_id, cand, sectors, radio, load):
    n_pix = pix_x_m.shape[0] if pix_x_m.ndim == 1 else -1
    for name, a in (("pix_x_m", pix_x_m), ("pix_y_m", pix_y_m), ("pix_id", pix_id)):
        if a.ndim != 1 or a.shape[0] != n_pix:
            raise InputError(_SOURCE, name, f"expected a 1-D array of {max(n_pix, 0)} pixels, got shape {a.shape}")
    if not np.all(np.isfinite(pix_x_m)) or not np.all(np.isfinite(pix_y_m)):
        raise InputError(_SOURCE, "pix_x_m", "expected finite pixel coordinates in m")
    if cand.dtype.kind not in "iu" or cand.ndim not in (2, 3) or cand.shape[0] != n_pix:
        raise InputError(_SOURCE, "cand",
                         f"expected integer sector indices [n_pix, n_cand] or [n_pix, k, s] with n_pix = {n_pix}, "
                         f"got {cand.dtype} {cand.shape}")
    validate_layer(sectors, radio, load)
    if cand.size and (cand.min() < -1 or cand.max() >= sectors.n_sectors):
        raise InputError(_SOURCE, "cand",
                         f"expected sector indices in [-1, {sectors.n_sectors - 1}], "
                         f"got {int(cand.min())}..{int(cand.max())}")


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


def serving_los_probability(pix_x_m, pix_y_m, best, lay: PreparedLayer):
    """TR 38.901 Table 7.4.2-1 LOS probability of each pixel's serving link, float32 (NaN: none): the
    rank model's LOS weight (:func:`sim.linkfield.expected_layers`), at the serving site's scenario."""
    ok = best >= 0
    b = np.where(ok, best, 0)
    d2d = np.hypot(pix_x_m - lay.x_m.take(b), pix_y_m - lay.y_m.take(b)).astype(np.float32)
    scen = np.broadcast_to(lay.scen if np.ndim(lay.scen) == 0 else lay.scen.take(b), d2d.shape)
    p = np.full(d2d.shape, np.nan, dtype=np.float32)
    for code in np.unique(scen):
        m = ok & (scen == code)
        p[m] = propagation.los_probability(SCENARIO_CODES[int(code)], d2d[m], _F32(lay.radio.h_ut_m))
    return p


# --------------------------------------------------------------------------- the kernel


def coverage_block(pix_x_m, pix_y_m, pix_id, cand, sectors: SectorArrays, radio: LayerRadio,
                   load, seed: int = 0, *, top_m: int = 0, validate: bool = True,
                   prepared: PreparedLayer | None = None, tables=None,
                   chunk_pairs: int = CHUNK_PAIRS) -> BlockCoverage:
    """Coverage of one block of pixels by one layer.

    Parameters
    ----------
    pix_x_m, pix_y_m : ndarray [n_pix], float64
        Pixel centres in the grid CRS, m.
    pix_id : ndarray [n_pix], int
        A stable id per pixel (the grid's flat index); keys the sampled LOS draws.
    cand : ndarray [n_pix, n_cand] or [n_pix, k, s], int
        Candidate sector indices into ``sectors``, -1 padded. The 3-D, site-grouped layout
        is what :func:`sim.coverage.candidate_sectors` builds: ``cand[:, j, :]`` are the
        sectors of ONE site, pads at the end; the kernel then computes distance, path loss,
        LOS and zenith angle once per pixel-site from the first sector of the group. The
        2-D layout treats every candidate as its own site.
    sectors : SectorArrays
        The layer's sectors.
    radio : LayerRadio
        The layer's radio parameters.
    load : array_like [n_sectors]
        Cell load in [0, 1] that weights each sector's interference.
    seed : int, optional
        Seed of the sampled LOS draws (``radio.los_mode == "sampled"``).
    top_m : int, optional
        Also return the ``top_m`` strongest interferers of each pixel (see
        :class:`~sim.results.InterferenceTerms`, :func:`sim.busyload.sinr_for_load`).
    validate : bool, optional
        Check the inputs (default). :func:`sim.coverage.compute_coverage` validates once per
        layer and passes ``False``.
    prepared : PreparedLayer, optional
        :func:`prepare_layer` of ``sectors``, ``radio`` and ``load``, built once per layer
        (built here when not given).
    tables : bool, optional
        Path gain from tables (True) or by direct evaluation (False); default automatic
        (see :func:`prepare_layer`). Ignored when ``prepared`` is given.
    chunk_pairs : int, optional
        Pairs evaluated at once (memory/speed only; results are identical).

    Returns
    -------
    BlockCoverage
        ``rsrp_dbm``, ``sinr_db``, ``se_bps_hz``, ``rate_outdoor_bps``, ``rate_indoor_bps``,
        ``rsrp_indoor_dbm``, ``sinr_indoor_db`` float32 [n_pix]; ``best_sector`` int32
        [n_pix] (-1 and NaN where a pixel has no candidate).

    Raises
    ------
    InputError
        Bad shapes, sector indices out of range, loads outside [0, 1], zero sectors, or radio
        inputs that :func:`sim.propagation.validate_radio_inputs` rejects (e.g. a base
        station not higher than the UE).

    Notes
    -----
    Received power over the carrier of sector j at a pixel (dBm)::

        P_j = Ptx_j + G_j(phi, theta) - PL(d2D, hBS, hUT, fc) + G_UE

    * ``G_UE = radio.ue_gain_db``: the handset's antenna gain minus the body loss (it scales
      signal and interference alike; the noise stays, so it lowers SINR only where noise-limited).
    * Path loss: TR 38.901 V17.0.0 Table 7.4.1-1 (:func:`sim.propagation.pathloss_db`).
      ``los_mode`` ``"expected"`` (default) uses the expected linear path
      gain over the LOS state, ``P_LOS 10**(-PL_LOS/10) + (1 - P_LOS) 10**(-PL_NLOS/10)``
      with P_LOS of Table 7.4.2-1; ``"nlos"`` uses PL_NLOS; ``"sampled"`` draws the state
      per (pixel, site, seed) with :func:`los_uniform`, or with ``radio.los_consistent``
      from the site's spatially consistent field (§7.6.3.3, :mod:`sim.shadowing`).
    * Shadow fading (``radio.shadow_fading``): ``PL + sigma_SF z`` per pixel-site, Tables 7.4.1-1
      and 7.5-6 for the link's state (expected / nlos: NLOS) (:func:`sim.shadowing.shadow_fading_c`).
    * Tables: for a given (scenario, h_BS) these depend on d2D only, as does the zenith
      angle, so the kernel tabulates them once per layer - evaluated in float64 by the
      functions of :mod:`sim.propagation` and :mod:`sim.antenna` at :data:`TABLE_N` nodes
      uniform in ln(d2D**2) (step :data:`TABLE_STEP`, 0.1 % in distance) - and interpolates
      linearly. The interpolation error is below 0.005 dB (largest at the slope changes at
      10 m, 18 m and the breakpoint; the tests hold the kernel within 0.01 dB of the
      direct evaluation). Distances beyond 200 km are looked up at 200 km.
    * Antenna: TR 38.901 Table 7.3-1 with downtilt as a shift of the vertical cut, as in
      :func:`sim.antenna.antenna_gain_dbi`. Because both cuts are non-negative
      attenuations, ``min(min(12 (phi/phi3)**2, A_max) + A_V, A_max) =
      min(12 (phi/phi3)**2 + A_V, A_max)``; the kernel evaluates that form with
      ``|phi| = min(d, 360 - d)``, ``d = |bearing - az|`` (az in (-180, 180]), bearing
      ``atan2(dx, dy)`` clockwise from north as in :func:`sim.antenna.relative_azimuth_deg`,
      and the zenith angle of :func:`sim.antenna.zenith_angle_deg` on the unclipped d2D.
      When tilt and vertical beamwidth are the same for every sector of the layer, A_V is
      a function of d2D and is tabulated too.
    * Serving sector: largest P_j (ties: the earlier candidate). RSRP per resource element
      (TS 38.215 §5.1.1): ``RSRP = P_best - 10 log10(12 N_PRB) + dG_SSB`` (:func:`rsrp_offset_db`;
      ``dG_SSB = radio.ssb_gain_offset_db``, the SSB beam's peak gain minus the traffic beam's).
    * ``SINR = P_best / (sum_{j != best} load_j P_j + N)``, ``N = kT0 B NF`` over
      ``bw_hz`` (:func:`noise_mw`); sums in linear mW, float64. Interference comes from
      the candidates only (the K nearest sites); the tests bound the truncation error.
    * Indoor: the expected O2I loss ``L`` (:func:`o2i_loss_expected_db`), or with
      ``radio.o2i_random`` each pixel's drawn loss (:func:`sim.shadowing.o2i_loss_pixel_db`),
      lowers signal and interference alike: ``RSRP_in = RSRP - L``,
      ``SINR_in = g P_best / (g I + N)`` with ``g = 10**(-L/10)``; no path loss is
      re-evaluated. LOS probability uses the pixel's outdoor distance (d2D-out).
    * Rates: :func:`sim.linkfield.layer_rate_bps` (device classes, SINR ceiling, rank with the
      serving link's LOS probability outdoors, NLOS indoors); interferers weighted by :func:`activity`.

    Validity: that of the path-loss model (10 m <= d2D, clipped below; 5 km, extrapolated
    beyond) and of the antenna pattern (Table 7.3-1).
    """
    pix_x_m = np.asarray(pix_x_m, dtype=np.float64)
    pix_y_m = np.asarray(pix_y_m, dtype=np.float64)
    pix_id = np.asarray(pix_id, dtype=np.int64)
    cand = np.asarray(cand)
    load = np.asarray(load, dtype=np.float32)
    if validate:
        _check_inputs(pix_x_m, pix_y_m, pix_id, cand, sectors, radio, load)
    if cand.ndim == 2:
        cand = cand[:, :, None]
    lay = prepared if prepared is not None else PreparedLayer(sectors, radio, load, tables)
    n_pix, k, s = cand.shape
    s_mw = np.empty(n_pix, dtype=np.float64)
    i_mw = np.empty(n_pix, dtype=np.float64)
    best = np.empty(n_pix, dtype=np.int32)
    top = None
    if top_m > 0:
        m = min(int(top_m), max(k * s - 1, 1))
        top = (np.full((n_pix, m), -1, np.int32), np.zeros((n_pix, m), np.float32), np.empty(n_pix, np.float64))
    step = max(1, int(chunk_pairs) // max(k * s, 1))
    may_pad = _may_pad(cand)
    for c0 in range(0, n_pix, step):
        c1 = min(c0 + step, n_pix)
        _chunk(pix_x_m[c0:c1], pix_y_m[c0:c1], pix_id[c0:c1], cand[c0:c1], lay, seed, may_pad,
               s_mw[c0:c1], i_mw[c0:c1], best[c0:c1],
               None if top is None else tuple(t[c0:c1] for t in top))
    return _finish(s_mw, i_mw, best, lay, lay.radio, top, pix_id, seed,
                   serving_los_probability(pix_x_m, pix_y_m, best, lay))


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
        out[:, :, c0:c1] = _pair_power(pix_x_m[c0:c1], pix_y_m[c0:c1], pix_id[c0:c1], g, prepared, seed)[0]
    return out


def _lookup(lay: PreparedLayer, name, k, f):
    """``tab[k] + f slope[k]`` (float32) from the packed table ``name``."""
    c = lay.packed[name].take(k)
    v = np.multiply(f, c.imag)
    v += c.real
    return v


def _site_terms(lay: PreparedLayer, lead, dx, dy, pid, seed, rec):
    """Per pixel-site ``(ln(path gain) [+ eirp when uniform], theta, c A_V)``, shadow fading included.

    ``theta`` is None when A_V is per pixel-site (tilt and vertical beamwidth uniform, or the
    same for the sectors of each site), else ``c A_V`` is None and the caller evaluates A_V per pair.
    """
    radio = lay.radio
    sampled = radio.los_mode == "sampled"
    sh = lay.shadow_terms(seed) if (lay.shadowed or lay.los_field) else None
    ox = oy = None
    if sh is not None:
        ox, oy = rec[..., 0], rec[..., 1]
    draw = _los_draw(lay, sh, lead, ox, oy, dx, dy, pid, seed, rec) if sampled else None
    los = None
    if lay.use_tables:
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
        if sampled:
            los = draw < _lookup(lay, "z_los" if lay.los_field else "p_los", k, x)
            k_state = np.multiply(los, np.int32(lay.state_off))
            k_state += k
            ln_g = _lookup(lay, "gain_state", k_state, x)
        else:
            ln_g = _lookup(lay, "gain", k, x)
        if lay.shadowed:
            ln_g -= shadowing.shadow_fading_c(sh, lead, ox, oy, dx, dy, los, d2)
        if lay.v_per_site:
            return ln_g, None, _lookup(lay, "a_v", k, x)
        if lay.v_by_site:
            return ln_g, None, _vertical_att_site_c(lay, _lookup(lay, "theta", k, x), lead, rec)
        return ln_g, _lookup(lay, "theta", k, x), None
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
        return ln_g, None, _vertical_att_site_c(lay, theta, lead, rec)
    return ln_g, theta, None


def _vertical_att_site_c(lay: PreparedLayer, theta, lead, rec):
    """:func:`_vertical_att_c` per pixel-site with the tilt and beamwidth of the site's first sector
    (the same for all its sectors, ``lay.v_by_site``): the values the per-pair evaluation gives."""
    c_v = lay.c_v if np.ndim(lay.c_v) == 0 else lay.c_v.take(lead)
    return _vertical_att_c(theta, lay.tilt if np.ndim(lay.tilt) == 0 else rec[..., 3], c_v, lay.sla)


def _los_draw(lay: PreparedLayer, sh, lead, ox, oy, dx, dy, pid, seed, rec):
    """The draw of the sampled LOS state per pixel-site: with ``los_consistent`` the site's
    standard normal LOS-state field (TR 38.901 §7.6.3.3; LOS iff below ``Phi^-1(Pr_LOS)``),
    else an independent uniform hash (LOS iff below ``Pr_LOS``)."""
    if not lay.los_field:
        return los_uniform(pid, lay.site_id.take(lead), seed)
    cpm = sh["cpm_state"] if np.ndim(sh["cpm_state"]) == 0 else rec[..., 2]
    return shadowing.field_at(sh["z32"], ox, oy, dx, dy, cpm, shadowing.LOS_SHIFT_CELLS)


def _may_pad(cand) -> bool:
    """Whether a candidate array holds any -1 pad (one pass over the block instead of a mask per chunk)."""
    return bool(cand.size) and bool(cand.min() < 0)


def _pair_power(px, py, pid, g, lay: PreparedLayer, seed, may_pad: bool = True):
    """Received power over the carrier, mW float32 ``[k, s, n]``, of candidate sectors ``g``
    (``[k, s, n]`` intp, -1 pads get 0 mW); also whether every site slot is filled."""
    s = g.shape[1]
    lead = g[:, 0, :]
    has_site = lead >= 0
    all_sites = bool(has_site.all())
    if not all_sites:
        lead = np.where(has_site, lead, 0)
    # ---- per pixel-site: geometry, path gain (+ vertical pattern)
    r64 = lay.site_record(seed).take(lead, axis=0)          # [k, n, 4]
    dx = np.subtract(px, r64[..., 0], out=np.empty(lead.shape, np.float32), casting="same_kind")
    dy = np.subtract(py, r64[..., 1], out=np.empty(lead.shape, np.float32), casting="same_kind")
    ln_g, theta, a_v = _site_terms(lay, lead, dx, dy, pid, seed, r64[..., 2:].view(np.float32))
    bearing = np.arctan2(dx, dy, out=dx)
    bearing *= _RAD2DEG                          # np.degrees, bit for bit
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


def _chunk(px, py, pid, cand, lay: PreparedLayer, seed, may_pad, s_out, i_out, best_out, top_out):
    n = px.shape[0]
    k, s = cand.shape[1], cand.shape[2]
    # candidate-major layout [k, s, n]: every inner loop runs over contiguous pixels
    g = np.empty((k, s, n), dtype=np.intp)
    g[...] = cand.transpose(1, 2, 0)
    t, all_sites = _pair_power(px, py, pid, g, lay, seed, may_pad)
    p = t.reshape(k * s, n)
    # ---- reductions per pixel
    cols = np.arange(n)
    ranked = None
    if top_out is None:
        # pixel-major copy: argmax along the contiguous axis (what argmax(p, axis=0) copies to anyway)
        row = np.argmax(np.ascontiguousarray(p.T), axis=1)
    else:
        ranked = _ranked(p, top_out[0].shape[1])
        row = ranked[0]
    sig = p[row, cols]
    g2 = g.reshape(k * s, n)
    best = g2[row, cols]
    if np.ndim(lay.load) == 0:
        tot = np.add.reduce(p, axis=0, dtype=np.float64)
        tot -= sig
        tot *= float(lay.load)
        w = None
    else:
        w = lay.load.take(g2)
        w *= p
        tot = np.add.reduce(w, axis=0, dtype=np.float64)
        tot -= w[row, cols]
    np.maximum(tot, 0.0, out=tot)
    none = sig <= 0.0
    best = best.astype(np.int32)
    best[none] = -1
    s_out[...] = sig
    i_out[...] = tot
    best_out[...] = best
    if top_out is not None:
        _top_m(ranked[1], ranked[2], cols, g2, lay, tot, top_out)


def _vertical_att_c(theta, tilt, c_v, sla):
    """``min(12 ((theta - 90 - tilt) / theta_3dB)**2, SLA_V) * ln(10)/10`` (Table 7.3-1 A_V)."""
    y = theta - _F32(90.0)
    y = y - tilt
    y *= y
    y *= c_v
    np.minimum(y, _filled(sla, y.shape) if np.ndim(sla) == 0 else sla, out=y)
    y *= _C
    return y


_LOW32 = np.uint64(0xFFFFFFFF)
_REV: dict = {}


def _ranked(p, m: int):
    """``(row, rows, vals)``: per pixel the row of ``p`` (``[k*s, n]`` float32 >= 0) with the largest power
    (the serving candidate: the first of equal maxima, as ``np.argmax``), and the rows ``[n, <= m]`` and powers
    of the next ``m`` strongest, in decreasing power (ties: the earlier row first).

    Each pair is ranked by an exact unsigned key, the power's float32 bits (monotone for non-negative floats)
    above ``k*s - 1 - row``: distinct keys, so the selection (``np.partition`` then a sort of the few kept) has
    one answer whatever the CPU or the partition algorithm.
    """
    ks, n = p.shape
    rev = _REV.get(ks)
    if rev is None:
        rev = _REV[ks] = np.arange(ks - 1, -1, -1, dtype=np.uint64)
    key = np.empty((n, ks), dtype=np.uint64)
    key[...] = p.view(np.uint32).T
    key <<= np.uint64(32)
    key |= rev
    kk = min(m + 1, ks)
    if kk < ks:
        key = np.partition(key, ks - kk, axis=1)[:, ks - kk:]
    key = np.sort(key, axis=1)[:, ::-1]
    rows = (np.uint64(ks - 1) - (key & _LOW32)).astype(np.intp)
    vals = (key >> np.uint64(32)).astype(np.uint32).view(np.float32)
    return rows[:, 0], rows[:, 1:], vals[:, 1:]


def _top_m(rows, vals, cols, g2, lay, tot, top_out):
    """The ``m`` strongest interferers of each pixel (rows and powers from :func:`_ranked`) as sector indices,
    powers and the residual interference (``tot`` less the load-weighted terms)."""
    top_sec, top_mw, resid = top_out
    n, m = top_sec.shape
    got = rows.shape[1]
    sec = np.full((n, m), -1, dtype=np.int32)
    mw = np.zeros((n, m), dtype=np.float32)
    if got:
        rows = rows * n
        rows += cols[:, None]
        sec[:, :got] = g2.take(rows)     # g2 [k*s, n] C-contiguous
        mw[:, :got] = vals
    sec[mw <= 0.0] = -1
    mw[mw <= 0.0] = 0.0
    top_sec[...] = sec
    top_mw[...] = mw
    loads = lay.load64.take(np.where(sec >= 0, sec, 0))
    r = tot - np.add.reduce(loads * mw, axis=1)
    np.maximum(r, 0.0, out=r)
    resid[...] = r


def _finish(s_mw, i_mw, best, lay: PreparedLayer, radio: LayerRadio, top, pix_id, seed, los_prob) -> BlockCoverage:
    none = best < 0
    o2i_db = shadowing.o2i_loss_pixel_db(radio, pix_id, seed) if radio.o2i_random else lay.o2i_db
    with np.errstate(divide="ignore", invalid="ignore"):
        rsrp = (10.0 * np.log10(s_mw) - (lay.offset_db - radio.ssb_gain_offset_db)).astype(np.float32)
        sinr = (10.0 * np.log10(s_mw / (i_mw + lay.noise_mw))).astype(np.float32)
        g = lay.o2i_gain if not radio.o2i_random else 10.0 ** (-o2i_db / 10.0)
        sinr_in = (10.0 * np.log10((g * s_mw) / (g * i_mw + lay.noise_mw))).astype(np.float32)
    rsrp[none] = np.nan
    sinr[none] = np.nan
    sinr_in[none] = np.nan
    rsrp_in = rsrp - np.asarray(o2i_db, dtype=np.float32)
    se = linkmodel.spectral_efficiency_bps_hz(linkfield.effective_sinr_db(sinr, radio.sinr_max_db),
                                              method=radio.se_method).astype(np.float32, copy=False)
    rate_out = linkfield.layer_rate_bps(sinr, radio, los_prob).astype(np.float32, copy=False)
    rate_in = linkfield.layer_rate_bps(sinr_in, radio).astype(np.float32, copy=False)  # indoor: NLOS rank
    terms = None
    if top is not None:
        sig = np.where(none, 0.0, s_mw)
        terms = InterferenceTerms(signal_mw=sig, top_sector=top[0], top_mw=top[1], residual_mw=top[2],
                                  noise_mw=lay.noise_mw)
    return BlockCoverage(rsrp_dbm=rsrp, best_sector=best, sinr_db=sinr, se_bps_hz=se, rate_outdoor_bps=rate_out,
                         rate_indoor_bps=rate_in, rsrp_indoor_dbm=rsrp_in, sinr_indoor_db=sinr_in,
                         interference=terms, los_prob_serving=los_prob)
