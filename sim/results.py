"""Plain frozen dataclasses of arrays that the layers hand each other.

No physics here: containers with their dtype contract, checked once when built.

* :class:`SectorArrays` - the sectors of ONE radio layer (one operator's carrier), a
  struct of arrays, one row per sector-carrier.
* :class:`LayerRadio` - the per-layer radio parameters (carrier, receiver, link model).
* :class:`BlockCoverage` - what :func:`sim.kernel.coverage_block` returns for one block.
* :class:`InterferenceTerms` - the top-M interferers of each pixel, so a load fixed point
  can recompute SINR without path loss (:func:`sim.busyload.sinr_for_load`).
* :class:`CoverageLayers` - the full result of one layer over the land pixels of a grid.
* :class:`TileTerms` - where a layer's interference terms stayed when its tiles were kept by
  an engine (the busy hour reads them tile by tile, :mod:`sim.busyload`).

Per-pixel arrays are flat over land pixels (``CityRasters.land_flat`` order). No-data is
explicit: ``best_sector = -1`` and NaN for floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from .errors import InputError

__all__ = [
    "SCENARIO_CODES",
    "LOS_MODES",
    "SectorArrays",
    "LayerRadio",
    "InterferenceTerms",
    "BlockCoverage",
    "CoverageLayers",
    "TileTerms",
]

SCENARIO_CODES = ("uma", "umi", "rma")
"""TR 38.901 propagation scenario of a sector: ``SectorArrays.scenario`` is an index into this."""

LOS_MODES = ("expected", "nlos", "sampled")
"""How the kernel treats the LOS state of a link (see :func:`sim.kernel.coverage_block`)."""

_SECTOR_DTYPES = {
    "site_id": np.int32,
    "x_m": np.float64,
    "y_m": np.float64,
    "h_bs_m": np.float32,
    "az_deg": np.float32,
    "tilt_deg": np.float32,
    "ptx_dbm": np.float32,
    "g_max_dbi": np.float32,
    "hpbw_h_deg": np.float32,
    "hpbw_v_deg": np.float32,
    "scenario": np.int8,
}


@dataclass(frozen=True)
class SectorArrays:
    """The sectors of one layer as a struct of arrays (all of length ``n_sectors``).

    Parameters
    ----------
    site_id : int32
        Site of the sector. Sectors of one site share ``x_m``, ``y_m``, ``h_bs_m`` and
        ``scenario`` (the coverage layer checks it and computes path loss per site).
    x_m, y_m : float64
        Position in the grid CRS (EPSG:32651), m.
    h_bs_m : float32
        Antenna height above ground, m.
    az_deg : float32
        Boresight azimuth, deg clockwise from grid north.
    tilt_deg : float32
        Downtilt, deg, positive down.
    ptx_dbm : float32
        Transmit power of the sector over the whole carrier, dBm.
    g_max_dbi : float32
        Maximum antenna gain, dBi.
    hpbw_h_deg, hpbw_v_deg : float32
        Horizontal and vertical half-power beamwidths, deg.
    scenario : int8
        Index into :data:`SCENARIO_CODES` (0 UMa, 1 UMi, 2 RMa).

    Arrays are converted to these dtypes (C-contiguous) when the object is built; lengths
    that differ, or a scenario code out of range, raise :class:`~sim.errors.InputError`.
    """

    site_id: np.ndarray
    x_m: np.ndarray
    y_m: np.ndarray
    h_bs_m: np.ndarray
    az_deg: np.ndarray
    tilt_deg: np.ndarray
    ptx_dbm: np.ndarray
    g_max_dbi: np.ndarray
    hpbw_h_deg: np.ndarray
    hpbw_v_deg: np.ndarray
    scenario: np.ndarray

    def __post_init__(self):
        n = None
        for name, dt in _SECTOR_DTYPES.items():
            a = np.ascontiguousarray(np.asarray(getattr(self, name)), dtype=dt)
            if a.ndim != 1:
                raise InputError("SectorArrays", name, f"expected a 1-D array, got shape {a.shape}")
            if n is None:
                n = a.size
            elif a.size != n:
                raise InputError("SectorArrays", name, f"expected {n} values (one per sector), got {a.size}")
            a.flags.writeable = False
            object.__setattr__(self, name, a)
        bad = (self.scenario < 0) | (self.scenario >= len(SCENARIO_CODES))
        if bad.any():
            raise InputError("SectorArrays", "scenario",
                             f"expected a code 0..{len(SCENARIO_CODES) - 1} into {SCENARIO_CODES}, "
                             f"got {int(self.scenario[bad][0])}")

    @property
    def n_sectors(self) -> int:
        return int(self.site_id.size)

    def take(self, idx) -> SectorArrays:
        """The sectors ``idx`` (integer or boolean index) as a new :class:`SectorArrays`."""
        return SectorArrays(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


@dataclass(frozen=True)
class LayerRadio:
    """Radio parameters of one layer (one carrier of one operator's radio network).

    Parameters
    ----------
    layer_id : str
        Name of the layer, e.g. ``"cmcc-n41"``.
    fc_ghz : float
        Carrier frequency, GHz.
    bw_hz : float
        Operator's bandwidth in the band, Hz (split into standard carriers by
        :func:`sim.linkmodel.n_prb_total`).
    scs_khz : int
        Subcarrier spacing, kHz.
    noise_figure_db : float
        UE noise figure, dB.
    max_layers : int
        Most downlink MIMO layers.
    dl_share : float
        Downlink share of the resources (TDD), (0, 1].
    overhead : float
        TS 38.306 §4.1.2 overhead (0.14 FR1 DL).
    h_ut_m : float
        UE height, m (1.5 m street level).
    los_mode : {"expected", "nlos", "sampled"}
        LOS handling (see :func:`sim.kernel.coverage_block`).
    o2i_high_share : float
        Share of indoor users in high-loss buildings (TR 38.901 Table 7.4.3-2), [0, 1].
    sla_v_db, a_max_db : float
        Antenna side-lobe limit and front-to-back ratio (TR 38.901 Table 7.3-1), dB.
    se_method : {"cqi", "shannon"}
        SINR to spectral efficiency mapping (:func:`sim.linkmodel.spectral_efficiency_bps_hz`).
    h_building_m, w_street_m : float
        RMa average building height and street width, m (TR 38.901 Table 7.4.1-1 defaults).
    d2d_in_m : float
        Indoor distance of the O2I loss, m (TR 38.901 §7.4.3.1 mean, 25/3 m).
    sinr_max_db : float
        Ceiling of the effective SINR of rates (:func:`sim.linkfield.effective_sinr_db`);
        0: none.
    min_load : float
        Activity of an idle cell (always-on signals) in [0, 1): an interferer at load
        ``rho`` is weighted ``min_load + (1 - min_load) rho`` (:func:`sim.kernel.activity`).
    rank_thresholds_db, rank_thresholds_los_db : tuple of float
        Lowest SINR of rank 2, 3, ... for NLOS and LOS links (:func:`sim.linkfield.expected_layers`);
        ``rank_thresholds_los_db`` None: no LOS dependence.
    rank_model : {"thresholds", "adaptive"}
        Rank from SINR thresholds, or rank adaptation with receive combining
        (:func:`sim.linkfield.device_mix_rate_bps`); ``los_max_layers`` (0: no limit) caps
        the layers of a LOS link in the adaptive model.
    device_classes : tuple of (share, n_prb, max_layers)
        Device classes of the layer (:func:`sim.linkfield.device_mix_rate_bps`); empty: one
        class using the whole block with ``max_layers``.
    shadow_fading : bool
        Log-normal shadow fading per pixel-site, sigma_SF of TR 38.901 Table 7.4.1-1, spatially
        correlated per site with the decorrelation distances of Table 7.5-6 (:mod:`sim.shadowing`).
    los_consistent : bool
        ``los_mode = "sampled"`` draws the LOS state from a spatially consistent field per site
        (TR 38.901 §7.6.3.3) instead of independently per pixel-site.
    o2i_random : bool
        Indoor pixels draw their building type (high-loss with ``o2i_high_share``) and the
        N(0, sigma_P**2) part of TR 38.901 Table 7.4.3-2, instead of the expected loss.
    ssb_gain_offset_db : float
        Peak gain of the SSB (broadcast) beam minus that of the traffic beam, dB; SS-RSRP uses
        the SSB beam, SINR and rates the traffic beam.
    ue_gain_db : float
        UE antenna gain minus body loss, dB: added to the received power of every sector (signal
        and interference alike, not the noise; :func:`sim.kernel.coverage_block`).
    """

    layer_id: str
    fc_ghz: float
    bw_hz: float
    scs_khz: int
    noise_figure_db: float
    max_layers: int
    dl_share: float = 1.0
    overhead: float = 0.14
    h_ut_m: float = 1.5
    los_mode: str = "expected"
    o2i_high_share: float = 0.5
    sla_v_db: float = 30.0
    a_max_db: float = 30.0
    se_method: str = "cqi"
    h_building_m: float = 5.0
    w_street_m: float = 20.0
    d2d_in_m: float = 25.0 / 3.0
    sinr_max_db: float = 0.0
    min_load: float = 0.0
    rank_thresholds_db: tuple = (5.0, 9.0, 12.0)
    rank_thresholds_los_db: tuple | None = None
    device_classes: tuple = ()
    rank_model: str = "thresholds"
    los_max_layers: int = 0
    shadow_fading: bool = False
    los_consistent: bool = False
    o2i_random: bool = False
    ssb_gain_offset_db: float = 0.0
    ue_gain_db: float = 0.0

    def __post_init__(self):
        if not (0.0 <= float(self.min_load) < 1.0):
            raise InputError("LayerRadio", "min_load", f"expected a share in [0, 1), got {self.min_load!r}")
        if self.los_mode not in LOS_MODES:
            raise InputError("LayerRadio", "los_mode", f"expected one of {LOS_MODES}, got {self.los_mode!r}")
        if not (0.0 <= float(self.o2i_high_share) <= 1.0):
            raise InputError("LayerRadio", "o2i_high_share", f"expected a share in [0, 1], got {self.o2i_high_share!r}")
        for name in ("fc_ghz", "bw_hz", "h_ut_m"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v <= 0:
                raise InputError("LayerRadio", name, f"expected a positive number, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class InterferenceTerms:
    """The strongest interferers of each pixel, to recompute SINR for new cell loads.

    Parameters
    ----------
    signal_mw : float64 [n_pix]
        Received power of the serving sector over the carrier, mW (0 where none).
    top_sector : int32 [n_pix, M]
        The M strongest other candidate sectors (by received power, strongest first; equal powers in
        candidate order, so the same on every CPU), -1 padded.
    top_mw : float32 [n_pix, M]
        Their received power at full load, mW (0 where padded).
    residual_mw : float64 [n_pix]
        Load-weighted interference of the remaining candidates, with the loads the block was
        computed with, mW.
    noise_mw : float
        Receiver noise over the bandwidth, mW.
    """

    signal_mw: np.ndarray
    top_sector: np.ndarray
    top_mw: np.ndarray
    residual_mw: np.ndarray
    noise_mw: float


@dataclass(frozen=True)
class BlockCoverage:
    """Outputs of :func:`sim.kernel.coverage_block` for one block of ``n_pix`` pixels.

    ``rsrp_dbm``, ``sinr_db``, ``se_bps_hz``, rates and indoor values are float32 [n_pix];
    ``best_sector`` int32 [n_pix] (-1 where no candidate). ``interference`` is set when
    the kernel was asked for the top-M interferers.
    """

    rsrp_dbm: np.ndarray
    best_sector: np.ndarray
    sinr_db: np.ndarray
    se_bps_hz: np.ndarray
    rate_outdoor_bps: np.ndarray
    rate_indoor_bps: np.ndarray
    rsrp_indoor_dbm: np.ndarray
    sinr_indoor_db: np.ndarray
    interference: InterferenceTerms | None = None
    los_prob_serving: np.ndarray | None = None

    PIXEL_FIELDS = ("rsrp_dbm", "best_sector", "sinr_db", "se_bps_hz", "rate_outdoor_bps",
                    "rate_indoor_bps", "rsrp_indoor_dbm", "sinr_indoor_db", "los_prob_serving")


@dataclass(frozen=True)
class CoverageLayers:
    """The coverage rasters of one layer, flat over the land pixels of a grid.

    Per pixel (length ``n_land``, ``land_flat`` order): ``rsrp_dbm`` (RSRP per resource
    element of the serving sector, dBm), ``best_sector`` (int32 index into the layer's
    :class:`SectorArrays`, -1 none), ``sinr_db``, ``se_bps_hz`` (outdoor spectral
    efficiency per layer), ``rate_outdoor_bps``, ``rate_indoor_bps``, ``rsrp_indoor_dbm``,
    ``sinr_indoor_db`` - float32, NaN where there is no serving sector.

    Per sector (length ``n_sectors``): ``sector_pixels`` (int64), ``sector_area_km2``,
    ``sector_population``, ``sector_households`` (float64) of the pixels it serves.

    ``load`` is the cell load (float32 [n_sectors]) the interference was weighted with;
    ``interference`` the top-M terms when asked for (see :class:`InterferenceTerms`);
    ``los_prob_serving`` (float32 [n_land]) the TR 38.901 LOS probability of each pixel's
    serving link (the rank model's LOS weight).
    """

    layer_id: str
    rsrp_dbm: np.ndarray
    best_sector: np.ndarray
    sinr_db: np.ndarray
    se_bps_hz: np.ndarray
    rate_outdoor_bps: np.ndarray
    rate_indoor_bps: np.ndarray
    rsrp_indoor_dbm: np.ndarray
    sinr_indoor_db: np.ndarray
    sector_pixels: np.ndarray
    sector_area_km2: np.ndarray
    sector_population: np.ndarray
    sector_households: np.ndarray
    load: np.ndarray
    k_sites: int
    interference: InterferenceTerms | None = field(default=None, repr=False)
    los_prob_serving: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_land(self) -> int:
        return int(self.rsrp_dbm.size)


@dataclass(frozen=True)
class TileTerms:
    """A layer's coverage tiles kept by an engine stage, with their interference terms.

    ``CoverageLayers.interference`` holds one when the coverage ran on a stage with its
    tiles kept (:func:`sim.coverage.coverage_on_stage`): the whole-grid top-M terms
    (about 112 bytes per pixel) then never reach the parent process. Valid while that
    stage is open.

    Parameters
    ----------
    blocks : tuple of (start, stop)
        Land-pixel range of each tile, in order.
    kept : tuple
        The engine's handle of each tile (:class:`sim.engine.Kept`): its ``(start, stop,
        BlockCoverage)`` with ``interference`` set.
    n_land : int
        Land pixels of the grid.
    noise_mw : float
        Receiver noise over the bandwidth, mW.
    """

    blocks: tuple
    kept: tuple
    n_land: int
    noise_mw: float
