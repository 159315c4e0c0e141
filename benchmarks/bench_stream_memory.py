"""Memory of two streaming steps, each in a fresh process: an engine map's results, and the fibre rasters.

    .venv/bin/python benchmarks/bench_stream_memory.py [--tasks 400] [--task-mb 2.4] [--workers 2]
                                                       [--resolution-m 10] [--config configs/shanghai-2021.toml]

1. **Engine map.** ``--tasks`` tile tasks of a :class:`sim.engine.LocalEngine` stage, each returning
   ``--task-mb`` MB (a 10 m coverage tile's outputs: 65,536 pixels x 36 bytes = 2.4 MB), read one by
   one as a run reads them (written to a file and dropped). Prints the parent's peak RSS growth: bounded by
   the tasks in flight (``IN_FLIGHT_PER_WORKER``), or, with every task submitted at once, all results.
2. **Fibre rasters.** The city's grid at ``--resolution-m`` (whole Shanghai at 10 m: 70 M land pixels),
   then :func:`sim.app.assess.assess_fibre`. Prints the peak RSS growth of the fibre stage over the grid.

RSS from ``/proc/self/status`` (VmHWM, reset through ``/proc/self/clear_refs``), Linux only. Nothing
here is a test; the figures vary with the allocator's reuse of freed memory.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MIB = 2.0 ** 20


def _rss() -> tuple[float, float]:
    """(current, peak) resident set of this process, MiB."""
    cur = peak = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                cur = int(line.split()[1]) / 1024.0
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024.0
    return cur, peak


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _result(shared, i, n_bytes):
    import numpy as np

    return np.full(int(n_bytes) // 4, float(i), dtype=np.float32)


def engine_map(tasks: int, task_mb: float, workers: int) -> None:
    from sim.engine import LocalEngine

    with tempfile.TemporaryFile() as sink, LocalEngine(workers).stage({}) as st:
        base, _ = _rss()
        _reset_peak()
        for _, out in st.map(_result, [(i, task_mb * 1e6) for i in range(tasks)]):
            sink.write(out[:16].tobytes())
            del out
        _, peak = _rss()
    print(f"engine map     {tasks} tasks x {task_mb:g} MB on {workers} workers: peak RSS growth "
          f"{peak - base:8.0f} MiB (all results: {tasks * task_mb * 1e6 / MIB:,.0f} MiB)")


def fibre(config: str, res_m: float) -> None:
    from sim import api
    from sim.app import assess as A
    from sim.app.inputs import build_rasters, check_inputs
    from sim.pixelstore import PixelStore

    sc = api.load_config(config, {"region.resolution_m": res_m})
    districts = check_inputs(sc)
    rasters = build_rasters(sc, districts)
    store = PixelStore(rasters.n_land)
    base, _ = _rss()
    _reset_peak()
    A.assess_fibre(sc, districts, rasters, A.Assessment(), store)
    _, peak = _rss()
    print(f"fibre rasters  {rasters.n_land:,} land pixels at {res_m:g} m: grid {base / 1024:.2f} GiB resident, "
          f"fibre stage peak growth {(peak - base) / 1024:6.2f} GiB")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=400)
    ap.add_argument("--task-mb", type=float, default=2.4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--resolution-m", type=float, default=10.0)
    ap.add_argument("--config", default="configs/shanghai-2021.toml")
    ap.add_argument("--step", choices=("engine", "fibre"), default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.step == "engine":
        engine_map(args.tasks, args.task_mb, args.workers)
    elif args.step == "fibre":
        fibre(args.config, args.resolution_m)
    else:   # each step in a fresh process: memory freed by one step is not reused by the next
        for step in ("engine", "fibre"):
            subprocess.run([sys.executable, __file__, "--step", step, *(argv or sys.argv[1:])], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
