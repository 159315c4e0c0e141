"""Coverage of a whole grid: neighbour search, blocks and executors around the kernel.

Datashader's reduction contract: :func:`compute_coverage` preallocates the per-pixel
outputs (flat over the land pixels of a :class:`~sim.grid.CityRasters`), cuts the land pixels
into blocks (:func:`sim.grid.iter_blocks`), and lets each block fill only its own slice with
:func:`sim.kernel.coverage_block`, serially or in forked worker processes. Every quantity of
a pixel depends only on that pixel (its candidate list, its hash-keyed LOS draws, sums in a
fixed candidate order), so the result is bitwise identical for any block size and worker
count.

Neighbour search
----------------
:class:`SiteIndex` holds a :class:`scipy.spatial.cKDTree` over the layer's unique sites (one
point per ``site_id``). The sectors of the K nearest sites become a pixel's candidates,
grouped by site (``[n_pix, K, S_max]``, -1 padded), so the kernel evaluates path loss once
per pixel-site.

The K nearest sites are searched per square tile of pixels (default :data:`TILE_M` = 100 m,
4 x 4 pixels at 25 m, and never less than :data:`MIN_TILE_PX` x :data:`MIN_TILE_PX` pixels,
so 200 m at 100 m): all pixels of a tile share the K nearest sites of the tile centre.
The tree query costs about 5 us per point, as much as 150 pixel-sector pairs of the kernel,
so a per-pixel search would cost more than the kernel itself at K = 32; per 16-pixel tile
it is a few percent. ``tile_m=0`` restores the per-pixel search. A block-level list (every
pixel of a block against every site near the block) was measured too and is slower: a
block of land pixels is a row-major strip many kilometres wide whose neighbourhood holds
far more than K sites. Numbers: ``benchmarks/bench_kernel.py``.

* ``k_sites`` larger than the number of sites is clipped to it, with a
  :class:`CoverageWarning`.
* Sites outside the grid are kept: they serve and interfere with pixels near the edge.
* Two sites at the same position are both candidates (they are distinct sites; the
  nearer-first order between them is the tree's, deterministic).
* A layer with no sectors raises :class:`~sim.errors.InputError`.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from . import kernel
from .engine import EXECUTORS, LocalEngine, check_workers
from .errors import InputError
from .grid import CityRasters, Grid, iter_blocks
from .pixelstore import bincount_onto
from .results import CoverageLayers, InterferenceTerms, LayerRadio, SectorArrays, TileTerms

__all__ = [
    "CoverageWarning",
    "SiteIndex",
    "site_index",
    "candidate_sectors",
    "compute_coverage",
    "coverage_inputs",
    "coverage_layer_tile",
    "coverage_on_stage",
    "coverage_group_on_stage",
    "coverage_group_tile",
    "layer_groups",
    "EXECUTORS",
    "TILE_M",
    "MIN_TILE_PX",
    "serving_distance_m",
]

TILE_M = 100.0
"""Default tile size of the shared neighbour search, m (4 x 4 pixels at 25 m)."""
MIN_TILE_PX = 2
"""Smallest tile of the shared search, pixels a side: a per-pixel search at 100 m took more than
half of a coverage stage (``benchmarks/bench_kernel.py``)."""
_SOURCE = "compute_coverage"


class CoverageWarning(UserWarning):
    """A coverage input was adjusted (e.g. K clipped to the number of sites)."""


@dataclass(frozen=True)
class SiteIndex:
    """The unique sites of a layer, their sectors, and a k-d tree over their positions.

    Attributes
    ----------
    site_x_m, site_y_m : ndarray [n_sites], float64
        Site positions (those of the site's sectors).
    site_sectors : ndarray [n_sites, s_max], int32
        Sector indices of each site in ascending order, -1 padded.
    k_sites : int
        Nearest sites per pixel (already clipped to ``n_sites``).
    tree : scipy.spatial.cKDTree
        Over ``(site_x_m, site_y_m)``.
    """

    site_x_m: np.ndarray
    site_y_m: np.ndarray
    site_sectors: np.ndarray
    k_sites: int
    tree: cKDTree

    @property
    def n_sites(self) -> int:
        return int(self.site_x_m.size)

    def nearest_sites(self, x_m, y_m) -> np.ndarray:
        """Indices ``[n, k_sites]`` (intp) of the nearest sites of each point, nearest first."""
        pts = np.column_stack([np.asarray(x_m, dtype=np.float64), np.asarray(y_m, dtype=np.float64)])
        _, idx = self.tree.query(pts, k=self.k_sites)
        return np.asarray(idx).reshape(pts.shape[0], self.k_sites)

    def candidates(self, x_m, y_m) -> np.ndarray:
        """Candidate sectors ``[n_pix, k_sites, s_max]`` (int32, -1 padded), nearest site first."""
        return self.site_sectors[self.nearest_sites(x_m, y_m)]

    def tile_candidates(self, grid: Grid, flat_idx, tile_px: int) -> np.ndarray:
        """Candidate sectors shared by square tiles of ``tile_px`` x ``tile_px`` pixels.

        Every pixel gets the sectors of the ``k_sites`` sites nearest to the centre of its
        tile (tiles aligned on the grid's north-west corner, so a pixel's list does not
        depend on the block it is computed in). ``tile_px = 1`` is the per-pixel search.
        """
        flat_idx = np.asarray(flat_idx, dtype=np.int64)
        if tile_px <= 1:
            return self.candidates(*grid.centres_m(flat_idx))
        rows, cols = np.divmod(flat_idx, grid.shape[1])
        n_tc = -(-grid.shape[1] // tile_px)
        tiles, inverse = np.unique((rows // tile_px) * n_tc + cols // tile_px, return_inverse=True)
        tr, tc = np.divmod(tiles, n_tc)
        half = 0.5 * tile_px
        x = grid.x0_m + (tc * tile_px + half) * grid.res_m
        y = grid.y0_m - (tr * tile_px + half) * grid.res_m
        per_tile = self.site_sectors[self.nearest_sites(x, y)]      # [n_tiles, k, s]
        return per_tile.take(inverse.ravel(), axis=0)


def site_index(sectors: SectorArrays, k_sites: int = 32) -> SiteIndex:
    """Group a layer's sectors into sites and build the k-d tree over them.

    Parameters
    ----------
    sectors : SectorArrays
        The layer's sectors. Sectors with the same ``site_id`` form one site and must share
        position, height and scenario.
    k_sites : int
        Nearest sites per pixel, >= 1. More than the number of sites is clipped to it with
        a :class:`CoverageWarning`.

    Raises
    ------
    InputError
        No sectors, ``k_sites`` < 1, or sectors of one site that disagree on position,
        height or scenario.
    """
    if isinstance(k_sites, bool) or not isinstance(k_sites, (int, np.integer)) or k_sites < 1:
        raise InputError(_SOURCE, "k_sites", f"expected an integer >= 1, got {k_sites!r}")
    n = sectors.n_sectors
    if n == 0:
        raise InputError(_SOURCE, "sectors", "expected at least one sector in the layer, got 0")
    if not (np.all(np.isfinite(sectors.x_m)) and np.all(np.isfinite(sectors.y_m))):
        raise InputError(_SOURCE, "sectors.x_m", "expected finite site coordinates in m")
    ids, inverse = np.unique(sectors.site_id, return_inverse=True)
    n_sites = ids.size
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=n_sites)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    lead = order[first]                                  # first sector of each site
    for name in ("x_m", "y_m", "h_bs_m", "scenario"):
        a = getattr(sectors, name)
        bad = a != a[lead][inverse]
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise InputError(_SOURCE, f"sectors.{name}",
                             f"expected the sectors of site {int(sectors.site_id[j])} to share {name}, "
                             f"got {a[j]!r} and {a[lead[inverse[j]]]!r}")
    s_max = int(counts.max())
    table = np.full((n_sites, s_max), -1, dtype=np.int32)
    rank = np.arange(n) - np.repeat(first, counts)      # position of each sorted sector in its site
    table[inverse[order], rank] = order
    k = int(k_sites)
    if k > n_sites:
        warnings.warn(f"k_sites = {k} is more than the layer's {n_sites} sites; using {n_sites}",
                      CoverageWarning, stacklevel=2)
        k = n_sites
    x = sectors.x_m[lead]
    y = sectors.y_m[lead]
    return SiteIndex(site_x_m=x, site_y_m=y, site_sectors=table, k_sites=k,
                     tree=cKDTree(np.column_stack([x, y])))


def candidate_sectors(pix_x_m, pix_y_m, sectors: SectorArrays, k_sites: int = 32, *,
                      index: SiteIndex | None = None) -> np.ndarray:
    """Candidate sectors of each pixel: all sectors of its ``k_sites`` nearest sites.

    Parameters
    ----------
    pix_x_m, pix_y_m : array_like [n_pix]
        Pixel centres, m (grid CRS).
    sectors : SectorArrays
        The layer's sectors.
    k_sites : int
        Nearest sites (clipped to the number of sites with a :class:`CoverageWarning`).
    index : SiteIndex, optional
        A prebuilt :func:`site_index` (then ``sectors`` and ``k_sites`` are not re-read).

    Returns
    -------
    cand : ndarray [n_pix, k, s_max], int32
        ``cand[i, j, :]``: the sectors of pixel i's j-th nearest site (Euclidean distance in
        the plane), -1 padded; the layout :func:`sim.kernel.coverage_block` takes.
    """
    if index is None:
        index = site_index(sectors, k_sites)
    return index.candidates(pix_x_m, pix_y_m)


# --------------------------------------------------------------------------- the tile task


def coverage_tile(shared: dict, start: int, stop: int):
    """The coverage of land pixels ``start:stop`` (an engine task; ``shared`` from :func:`compute_coverage`)."""
    r: CityRasters = shared["rasters"]
    flat = r.land_flat[start:stop]
    x, y = r.grid.centres_m(flat)
    cand = shared["index"].tile_candidates(r.grid, flat, shared["tile_px"])
    out = kernel.coverage_block(x, y, flat, cand, shared["sectors"], shared["radio"], shared["load"], shared["seed"],
                                top_m=shared["top_m"], validate=False, prepared=shared["prepared"])
    return start, stop, out


def compute_coverage(rasters: CityRasters, sectors: SectorArrays, radio: LayerRadio, k_sites: int = 32,
                     load=None, block_size: int = 65536, workers: int | None = None,
                     executor: str = "processes", progress=None, seed: int = 0,
                     top_m: int = 0, tile_m: float = TILE_M, engine=None) -> CoverageLayers:
    """Coverage of one layer over every land pixel of the grid.

    Parameters
    ----------
    rasters : CityRasters
        Grid, land pixels, population and households.
    sectors : SectorArrays
        The layer's sectors (sites outside the grid included).
    radio : LayerRadio
        The layer's radio parameters.
    k_sites : int
        Nearest sites evaluated per pixel (default 32).
    load : array_like [n_sectors] or float, optional
        Cell loads in [0, 1] weighting interference; default 1.0 (every cell fully loaded,
        the full-buffer worst case).
    block_size : int
        Land pixels per block (memory; results do not depend on it).
    workers : int, optional
        Worker processes; default (or 0) ``os.cpu_count()``. Never more than the blocks.
    executor : {"processes", "serial"}
        ``"processes"``: a :class:`~concurrent.futures.ProcessPoolExecutor` with the fork
        start method (workers inherit the inputs; only block results travel back);
        ``"serial"`` (or one worker, or one block): in this process.
    progress : callable, optional
        ``progress(done_pixels, total_pixels)`` after each block, in this process.
    seed : int
        Seed of sampled LOS draws.
    top_m : int
        Also keep the ``top_m`` strongest interferers per pixel (for a load fixed point).
    tile_m : float
        Pixels of a square tile of ``max(floor(tile_m / res_m), MIN_TILE_PX)`` pixels a side
        share the K nearest sites of the tile centre (:meth:`SiteIndex.tile_candidates`);
        0 searches per pixel. Default :data:`TILE_M`.
    engine : engine, optional
        Where the blocks run (:class:`sim.engine.LocalEngine`, or the Dask engine); default a
        local engine of ``workers`` and ``executor`` (both ignored when an engine is given).

    Returns
    -------
    CoverageLayers

    Raises
    ------
    InputError
        No sectors, bad ``k_sites``, ``block_size``, ``workers``, ``executor``, loads, or
        radio inputs (e.g. a base station not above the UE, from
        :func:`sim.propagation.validate_radio_inputs`).

    Warns
    -----
    CoverageWarning
        ``k_sites`` clipped to the number of sites.
    """
    if engine is None:
        if executor not in EXECUTORS:
            raise InputError(_SOURCE, "executor", f"expected one of {EXECUTORS}, got {executor!r}")
        engine = LocalEngine(check_workers(workers, _SOURCE), executor)
    shared = coverage_inputs(rasters, sectors, radio, k_sites, load, seed=seed, top_m=top_m, tile_m=tile_m)
    blocks = _blocks(rasters.n_land, block_size)
    # the stage's workers start (fork) before the outputs exist, so they do not inherit them
    with engine.stage(shared, n_tasks=len(blocks)) as st:
        return _gather(st.map(coverage_tile, blocks), shared, int(top_m) > 0, progress)


def _blocks(n_land: int, block_size) -> list:
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise InputError(_SOURCE, "block_size", f"expected an integer >= 1, got {block_size!r}")
    return list(iter_blocks(n_land, int(block_size)))


def coverage_inputs(rasters: CityRasters, sectors: SectorArrays, radio: LayerRadio, k_sites: int = 32, load=None,
                    *, seed: int = 0, top_m: int = 0, tile_m: float = TILE_M) -> dict:
    """The shared inputs of a layer's coverage tiles (validated once; arguments as :func:`compute_coverage`)."""
    index = site_index(sectors, k_sites)
    n_sec = sectors.n_sectors
    load_arr = np.asarray(1.0 if load is None else load, dtype=np.float32)
    if load_arr.ndim == 0:
        load_arr = np.full(n_sec, load_arr, dtype=np.float32)
    kernel.validate_layer(sectors, radio, load_arr)      # once; the blocks run unchecked
    tile_px = max(MIN_TILE_PX, int(float(tile_m) // rasters.grid.res_m)) if tile_m > 0 else 1
    prepared = kernel.prepare_layer(sectors, radio, load_arr)
    return dict(rasters=rasters, index=index, sectors=sectors, radio=radio, load=load_arr, seed=int(seed),
                top_m=int(top_m), tile_px=tile_px, prepared=prepared)


def coverage_layer_tile(shared: dict, key, start: int, stop: int):
    """:func:`coverage_tile` of layer ``key`` of a stage whose ``shared`` maps layer keys to
    :func:`coverage_inputs` (several layers on one stage)."""
    return coverage_tile(shared[key], start, stop)


def _tile_outputs(shared: dict, kept):
    """A kept tile without its interference terms (what the parent gathers)."""
    start, stop, b = kept
    return start, stop, dataclasses.replace(b, interference=None)


def coverage_on_stage(st, key, inputs: dict, block_size: int = 65536, progress=None, store=None) -> CoverageLayers:
    """Coverage of one layer on an open engine stage, its tiles kept there with their interference terms.

    The stage's ``shared`` maps ``key`` to ``inputs`` (:func:`coverage_inputs` with
    ``top_m > 0``). Each tile runs as :func:`coverage_layer_tile` with ``keep=True``; the
    per-pixel outputs are then read back tile by tile without the terms, and the result's
    ``interference`` is a :class:`~sim.results.TileTerms` of the kept tiles (for
    :mod:`sim.busyload`), valid while the stage is open. The same arrays as
    :func:`compute_coverage` whatever the block size or engine.

    With ``store`` (a :class:`~sim.pixelstore.PixelStore`) the per-pixel outputs go to the
    store as the tiles arrive, as arrays ``"<key>/<field>"`` (:func:`stored_coverage`), and
    never all sit in this process: the result's per-pixel fields map the store's files.
    """
    n_land = inputs["rasters"].n_land
    blocks = _blocks(n_land, block_size)
    kept = st.map(coverage_layer_tile, [(key, a, b) for a, b in blocks], keep=True,
                  progress=_pixels_done(progress, n_land, block_size))
    return _layer_from_kept(st, kept, blocks, inputs, key, store)


def layer_groups(inputs: dict) -> list:
    """The layers of a stage's ``inputs`` (key -> :func:`coverage_inputs`) in groups whose tiles run together
    (:func:`coverage_group_on_stage`): the same rasters, candidate sites (search tiles, K, sites' sectors) and
    :meth:`~sim.pairpower.PreparedLayer.geometry_key` - carriers on the same sites. Groups and their layers keep
    the order of ``inputs``; a layer alone is a group of one."""
    groups: list = []
    sig_of: dict = {}
    for key, inp in inputs.items():
        geo = inp["prepared"].geometry_key(inp["seed"])
        sig = None
        if geo is not None:
            idx = inp["index"]
            # geo holds the seed and the sites' positions; the candidates also need the same search
            sig = (id(inp["rasters"]), geo, inp["tile_px"], idx.k_sites, idx.site_sectors.shape,
                   idx.site_sectors.tobytes())
        if sig is not None and sig in sig_of:
            groups[sig_of[sig]].append(key)
            continue
        if sig is not None:
            sig_of[sig] = len(groups)
        groups.append([key])
    return groups


def coverage_group_tile(shared: dict, keys, start: int, stop: int):
    """The tile ``start:stop`` of the layers ``keys`` of one :func:`layer_groups` group (an engine task): the
    candidates searched once, the carrier-independent per pixel-site terms shared (:func:`sim.kernel.coverage_blocks`);
    a tuple of :func:`coverage_tile` results, one per layer, with their bits."""
    first = shared[keys[0]]
    r: CityRasters = first["rasters"]
    flat = r.land_flat[start:stop]
    x, y = r.grid.centres_m(flat)
    cand = first["index"].tile_candidates(r.grid, flat, first["tile_px"])
    outs = kernel.coverage_blocks(x, y, flat, cand, [shared[k]["prepared"] for k in keys], first["seed"],
                                  top_m=first["top_m"])
    return tuple((start, stop, out) for out in outs)


def coverage_group_on_stage(st, keys, inputs: dict, block_size: int = 65536, progress=None, store=None) -> dict:
    """:func:`coverage_on_stage` of the layers ``keys`` of one :func:`layer_groups` group, their tiles computed
    together (:func:`coverage_group_tile`), each task's layers kept apart (``map(..., parts=)``); key ->
    :class:`CoverageLayers`, each with the arrays :func:`coverage_on_stage` gives it."""
    if len(keys) == 1:
        return {keys[0]: coverage_on_stage(st, keys[0], inputs[keys[0]], block_size, progress, store)}
    n_land = inputs[keys[0]]["rasters"].n_land
    blocks = _blocks(n_land, block_size)
    kept = st.map(coverage_group_tile, [(tuple(keys), a, b) for a, b in blocks], keep=True,
                  progress=_pixels_done(progress, n_land, block_size), parts=len(keys))
    return {key: _layer_from_kept(st, [k[i] for k in kept], blocks, inputs[key], key, store)
            for i, key in enumerate(keys)}


def _pixels_done(progress, n_land: int, block_size):
    """An engine map's ``progress(done_tasks, total)`` as ``progress(done_pixels, n_land)`` (None: none)."""
    if progress is None:
        return None
    return lambda done, total: progress(min(n_land, done * int(block_size)), n_land)


def _layer_from_kept(st, kept, blocks, inputs: dict, key, store) -> CoverageLayers:
    """A layer from its kept tiles: the per-pixel outputs gathered (to ``store`` when given), the tiles kept on
    the stage as the result's :class:`~sim.results.TileTerms`."""
    if store is not None:
        out = _store_tiles(st.map(_tile_outputs, [(k,) for k in kept]), inputs, store, key)
    else:
        out = _gather(st.map(_tile_outputs, [(k,) for k in kept]), inputs, False, None)
    terms = TileTerms(blocks=tuple(blocks), kept=tuple(kept), n_land=inputs["rasters"].n_land,
                      noise_mw=kernel.noise_mw(inputs["radio"]))
    return dataclasses.replace(out, interference=terms)


def _gather(results, inputs: dict, with_terms: bool, progress) -> CoverageLayers:
    """Tile results ``(index, (start, stop, BlockCoverage))`` into a layer's whole-grid arrays."""
    rasters, index, sectors, radio = inputs["rasters"], inputs["index"], inputs["sectors"], inputs["radio"]
    n_land, n_sec = rasters.n_land, sectors.n_sectors
    out = {name: np.full(n_land, np.nan, dtype=np.float32) for name in
           ("rsrp_dbm", "sinr_db", "se_bps_hz", "rate_outdoor_bps", "rate_indoor_bps",
            "rsrp_indoor_dbm", "sinr_indoor_db", "los_prob_serving")}
    best = np.full(n_land, -1, dtype=np.int32)
    terms = None
    if with_terms:
        m = min(inputs["top_m"], max(index.k_sites * index.site_sectors.shape[1] - 1, 1))
        terms = dict(signal_mw=np.zeros(n_land), top_sector=np.full((n_land, m), -1, np.int32),
                     top_mw=np.zeros((n_land, m), np.float32), residual_mw=np.zeros(n_land))
    done = 0
    for _, (start, stop, b) in results:
        for name in out:
            out[name][start:stop] = getattr(b, name)
        best[start:stop] = b.best_sector
        if terms is not None:
            it = b.interference
            for name in terms:
                terms[name][start:stop] = getattr(it, name)
        done += stop - start
        if progress is not None:
            progress(done, n_land)

    served = best >= 0
    owner = best[served]
    pixels = np.bincount(owner, minlength=n_sec).astype(np.int64)
    pop = np.bincount(owner, weights=rasters.population_land[served], minlength=n_sec)
    hh = np.bincount(owner, weights=rasters.households_land[served], minlength=n_sec)
    interference = None
    if terms is not None:
        interference = InterferenceTerms(noise_mw=kernel.noise_mw(radio), **terms)
    return CoverageLayers(layer_id=radio.layer_id, best_sector=best, sector_pixels=pixels,
                          sector_area_km2=pixels * rasters.grid.pixel_area_km2, sector_population=pop,
                          sector_households=hh, load=inputs["load"], k_sites=index.k_sites,
                          interference=interference, **out)


PIXEL_FIELDS = ("rsrp_dbm", "best_sector", "sinr_db", "se_bps_hz", "rate_outdoor_bps", "rate_indoor_bps",
                "rsrp_indoor_dbm", "sinr_indoor_db", "los_prob_serving")
"""Per-pixel fields of a :class:`~sim.results.CoverageLayers` (``best_sector`` int32, the rest float32)."""


def _store_tiles(results, inputs: dict, store, key) -> CoverageLayers:
    """Tile results ``(index, (start, stop, BlockCoverage))`` into ``store`` (any order), then the layer."""
    for name in PIXEL_FIELDS:
        store.create(f"{key}/{name}", np.int32 if name == "best_sector" else np.float32)
    for _, (start, _stop, b) in results:
        for name in PIXEL_FIELDS:
            store.write(f"{key}/{name}", start, getattr(b, name))
    return stored_coverage(store, key, inputs)


def stored_coverage(store, key, inputs: dict) -> CoverageLayers:
    """The layer whose per-pixel fields are the store's arrays ``"<key>/<field>"`` (mapped read-only), with its
    per-sector sums reduced chunk by chunk (the bits of whole-array sums: :func:`sim.pixelstore.bincount_onto`)."""
    rasters, index, sectors, radio = inputs["rasters"], inputs["index"], inputs["sectors"], inputs["radio"]
    n_sec = sectors.n_sectors
    pixels, pop, hh = np.zeros(n_sec), np.zeros(n_sec), np.zeros(n_sec)
    for a, b in store.chunks():
        best = store.read(f"{key}/best_sector", a, b)
        served = best >= 0
        owner = best[served]
        pixels = bincount_onto(pixels, owner)
        pop = bincount_onto(pop, owner, rasters.population_at(a, b)[served])
        hh = bincount_onto(hh, owner, rasters.households_at(a, b)[served])
    pixels = pixels.astype(np.int64)
    fields = {name: store.array(f"{key}/{name}") for name in PIXEL_FIELDS}
    return CoverageLayers(layer_id=radio.layer_id, sector_pixels=pixels,
                          sector_area_km2=pixels * rasters.grid.pixel_area_km2, sector_population=pop,
                          sector_households=hh, load=inputs["load"], k_sites=index.k_sites, **fields)


def serving_distance_m(rasters: CityRasters, sectors: SectorArrays, best_sector, start: int = 0) -> np.ndarray:
    """Horizontal distance (m, float32) from each land pixel centre to its serving site; NaN: no server.

    ``best_sector`` is that of land pixels ``start:start + len(best_sector)`` (default: all of them).

    The best-server map: a map coloured by serving site is unreadable citywide (tens of
    thousands of classes), the distance to the serving site shows cell size and where
    pixels are served from afar (overshooting sites, holes).
    """
    best = np.asarray(best_sector)
    ok = best >= 0
    x, y = rasters.grid.centres_m(rasters.land_flat[start:start + best.size])
    idx = np.where(ok, best, 0)
    d = np.hypot(x - np.asarray(sectors.x_m, np.float64)[idx], y - np.asarray(sectors.y_m, np.float64)[idx])
    return np.where(ok, d, np.nan).astype(np.float32)
