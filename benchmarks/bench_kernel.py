"""Benchmark of the coverage kernel and the whole-city coverage step; prints tables.

    .venv/bin/python benchmarks/bench_kernel.py            # full (about 2 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_kernel.py --quick    # small sizes, a few seconds
    .venv/bin/python benchmarks/bench_kernel.py --tiles-only [--tile-res-m 25] [--compare-with DIR]

Sections (setup outside the timed regions, fixed seeds):

1. kernel vs the scalar reference loop (tests/reference_loop.py) on a small scene;
2. one block of 65,536 pixels among 52,000 three-sector sites: the kernel alone, with the
   neighbour search per pixel, per 100 m tile, and against a block-level candidate list;
3. scaling: two city sizes x two site counts at K = 32 (cost follows pixels x K, not sites);
5. per-tile cost on the shipped scenario: ``sim.coverage.coverage_tile`` on one tile of 65,536
   land pixels in the middle of Shanghai (configs/shanghai-2021.toml at ``--tile-res-m``, its
   sites and radio: sampled consistent LOS, shadow fading, random O2I, top-8 terms), per layer;
   with ``--compare-with DIR`` (a checkout of another commit) that checkout's ``sim`` is imported
   as a second package and timed interleaved in the same process, with its outputs checked bit
   for bit against this one's; then each group of carriers on the same sites
   (``sim.coverage.layer_groups``) as one ``coverage_group_tile`` against its layers' tiles one by one;
0. the whole city (run first, for its peak RSS): Shanghai's 25 m grid (shipped geodata) with 52,000 three-sector sites
   placed with probability proportional to the census population, one carrier, K = 32,
   ``compute_coverage`` in worker processes: wall time and peak RSS.

Peak RSS is ``ru_maxrss`` of this process and of the largest child; a forked child counts
the pages it shares with its parent, so the two overlap.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from reference_loop import make_rasters, make_sectors, reference_coverage  # noqa: E402

from sim.coverage import compute_coverage, site_index  # noqa: E402
from sim.kernel import coverage_block, prepare_layer  # noqa: E402
from sim.results import LayerRadio  # noqa: E402

RADIO = LayerRadio("n78", fc_ghz=3.5, bw_hz=100e6, scs_khz=30, noise_figure_db=9.0, max_layers=4, dl_share=0.75)
K = 32


def _rss_mib():
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_kib / 1024, child_kib / 1024


def _best_of(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _row(cells, widths):
    print("  ".join(str(c).rjust(w) for c, w in zip(cells, widths)))


def _random_sites(rng, n_sites, xmin, ymin, xmax, ymax):
    return make_sectors(rng.uniform(xmin, xmax, n_sites), rng.uniform(ymin, ymax, n_sites), rng=rng)


def bench_reference(quick):
    print("\n1. kernel vs scalar reference loop (same scene, same process)")
    rng = np.random.default_rng(1)
    n_pix = 100 if quick else 300
    sec = _random_sites(rng, 20, 0, 0, 3000, 3000)
    px, py = rng.uniform(0, 3000, n_pix), rng.uniform(0, 3000, n_pix)
    cand = site_index(sec, 20).candidates(px, py)
    load = np.full(sec.n_sectors, 0.5, np.float32)
    pairs = cand.size
    t0 = time.perf_counter()
    reference_coverage(px, py, np.arange(n_pix), cand, sec, RADIO, load)
    t_ref = time.perf_counter() - t0
    prep = prepare_layer(sec, RADIO, load)
    t_ker = _best_of(lambda: coverage_block(px, py, np.arange(n_pix), cand, sec, RADIO, load, validate=False,
                                            prepared=prep), 5)
    # the kernel's rate at this tiny size is dominated by per-call overhead; also give the
    # rate of a large block for the same ratio (section 2)
    w = (22, 12, 14, 14)
    _row(("", "pairs", "time s", "pairs/s"), w)
    _row(("reference loop", pairs, f"{t_ref:.3f}", f"{pairs / t_ref:,.0f}"), w)
    _row(("kernel (tiny block)", pairs, f"{t_ker:.4f}", f"{pairs / t_ker:,.0f}"), w)
    print(f"  ratio kernel / reference on this scene: {t_ref / t_ker:,.0f}x")
    return pairs / t_ref


def bench_block(quick, ref_rate):
    print("\n2. one block among 52,000 three-sector sites (80 km x 80 km, Gaussian density), K = 32")
    rng = np.random.default_rng(2)
    n_sites = 52_000
    w_m = 80_000.0
    r = np.abs(rng.normal(0, 15_000, n_sites))
    a = rng.uniform(0, 2 * np.pi, n_sites)
    sec = make_sectors(w_m / 2 + r * np.cos(a), w_m / 2 + r * np.sin(a), rng=rng)
    grid = make_rasters(3200, 3200, 25.0, x0_m=0.0, y0_m=w_m).grid
    n = 16_384 if quick else 65_536
    flat = np.arange(1400 * 3200, 1400 * 3200 + n)
    x, y = grid.centres_m(flat)
    load = np.full(sec.n_sectors, 0.5, np.float32)
    idx = site_index(sec, K)
    prep = prepare_layer(sec, RADIO, load)
    cand = idx.tile_candidates(grid, flat, 4)
    pairs = cand.size

    def kernel_only():
        coverage_block(x, y, flat, cand, sec, RADIO, load, validate=False, prepared=prep)

    def with_search(tile_px):
        c = idx.tile_candidates(grid, flat, tile_px)
        coverage_block(x, y, flat, c, sec, RADIO, load, validate=False, prepared=prep)

    t_k = _best_of(kernel_only)
    t_p = _best_of(lambda: with_search(1), 2)
    t_t = _best_of(lambda: with_search(4), 2)
    # block-level list: every pixel of a sub-block against the union of its pixels' K-nearest
    # sites (the smallest block-level list that contains them), sub-blocks padded to the
    # largest union, one kernel call over all pixels as for the other rows
    rows = []
    near = idx.nearest_sites(x, y)
    for b in (16, 256):
        unions = [np.unique(near[i:i + b]) for i in range(0, n, b)]
        u_max = max(u.size for u in unions)
        site_list = np.full((n // b, u_max), -1, np.intp)
        for i, u in enumerate(unions):
            site_list[i, :u.size] = u
        groups = np.where(site_list[:, :, None] >= 0, idx.site_sectors[site_list], -1)
        cb = np.repeat(groups, b, axis=0)
        tb = _best_of(lambda cb=cb: coverage_block(x, y, flat, cb, sec, RADIO, load, validate=False, prepared=prep), 2)
        rows.append((b, f"{np.mean([u.size for u in unions]):.0f}/{u_max}", cb.size, tb))
    w = (44, 14, 10, 16, 12)
    _row(("variant", "pairs", "time s", "pairs/s", "vs ref"), w)
    _row(("kernel only", pairs, f"{t_k:.3f}", f"{pairs / t_k:,.0f}", f"{pairs / t_k / ref_rate:,.0f}x"), w)
    _row(("kernel + per-pixel K-nearest search", pairs, f"{t_p:.3f}", f"{pairs / t_p:,.0f}", ""), w)
    _row(("kernel + 100 m tile search (default)", pairs, f"{t_t:.3f}", f"{pairs / t_t:,.0f}", ""), w)
    for b, nu, pb, t in rows:
        _row((f"block list, {b} px sub-blocks ({nu} sites)", pb, f"{t:.3f}", f"{pb / t:,.0f}", ""), w)
    print("  (block-list rows: sites per sub-block mean/max; time excludes building the lists)")


def bench_scaling(quick):
    print("\n3. scaling, K = 32, 2 worker processes (synthetic square cities, uniform sites)")
    sizes = (250_000, 500_000) if quick else (1_000_000, 2_000_000)
    sites = (13_000, 52_000)
    w = (12, 10, 10, 10, 18)
    _row(("pixels", "sites", "time s", "us/pixel", "pairs/s"), w)
    for n_pix in sizes:
        side = int(np.sqrt(n_pix))
        r = make_rasters(side, side, 25.0)
        xmin, ymin, xmax, ymax = r.grid.bounds_m
        for n_sites in sites:
            # same site density everywhere; the city is a window of a larger site field
            rng = np.random.default_rng(3)
            pad = 3000.0
            sec = _random_sites(rng, n_sites, xmin - pad, ymin - pad, xmax + pad, ymax + pad)
            t0 = time.perf_counter()
            out = compute_coverage(r, sec, RADIO, k_sites=K, load=0.5, workers=2)
            t = time.perf_counter() - t0
            _row((r.n_land, n_sites, f"{t:.2f}", f"{t / r.n_land * 1e6:.2f}",
                  f"{r.n_land * K * 3 / t:,.0f}"), w)
            del out


def _shanghai_sites(rasters, n_sites, rng):
    pop = rasters.population_land
    pick = rng.choice(rasters.n_land, size=n_sites, replace=True, p=pop / pop.sum())
    x, y = rasters.grid.centres_m(rasters.land_flat[pick])
    half = rasters.grid.res_m / 2
    return make_sectors(x + rng.uniform(-half, half, n_sites), y + rng.uniform(-half, half, n_sites), rng=rng)


def bench_city(quick):
    from sim.geodata import read_districts
    from sim.grid import build_city_rasters

    res = 100.0 if quick else 25.0
    print(f"\n0. whole city: Shanghai at {res:g} m, 52,000 three-sector sites, one carrier, K = 32")
    geo = ROOT / "geodata"
    districts = read_districts(geo / "shanghai_districts.geojson", geo / "shanghai_district_stats.csv")
    rasters = build_city_rasters(districts, res)
    sec = _shanghai_sites(rasters, 52_000, np.random.default_rng(4))
    workers = min(2, os.cpu_count() or 1)
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    out = compute_coverage(rasters, sec, RADIO, k_sites=K, load=0.5, workers=workers)
    t = time.perf_counter() - t0
    rss_self, rss_child = _rss_mib()
    w = (14, 10, 10, 16, 14, 16)
    _row(("land pixels", "workers", "time s", "pairs/s", "RSS self MiB", "RSS child MiB"), w)
    _row((rasters.n_land, workers, f"{t:.1f}", f"{rasters.n_land * K * 3 / t:,.0f}", f"{rss_self:.0f}",
          f"{rss_child:.0f}"), w)
    print(f"  (RSS before the coverage step: {rss0[0]:.0f} MiB; rasters and geodata)")
    ok = out.best_sector >= 0
    print(f"  served {ok.mean():.4f} of land; median RSRP {np.nanmedian(out.rsrp_dbm):.1f} dBm, "
          f"median SINR {np.nanmedian(out.sinr_db):.1f} dB, "
          f"median rate {np.nanmedian(out.rate_outdoor_bps) / 1e6:.0f} Mbit/s")


def bench_radio_options(quick):
    print("\n4. radio options on one block (section 2's scene, 100 m tiles, K = 32): the cost of each draw")
    rng = np.random.default_rng(2)
    n_sites = 52_000
    w_m = 80_000.0
    r = np.abs(rng.normal(0, 15_000, n_sites))
    a = rng.uniform(0, 2 * np.pi, n_sites)
    sec = make_sectors(w_m / 2 + r * np.cos(a), w_m / 2 + r * np.sin(a), rng=rng)
    grid = make_rasters(3200, 3200, 25.0, x0_m=0.0, y0_m=w_m).grid
    n = 16_384 if quick else 65_536
    flat = np.arange(1400 * 3200, 1400 * 3200 + n)
    x, y = grid.centres_m(flat)
    load = np.full(sec.n_sectors, 0.5, np.float32)
    cand = site_index(sec, K).tile_candidates(grid, flat, 4)
    variants = [("expected LOS (no draws)", {}),
                ("sampled LOS, independent draws", dict(los_mode="sampled")),
                ("sampled LOS, spatially consistent", dict(los_mode="sampled", los_consistent=True)),
                ("+ shadow fading", dict(los_mode="sampled", los_consistent=True, shadow_fading=True)),
                ("+ random O2I (shipped configs)", dict(los_mode="sampled", los_consistent=True, shadow_fading=True,
                                                        o2i_random=True))]
    preps = [(name, dataclasses.replace(RADIO, **kw)) for name, kw in variants]
    preps = [(name, radio, prepare_layer(sec, radio, load)) for name, radio in preps]
    for _, _, prep in preps:
        if prep.shadowed or prep.los_field:
            prep.shadow_terms(0)          # the unit field and offsets, built once per layer (not timed)
    times = {name: np.inf for name, _, _ in preps}
    for _ in range(3):                    # interleaved: a shared machine's load hits every variant alike
        for name, radio, prep in preps:
            t0 = time.perf_counter()
            coverage_block(x, y, flat, cand, sec, radio, load, validate=False, prepared=prep)
            times[name] = min(times[name], time.perf_counter() - t0)
    base = times[preps[0][0]]
    w = (40, 10, 10)
    _row(("variant", "time s", "vs first"), w)
    for name, _, _ in preps:
        _row((name, f"{times[name]:.3f}", f"{times[name] / base:.2f}x"), w)


def _other_sim(src: Path):
    """Import ``src/sim`` as the package ``sim_other`` (a copy in a temporary folder).

    Its relative imports stay inside the copy; its few absolute ``sim.*`` imports (error types)
    resolve to this checkout's, which does not change what the kernel computes.
    """
    import atexit
    import importlib
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="bench_kernel_"))
    atexit.register(shutil.rmtree, tmp, True)     # the copy goes with this process
    shutil.copytree(Path(src) / "sim", tmp / "sim_other")
    sys.path.insert(0, str(tmp))
    return importlib.import_module("sim_other.coverage")


def _same_bits(a, b) -> bool:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "interference":
            if (x is None) != (y is None):
                return False
            if x is not None and not all(np.asarray(getattr(x, g)).tobytes() == np.asarray(getattr(y, g)).tobytes()
                                         for g in ("signal_mw", "top_sector", "top_mw", "residual_mw")):
                return False
        elif np.asarray(x).tobytes() != np.asarray(y).tobytes():
            return False
    return True


def bench_tiles(res_m, rounds, compare_with=None):
    from sim import coverage
    from sim.app.run import layer_inputs, read_inputs
    from sim.app.stages import StageTimer
    from sim.config import load_scenario, with_overrides

    n_tile = 65_536
    print(f"\n5. per-tile cost: coverage_tile on {n_tile:,} land pixels of Shanghai at {res_m:g} m "
          f"(configs/shanghai-2021.toml), best and median of {rounds} rounds, CPU seconds")
    sc = with_overrides(load_scenario(ROOT / "configs" / "shanghai-2021.toml"), resolution_m=res_m)
    inp = read_inputs(sc, StageTimer())
    layers = layer_inputs(sc, inp.rasters, inp.sectors)
    other = _other_sim(compare_with) if compare_with else None
    w = (12, 12, 12, 14, 14, 10, 10)
    _row(("layer", "this best", "this median", "other best", "other median", "ratio", "same bits"), w)
    for lid, sh in layers.items():
        a = sh["rasters"].n_land // 2
        runs = {"this": (coverage.coverage_tile, sh)}
        if other is not None:
            idx = sh["index"]
            osh = other.coverage_inputs(sh["rasters"], sh["sectors"], sh["radio"], idx.k_sites, sh["load"],
                                        seed=sh["seed"], top_m=sh["top_m"])
            runs["other"] = (other.coverage_tile, osh)
        outs = {k: fn(s, a, a + n_tile)[2] for k, (fn, s) in runs.items()}   # warm-up (field, tables)
        times = {k: [] for k in runs}
        for _ in range(rounds):           # interleaved: a shared machine's load hits both alike
            for k, (fn, s) in runs.items():
                t0 = time.process_time()
                fn(s, a, a + n_tile)
                times[k].append(time.process_time() - t0)
        best = {k: min(v) for k, v in times.items()}
        med = {k: float(np.median(v)) for k, v in times.items()}
        if other is None:
            _row((lid, f"{best['this']:.3f}", f"{med['this']:.3f}", "", "", "", ""), w)
        else:
            _row((lid, f"{best['this']:.3f}", f"{med['this']:.3f}", f"{best['other']:.3f}", f"{med['other']:.3f}",
                  f"{med['other'] / med['this']:.2f}x", str(_same_bits(outs["this"], outs["other"]))), w)
    print("  (ratio: other median / this median; CPU time of this process, so other processes' load counts less)")
    _bench_groups(layers, rounds)


def _bench_groups(layers, rounds):
    """Carriers on the same sites: one :func:`sim.coverage.coverage_group_tile` against their tiles one by one."""
    from sim import coverage

    n_tile = 65_536
    for keys in coverage.layer_groups(layers):
        if len(keys) < 2:
            continue
        a = layers[keys[0]]["rasters"].n_land // 2
        alone = [coverage.coverage_tile(layers[k], a, a + n_tile)[2] for k in keys]
        together = [b for _, _, b in coverage.coverage_group_tile(layers, tuple(keys), a, a + n_tile)]
        times = {"one by one": [], "together": []}
        for _ in range(rounds):
            t0 = time.process_time()
            for k in keys:
                coverage.coverage_tile(layers[k], a, a + n_tile)
            times["one by one"].append(time.process_time() - t0)
            t0 = time.process_time()
            coverage.coverage_group_tile(layers, tuple(keys), a, a + n_tile)
            times["together"].append(time.process_time() - t0)
        med = {k: float(np.median(v)) for k, v in times.items()}
        same = all(_same_bits(x, y) for x, y in zip(alone, together))
        print(f"  co-sited {' + '.join(keys)}: one by one {med['one by one']:.3f} s, together {med['together']:.3f} s "
              f"(medians of {rounds}), {med['one by one'] / med['together']:.2f}x, same bits {same}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    ap.add_argument("--skip-city", action="store_true", help="leave out the whole-city run")
    ap.add_argument("--city-only", action="store_true", help="only the whole-city run")
    ap.add_argument("--tiles-only", action="store_true", help="only the per-tile cost on the shipped scenario")
    ap.add_argument("--tile-res-m", type=float, default=25.0, help="grid resolution of the per-tile section, m")
    ap.add_argument("--tile-rounds", type=int, default=7, help="rounds of the per-tile section")
    ap.add_argument("--compare-with", type=Path, default=None,
                    help="a checkout of another commit: time its coverage_tile too, interleaved, and compare bits")
    args = ap.parse_args(argv)
    print(f"numpy {np.__version__}, {os.cpu_count()} CPUs{' (quick)' if args.quick else ''}")
    if args.tiles_only:
        bench_tiles(args.tile_res_m, args.tile_rounds, args.compare_with)
        return 0
    if not args.skip_city:  # first, so that its peak RSS is not that of the sections below
        bench_city(args.quick)
    if args.city_only:
        return 0
    ref_rate = bench_reference(args.quick)
    bench_block(args.quick, ref_rate)
    bench_scaling(args.quick)
    bench_radio_options(args.quick)
    bench_tiles(100.0 if args.quick else args.tile_res_m, 3 if args.quick else args.tile_rounds, args.compare_with)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
