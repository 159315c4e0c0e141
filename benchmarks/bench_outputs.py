"""Seconds of the "writing outputs" stage of a whole run, per file or group of files, now and at a base revision.

    .venv/bin/python benchmarks/bench_outputs.py [--config configs/shanghai-2025.toml] [--resolution-m 100]
                                                [--base REV] [--out DIR] [--interleaved N]

``--out DIR`` keeps the run folders (``DIR/now``, ``DIR/base``) for
``benchmarks/check_outputs_unchanged.py --dirs DIR/base DIR/now``.

Simulates the scenario once in memory (:func:`sim.app.run.simulate`), then times
:func:`sim.app.run.write_run_folder`, the writers wrapped to add up their wall seconds per file:

* ``cells.csv`` and the other CSVs (``files.write_csv``; inside the stage a hand-off to a writer thread);
* ``sites.gpkg`` and the other GeoPackages (``files.write_gpkg_layers``), and the site tables they
  are built from (``write_tables`` less its writes: ``SiteTable.to_geodataframe`` and friends);
* the map figures (``sim.maps``: building or swapping a frame's artists), their drawing by Agg and
  hand-off to a writer thread (``files.write_png``), the GeoTIFF hand-offs (``files.write_geotiff``),
  and the wait for the writer threads at the end of the stage;
* ``rest``: the stage less all of the above (the rasters streamed from the pixel store, the
  arrays of the maps);
* ``report.html``, ``report.md`` and the JSON files.

With ``--interleaved N`` the stage is instead timed N times per variant, the variants taking turns after one
simulation in this process: ``as main 7132565`` (the tables and maps in this process, matplotlib's default "rgba"
image stage, each COG copy waiting for a writer slot: the code before the outputs used both cores), ``serial``
(``outputs.MAP_PROCESSES = 1``) and ``both cores`` (the default);
wall and CPU seconds (this process and the forked one) and each variant's median wall over ``both cores``'.

With ``--base REV`` the same is first measured with the code of ``REV`` (a temporary ``git worktree``,
in a subprocess, back to back) and every row gets the ratio base / now. Wall seconds on a shared
machine move from run to run: compare rows of one invocation. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GROUPS = ("cells.csv", "other CSVs", "sites.gpkg", "other GeoPackages", "site tables (build)",
          "map figures (build)", "maps (Agg draw + PNG hand-off)", "GeoTIFF hand-offs", "writer threads (wait)",
          "report.html", "report.md + JSON", "rest", "writing outputs (stage)")


def _timed_writers(times: dict):
    """Wrap the writers of ``sim.report.files``, ``sim.maps`` and ``sim.report.render`` to add up wall seconds."""
    from sim import maps
    from sim.app import outputs
    from sim.report import files, render

    def wrap(module, name, group):
        fn = getattr(module, name, None)
        if fn is None:
            return

        def timed(*args, **kwargs):
            key = group(args) if callable(group) else group
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[key] = times.get(key, 0.0) + time.perf_counter() - t

        setattr(module, name, timed)

    def by_name(main: str, other: str):
        return lambda args: main if Path(args[0]).name == main else other

    wrap(files, "write_csv", by_name("cells.csv", "other CSVs"))
    wrap(files, "write_gpkg_layers", by_name("sites.gpkg", "other GeoPackages"))
    wrap(files, "write_png", "maps (Agg draw + PNG hand-off)")
    wrap(files, "write_geotiff", "GeoTIFF hand-offs")
    for name in ("raster_map", "district_map", "sites_map", "choropleth", "criteria_panels", "key_places_map"):
        wrap(maps, name, "map figures (build)")
    wrap(render, "write_report_html", "report.html")
    wrap(render, "write_report_md", "report.md + JSON")
    wrap(files, "write_json", "report.md + JSON")
    wrap(outputs, "write_tables", "write_tables")
    writing = outputs.writing_outputs

    @contextlib.contextmanager
    def timed_block():
        with writing():
            yield
            t = time.perf_counter()   # leaving the block waits for the writer threads
        times["writer threads (wait)"] = time.perf_counter() - t

    outputs.writing_outputs = timed_block


def measure(config: str, resolution_m: float, out: Path) -> dict:
    """Simulate ``config`` and write its run folder to ``out``; seconds per group (and of the simulation)."""
    import matplotlib

    matplotlib.use("Agg")
    from sim.app import run
    from sim.config import load_scenario, with_overrides

    sc = with_overrides(load_scenario(config), resolution_m=resolution_m)
    t = time.perf_counter()
    sim = run.simulate(sc)
    simulate_s = time.perf_counter() - t
    times: dict = {}
    _timed_writers(times)
    run_dir = run.O.create_run_dir(sc, out, True)
    result = run.write_run_folder(sim, run_dir)
    stage = float(result.summary["timings_s"]["writing outputs"])
    gpkg = times.get("sites.gpkg", 0.0) + times.get("other GeoPackages", 0.0)
    times["site tables (build)"] = times.pop("write_tables", 0.0) - gpkg - times.get("other CSVs", 0.0)
    times["writing outputs (stage)"] = stage
    total = sum(float(result.summary["timings_s"].get(k, 0.0)) for k in result.summary["timings_s"])
    whole = sum(times.get(k, 0.0) for k in GROUPS if k not in ("rest", "writing outputs (stage)", "report.html",
                                                                "report.md + JSON"))
    times["rest"] = stage - whole
    out = {"times": times, "simulate_s": simulate_s, "run_s": total, "shape": list(sim.grid.shape)}
    cells = getattr(sim.busy, "cells", None)
    if cells is not None and hasattr(files_module(), "csv_bytes"):   # the formatting alone, in this process
        t = time.perf_counter()
        ref = cells.to_csv(index=False, lineterminator="\n").encode("utf-8")
        out["cells_pandas_s"] = time.perf_counter() - t
        t = time.perf_counter()
        fast = files_module().csv_bytes(cells)
        out["cells_arrow_s"] = time.perf_counter() - t
        out["cells_same"] = fast == ref
    return out


VARIANTS = {"as main 7132565": (1, "rgba", True), "serial": (1, "data", False), "both cores": (None, "data", False)}
"""Variant -> (``outputs.MAP_PROCESSES``, ``maps.rasters.IMAGE_STAGE``, COG copies waiting for a writer slot as
before); None: the default."""


def interleaved(config: str, resolution_m: float, out: Path, repeat: int) -> dict:
    """Simulate once, then write the run folder ``repeat`` times per :data:`VARIANTS`, taking turns; seconds."""
    import os
    import statistics

    import matplotlib

    matplotlib.use("Agg")
    from sim.app import outputs, run
    from sim.config import load_scenario, with_overrides
    from sim.maps import rasters
    from sim.report import files

    submit_write = files.submit_write

    def bounded_copies(job, *, holds_arrays=True, on_cancel=None):   # as before: a COG copy waits for a slot
        return submit_write(job, holds_arrays=True, on_cancel=on_cancel)

    sc = with_overrides(load_scenario(config), resolution_m=resolution_m)
    sim = run.simulate(sc)
    default = outputs.MAP_PROCESSES
    walls: dict = {k: [] for k in VARIANTS}
    cpus: dict = {k: [] for k in VARIANTS}
    for _ in range(repeat):
        for name, (processes, stage, bounded) in VARIANTS.items():
            outputs.MAP_PROCESSES, rasters.IMAGE_STAGE = (default if processes is None else processes), stage
            files.submit_write = bounded_copies if bounded else submit_write
            run_dir = run.O.create_run_dir(sc, out / name.replace(", ", "-").replace(" ", "-"), True)
            c0, t = os.times(), time.perf_counter()
            run.write_run_folder(sim, run_dir)
            wall, c1 = time.perf_counter() - t, os.times()
            walls[name].append(wall)
            cpus[name].append(c1.user + c1.system + c1.children_user + c1.children_system
                              - (c0.user + c0.system + c0.children_user + c0.children_system))
    outputs.MAP_PROCESSES, rasters.IMAGE_STAGE, files.submit_write = default, "data", submit_write
    ref = statistics.median(walls["both cores"])
    return {"shape": list(sim.grid.shape), "processes": default,
            "rows": {k: (statistics.median(walls[k]), statistics.median(cpus[k]), statistics.median(walls[k]) / ref,
                         walls[k]) for k in VARIANTS}}


def files_module():
    from sim.report import files

    return files


def _base_times(rev: str, args, out: Path) -> dict:
    """:func:`measure` with the code of ``rev`` (a temporary worktree), in a subprocess, writing ``out``."""
    with tempfile.TemporaryDirectory(prefix="bench-outputs-") as tmp:
        tree = Path(tmp) / "base"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            res = Path(tmp) / "base.json"
            config = Path(args.config).resolve()
            with contextlib.suppress(ValueError):   # the base revision's copy of the config (its schema), named
                config = config.relative_to(ROOT)   # as in the current tree (summary.json records the name)
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--code", str(tree), "--config",
                            str(config), "--resolution-m", str(args.resolution_m),
                            "--run-dir", str(out), "--json", str(res)], cwd=tree, check=True)
            return json.loads(res.read_text())
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/shanghai-2025.toml", help="run from the repository root")
    ap.add_argument("--resolution-m", type=float, default=100.0)
    ap.add_argument("--base", help="git revision to measure first, back to back (e.g. main)")
    ap.add_argument("--out", type=Path, help="keep the run folders here: DIR/now, DIR/base (default: not kept)")
    ap.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)             # the run folder to write
    ap.add_argument("--code", type=Path, default=ROOT, help=argparse.SUPPRESS)   # the source tree to import
    ap.add_argument("--json", type=Path, help=argparse.SUPPRESS)                 # write the figures there
    ap.add_argument("--interleaved", type=int, metavar="N", help="time the variants N times each, taking turns")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(args.code))
    if args.interleaved:
        with tempfile.TemporaryDirectory(prefix="bench-outputs-") as tmp:
            res = interleaved(args.config, args.resolution_m, args.out or Path(tmp), args.interleaved)
        print(f"{Path(args.config).name} at {args.resolution_m:g} m ({res['shape'][0]} x {res['shape'][1]} pixels), "
              f"writing outputs (write_run_folder), {args.interleaved} runs per variant taking turns, medians; "
              f"maps on {res['processes']} processes by default")
        print(f"{'variant':16s} {'wall s':>7s} {'CPU s':>7s} {'wall / both cores':>18s}  walls")
        for k, (wall, cpu, ratio, walls) in res["rows"].items():
            print(f"{k:16s} {wall:7.2f} {cpu:7.2f} {ratio:18.2f}  {' '.join(f'{w:.1f}' for w in walls)}")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-outputs-") as tmp:
        keep = args.out or Path(tmp)
        keep.mkdir(parents=True, exist_ok=True)
        base = _base_times(args.base, args, keep / "base") if args.base else None
        now = measure(args.config, args.resolution_m, args.run_dir or keep / "now")
    if args.json:
        args.json.write_text(json.dumps(now))
        return 0
    shape = now["shape"]
    print(f"{Path(args.config).name} at {args.resolution_m:g} m ({shape[0]} x {shape[1]} pixels): simulate "
          f"{now['simulate_s']:.1f} s, whole run {now['run_s']:.1f} s (stages)")
    head = f"{'writing outputs, wall s':34s} {'now':>7s}"
    if base:
        head += f" {'base ' + args.base:>14s} {'base/now':>9s}"
    print(head)
    for g in GROUPS:
        line = f"{g:34s} {now['times'].get(g, 0.0):7.2f}"
        if base:
            b, n = base["times"].get(g, 0.0), now["times"].get(g, 0.0)
            line += f" {b:14.2f} {(b / n if n > 0.005 else float('nan')):9.2f}"
        print(line)
    if "cells_arrow_s" in now:
        print(f"cells.csv formatted in this process: pandas to_csv {now['cells_pandas_s']:.2f} s, "
              f"files.csv_bytes {now['cells_arrow_s']:.2f} s, "
              f"{'the same bytes' if now['cells_same'] else 'DIFFERENT BYTES'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
