"""``gigacity validate``: read a scenario's inputs and describe them, without running it."""

from __future__ import annotations

import numpy as np

from ..config import Scenario
from ..grid import grid_for_bounds
from .inputs import build_sites, check_inputs, memory_limit_bytes, memory_need_bytes, read_site_file, site_counts

__all__ = ["describe_scenario"]


def describe_scenario(sc: Scenario) -> str:
    """A short text summary of a validated scenario (``gigacity validate``).

    Runs every check ``run`` runs on its inputs before computing (:func:`sim.app.inputs.check_inputs`,
    the site file, the placement of the sites), so that "config OK" means ``run`` will not
    reject these inputs.
    """
    districts = check_inputs(sc)
    grid = grid_for_bounds(districts.total_bounds, sc.region.resolution_m, districts.crs.to_string())
    site_file = read_site_file(sc, districts) if sc.deployment.strategy == "file" else None
    build_sites(sc, districts, np.random.default_rng(np.random.SeedSequence(sc.scenario.seed)), site_file)
    mem = memory_need_bytes(sc, grid, site_file.info["rows"] if site_file is not None else 0, districts)["total"]
    lines = [
        f"scenario {sc.scenario.name} ({sc.scenario.year}), seed {sc.scenario.seed}",
        f"  config: {sc.source_path}",
        f"  region: {(sc.region.name + ', ') if sc.region.name else ''}{len(districts)} district(s), "
        f"population {int(districts['population'].sum()):,}, households {int(districts['households'].sum()):,}; "
        f"grid CRS {districts.crs.to_string()}",
        f"  grid: {sc.region.resolution_m:g} m, {grid.shape[0]} x {grid.shape[1]} pixels, "
        f"about {mem / 2**20:,.0f} MiB in all (limit {memory_limit_bytes(sc) / 2**20:,.0f} MiB)",
        "  operators:",
    ]
    for op in sc.operators:
        served = f"served by {op.ran}" if op.ran else ", ".join(
            f"{c.band} {c.fc_ghz:g} GHz {c.bw_mhz:g} MHz" for c in op.carriers
        )
        lines.append(f"    {op.id:6s} {op.name} - mobile share {op.mobile_share:.0%} - {served}")
    dep = sc.deployment
    if dep.strategy == "density":
        counts = site_counts(sc, districts)
        total = sum(counts.values())
        per = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        lines.append(f"  deployment: density, {total:,} sites ({per}), by {dep.distribute_by}")
    else:
        lines.append(f"  deployment: from {dep.site_file} ({dep.site_format}, bad rows: {dep.on_bad_row})")
        lines += ["  " + line for line in site_file.lines()]
    for path in dep.extra_site_files:
        extra = read_site_file(sc, districts, path=path, site_format="csv", every_ran=False)
        lines += ["  added " + line for line in extra.lines()]
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
