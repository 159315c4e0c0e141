"""Scenario configs: TOML in, validated immutable objects out.

Each section is a frozen dataclass whose fields carry their own validation (type, range,
choices) in ``dataclasses.field`` metadata, so a field is declared once. Errors name the
file, the key path, what was expected and what came::

    configs/x.toml: radio.noise_figure_db: expected a number in [0, 20], got '7dB'

Unknown keys are errors. Relative paths resolve against the folder of the file that wrote
them: a config may ``extends = "other.toml"`` (a path relative to itself), whose tables it
deep-merges over (lists are replaced, chains allowed, cycles refused), and the command line's
``--set section.key=value`` (:func:`apply_sets`) changes one key, typed by the schema.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError

__all__ = [
    "Antenna",
    "Carrier",
    "Operator",
    "ScenarioMeta",
    "Region",
    "ClassParams",
    "SmallCell",
    "Deployment",
    "Device",
    "Radio",
    "Traffic",
    "Broadband",
    "Threshold",
    "DistrictInputs",
    "DistrictInputTable",
    "Criteria",
    "Output",
    "Planning",
    "Scenario",
    "SECTIONS",
    "load_scenario",
    "parse_scenario",
    "with_overrides",
    "NR_BANDS_FR1",
    "MAX_SITES_PER_NETWORK",
]

_MISSING = dataclasses.MISSING

MAX_SITES_PER_NETWORK = 1_000_000
"""Most sites of one radio network (``deployment.sites``, ``small_cells``): ten times China's
densest city network (Shanghai: about 54,000 5G sites in 2022, all operators); a guard on time
and memory, not a model. A site file is bounded by ``sitefiles.MAX_SITE_ROWS``."""
_CODE_RE = re.compile(r"^\d{6}$")
_ID_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


def spec(default=_MISSING, *, lo=None, hi=None, lo_open=False, hi_open=False, choices=None, pattern=None,
         length=None, doc=""):
    """A dataclass field with validation metadata.

    ``lo``/``hi`` bound numbers (closed unless ``*_open``), ``choices`` lists allowed
    strings, ``pattern`` is a regex for strings, ``length`` fixes a list's length.
    """
    meta = dict(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, choices=choices, pattern=pattern,
                length=length, doc=doc)
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for list defaults")
    if default is _MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------------------
# sections


@dataclass(frozen=True, kw_only=True)
class ScenarioMeta:
    name: str = spec(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                     doc="scenario name, used in run folder names (1 to 64 letters, digits, '.', '_', '-')")
    year: int = spec(lo=2000, hi=2100, doc="the year the scenario describes")
    seed: int = spec(0, lo=0, hi=2**63 - 1, doc="seed of every random draw (numpy SeedSequence)")
    description: str = spec("", doc="free text")


@dataclass(frozen=True, kw_only=True)
class Region:
    districts: Path = spec(doc="district polygons, GeoJSON in EPSG:4326")
    census: Path = spec(doc="census table CSV")
    key_places: Path = spec(doc="key places CSV (WGS84)")
    resolution_m: float = spec(lo=10.0, hi=2000.0, doc="raster pixel size, metres")
    district_codes: tuple[str, ...] = spec((), pattern=r"^\d{6}$", doc="simulate only these districts (empty: all)")
    max_memory_gb: float = spec(0.0, lo=0.0, doc="refuse grids whose rasters need more (0: half the RAM)")
    name: str = spec("", doc="name of the city, as the report writes it (empty: 'the region')")
    name_zh: str = spec("", doc="Chinese name of the city")
    crs: str = spec("", pattern=r"^(|EPSG:\d{4,5})$",
                    doc="metric grid CRS, e.g. 'EPSG:32650' (empty: the UTM zone of the region's centroid)")
    sources: tuple[str, ...] = spec((), doc="sources of the district polygons and census table, as the report cites "
                                            "them (empty: the shipped Shanghai data's)")


@dataclass(frozen=True, kw_only=True)
class Antenna:
    """Sector antenna, 3GPP TR 38.901 Table 7.3-1 pattern."""

    g_max_dbi: float = spec(lo=0.0, hi=40.0, doc="maximum gain incl. array gain, dBi")
    hpbw_h_deg: float = spec(65.0, lo=5.0, hi=360.0, doc="horizontal half-power beamwidth")
    hpbw_v_deg: float = spec(10.0, lo=1.0, hi=180.0, doc="vertical half-power beamwidth")
    tilt_deg: float = spec(6.0, lo=-10.0, hi=30.0, doc="downtilt, positive down")
    sla_v_db: float = spec(30.0, lo=0.0, hi=60.0, doc="vertical side-lobe attenuation")
    a_max_db: float = spec(30.0, lo=0.0, hi=60.0, doc="front-to-back ratio")
    ssb_g_max_dbi: float = spec(None, lo=0.0, hi=40.0,
                                doc="peak gain of the SSB (broadcast) beam, dBi: SS-RSRP (absent: g_max_dbi)")


@dataclass(frozen=True, kw_only=True)
class Carrier:
    band: str = spec(pattern=r"^n\d{1,3}$", doc="NR band, e.g. n78")
    fc_ghz: float = spec(lo=0.41, hi=7.125, doc="centre frequency (FR1: 410 MHz - 7.125 GHz)")
    bw_mhz: float = spec(lo=5.0, hi=400.0, doc="occupied bandwidth of the operator on this band, MHz")
    scs_khz: int = spec(30, choices=(15, 30, 60), doc="subcarrier spacing")
    duplex: str = spec("tdd", choices=("tdd", "fdd"), doc="duplexing")
    dl_share: float = spec(1.0, lo=0.0, hi=1.0, lo_open=True, doc="share of time/resources for downlink (TDD)")
    max_layers: int = spec(4, lo=1, hi=8, doc="maximum downlink MIMO layers")
    ptx_dbm: float = spec(lo=0.0, hi=60.0, doc="transmit power per sector over the carrier, dBm")
    antenna: Antenna = spec(doc="sector antenna")


@dataclass(frozen=True, kw_only=True)
class Operator:
    id: str = spec(pattern=_ID_RE.pattern, doc="short id, e.g. cmcc")
    name: str = spec(doc="name")
    name_zh: str = spec("", doc="Chinese name")
    mobile_share: float = spec(lo=0.0, hi=1.0, doc="share of the city's mobile users")
    ran: str = spec("", doc="id of the operator whose radio network serves these users (empty: its own)")
    carriers: tuple[Carrier, ...] = spec((), doc="carriers of its own radio network")

    @property
    def ran_id(self) -> str:
        return self.ran or self.id


@dataclass(frozen=True, kw_only=True)
class ClassParams:
    """Site parameters of a district class (central, suburban, rural)."""

    scenario: str = spec(choices=("uma", "umi", "rma"), doc="TR 38.901 propagation scenario")
    h_bs_m: float = spec(lo=2.0, hi=150.0, doc="antenna height")


@dataclass(frozen=True, kw_only=True)
class SmallCell:
    """UMi small cells added in the central districts (see ``Deployment.small_cells``).

    Defaults follow 3GPP TR 38.901 V17.0.0 Table 7.8-1 (large-scale calibration, UMi at
    6 GHz): h_BS = 10 m, BS Tx power 44 dBm, 3 sectors per site, a (M, N, P) = (4, 4, 2)
    panel of 8 dBi elements (Table 7.3-1) -> 8 + 10 log10(16) = 20 dBi per polarisation,
    electrical downtilt 102 deg from zenith = 12 deg down. ASSUMPTION: the 44 dBm is
    applied per carrier whatever its bandwidth; the vertical beam is the 4-row panel's,
    about 25 deg; horizontally the 65 deg sector envelope as for the macro sites.
    """

    h_bs_m: float = spec(10.0, lo=2.0, hi=30.0, doc="antenna height (TR 38.901 Table 7.4.1-1 UMi: 10 m)")
    ptx_dbm: float = spec(44.0, lo=0.0, hi=60.0, doc="transmit power per sector over each carrier, dBm")
    n_sectors: int = spec(3, lo=1, hi=6, doc="sectors per small cell")
    bands: tuple[str, ...] = spec((), pattern=r"^n\d{1,3}$",
                                  doc="bands of the carriers the small cells carry "
                                      "(empty: every carrier of the network)")
    antenna: Antenna = spec(Antenna(g_max_dbi=20.0, hpbw_h_deg=65.0, hpbw_v_deg=25.0, tilt_deg=12.0),
                            doc="small-cell antenna")


@dataclass(frozen=True, kw_only=True)
class Deployment:
    strategy: str = spec("density", choices=("density", "file"), doc="how sites are placed")
    sites: dict[str, int] = spec(None, lo=0, hi=MAX_SITES_PER_NETWORK,
                                 doc="sites per radio network (RAN id -> count) for 'density'")
    sites_per_10k: dict[str, float] = spec(None, lo=0.0, hi=1000.0,
                                           doc="instead of 'sites': sites per 10,000 residents of the region")
    central_site_factor: float = spec(1.0, lo=0.0, hi=10.0,
                                      doc="multiplies the density sites allocated to each central district")
    extra_site_files: tuple[Path, ...] = spec((), doc="CSV site files added to the placed sites "
                                                       "(e.g. a plan's added_sites.csv)")
    distribute_by: str = spec("population", choices=("population", "area", "blend", "explicit"), doc="district split")
    population_weight: float = spec(0.7, lo=0.0, hi=1.0, doc="weight of population in 'blend'")
    explicit_counts: dict[str, int] = spec(None, lo=0, doc="district code -> share of sites (weights) for 'explicit'")
    jitter_frac: float = spec(0.25, lo=0.0, hi=0.45, doc="lattice jitter, fraction of spacing")
    n_sectors: int = spec(3, lo=1, hi=6, doc="sectors per site")
    downtilt: str = spec("fixed", choices=("fixed", "spacing"),
                         doc="macro downtilt: the carrier's ('fixed') or from the local site spacing ('spacing')")
    max_downtilt_deg: float = spec(20.0, lo=0.0, hi=45.0, doc="largest downtilt of 'spacing', deg")
    central_districts: tuple[str, ...] = spec((), pattern=r"^\d{6}$", doc="codes of the central urban class")
    rural_districts: tuple[str, ...] = spec((), pattern=r"^\d{6}$", doc="codes of the rural class")
    central: ClassParams = spec(ClassParams(scenario="uma", h_bs_m=30.0), doc="central urban sites")
    suburban: ClassParams = spec(ClassParams(scenario="uma", h_bs_m=30.0), doc="suburban sites")
    rural: ClassParams = spec(ClassParams(scenario="rma", h_bs_m=35.0), doc="rural sites")
    site_file: Path = spec(None, doc="site file for 'file'")
    site_format: str = spec("csv", choices=("csv", "geojson", "opencellid"), doc="format of site_file")
    on_bad_row: str = spec("skip", choices=("skip", "raise"), doc="bad rows of the site file")
    site_delimiter: str = spec(",", choices=(",", ";", "\t", "|"), doc="field separator of a CSV site_file")
    small_cells: dict[str, int] = spec(None, lo=0, hi=MAX_SITES_PER_NETWORK,
                                       doc="UMi small cells per radio network, central districts (none)")
    small_cell: SmallCell = spec(SmallCell(), doc="parameters of the small cells")


@dataclass(frozen=True, kw_only=True)
class Device:
    """A class of user devices (``[[radio.devices]]``): its share and what it uses per band."""

    name: str = spec(doc="name of the class, e.g. '1CC handset'")
    share: float = spec(lo=0.0, hi=1.0, lo_open=True, doc="share of the 5G users (the classes add up to 1)")
    carriers: dict[str, int] = spec(lo=1, hi=16, doc="band -> component carriers of the block the device aggregates")
    rx: dict[str, int] = spec(None, lo=1, hi=8,
                              doc="band -> receive antennas = most DL layers (missing: the carrier's max_layers)")


@dataclass(frozen=True, kw_only=True)
class Radio:
    h_ut_m: float = spec(1.5, lo=1.0, hi=22.5, doc="UE height (TR 38.901 Table 7.4.1-1: 1.5-22.5 m)")
    noise_figure_db: float = spec(9.0, lo=0.0, hi=20.0, doc="UE noise figure")
    k_sites: int = spec(32, lo=1, hi=1024, doc="nearest sites evaluated per pixel")
    los_mode: str = spec("expected", choices=("expected", "nlos", "sampled"), doc="LOS handling")
    indoor_share: float = spec(0.8, lo=0.0, hi=1.0, doc="share of users indoors")
    o2i_high_loss_share: float = spec(0.5, lo=0.0, hi=1.0, doc="share of indoor users in high-loss buildings")
    se_method: str = spec("cqi", choices=("cqi", "shannon"), doc="SINR to spectral efficiency mapping")
    overhead: float = spec(0.14, lo=0.0, hi=0.5, doc="L1/L2 overhead (TS 38.306 4.1.2: 0.14 FR1 DL)")
    default_load: float = spec(0.5, lo=0.0, hi=1.0, doc="cell load weighting interference before the busy hour")
    shadow_fading: bool = spec(False, doc="log-normal shadow fading, TR 38.901 Table 7.4.1-1, correlated per site "
                                          "(Table 7.5-6)")
    los_consistent: bool = spec(False, doc="'sampled' LOS state spatially consistent per site (TR 38.901 7.6.3.3)")
    o2i_random: bool = spec(False, doc="draw each pixel's building type and the N(0, sigma_P) O2I term "
                                       "(TR 38.901 Table 7.4.3-2)")
    block_size: int = spec(65536, lo=256, hi=4_194_304, doc="land pixels per kernel block")
    workers: int = spec(0, lo=0, hi=256, doc="worker processes (0: all cores)")
    field_overhead: float = spec(-1.0, lo=-1.0, hi=0.9,
                                 doc="overhead of the rates in the field (-1: the TS 38.306 'overhead')")
    sinr_max_db: float = spec(0.0, lo=0.0, hi=60.0, doc="ceiling of the effective SINR of rates, dB (0: none)")
    min_load: float = spec(0.0, lo=0.0, hi=1.0, hi_open=True,
                           doc="activity of an idle neighbour cell (always-on signals), weights its interference")
    rank_thresholds_db: tuple[float, ...] = spec((5.0, 9.0, 12.0), lo=-20.0, hi=60.0,
                                                 doc="lowest SINR of rank 2, 3, 4 (NLOS links)")
    rank_thresholds_los_db: tuple[float, ...] = spec((), lo=-20.0, hi=60.0,
                                                     doc="lowest SINR of rank 2, ... on LOS links (empty: as NLOS)")
    rank_model: str = spec("thresholds", choices=("thresholds", "adaptive"),
                           doc="rank from SINR thresholds, or rank adaptation with receive combining")
    los_max_layers: int = spec(0, lo=0, hi=8, doc="most layers of a LOS link in the adaptive rank model (0: no limit)")
    devices: tuple[Device, ...] = spec((), doc="device classes (empty: every device uses the whole block)")
    ue_antenna_gain_dbi: float = spec(0.0, lo=-20.0, hi=10.0,
                                      doc="UE receive antenna gain (mean effective gain, efficiency included), dBi")
    body_loss_db: float = spec(0.0, lo=0.0, hi=20.0, doc="loss of the user's hand and body at the UE antenna, dB")


@dataclass(frozen=True, kw_only=True)
class Traffic:
    fiveg_user_share: float = spec(lo=0.0, hi=1.0, doc="5G users as share of mobile users (input)")
    mobile_penetration: float = spec(1.0, lo=0.0, hi=3.0, doc="mobile users per resident")
    busy_hour_active_share: float = spec(0.1, lo=0.0, hi=1.0, doc="share of 5G users active in the busy hour")
    flows_per_active_user_per_h: float = spec(20.0, lo=0.0, hi=3600.0,
                                              doc="downloads per active user per busy hour (at most one a second)")
    mean_flow_mb: float = spec(50.0, lo=0.001, hi=1e6, doc="mean flow size, megabytes (1 kB to 1 TB)")
    size_distribution: str = spec("exponential", choices=("exponential", "lognormal", "pareto"), doc="flow sizes")
    lognormal_sigma: float = spec(1.0, lo=0.0, lo_open=True, doc="sigma of log flow size")
    pareto_shape: float = spec(2.5, lo=1.0, lo_open=True, doc="Pareto shape alpha (> 1)")
    daily_profile: tuple[float, ...] = spec(
        (0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.03, 0.04, 0.05, 0.05, 0.05, 0.05,
         0.05, 0.05, 0.05, 0.05, 0.05, 0.05, 0.06, 0.06, 0.07, 0.07, 0.06, 0.03),
        lo=0.0, length=24, doc="hourly demand weights, 0h..23h")
    simpy_cells: int = spec(8, lo=0, hi=10_000, doc="cells simulated event by event")
    replications: int = spec(5, lo=1, hi=1000, doc="independent simpy replications")
    horizon_s: float = spec(3600.0, lo=1.0, hi=86_400.0,
                            doc="simulated seconds per replication (at most a day: simpy time is bounded)")
    fixed_point_tol: float = spec(1e-3, lo=0.0, lo_open=True, doc="largest load change to stop")
    fixed_point_max_iter: int = spec(200, lo=1, hi=1000,
                                     doc="iterations at most (a spreading saturation can take 100+)")


@dataclass(frozen=True, kw_only=True)
class Broadband:
    """FTTH of the city: each of the three counts as a citywide total or as a share of households."""

    gigabit_households: float = spec(None, lo=0.0, hi=1e9,
                                     doc="households passed by gigabit-capable (10G-PON) fibre, citywide")
    fibre_households: float = spec(None, lo=0.0, hi=1e9, doc="households passed by any FTTH")
    fibre_subscribers: float = spec(None, lo=0.0, hi=1e9, doc="fixed-broadband (FTTH) subscribers, citywide")
    gigabit_household_share: float = spec(None, lo=0.0, hi=1.0,
                                          doc="instead of gigabit_households: share of the region's households")
    fibre_household_share: float = spec(None, lo=0.0, hi=1.0,
                                        doc="instead of fibre_households: share of the region's households")
    fibre_subscriber_share: float = spec(None, lo=0.0, hi=1.0,
                                         doc="instead of fibre_subscribers: share of the region's households")
    tier_mbps: tuple[float, ...] = spec((100.0, 300.0, 500.0, 1000.0, 2000.0), lo=0.0, lo_open=True,
                                        doc="speed tiers")
    tier_mix: tuple[float, ...] = spec(lo=0.0, hi=1.0, doc="share of subscribers per tier (sums to 1)")
    gpon_split: int = spec(64, choices=(16, 32, 64),
                           doc="GPON split ratio (1:128 exceeds the class B+ budget, see sim.broadband)")
    xgspon_split: int = spec(64, choices=(16, 32, 64, 128), doc="10G-PON split ratio")
    xgspon_kind: str = spec("xgs-pon", choices=("xg-pon", "xgs-pon"), doc="10G-PON technology")
    fill_factor: float = spec(0.8, lo=0.0, hi=1.0, lo_open=True, doc="share of PON splitter ports in use")
    busy_hour_active_share: float = spec(0.3, lo=0.0, hi=1.0, doc="share of subscribers active in the busy hour")
    mean_flow_mb: float = spec(200.0, lo=0.001, hi=1e6, doc="mean fixed-line flow size, megabytes (1 kB to 1 TB)")
    flows_per_active_sub_per_h: float = spec(10.0, lo=0.0, hi=3600.0,
                                             doc="downloads per active subscriber per busy hour (at most one a second)")
    upgrade_order: str = spec("densest", choices=("densest", "uniform"), doc="which pixels get 10G-PON first")
    ten_g_port_share: float = spec(-1.0, lo=-1.0, hi=1.0,
                                   doc="share of OLT PON ports that are 10G-PON (port inventory), citywide; "
                                       "-1: ports follow the 10G-PON subscribers")


@dataclass(frozen=True, kw_only=True)
class Threshold:
    key: str = spec(doc="indicator key")
    op: str = spec(choices=(">", ">=", "<", "<="), doc="comparison that passes")
    value: float = spec(doc="threshold value, in the indicator's unit")
    unit: str = spec("", doc="unit")
    source: str = spec(doc="where the threshold comes from")
    confirmed: bool = spec(doc="true: a published number; false: a documented assumption")
    benchmark: str = spec("", doc="for an unconfirmed threshold, what the number is "
                                  "(e.g. 'certified-city average, Oct 2022')")


_NOT_GIVEN = -1.0
"""Value of a per-district input that is not given (the citywide value applies)."""


@dataclass(frozen=True, kw_only=True)
class DistrictInputs:
    """Inputs of one district class or one district; a field left at -1 (or empty) is not given."""

    gigabit_passed_share: float = spec(_NOT_GIVEN, lo=-1.0, hi=1.0,
                                       doc="share of households passed by gigabit-capable (10G-PON) fibre")
    ten_g_port_share: float = spec(_NOT_GIVEN, lo=-1.0, hi=1.0, doc="share of OLT PON ports that are 10G-PON")
    take_up: float = spec(_NOT_GIVEN, lo=-1.0, hi=1.0, doc="FTTH subscribers per household passed")
    tier_mix: tuple[float, ...] = spec((), lo=0.0, hi=1.0, doc="share of subscribers per broadband.tier_mbps")
    fiveg_user_share: float = spec(_NOT_GIVEN, lo=-1.0, hi=1.0, doc="5G users among mobile users")


@dataclass(frozen=True, kw_only=True)
class DistrictInputTable:
    """``[district_inputs]``: defaults by district class and values by district code.

    A district's value of a field is its ``by_code`` entry, else its class's (central and
    rural from ``deployment.central_districts`` / ``rural_districts``, suburban otherwise),
    else the citywide input (``[broadband]``, ``traffic.fiveg_user_share``).
    """

    central: DistrictInputs = spec(DistrictInputs(), doc="central urban districts")
    suburban: DistrictInputs = spec(DistrictInputs(), doc="suburban districts")
    rural: DistrictInputs = spec(DistrictInputs(), doc="rural districts")
    by_code: dict[str, DistrictInputs] = spec(None, doc="per district code")

    def for_district(self, code: str, district_class: str) -> dict:
        """The inputs given for one district (field -> value), district entry over class default."""
        out = {}
        for src in (getattr(self, district_class), (self.by_code or {}).get(code)):
            if src is None:
                continue
            for f in dataclasses.fields(DistrictInputs):
                v = getattr(src, f.name)
                if v != () and v != _NOT_GIVEN:
                    out[f.name] = v
        return out


@dataclass(frozen=True, kw_only=True)
class Criteria:
    rsrp_min_dbm: float = spec(-110.0, lo=-160.0, hi=-40.0, doc="5G coverage: RSRP at least")
    sinr_min_db: float = spec(-3.0, lo=-20.0, hi=40.0, doc="5G coverage: SINR at least")
    gigabit_rate_bps: float = spec(1e9, lo=0.0, lo_open=True, doc="'gigabit' rate")
    busy_rate_bps: float = spec(100e6, lo=0.0, lo_open=True, doc="busy-hour rate target")
    thresholds: tuple[Threshold, ...] = spec((), doc="One-Gbps city thresholds")


@dataclass(frozen=True, kw_only=True)
class Output:
    dir: Path = spec(Path("runs"), doc="folder that holds run folders")
    maps: bool = spec(True, doc="write PNG maps")
    geotiff: bool = spec(True, doc="write GeoTIFF rasters")
    dpi: int = spec(170, lo=72, hi=300, doc="PNG resolution")


@dataclass(frozen=True, kw_only=True)
class Planning:
    """Site planning to a coverage target (``gigacity plan``, :mod:`sim.planning`)."""

    layer: str = spec("", doc="layer to plan, '<ran>-<band>' (empty: the first layer)")
    candidate_spacing_m: float = spec(250.0, lo=10.0, hi=10_000.0, doc="hexagonal candidate lattice spacing")
    min_distance_m: float = spec(0.0, lo=0.0, hi=10_000.0,
                                 doc="drop candidates nearer an existing site (0: half the spacing)")
    target_pop_share: float = spec(0.95, lo=0.0, hi=1.0, lo_open=True, doc="covered population share to reach")
    budget_sites: int = spec(100, lo=0, hi=1_000_000, doc="most sites to add")
    district_codes: tuple[str, ...] = spec((), pattern=r"^\d{6}$", doc="plan these districts (empty: the region)")
    min_rate_bps: float = spec(0.0, lo=0.0, doc="also require this indoor rate (0: RSRP and SINR only)")
    cutoff_below_noise_db: float = spec(10.0, lo=0.0, hi=60.0, lo_open=True,
                                        doc="a site adds power only where it is above noise minus this")


@dataclass(frozen=True, kw_only=True)
class Scenario:
    scenario: ScenarioMeta
    region: Region
    operators: tuple[Operator, ...]
    deployment: Deployment
    radio: Radio = spec(Radio())
    traffic: Traffic = spec(None)
    broadband: Broadband = spec(None)
    criteria: Criteria = spec(Criteria())
    output: Output = spec(Output())
    planning: Planning = spec(Planning())
    district_inputs: DistrictInputTable = spec(DistrictInputTable())
    source_path: Path = spec(None)
    overrides: tuple = spec((), doc="the --set items applied on top of the file, as (key, value) pairs")

    @property
    def ran_ids(self) -> tuple[str, ...]:
        """Ids of operators that own a radio network (have carriers)."""
        return tuple(op.id for op in self.operators if op.carriers)

    def district_class(self, code: str) -> str:
        """``"central"``, ``"rural"`` or ``"suburban"`` from ``deployment``'s class lists."""
        if code in self.deployment.central_districts:
            return "central"
        return "rural" if code in self.deployment.rural_districts else "suburban"

    def layers(self) -> tuple[tuple[str, Operator, Carrier], ...]:
        """Coverage layers ``(layer_id, owner, carrier)``; layer id ``"<ran>-<band>"``."""
        return tuple((f"{op.id}-{c.band}", op, c) for op in self.operators for c in op.carriers)


_TOP_LEVEL = {
    "scenario": ScenarioMeta,
    "region": Region,
    "operators": Operator,
    "deployment": Deployment,
    "radio": Radio,
    "traffic": Traffic,
    "broadband": Broadband,
    "criteria": Criteria,
    "output": Output,
    "planning": Planning,
    "district_inputs": DistrictInputTable,
}
_REQUIRED_TOP = ("scenario", "region", "operators", "deployment")
SECTIONS = types.MappingProxyType(_TOP_LEVEL)
"""Top-level key -> its section class (``operators``: one :class:`Operator` per table)."""


# --------------------------------------------------------------------------------------
# validation engine


def _describe(value) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


class _Ctx:
    def __init__(self, path: Path):
        self.path = path
        self.base = path.parent

    def fail(self, key: str, expected: str, got) -> typing.NoReturn:
        raise ConfigError(self.path, key, f"expected {expected}, got {_describe(got)}")


def _range_text(meta) -> str:
    lo, hi = meta["lo"], meta["hi"]
    if lo is None and hi is None:
        return ""
    left = "(" if meta["lo_open"] else "["
    right = ")" if meta["hi_open"] else "]"
    lo_s = "-inf" if lo is None else f"{lo:g}"
    hi_s = "inf" if hi is None else f"{hi:g}"
    return f" in {left}{lo_s}, {hi_s}{right}"


def _check_range(ctx, key, value, meta, noun):
    lo, hi = meta["lo"], meta["hi"]
    bad = (
        (lo is not None and (value < lo or (meta["lo_open"] and value == lo)))
        or (hi is not None and (value > hi or (meta["hi_open"] and value == hi)))
    )
    if bad:
        ctx.fail(key, noun + _range_text(meta), value)


def _scalar(ctx, key, tp, value, meta):
    choices = meta.get("choices")
    if tp is bool:
        if not isinstance(value, bool):
            ctx.fail(key, "true or false", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            ctx.fail(key, "an integer" + (f" in {list(choices)}" if choices else _range_text(meta)), value)
        if choices and value not in choices:
            ctx.fail(key, f"one of {', '.join(map(str, choices))}", value)
        _check_range(ctx, key, value, meta, "an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            ctx.fail(key, "a number" + _range_text(meta), value)
        _check_range(ctx, key, float(value), meta, "a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            ctx.fail(key, "a string", value)
        if choices and value not in choices:
            ctx.fail(key, f"one of {', '.join(repr(c) for c in choices)}", value)
        if meta.get("pattern") and not re.match(meta["pattern"], value):
            ctx.fail(key, f"a string matching {meta['pattern']}", value)
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            ctx.fail(key, "a file path (string)", value)
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(os.path.normpath(ctx.base / p))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            ctx.fail(key, "a table", value)
        return _build(ctx, tp, value, key)
    raise TypeError(f"unsupported config type {tp!r}")  # a bug in a section declaration


def _convert(ctx, key, tp, value, meta):
    origin = typing.get_origin(tp)
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list):
            ctx.fail(key, "a list", value)
        if meta.get("length") is not None and len(value) != meta["length"]:
            ctx.fail(key, f"a list of {meta['length']} values", f"{len(value)} values")
        return tuple(_scalar(ctx, f"{key}[{i}]", item_tp, v, meta) for i, v in enumerate(value))
    if origin is dict:
        _k, item_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            ctx.fail(key, "a table", value)
        return types.MappingProxyType({k: _scalar(ctx, f"{key}.{k}", item_tp, v, meta) for k, v in value.items()})
    return _scalar(ctx, key, tp, value, meta)


def _build(ctx, cls, data: dict, prefix: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for k in data:
        if k not in fields or k in ("source_path", "overrides"):
            known = ", ".join(n for n in fields if n not in ("source_path", "overrides"))
            raise ConfigError(ctx.path, f"{prefix}.{k}" if prefix else k, f"unknown key (expected one of: {known})")
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in data:
            kwargs[name] = _convert(ctx, key, hints[name], data[name], f.metadata)
        elif f.default is _MISSING:
            raise ConfigError(ctx.path, key, "required key is missing")
    return cls(**kwargs)


def parse_scenario(data: dict, path) -> Scenario:
    """Validate a parsed TOML document into a :class:`Scenario` (see module docs)."""
    path = Path(path)
    ctx = _Ctx(path)
    for k in data:
        if k not in _TOP_LEVEL:
            raise ConfigError(path, k, f"unknown section (expected one of: {', '.join(_TOP_LEVEL)})")
    for k in _REQUIRED_TOP:
        if k not in data:
            raise ConfigError(path, k, "required section is missing")
    kwargs = {}
    for name, cls in _TOP_LEVEL.items():
        if name not in data:
            continue
        if name == "operators":
            ops = data[name]
            if not isinstance(ops, list) or not ops:
                ctx.fail("operators", "a non-empty array of tables [[operators]]", ops)
            built = []
            for i, op in enumerate(ops):
                if not isinstance(op, dict):
                    ctx.fail(f"operators[{i}]", "a table", op)
                built.append(_build(ctx, Operator, op, f"operators[{i}]"))
            kwargs[name] = tuple(built)
        else:
            if not isinstance(data[name], dict):
                ctx.fail(name, "a table", data[name])
            kwargs[name] = _build(ctx, cls, data[name], name)
    scenario = Scenario(source_path=path, **kwargs)
    _cross_check(ctx, scenario)
    return scenario


def _cross_check(ctx: _Ctx, sc: Scenario) -> None:
    """Checks that span keys."""
    ids = [op.id for op in sc.operators]
    for i, op in enumerate(sc.operators):
        if ids.count(op.id) > 1:
            ctx.fail(f"operators[{i}].id", "a unique operator id", op.id)
        if op.ran and op.ran not in ids:
            ctx.fail(f"operators[{i}].ran", f"the id of an operator ({', '.join(ids)})", op.ran)
        if op.ran and op.carriers:
            ctx.fail(f"operators[{i}].carriers", "no carriers for an operator served by another's network", "carriers")
        if not op.ran and not op.carriers:
            ctx.fail(f"operators[{i}].carriers", "at least one carrier (or 'ran' naming the network that serves it)",
                     [])
        bands = [c.band for c in op.carriers]
        for j, b in enumerate(bands):
            if bands.count(b) > 1:
                ctx.fail(f"operators[{i}].carriers[{j}].band", "a band used once per operator", b)
    share = sum(op.mobile_share for op in sc.operators)
    if share > 1.0 + 1e-9:
        ctx.fail("operators.mobile_share", "shares summing to at most 1", round(share, 6))
    dep = sc.deployment
    rans = set(sc.ran_ids)
    if dep.strategy == "density":
        if dep.sites is not None and dep.sites_per_10k is not None:
            ctx.fail("deployment.sites_per_10k", "either sites or sites_per_10k, not both", "both")
        counts_key = "sites" if dep.sites_per_10k is None else "sites_per_10k"
        counts = getattr(dep, counts_key)
        if counts is None:
            ctx.fail("deployment.sites", "a table of site counts per radio network for strategy 'density' "
                     "(or sites_per_10k)", "nothing")
        for k in counts:
            if k not in rans:
                ctx.fail(f"deployment.{counts_key}.{k}", f"a radio-network id ({', '.join(sorted(rans))})", k)
        for k in rans - set(counts):
            ctx.fail(f"deployment.{counts_key}.{k}", "a site count for every radio network", "nothing")
        if dep.distribute_by == "explicit" and not dep.explicit_counts:
            ctx.fail("deployment.explicit_counts", "district weights for distribute_by = 'explicit'", "nothing")
    bands_of = {op.id: [c.band for c in op.carriers] for op in sc.operators if op.carriers}
    for k, n in (dep.small_cells or {}).items():
        if k not in rans:
            ctx.fail(f"deployment.small_cells.{k}", f"a radio-network id ({', '.join(sorted(rans))})", k)
        if n and dep.small_cell.bands and not set(dep.small_cell.bands) & set(bands_of[k]):
            ctx.fail("deployment.small_cell.bands", f"a band of radio network {k} ({', '.join(bands_of[k])})",
                     ", ".join(dep.small_cell.bands))
        if n and not dep.central_districts:
            ctx.fail(f"deployment.small_cells.{k}", "0 when deployment.central_districts is empty "
                     "(small cells go to the central districts)", n)
    if dep.strategy == "file" and dep.site_file is None:
        ctx.fail("deployment.site_file", "a site file for strategy 'file'", "nothing")
    overlap = set(dep.central_districts) & set(dep.rural_districts)
    if overlap:
        ctx.fail("deployment.rural_districts", "codes not also in central_districts", sorted(overlap)[0])
    if sc.broadband is not None:
        bb = sc.broadband
        if len(bb.tier_mix) != len(bb.tier_mbps):
            ctx.fail("broadband.tier_mix", f"{len(bb.tier_mbps)} shares (one per tier_mbps)",
                     f"{len(bb.tier_mix)} values")
        if abs(sum(bb.tier_mix) - 1.0) > 1e-6:
            ctx.fail("broadband.tier_mix", "shares summing to 1", round(sum(bb.tier_mix), 6))
        for total, share in (("gigabit_households", "gigabit_household_share"),
                             ("fibre_households", "fibre_household_share"),
                             ("fibre_subscribers", "fibre_subscriber_share")):
            given = [k for k in (total, share) if getattr(bb, k) is not None]
            if len(given) != 1:
                ctx.fail(f"broadband.{total}", f"either {total} (a citywide total) or {share} (of households)",
                         "both" if given else "nothing")
        for total, share in (("gigabit_households", "gigabit_household_share"),
                             ("fibre_subscribers", "fibre_subscriber_share")):
            for key, ref in ((total, "fibre_households"), (share, "fibre_household_share")):
                v, limit = getattr(bb, key), getattr(bb, ref)
                if v is not None and limit is not None and v > limit:
                    ctx.fail(f"broadband.{key}", f"at most {ref}", v)
    _check_radio(ctx, sc)
    pl = sc.planning
    layer_ids = [lid for lid, _, _ in sc.layers()]
    if pl.layer and pl.layer not in layer_ids:
        ctx.fail("planning.layer", f"a layer id ({', '.join(layer_ids)})", pl.layer)
    if sc.region.district_codes:
        for i, code in enumerate(pl.district_codes):
            if code not in sc.region.district_codes:
                ctx.fail(f"planning.district_codes[{i}]", "a code of region.district_codes", code)
    _check_district_inputs(ctx, sc)
    keys = [t.key for t in sc.criteria.thresholds]
    for i, k in enumerate(keys):
        if keys.count(k) > 1:
            ctx.fail(f"criteria.thresholds[{i}].key", "a key used once", k)
    _check_physical(ctx, sc)


NR_BANDS_FR1: dict[str, tuple[str, float, float]] = {
    # band: (duplex, DL low MHz, DL high MHz); 3GPP TS 38.101-1 V17, Table 5.2-1 (NR operating bands in FR1)
    "n1": ("fdd", 2110, 2170), "n2": ("fdd", 1930, 1990), "n3": ("fdd", 1805, 1880), "n5": ("fdd", 869, 894),
    "n7": ("fdd", 2620, 2690), "n8": ("fdd", 925, 960), "n12": ("fdd", 729, 746), "n20": ("fdd", 791, 821),
    "n25": ("fdd", 1930, 1995), "n28": ("fdd", 758, 803), "n34": ("tdd", 2010, 2025), "n38": ("tdd", 2570, 2620),
    "n39": ("tdd", 1880, 1920), "n40": ("tdd", 2300, 2400), "n41": ("tdd", 2496, 2690), "n48": ("tdd", 3550, 3700),
    "n50": ("tdd", 1432, 1517), "n66": ("fdd", 2110, 2200), "n71": ("fdd", 617, 652), "n74": ("fdd", 1475, 1518),
    "n77": ("tdd", 3300, 4200), "n78": ("tdd", 3300, 3800), "n79": ("tdd", 4400, 5000), "n90": ("tdd", 2496, 2690),
}
"""Duplex mode and downlink range (MHz) of the NR FR1 bands a scenario may use (TS 38.101-1 Table 5.2-1).
A carrier's ``fc_ghz +- bw_mhz / 2`` must lie inside its band's downlink range and ``duplex`` match."""


def _check_physical(ctx: _Ctx, sc: Scenario) -> None:
    """Physical consistency across keys: bands vs frequency and duplex, shares, heights."""
    for i, op in enumerate(sc.operators):
        for j, c in enumerate(op.carriers):
            key = f"operators[{i}].carriers[{j}]"
            band = NR_BANDS_FR1.get(c.band)
            if band is None:
                ctx.fail(f"{key}.band", f"an NR FR1 band of TS 38.101-1 Table 5.2-1 ({', '.join(NR_BANDS_FR1)})",
                         c.band)
            duplex, lo_mhz, hi_mhz = band
            if c.duplex != duplex:
                ctx.fail(f"{key}.duplex", f"{duplex!r} for band {c.band} (TS 38.101-1 Table 5.2-1)", c.duplex)
            f_lo, f_hi = c.fc_ghz * 1e3 - c.bw_mhz / 2, c.fc_ghz * 1e3 + c.bw_mhz / 2
            if f_lo < lo_mhz - 1e-6 or f_hi > hi_mhz + 1e-6:
                ctx.fail(f"{key}.fc_ghz", f"a carrier of {c.bw_mhz:g} MHz inside band {c.band}'s downlink "
                         f"{lo_mhz:g}-{hi_mhz:g} MHz (TS 38.101-1 Table 5.2-1), i.e. fc_ghz in "
                         f"[{(lo_mhz + c.bw_mhz / 2) / 1e3:g}, {(hi_mhz - c.bw_mhz / 2) / 1e3:g}]", c.fc_ghz)
            if c.duplex == "fdd" and c.dl_share != 1.0:
                ctx.fail(f"{key}.dl_share", "1.0 for an FDD carrier (the downlink has its own band)", c.dl_share)
    if sum(op.mobile_share for op in sc.operators) <= 0:
        ctx.fail("operators.mobile_share", "shares summing to more than 0 (every network would serve nobody)", 0.0)
    dep = sc.deployment
    if dep.distribute_by == "explicit" and dep.explicit_counts and sum(dep.explicit_counts.values()) <= 0:
        ctx.fail("deployment.explicit_counts", "weights summing to more than 0", 0)
    if sc.traffic is not None and sum(sc.traffic.daily_profile) <= 0:
        ctx.fail("traffic.daily_profile", "hourly weights summing to more than 0", 0.0)
    h_ut = sc.radio.h_ut_m
    heights = [(f"deployment.{k}.h_bs_m", getattr(dep, k).h_bs_m) for k in ("central", "suburban", "rural")]
    if any((dep.small_cells or {}).values()):
        heights.append(("deployment.small_cell.h_bs_m", dep.small_cell.h_bs_m))
    for key, h in heights:
        if h <= h_ut:
            ctx.fail(key, f"an antenna above the UE (radio.h_ut_m = {h_ut:g} m)", h)


def _check_district_inputs(ctx: _Ctx, sc: Scenario) -> None:
    """Per-district inputs: -1 or a share in [0, 1]; tier mixes of the right length summing to 1."""
    di = sc.district_inputs
    entries = [(c, getattr(di, c)) for c in ("central", "suburban", "rural")]
    entries += [(f"by_code.{k}", v) for k, v in (di.by_code or {}).items()]
    for name, d in entries:
        key = f"district_inputs.{name}"
        if name.startswith("by_code.") and not _CODE_RE.match(name[8:]):
            ctx.fail(key, "a 6-digit district code", name[8:])
        for f in ("gigabit_passed_share", "ten_g_port_share", "take_up", "fiveg_user_share"):
            v = getattr(d, f)
            if v != _NOT_GIVEN and not 0.0 <= v <= 1.0:
                ctx.fail(f"{key}.{f}", "a share in [0, 1] (or -1: not given)", v)
        if (d.gigabit_passed_share != _NOT_GIVEN or d.take_up != _NOT_GIVEN or d.tier_mix
                or d.ten_g_port_share != _NOT_GIVEN) and sc.broadband is None:
            ctx.fail(key, "fibre inputs only with a [broadband] section", "fibre inputs")
        if d.fiveg_user_share != _NOT_GIVEN and sc.traffic is None:
            ctx.fail(f"{key}.fiveg_user_share", "a [traffic] section (the citywide 5G user share)", "none")
        if d.tier_mix and sc.broadband is not None:
            if len(d.tier_mix) != len(sc.broadband.tier_mbps):
                ctx.fail(f"{key}.tier_mix", f"{len(sc.broadband.tier_mbps)} shares (one per broadband.tier_mbps)",
                         f"{len(d.tier_mix)} values")
            if abs(sum(d.tier_mix) - 1.0) > 1e-6:
                ctx.fail(f"{key}.tier_mix", "shares summing to 1", round(sum(d.tier_mix), 6))
    bb = sc.broadband
    if bb is not None and bb.ten_g_port_share != _NOT_GIVEN and bb.ten_g_port_share < 0.0:
        ctx.fail("broadband.ten_g_port_share", "a share in [0, 1] (or -1: ports follow subscribers)",
                 bb.ten_g_port_share)


def _check_radio(ctx: _Ctx, sc: Scenario) -> None:
    """Device classes cover every band, shares add up to 1; rank thresholds non-decreasing."""
    r = sc.radio
    for name in ("rank_thresholds_db", "rank_thresholds_los_db"):
        v = getattr(r, name)
        if any(b < a for a, b in zip(v, v[1:])):
            ctx.fail(f"radio.{name}", "non-decreasing thresholds in dB", list(v))
    if not r.devices:
        return
    bands = sorted({c.band for op in sc.operators for c in op.carriers})
    for i, d in enumerate(r.devices):
        for key in ("carriers", "rx"):
            for b in getattr(d, key) or {}:
                if b not in bands:
                    ctx.fail(f"radio.devices[{i}].{key}.{b}", f"a band of the scenario ({', '.join(bands)})", b)
        for b in bands:
            if b not in d.carriers:
                ctx.fail(f"radio.devices[{i}].carriers", f"a carrier count for every band ({', '.join(bands)})",
                         f"none for {b}")
    total = sum(d.share for d in r.devices)
    if abs(total - 1.0) > 1e-6:
        ctx.fail("radio.devices", "shares adding up to 1", round(total, 6))


def load_scenario(path, sets=()) -> Scenario:
    """Read and validate a scenario TOML file, with its ``extends`` chain and ``--set`` items (:mod:`sim.compose`)."""
    from .compose import load_scenario as load

    return load(path, sets)


def with_overrides(sc: Scenario, *, resolution_m: float | None = None) -> Scenario:
    """A copy with command-line overrides applied (validated like the file)."""
    if resolution_m is None:
        return sc
    ctx = _Ctx(sc.source_path or Path("<command line>"))
    meta = next(f for f in dataclasses.fields(Region) if f.name == "resolution_m").metadata
    try:
        res = _scalar(ctx, "region.resolution_m", float, resolution_m, meta)
    except ConfigError as exc:
        raise ConfigError("--resolution-m", None, exc.message) from None
    return dataclasses.replace(sc, region=dataclasses.replace(sc.region, resolution_m=res),
                               overrides=(*sc.overrides, ("region.resolution_m", res)))
