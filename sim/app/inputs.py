"""The inputs of a scenario: region, grid, site file and the sites of every radio network.

What ``run``, ``plan`` and ``validate`` read and build before any physics: the districts of
the scenario (:func:`load_region`), the city rasters (:func:`build_rasters`), the sites of
``deployment.site_file`` split over the radio networks (:func:`read_site_file`) and the
sector-carrier table by density or from that file plus small cells (:func:`build_sites`),
and each layer's radio parameters (:func:`layer_radio`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import placement as PL
from .. import sitefiles as SF
from .. import sites as S
from ..config import Scenario
from ..errors import ConfigError, InputError, SiteFileError
from ..geodata import ATTRIBUTION, CENSUS_SOURCE, default_geodata_dir, read_districts, read_key_places
from ..grid import build_city_rasters
from ..linkfield import DeviceClass, n_prb_aggregated
from ..linkmodel import nr_peak_rate_bps
from ..results import LayerRadio

__all__ = ["BUSY_TOP_M", "load_region", "region_info", "build_rasters", "grid_summary_rows", "file_operators",
           "SiteFile", "read_site_file", "site_counts", "carrier_specs", "tilt_args", "district_classes", "SitePlan",
           "build_sites", "layer_radio", "device_classes", "device_peak_rates",
           "link_summary", "ssb_gain_offset_db", "MAX_REPORTED_BAD_ROWS", "DISTRICT_INPUT_FIELDS",
           "district_inputs", "fiveg_user_share_by_district", "check_district_codes", "SITE_ROW_BYTES",
           "OUTPUT_BYTES_PER_PIXEL", "PROCESS_BASE_BYTES", "KERNEL_BYTES_PER_PAIR", "memory_need_bytes",
           "memory_limit_bytes", "check_memory", "check_inputs", "check_layers_have_sectors", "check_input_paths"]


BUSY_TOP_M = 8
"""Strongest interferers kept per pixel for the busy-hour fixed point (``compute_coverage(top_m=...)``)."""


def load_region(sc: Scenario):
    """Districts of the scenario (all, or ``region.district_codes``), projected to the grid CRS.

    ``region.crs``, or the UTM zone of the region's centroid (:func:`sim.geodata.utm_crs_of`;
    EPSG:32651 for Shanghai). The zone is the whole polygon file's, before any subset.
    Every district code the scenario names (``region.district_codes``, ``deployment``'s
    central and rural classes and explicit weights, ``planning.district_codes``) must be a
    code of the districts file: a :class:`~sim.errors.ConfigError` names the key otherwise.
    """
    districts = read_districts(sc.region.districts, sc.region.census, crs=sc.region.crs or None)
    check_district_codes(sc, set(districts["code"]))
    codes = sc.region.district_codes
    if codes:
        n_file = len(districts)
        districts = districts[districts["code"].isin(codes)].reset_index(drop=True)
        districts.attrs["n_districts_file"] = n_file
    else:
        districts.attrs["n_districts_file"] = len(districts)
    return districts


def check_district_codes(sc: Scenario, known: set) -> None:
    """Each district code used by the scenario is one of ``known`` (the districts file's)."""
    dep = sc.deployment
    used = [(f"region.district_codes[{i}]", c) for i, c in enumerate(sc.region.district_codes)]
    used += [(f"deployment.central_districts[{i}]", c) for i, c in enumerate(dep.central_districts)]
    used += [(f"deployment.rural_districts[{i}]", c) for i, c in enumerate(dep.rural_districts)]
    used += [(f"planning.district_codes[{i}]", c) for i, c in enumerate(sc.planning.district_codes)]
    if dep.distribute_by == "explicit":
        used += [(f"deployment.explicit_counts.{c}", c) for c in (dep.explicit_counts or {})]
    by_code = getattr(getattr(sc, "district_inputs", None), "by_code", None) or {}
    used += [(f"district_inputs.by_code.{c}", c) for c in by_code]
    for key, code in used:
        if code not in known:
            raise ConfigError(sc.source_path, key,
                              f"expected a district code of {Path(sc.region.districts).name}, got {code!r}")


SITE_ROW_BYTES = 9_000
"""Peak memory per site-file row of a whole run (reading, the sector table of three layers, the
outputs that list sites), measured on a 200,000-row CSV file (benchmarks/bench_run_sites.py):
about 8.4 kB per row; rounded up."""

OUTPUT_BYTES_PER_PIXEL = 64
"""Peak memory per pixel of the largest output drawn whole: a map of at most
``app.outputs.PREVIEW_MAX_PX`` pixels a side (the raster as float64, its RGBA image and matplotlib's
resampled copy); the GeoTIFFs are written window by window (:mod:`sim.report.rasterfile`)."""

STREAM_BYTES_PER_COLUMN = 20 * 256 * 4 * 2
"""Memory per grid column of the GeoTIFFs written at once (about 20 rasters, each a block of 256 rows of
float32 buffered, and GDAL's copy of it)."""


KERNEL_BYTES_PER_PAIR = 16
"""Working memory of the kernel per pixel x candidate-sector pair of a block, per worker process
(``radio.block_size`` x ``radio.k_sites`` x ``deployment.n_sectors``): 6 B measured with
tracemalloc for 32,768-pixel blocks on configs/tiny.toml at 20 m (the tile search shares
candidates); 16 B allowed."""

PROCESS_BASE_BYTES = 400 * 2**20
"""Memory of the process before any data: Python with numpy, pandas, geopandas, rasterio,
matplotlib and simpy loaded (217 MiB peak resident for a whole 500 m one-district run,
tests/bad_inputs/base.toml), rounded up."""


def memory_need_bytes(sc: Scenario, grid, n_site_rows: int = 0, districts=None) -> dict[str, int]:
    """The memory a run needs, by part: rasters and coverage layers (with the busy hour's
    interference terms), the site table, and the largest output; ``total`` sums them."""
    from ..grid import estimate_memory_bytes

    placed = site_counts(sc, districts) if districts is not None else dict(sc.deployment.sites or {})
    parts = {
        "libraries": PROCESS_BASE_BYTES,
        "rasters": estimate_memory_bytes(grid),
        "sites": int(n_site_rows + sum(placed.values())
                     + sum((sc.deployment.small_cells or {}).values())) * SITE_ROW_BYTES,
        "largest output": int(min(grid.n_pixels, 2048 ** 2) * OUTPUT_BYTES_PER_PIXEL
                              + grid.shape[1] * STREAM_BYTES_PER_COLUMN),
        "kernel blocks": int(_workers(sc) * min(sc.radio.block_size, grid.n_pixels) * sc.radio.k_sites
                             * sc.deployment.n_sectors * KERNEL_BYTES_PER_PAIR),
    }
    parts["total"] = sum(parts.values())
    return parts


def _workers(sc: Scenario) -> int:
    import os

    return int(sc.radio.workers) if sc.radio.workers else max(1, os.cpu_count() or 1)


def memory_limit_bytes(sc: Scenario) -> int:
    """``region.max_memory_gb`` in bytes, or half this machine's memory when 0."""
    from ..grid import default_memory_limit_bytes

    return int(sc.region.max_memory_gb * 2**30) if sc.region.max_memory_gb > 0 else default_memory_limit_bytes()


def check_memory(sc: Scenario, districts) -> dict[str, int]:
    """Refuse, before any work, a run whose estimate (:func:`memory_need_bytes`) exceeds the limit.

    Counts the rows of ``deployment.site_file`` (without parsing it) and refuses a file of more
    than :data:`sim.sitefiles.MAX_SITE_ROWS` rows.
    """
    from ..grid import grid_for_bounds

    n_rows = 0
    dep = sc.deployment
    files_ = [(dep.site_file, dep.site_format)] if dep.strategy == "file" else []
    files_ += [(p, "csv") for p in dep.extra_site_files]
    for path, fmt in files_:
        n = SF.count_rows(path, fmt)
        if n > SF.MAX_SITE_ROWS:
            raise SiteFileError(path, None, f"{n:,} rows, more than the {SF.MAX_SITE_ROWS:,} a run reads; "
                                            "keep the sites of the region (and its operators) only")
        n_rows += n
    if dep.strategy == "density":
        from ..config import MAX_SITES_PER_NETWORK

        for ran, n in site_counts(sc, districts).items():
            if n > MAX_SITES_PER_NETWORK:
                raise ConfigError(sc.source_path, f"deployment.sites_per_10k.{ran}",
                                  f"expected at most {MAX_SITES_PER_NETWORK:,} sites per network, got {n:,} "
                                  "for the region's residents")
    grid = grid_for_bounds(districts.total_bounds, sc.region.resolution_m, districts.crs.to_string())
    need = memory_need_bytes(sc, grid, n_rows, districts)
    limit = memory_limit_bytes(sc)
    if need["total"] > limit:
        what = ", ".join(f"{k} {v / 2**30:.1f}" for k, v in need.items() if k != "total")
        key = "region.max_memory_gb" if sc.region.max_memory_gb > 0 else "region.max_memory_gb (0: half the RAM)"
        raise ConfigError(sc.source_path, key,
                          f"a run needs about {need['total'] / 2**30:.1f} GiB ({what} GiB; {grid.shape[0]} x "
                          f"{grid.shape[1]} pixels at {sc.region.resolution_m:g} m, {n_rows:,} site-file rows), "
                          f"more than the {limit / 2**30:.1f} GiB allowed: use a coarser region.resolution_m, "
                          "fewer sites, or a higher max_memory_gb")
    return need


def check_inputs(sc: Scenario):
    """Every check of a scenario's inputs that needs no computation, in the order ``run`` meets them:
    the districts and census (and the codes the scenario names), the key places, the memory
    estimate (with the site file's row count). Returns the districts of the region."""
    check_input_paths(sc)
    districts = load_region(sc)
    read_key_places(sc.region.key_places)
    check_memory(sc, districts)
    return districts


def check_input_paths(sc: Scenario) -> None:
    """Each input file the scenario names exists and is a file; the error names the config key."""
    paths = [("region.districts", sc.region.districts), ("region.census", sc.region.census),
             ("region.key_places", sc.region.key_places)]
    if sc.deployment.strategy == "file":
        paths.append(("deployment.site_file", sc.deployment.site_file))
    paths += [(f"deployment.extra_site_files[{i}]", p) for i, p in enumerate(sc.deployment.extra_site_files)]
    for key, path in paths:
        path = Path(path)
        if not path.is_file():
            what = "a file, got a folder" if path.is_dir() else "an existing file"
            raise ConfigError(sc.source_path, key, f"expected {what}: {path} (file not found)"
                              if not path.exists() else f"expected {what}: {path}")


def check_layers_have_sectors(sc: Scenario, table) -> None:
    """Every coverage layer has at least one sector (else its coverage cannot be computed)."""
    dep = sc.deployment
    present = set(np.unique(table.layer).tolist()) if table is not None and table.n_sectors else set()
    for lid, op, _c in sc.layers():
        if lid in present:
            continue
        if dep.strategy == "file":
            raise SiteFileError(dep.site_file, "column band",
                                f"no site of radio network {op.id} carries layer {lid}; expected at least one "
                                "(give the band in the band column, or leave it empty for every carrier)")
        raise ConfigError(sc.source_path, f"deployment.sites.{op.id}",
                          f"expected at least 1 site: layer {lid} has none")
def region_info(sc: Scenario, districts) -> dict:
    """The region as the report names it: city names, districts of the file, grid CRS, data sources.

    Sources: ``region.sources``; without them, the shipped data's (:data:`sim.geodata.ATTRIBUTION`,
    :data:`sim.geodata.CENSUS_SOURCE`) when the region's files are the shipped ones, else the
    file names (the report then cites what it used, never another city's sources).
    """
    r = sc.region
    if r.sources:
        sources = list(r.sources)
    elif Path(r.districts).resolve().parent == default_geodata_dir().resolve() and \
            Path(r.census).resolve().parent == default_geodata_dir().resolve():
        sources = [ATTRIBUTION, CENSUS_SOURCE]
    else:
        sources = [f"District polygons: {Path(r.districts).name}", f"Census table: {Path(r.census).name}"]
    return {"name": r.name, "name_zh": r.name_zh, "crs": districts.crs.to_string(),
            "n_districts_file": int(districts.attrs.get("n_districts_file", len(districts))), "sources": sources}


def build_rasters(sc: Scenario, districts):
    """The city rasters at ``region.resolution_m``, refused when the memory estimate exceeds the limit
    (:func:`sim.grid.estimate_memory_bytes`: the layers' per-pixel results stream through disk)."""
    limit = int(sc.region.max_memory_gb * 2**30) if sc.region.max_memory_gb > 0 else None
    return build_city_rasters(districts, sc.region.resolution_m, max_memory_bytes=limit)


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


def file_operators(sc: Scenario) -> dict[str, str]:
    """Operator name in a site file -> radio network (RAN id) of the scenario.

    The scenario's own operator ids (``cu`` -> the network that serves it) and the
    standard ids of :data:`sim.sitefiles.RAN_OF_OPERATOR` whose network the scenario has
    (``cucc``, ``ctcc`` -> ``ctcu``); the scenario's ids win.
    """
    rans = set(sc.ran_ids)
    out = {name: ran for name, ran in SF.RAN_OF_OPERATOR.items() if ran in rans}
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


def site_counts(sc: Scenario, districts) -> dict[str, int]:
    """Macro sites per radio network: ``deployment.sites``, or ``sites_per_10k`` times the region's residents."""
    dep = sc.deployment
    if dep.sites_per_10k is None:
        return {k: int(v) for k, v in (dep.sites or {}).items()}
    pop = float(districts["population"].sum())
    return {k: int(round(v * pop / 1e4)) for k, v in dep.sites_per_10k.items()}


def read_site_file(sc: Scenario, districts, path=None, site_format=None, every_ran: bool = True) -> SiteFile:
    """Read ``deployment.site_file`` and split its sites over the scenario's radio networks.

    A site's operator (CSV/GeoJSON ``operator`` column, OpenCellID MNC) picks its network
    (:func:`file_operators`); with one network the column may be left out. Bands must be
    carriers of the scenario; a site whose bands are none of its own network's carriers is
    a bad row. Sites of one network at the same position (1 m) are merged into one, the
    first kept (the shared Telecom/Unicom network appears once per operator in
    OpenCellID). Every network of the scenario must keep at least one site: a
    :class:`~sim.errors.SiteFileError` says which has none.
    """
    dep = sc.deployment
    path = dep.site_file if path is None else path
    fmt = dep.site_format if site_format is None else site_format
    rans = list(sc.ran_ids)
    op_ran = file_operators(sc)
    bands_of = {op.id: [c.band for c in op.carriers] for op in sc.operators if op.carriers}
    if fmt == "opencellid":
        wanted = [o for o, r in SF.RAN_OF_OPERATOR.items() if r in rans]
        sites, rep = SF.read_opencellid(path, districts, operators=wanted, on_bad_row=dep.on_bad_row)
    else:
        all_bands = sorted({b for bs in bands_of.values() for b in bs})
        kw = dict(operators=sorted(op_ran), bands=all_bands, operator=rans[0] if len(rans) == 1 else None,
                  on_bad_row=dep.on_bad_row, operator_required=len(rans) > 1)
        if fmt == "csv":
            delimiter = dep.site_delimiter if site_format is None else ","
            sites, rep = SF.read_sites_csv(path, districts, delimiter=delimiter, **kw)
        else:
            sites, rep = SF.read_sites_geojson(path, districts, **kw)
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
        if not len(by_ran[r]) and every_ran:
            names = sorted(o for o, rr in op_ran.items() if rr == r)
            raise SiteFileError(path, "column operator",
                                f"no site of radio network {r!r} (operators {', '.join(names)}) inside the region "
                                f"({rep.n_rows:,} rows, {n_bad:,} bad, {rep.n_outside:,} outside, "
                                f"{rep.n_filtered:,} filtered); expected at least one: add its sites to the file "
                                "or remove the network from the scenario")
    info = {"path": str(path), "format": fmt, "on_bad_row": dep.on_bad_row, "rows": rep.n_rows,
            "kept": rep.n_kept - (n_bad - rep.n_bad), "bad": n_bad, "outside_region": rep.n_outside,
            "filtered": rep.n_filtered, "merged_colocated": int(merged),
            "sites_by_ran": {r: len(t) for r, t in by_ran.items()}, "first_bad_rows": bad_msgs[:MAX_REPORTED_BAD_ROWS]}
    return SiteFile(by_ran=by_ran, info=info)


def carrier_specs(op, bands=(), small=None):
    """The carriers of an operator's network as :class:`~sim.sites.CarrierSpec` (small cells: their radio)."""
    out = []
    for c in op.carriers:
        if bands and c.band not in bands:
            continue
        a = small.antenna if small is not None else c.antenna
        out.append(S.CarrierSpec(layer=f"{op.id}-{c.band}", band=c.band,
                                 ptx_dbm=small.ptx_dbm if small is not None else c.ptx_dbm, g_max_dbi=a.g_max_dbi,
                                 hpbw_h_deg=a.hpbw_h_deg, hpbw_v_deg=a.hpbw_v_deg, tilt_deg=a.tilt_deg))
    return out


def tilt_args(sc: Scenario, x_m, y_m, query_x_m=None, query_y_m=None) -> dict:
    """Keyword arguments of :func:`sim.sites.build_site_table` for ``deployment.downtilt``.

    'spacing': each macro site's local spacing to the other sites of its radio network
    (co-channel: :func:`sim.sites.site_spacing_m`), or of query points (planned candidates)
    to the network's sites; 'fixed': none (the carriers' tilt).
    """
    dep = sc.deployment
    if dep.downtilt != "spacing":
        return {}
    spacing = S.site_spacing_m(x_m, y_m, query_x_m=query_x_m, query_y_m=query_y_m)
    return {"spacing_m": spacing, "h_ut_m": sc.radio.h_ut_m, "max_tilt_deg": dep.max_downtilt_deg}


def _placement_error(sc: Scenario, key: str, exc):
    """A density placement that does not fit, as the config error it is."""
    return ConfigError(sc.source_path, key, f"too many sites for {exc.field}: {exc.message}")


def district_classes(sc: Scenario, codes) -> tuple[list[str], dict]:
    """Class of each district (central / suburban / rural) and each class's :class:`sim.sites.SiteClass`."""
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
    extra_site_files: list = field(default_factory=list)
    site_counts: dict = field(default_factory=dict)


def build_sites(sc: Scenario, districts, rng, site_file: SiteFile | None = None) -> SitePlan:
    """The sector-carrier table of every radio network: by density or from the site file,
    plus the UMi small cells of ``deployment.small_cells`` in the central districts.

    Macro sites are drawn first and small cells after, so turning small cells on does not
    move a macro site. A count the district cannot hold at a 50 m spacing is a
    :class:`~sim.errors.ConfigError` on ``deployment.sites.<ran>`` (or ``small_cells``).
    """
    dep = sc.deployment
    codes = list(districts["code"])
    district_class, classes = district_classes(sc, codes)
    if dep.strategy == "file" and site_file is None:
        site_file = read_site_file(sc, districts)
    if dep.strategy == "density":
        if dep.distribute_by == "explicit":
            weights = np.array([float(dep.explicit_counts.get(c, 0)) for c in codes])
        else:
            weights = PL.district_weights(districts, dep.distribute_by, population_weight=dep.population_weight)
    table = None
    start = 0
    for op in sc.operators:
        if not op.carriers:
            continue
        if dep.strategy == "file":
            physical = site_file.by_ran[op.id]
        else:
            counts = PL.allocate_counts(site_counts(sc, districts)[op.id], weights)
            if dep.central_site_factor != 1.0:
                central_d = np.array([c == "central" for c in district_class])
                counts = np.where(central_d, np.round(counts * dep.central_site_factor), counts).astype(counts.dtype)
            # minimum inter-site distance 50 m (ASSUMPTION: denser than any macro grid);
            # sites may share a coarse pixel, the kernel evaluates them at their true position
            try:
                placed = PL.place_by_density(districts, counts, rng, dep.jitter_frac, min_spacing_m=50.0)
            except InputError as exc:
                raise _placement_error(sc, f"deployment.sites.{op.id}", exc) from None
            physical = placed.to_sites(crs=districts.crs.to_string())
        t = S.build_site_table(physical, ran=op.id, carriers=carrier_specs(op), rng=rng,
                               district_class=district_class, site_classes=classes,
                               n_sectors=dep.n_sectors, site_id_start=start,
                               **tilt_args(sc, physical.x_m, physical.y_m))
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
        counts = PL.allocate_counts(n, pop if pop.sum() > 0 else central.astype(float))
        sc_cfg = dep.small_cell
        try:
            t = PL.build_small_cells(districts, counts, rng, ran=op.id,
                                    carriers=carrier_specs(op, sc_cfg.bands, sc_cfg), h_bs_m=sc_cfg.h_bs_m,
                                    n_sectors=sc_cfg.n_sectors, jitter_frac=dep.jitter_frac, site_id_start=start,
                                    min_spacing_m=50.0, source="small-cell")
        except InputError as exc:
            raise _placement_error(sc, f"deployment.small_cells.{op.id}", exc) from None
        start = int(t.site_id.max()) + 1
        table = table.concat(t)
        small[op.id] = n
    extra = []
    for path in dep.extra_site_files:
        table, start, info = _add_extra_sites(sc, districts, table, path, rng, district_class, classes, start)
        extra.append(info)
    check_layers_have_sectors(sc, table)
    return SitePlan(table=table, site_file=site_file.info if site_file is not None else None, small_cells=small,
                    extra_site_files=extra,
                    site_counts=site_counts(sc, districts) if dep.strategy == "density" else {})


def _add_extra_sites(sc: Scenario, districts, table, path, rng, district_class, classes, start):
    """The sites of one ``deployment.extra_site_files`` CSV added to ``table`` (their own network's carriers).

    A site without its own tilt gets the spacing tilt to its network's macro sites (with
    ``downtilt = "spacing"``), as a planned site does in ``gigacity plan``.
    """
    extra = read_site_file(sc, districts, path=path, site_format="csv", every_ran=False)
    for op in sc.operators:
        physical = extra.by_ran.get(op.id)
        if not op.carriers or physical is None or not len(physical):
            continue
        mine = table.select((table.ran == op.id) & (table.source != "small-cell"))
        _, first = np.unique(mine.site_id, return_index=True)
        xs, ys = np.concatenate([mine.x_m[first], physical.x_m]), np.concatenate([mine.y_m[first], physical.y_m])
        t = S.build_site_table(physical, ran=op.id, carriers=carrier_specs(op), rng=rng,
                               district_class=district_class, site_classes=classes,
                               n_sectors=sc.deployment.n_sectors, site_id_start=start,
                               **tilt_args(sc, xs, ys, physical.x_m, physical.y_m))
        start = int(t.site_id.max()) + 1
        table = table.concat(t)
    return table, start, extra.info



def ssb_gain_offset_db(antenna) -> float:
    """SSB beam peak gain minus traffic beam peak gain of a carrier's antenna, dB (0 when not given)."""
    return 0.0 if antenna.ssb_g_max_dbi is None else float(antenna.ssb_g_max_dbi - antenna.g_max_dbi)


def device_classes(sc: Scenario, carrier) -> tuple:
    """``(share, n_prb, max_layers)`` of each ``[[radio.devices]]`` class on one carrier (empty: none).

    A class aggregates the widest ``carriers[band]`` carriers of the operator's block
    (:func:`sim.linkfield.n_prb_aggregated`) with ``min(rx[band], carrier.max_layers)`` layers.
    """
    out = []
    for d in sc.radio.devices:
        rx = (d.rx or {}).get(carrier.band, carrier.max_layers)
        n_prb = n_prb_aggregated(carrier.bw_mhz * 1e6, carrier.scs_khz, int(d.carriers[carrier.band]))
        out.append(DeviceClass(d.share, n_prb, min(int(rx), carrier.max_layers)))
    return tuple(out)


def device_peak_rates(sc: Scenario) -> list[dict]:
    """Each device class's TS 38.306 §4.1.2 peak rate per band (OH ``radio.overhead``, 256QAM, f = 1)."""
    rows = []
    for d in sc.radio.devices:
        peak = {}
        for _, _, c in sc.layers():
            n_prb = n_prb_aggregated(c.bw_mhz * 1e6, c.scs_khz, int(d.carriers[c.band]))
            layers = min(int((d.rx or {}).get(c.band, c.max_layers)), c.max_layers)
            peak[c.band] = float(nr_peak_rate_bps(n_prb, c.scs_khz, layers, 8, overhead=sc.radio.overhead))
        rows.append({"name": d.name, "share": d.share, "carriers": dict(d.carriers), "peak_rate_bps": peak})
    return rows


def link_summary(sc: Scenario) -> dict:
    """The link-model settings of ``summary.json`` ``inputs.link``, with each device class's peak rates."""
    r = sc.radio
    return {"field_overhead": r.overhead if r.field_overhead < 0 else r.field_overhead,
            "peak_rate_overhead": r.overhead, "sinr_max_db": r.sinr_max_db or None, "min_load": r.min_load,
            "rank_thresholds_db": list(r.rank_thresholds_db),
            "rank_thresholds_los_db": list(r.rank_thresholds_los_db) or None,
            "rank_model": r.rank_model, "los_max_layers": r.los_max_layers or None,
            "ue_antenna_gain_dbi": r.ue_antenna_gain_dbi, "body_loss_db": r.body_loss_db,
            "devices": device_peak_rates(sc)}


def layer_radio(sc: Scenario, layer_id: str, carrier) -> LayerRadio:
    """The kernel's radio parameters of one layer: the carrier's and ``[radio]``'s.

    Rates use ``radio.field_overhead`` (``radio.overhead``, the TS 38.306 peak-rate convention,
    when it is -1), the SINR ceiling, the rank model, ``min_load`` and the device classes.
    """
    r = sc.radio
    oh = r.overhead if r.field_overhead < 0 else r.field_overhead
    return LayerRadio(layer_id=layer_id, fc_ghz=carrier.fc_ghz, bw_hz=carrier.bw_mhz * 1e6,
                      scs_khz=carrier.scs_khz, noise_figure_db=r.noise_figure_db,
                      max_layers=carrier.max_layers, dl_share=carrier.dl_share, overhead=oh,
                      h_ut_m=r.h_ut_m, los_mode=r.los_mode, o2i_high_share=r.o2i_high_loss_share,
                      sla_v_db=carrier.antenna.sla_v_db, a_max_db=carrier.antenna.a_max_db,
                      se_method=r.se_method, sinr_max_db=r.sinr_max_db, min_load=r.min_load,
                      rank_thresholds_db=tuple(r.rank_thresholds_db),
                      rank_thresholds_los_db=tuple(r.rank_thresholds_los_db) or None,
                      rank_model=r.rank_model, los_max_layers=r.los_max_layers,
                      device_classes=device_classes(sc, carrier),
                      shadow_fading=r.shadow_fading, los_consistent=r.los_consistent,
                      o2i_random=r.o2i_random, ssb_gain_offset_db=ssb_gain_offset_db(carrier.antenna),
                      ue_gain_db=r.ue_antenna_gain_dbi - r.body_loss_db)


DISTRICT_INPUT_FIELDS = ("gigabit_passed_share", "ten_g_port_share", "take_up", "tier_mix", "fiveg_user_share")
"""Inputs that ``[district_inputs]`` may give per district class or per district."""


def district_inputs(sc: Scenario, codes) -> dict[str, dict[int, object]]:
    """Per field of :data:`DISTRICT_INPUT_FIELDS`, district index -> value where one is given.

    A district's own entry (``district_inputs.by_code``) wins over its class default
    (central / suburban / rural, :meth:`sim.config.Scenario.district_class`); districts with
    neither are absent and take the citywide input.
    """
    out: dict[str, dict[int, object]] = {f: {} for f in DISTRICT_INPUT_FIELDS}
    for i, code in enumerate(codes):
        for f, v in sc.district_inputs.for_district(str(code), sc.district_class(str(code))).items():
            out[f][i] = v
    return out


def fiveg_user_share_by_district(sc: Scenario, codes) -> np.ndarray:
    """5G users among mobile users per district: the district's input, else ``traffic.fiveg_user_share``."""
    given = district_inputs(sc, codes)["fiveg_user_share"]
    return np.array([float(given.get(i, sc.traffic.fiveg_user_share)) for i in range(len(codes))])
