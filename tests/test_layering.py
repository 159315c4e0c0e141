"""The architecture's one-way layering, checked by parsing imports (ARCHITECTURE.md)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parent.parent / "sim"

BASE = {"errors", "units"}
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
    "report": BASE | {"grid", "criteria", "geodata"},
    "run": None,  # the composition root may import every layer
    "cli": None,
    "__main__": {"cli"},
    "__init__": set(),
}
# the physics and the kernel import nothing outside numpy and the standard library
NUMPY_ONLY = {"propagation", "antenna", "linkmodel", "kernel", "results", "units"}


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    sim_mods, third = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level >= 1:
                if node.module:
                    sim_mods.add(node.module.split(".")[0])
                else:
                    sim_mods.update(a.name for a in node.names)
            elif node.module and node.module.split(".")[0] == "sim":
                parts = node.module.split(".")
                sim_mods.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
            elif node.module:
                third.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                top = a.name.split(".")[0]
                if top == "sim":
                    sim_mods.add(a.name.split(".")[1])
                else:
                    third.add(top)
    return sim_mods, third


MODULES = sorted(p.stem for p in SIM.glob("*.py"))


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_only_layers_above(module):
    assert module in ALLOWED, f"sim/{module}.py is not placed in the architecture's layering"
    allowed = ALLOWED[module]
    sim_mods, third = _imports(SIM / f"{module}.py")
    if allowed is not None:
        assert sim_mods <= allowed, f"sim/{module}.py imports {sorted(sim_mods - allowed)}"
    if module in NUMPY_ONLY:
        stdlib = set(sys.stdlib_module_names)
        assert third <= stdlib | {"numpy"}, f"sim/{module}.py imports {sorted(third - stdlib - {'numpy'})}"


def test_import_sim_is_light():
    code = "import sys, sim; print(any(m.startswith(('matplotlib', 'geopandas', 'rasterio')) for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
