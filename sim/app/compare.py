"""``gigacity compare``: the change of every indicator between two run folders, and difference maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import maps
from ..errors import InputError
from ..report import files, render, runfolder

__all__ = ["compare_run_dirs", "dense_districts", "DENSE_DISTRICT_PER_KM2"]

DENSE_DISTRICT_PER_KM2 = 10_000.0
"""Residents per km² (official land area) above which a district is in the maps' central inset.

A run folder does not record the scenario's ``deployment.central_districts``; density picks
the same districts for Shanghai: the seven central districts have 18,000-33,000 residents
per km² (census 2020), the next densest (Baoshan) about 8,200."""


def dense_districts(districts) -> tuple[str, ...]:
    """Codes of the districts denser than :data:`DENSE_DISTRICT_PER_KM2` (``districts.gpkg`` columns)."""
    if not {"code", "population", "area_km2_official"} <= set(districts.columns):
        return ()
    density = districts["population"].to_numpy(float) / districts["area_km2_official"].to_numpy(float)
    return tuple(str(c) for c, d in zip(districts["code"], density) if d > DENSE_DISTRICT_PER_KM2)


def _scenario_title(summary) -> str:
    sc = summary.get("scenario") or {}
    return f"{sc.get('name', '?')} ({sc.get('year', '?')})"


def _stem(name: str) -> str:
    """``{layer}_rate_{kind}`` of a rate GeoTIFF's file name."""
    return name.removesuffix("_mbps.tif").removesuffix("_bps.tif")


def _write_difference(run_a: Path, run_b: Path, name: str, out_dir: Path, title: str, districts, inset) -> dict:
    """``diff_<name>`` (B - A on A's grid) and its map; returns its row of ``compare.md``."""
    a, grid, meta = runfolder.read_geotiff(run_a / name)
    b, meta_b = runfolder.read_geotiff_onto(run_b / name, grid)
    diff = (b - a) * runfolder.rate_unit_mbps(name)     # Mbit/s
    label = meta.get("description") or name
    stem = _stem(name)
    files.write_geotiff(out_dir / f"diff_{name}", grid, diff, np.nan, f"{label}: B - A ({title})", "Mbit/s")
    fig = maps.difference_map(grid, diff, districts, title=f"{label}: {title}",
                              cbar_label="Change of downlink rate, B - A (Mbit/s)", inset_codes=inset)
    png = files.write_png(fig, out_dir / f"map_diff_{stem}.png")
    finite = diff[np.isfinite(diff)]
    return {"raster": name, "label": label, "resampled": meta_b["resampled"], "png": png.name,
            "tif": f"diff_{name}", "pixels": int(finite.size),
            "mean_mbps": float(finite.mean()) if finite.size else float("nan"),
            "gain_share_pct": float(100.0 * (finite > 0).mean()) if finite.size else float("nan"),
            "loss_share_pct": float(100.0 * (finite < 0).mean()) if finite.size else float("nan")}


def compare_run_dirs(run_a: Path, run_b: Path, *, out_dir=None, force: bool = False):
    """The change of every indicator between two run folders, and difference maps of throughput.

    Returns the citywide table as text, and (when ``out_dir`` is given) the path of
    ``compare.csv``. ``out_dir`` then also receives, for each throughput raster present in
    both runs (``{layer}_rate_{kind}_mbps.tif``), ``diff_{layer}_rate_{kind}_mbps.tif`` (B - A,
    Mbit/s, on A's grid) and ``map_diff_{layer}_rate_{kind}.png`` (Mbit/s, diverging scale
    centred on 0), and ``compare.md``.

    Runs on different grids (resolution or extent): B's raster is resampled onto A's grid
    with :func:`rasterio.warp.reproject` (``average``: the area-weighted mean of B's pixels
    in each of A's pixels), so the difference is always on A's grid; ``compare.md`` says so.
    Existing files in ``out_dir`` are replaced only with ``force``.
    """
    run_a, run_b = Path(run_a), Path(run_b)
    sa, sb = runfolder.read_summary(run_a), runfolder.read_summary(run_b)
    table = runfolder.compare_runs(sa, sb)
    city = table[table["scope"] == "citywide"]
    lines = [f"{'indicator':40s} {'A':>12s} {'B':>12s} {'change':>12s}"]
    for r in city.itertuples():
        lines.append(f"{r.key:40s} {r.value_a:12.3f} {r.value_b:12.3f} {r.change:12.3f}")
    if out_dir is None:
        return "\n".join(lines), None
    out_dir = files.ensure_dir(out_dir)
    rasters = [n for n in runfolder.rate_rasters(run_a) if (run_b / n).is_file()]
    planned = ["compare.csv", "compare.md"] + [f"diff_{n}" for n in rasters] + [
        f"map_diff_{_stem(n)}.png" for n in rasters]
    for name in planned:
        if (out_dir / name).exists() and not force:
            raise InputError(out_dir / name, "force", "exists; pass --force to replace it")
    out = files.write_csv(out_dir / "compare.csv", table)
    title = f"{_scenario_title(sb)} − {_scenario_title(sa)}"
    grid_crs = (sa.get("grid") or {}).get("crs") or "EPSG:32651"
    districts = runfolder.read_gpkg(run_a / "districts.gpkg", crs=grid_crs) if rasters else None
    inset = dense_districts(districts) if districts is not None else ()
    diffs = [_write_difference(run_a, run_b, name, out_dir, title, districts, inset) for name in rasters]
    render.write_compare_md(out_dir / "compare.md", sa, sb, table, diffs,
                            run_a=str(run_a), run_b=str(run_b))
    for d in diffs:
        lines.append(f"{d['raster']:40s} mean change {d['mean_mbps']:+.1f} Mbit/s"
                     + (" (B resampled onto A's grid)" if d["resampled"] else ""))
    return "\n".join(lines), out
