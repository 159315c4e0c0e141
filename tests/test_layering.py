"""The architecture's one-way layering, checked by parsing imports (ARCHITECTURE.md)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parent.parent / "sim"

BASE = {"errors", "units"}
REPORT_ALLOWED = BASE | {"grid", "criteria", "geodata", "report.files", "report.runfolder", "report.render"}
# module -> the sim modules it may import (ARCHITECTURE.md, "Modules of sim/")
ALLOWED = {
    "errors": set(),
    "units": set(),
    "config": BASE,
    "geodata": BASE,
    "grid": BASE,
    "sites": BASE | {"geodata", "grid"},
    "propagation": BASE,
    "antenna": BASE,
    "linkmodel": BASE,
    "results": BASE,
    "kernel": BASE | {"propagation", "antenna", "linkmodel", "results"},
    "coverage": BASE | {"grid", "kernel", "results", "propagation", "antenna", "linkmodel"},
    "queueing": BASE,
    "traffic": BASE | {"queueing"},
    "broadband": BASE | {"queueing"},
    "criteria": BASE,
    "planning": BASE | {"grid", "sites", "coverage", "kernel", "results", "criteria", "propagation"},
    "maps": BASE | {"grid", "geodata"},
    # sim/report/: the package imports nothing; its modules import each other
    "report": set(),
    "report.files": REPORT_ALLOWED,
    "report.runfolder": REPORT_ALLOWED,
    "report.render": REPORT_ALLOWED,
    "run": None,  # the composition root may import every layer
    "cli": None,
    "__main__": {"cli"},
    "__init__": set(),
}
# the physics and the kernel import nothing outside numpy and the standard library
NUMPY_ONLY = {"propagation", "antenna", "linkmodel", "kernel", "results", "units"}


def _dotted(path: Path) -> str:
    """Dotted name of a module file under sim/ (a package's __init__.py is the package)."""
    parts = path.relative_to(SIM.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    base = SIM.parent.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _key(dotted: str) -> str:
    """Layering name of a sim module: ``report.files``; ``__init__`` for sim itself."""
    return dotted.removeprefix("sim.") if dotted != "sim" else "__init__"


def _imports(path: Path):
    """The sim modules (layering names) and the third-party top-level packages ``path`` imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _dotted(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    sim_mods, third = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level >= 1:
                base = ".".join(package.split(".")[: len(package.split(".")) - (node.level - 1)])
                full = f"{base}.{node.module}" if node.module else base
            elif node.module and node.module.split(".")[0] == "sim":
                full = node.module
            else:
                if node.module:
                    third.add(node.module.split(".")[0])
                continue
            for a in node.names:
                sub = f"{full}.{a.name}"
                sim_mods.add(_key(sub if _is_module(sub) else full))
        elif isinstance(node, ast.Import):
            for a in node.names:
                top = a.name.split(".")[0]
                if top == "sim":
                    sim_mods.add(_key(a.name))
                else:
                    third.add(top)
    sim_mods.discard(_key(me))
    return sim_mods, third


PATHS = {_key(_dotted(p)): p for p in sorted(SIM.rglob("*.py"))}
MODULES = sorted(PATHS)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_only_layers_above(module):
    assert module in ALLOWED, f"{PATHS[module].relative_to(SIM.parent)} is not placed in the architecture's layering"
    allowed = ALLOWED[module]
    sim_mods, third = _imports(PATHS[module])
    if allowed is not None:
        assert sim_mods <= allowed, f"{PATHS[module].relative_to(SIM.parent)} imports {sorted(sim_mods - allowed)}"
    if module in NUMPY_ONLY:
        stdlib = set(sys.stdlib_module_names)
        assert third <= stdlib | {"numpy"}, (f"{PATHS[module].relative_to(SIM.parent)} imports "
                                             f"{sorted(third - stdlib - {'numpy'})}")


def test_import_sim_is_light():
    code = "import sys, sim; print(any(m.startswith(('matplotlib', 'geopandas', 'rasterio')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
