"""The composition root: calls the layers in order and hands results to the writer.

``run_scenario`` is what ``gigacity run`` does: config -> geodata/grid -> sites ->
coverage -> busy hour -> broadband -> criteria -> report. Every stage is timed; the
``progress`` callback (``progress(stage, done, total)``) is how long stages report.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import Scenario
from .errors import ConfigError

__all__ = ["RunResult", "PlanRun", "SiteFile", "SitePlan", "build_sites", "describe_scenario", "load_region",
           "read_site_file", "run_scenario", "plan_scenario", "grid_summary_rows", "site_density"]


@dataclass
class RunResult:
    run_dir: Path
    headline: str
    summary: dict = field(repr=False)


def _noop(stage, done=None, total=None):
    return None


class _Timer:
    """Times named stages and reports them to the progress callback."""

    def __init__(self, progress):
        self.progress = progress or _noop
        self.timings_s: dict[str, float] = {}

    def stage(self, name: str):
        timer = self

        class _Ctx:
            def __enter__(self):
                timer.progress(name)
                self.t0 = time.perf_counter()
                return self

            def __exit__(self, *exc):
                timer.timings_s[name] = round(time.perf_counter() - self.t0, 3)
                return False

        return _Ctx()


def load_region(sc: Scenario):
    """Districts of the scenario (all, or ``region.district_codes``), projected to EPSG:32651."""
    from .geodata import read_districts

    districts = read_districts(sc.region.districts, sc.region.census)
    codes = sc.region.district_codes
    if codes:
        known = set(districts["code"])
        for i, code in enumerate(codes):
            if code not in known:
                raise ConfigError(sc.source_path, f"region.district_codes[{i}]", f"expected a district code of {Path(sc.region.districts).name}, got {code!r}")
        districts = districts[districts["code"].isin(codes)].reset_index(drop=True)
    return districts


def build_rasters(sc: Scenario, districts, n_layers: int | None = None):
    from .grid import build_city_rasters

    limit = int(sc.region.max_memory_gb * 2**30) if sc.region.max_memory_gb > 0 else None
    return build_city_rasters(
        districts,
        sc.region.resolution_m,
        max_memory_bytes=limit,
        n_layers=len(sc.layers()) if n_layers is None else n_layers,
        top_m=BUSY_TOP_M if sc.traffic is not None and n_layers is None else 0,
    )


def describe_scenario(sc: Scenario) -> str:
    """A short text summary of a validated scenario (``gigacity validate``)."""
    from .grid import estimate_memory_bytes, grid_for_bounds

    districts = load_region(sc)
    grid = grid_for_bounds(districts.total_bounds, sc.region.resolution_m)
    mem = estimate_memory_bytes(grid, n_layers=len(sc.layers()), top_m=BUSY_TOP_M if sc.traffic is not None else 0)
    lines = [
        f"scenario {sc.scenario.name} ({sc.scenario.year}), seed {sc.scenario.seed}",
        f"  config: {sc.source_path}",
        f"  region: {len(districts)} district(s), population {int(districts['population'].sum()):,}, "
        f"households {int(districts['households'].sum()):,}",
        f"  grid: {sc.region.resolution_m:g} m, {grid.shape[0]} x {grid.shape[1]} pixels, "
        f"about {mem / 2**20:,.0f} MiB of rasters",
        "  operators:",
    ]
    for op in sc.operators:
        served = f"served by {op.ran}" if op.ran else ", ".join(
            f"{c.band} {c.fc_ghz:g} GHz {c.bw_mhz:g} MHz" for c in op.carriers
        )
        lines.append(f"    {op.id:6s} {op.name} - mobile share {op.mobile_share:.0%} - {served}")
    dep = sc.deployment
    if dep.strategy == "density":
        total = sum(dep.sites.values())
        per = ", ".join(f"{k} {v:,}" for k, v in dep.sites.items())
        lines.append(f"  deployment: density, {total:,} sites ({per}), by {dep.distribute_by}")
    else:
        lines.append(f"  deployment: from {dep.site_file} ({dep.site_format}, bad rows: {dep.on_bad_row})")
        lines += ["  " + line for line in read_site_file(sc, districts).lines()]
    small = {k: v for k, v in (dep.small_cells or {}).items() if v}
    if small:
        s = dep.small_cell
        lines.append(f"  small cells (UMi, {s.h_bs_m:g} m, {s.ptx_dbm:g} dBm, central districts): "
                     + ", ".join(f"{k} {v:,}" for k, v in small.items()))
    lines.append(f"  layers: {', '.join(lid for lid, _, _ in sc.layers())}; K = {sc.radio.k_sites} nearest sites")
    lines.append(f"  criteria: {len(sc.criteria.thresholds)} thresholds "
                 f"({sum(t.confirmed for t in sc.criteria.thresholds)} confirmed)")
    lines.append("config OK")
    return "\n".join(lines)


def grid_summary_rows(districts, rasters) -> list[dict]:
    """Per district: pixels, grid/polygon/official area, population and households on the grid."""
    n = len(districts)
    d_land = rasters.district_land
    pixels = np.bincount(d_land, minlength=n)
    pop = np.bincount(d_land, weights=rasters.population_land, minlength=n)
    hh = np.bincount(d_land, weights=rasters.households_land, minlength=n)
    rows = []
    for i in range(n):
        rows.append(
            {
                "code": districts["code"].iloc[i],
                "name_en": districts["name_en"].iloc[i],
                "name_zh": districts["name_zh"].iloc[i],
                "pixels": int(pixels[i]),
                "area_km2_grid": round(float(pixels[i]) * rasters.grid.pixel_area_km2, 4),
                "area_km2_polygon": round(float(districts["area_km2_polygon"].iloc[i]), 4),
                "area_km2_official": float(districts["area_km2_official"].iloc[i]),
                "population": round(float(pop[i]), 3),
                "households": round(float(hh[i]), 3),
                "census_population": int(districts["population"].iloc[i]),
                "census_households": int(districts["households"].iloc[i]),
            }
        )
    return rows


def _create_run_dir(sc: Scenario, out_dir, force: bool, label: str = "") -> Path:
    """``out_dir``, or a new ``<output.dir>/<scenario><label>-<stamp>`` folder (``label``: e.g. ``-plan``)."""
    from .report import files

    if out_dir is None:
        return files.create_run_dir(sc.output.dir, f"{sc.scenario.name}{label}", force=force)
    out_dir = Path(out_dir)
    return files.create_run_dir(out_dir.parent, sc.scenario.name, force=force, name=out_dir.name)


def _file_operators(sc: Scenario) -> dict[str, str]:
    """Operator name in a site file -> radio network (RAN id) of the scenario.

    The scenario's own operator ids (``cu`` -> the network that serves it) and the
    standard ids of :data:`sim.sites.RAN_OF_OPERATOR` whose network the scenario has
    (``cucc``, ``ctcc`` -> ``ctcu``); the scenario's ids win.
    """
    from . import sites as S

    rans = set(sc.ran_ids)
    out = {name: ran for name, ran in S.RAN_OF_OPERATOR.items() if ran in rans}
    out.update({op.id: op.ran_id for op in sc.operators})
    return out


@dataclass
class SiteFile:
    """The sites of ``deployment.site_file`` per radio network and what reading it counted."""

    by_ran: dict
    info: dict

    def lines(self) -> list[str]:
        """Short text lines for the terminal: counts, then the first skipped rows."""
        i = self.info
        per = ", ".join(f"{k} {v:,}" for k, v in i["sites_by_ran"].items())
        out = [f"site file {Path(i['path']).name} ({i['format']}): {i['rows']:,} rows, {i['kept']:,} kept, "
               f"{i['bad']:,} bad skipped, {i['outside_region']:,} outside the region, {i['filtered']:,} filtered, "
               f"{i['merged_colocated']:,} co-located merged; sites {per}"]
        out += [f"  skipped {m}" for m in i["first_bad_rows"][:3]]
        if i["bad"] > 3:
            out.append(f"  ... {i['bad'] - 3:,} more bad rows (summary.json inputs.site_file)")
        return out


MAX_REPORTED_BAD_ROWS = 10
"""Bad rows of a site file listed in ``summary.json`` (all are counted)."""


def read_site_file(sc: Scenario, districts) -> SiteFile:
    """Read ``deployment.site_file`` and split its sites over the scenario's radio networks.

    A site's operator (CSV/GeoJSON ``operator`` column, OpenCellID MNC) picks its network
    (:func:`_file_operators`); with one network the column may be left out. Bands must be
    carriers of the scenario; a site whose bands are none of its own network's carriers is
    a bad row. Sites of one network at the same position (1 m) are merged into one, the
    first kept (the shared Telecom/Unicom network appears once per operator in
    OpenCellID). Every network of the scenario must keep at least one site: a
    :class:`~sim.errors.SiteFileError` says which has none.
    """
    from . import sites as S
    from .errors import SiteFileError

    dep = sc.deployment
    path = dep.site_file
    rans = list(sc.ran_ids)
    op_ran = _file_operators(sc)
    bands_of = {op.id: [c.band for c in op.carriers] for op in sc.operators if op.carriers}
    if dep.site_format == "opencellid":
        wanted = [o for o, r in S.RAN_OF_OPERATOR.items() if r in rans]
        sites, rep = S.read_opencellid(path, districts, operators=wanted, on_bad_row=dep.on_bad_row)
    else:
        all_bands = sorted({b for bs in bands_of.values() for b in bs})
        kw = dict(operators=sorted(op_ran), bands=all_bands, operator=rans[0] if len(rans) == 1 else None,
                  on_bad_row=dep.on_bad_row, operator_required=len(rans) > 1)
        if dep.site_format == "csv":
            sites, rep = S.read_sites_csv(path, districts, delimiter=dep.site_delimiter, **kw)
        else:
            sites, rep = S.read_sites_geojson(path, districts, **kw)
    ops, op_inv = np.unique(sites.operator.astype(str), return_inverse=True)
    ran = np.array([op_ran.get(o, "") for o in ops], dtype=object)[op_inv.ravel()] if len(sites) else \
        np.zeros(0, object)
    bad_msgs = [str(b) for b in rep.bad_rows]
    n_bad = rep.n_bad
    # a band of the file that is not a carrier of the site's own network (checked once per band/network pair)
    ok = np.ones(len(sites), bool)
    if len(sites):
        pairs, inv = np.unique(np.stack([sites.band.astype(str), ran.astype(str)]), axis=1, return_inverse=True)
        pair_ok = np.array([not b or bool(set(b.split(";")) & set(bands_of.get(r, ()))) for b, r in pairs.T])
        ok = pair_ok[inv.ravel()]
    for i in np.flatnonzero(~ok):
        label = (f"site {sites.site_ref[i]}" if sites.site_ref[i]
                 else f"site at lon {sites.lon_deg[i]:.5f}, lat {sites.lat_deg[i]:.5f}")
        msg = (f"band {str(sites.band[i])!r} of operator {sites.operator[i]} is not a carrier of its radio network "
               f"{ran[i]} ({', '.join(bands_of[ran[i]])})")
        if dep.on_bad_row == "raise":
            raise SiteFileError(path, f"{label}, column band", msg)
        if len(bad_msgs) < MAX_REPORTED_BAD_ROWS:
            bad_msgs.append(f"{label}, column band: {msg}")
        n_bad += 1
    by_ran, merged = {}, 0
    for r in rans:
        idx = np.flatnonzero(ok & (ran == r))
        key = np.stack([np.round(sites.x_m[idx]), np.round(sites.y_m[idx])], axis=1)
        _, first = np.unique(key, axis=0, return_index=True)
        merged += idx.size - first.size
        by_ran[r] = sites.select(idx[np.sort(first)])
        if not len(by_ran[r]):
            names = sorted(o for o, rr in op_ran.items() if rr == r)
            raise SiteFileError(path, "column operator",
                                f"no site of radio network {r!r} (operators {', '.join(names)}) inside the region "
                                f"({rep.n_rows:,} rows, {n_bad:,} bad, {rep.n_outside:,} outside, "
                                f"{rep.n_filtered:,} filtered); expected at least one: add its sites to the file "
                                "or remove the network from the scenario")
    info = {"path": str(path), "format": dep.site_format, "on_bad_row": dep.on_bad_row, "rows": rep.n_rows,
            "kept": rep.n_kept - (n_bad - rep.n_bad), "bad": n_bad, "outside_region": rep.n_outside,
            "filtered": rep.n_filtered, "merged_colocated": int(merged),
            "sites_by_ran": {r: len(t) for r, t in by_ran.items()}, "first_bad_rows": bad_msgs[:MAX_REPORTED_BAD_ROWS]}
    return SiteFile(by_ran=by_ran, info=info)


def _carrier_specs(op, bands=(), small=None):
    """The carriers of an operator's network as :class:`~sim.sites.CarrierSpec` (small cells: their radio)."""
    from . import sites as S

    out = []
    for c in op.carriers:
        if bands and c.band not in bands:
            continue
        a = small.antenna if small is not None else c.antenna
        out.append(S.CarrierSpec(layer=f"{op.id}-{c.band}", band=c.band,
                                 ptx_dbm=small.ptx_dbm if small is not None else c.ptx_dbm, g_max_dbi=a.g_max_dbi,
                                 hpbw_h_deg=a.hpbw_h_deg, hpbw_v_deg=a.hpbw_v_deg, tilt_deg=a.tilt_deg))
    return out


def _tilt_args(sc: Scenario, x_m, y_m, query_x_m=None, query_y_m=None) -> dict:
    """Keyword arguments of :func:`sim.sites.build_site_table` for ``deployment.downtilt``.

    'spacing': each macro site's local spacing to the other sites of its radio network
    (co-channel: :func:`sim.sites.site_spacing_m`), or of query points (planned candidates)
    to the network's sites; 'fixed': none (the carriers' tilt).
    """
    from . import sites as S

    dep = sc.deployment
    if dep.downtilt != "spacing":
        return {}
    spacing = S.site_spacing_m(x_m, y_m, query_x_m=query_x_m, query_y_m=query_y_m)
    return {"spacing_m": spacing, "h_ut_m": sc.radio.h_ut_m, "max_tilt_deg": dep.max_downtilt_deg}


def _placement_error(sc: Scenario, key: str, exc):
    """A density placement that does not fit, as the config error it is."""
    return ConfigError(sc.source_path, key, f"too many sites for {exc.field}: {exc.message}")


def _district_classes(sc: Scenario, codes) -> tuple[list[str], dict]:
    """Class of each district (central / suburban / rural) and each class's :class:`sim.sites.SiteClass`."""
    from . import sites as S

    dep = sc.deployment
    district_class = ["central" if c in dep.central_districts else "rural" if c in dep.rural_districts
                      else "suburban" for c in codes]
    classes = {k: S.SiteClass(getattr(dep, k).scenario, getattr(dep, k).h_bs_m)
               for k in ("central", "suburban", "rural")}
    return district_class, classes


@dataclass
class SitePlan:
    """What :func:`build_sites` built: the sector-carrier table and how (for the summary)."""

    table: object
    site_file: dict | None = None
    small_cells: dict = field(default_factory=dict)


def build_sites(sc: Scenario, districts, rng, site_file: SiteFile | None = None) -> SitePlan:
    """The sector-carrier table of every radio network: by density or from the site file,
    plus the UMi small cells of ``deployment.small_cells`` in the central districts.

    Macro sites are drawn first and small cells after, so turning small cells on does not
    move a macro site. A count the district cannot hold at a 50 m spacing is a
    :class:`~sim.errors.ConfigError` on ``deployment.sites.<ran>`` (or ``small_cells``).
    """
    from . import sites as S
    from .errors import InputError

    dep = sc.deployment
    codes = list(districts["code"])
    district_class, classes = _district_classes(sc, codes)
    if dep.strategy == "file" and site_file is None:
        site_file = read_site_file(sc, districts)
    if dep.strategy == "density":
        if dep.distribute_by == "explicit":
            weights = np.array([float(dep.explicit_counts.get(c, 0)) for c in codes])
        else:
            weights = S.district_weights(districts, dep.distribute_by, population_weight=dep.population_weight)
    table = None
    start = 0
    for op in sc.operators:
        if not op.carriers:
            continue
        if dep.strategy == "file":
            physical = site_file.by_ran[op.id]
        else:
            counts = S.allocate_counts(int(dep.sites[op.id]), weights)
            # minimum inter-site distance 50 m (ASSUMPTION: denser than any macro grid);
            # sites may share a coarse pixel, the kernel evaluates them at their true position
            try:
                placed = S.place_by_density(districts, counts, rng, dep.jitter_frac, min_spacing_m=50.0)
            except InputError as exc:
                raise _placement_error(sc, f"deployment.sites.{op.id}", exc) from None
            physical = placed.to_sites()
        t = S.build_site_table(physical, ran=op.id, carriers=_carrier_specs(op), rng=rng,
                               district_class=district_class, site_classes=classes,
                               n_sectors=dep.n_sectors, site_id_start=start, **_tilt_args(sc, physical.x_m, physical.y_m))
        start = int(t.site_id.max()) + 1 if t.n_sectors else start
        table = t if table is None else table.concat(t)
    # UMi small cells, central districts only, split by population
    small = {}
    central = np.array([c == "central" for c in district_class])
    pop = districts["population"].to_numpy(float) * central
    for op in sc.operators:
        n = int((dep.small_cells or {}).get(op.id, 0))
        if not n:
            continue
        if not central.any():
            raise ConfigError(sc.source_path, f"deployment.small_cells.{op.id}",
                              "expected 0: the region has no central district (small cells go to "
                              "deployment.central_districts)")
        counts = S.allocate_counts(n, pop if pop.sum() > 0 else central.astype(float))
        sc_cfg = dep.small_cell
        try:
            t = S.build_small_cells(districts, counts, rng, ran=op.id,
                                    carriers=_carrier_specs(op, sc_cfg.bands, sc_cfg), h_bs_m=sc_cfg.h_bs_m,
                                    n_sectors=sc_cfg.n_sectors, jitter_frac=dep.jitter_frac, site_id_start=start,
                                    min_spacing_m=50.0, source="small-cell")
        except InputError as exc:
            raise _placement_error(sc, f"deployment.small_cells.{op.id}", exc) from None
        start = int(t.site_id.max()) + 1
        table = table.concat(t)
        small[op.id] = n
    return SitePlan(table=table, site_file=site_file.info if site_file is not None else None, small_cells=small)


def site_density(n_sites_d, districts) -> dict:
    """5G sites per km² and per 10,000 residents, per district and citywide.

    Area: the official land area (``area_km2_official``, statistics bureau; it leaves out
    the tidal flats of the coastal polygons), the polygon area where a district has none.
    Residents: the census population of the district table (as ``bs_5g_per_10k``).
    """
    n = np.asarray(n_sites_d, dtype=float)
    official = districts["area_km2_official"].to_numpy(float)
    has = np.isfinite(official) & (official > 0)
    area = np.where(has, official, districts["area_km2_polygon"].to_numpy(float))
    pop = districts["population"].to_numpy(float)
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


def sector_arrays(sites, layer_id: str):
    """One layer of the site table as the kernel's :class:`~sim.results.SectorArrays`."""
    from .results import SCENARIO_CODES, SectorArrays

    t = sites.for_layer(layer_id)
    code = np.array([SCENARIO_CODES.index(str(v)) for v in t.scenario], dtype=np.int8)
    return SectorArrays(site_id=t.site_id, x_m=t.x_m, y_m=t.y_m, h_bs_m=t.h_bs_m, az_deg=t.az_deg,
                        tilt_deg=t.tilt_deg, ptx_dbm=t.ptx_dbm, g_max_dbi=t.g_max_dbi,
                        hpbw_h_deg=t.hpbw_h_deg, hpbw_v_deg=t.hpbw_v_deg, scenario=code)


def layer_radio(sc: Scenario, layer_id: str, carrier):
    from .results import LayerRadio

    r = sc.radio
    return LayerRadio(layer_id=layer_id, fc_ghz=carrier.fc_ghz, bw_hz=carrier.bw_mhz * 1e6,
                      scs_khz=carrier.scs_khz, noise_figure_db=r.noise_figure_db,
                      max_layers=carrier.max_layers, dl_share=carrier.dl_share, overhead=r.overhead,
                      h_ut_m=r.h_ut_m, los_mode=r.los_mode, o2i_high_share=r.o2i_high_loss_share,
                      sla_v_db=carrier.antenna.sla_v_db, a_max_db=carrier.antenna.a_max_db,
                      se_method=r.se_method)


def _best_of(layers, key_rate="rate_indoor_bps"):
    """Per pixel, the values of the layer with the highest indoor rate (a RAN's users use its best layer)."""
    rates = np.stack([np.nan_to_num(getattr(c, key_rate), nan=-1.0) for c in layers])
    pick = np.argmax(rates, axis=0)
    out = {}
    for name in ("rsrp_dbm", "sinr_db", "rsrp_indoor_dbm", "sinr_indoor_db", "rate_outdoor_bps", "rate_indoor_bps"):
        arr = np.stack([getattr(c, name) for c in layers])
        out[name] = np.take_along_axis(arr, pick[None, :], axis=0)[0]
    return out


SERVING_DISTANCE_CLASSES_M = (0.0, 150.0, 300.0, 500.0, 1000.0, 2000.0, 1e7)
"""Class edges of the best-server map (distance to the serving site, m)."""
SERVING_DISTANCE_LABELS = ("< 150 m", "150-300 m", "300-500 m", "500 m-1 km", "1-2 km", "> 2 km")


def serving_distance_m(rasters, sectors, best_sector) -> np.ndarray:
    """Horizontal distance (m, float32) from each land pixel centre to its serving site; NaN: no server.

    The best-server map: a map coloured by serving site is unreadable citywide (tens of
    thousands of classes), the distance to the serving site shows cell size and where
    pixels are served from afar (overshooting sites, holes).
    """
    best = np.asarray(best_sector)
    ok = best >= 0
    x, y = rasters.grid.centres_m(rasters.land_flat)
    idx = np.where(ok, best, 0)
    d = np.hypot(x - np.asarray(sectors.x_m, np.float64)[idx], y - np.asarray(sectors.y_m, np.float64)[idx])
    return np.where(ok, d, np.nan).astype(np.float32)


def _criteria_panels(table) -> dict:
    """Panel title -> per-district passed, for every criterion with a threshold and district values."""
    import textwrap

    from .criteria import INDICATORS

    out = {}
    rows = table[(table["scope"] != "citywide") & table["op"].notna()]
    for key in dict.fromkeys(rows["key"]):
        r = rows[rows["key"] == key]
        if not r["value"].notna().any():
            continue
        first = r.iloc[0]
        op = {">=": "≥", "<=": "≤"}.get(first["op"], first["op"])
        label = INDICATORS[key].label if key in INDICATORS else key
        out[textwrap.fill(f"{label} {op} {first['threshold']:g}", 40)] = [
            None if p is None or p != p else bool(p) for p in r["passed"]]
    return out


BUSY_TOP_M = 8
"""Strongest interferers kept per pixel for the busy-hour fixed point (``compute_coverage(top_m=...)``)."""

BUSY_DAMPING = 1.0
"""Step of the load fixed point: the plain iteration. :func:`rates_for_load` makes the load map
monotone (more load never lowers another load), so the iterates from zero load rise to the
least fixed point without cycling; a damped step (0.5) took 41 iterations instead of 17 on
the Shanghai 2021 n41 layer (CQI steps cascade one per iteration)."""

PON_HORIZON_S = 3600.0
"""Simulated seconds of a PON port's busy hour (one hour: a port sees few flows, so the whole hour)."""


def rates_for_load(cov, radio, default_load: float):
    """``rates(load) -> (rate_indoor_bps, rate_outdoor_bps)`` of a layer for new cell loads.

    SINR from the coverage run's top-M interference terms (:func:`sim.kernel.sinr_for_load`;
    indoor with the expected O2I loss :func:`sim.kernel.o2i_loss_expected_db`, as the
    coverage kernel computes ``rate_indoor_bps``), then TS 38.214/38.306 rate
    (:func:`sim.linkmodel.dl_throughput_bps`).

    ASSUMPTIONS: (1) the interference of the weaker candidates beyond the top M (computed at
    ``default_load``) scales with the mean load of the pixel's top-M interferers; exact when
    the top M hold every candidate. Loads of 0 give the noise-limited (unloaded) rates
    exactly; ``default_load`` everywhere gives the coverage run's rates. (2) A user class
    the unloaded network serves keeps at least the lowest rate (CQI 1, or the Shannon
    SINR_MIN, one layer: link adaptation at the lowest MCS) when interference rises. Without
    it a class dropping to outage would take its load off its cell: the load map would not
    be monotone and the iteration could cycle between CQI steps. With it, more load never
    lowers a rate, and the iteration from zero load rises to the least fixed point.
    """
    import dataclasses

    from . import kernel, linkmodel

    terms = cov.interference
    o2i_db = kernel.o2i_loss_expected_db(radio)
    valid = terms.top_sector >= 0
    idx = np.where(valid, terms.top_sector, 0)
    n_valid = np.maximum(valid.sum(axis=1), 1)
    kw = dict(bw_hz=radio.bw_hz, scs_khz=radio.scs_khz, max_layers=radio.max_layers, dl_share=radio.dl_share,
              overhead=radio.overhead, method=radio.se_method)
    lowest_db = (linkmodel.CQI_SINR_THRESHOLDS_DB[0] if radio.se_method == "cqi"
                 else linkmodel.SHANNON_SINR_MIN_DB)
    floor_bps = float(linkmodel.dl_throughput_bps(np.float64(lowest_db), **kw))

    def raw(load):
        load = np.asarray(load, dtype=np.float64)
        t = terms
        if default_load > 0:
            near = np.add.reduce(load.take(idx) * valid, axis=1) / n_valid
            t = dataclasses.replace(terms, residual_mw=terms.residual_mw * (near / default_load))
        sinr_in = kernel.sinr_for_load(t, load, o2i_loss_db=o2i_db)
        sinr_out = kernel.sinr_for_load(t, load)
        return linkmodel.dl_throughput_bps(sinr_in, **kw), linkmodel.dl_throughput_bps(sinr_out, **kw)

    zero_in, zero_out = raw(np.zeros(cov.load.size))
    served_in, served_out = zero_in > 0, zero_out > 0
    floor = np.float32(floor_bps)

    def rates(load):
        r_in, r_out = raw(load)
        return (np.where(served_in, np.maximum(r_in, floor), r_in),
                np.where(served_out, np.maximum(r_out, floor), r_out))

    return rates


def busy_hour_layers_of_ran(layer_ids, coverage) -> dict[str, np.ndarray]:
    """Which layer carries each pixel's users: per pixel, the RAN's layer of highest indoor rate.

    The users of a RAN camp on its best layer (the capacity layer where it serves, the
    coverage layer where only it reaches; the same choice as the RAN's coverage
    indicators). Pixels no layer serves (rate 0 or NaN everywhere) carry no demand.
    Returns ``{layer_id: bool [n_land]}``.
    """
    rates = np.stack([np.nan_to_num(coverage[lid].rate_indoor_bps, nan=0.0) for lid in layer_ids])
    pick = np.argmax(rates, axis=0)
    served = rates.max(axis=0) > 0
    return {lid: served & (pick == i) for i, lid in enumerate(layer_ids)}


def busy_hour_stage(sc: Scenario, rasters, coverage, sites, ran_share: dict, codes, progress=None):
    """The 5G busy hour of every layer: demand, load <-> interference fixed point, throughput.

    Returns ``(layers, rate_busy_by_ran, cell_rows, layer_summary)``: the
    :class:`sim.traffic.BusyHourLayer` of each layer, each RAN's indoor busy-hour
    throughput per land pixel (that of the layer carrying the pixel's users), the rows of
    ``cells.csv`` and the per-layer fixed-point figures of ``summary.json``.
    """
    from . import traffic as T

    tr = sc.traffic
    prog = progress or _noop
    layers, rate_by_ran, rows, summ = {}, {}, [], {}
    for ran in sc.ran_ids:
        lids = [(lid, carrier) for lid, op, carrier in sc.layers() if op.id == ran]
        users = T.users_per_pixel(rasters.population_land, ran_share[ran], tr.fiveg_user_share,
                                  tr.busy_hour_active_share, tr.mobile_penetration)
        assign = busy_hour_layers_of_ran([lid for lid, _ in lids], coverage)
        rate = np.zeros(rasters.n_land, dtype=np.float32)  # land no layer serves: 0 bit/s (NaN is off land)
        for lid, carrier in lids:
            prog(f"busy hour {lid}")
            cov = coverage[lid]
            radio = layer_radio(sc, lid, carrier)
            t = sites.for_layer(lid)
            bh = T.busy_hour_layer(rates_for_load(cov, radio, sc.radio.default_load), cov.best_sector,
                                   np.where(assign[lid], users, 0.0), tr.flows_per_active_user_per_h,
                                   tr.mean_flow_mb * 8e6, t.n_sectors, indoor_share=sc.radio.indoor_share,
                                   tol=tr.fixed_point_tol, max_iter=tr.fixed_point_max_iter,
                                   damping=BUSY_DAMPING)
            layers[lid] = bh
            rate[assign[lid]] = bh.throughput_indoor_bps[assign[lid]]
            fp = bh.fixed_point
            summ[lid] = {"cells": int(t.n_sectors), "iterations": int(fp.iterations),
                         "max_change": float(fp.max_change), "converged": bool(fp.converged),
                         "saturated_cells": int(fp.saturated.sum()),
                         "mean_load": float(fp.load.mean()) if t.n_sectors else 0.0,
                         "max_load": float(fp.implied_load.max()) if t.n_sectors else 0.0}
            spread = T.cell_flow_stats(fp.serving_cell, bh.arrival_rate_per_s, bh.throughput_indoor_bps,
                                       bh.throughput_outdoor_bps, sc.radio.indoor_share, t.n_sectors,
                                       (sc.criteria.busy_rate_bps, sc.criteria.gigabit_rate_bps))
            for c in range(t.n_sectors):
                rows.append({"layer": lid, "sector": c, "site": int(t.site_id[c]), "sector_of_site": int(t.sector[c]),
                             "district": codes[t.district_idx[c]] if t.district_idx[c] >= 0 else "",
                             "load": float(fp.implied_load[c]),
                             "load_capped": float(fp.load[c]), "saturated": bool(fp.saturated[c]),
                             "served_users": float(bh.cell_users[c]),
                             "arrival_rate_per_s": float(bh.cell_arrival_rate_per_s[c]),
                             "mean_throughput_bps": float(bh.cell_throughput_bps[c]),
                             **{k: float(v[c]) for k, v in spread.items()}})
        rate_by_ran[ran] = rate
    return layers, rate_by_ran, rows, summ


def simpy_check(sc: Scenario, layers) -> tuple[list[dict], list[dict]]:
    """simpy against the analytic PS result for ``traffic.simpy_cells`` cells, and one cell's day.

    Cells: :func:`sim.traffic.sample_cells` over all layers (evenly spaced ranks of load
    among cells with demand below saturation). Each runs :func:`sim.traffic.simulate_cell`
    with the fixed point's rates, ``traffic.replications`` replications of
    ``traffic.horizon_s`` (ASSUMPTION: the first 10 % is warm-up); its ``E[S]/E[T]`` with the
    95 % CI is compared with :func:`sim.traffic.cell_throughput_bps`. The day: the median
    sampled cell over ``traffic.daily_profile`` (:func:`sim.traffic.simulate_cell_day`).
    Streams: ``SeedSequence(seed).spawn(3)[1]`` for the cells, ``[2]`` for the day.
    """
    from . import traffic as T

    tr = sc.traffic
    lids = list(layers)
    if not lids or tr.simpy_cells == 0:
        return [], []
    load = np.concatenate([layers[l].fixed_point.implied_load for l in lids])
    lam = np.concatenate([layers[l].cell_arrival_rate_per_s for l in lids])
    owner = [(l, c) for l in lids for c in range(layers[l].fixed_point.load.size)]
    picks = T.sample_cells(load, lam, int(tr.simpy_cells))
    es = tr.mean_flow_mb * 8e6
    kw = dict(horizon_s=tr.horizon_s, warmup_s=0.1 * tr.horizon_s, n_replications=tr.replications,
              distribution=tr.size_distribution, sigma=tr.lognormal_sigma, shape=tr.pareto_shape)
    streams = np.random.SeedSequence(sc.scenario.seed).spawn(3)
    cell_seeds = streams[1].spawn(max(len(picks), 1))
    rows, classes = [], []
    for k, i in enumerate(picks):
        lid, c = owner[i][0], int(owner[i][1])
        bh = layers[lid]
        peak, lam_c = T.cell_flow_classes(bh, c, sc.radio.indoor_share)
        st = T.simulate_cell(cell_seeds[k], peak, lam_c, es, **kw)
        analytic = T.cell_throughput_bps(peak, lam_c, bh.fixed_point.implied_load[c])
        ci = st.throughput_ratio_bps
        rows.append({"layer": lid, "sector": c, "load": st.load, "analytic_bps": analytic,
                     "simpy_bps": ci.mean, "ci_half_width_bps": ci.half_width,
                     "relative_difference": float(T.relative_error(ci.mean, analytic)),
                     "analytic_in_ci": bool(np.isfinite(ci.half_width) and ci.low <= analytic <= ci.high),
                     "p5_bps": st.p5_throughput_bps.mean, "p50_bps": st.p50_throughput_bps.mean,
                     "share_ge_100mbps": st.share_ge_100mbps.mean, "share_ge_1gbps": st.share_ge_1gbps.mean,
                     "flows": st.n_flows})
        classes.append((peak, lam_c))
    day = []
    if rows:
        mid = len(rows) // 2
        peak, lam_c = classes[mid]
        ds = T.simulate_cell_day(streams[2], peak, lam_c, es, tr.daily_profile, **kw)
        for h in range(T.HOURS_PER_DAY):
            day.append({"layer": rows[mid]["layer"], "sector": rows[mid]["sector"], "hour": h,
                        "load": float(ds.load[h]), "throughput_bps": float(ds.throughput_ratio_bps[h]),
                        "p5_bps": float(ds.p5_throughput_bps[h]), "share_ge_100mbps": float(ds.share_ge_100mbps[h])})
    return rows, day


def pon_check(sc: Scenario, fibre, n_replications: int, seed):
    """PON ports in the busy hour for the configured GPON and 10G-PON splits, and the indicator.

    :func:`sim.broadband.pon_busy_hour_table` for GPON and ``broadband.xgspon_kind`` at
    ``gpon_split`` and ``xgspon_split`` (each technology at its own split), one busy hour
    (:data:`PON_HORIZON_S`). GPON ports carry no gigabit tier: their gigabit shares move to
    the highest sub-gigabit tier, as :func:`sim.broadband.district_fibre` does. Returns
    ``(rows, fibre_tier_met_busy_pct by district, citywide)``: subscribers of each
    technology receive their tier with that technology's share of flows that do.
    """
    from .broadband import GIGABIT_TIER_BPS, pon_busy_hour_table
    from .criteria import ratio_by_district

    bb = sc.broadband
    tiers = np.asarray(bb.tier_mbps) * 1e6
    mix = np.asarray(bb.tier_mix, dtype=np.float64)
    gig = tiers >= GIGABIT_TIER_BPS
    gpon_mix = mix.copy()
    if gig.any() and (~gig).any():
        gpon_mix[np.flatnonzero(~gig).max()] += mix[gig].sum()
        gpon_mix[gig] = 0.0
    tr = sc.traffic
    kw = dict(active_share=bb.busy_hour_active_share, flows_per_active_sub_per_h=bb.flows_per_active_sub_per_h,
              mean_flow_bits=bb.mean_flow_mb * 8e6, horizon_s=PON_HORIZON_S, fill_factor=bb.fill_factor,
              n_replications=n_replications)
    if tr is not None:
        kw.update(distribution=tr.size_distribution, sigma=tr.lognormal_sigma, shape=tr.pareto_shape)
    ss = (seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)).spawn(2)
    gpon = pon_busy_hour_table(ss[0], ["gpon"], [bb.gpon_split], tiers, gpon_mix, **kw)[0]
    teng = pon_busy_hour_table(ss[1], [bb.xgspon_kind], [bb.xgspon_split], tiers, mix, **kw)[0]
    rows = []
    for r in (gpon, teng):
        rows.append({"technology": r.technology, "split": r.split, "subscribers_per_port": r.n_subscribers,
                     "capacity_bps": r.capacity_bps, "load": r.offered_load, "overloaded": r.overloaded,
                     "share_at_tier": r.share_at_tier.mean, "share_at_tier_ci": r.share_at_tier.half_width,
                     "gigabit_share_ge_1gbps": r.share_gigabit_ge_1gbps.mean,
                     "gigabit_share_ge_1gbps_ci": r.share_gigabit_ge_1gbps.half_width})
    met = fibre.subscribers_gpon * gpon.share_at_tier.mean + fibre.subscribers_ten_g * teng.share_at_tier.mean
    by_d, city = ratio_by_district(met, fibre.subscribers, 100.0)
    return rows, by_d, city


BUSY_HOUR_METHODS = [
    "Busy hour (5G): active users per pixel = population x mobile users per resident x the RAN's "
    "mobile share x 5G user share x busy-hour active share; they camp on the RAN's layer of highest "
    "indoor rate; Poisson flows, egalitarian processor sharing per cell (Bonald & Proutiere, MobiCom "
    "2003, section 3): load rho = sum lambda E[S] / r, flow throughput r (1 - rho), 0 when rho >= 1.",
    "Indoor and outdoor users (radio.indoor_share) are separate flow classes with their own peak rate "
    "(TR 38.901 7.4.3 expected O2I loss indoors); busy-hour maps and the 100 Mbit/s indicator use the "
    "indoor rate, as the lone-user 1 Gbit/s indicator does. The lone-user indicator (own cell idle) "
    "weights the neighbour cells at the reference load radio.default_load; the busy-hour indicators at "
    "their solved busy-hour loads, so where those loads are far below the reference the busy-hour rates "
    "are the higher ones.",
    "Load-coupled interference: each interferer's power is weighted by its cell load (top 8 interferers "
    "per pixel; the weaker rest scale with their mean load, an assumption), SINR -> TS 38.214 CQI "
    "spectral efficiency -> TS 38.306 rate -> load, iterated from the unloaded network to the least "
    "fixed point; a user served by the idle network keeps at least the CQI 1 rate (so the iteration is "
    "monotone); loads are capped at 1 as interference weights and cells with rho >= 1 flagged saturated.",
    "simpy check: event-level PS simulation of sampled cells (independent replications, 95 % Student-t "
    "intervals, first 10 % of each replication warm-up) against the analytic E[S]/E[T].",
    "PON busy hour: simpy PS on one port per technology at the configured split, flows capped at the "
    "subscriber's tier (Bonald & Roberts 2012); a flow receives its tier at >= 95 % of it; GPON ports "
    "carry no gigabit tier.",
]
"""Method notes of the busy hour, added to the report's methods."""


def agreement_text(simpy_rows) -> str:
    """One sentence: how well simpy agrees with the analytic PS throughput of the sampled cells."""
    rows = [r for r in simpy_rows if np.isfinite(r["relative_difference"])]
    if not rows:
        return "No cell was simulated event by event."
    rel = np.abs([r["relative_difference"] for r in rows]) * 100.0
    inside = sum(r["analytic_in_ci"] for r in rows)
    return (f"simpy agrees with the analytic processor-sharing throughput for {inside} of {len(rows)} cells "
            f"(analytic value inside the simpy 95 % confidence interval); relative difference median "
            f"{np.median(rel):.1f} %, largest {rel.max():.1f} %, for loads "
            f"{min(r['load'] for r in rows):.2f} to {max(r['load'] for r in rows):.2f}.")


def busy_hour_summary(busy, simpy_rows, day_rows, pon_rows) -> dict:
    """The ``busy_hour`` object of ``summary.json`` (see :mod:`sim.report.runfolder`)."""
    out = {"layers": {} if busy is None else busy[3], "simpy_cells": simpy_rows,
           "simpy_agreement": agreement_text(simpy_rows), "day": day_rows, "pon": pon_rows}
    if busy is not None:
        lay = busy[3].values()
        out["iterations"] = max((v["iterations"] for v in lay), default=0)
        out["max_change"] = max((v["max_change"] for v in lay), default=0.0)
        out["converged"] = all(v["converged"] for v in lay)
        out["saturated_cells"] = sum(v["saturated_cells"] for v in lay)
    return out


RATE_CLASSES_MBPS = (0.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 10000.0)
"""Class edges of the busy-hour throughput maps, Mbit/s."""


def _write_busy_outputs(sc: Scenario, run_dir: Path, rasters, districts, busy, simpy_rows, day_rows, pon_rows,
                        fibre_px, title: str) -> dict:
    """Busy-hour and fibre outputs: CSVs, GeoTIFFs, maps; returns the report's new images."""
    from .report import files
    from .grid import scatter_to_raster

    images = {}
    if sc.output.maps:
        from . import maps
    labels = ["< 10", "10-30", "30-100", "100-300", "300-1000", ">= 1000"]
    if busy is not None:
        layers, rate_by_ran, cell_rows, _ = busy
        files.write_csv(run_dir / "cells.csv", cell_rows)
        if simpy_rows:
            files.write_csv(run_dir / "simpy_cells.csv", simpy_rows)
        if day_rows:
            files.write_csv(run_dir / "simpy_day.csv", day_rows)
        rasters_out = {f"{lid}_rate_busy_bps": (bh.throughput_indoor_bps, f"{lid} downlink flow throughput, indoor, busy hour")
                       for lid, bh in layers.items()}
        rasters_out.update({f"{ran}_rate_busy_bps": (r, f"{ran} downlink flow throughput, indoor, busy hour (users' layer)")
                            for ran, r in rate_by_ran.items()})
        for name, (arr, label) in rasters_out.items():
            arr2d = scatter_to_raster(rasters.grid, rasters.land_flat, np.asarray(arr, dtype=np.float32))
            if sc.output.geotiff:
                files.write_geotiff(run_dir / f"{name}.tif", rasters.grid, arr2d, np.nan, label, "bit/s")
            if sc.output.maps and name.split("_")[0] in rate_by_ran:
                ran = name.split("_")[0]
                fig = maps.raster_map(rasters.grid, arr2d / 1e6, districts, title=f"{title}: {ran} busy-hour throughput",
                                      cbar_label="Flow throughput, indoor (Mbit/s)", cmap="plasma",
                                      classes=RATE_CLASSES_MBPS, class_labels=labels,
                                      inset_codes=sc.deployment.central_districts)
                png = run_dir / f"map_{ran}_rate_busy.png"
                files.write_png(fig, png, dpi=sc.output.dpi)
                images[f"{ran} busy-hour flow throughput, indoor (Mbit/s)"] = png
    if pon_rows:
        files.write_csv(run_dir / "pon_busy_hour.csv", pon_rows)
    if fibre_px is not None:
        arr2d = scatter_to_raster(rasters.grid, rasters.land_flat, fibre_px.ten_g_pon_households.astype(np.float32))
        if sc.output.geotiff:
            files.write_geotiff(run_dir / "fibre_gigabit_households.tif", rasters.grid, arr2d, np.nan,
                                 "households passed by 10G-PON (gigabit-capable)", "households")
        if sc.output.maps:
            fig = maps.raster_map(rasters.grid, arr2d, districts, title=f"{title}: gigabit-capable fibre households",
                                  cbar_label="Households passed by 10G-PON per pixel", cmap="viridis", vmin=0.0,
                                  inset_codes=sc.deployment.central_districts)
            png = run_dir / "map_fibre_gigabit_households.png"
            files.write_png(fig, png, dpi=sc.output.dpi)
            images["Gigabit-capable (10G-PON) fibre households per pixel"] = png
    return images


def run_scenario(sc: Scenario, *, out_dir=None, force: bool = False, workers=None, progress=None) -> RunResult:
    """Run a scenario end to end and write its run folder; returns the folder and headline."""
    from . import criteria as C
    from .report import files, render, runfolder
    from .broadband import district_fibre, fibre_rasters
    from .coverage import compute_coverage
    from .geodata import read_key_places
    from .grid import scatter_to_raster

    timer = _Timer(progress)
    prog = progress or _noop
    with timer.stage("reading geodata"):
        districts = load_region(sc)
    with timer.stage("building the grid"):
        rasters = build_rasters(sc, districts)
    n_d = len(districts)
    codes = list(districts["code"])
    rows = grid_summary_rows(districts, rasters)
    rng = np.random.default_rng(np.random.SeedSequence(sc.scenario.seed))
    site_file = None
    if sc.deployment.strategy == "file":
        with timer.stage("reading the site file"):
            site_file = read_site_file(sc, districts)
        for line in site_file.lines():
            prog(line)
    with timer.stage("placing sites"):
        plan = build_sites(sc, districts, rng, site_file)
        sites = plan.table
    # the run folder is made once the inputs have been read: a bad site file leaves no folder behind
    run_dir = _create_run_dir(sc, out_dir, force)
    n_workers = workers if workers is not None else (sc.radio.workers or None)
    coverage = {}
    sectors = {lid: sector_arrays(sites, lid) for lid, _, _ in sc.layers()}
    for lid, op, carrier in sc.layers():
        with timer.stage(f"coverage {lid}"):
            coverage[lid] = compute_coverage(
                rasters, sectors[lid], layer_radio(sc, lid, carrier), k_sites=sc.radio.k_sites,
                load=sc.radio.default_load, block_size=sc.radio.block_size, workers=n_workers,
                progress=lambda d, t, _l=lid: prog(f"coverage {_l}", d, t), seed=sc.scenario.seed,
                top_m=BUSY_TOP_M if sc.traffic is not None else 0)
    # --- indicators -----------------------------------------------------------------
    d_land = rasters.district_land.astype(np.int64)
    pop_land = rasters.population_land
    cr = sc.criteria
    by_d, city = {}, {}
    ran_share = {}
    for op in sc.operators:
        ran_share[op.ran_id] = ran_share.get(op.ran_id, 0.0) + op.mobile_share
    total_share = sum(ran_share.values()) or 1.0
    busy, simpy_rows, day_rows, pon_rows = None, [], [], []
    if sc.traffic is not None:
        with timer.stage("busy hour"):
            busy = busy_hour_stage(sc, rasters, coverage, sites, ran_share, codes, prog)
        coverage = {lid: dataclasses.replace(c, interference=None) for lid, c in coverage.items()}
        with timer.stage("simpy check"):
            simpy_rows, day_rows = simpy_check(sc, busy[0])
    best_by_ran = {}
    for ran in sc.ran_ids:
        best = _best_of([coverage[lid] for lid, op, _ in sc.layers() if op.id == ran])
        best_by_ran[ran] = best
        b, c = C.physical_indicators(
            d_land, pop_land, rsrp_outdoor_dbm=best["rsrp_dbm"], sinr_outdoor_db=best["sinr_db"],
            rsrp_indoor_dbm=best["rsrp_indoor_dbm"], sinr_indoor_db=best["sinr_indoor_db"],
            rate_unloaded_bps=best["rate_indoor_bps"], rate_busy_bps=None if busy is None else busy[1][ran],
            rsrp_min_dbm=cr.rsrp_min_dbm, sinr_min_db=cr.sinr_min_db, rate_gigabit_bps=cr.gigabit_rate_bps,
            rate_busy_min_bps=cr.busy_rate_bps, n_districts=n_d)
        w = ran_share[ran] / total_share
        for k in b:
            by_d[k] = by_d.get(k, 0.0) + w * np.asarray(b[k], dtype=float)
            city[k] = city.get(k, 0.0) + w * float(c[k])
    n_sites_d = np.zeros(n_d)
    sites_by_ran = {}
    for ran in sc.ran_ids:
        sites_by_ran[ran] = sites.sites_per_district(n_d, ran=ran)
        n_sites_d += sites_by_ran[ran]
    pop_d = districts["population"].to_numpy(float)
    density = site_density(n_sites_d, districts)
    by_d["bs_5g_per_10k"], city["bs_5g_per_10k"] = C.ratio_by_district(n_sites_d, pop_d, 1e4)
    # key places: indoor coverage of each operator network at the place, share-weighted
    places = read_key_places(sc.region.key_places)
    places = places[places["district_code"].isin(codes)].reset_index(drop=True)
    reached_rows = {}
    if len(places):
        flat = rasters.grid.flat_index_of(places.geometry.x.to_numpy(), places.geometry.y.to_numpy())
        pos = np.searchsorted(rasters.land_flat, flat)
        pos = np.clip(pos, 0, rasters.n_land - 1)
        on_land = rasters.land_flat[pos] == flat
        place_d = np.array([codes.index(c) for c in places["district_code"]])
        kp_d, kp_c = np.zeros(n_d), 0.0
        for ran, best in best_by_ran.items():
            rsrp = np.where(on_land, best["rsrp_indoor_dbm"][pos], np.nan)
            sinr = np.where(on_land, best["sinr_indoor_db"][pos], np.nan)
            reached_rows[ran] = C.key_place_reached(rsrp, sinr, cr.rsrp_min_dbm, cr.sinr_min_db)
            d_pct, c_pct = C.key_place_reach_pct(rsrp, sinr, place_d, rsrp_min_dbm=cr.rsrp_min_dbm,
                                                 sinr_min_db=cr.sinr_min_db, n_districts=n_d)
            w = ran_share[ran] / total_share
            kp_d = kp_d + w * np.asarray(d_pct, float)
            kp_c += w * float(c_pct)
        by_d["key_place_5g_reach_pct"], city["key_place_5g_reach_pct"] = kp_d, kp_c
    # fibre: citywide figures split over districts in proportion to census households
    if sc.broadband is not None:
        with timer.stage("fibre to the home"):
            bb = sc.broadband
            hh = districts["households"].to_numpy(float)
            from .geodata import read_census

            share = hh / float(read_census(sc.region.census)["households"].sum())
            fibre = district_fibre(hh, bb.fibre_households * share, bb.gigabit_households * share,
                                   bb.fibre_subscribers / bb.fibre_households if bb.fibre_households else 0.0,
                                   np.asarray(bb.tier_mbps) * 1e6, np.asarray(bb.tier_mix),
                                   gpon_split=bb.gpon_split, ten_g_split=bb.xgspon_split,
                                   ten_g_technology=bb.xgspon_kind, fill_factor=bb.fill_factor)
            by_d["fibre_gigabit_coverage_pct"], city["fibre_gigabit_coverage_pct"] = C.ratio_by_district(
                fibre.ten_g_households, hh, 100.0)
            by_d["pon_10g_port_share_pct"], city["pon_10g_port_share_pct"] = C.ratio_by_district(
                fibre.ports_ten_g, fibre.ports_ten_g + fibre.ports_gpon, 100.0)
            subs_500 = fibre.share_ge_500mbps * fibre.subscribers
            by_d["fbb_500m_user_share_pct"], city["fbb_500m_user_share_pct"] = C.ratio_by_district(
                subs_500, fibre.subscribers, 100.0)
            by_d["gigabit_users_per_10k"], city["gigabit_users_per_10k"] = C.ratio_by_district(
                fibre.users_ge_1000mbps, pop_d, 1e4)
            fibre_px = fibre_rasters(rasters.households_land, d_land, fibre.fibre_households,
                                     fibre.ten_g_households, order=bb.upgrade_order)
        with timer.stage("PON busy hour"):
            pon_rows, by_d["fibre_tier_met_busy_pct"], city["fibre_tier_met_busy_pct"] = pon_check(
                sc, fibre, sc.traffic.replications if sc.traffic is not None else 5,
                np.random.SeedSequence(sc.scenario.seed).spawn(3)[0])
    if sc.traffic is not None:
        by_d["user_5g_share_pct"] = np.full(n_d, 100.0 * sc.traffic.fiveg_user_share)
        city["user_5g_share_pct"] = 100.0 * sc.traffic.fiveg_user_share
    thresholds = [C.Threshold(t.key, t.op, t.value, t.unit, t.source, t.confirmed) for t in cr.thresholds]
    table = C.evaluate(by_d, city, thresholds or None, district_codes=codes)
    verdict = C.verdict(table)
    # --- outputs --------------------------------------------------------------------
    images = {}
    with timer.stage("writing outputs"):
        files.write_csv(run_dir / "grid_districts.csv", rows)
        files.write_csv(run_dir / "criteria.csv", table)
        gdf = sites.to_geodataframe("EPSG:4326")
        files.write_gpkg(run_dir / "sites.gpkg", gdf, "sites")
        dgdf = districts.copy()
        for k, v in by_d.items():
            dgdf[k] = np.asarray(v, dtype=float)
        for k in ("sites_5g", "sites_5g_per_km2", "sites_5g_per_10k"):
            dgdf[k] = density[k]
        files.write_gpkg(run_dir / "districts.gpkg", dgdf, "districts")
        if len(places):
            kp = places.copy()
            for ran, r in reached_rows.items():
                kp[f"reached_{ran}"] = np.asarray(r, dtype=bool)
            files.write_gpkg(run_dir / "key_places.gpkg", kp, "key_places")
        title = f"{sc.scenario.name} ({sc.scenario.year})"
        for lid, cov in coverage.items():
            spec = (("rsrp_dbm", "SS-RSRP outdoor", "dBm", -120.0, -40.0, "viridis"),
                    ("sinr_db", "SINR outdoor", "dB", -10.0, 30.0, "magma"),
                    ("rate_indoor_bps", "Downlink rate, indoor, lone user, neighbours at the reference load",
                     "bit/s", None, None, "plasma"))
            for name, label, unit, vmin, vmax, cmap in spec:
                arr2d = scatter_to_raster(rasters.grid, rasters.land_flat, getattr(cov, name).astype(np.float32))
                if sc.output.geotiff:
                    files.write_geotiff(run_dir / f"{lid}_{name}.tif", rasters.grid, arr2d, np.nan,
                                         f"{lid} {label}", unit)
                if sc.output.maps and name != "rate_indoor_bps":
                    from . import maps

                    fig = maps.raster_map(rasters.grid, arr2d, districts, title=f"{title}: {lid} {label}",
                                          cbar_label=f"{label} ({unit})", cmap=cmap, vmin=vmin, vmax=vmax,
                                          inset_codes=sc.deployment.central_districts)
                    png = run_dir / f"map_{lid}_{name}.png"
                    files.write_png(fig, png, dpi=sc.output.dpi)
                    images[f"{lid} {label}"] = png
            if sc.output.maps:
                from . import maps

                dist = scatter_to_raster(rasters.grid, rasters.land_flat,
                                         serving_distance_m(rasters, sectors[lid], cov.best_sector))
                fig = maps.raster_map(rasters.grid, dist, districts, title=f"{title}: {lid} best server",
                                      cbar_label="Distance to the serving site", cmap="YlOrRd",
                                      classes=SERVING_DISTANCE_CLASSES_M, class_labels=SERVING_DISTANCE_LABELS,
                                      inset_codes=sc.deployment.central_districts)
                png = run_dir / f"map_{lid}_serving_distance.png"
                files.write_png(fig, png, dpi=sc.output.dpi)
                images[f"{lid} best server: distance to the serving site"] = png
        if busy is not None or sc.broadband is not None:
            images.update(_write_busy_outputs(sc, run_dir, rasters, districts, busy, simpy_rows, day_rows, pon_rows,
                                              fibre_px if sc.broadband is not None else None, title))
        if sc.output.maps:
            from . import maps

            fig = maps.district_map(districts, title=f"{title}: districts", inset_codes=sc.deployment.central_districts)
            files.write_png(fig, run_dir / "map_districts.png", dpi=sc.output.dpi)
            fig = maps.sites_map(districts, sites.x_m, sites.y_m, sites.ran, title=f"{title}: 5G sites",
                                 inset_codes=sc.deployment.central_districts)
            files.write_png(fig, run_dir / "map_sites.png", dpi=sc.output.dpi)
            images["5G sites"] = run_dir / "map_sites.png"
            passed = table[(table.scope != "citywide") & (table.key == "bs_5g_per_10k")]["passed"].to_numpy()
            fig = maps.choropleth(districts, passed, title=f"{title}: > 12 5G base stations per 10,000 residents",
                                  inset_codes=sc.deployment.central_districts)
            files.write_png(fig, run_dir / "map_bs_per_10k.png", dpi=sc.output.dpi)
            images["Districts passing: 5G base stations per 10,000"] = run_dir / "map_bs_per_10k.png"
            panels = _criteria_panels(table)
            if panels:
                fig = maps.criteria_panels(districts, panels, title=f"{title}: districts against each criterion")
                files.write_png(fig, run_dir / "map_criteria.png", dpi=sc.output.dpi)
                images = {"Districts against each One-Gbps city criterion": run_dir / "map_criteria.png", **images}
    recs = runfolder.criteria_records(table)
    for r, i in zip(rows, range(n_d)):
        r["sites_5g"] = int(n_sites_d[i])
        r["sites_5g_by_ran"] = {ran: int(v[i]) for ran, v in sites_by_ran.items()}
        r["sites_5g_per_km2"] = round(float(density["sites_5g_per_km2"][i]), 4)
        r["sites_5g_per_10k"] = round(float(density["sites_5g_per_10k"][i]), 4)
        r["sites_area_basis"] = str(density["area_basis"][i])
        r["indicators"] = {k: (None if not np.isfinite(float(np.asarray(v)[i])) else float(np.asarray(v)[i]))
                           for k, v in by_d.items()}
    summary = {
        "schema_version": runfolder.SUMMARY_SCHEMA_VERSION,
        "scenario": {"name": sc.scenario.name, "year": sc.scenario.year, "seed": sc.scenario.seed,
                     "config_path": str(sc.source_path)},
        "inputs": {"sites": dict(sc.deployment.sites or {}), "resolution_m": sc.region.resolution_m,
                   "k_sites": sc.radio.k_sites, "default_load": sc.radio.default_load,
                   "layers": [lid for lid, _, _ in sc.layers()], "deployment": sc.deployment.strategy,
                   "site_file": plan.site_file, "small_cells": plan.small_cells},
        "sites": density["citywide"] | {"by_ran": {ran: int(v.sum()) for ran, v in sites_by_ran.items()},
                                        "small_cells": int(sum(plan.small_cells.values()))},
        "grid": {"crs": rasters.grid.crs, "res_m": rasters.grid.res_m, "shape": [int(v) for v in rasters.grid.shape],
                 "x0_m": rasters.grid.x0_m, "y0_m": rasters.grid.y0_m, "land_pixels": rasters.n_land},
        "districts": rows,
        "citywide": {k: (float(v) if np.isfinite(v) else None) for k, v in city.items()},
        "criteria": recs,
        "verdict": {k: v for k, v in verdict.items() if k in ("n_passed", "n_criteria")},
        "timings_s": timer.timings_s,
        "versions": files.versions(),
        "outputs": [],
    }
    if busy is not None or pon_rows:
        summary["busy_hour"] = busy_hour_summary(busy, simpy_rows, day_rows, pon_rows)
        summary["methods"] = BUSY_HOUR_METHODS
    render.write_report_md(run_dir / "report.md", summary, table, images, verdict=verdict)
    render.write_report_html(run_dir / "report.html", summary, table, images, verdict=verdict)
    summary["outputs"] = sorted(set(runfolder.run_outputs(run_dir)) | {"summary.json"})
    runfolder.validate_summary(summary)
    files.write_json(run_dir / "summary.json", summary)
    files.write_json(run_dir / "grid_summary.json", {k: summary[k] for k in ("scenario", "grid", "districts")})
    headline = (f"{sc.scenario.name}: {verdict.get('n_passed')} of {verdict.get('n_criteria')} One-Gbps city criteria "
                f"pass citywide; 5G BS per 10,000 residents {city['bs_5g_per_10k']:.1f}; "
                f"indoor 5G population coverage {city.get('pop_cov_5g_indoor_pct', float('nan')):.1f} %")
    return RunResult(run_dir=run_dir, headline=headline, summary=summary)


def _read_summary(run_dir: Path) -> dict:
    from .report.runfolder import read_summary

    return read_summary(run_dir)


def _scenario_title(summary) -> str:
    sc = summary.get("scenario") or {}
    return f"{sc.get('name', '?')} ({sc.get('year', '?')})"


def compare_run_dirs(run_a: Path, run_b: Path, *, out_dir=None, force: bool = False, inset_codes=()):
    """The change of every indicator between two run folders, and difference maps of throughput.

    Returns the citywide table as text, and (when ``out_dir`` is given) the path of
    ``compare.csv``. ``out_dir`` then also receives, for each throughput raster present in
    both runs (``{layer}_rate_{kind}_bps.tif``), ``diff_{layer}_rate_{kind}_bps.tif`` (B - A,
    bit/s, on A's grid) and ``map_diff_{layer}_rate_{kind}.png`` (Mbit/s, diverging scale
    centred on 0), and ``compare.md``.

    Runs on different grids (resolution or extent): B's raster is resampled onto A's grid
    with :func:`rasterio.warp.reproject` (``average``: the area-weighted mean of B's pixels
    in each of A's pixels), so the difference is always on A's grid; ``compare.md`` says so.
    Existing files in ``out_dir`` are replaced only with ``force``. ``inset_codes``: the
    districts the maps' inset zooms on (a run folder does not record them; none by default).
    """
    from .report import files, render, runfolder
    from .errors import InputError

    run_a, run_b = Path(run_a), Path(run_b)
    sa, sb = _read_summary(run_a), _read_summary(run_b)
    table = runfolder.compare_runs(sa, sb)
    city = table[table["scope"] == "citywide"]
    lines = [f"{'indicator':40s} {'A':>12s} {'B':>12s} {'change':>12s}"]
    for r in city.itertuples():
        lines.append(f"{r.key:40s} {r.value_a:12.3f} {r.value_b:12.3f} {r.change:12.3f}")
    if out_dir is None:
        return "\n".join(lines), None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rasters = [n for n in runfolder.rate_rasters(run_a) if (run_b / n).is_file()]
    planned = ["compare.csv", "compare.md"] + [f"diff_{n}" for n in rasters] + [
        f"map_diff_{n.removesuffix('_bps.tif')}.png" for n in rasters]
    for name in planned:
        if (out_dir / name).exists() and not force:
            raise InputError(out_dir / name, "force", "exists; pass --force to replace it")
    out = files.write_csv(out_dir / "compare.csv", table)
    title = f"{_scenario_title(sb)} − {_scenario_title(sa)}"
    districts = None
    diffs = []
    for name in rasters:
        a, grid, meta = runfolder.read_geotiff(run_a / name)
        b, meta_b = runfolder.read_geotiff_onto(run_b / name, grid)
        diff = b - a
        label = meta.get("description") or name
        stem = name.removesuffix("_bps.tif")
        files.write_geotiff(out_dir / f"diff_{name}", grid, diff, np.nan, f"{label}: B - A ({title})", "bit/s")
        if districts is None:
            districts = runfolder.read_gpkg(run_a / "districts.gpkg")
        from . import maps

        fig = maps.difference_map(grid, diff / 1e6, districts, title=f"{label}: {title}",
                                  cbar_label="Change of downlink rate, B - A (Mbit/s)", inset_codes=inset_codes)
        png = files.write_png(fig, out_dir / f"map_diff_{stem}.png")
        finite = diff[np.isfinite(diff)]
        diffs.append({"raster": name, "label": label, "resampled": meta_b["resampled"], "png": png.name,
                      "tif": f"diff_{name}", "pixels": int(finite.size),
                      "mean_mbps": float(finite.mean() / 1e6) if finite.size else float("nan"),
                      "gain_share_pct": float(100.0 * (finite > 0).mean()) if finite.size else float("nan"),
                      "loss_share_pct": float(100.0 * (finite < 0).mean()) if finite.size else float("nan")})
    render.write_compare_md(out_dir / "compare.md", sa, sb, table, diffs,
                            run_a=str(run_a), run_b=str(run_b))
    for d in diffs:
        lines.append(f"{d['raster']:40s} mean change {d['mean_mbps']:+.1f} Mbit/s"
                     + (" (B resampled onto A's grid)" if d["resampled"] else ""))
    return "\n".join(lines), out


# --------------------------------------------------------------------------- planning


@dataclass
class PlanRun:
    run_dir: Path
    headline: str
    summary: dict = field(repr=False)


def _plan_overrides(sc: Scenario, target, budget) -> tuple[float, int]:
    """The target share and site budget: the command line's, else ``[planning]``'s."""
    from .errors import ConfigError as _CE

    pl = sc.planning
    if target is None:
        target = pl.target_pop_share
    elif isinstance(target, bool) or not isinstance(target, (int, float)) or not (0.0 < float(target) <= 1.0):
        raise _CE("--target", None, f"expected a population share in (0, 1], got {target!r}")
    if budget is None:
        budget = pl.budget_sites
    elif isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise _CE("--budget", None, f"expected a number of sites >= 0, got {budget!r}")
    return float(target), int(budget)


def _sinr_for_rate_db(sc: Scenario, radio, rate_bps: float) -> float:
    """Smallest SINR (0.01 dB steps, -20..60 dB) at which the layer's rate reaches ``rate_bps``."""
    from .linkmodel import dl_throughput_bps

    sinr = np.round(np.arange(-2000, 6001) * 0.01, 2)
    rate = dl_throughput_bps(sinr, bw_hz=radio.bw_hz, scs_khz=radio.scs_khz, max_layers=radio.max_layers,
                             dl_share=radio.dl_share, overhead=radio.overhead, method=radio.se_method)
    ok = np.flatnonzero(rate >= rate_bps)
    if ok.size == 0:
        raise ConfigError(sc.source_path, "planning.min_rate_bps",
                          f"expected at most the layer's peak rate {float(rate.max()):.4g} bit/s, got {rate_bps:.4g}")
    return float(sinr[ok[0]])


def plan_scenario(sc: Scenario, *, target=None, budget=None, out_dir=None, force: bool = False,
                  progress=None) -> PlanRun:
    """``gigacity plan``: add sites to the existing ones until a covered population share is met.

    Builds the region, grid and existing sites as :func:`run_scenario` does (same seed, same
    sites), lays a candidate lattice over the planned districts, runs
    :func:`sim.planning.plan_sites` on one layer, and writes ``added_sites.gpkg`` (WGS84
    points), ``added_sites.csv``, ``plan_curve.csv``, ``plan_curve.png`` and
    ``plan_summary.json`` to a new run folder (``<output.dir>/<scenario>-plan-<stamp>``).
    """
    from . import planning as P
    from .report import files
    from . import sites as S
    from .errors import ConfigError as _CE

    timer = _Timer(progress)
    prog = progress or _noop
    target, budget = _plan_overrides(sc, target, budget)
    if out_dir is not None and Path(out_dir).exists() and not force:
        from .errors import InputError

        raise InputError(Path(out_dir), "force", "run folder already exists; choose another or pass --force")
    pl = sc.planning
    layers = {lid: (op, c) for lid, op, c in sc.layers()}
    lid = pl.layer or sc.layers()[0][0]
    op, carrier = layers[lid]
    radio = layer_radio(sc, lid, carrier)
    if radio.los_mode == "sampled":
        raise _CE(sc.source_path, "radio.los_mode", "expected 'expected' or 'nlos' for planning, got 'sampled'")
    sinr_min_db = sc.criteria.sinr_min_db
    if pl.min_rate_bps > 0:
        sinr_min_db = max(sinr_min_db, _sinr_for_rate_db(sc, radio, pl.min_rate_bps))
    with timer.stage("reading geodata"):
        districts = load_region(sc)
    codes = list(districts["code"])
    for i, code in enumerate(pl.district_codes):
        if code not in codes:
            raise _CE(sc.source_path, f"planning.district_codes[{i}]", f"expected a district code of the region, got {code!r}")
    plan_idx = [codes.index(c) for c in (pl.district_codes or codes)]
    with timer.stage("building the grid"):
        rasters = build_rasters(sc, districts, n_layers=1)
    rng = np.random.default_rng(np.random.SeedSequence(sc.scenario.seed))
    with timer.stage("placing sites"):
        existing = build_sites(sc, districts, rng).table.for_layer(lid)
        dep = sc.deployment
        district_class, classes = _district_classes(sc, codes)
        cx, cy, cd = P.candidate_lattice(rasters, pl.candidate_spacing_m, district_idx=plan_idx,
                                         exclude_x_m=existing.x_m, exclude_y_m=existing.y_m,
                                         min_distance_m=pl.min_distance_m or None)
        specs = [s for s in _carrier_specs(op) if s.layer == lid]
        start = int(existing.site_id.max()) + 1 if len(existing) else 0
        _, first_row = np.unique(existing.site_id, return_index=True)
        first_row = first_row[existing.source[first_row] != "small-cell"]   # the macro grid sets the spacing
        tilt = _tilt_args(sc, existing.x_m[first_row], existing.y_m[first_row], cx, cy) if first_row.size else {}
        cand = S.build_site_table(S.PhysicalSites.from_xy(cx, cy, cd, "planned"), ran=op.id, carriers=specs,
                                  rng=rng, district_class=district_class, site_classes=classes,
                                  n_sectors=dep.n_sectors, site_id_start=start, **tilt)
        table = existing.concat(cand) if len(existing) else cand
    if len(table) == 0:
        raise _CE(sc.source_path, "planning.candidate_spacing_m", "expected candidate sites on the planned land, got none")
    # the run folder is made once the inputs are read and placed: a bad input leaves no folder behind
    run_dir = _create_run_dir(sc, out_dir, force, label="-plan")
    weight = rasters.population_land * np.isin(rasters.district_land, plan_idx)
    with timer.stage(f"coverage of the existing {lid} sites"):
        model = P.PlanModel(rasters, sector_arrays(table, lid), radio, load=sc.radio.default_load,
                            rsrp_min_dbm=sc.criteria.rsrp_min_dbm, sinr_min_db=sinr_min_db, weight=weight,
                            cutoff_db=pl.cutoff_below_noise_db, seed=sc.scenario.seed)
        ex_idx = np.searchsorted(model.site_ids, np.unique(existing.site_id))
        cand_idx = np.searchsorted(model.site_ids, np.unique(cand.site_id))
        state = model.full_state(ex_idx)
    every = max(1, budget // 20)

    def _step(n, share):
        if n % every == 0 or n == budget or share >= target:
            prog(f"planning: {n} sites added, {100.0 * share:.2f} % of the population covered")

    with timer.stage("planning"):
        res = P.plan_sites(model, state, cand_idx, target_share=target, budget=budget, progress=_step)
    # --- outputs --------------------------------------------------------------------
    sid = model.site_ids[res.site_index]
    first = {int(s): i for i, s in reversed(list(enumerate(cand.site_id)))}
    rows_c = [first[int(s)] for s in sid]
    added = {
        "order": np.arange(1, res.n_added + 1),
        "site_id": sid.astype(np.int64),
        "layer": np.full(res.n_added, lid),
        "x_m": model.site_x_m[res.site_index],
        "y_m": model.site_y_m[res.site_index],
        "lon_deg": cand.lon_deg[rows_c],
        "lat_deg": cand.lat_deg[rows_c],
        "district": np.array([codes[int(d)] for d in cand.district_idx[rows_c]], dtype=object),
        "scenario": cand.scenario[rows_c],
        "h_bs_m": cand.h_bs_m[rows_c].astype(float),
        "gain_population": res.gain_population,
        "covered_population": res.covered_population[1:],
        "covered_share": res.covered_share[1:],
    }
    curve = {"sites_added": np.arange(res.n_added + 1), "covered_population": res.covered_population,
             "covered_share": res.covered_share}
    with timer.stage("writing outputs"):
        import geopandas as gpd
        import pandas as pd

        frame = pd.DataFrame(added)
        files.write_csv(run_dir / "added_sites.csv", frame)
        gdf = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon_deg"], frame["lat_deg"]),
                               crs="EPSG:4326")
        files.write_gpkg(run_dir / "added_sites.gpkg", gdf, "added_sites")
        files.write_csv(run_dir / "plan_curve.csv", pd.DataFrame(curve))
        from . import maps

        fig = maps.plan_curve_figure(curve["sites_added"], curve["covered_share"], target,
                                     title=f"{sc.scenario.name} ({sc.scenario.year}): {lid} sites added "
                                           f"vs indoor population coverage")
        files.write_png(fig, run_dir / "plan_curve.png", dpi=sc.output.dpi)
    summary = {
        "scenario": {"name": sc.scenario.name, "year": sc.scenario.year, "seed": sc.scenario.seed,
                     "config_path": str(sc.source_path)},
        "layer": lid,
        "districts": [codes[i] for i in plan_idx],
        "target_share": target,
        "budget_sites": budget,
        "reached": res.reached,
        "stop_reason": res.stop_reason,
        "existing_sites": int(ex_idx.size),
        "candidate_sites": res.n_candidates,
        "added_sites": res.n_added,
        "population_counted": model.weight_total,
        "covered_share_start": float(res.covered_share[0]),
        "covered_share_end": float(res.covered_share[-1]),
        "thresholds": {"rsrp_indoor_min_dbm": sc.criteria.rsrp_min_dbm, "sinr_indoor_min_db": sinr_min_db,
                       "min_rate_bps": pl.min_rate_bps, "load": sc.radio.default_load},
        "candidate_spacing_m": pl.candidate_spacing_m,
        "cutoff_below_noise_db": pl.cutoff_below_noise_db,
        "cutoff_radius_m": [float(r) for r in model.r_cut_m],
        "reach_radius_m": [float(r) for r in model.r_reach_m],
        "gain_evaluations": res.n_evaluations,
        "grid": {"crs": rasters.grid.crs, "res_m": rasters.grid.res_m, "shape": [int(v) for v in rasters.grid.shape],
                 "land_pixels": rasters.n_land},
        "timings_s": timer.timings_s,
        "versions": files.versions(),
        "outputs": ["added_sites.csv", "added_sites.gpkg", "plan_curve.csv", "plan_curve.png", "plan_summary.json"],
    }
    files.write_json(run_dir / "plan_summary.json", summary)
    headline = (f"{sc.scenario.name} {lid}: {res.n_added} sites added, population covered indoors "
                f"{100 * res.covered_share[0]:.2f} % -> {100 * res.covered_share[-1]:.2f} %; target "
                f"{100 * target:.2f} % " + ("reached" if res.reached else f"not reached ({res.stop_reason})"))
    return PlanRun(run_dir=run_dir, headline=headline, summary=summary)
