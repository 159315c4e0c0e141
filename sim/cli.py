"""Command line: ``gigacity validate|run|plan|compare`` (also ``python -m sim``).

The only module that touches argv, the terminal and progress output. Stages are log
records of the ``gigacity`` logger (``-v``/``--log-level``; ``--quiet`` keeps errors only);
on a terminal every stage that counts its work draws a progress bar (tqdm), elsewhere a
plain line per stage. Library errors (:class:`sim.errors.GigacityError`) become one line on
stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

from . import __version__
from .errors import ConfigError, GigacityError, InputError

__all__ = ["main", "Progress", "LOGGER_NAME"]

EXIT_OK = 0
EXIT_INPUT = 2
LOGGER_NAME = "gigacity"
log = logging.getLogger(LOGGER_NAME)


class _ElapsedFormatter(logging.Formatter):
    """``[   12.3 s] message`` for stage records, ``gigacity: level: message`` for warnings and above."""

    def __init__(self):
        super().__init__()
        self.t0 = time.perf_counter()

    def format(self, record):
        if record.levelno >= logging.WARNING:
            return f"gigacity: {record.levelname.lower()}: {record.getMessage()}"
        return f"[{time.perf_counter() - self.t0:7.1f} s] {record.getMessage()}"


class _TqdmSafeHandler(logging.StreamHandler):
    """A stream handler that writes around any progress bar on the terminal."""

    def emit(self, record):
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def setup_logging(level: int, stream=None) -> logging.Handler:
    """Send the ``gigacity`` logger's records at ``level`` and above to ``stream`` (stderr)."""
    handler = _TqdmSafeHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(_ElapsedFormatter())
    for h in list(log.handlers):
        log.removeHandler(h)
    log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    return handler


def _columns(stream) -> int | None:
    """Width for the progress bar: None where the terminal reports its size (tqdm follows resizes),
    else ``COLUMNS`` or 100 (on a pseudo-terminal of size 0 x 0, e.g. under ``script``, tqdm would
    hide the bar: no column to draw in, no row to draw on)."""
    try:
        if os.get_terminal_size(stream.fileno()).columns > 0:
            return None
    except (OSError, AttributeError, ValueError):
        pass
    return shutil.get_terminal_size(fallback=(100, 24)).columns or 100


class Progress:
    """The progress callback of a command: a log record per stage, a bar for counted stages on a terminal.

    ``progress(stage)`` starts a stage (a log record); ``progress(stage, done, total)``
    advances its bar (tqdm, on a terminal only; elsewhere the stage's one line stays the
    only output, so logs and pipes get plain lines).
    """

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self._stage = None
        self._t_stage = time.perf_counter()
        self._bar = None
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def _close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __call__(self, stage: str, done: int | None = None, total: int | None = None) -> None:
        if _SIGTERM_SEEN:
            raise _interrupt(_SIGTERM_SEEN[0])
        if stage != self._stage:
            self._close()
            now = time.perf_counter()
            if self._stage is not None:
                log.debug("%s: %.2f s", self._stage, now - self._t_stage)
            self._stage, self._t_stage = stage, now
            log.info(stage)
        elif total:
            log.debug("%s: %s of %s", stage, done, total)
        if self.quiet or not total or not self._tty or not log.isEnabledFor(logging.INFO):
            return
        if self._bar is None:
            from tqdm import tqdm

            cols = _columns(self.stream)
            self._bar = tqdm(total=total, desc=f"  {stage}", file=self.stream, leave=True, ncols=cols,
                             nrows=None if cols is None else 24, dynamic_ncols=cols is None,
                             unit="step", mininterval=0.2,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")
        self._bar.n = min(int(done or 0), total)
        self._bar.refresh()
        if done is not None and done >= total:
            self._close()

    def close(self):
        """Close the bar of the last stage."""
        self._close()


def _fmt_warning(message, category, filename, lineno, line=None):
    return f"gigacity: warning: {message}\n"


def _load(args):
    from .config import load_scenario, with_overrides

    sets = list(args.set or ())
    flags = {}   # --engine / --scheduler: set items named after their flag in errors
    for flag, key in (("--engine", "engine"), ("--scheduler", "scheduler")):
        value = getattr(args, key, None)
        if value is not None:
            sets.append((f"compute.{key}", value))
            flags[f"compute.{key}"] = flag
    if getattr(args, "engine", None) == "local" and getattr(args, "scheduler", None):
        raise InputError("--engine", None, "expected 'dask' (or no --engine) with --scheduler, got 'local'")
    try:
        sc = load_scenario(args.config, sets)
    except ConfigError as exc:
        if exc.source == "--set" and exc.field in flags:
            raise ConfigError(flags[exc.field], None, exc.message) from None
        raise
    return with_overrides(sc, resolution_m=args.resolution_m)


def _report_line(run_dir: Path) -> str:
    report = Path(run_dir) / "report.html"
    return f"report: {report}" if report.is_file() else f"run folder: {run_dir}"


def _cmd_validate(args) -> int:
    from .app.validate import describe_scenario

    sc = _load(args)
    print(describe_scenario(sc))
    return EXIT_OK


def _cmd_run(args) -> int:
    from .app.run import run_scenario

    sc = _load(args)
    progress = Progress(quiet=args.quiet)
    try:
        result = run_scenario(
            sc,
            out_dir=args.out,
            force=args.force,
            workers=args.workers,
            progress=progress,
        )
    finally:
        progress.close()
    if not args.quiet:
        print(result.headline)
        print(f"run folder: {result.run_dir}")
    print(_report_line(result.run_dir))
    return EXIT_OK


def _cmd_compare(args) -> int:
    from .app.compare import compare_run_dirs

    text, out = compare_run_dirs(Path(args.run_a), Path(args.run_b), out_dir=args.out, force=args.force)
    print(text)
    if out is not None:
        print(f"written: {out}")
    return EXIT_OK


def _cmd_plan(args) -> int:
    from .app.plan import plan_scenario

    sc = _load(args)
    progress = Progress(quiet=args.quiet)
    try:
        result = plan_scenario(sc, target=args.target, budget=args.budget, out_dir=args.out, force=args.force,
                               progress=progress)
    finally:
        progress.close()
    if not args.quiet:
        print(result.headline)
    print(f"run folder: {result.run_dir}")
    print(f"planned scenario: {Path(result.run_dir) / 'plan.toml'} (gigacity run it, then gigacity compare)")
    return EXIT_OK


def _int_arg(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _positive_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gigacity",
        description="Simulate a city's 5G and gigabit fibre and report it against the One-Gbps city criteria.",
    )
    p.add_argument("--version", action="version", version=f"gigacity {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-v: debug)")
    common.add_argument("--log-level", default=None, choices=("debug", "info", "warning", "error"),
                        type=str.lower, help="log level (default: info; --quiet: error)")
    common.add_argument("--quiet", action="store_true", help="errors only: no stage lines or progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    set_help = ("override a config key, typed by the schema (repeatable), e.g. --set radio.k_sites=16 "
                "--set deployment.sites.cmcc=25000")

    v = sub.add_parser("validate", help="check a scenario config and print its summary", parents=[common])
    v.add_argument("config", help="scenario TOML file")
    v.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help=set_help)
    v.add_argument("--resolution-m", type=_positive_float, default=None, help="override region.resolution_m")
    v.set_defaults(func=_cmd_validate)

    def add_run_options(q):
        q.add_argument("config", help="scenario TOML file")
        q.add_argument("--out", type=str, default=None,
                       help="run folder (default: <output.dir>/<scenario>-<timestamp>)")
        q.add_argument("--resolution-m", type=_positive_float, default=None, help="override region.resolution_m")
        q.add_argument("--workers", type=int, default=None,
                       help="worker processes for the tiles (local engine), or LocalCluster workers (dask)")
        q.add_argument("--engine", choices=("local", "dask"), default=None,
                       help="where the tiles run (default: compute.engine, 'local'); dask needs .[dask]")
        q.add_argument("--scheduler", type=str, default=None, metavar="tcp://HOST:PORT",
                       help="run the tiles on this Dask scheduler's workers (implies --engine dask)")
        q.add_argument("--force", action="store_true", help="write into an existing run folder")
        q.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help=set_help)

    r = sub.add_parser("run", help="run a scenario and write its run folder", parents=[common])
    add_run_options(r)
    r.set_defaults(func=_cmd_run)

    pl = sub.add_parser("plan", help="add sites greedily until a population coverage target is met",
                        parents=[common])
    pl.add_argument("config", help="scenario TOML file")
    pl.add_argument("--target", type=_positive_float, default=None,
                    help="covered population share to reach, in (0, 1] (default: planning.target_pop_share)")
    pl.add_argument("--budget", type=_int_arg, default=None, help="most sites to add (default: planning.budget_sites)")
    pl.add_argument("--out", type=str, default=None,
                    help="run folder (default: <output.dir>/<scenario>-plan-<timestamp>)")
    pl.add_argument("--resolution-m", type=_positive_float, default=None, help="override region.resolution_m")
    pl.add_argument("--force", action="store_true", help="write into an existing run folder")
    pl.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help=set_help)
    pl.set_defaults(func=_cmd_plan)

    c = sub.add_parser("compare", help="compare the indicators of two run folders", parents=[common])
    c.add_argument("run_a")
    c.add_argument("run_b")
    c.add_argument("--out", type=str, default=None, help="folder for the comparison files (default: none written)")
    c.add_argument("--force", action="store_true", help="overwrite files in --out")
    c.set_defaults(func=_cmd_compare)
    return p


EXIT_SIGINT = 130
EXIT_SIGTERM = 143
"""128 + the signal number, as a shell reports a process stopped by SIGINT (2) or SIGTERM (15)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like SIGINT's KeyboardInterrupt so that every ``finally``
    runs: worker processes are stopped (:func:`sim.coverage.compute_coverage`) and temporary
    files removed (:func:`sim.report.files.atomic_path`)."""


_SIGTERM_SEEN = []
"""The SIGTERM/SIGINT signals received: the exception the handler raises can be swallowed where Python
ignores exceptions (e.g. in ``logging``'s fork handlers while a worker pool starts), so the next
progress call and the end of the command raise it again."""


def _interrupt(signum) -> BaseException:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


_HANDLER_PID = [0]
"""The process that installed :func:`_on_signal` (the command's)."""


def _on_signal(signum, frame):
    """SIGTERM -> :class:`Terminated`, SIGINT -> ``KeyboardInterrupt``, raised where the signal landed."""
    if os.getpid() != _HANDLER_PID[0]:
        # a worker forked just after the signal landed here runs the tripped handler too (CPython runs pending
        # handlers in the child): the command's process handles it and stops its workers; raising here would
        # print the worker's traceback
        return
    _SIGTERM_SEEN.append(signum)
    if frame is not None and frame.f_globals.get("__name__") == "logging":
        return   # inside logging's fork hooks Python would print and swallow it: the next progress call raises
    raise _interrupt(signum)


def _check_out_arg(args) -> None:
    out = getattr(args, "out", None)
    if out is not None and str(out) == "":
        raise InputError("--out", None, "expected a folder path, got ''")
    if out is not None:
        args.out = Path(out)


def _stdout_gone() -> int:
    """stdout's reader left (``gigacity compare A B | head -1``): not an error of ours."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK


def console_main() -> None:
    """The ``gigacity`` script and ``python -m sim``: :func:`main`, then exit.

    After SIGINT or SIGTERM (everything already cleaned up by :func:`main`) the process ends
    with ``os._exit``: the interpreter's exit hooks would otherwise wait on a process pool
    whose workers were stopped mid-message (``concurrent.futures`` joins its manager thread
    at exit) and hang or print a traceback.
    """
    code = main()
    if code in (EXIT_SIGINT, EXIT_SIGTERM):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    sys.exit(code)


GDAL_CACHEMAX_MB = 256
"""GDAL's block cache of a command, MiB (``GDAL_CACHEMAX`` unless the environment sets it)."""


def main(argv=None) -> int:
    """Entry point of ``gigacity`` and ``python -m sim``; returns the exit code.

    Exit codes: 0 done, 2 bad input or a file-system error (one line on stderr), 130 SIGINT,
    143 SIGTERM (one line; workers stopped, temporary files removed). A closed stdout
    (``| head -1``) ends the command quietly with 0.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # GDAL's block cache (default 5 % of the RAM) holds the GeoTIFF blocks being written: capped, as the rasters
    # stream window by window (sim.report.rasterfile); read when GDAL first caches a block. The user's value wins.
    os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHEMAX_MB))
    if args.quiet:
        level = logging.ERROR
    elif args.log_level:
        level = getattr(logging, args.log_level.upper())
    else:
        level = logging.DEBUG if args.verbose else logging.INFO
    setup_logging(level)
    old_format = warnings.formatwarning
    warnings.formatwarning = _fmt_warning
    old_term = None
    _SIGTERM_SEEN.clear()
    if threading.current_thread() is threading.main_thread():
        _HANDLER_PID[0] = os.getpid()
        old_term = signal.signal(signal.SIGTERM, _on_signal)
        old_int = signal.signal(signal.SIGINT, _on_signal)
    try:
        _check_out_arg(args)
        code = args.func(args)
        if _SIGTERM_SEEN:
            raise _interrupt(_SIGTERM_SEEN[0])
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _stdout_gone()
    except GigacityError as exc:
        print(f"gigacity: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except Terminated:
        print("gigacity: terminated (SIGTERM); nothing more written", file=sys.stderr)
        return EXIT_SIGTERM
    except KeyboardInterrupt:
        print("gigacity: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except OSError as exc:   # the file system said no (full disk, read-only folder, name too long)
        where = f"{exc.filename}: " if exc.filename is not None else ""
        print(f"gigacity: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_INPUT
    except MemoryError:
        print("gigacity: error: out of memory; use a coarser region.resolution_m, fewer sites, or set "
              "region.max_memory_gb to what this machine can give", file=sys.stderr)
        return EXIT_INPUT
    finally:
        warnings.formatwarning = old_format
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
            signal.signal(signal.SIGINT, old_int)
