"""Every file of a run folder: tables, GIS layers, rasters, maps, the summary and the reports.

What each output holds is decided here (names, labels, colour scales, classes); how a file is
written (atomically, with its georeference) is :mod:`sim.report`'s, and how a map is drawn is
:mod:`sim.maps`'.
"""

from __future__ import annotations

import contextlib
import os
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap

from .. import maps
from ..config import Scenario
from ..coverage import serving_distance_m
from ..criteria import INDICATORS
from ..pixelstore import bincount_onto, chunks
from ..report import files, forked, render, runfolder
from ..report.rasterfile import LandRasterWriter, PreviewSampler
from .assess import Assessment
from .busyhour import BusyHour, busy_hour_summary

__all__ = ["SERVING_DISTANCE_CLASSES_M", "SERVING_DISTANCE_LABELS", "RATE_CLASSES_MBPS", "RATE_CLASS_LABELS",
           "COVERAGE_RASTERS", "geotiff_of", "create_run_dir", "check_run_dir", "abandon_run_dir", "write_tables",
           "pixel_outputs", "write_pixel_outputs", "write_busy_tables", "hole_shares_pct", "write_overview_maps",
           "MapJob", "stream_pixel_outputs", "overview_map_jobs", "draw_maps", "report_order", "MAP_PROCESSES",
           "CRITERIA_MAP", "map_writer", "images_of", "alongside",
           "criteria_panels", "benchmark_panels", "fitted_limits", "PREVIEW_MAX_PX", "build_summary",
           "write_summary_and_reports", "headline", "WRITER_THREADS", "writing_outputs"]

WRITER_THREADS = max(1, min(4, os.cpu_count() or 1))
"""Threads writing the GeoTIFFs and PNGs of a run while the main thread draws the next map
(:func:`sim.report.files.background_writes`); the files are the same whatever the number."""


@contextlib.contextmanager
def writing_outputs():
    """The block in which a run writes its files: the rasters and maps by :data:`WRITER_THREADS` writer
    threads (:func:`sim.report.files.background_writes`), the raster maps on frames drawn once and reused
    (:func:`sim.maps.reused_frames`: each map is written before the next is asked for)."""
    with files.background_writes(WRITER_THREADS), maps.reused_frames():
        yield


SERVING_DISTANCE_CLASSES_M = (0.0, 150.0, 300.0, 500.0, 1000.0, 2000.0, 1e7)
"""Class edges of the best-server map (distance to the serving site, m)."""
SERVING_DISTANCE_LABELS = ("< 150 m", "150-300 m", "300-500 m", "500 m-1 km", "1-2 km", "> 2 km")

RATE_CLASSES_MBPS = (0.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 10000.0)
"""Class edges of the busy-hour throughput maps, Mbit/s."""
RATE_CLASS_LABELS = ("< 10", "10-30", "30-100", "100-300", "300-1000", ">= 1000")

COVERAGE_RASTERS = (
    ("rsrp_dbm", "SS-RSRP outdoor", "dBm", None, None, "viridis"),
    ("sinr_db", "SINR outdoor", "dB", None, None, "magma"),
    ("rate_indoor_bps", "Downlink rate, indoor, lone user, neighbours at the reference load",
     "bit/s", None, None, "plasma"),
)
"""Per coverage layer: field, label, unit, colour scale limits (None: fitted to the data,
:func:`fitted_limits`) and map; a GeoTIFF each, a map each but the rate (its busy-hour
counterpart is mapped)."""

SCALE_PERCENTILES = (2.0, 98.0)
"""Continuous colour scales span these percentiles of the mapped land pixels (stated in the legend)."""


def fitted_limits(values) -> tuple[float, float]:
    """The :data:`SCALE_PERCENTILES` of the finite values, rounded out to whole units (1 unit apart at least)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(v, SCALE_PERCENTILES)
    lo, hi = float(np.floor(lo)), float(np.ceil(hi))
    return lo, max(hi, lo + 1.0)


HOLE_CLASSES = ("covered", "SINR below threshold", "SS-RSRP below threshold", "no 5G server")
"""Classes of the coverage-holes rasters (0..3), indoors."""
HOLE_COLOURS = ("#e0e0e0", "#fdae61", "#d73027", "#67001f")


GPKG_CRS = "EPSG:4326"
"""CRS of every GeoPackage of a run folder (WGS84 longitude / latitude: what GIS tools and the
source geodata use); the rasters stay on the metric grid (EPSG:32651)."""


def geotiff_of(name: str, unit: str) -> tuple[str, str, float | None]:
    """File stem, unit tag and value scale of a raster's GeoTIFF: rates (``*_bps``, bit/s) are written in
    Mbit/s (``*_mbps.tif``, unit ``Mbit/s``, values divided by 1e6) so GIS legends read 1000 rather than 1e9."""
    if name.endswith("_bps"):
        return name[:-4] + "_mbps", "Mbit/s", 1e-6
    return name, unit, None


def create_run_dir(sc: Scenario, out_dir, force: bool, label: str = "") -> Path:
    """``out_dir``, or a new ``<output.dir>/<scenario><label>-<stamp>`` folder (``label``: e.g. ``-plan``)."""
    if out_dir is None:
        return files.create_run_dir(sc.output.dir, f"{sc.scenario.name}{label}", force=force,
                                    key=f"{sc.source_path}: output.dir")
    out_dir = Path(out_dir)
    return files.create_run_dir(out_dir.parent, sc.scenario.name, force=force, name=out_dir.name)


def abandon_run_dir(run_dir: Path) -> None:
    """After a failed or stopped run: remove its folder if it made it and wrote nothing into it."""
    files.abandon_run_dir(run_dir)


def check_run_dir(sc: Scenario, out_dir, force: bool) -> None:
    """Refuse before any work a run folder :func:`create_run_dir` would refuse (``--out``, or ``output.dir``)."""
    if out_dir is not None:
        files.check_run_dir(out_dir, force)
    else:
        files.check_run_dir(Path(sc.output.dir) / f"{sc.scenario.name}-00000000-000000", force,
                            key=f"{sc.source_path}: output.dir")


def _inset(sc: Scenario) -> tuple[str, ...]:
    """The districts the maps' inset zooms on: the scenario's central districts."""
    return tuple(sc.deployment.central_districts)


def write_tables(run_dir: Path, grid_rows, a: Assessment, sites, districts) -> None:
    """``grid_districts.csv``, ``criteria.csv`` and the GeoPackages (WGS84) of sites, districts and key places.

    ``sites.gpkg`` has a ``sites`` layer (one point per mast: :meth:`sim.sites.SiteTable.mast_columns`)
    and a ``sectors`` layer (one point per sector-carrier, every column of the site table).
    """
    files.write_csv(run_dir / "grid_districts.csv", grid_rows)
    files.write_csv(run_dir / "criteria.csv", a.table)
    codes = [str(c) for c in districts["code"]]
    grid_crs = districts.crs.to_string()
    masts = sites.mast_columns(codes)
    sectors = sites.to_geodataframe(GPKG_CRS, grid_crs=grid_crs)
    sectors.insert(0, "district_code", masts["district_code"][np.searchsorted(masts["site_id"], sites.site_id)])
    files.write_gpkg_layers(run_dir / "sites.gpkg", {
        "sites": sites.masts_to_geodataframe(codes, GPKG_CRS, grid_crs, columns=masts), "sectors": sectors})
    dgdf = districts.copy()
    for k, v in a.by_district.items():
        dgdf[k] = np.asarray(v, dtype=float)
    for k in ("sites_5g", "sites_5g_per_km2", "sites_5g_per_10k"):
        dgdf[k] = a.density[k]
    files.write_gpkg(run_dir / "districts.gpkg", dgdf.to_crs(GPKG_CRS), "districts")
    if a.places is not None and len(a.places):
        kp = a.places.copy()
        for ran, r in a.reached.items():
            kp[f"reached_{ran}"] = np.asarray(r, dtype=bool)
        files.write_gpkg(run_dir / "key_places.gpkg", kp.to_crs(GPKG_CRS), "key_places")


@dataclass
class _Raster:
    """One per-pixel output streamed from the run's pixel store: its GeoTIFF and, through the preview, its map.

    ``values(start, stop)`` gives land pixels ``start:stop`` (in the raster's unit: bit/s for rates, written
    in Mbit/s as :func:`geotiff_of` says); ``tif`` False: a map only (e.g. the best-server distance), whose
    ``values(start, stop, pos)`` may give only the pixels at positions ``pos`` of the chunk (those the map shows;
    ``pos`` None: all)."""

    name: str
    values: object
    label: str
    unit: str
    tif: bool = True
    dtype: str = "float32"


def _stream_rasters(sc: Scenario, run_dir: Path, rasters, jobs: list, progress=None) -> dict:
    """Every raster of ``jobs``, one after another, over the land pixels in chunks, each GeoTIFF written window by
    window (:class:`sim.report.rasterfile.LandRasterWriter`) and handed to a writer thread to finish as a COG while
    the next one is streamed; a map-only raster is computed at the pixels its preview shows alone. Returns name ->
    ``(grid, preview)``, the decimated 2-D view the maps are drawn from (the whole raster when it is at most
    :data:`PREVIEW_MAX_PX` a side). ``progress(done, total)``: chunks of rasters done."""
    sampler = PreviewSampler(rasters.grid, rasters.land_flat, PREVIEW_MAX_PX)   # shared: found once per chunk
    spans = chunks(rasters.n_land)
    out = {}
    for k, job in enumerate(jobs):
        stem, unit, scale = geotiff_of(job.name, job.unit)
        path = run_dir / f"{stem}.tif" if job.tif and sc.output.geotiff else None
        with LandRasterWriter(path, rasters.grid, rasters.land_flat, np.nan, job.label, unit, dtype=job.dtype,
                              preview_max_px=PREVIEW_MAX_PX, scale=scale, sampler=sampler) as w:
            for i, (a, b) in enumerate(spans):
                if path is None and not job.tif:
                    w.write_sampled(a, b, job.values(a, b, w.sampled(a, b)))
                else:
                    w.write(a, b, job.values(a, b))
                if progress is not None:
                    progress(k * len(spans) + i + 1, len(jobs) * len(spans))
            out[job.name] = _Shown(w.preview_grid, w.close())
    return out


@dataclass
class _Shown:
    """A raster's preview: ``grid``, ``values`` in float32; unpacked as ``(grid, float64 view)``, what the maps
    got of the whole raster (``scatter_to_raster``'s dtype), converted when a map is drawn."""

    grid: object
    values: np.ndarray

    def __iter__(self):
        return iter((self.grid, np.asarray(self.values, dtype=np.float64)))


PREVIEW_MAX_PX = 2048
"""Largest side of the decimated view a raster map is drawn from (the maps show at most
:data:`sim.maps.MAX_PX` pixels a side): the whole raster at 100 m, every 3rd pixel at 25 m."""


def _reader(store, key: str):
    """``values(start, stop)`` of the store's array ``key``."""
    return lambda a, b: store.read(key, a, b)


def _holes(cr, store, ran: str):
    """``values(start, stop)``: the coverage-hole class (:data:`HOLE_CLASSES`) of network ``ran``'s best layer."""
    def values(a, b):
        rsrp = store.read(f"{ran}/best/rsrp_indoor_dbm", a, b)
        sinr = store.read(f"{ran}/best/sinr_indoor_db", a, b)
        with np.errstate(invalid="ignore"):
            cls = np.where(~np.isfinite(rsrp), 3, np.where(rsrp < cr.rsrp_min_dbm, 2,
                                                           np.where(sinr < cr.sinr_min_db, 1, 0)))
        return cls.astype(np.float32)
    return values


@dataclass
class _Pixels:
    """Some land pixels of a grid, as :func:`sim.coverage.serving_distance_m` takes them (``grid``, ``land_flat``)."""

    grid: object
    land_flat: np.ndarray


def _serving_distance(rasters, sectors, store, lid: str):
    """``values(start, stop, pos=None)``: the distance to the serving site of land pixels ``start:stop`` (at
    positions ``pos`` of them alone: the pixels a map shows)."""
    def values(a, b, pos=None):
        best = store.read(f"{lid}/best_sector", a, b)
        if pos is None:
            return serving_distance_m(rasters, sectors, best, start=a)
        return serving_distance_m(_Pixels(rasters.grid, rasters.land_flat[a:b][pos]), sectors, best[pos])
    return values


def pixel_outputs(sc: Scenario, rasters, sectors: dict, store, busy: BusyHour | None, fibre_px, speed: bool,
                  ran_ids) -> list:
    """The per-pixel outputs of a run, in the order of their maps: per layer its :data:`COVERAGE_RASTERS`
    and best-server distance; the speed test; per layer and per network the busy-hour throughput; the
    gigabit fibre households; per network the indoor coverage holes."""
    jobs = []
    for lid in sectors:
        for name, label, unit, *_ in COVERAGE_RASTERS:
            jobs.append(_Raster(f"{lid}_{name}", _reader(store, f"{lid}/{name}"), f"{lid} {label}", unit))
        if sc.output.maps:
            jobs.append(_Raster(f"{lid}_serving_distance", _serving_distance(rasters, sectors[lid], store, lid),
                                f"{lid} best server", "m", tif=False))
    if speed:
        jobs.append(_Raster("speedtest_mean_bps", _reader(store, "speedtest_mean_bps"), SPEED_LABEL, "bit/s"))
    if busy is not None:
        for lid in busy.layers:
            jobs.append(_Raster(f"{lid}_rate_busy_bps", _reader(store, f"{lid}/throughput_indoor_bps"),
                                f"{lid} downlink flow throughput, indoor, busy hour", "bit/s"))
        for ran in busy.rate_by_ran:
            jobs.append(_Raster(f"{ran}_rate_busy_bps", _reader(store, f"{ran}/rate_busy_bps"),
                                f"{ran} downlink flow throughput, indoor, busy hour (users' layer)", "bit/s"))
    if fibre_px is not None:   # its name in the store (app.assess.assess_fibre)
        jobs.append(_Raster("fibre_gigabit_households", _reader(store, fibre_px),
                            "households passed by 10G-PON (gigabit-capable)", "households"))
    cr = sc.criteria
    for ran in ran_ids:
        jobs.append(_Raster(f"{ran}_coverage_holes_indoor", _holes(cr, store, ran),
                            f"{ran} coverage holes, indoor: 0 covered, 1 SINR < {cr.sinr_min_db:g} dB, "
                            f"2 SS-RSRP < {cr.rsrp_min_dbm:g} dBm, 3 no server", "class"))
    return jobs


SPEED_LABEL = "speedtest mean: 5G speed test, one outdoor flow in the busy hour, mean over the networks (mobile shares)"


def write_pixel_outputs(sc: Scenario, run_dir: Path, rasters, districts, sectors: dict, store, busy, fibre_px,
                        speed: bool, a: Assessment, title: str, progress=None) -> dict:
    """Every GeoTIFF of a run streamed from ``store`` (:func:`stream_pixel_outputs`), then the maps drawn from their
    previews in this process, in the order of the report; returns the report's images."""
    return draw_maps(sc, stream_pixel_outputs(sc, run_dir, rasters, districts, sectors, store, busy, fibre_px, speed,
                                              a, title, progress), run_dir, processes=1)


@dataclass
class MapJob:
    """One map of a run: ``figure()`` draws it (from previews in memory: no pixel store is read), written to ``path``;
    ``caption``: its entry in the report (None: not shown)."""

    path: Path
    caption: str | None
    figure: object


def stream_pixel_outputs(sc: Scenario, run_dir: Path, rasters, districts, sectors: dict, store, busy, fibre_px,
                         speed: bool, a: Assessment, title: str, progress=None) -> list[MapJob]:
    """Every GeoTIFF of a run streamed from ``store`` (:func:`pixel_outputs`, :func:`_stream_rasters`); returns the
    maps to draw from their previews (:class:`MapJob`), in the order of the report."""
    if not (sc.output.geotiff or sc.output.maps):
        return []
    jobs = pixel_outputs(sc, rasters, sectors, store, busy, fibre_px, speed, list(a.best_by_ran))
    counted = _counting_holes(rasters, jobs, list(a.best_by_ran)) if sc.output.maps else {}
    shown = _stream_rasters(sc, run_dir, rasters, jobs, progress)
    if not sc.output.maps:
        return []
    out: list[MapJob] = []
    inset = _inset(sc)

    def raster(name, path, caption, unit=None, **kw):
        def figure():
            grid, arr2d = shown[name]
            values = arr2d / 1e6 if name.endswith("_bps") else arr2d
            if unit is not None:   # a continuous scale fitted to the data: ``cbar_label`` is the quantity
                lo, hi = fitted_limits(values)
                scale = f"; scale {lo:g} to {hi:g}, the 2nd-98th percentile of land pixels"
                return maps.raster_map(grid, values, districts, inset_codes=inset, vmin=lo, vmax=hi,
                                       **{**kw, "cbar_label": f"{kw['cbar_label']} ({unit}{scale})"})
            return maps.raster_map(grid, values, districts, inset_codes=inset, **kw)
        out.append(MapJob(run_dir / path, caption, figure))

    for lid in sectors:
        for name, label, unit, vmin, vmax, cmap in COVERAGE_RASTERS:
            if name == "rate_indoor_bps":
                continue
            limits = {"unit": unit, "cbar_label": label} if vmin is None else {
                "vmin": vmin, "vmax": vmax, "cbar_label": f"{label} ({unit})"}
            raster(f"{lid}_{name}", f"map_{lid}_{name}.png", f"{lid} {label}", title=f"{title}: {lid} {label}",
                   cmap=cmap, **limits)
        raster(f"{lid}_serving_distance", f"map_{lid}_serving_distance.png",
               f"{lid} best server: distance to the serving site", title=f"{title}: {lid} best server",
               cbar_label="Distance to the serving site", cmap="YlOrRd", classes=SERVING_DISTANCE_CLASSES_M,
               class_labels=SERVING_DISTANCE_LABELS)
    if speed:
        raster("speedtest_mean_bps", "map_speedtest.png",
               "5G speed test: one outdoor flow in the busy hour (the expected measurement, Mbit/s)",
               title=f"{title}: 5G speed test, busy hour", cbar_label="Speed test: outdoor flow throughput (Mbit/s)",
               cmap="plasma", classes=RATE_CLASSES_MBPS, class_labels=list(RATE_CLASS_LABELS))
    if busy is not None:
        for ran in busy.rate_by_ran:
            raster(f"{ran}_rate_busy_bps", f"map_{ran}_rate_busy.png",
                   f"{ran} busy-hour flow throughput, indoor (Mbit/s)", title=f"{title}: {ran} busy-hour throughput",
                   cbar_label="Flow throughput, indoor (Mbit/s)", cmap="plasma", classes=RATE_CLASSES_MBPS,
                   class_labels=list(RATE_CLASS_LABELS))
    if fibre_px is not None:
        raster("fibre_gigabit_households", "map_fibre_gigabit_households.png",
               "Gigabit-capable (10G-PON) fibre households per pixel",
               title=f"{title}: gigabit-capable fibre households",
               cbar_label="Households passed by 10G-PON per pixel", cmap="viridis", vmin=0.0)
    cr = sc.criteria
    for ran in a.best_by_ran:
        shares = counted[ran].shares_pct() if counted[ran].complete() else hole_shares_pct(sc, rasters, store, ran)
        labels = [f"{n} ({p:.1f} % of residents)" for n, p in zip(HOLE_CLASSES, shares)]
        raster(f"{ran}_coverage_holes_indoor", f"map_{ran}_coverage_holes.png",
               f"{ran}: where indoor 5G coverage fails (coverage holes)",
               title=f"{title}: {ran} coverage holes, indoor",
               cbar_label=f"Indoor, SS-RSRP >= {cr.rsrp_min_dbm:g} dBm and SINR >= {cr.sinr_min_db:g} dB",
               cmap=ListedColormap(HOLE_COLOURS), classes=(-0.5, 0.5, 1.5, 2.5, 3.5), class_labels=labels)
    return out


MAP_PROCESSES = max(1, min(2, os.cpu_count() or 1))
"""Processes drawing a run's maps (:func:`draw_maps`): this one and, with 2, one forked
(:func:`sim.report.forked.forked_writes`); the files are the same whatever the number."""


def draw_maps(sc: Scenario, jobs: list[MapJob], run_dir: Path, processes: int | None = None) -> dict:
    """Draw and write every map of ``jobs``; returns the report's images (caption -> path) in the order of ``jobs``.

    With ``processes`` 2 (default :data:`MAP_PROCESSES`) the first map is drawn here (its frame and label layout, which
    the later maps reuse: :func:`sim.maps.reused_frames`), then the others by a forked process and by this one, each
    taking the next map not yet taken (:func:`sim.report.forked.shared_writes`: neither waits for the other while maps
    are left); the same files as drawn one after another in this process."""
    processes = MAP_PROCESSES if processes is None else int(processes)

    todo = [map_writer(sc, job) for job in jobs]
    if processes < 2 or len(todo) < 3:
        for write in todo:
            write()
    else:
        todo[0]()
        with forked.shared_writes(todo[1:], run_dir) as mine:
            for write in mine:
                write()
    return {job.caption: job.path for job in jobs if job.caption is not None}


class _CountedHoles:
    """A coverage-holes raster's ``values(start, stop)`` that also adds up the residents of each class as the chunks
    go by: :func:`hole_shares_pct` without reading the store again, the same sums when every chunk of
    :func:`sim.pixelstore.chunks` came once, in order (:meth:`complete`)."""

    def __init__(self, rasters, values):
        self.rasters, self.values = rasters, values
        self.per = np.zeros(len(HOLE_CLASSES))
        self.seen: list = []

    def __call__(self, a, b):
        cls = self.values(a, b)
        pop = self.rasters.population_at(a, b)
        self.per = bincount_onto(self.per, cls.astype(np.intp), np.where(np.isfinite(pop), pop, 0.0))
        self.seen.append((a, b))
        return cls

    def complete(self) -> bool:
        return self.seen == chunks(self.rasters.n_land)

    def shares_pct(self) -> list[float]:
        return [100.0 * v / max(self.per.sum(), 1.0) for v in self.per]


def _counting_holes(rasters, jobs: list, ran_ids) -> dict:
    """Per network, its coverage-holes job of ``jobs`` made to count residents per class (:class:`_CountedHoles`)."""
    out = {}
    for job in jobs:
        for ran in ran_ids:
            if job.name == f"{ran}_coverage_holes_indoor":
                job.values = out[ran] = _CountedHoles(rasters, job.values)
    return out


def hole_shares_pct(sc: Scenario, rasters, store, ran: str) -> list[float]:
    """Residents in each class of :data:`HOLE_CLASSES` of network ``ran``, % (chunk by chunk over ``store``)."""
    counted = _CountedHoles(rasters, _holes(sc.criteria, store, ran))
    for a, b in chunks(rasters.n_land):
        counted(a, b)
    return counted.shares_pct()


def write_busy_tables(run_dir: Path, busy: BusyHour | None, simpy_rows, day_rows, pon_rows) -> None:
    """``cells.csv`` (and its typed copy ``cells.parquet``), ``simpy_cells.csv``, ``simpy_day.csv`` and
    ``pon_busy_hour.csv`` (those a run has)."""
    if busy is not None:
        files.write_csv(run_dir / "cells.csv", busy.cells)
        files.write_parquet(run_dir / "cells.parquet", busy.cells)
        if simpy_rows:
            files.write_csv(run_dir / "simpy_cells.csv", simpy_rows)
        if day_rows:
            files.write_csv(run_dir / "simpy_day.csv", day_rows)
    if pon_rows:
        files.write_csv(run_dir / "pon_busy_hour.csv", pon_rows)


def criteria_panels(table) -> dict:
    """Panel title -> per-district passed, for every criterion with a threshold and district values."""
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


def benchmark_panels(table) -> list[str]:
    """Titles of the :func:`criteria_panels` whose threshold is a benchmark (not a criterion)."""
    rows = table[(table["scope"] != "citywide") & table["op"].notna()]
    if "standing" not in rows:
        return []
    keys = set(rows.loc[rows["standing"] == "benchmark", "key"])
    out = []
    for title in criteria_panels(table):
        label = title.replace("\n", " ")
        if any(label.startswith(INDICATORS[k].label) for k in keys if k in INDICATORS):
            out.append(title)
    return out


def write_overview_maps(sc: Scenario, run_dir: Path, districts, sites, table, title: str, images: dict,
                        a: Assessment | None = None) -> dict:
    """The maps of :func:`overview_map_jobs` drawn in this process after the maps of ``images``; returns every image
    in the report's order (:func:`report_order`)."""
    return report_order({**images, **draw_maps(sc, overview_map_jobs(sc, run_dir, districts, sites, table, title, a),
                                               run_dir, processes=1)})


def overview_map_jobs(sc: Scenario, run_dir: Path, districts, sites, table, title: str,
                      a: Assessment | None = None) -> list[MapJob]:
    """The maps that need no raster (:class:`MapJob`): the key places reached (those of ``a``), the districts, sites,
    5G BS per 10,000 and the criteria panels."""
    inset = _inset(sc)
    jobs = []
    if a is not None and a.places is not None and len(a.places) and a.reached:
        n = np.sum([np.asarray(r, dtype=bool) for r in a.reached.values()], axis=0)
        jobs.append(MapJob(run_dir / "map_key_places.png", "Key places reached by 5G indoors (labelled)",
                           lambda: maps.key_places_map(districts, a.places.geometry.x.to_numpy(),
                                                       a.places.geometry.y.to_numpy(), a.places["name_en"].to_numpy(),
                                                       n, len(a.reached), title=f"{title}: key places reached indoors",
                                                       inset_codes=inset)))
    masts = sites.mast_columns()
    passed = table[(table.scope != "citywide") & (table.key == "bs_5g_per_10k")]["passed"].to_numpy()
    jobs += [
        MapJob(run_dir / "map_districts.png", "Districts",
               lambda: maps.district_map(districts, title=f"{title}: districts", inset_codes=inset)),
        MapJob(run_dir / "map_sites.png", "5G masts (one point per mast; sectors in sites.gpkg)",
               lambda: maps.sites_map(districts, masts["x_m"], masts["y_m"], masts["network"],
                                      title=f"{title}: 5G masts", inset_codes=inset)),
        MapJob(run_dir / "map_bs_per_10k.png", "Districts passing: 5G base stations per 10,000",
               lambda: maps.choropleth(districts, passed, title=f"{title}: > 12 5G base stations per 10,000 residents",
                                       inset_codes=inset)),
    ]
    panels = criteria_panels(table)
    if panels:
        jobs.append(MapJob(run_dir / "map_criteria.png", CRITERIA_MAP,
                           lambda: maps.criteria_panels(districts, panels,
                                                        title=f"{title}: districts against each criterion",
                                                        benchmarks=benchmark_panels(table))))
    return jobs


CRITERIA_MAP = "Districts against each One-Gbps city criterion"


def map_writer(sc: Scenario, job: MapJob):
    """A closure that draws ``job``'s map and writes its PNG (at ``output.dpi``)."""
    return lambda: files.write_png(job.figure(), job.path, dpi=sc.output.dpi)


def images_of(jobs: list[MapJob]) -> dict:
    """The report's images (caption -> path) of ``jobs``, in their order."""
    return {job.caption: job.path for job in jobs if job.caption is not None}


@contextlib.contextmanager
def alongside(writes: list, run_dir: Path, processes: int | None = None):
    """Run ``writes`` (closures that write files) alongside the block: with ``processes`` 2 (default
    :data:`MAP_PROCESSES`) in a forked process (:func:`sim.report.forked.forked_writes`: its errors raised when the
    block ends), else here, before the block."""
    processes = MAP_PROCESSES if processes is None else int(processes)
    if processes < 2:
        for write in writes:
            write()
        yield
        return
    with forked.forked_writes(writes, run_dir):
        yield


def report_order(images: dict) -> dict:
    """The report's images (caption -> path) with the maps that answer "where" first: the criteria, coverage holes,
    key places and districts maps, then the others in their order."""
    first = [c for c in images if c == CRITERIA_MAP]
    first += [c for c in images if "coverage holes" in c] + [c for c in images if c.startswith("Key places")]
    first += [c for c in images if c == "Districts"]
    return {**{c: images[c] for c in first}, **images}


def _district_rows(grid_rows, a: Assessment) -> list[dict]:
    """The grid rows of each district with its sites, site densities and indicators."""
    out = []
    for i, r in enumerate(grid_rows):
        vals = {k: float(np.asarray(v)[i]) for k, v in a.by_district.items()}
        out.append({**r,
                    "sites_5g": int(a.n_sites_d[i]),
                    "sites_5g_by_ran": {ran: int(v[i]) for ran, v in a.sites_by_ran.items()},
                    "sites_5g_per_km2": round(float(a.density["sites_5g_per_km2"][i]), 4),
                    "sites_5g_per_10k": round(float(a.density["sites_5g_per_10k"][i]), 4),
                    "sites_area_basis": str(a.density["area_basis"][i]),
                    "indicators": {k: (v if np.isfinite(v) else None) for k, v in vals.items()}})
    return out


def build_summary(sc: Scenario, rasters, grid_rows, a: Assessment, plan, busy: BusyHour | None, simpy_rows,
                  day_rows, pon_rows, timings_s: dict, region: dict | None = None) -> dict:
    """The content of ``summary.json`` (schema: :mod:`sim.report`); ``outputs`` is filled when written."""
    g = rasters.grid
    summary = {
        "schema_version": runfolder.SUMMARY_SCHEMA_VERSION,
        "scenario": {"name": sc.scenario.name, "year": sc.scenario.year, "seed": sc.scenario.seed,
                     "config_path": str(sc.source_path), "description": sc.scenario.description,
                     "created_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")},
        "inputs": {"sites": dict(plan.site_counts), "resolution_m": sc.region.resolution_m,
                   "k_sites": sc.radio.k_sites, "default_load": sc.radio.default_load,
                   "layers": [lid for lid, _, _ in sc.layers()], "deployment": sc.deployment.strategy,
                   "site_file": plan.site_file, "small_cells": plan.small_cells,
                   **({"extra_site_files": plan.extra_site_files} if plan.extra_site_files else {})},
        "sites": a.density["citywide"] | {"by_ran": {ran: int(v.sum()) for ran, v in a.sites_by_ran.items()},
                                          "small_cells": int(sum(plan.small_cells.values()))},
        **({"region": region} if region is not None else {}),
        "grid": {"crs": g.crs, "res_m": g.res_m, "shape": [int(v) for v in g.shape],
                 "x0_m": g.x0_m, "y0_m": g.y0_m, "land_pixels": rasters.n_land},
        "districts": _district_rows(grid_rows, a),
        "citywide": {k: (float(v) if np.isfinite(v) else None) for k, v in a.citywide.items()},
        "criteria": runfolder.criteria_records(a.table),
        "verdict": {k: v for k, v in a.verdict.items() if k in ("n_passed", "n_criteria")},
        "timings_s": timings_s,
        "versions": files.versions(),
        "outputs": [],
    }
    if busy is not None or pon_rows:
        summary["busy_hour"] = busy_hour_summary(busy, simpy_rows, day_rows, pon_rows)
        summary["methods"] = render.BUSY_HOUR_METHODS
    return summary


_REPORT_FILES = ("report.md", "report.html", "summary.json", "grid_summary.json")
"""Files :func:`write_summary_and_reports` writes (listed before they exist, so the reports link them)."""


def write_summary_and_reports(run_dir: Path, summary: dict, a: Assessment, images: dict) -> None:
    """``report.md``, ``report.html`` (linking every file), ``grid_summary.json``, then ``summary.json``
    listing every file the run wrote (not a walk of the folder), and the run folder's marker with the same list."""
    summary["outputs"] = sorted(set(files.written_outputs(run_dir)) | set(_REPORT_FILES))
    render.write_report_md(run_dir / "report.md", summary, a.table, images, verdict=a.verdict)
    render.write_report_html(run_dir / "report.html", summary, a.table, images, verdict=a.verdict)
    files.write_json(run_dir / "grid_summary.json", {k: summary[k] for k in ("scenario", "grid", "districts")})
    runfolder.validate_summary(summary)
    files.write_json(run_dir / "summary.json", summary)
    files.finish_run_dir(run_dir, summary["scenario"]["name"], summary["outputs"])


def headline(sc: Scenario, a: Assessment) -> str:
    """The one line a run prints: criteria passed, 5G BS per 10,000, indoor population coverage."""
    v = a.verdict
    return (f"{sc.scenario.name}: {v.get('n_passed')} of {v.get('n_criteria')} confirmed One-Gbps city "
            f"criteria pass citywide ({len(v.get('above', []))} of {v.get('n_benchmarks', 0)} benchmarks reached); "
            f"5G BS per 10,000 residents {a.citywide['bs_5g_per_10k']:.1f}; "
            f"indoor 5G population coverage {a.citywide.get('pop_cov_5g_indoor_pct', float('nan')):.1f} %")
