"""summary.json against its shipped JSON Schema (jsonschema, draft 2020-12) and the hand-written check."""

import json
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")

from sim.report.runfolder import SUMMARY_JSON_SCHEMA, summary_problems  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _schema():
    return json.loads(SUMMARY_JSON_SCHEMA.read_text(encoding="utf-8"))


def _minimal():
    return {"schema_version": "1.0", "scenario": {"name": "x", "year": 2021, "seed": 1, "config_path": None},
            "inputs": {}, "grid": {"crs": "EPSG:32651", "res_m": 100.0, "shape": [2, 3]},
            "districts": [{"code": "310101", "name_en": "Huangpu", "indicators": {"a_pct": 1.0, "b": None}}],
            "citywide": {"a_pct": 1.0}, "criteria": [{"scope": "citywide", "key": "a_pct", "kind": "benchmark",
                                                       "value": 1.0, "passed": True}],
            "timings_s": {"x": 0.1}, "versions": {"python": "3", "numpy": "2", "gigacity": "0.1.0"},
            "outputs": ["summary.json"], "compute": {"engine": "local", "workers": 2, "scheduler": None}}


def test_schema_is_valid_and_shipped_in_the_package():
    jsonschema.Draft202012Validator.check_schema(_schema())
    assert SUMMARY_JSON_SCHEMA.parent.name == "report"   # sim/report/ (package data, pyproject.toml)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"sim.report" = ["*.schema.json"]' in pyproject


@pytest.mark.parametrize("edit", [
    lambda s: s.pop("citywide"),
    lambda s: s["scenario"].update(year="2021"),
    lambda s: s["grid"].update(shape=[2]),
    lambda s: s["districts"][0]["indicators"].update(a_pct="high"),
    lambda s: s["criteria"][0].update(passed="yes"),
    lambda s: s["timings_s"].update(x=-1.0),
    lambda s: s.update(schema_version="2.0"),
    lambda s: s.update(compute={"engine": "spark", "workers": 2}),
    lambda s: s.update(compute={"engine": "dask", "workers": -1}),
    lambda s: s.update(compute={"engine": "dask"}),
])
def test_schema_and_hand_check_agree(edit):
    good = _minimal()
    jsonschema.validate(good, _schema())
    assert summary_problems(good) == []
    bad = _minimal()
    edit(bad)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, _schema())
    assert summary_problems(bad)


@pytest.mark.slow
def test_a_run_summary_validates(tmp_path):
    from sim.app.run import run_scenario
    from sim.config import load_scenario

    res = run_scenario(load_scenario(ROOT / "configs" / "tiny.toml", ["region.resolution_m=400"]),
                       out_dir=tmp_path / "run")
    summary = json.loads((res.run_dir / "summary.json").read_text(encoding="utf-8"))
    jsonschema.validate(summary, _schema())
    assert summary["region"]["name"] == "Shanghai"
