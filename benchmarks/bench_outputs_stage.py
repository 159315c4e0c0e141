"""Wall seconds of the "writing outputs" stage alone, per step, from a saved simulation (no re-simulating).

    .venv/bin/python benchmarks/bench_outputs_stage.py snapshot DIR [--config C] [--resolution-m 50]
    .venv/bin/python benchmarks/bench_outputs_stage.py time DIR [--repeat N] [--out RUN] [--profile FILE]

``snapshot`` simulates the scenario once (:func:`sim.app.run.simulate`) and saves the
:class:`~sim.app.run.Simulation` to ``DIR`` (a pickle and a copy of its pixel store). ``time`` loads it
and writes the run folder (:func:`sim.app.run.write_run_folder`) ``N`` times, printing for each the
stage's wall and CPU seconds (this process and its children: the forked map process) and the wall
seconds between its progress steps (``writing outputs: i of n``), then the per-step medians. With
``--profile FILE`` the last repeat runs under cProfile (this process only; the stats go to ``FILE``).

A snapshot is tied to the code that made it (the pickle holds its classes): make a new one after
changing the simulation's data structures. Wall seconds on a shared machine move from run to run:
compare variants timed in one session, taking turns. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import copyreg
import functools
import os
import pickle
import shutil
import statistics
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _proxy(d: dict):
    return types.MappingProxyType(d)


copyreg.pickle(types.MappingProxyType, lambda m: (_proxy, (dict(m),)))   # frozen config tables


def snapshot(folder: Path, config: str, resolution_m: float) -> None:
    """Simulate ``config`` at ``resolution_m`` and save it to ``folder`` (``sim.pkl``, ``store/``)."""
    import matplotlib

    matplotlib.use("Agg")
    from sim.app import run
    from sim.config import load_scenario, with_overrides

    sc = with_overrides(load_scenario(config), resolution_m=resolution_m)
    t = time.perf_counter()
    sim = run.simulate(sc)
    print(f"simulated in {time.perf_counter() - t:.1f} s; grid {sim.grid.shape}")
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "store").exists():
        shutil.rmtree(folder / "store")
    shutil.copytree(sim.store.dir, folder / "store")
    store = sim.store
    finalizer, store_dir = store._finalizer, store.dir
    try:   # the store's clean-up (a weakref.finalize) does not travel; its folder is the copy
        del store._finalizer
        store.dir = str((folder / "store").resolve())
        sim.timer.progress = None
        with open(folder / "sim.pkl", "wb") as f:
            pickle.dump(sim, f, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        store._finalizer, store.dir = finalizer, store_dir
    print(f"saved to {folder}")


def load(folder: Path):
    """The :class:`~sim.app.run.Simulation` saved in ``folder`` (its pixel store read in place, never removed)."""
    import weakref

    sys.modules["__main__"]._proxy = _proxy   # what the pickle names, whoever imports this module
    with open(folder / "sim.pkl", "rb") as f:
        sim = pickle.load(f)
    sim.store._finalizer = weakref.finalize(sim.store, lambda: None)
    return sim


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _mark(marks: list, stage, done=None, total=None) -> None:
    if stage == "writing outputs" and done is not None:
        marks.append((done, total, time.perf_counter()))


def time_stage(folder: Path, repeat: int, out: Path, profile: Path | None) -> None:
    """Write the run folder of the saved simulation ``repeat`` times; print per-step wall seconds."""
    import matplotlib

    matplotlib.use("Agg")
    from sim.app import run
    from sim.app.stages import StageTimer

    sim = load(folder)
    rows = []
    for i in range(repeat):
        marks: list = []
        sim.timer = StageTimer(functools.partial(_mark, marks))
        run_dir = run.O.create_run_dir(sim.scenario, out, True)
        c0, t0 = _cpu_s(), time.perf_counter()
        if profile is not None and i == repeat - 1:
            import cProfile

            with cProfile.Profile() as prof:
                run.write_run_folder(sim, run_dir)
            prof.dump_stats(str(profile))
        else:
            run.write_run_folder(sim, run_dir)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
        steps = [b[2] - a[2] for a, b in zip(marks, marks[1:])]
        rows.append((wall, cpu, steps))
        print(f"run {i + 1}: wall {wall:6.2f} s, CPU {cpu:6.2f} s; steps " +
              " ".join(f"{a[0]}->{b[0]} {s:5.2f}" for a, b, s in zip(marks, marks[1:], steps)), flush=True)
    if repeat > 1:
        n = min(len(r[2]) for r in rows)
        print(f"median: wall {statistics.median(r[0] for r in rows):6.2f} s, CPU "
              f"{statistics.median(r[1] for r in rows):6.2f} s; steps " +
              " ".join(f"{statistics.median(r[2][k] for r in rows):5.2f}" for k in range(n)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("snapshot", "time"))
    ap.add_argument("folder", type=Path, help="where the snapshot is (or goes)")
    ap.add_argument("--config", default="configs/shanghai-2021.toml")
    ap.add_argument("--resolution-m", type=float, default=50.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, help="run folder to write (default: FOLDER/run)")
    ap.add_argument("--profile", type=Path, help="cProfile stats of the last repeat to this file")
    args = ap.parse_args(argv)
    if args.what == "snapshot":
        snapshot(args.folder, args.config, args.resolution_m)
    else:
        time_stage(args.folder, args.repeat, args.out or args.folder / "run", args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
