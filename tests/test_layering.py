"""The package's one-way layering and room sizes (docs/architecture.md), checked by parsing every module.

Each module of ``sim/`` (found with ``rglob``) must be listed in :data:`ALLOWED` with the sim
modules it may import; an entry naming a package (``report``, ``app``) admits its modules.
Beyond the import arrows: only the commands (``app.*``) and ``cli`` know the scenario config;
the physics, the kernel and the indicator arithmetic import numpy and the standard library
only; no module takes another's private names; files are read only by the readers and
written only by ``report``; modules and functions stay small; ``import sim`` stays light.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parent.parent / "sim"

BASE = {"errors", "units"}
ALLOWED: dict[str, set[str]] = {
    "__init__": set(),
    "__main__": {"cli"},
    "errors": set(),
    "units": set(),
    # inputs
    "config": BASE | {"compose"},   # load_scenario hands the file to compose (imported when called)
    "compose": BASE | {"config"},   # extends chains and --set items over the config schema
    "geodata": BASE,
    "grid": BASE,
    "results": BASE,
    "sites": BASE | {"geodata", "results"},
    "sitefiles": BASE | {"geodata", "sites"},
    "placement": BASE | {"geodata", "sites"},
    # physics and the kernel
    "propagation": BASE | {"results"},
    "antenna": BASE,
    "linkmodel": BASE,
    "linkfield": BASE | {"linkmodel"},
    "shadowing": BASE | {"propagation", "results"},
    "pairpower": BASE | {"propagation", "antenna", "linkmodel", "shadowing", "results"},
    "kernel": BASE | {"pairpower", "propagation", "linkmodel", "linkfield", "shadowing", "results"},
    "busyload": BASE | {"kernel", "linkfield", "linkmodel", "results"},
    "engine": BASE,
    "pixelstore": BASE,
    "dask_engine": BASE | {"engine"},   # optional (.[dask]); imported only when a run asks for the Dask engine
    "coverage": BASE | {"grid", "kernel", "results", "engine", "pixelstore"},
    # load, fibre, indicators, criteria
    "queueing": BASE,
    "traffic": BASE | {"queueing"},
    "cellsim": BASE | {"queueing"},
    "broadband": BASE | {"queueing"},
    "indicators": BASE | {"pixelstore"},
    "criteria": BASE,
    "planning": BASE | {"grid", "sites", "placement", "coverage", "kernel", "results", "propagation"},
    # the answer: maps are drawn, report writes
    "maps": {"maps.frame", "maps.rasters", "maps.districts", "maps.charts"},   # the package: its rooms' names
    "maps.frame": BASE | {"geodata"},
    "maps.rasters": BASE | {"maps.frame"},
    "maps.districts": BASE | {"geodata", "maps.frame"},
    "maps.charts": BASE | {"maps.frame"},
    "report": set(),
    "report.csvtext": set(),
    "report.files": BASE | {"grid", "report.csvtext"},
    "report.runfolder": BASE | {"grid", "criteria", "report.files"},
    "report.tables": BASE,
    "report.rasterfile": BASE | {"grid", "report.files"},
    "report.forked": BASE | {"report.files"},
    "report.render": BASE | {"criteria", "geodata", "report.files", "report.runfolder", "report.tables"},
    # the commands
    "app": set(),
    "app.stages": set(),
    "app.inputs": BASE | {"config", "geodata", "grid", "results", "sites", "sitefiles", "placement", "linkmodel",
                          "linkfield"},
    "app.busyhour": BASE | {"config", "traffic", "broadband", "indicators", "kernel", "busyload", "cellsim",
                            "engine", "report", "pixelstore", "results", "app.inputs", "app.stages"},
    "app.assess": BASE | {"config", "criteria", "indicators", "broadband", "geodata", "app.busyhour", "app.inputs"},
    "app.outputs": BASE | {"config", "maps", "report", "coverage", "criteria", "grid", "pixelstore", "app.assess",
                           "app.busyhour"},
    "app.run": BASE | {"config", "coverage", "engine", "grid", "pixelstore", "report", "app.assess", "app.outputs",
                       "app.busyhour", "app.inputs", "app.stages", "dask_engine"},
    "app.plan": BASE | {"config", "maps", "planning", "report", "sites", "linkfield", "app.inputs", "app.outputs",
                        "app.stages"},
    "app.compare": BASE | {"maps", "report"},
    "app.validate": BASE | {"config", "grid", "app.inputs"},
    "cli": {"errors", "config", "app.run", "app.plan", "app.compare", "app.validate"},
    # the Python API: the commands for notebooks, in memory
    "api": {"errors", "config", "compose", "app.run", "app.stages"},
}
"""Module -> the sim modules it may import (docs/architecture.md, "Rooms")."""

NUMPY_ONLY = {"units", "errors", "results", "propagation", "antenna", "linkmodel", "linkfield", "shadowing",
              "pairpower", "kernel", "busyload", "indicators"}
"""The physics, the kernel and the indicator arithmetic: numpy and the standard library only."""

READERS = {"config", "compose", "geodata", "sitefiles", "report.runfolder"}
"""The only modules that read files."""

WRITERS_PREFIX = "report"
SCRATCH = {"engine", "dask_engine", "pixelstore"}
"""Engines spill kept tile results to a temporary folder of their own (removed when the stage ends):
the only files they read are those they wrote; no user file passes through them."""
"""Only the report package writes files."""

MAX_MODULE_LINES = 850
MAX_FUNCTION_LINES = 120
LONG_FUNCTIONS = {
    "kernel.coverage_block": "the hot path, fused in place for speed (benchmarks/bench_kernel.py)",
    "queueing._ps_process": "one simpy event loop of processor sharing",
    "coverage.compute_coverage": "the create / compute blocks / combine / finalize reduction in one place",
    "broadband.pon_busy_hour": "one PON port's simpy busy hour with its replications",
}
"""Functions allowed over :data:`MAX_FUNCTION_LINES`, with the reason."""


def _module_name(path: Path) -> str:
    rel = path.relative_to(SIM).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(SIM.rglob("*.py"))}


def _package_of(name: str, path: Path) -> list[str]:
    """The package parts a relative import of this module starts from."""
    parts = name.split(".") if name not in ("__init__", "__main__") else []
    return parts if path.name == "__init__.py" else parts[:-1]


class _Imports(ast.NodeVisitor):
    """Sim modules imported, third-party top-level packages, private names taken, file calls."""

    def __init__(self, name: str, path: Path):
        self.name, self.path = name, path
        self.sim: set[str] = set()
        self.third: set[str] = set()
        self.private: list[str] = []
        self.aliases: dict[str, str] = {}   # local name -> sim module
        self.reads: list[int] = []
        self.writes: list[int] = []

    def _sim_module(self, node: ast.ImportFrom) -> str | None:
        if node.level == 0:
            if node.module and node.module.split(".")[0] == "sim":
                return ".".join(node.module.split(".")[1:])
            return None
        base = _package_of(self.name, self.path)
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        return ".".join(base + (node.module.split(".") if node.module else []))

    def visit_ImportFrom(self, node):
        mod = self._sim_module(node)
        if mod is None:
            if node.module:
                self.third.add(node.module.split(".")[0])
            return
        for a in node.names:
            sub = f"{mod}.{a.name}" if mod else a.name
            if sub in MODULES:
                self.sim.add(sub)
                self.aliases[a.asname or a.name] = sub
            else:
                if mod:
                    self.sim.add(mod)
                if a.name.startswith("_") and not a.name.startswith("__") and mod != self.name:
                    self.private.append(f"{mod}.{a.name}")

    def visit_Import(self, node):
        for a in node.names:
            parts = a.name.split(".")
            if parts[0] == "sim":
                self.sim.add(".".join(parts[1:]))
            else:
                self.third.add(parts[0])

    def visit_Attribute(self, node):
        if isinstance(node.value, ast.Name) and node.value.id in self.aliases:
            if node.attr.startswith("_") and not node.attr.startswith("__"):
                self.private.append(f"{self.aliases[node.value.id]}.{node.attr}")
        self.generic_visit(node)

    def visit_Call(self, node):
        kind = _file_call(node)
        if kind == "read":
            self.reads.append(node.lineno)
        elif kind == "write":
            self.writes.append(node.lineno)
        self.generic_visit(node)


_READ_MODULES = {"pd", "pandas", "gpd", "geopandas", "pyogrio", "np", "numpy", "rasterio", "json", "tomllib"}


def _mode(node: ast.Call) -> str:
    args = [a for a in node.args[1:2]] + [k.value for k in node.keywords if k.arg == "mode"]
    return next((a.value for a in args if isinstance(a, ast.Constant) and isinstance(a.value, str)), "r")


def _file_call(node: ast.Call) -> str | None:
    """'read', 'write' or None: what a call does to files."""
    f = node.func
    if isinstance(f, ast.Name) and f.id == "open" or isinstance(f, ast.Attribute) and f.attr == "open" and (
            isinstance(f.value, ast.Name) and f.value.id == "rasterio" or not node.args):
        return "write" if set(_mode(node)) & set("wax+") else "read"
    if not isinstance(f, ast.Attribute):
        return None
    owner = f.value.id if isinstance(f.value, ast.Name) else None
    if f.attr in ("read_text", "read_bytes") or owner in _READ_MODULES and (
            f.attr.startswith("read_") or f.attr == "load"):
        return "read"
    if f.attr in ("write_text", "write_bytes", "to_csv", "to_file", "savefig", "mkdir", "unlink", "touch",
                  "write_dataframe") or owner == "json" and f.attr == "dump" or owner == "os" and f.attr in (
            "replace", "rename", "remove", "makedirs"):
        return "write"
    return None


def _scan(name: str) -> _Imports:
    v = _Imports(name, MODULES[name])
    v.visit(ast.parse(MODULES[name].read_text(encoding="utf-8")))
    return v


def _allowed(imported: str, allowed: set[str]) -> bool:
    return any(imported == a or imported.startswith(a + ".") for a in allowed)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_only_layers_above(module):
    assert module in ALLOWED, f"sim/{module} is not placed in the layering (tests/test_layering.py ALLOWED)"
    v = _scan(module)
    bad = sorted(m for m in v.sim - {module} if not _allowed(m, ALLOWED[module]))
    assert not bad, f"sim/{module} imports {bad}"
    if module in NUMPY_ONLY:
        extra = v.third - set(sys.stdlib_module_names) - {"numpy"}
        assert not extra, f"sim/{module} imports {sorted(extra)}: the physics and arithmetic use numpy only"


def test_every_listed_module_exists():
    assert not set(ALLOWED) - set(MODULES), f"listed but missing: {sorted(set(ALLOWED) - set(MODULES))}"


def test_only_the_commands_know_the_scenario_config():
    users = {m for m in MODULES if "config" in _scan(m).sim and m != "config"}
    assert users <= {m for m in MODULES if m.startswith("app.")} | {"cli", "api", "compose"}, sorted(users)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_takes_another_modules_private_names(module):
    assert not _scan(module).private, f"sim/{module} uses private names {_scan(module).private}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_files_are_read_by_the_readers_and_written_by_report(module):
    v = _scan(module)
    if module in SCRATCH:
        return
    if module not in READERS:
        assert not v.reads, f"sim/{module} reads files (lines {v.reads}); only {sorted(READERS)} do"
    if not module.startswith(WRITERS_PREFIX):
        assert not v.writes, f"sim/{module} writes files (lines {v.writes}); only report does"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_rooms_stay_small(module):
    text = MODULES[module].read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"sim/{module} has {len(text.splitlines())} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if f"{module}.{node.name}" not in LONG_FUNCTIONS:
                assert n <= MAX_FUNCTION_LINES, f"sim/{module}.{node.name} has {n} lines"


def test_the_detectors_can_fail():
    """The checks above see what they look for (a test that cannot fail checks nothing)."""
    src = ("from .sites import _hex\nfrom . import sites as S\nimport numpy as np\n"
           "def f(p):\n    S._x\n    open(p).read()\n    np.load(p)\n    p.write_text('x')\n")
    v = _Imports("placement", SIM / "placement.py")
    v.visit(ast.parse(src))
    assert v.private == ["sites._hex", "sites._x"]
    assert len(v.reads) == 2 and len(v.writes) == 1
    assert "sites" in v.sim


def test_import_sim_is_light():
    code = "import sys, sim; print(any(m.startswith(('matplotlib', 'geopandas', 'rasterio')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dask_is_imported_only_by_the_dask_engine():
    """dask is an optional extra: the package, the commands and the local engine run without it."""
    code = ("import sys, sim, sim.engine, sim.coverage, sim.app.run, sim.cli, sim.api; "
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    importers = sorted(m for m in MODULES if _scan(m).third & {"dask", "distributed"})
    assert importers == ["dask_engine"], importers
