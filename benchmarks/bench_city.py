"""A whole-city run timed from outside: wall time, stage times and peak memory of the process tree.

    .venv/bin/python benchmarks/bench_city.py [--config configs/shanghai-2021.toml] [--resolution-m 100]
                                              [--workers N] [--out DIR] [--interval-s 0.2]

Runs ``python -m sim run CONFIG --resolution-m R --out DIR --force [--workers N]`` in a
subprocess and, every ``--interval-s`` seconds while it runs, sums the proportional set size
(``Pss`` of ``/proc/PID/smaps_rollup``) of the process and all its descendants (worker
processes included): PSS counts a page shared by k processes as 1/k in each, so the sum is the
memory the run holds, without counting shared libraries or fork-shared arrays twice. Prints
the wall time, the CPU time of the run (user + system, its threads and worker processes: on a
shared machine a steadier figure than the wall time), the stage times of ``summary.json``
(``timings_s``), the peak PSS in GiB (and when it was reached) and the land pixels of the grid.

The targets of the issue "tiles all the way": whole Shanghai at 25 m in <= 90 s and <= 3 GiB
peak PSS on 2 cores, at 100 m in <= 30 s. Linux only (``/proc``). Nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GIB = 1024.0 ** 3


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (``/proc/PID/task/*/children``)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(v) for v in f.read().split())
        except OSError:
            continue
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants alive now."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(_children(p))
    return seen


def pss_bytes(pid: int) -> int:
    """``Pss`` of one process (``/proc/PID/smaps_rollup``), bytes; 0 when it has gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_pss_bytes(pid: int) -> int:
    """Sum of the PSS of ``pid`` and its descendants, bytes."""
    return sum(pss_bytes(p) for p in process_tree(pid))


class PeakSampler(threading.Thread):
    """Samples :func:`tree_pss_bytes` of a process every ``interval_s`` until stopped; keeps the peak."""

    def __init__(self, pid: int, interval_s: float):
        super().__init__(daemon=True)
        self.pid, self.interval_s = pid, interval_s
        self.peak_bytes, self.peak_at_s, self.n_samples = 0, 0.0, 0
        self._stop_event = threading.Event()
        self._t0 = time.perf_counter()

    def run(self) -> None:
        while not self._stop_event.is_set():
            v = tree_pss_bytes(self.pid)
            self.n_samples += 1
            if v > self.peak_bytes:
                self.peak_bytes, self.peak_at_s = v, time.perf_counter() - self._t0
            self._stop_event.wait(self.interval_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def run_city(config: str, resolution_m: float, out_dir: Path, workers: int | None, interval_s: float,
             extra: list[str]) -> dict:
    """One run in a subprocess: its wall time, peak PSS, summary timings and land pixels."""
    cmd = [sys.executable, "-m", "sim", "run", config, "--resolution-m", f"{resolution_m:g}", "--out", str(out_dir),
           "--force", "--quiet"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    cmd += extra
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    sampler = PeakSampler(proc.pid, interval_s)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)   # the run's CPU seconds (its threads and waited-for workers)
    wall_s = time.perf_counter() - t0
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    sampler.stop()
    if rc != 0:
        raise SystemExit(f"bench_city: the run failed (exit {rc}): {' '.join(cmd)}")
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    return {"cmd": cmd, "wall_s": wall_s, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_pss_gib": sampler.peak_bytes / GIB, "peak_at_s": sampler.peak_at_s,
            "samples": sampler.n_samples, "timings_s": summary.get("timings_s", {}),
            "land_pixels": summary.get("grid", {}).get("land_pixels"), "shape": summary.get("grid", {}).get("shape")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/shanghai-2021.toml", help="scenario TOML")
    ap.add_argument("--resolution-m", type=float, default=100.0, help="grid resolution, m")
    ap.add_argument("--workers", type=int, default=None, help="worker processes (default: the run's own)")
    ap.add_argument("--out", default=None, help="run folder (default: a temporary folder, removed)")
    ap.add_argument("--interval-s", type=float, default=0.2, help="PSS sampling interval, s")
    ap.add_argument("extra", nargs="*", help="more arguments for `sim run` (after --)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_city-") as tmp:
        out_dir = Path(args.out) if args.out else Path(tmp) / "run"
        r = run_city(args.config, args.resolution_m, out_dir, args.workers, args.interval_s, args.extra)
    print(f"command      {' '.join(r['cmd'][1:])}")
    print(f"grid         {r['shape'][0]} x {r['shape'][1]} at {args.resolution_m:g} m, "
          f"{r['land_pixels']:,} land pixels")
    print(f"cpus         {os.cpu_count()} (load average {os.getloadavg()[0]:.2f} at the end)")
    print(f"wall         {r['wall_s']:8.1f} s")
    print(f"cpu          {r['cpu_s']:8.1f} s (user + system, the run and its worker processes)")
    for stage, s in r["timings_s"].items():
        print(f"  {stage:<22} {s:8.1f} s")
    print(f"peak PSS     {r['peak_pss_gib']:8.2f} GiB (at {r['peak_at_s']:.1f} s; {r['samples']} samples "
          f"every {args.interval_s:g} s, process tree)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
