"""The composition root: calls the layers in order and hands results to the writer.

``run_scenario`` is what ``gigacity run`` does: config -> geodata/grid -> sites ->
coverage -> busy hour -> broadband -> criteria -> report. Every stage is timed; the
``progress`` callback (``progress(stage, done, total)``) is how long stages report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import Scenario
from .errors import ConfigError

__all__ = ["RunResult", "PlanRun", "describe_scenario", "load_region", "run_scenario", "plan_scenario", "grid_summary_rows"]


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
    )


def describe_scenario(sc: Scenario) -> str:
    """A short text summary of a validated scenario (``gigacity validate``)."""
    from .grid import estimate_memory_bytes, grid_for_bounds

    districts = load_region(sc)
    grid = grid_for_bounds(districts.total_bounds, sc.region.resolution_m)
    mem = estimate_memory_bytes(grid, n_layers=len(sc.layers()))
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
        lines.append(f"  deployment: from {dep.site_file} ({dep.site_format})")
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


def _create_run_dir(sc: Scenario, out_dir, force: bool) -> Path:
    from . import report

    if out_dir is None:
        return report.create_run_dir(sc.output.dir, sc.scenario.name, force=force)
    out_dir = Path(out_dir)
    return report.create_run_dir(out_dir.parent, sc.scenario.name, force=force, name=out_dir.name)


def build_sites(sc: Scenario, districts, rng):
    """The sector-carrier table of every radio network (density placement)."""
    from . import sites as S
    from .errors import ConfigError as _CE

    dep = sc.deployment
    if dep.strategy != "density":
        raise _CE(sc.source_path, "deployment.strategy", "only 'density' is wired into run so far, got 'file'")
    codes = list(districts["code"])
    district_class = ["central" if c in dep.central_districts else "rural" if c in dep.rural_districts
                      else "suburban" for c in codes]
    classes = {k: S.SiteClass(getattr(dep, k).scenario, getattr(dep, k).h_bs_m)
               for k in ("central", "suburban", "rural")}
    if dep.distribute_by == "explicit":
        weights = np.array([float(dep.explicit_counts.get(c, 0)) for c in codes])
    else:
        weights = S.district_weights(districts, dep.distribute_by, population_weight=dep.population_weight)
    table = None
    start = 0
    for op in sc.operators:
        if not op.carriers:
            continue
        counts = S.allocate_counts(int(dep.sites[op.id]), weights)
        # minimum inter-site distance 50 m (ASSUMPTION: denser than any macro grid);
        # sites may share a coarse pixel, the kernel evaluates them at their true position
        placed = S.place_by_density(districts, counts, rng, dep.jitter_frac, min_spacing_m=50.0)
        carriers = [S.CarrierSpec(layer=f"{op.id}-{c.band}", band=c.band, ptx_dbm=c.ptx_dbm,
                                  g_max_dbi=c.antenna.g_max_dbi, hpbw_h_deg=c.antenna.hpbw_h_deg,
                                  hpbw_v_deg=c.antenna.hpbw_v_deg, tilt_deg=c.antenna.tilt_deg)
                    for c in op.carriers]
        t = S.build_site_table(placed.to_sites(), ran=op.id, carriers=carriers, rng=rng,
                               district_class=district_class, site_classes=classes,
                               n_sectors=dep.n_sectors, site_id_start=start)
        start = int(t.site_id.max()) + 1 if t.n_sectors else start
        table = t if table is None else table.concat(t)
    return table


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


def run_scenario(sc: Scenario, *, out_dir=None, force: bool = False, workers=None, progress=None) -> RunResult:
    """Run a scenario end to end and write its run folder; returns the folder and headline."""
    from . import criteria as C
    from . import report
    from .broadband import district_fibre
    from .coverage import compute_coverage
    from .geodata import read_key_places
    from .grid import scatter_to_raster

    timer = _Timer(progress)
    prog = progress or _noop
    with timer.stage("reading geodata"):
        districts = load_region(sc)
    with timer.stage("building the grid"):
        rasters = build_rasters(sc, districts)
    run_dir = _create_run_dir(sc, out_dir, force)
    n_d = len(districts)
    codes = list(districts["code"])
    rows = grid_summary_rows(districts, rasters)
    rng = np.random.default_rng(np.random.SeedSequence(sc.scenario.seed))
    with timer.stage("placing sites"):
        sites = build_sites(sc, districts, rng)
    n_workers = workers if workers is not None else (sc.radio.workers or None)
    coverage = {}
    for lid, op, carrier in sc.layers():
        with timer.stage(f"coverage {lid}"):
            coverage[lid] = compute_coverage(
                rasters, sector_arrays(sites, lid), layer_radio(sc, lid, carrier), k_sites=sc.radio.k_sites,
                load=sc.radio.default_load, block_size=sc.radio.block_size, workers=n_workers,
                progress=lambda d, t, _l=lid: prog(f"coverage {_l}", d, t), seed=sc.scenario.seed)
    # --- indicators -----------------------------------------------------------------
    d_land = rasters.district_land.astype(np.int64)
    pop_land = rasters.population_land
    cr = sc.criteria
    by_d, city = {}, {}
    ran_share = {}
    for op in sc.operators:
        ran_share[op.ran_id] = ran_share.get(op.ran_id, 0.0) + op.mobile_share
    total_share = sum(ran_share.values()) or 1.0
    best_by_ran = {}
    for ran in sc.ran_ids:
        best = _best_of([coverage[lid] for lid, op, _ in sc.layers() if op.id == ran])
        best_by_ran[ran] = best
        b, c = C.physical_indicators(
            d_land, pop_land, rsrp_outdoor_dbm=best["rsrp_dbm"], sinr_outdoor_db=best["sinr_db"],
            rsrp_indoor_dbm=best["rsrp_indoor_dbm"], sinr_indoor_db=best["sinr_indoor_db"],
            rate_unloaded_bps=best["rate_indoor_bps"], rate_busy_bps=None, rsrp_min_dbm=cr.rsrp_min_dbm,
            sinr_min_db=cr.sinr_min_db, rate_gigabit_bps=cr.gigabit_rate_bps, n_districts=n_d)
        w = ran_share[ran] / total_share
        for k in b:
            by_d[k] = by_d.get(k, 0.0) + w * np.asarray(b[k], dtype=float)
            city[k] = city.get(k, 0.0) + w * float(c[k])
    n_sites_d = np.zeros(n_d)
    for ran in sc.ran_ids:
        n_sites_d += sites.sites_per_district(n_d, ran=ran)
    pop_d = districts["population"].to_numpy(float)
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
    if sc.traffic is not None:
        by_d["user_5g_share_pct"] = np.full(n_d, 100.0 * sc.traffic.fiveg_user_share)
        city["user_5g_share_pct"] = 100.0 * sc.traffic.fiveg_user_share
    thresholds = [C.Threshold(t.key, t.op, t.value, t.unit, t.source, t.confirmed) for t in cr.thresholds]
    table = C.evaluate(by_d, city, thresholds or None, district_codes=codes)
    verdict = C.verdict(table)
    # --- outputs --------------------------------------------------------------------
    images = {}
    with timer.stage("writing outputs"):
        report.write_csv(run_dir / "grid_districts.csv", rows)
        report.write_csv(run_dir / "criteria.csv", table)
        gdf = sites.to_geodataframe("EPSG:4326")
        report.write_gpkg(run_dir / "sites.gpkg", gdf, "sites")
        dgdf = districts.copy()
        for k, v in by_d.items():
            dgdf[k] = np.asarray(v, dtype=float)
        report.write_gpkg(run_dir / "districts.gpkg", dgdf, "districts")
        if len(places):
            kp = places.copy()
            for ran, r in reached_rows.items():
                kp[f"reached_{ran}"] = np.asarray(r, dtype=bool)
            report.write_gpkg(run_dir / "key_places.gpkg", kp, "key_places")
        title = f"{sc.scenario.name} ({sc.scenario.year})"
        for lid, cov in coverage.items():
            spec = (("rsrp_dbm", "SS-RSRP outdoor", "dBm", -140.0, -60.0, "viridis"),
                    ("sinr_db", "SINR outdoor", "dB", -10.0, 30.0, "magma"),
                    ("rate_indoor_bps", "Downlink rate, indoor, unloaded", "bit/s", None, None, "plasma"))
            for name, label, unit, vmin, vmax, cmap in spec:
                arr2d = scatter_to_raster(rasters.grid, rasters.land_flat, getattr(cov, name).astype(np.float32))
                if sc.output.geotiff:
                    report.write_geotiff(run_dir / f"{lid}_{name}.tif", rasters.grid, arr2d, np.nan,
                                         f"{lid} {label}", unit)
                if sc.output.maps and name != "rate_indoor_bps":
                    from . import maps

                    fig = maps.raster_map(rasters.grid, arr2d, districts, title=f"{title}: {lid} {label}",
                                          cbar_label=f"{label} ({unit})", cmap=cmap, vmin=vmin, vmax=vmax)
                    png = run_dir / f"map_{lid}_{name}.png"
                    report.write_png(fig, png, dpi=sc.output.dpi)
                    images[f"{lid} {label}"] = png
        if sc.output.maps:
            from . import maps

            fig = maps.district_map(districts, title=f"{title}: districts")
            report.write_png(fig, run_dir / "map_districts.png", dpi=sc.output.dpi)
            fig = maps.sites_map(districts, sites.x_m, sites.y_m, sites.ran, title=f"{title}: 5G sites")
            report.write_png(fig, run_dir / "map_sites.png", dpi=sc.output.dpi)
            images["5G sites"] = run_dir / "map_sites.png"
            passed = table[(table.scope != "citywide") & (table.key == "bs_5g_per_10k")]["passed"].to_numpy()
            fig = maps.choropleth(districts, passed, title=f"{title}: > 12 5G base stations per 10,000 residents")
            report.write_png(fig, run_dir / "map_bs_per_10k.png", dpi=sc.output.dpi)
            images["Districts passing: 5G base stations per 10,000"] = run_dir / "map_bs_per_10k.png"
    recs = report.criteria_records(table)
    for r, i in zip(rows, range(n_d)):
        r["sites_5g"] = int(n_sites_d[i])
        r["indicators"] = {k: (None if not np.isfinite(float(np.asarray(v)[i])) else float(np.asarray(v)[i]))
                           for k, v in by_d.items()}
    summary = {
        "schema_version": report.SUMMARY_SCHEMA_VERSION,
        "scenario": {"name": sc.scenario.name, "year": sc.scenario.year, "seed": sc.scenario.seed,
                     "config_path": str(sc.source_path)},
        "inputs": {"sites": dict(sc.deployment.sites or {}), "resolution_m": sc.region.resolution_m,
                   "k_sites": sc.radio.k_sites, "default_load": sc.radio.default_load,
                   "layers": [lid for lid, _, _ in sc.layers()]},
        "grid": {"crs": rasters.grid.crs, "res_m": rasters.grid.res_m, "shape": [int(v) for v in rasters.grid.shape],
                 "x0_m": rasters.grid.x0_m, "y0_m": rasters.grid.y0_m, "land_pixels": rasters.n_land},
        "districts": rows,
        "citywide": {k: (float(v) if np.isfinite(v) else None) for k, v in city.items()},
        "criteria": recs,
        "verdict": {k: v for k, v in verdict.items() if k in ("n_passed", "n_criteria")},
        "timings_s": timer.timings_s,
        "versions": report.versions(),
        "outputs": [],
    }
    report.write_report_md(run_dir / "report.md", summary, table, images)
    report.write_report_html(run_dir / "report.html", summary, table, images)
    summary["outputs"] = sorted(set(report.run_outputs(run_dir)) | {"summary.json"})
    report.validate_summary(summary)
    report.write_json(run_dir / "summary.json", summary)
    report.write_json(run_dir / "grid_summary.json", {k: summary[k] for k in ("scenario", "grid", "districts")})
    headline = (f"{sc.scenario.name}: {verdict.get('n_passed')} of {verdict.get('n_criteria')} One-Gbps city criteria "
                f"pass citywide; 5G BS per 10,000 residents {city['bs_5g_per_10k']:.1f}; "
                f"indoor 5G population coverage {city.get('pop_cov_5g_indoor_pct', float('nan')):.1f} %")
    return RunResult(run_dir=run_dir, headline=headline, summary=summary)


def _read_summary(run_dir: Path) -> dict:
    import json

    from .errors import InputError

    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise InputError(path, None, "not a run folder: summary.json not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"not valid JSON ({exc.__class__.__name__})") from None


def compare_run_dirs(run_a: Path, run_b: Path, *, out_dir=None, force: bool = False):
    """The change of every indicator between two run folders; optionally written as CSV."""
    from . import report

    table = report.compare_runs(_read_summary(run_a), _read_summary(run_b))
    city = table[table["scope"] == "citywide"]
    lines = [f"{'indicator':40s} {'A':>12s} {'B':>12s} {'change':>12s}"]
    for r in city.itertuples():
        lines.append(f"{r.key:40s} {r.value_a:12.3f} {r.value_b:12.3f} {r.change:12.3f}")
    out = None
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / "compare.csv"
        if out.exists() and not force:
            from .errors import InputError

            raise InputError(out, "force", "exists; pass --force to replace it")
        report.write_csv(out, table)
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
    from . import report
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
    if out_dir is None:
        run_dir = report.create_run_dir(sc.output.dir, f"{sc.scenario.name}-plan", force=force)
    else:
        run_dir = report.create_run_dir(Path(out_dir).parent, sc.scenario.name, force=force, name=Path(out_dir).name)
    rng = np.random.default_rng(np.random.SeedSequence(sc.scenario.seed))
    with timer.stage("placing sites"):
        existing = build_sites(sc, districts, rng).for_layer(lid)
        dep = sc.deployment
        district_class = ["central" if c in dep.central_districts else "rural" if c in dep.rural_districts
                          else "suburban" for c in codes]
        classes = {k: S.SiteClass(getattr(dep, k).scenario, getattr(dep, k).h_bs_m)
                   for k in ("central", "suburban", "rural")}
        cx, cy, cd = P.candidate_lattice(rasters, pl.candidate_spacing_m, district_idx=plan_idx,
                                         exclude_x_m=existing.x_m, exclude_y_m=existing.y_m,
                                         min_distance_m=pl.min_distance_m or None)
        spec = S.CarrierSpec(layer=lid, band=carrier.band, ptx_dbm=carrier.ptx_dbm,
                             g_max_dbi=carrier.antenna.g_max_dbi, hpbw_h_deg=carrier.antenna.hpbw_h_deg,
                             hpbw_v_deg=carrier.antenna.hpbw_v_deg, tilt_deg=carrier.antenna.tilt_deg)
        start = int(existing.site_id.max()) + 1 if len(existing) else 0
        cand = S.build_site_table(S.PhysicalSites.from_xy(cx, cy, cd, "planned"), ran=op.id, carriers=[spec],
                                  rng=rng, district_class=district_class, site_classes=classes,
                                  n_sectors=dep.n_sectors, site_id_start=start)
        table = existing.concat(cand) if len(existing) else cand
    if len(table) == 0:
        raise _CE(sc.source_path, "planning.candidate_spacing_m", "expected candidate sites on the planned land, got none")
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
        report.write_csv(run_dir / "added_sites.csv", frame)
        gdf = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(frame["lon_deg"], frame["lat_deg"]),
                               crs="EPSG:4326")
        report.write_gpkg(run_dir / "added_sites.gpkg", gdf, "added_sites")
        report.write_csv(run_dir / "plan_curve.csv", pd.DataFrame(curve))
        from . import maps

        fig = maps.plan_curve_figure(curve["sites_added"], curve["covered_share"], target,
                                     title=f"{sc.scenario.name} ({sc.scenario.year}): {lid} sites added "
                                           f"vs indoor population coverage")
        report.write_png(fig, run_dir / "plan_curve.png", dpi=sc.output.dpi)
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
        "versions": report.versions(),
        "outputs": ["added_sites.csv", "added_sites.gpkg", "plan_curve.csv", "plan_curve.png", "plan_summary.json"],
    }
    report.write_json(run_dir / "plan_summary.json", summary)
    headline = (f"{sc.scenario.name} {lid}: {res.n_added} sites added, population covered indoors "
                f"{100 * res.covered_share[0]:.2f} % -> {100 * res.covered_share[-1]:.2f} %; target "
                f"{100 * target:.2f} % " + ("reached" if res.reached else f"not reached ({res.stop_reason})"))
    return PlanRun(run_dir=run_dir, headline=headline, summary=summary)
