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

__all__ = ["RunResult", "describe_scenario", "load_region", "run_scenario", "grid_summary_rows"]


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


def run_scenario(sc: Scenario, *, out_dir=None, force: bool = False, workers=None, progress=None) -> RunResult:
    """Run a scenario end to end and write its run folder; returns the folder and headline."""
    from . import report

    timer = _Timer(progress)
    with timer.stage("reading geodata"):
        districts = load_region(sc)
    with timer.stage("building the grid"):
        rasters = build_rasters(sc, districts)
    run_dir = _create_run_dir(sc, out_dir, force)
    rows = grid_summary_rows(districts, rasters)
    outputs = []
    with timer.stage("writing grid summary"):
        report.write_csv(run_dir / "grid_districts.csv", rows)
        outputs.append("grid_districts.csv")
    if sc.output.maps:
        with timer.stage("drawing maps"):
            from . import maps

            fig = maps.district_map(districts, title=f"{sc.scenario.name}: districts ({sc.scenario.year})")
            report.write_png(fig, run_dir / "map_districts.png", dpi=sc.output.dpi)
            outputs.append("map_districts.png")
    summary = {
        "scenario": {"name": sc.scenario.name, "year": sc.scenario.year, "seed": sc.scenario.seed,
                     "config_path": str(sc.source_path)},
        "grid": {"crs": rasters.grid.crs, "res_m": rasters.grid.res_m, "shape": list(rasters.grid.shape),
                 "x0_m": rasters.grid.x0_m, "y0_m": rasters.grid.y0_m, "land_pixels": rasters.n_land},
        "districts": rows,
        "timings_s": timer.timings_s,
        "outputs": outputs + ["grid_summary.json"],
    }
    report.write_json(run_dir / "grid_summary.json", summary)
    pop = sum(r["population"] for r in rows)
    headline = (f"{sc.scenario.name}: {len(rows)} districts, {rasters.n_land:,} land pixels at "
                f"{rasters.grid.res_m:g} m, population {pop:,.0f}")
    return RunResult(run_dir=run_dir, headline=headline, summary=summary)
