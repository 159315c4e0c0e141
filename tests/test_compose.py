"""Composable configs (``extends``, ``--set``) and the plan -> run -> compare round trip."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.config import load_scenario
from sim.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
TINY = CONFIGS / "tiny.toml"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_extends_deep_merges_and_replaces_lists(tmp_path):
    cfg = _write(tmp_path / "mine.toml", f'extends = "{TINY.as_posix()}"\n[scenario]\nname = "mine"\n'
                                         "[deployment]\nsites = { cmcc = 35 }\n"
                                         "[broadband]\ntier_mbps = [100.0, 1000.0]\ntier_mix = [0.5, 0.5]\n")
    sc, base = load_scenario(cfg), load_scenario(TINY)
    assert sc.scenario.name == "mine" and sc.scenario.seed == base.scenario.seed
    assert dict(sc.deployment.sites) == {"cmcc": 35, "ctcu": 40}          # tables merge key by key
    assert sc.broadband.tier_mbps == (100.0, 1000.0)                         # lists are replaced
    assert sc.operators == base.operators and sc.criteria == base.criteria
    assert sc.region.districts == base.region.districts                     # the base's paths, from the base's folder


def test_extends_chain_and_relative_paths_per_file(tmp_path):
    # a config elsewhere that extends the shipped one keeps the shipped data; its own paths are its own
    _write(tmp_path / "a" / "mid.toml", f'extends = "{os.path.relpath(TINY, tmp_path / "a")}"\n'
                                              '[output]\ndir = "runs-mid"\n')
    top = _write(tmp_path / "b" / "c" / "top.toml", 'extends = "../../a/mid.toml"\n[radio]\nk_sites = 12\n')
    sc = load_scenario(top)
    assert sc.radio.k_sites == 12
    assert sc.output.dir == tmp_path / "a" / "runs-mid"
    assert sc.region.census == (ROOT / "geodata" / "shanghai_district_stats.csv")


def test_extends_cycle_is_one_line_error(tmp_path):
    _write(tmp_path / "x.toml", 'extends = "y.toml"\n')
    _write(tmp_path / "y.toml", 'extends = "x.toml"\n')
    with pytest.raises(ConfigError, match=r"y\.toml: extends: expected a chain without cycles, "
                                          r"got x\.toml -> y\.toml -> x\.toml"):
        load_scenario(tmp_path / "x.toml")
    _write(tmp_path / "z.toml", 'extends = "nothere.toml"\n')
    with pytest.raises(ConfigError, match=r"z\.toml: extends: expected an existing config file, got 'nothere\.toml'"):
        load_scenario(tmp_path / "z.toml")


def test_set_is_typed_by_the_schema():
    sc = load_scenario(TINY, ["radio.k_sites=8", "scenario.name=other", "deployment.sites.ctcu=41",
                              "region.district_codes=[\"310101\"]", "broadband.fibre_household_share=0.9"])
    assert sc.radio.k_sites == 8 and sc.scenario.name == "other" and sc.deployment.sites["ctcu"] == 41
    assert sc.broadband.fibre_household_share == 0.9 and sc.broadband.fibre_households is None
    assert ("radio.k_sites", 8) in sc.overrides


@pytest.mark.parametrize("item, pattern", [
    ("radio.kk=3", r"^--set: radio\.kk: unknown key 'kk' \(expected one of: h_ut_m,"),
    ("radio.k_sites=abc", r"^--set: radio\.k_sites: expected an integer in \[1, 1024\], got 'abc'$"),
    ("radio.k_sites=3.5", r"^--set: radio\.k_sites: expected an integer"),
    ("radios.k=1", r"^--set: radios\.k: unknown section"),
    ("radio=1", r"^--set: radio: expected section\.key=value"),
    ("nokey", r"^--set: nokey: expected section\.key=value"),
])
def test_set_errors_name_the_key(item, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_scenario(TINY, [item])


@pytest.mark.parametrize("name", ["shanghai-2021-central-plus10.toml", "tiny-site-file.toml"])
def test_shipped_examples_load(name):
    sc = load_scenario(CONFIGS / "examples" / name)
    assert sc.source_path.name == name


def test_central_plus10_adds_sites_only_in_central_districts():
    import numpy as np

    from sim.app.inputs import build_sites, load_region

    base = load_scenario(CONFIGS / "shanghai-2021.toml", ["region.resolution_m=1000"])
    plus = load_scenario(CONFIGS / "examples" / "shanghai-2021-central-plus10.toml", ["region.resolution_m=1000"])
    d = load_region(base)
    n = len(d)
    a = build_sites(base, d, np.random.default_rng(1)).table
    b = build_sites(plus, d, np.random.default_rng(1)).table
    per_a = a.sites_per_district(n, ran="ctcu")
    per_b = b.sites_per_district(n, ran="ctcu")
    central = np.isin(d["code"], base.deployment.central_districts)
    assert (per_b[~central] == per_a[~central]).all()
    np.testing.assert_allclose(per_b[central], np.round(per_a[central] * 1.1), atol=0)


def _cli(*args, cwd=None):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=900)


@pytest.mark.slow
def test_readme_round_trip_extend_run_plan_rerun_compare(tmp_path):
    """The README's walk: a 5-line config, run, plan, run the plan, compare (the tiny scene, coarse)."""
    cfg = _write(tmp_path / "my.toml", f'extends = "{TINY.as_posix()}"\n[scenario]\nname = "my-city"\n'
                                       "[deployment]\nsites = { cmcc = 25, ctcu = 30 }\n")
    p = _cli("run", str(cfg), "--out", str(tmp_path / "base"), "--set", "region.resolution_m=200")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == f"report: {tmp_path / 'base' / 'report.html'}"
    p = _cli("plan", str(cfg), "--out", str(tmp_path / "plan"), "--budget", "4", "--target", "0.9999",
             "--set", "region.resolution_m=200")
    assert p.returncode == 0, p.stderr
    plan_toml = tmp_path / "plan" / "plan.toml"
    text = plan_toml.read_text(encoding="utf-8")
    assert 'extends = "../my.toml"' in text and "resolution_m = 200\n" in text
    added = (tmp_path / "plan" / "added_sites.csv").read_text(encoding="utf-8").splitlines()
    n_added = len(added) - 1
    assert n_added >= 1 and added[0].startswith("site_id,lon,lat,height_m,azimuths,tilt_deg,operator,band")
    p = _cli("run", str(plan_toml), "--out", str(tmp_path / "planned"))
    assert p.returncode == 0, p.stderr
    a = json.loads((tmp_path / "base" / "summary.json").read_text(encoding="utf-8"))
    b = json.loads((tmp_path / "planned" / "summary.json").read_text(encoding="utf-8"))
    assert b["grid"] == a["grid"]
    assert b["sites"]["by_ran"]["ctcu"] == a["sites"]["by_ran"]["ctcu"] + n_added
    assert b["sites"]["by_ran"]["cmcc"] == a["sites"]["by_ran"]["cmcc"]
    assert b["inputs"]["extra_site_files"][0]["kept"] == n_added
    p = _cli("compare", str(tmp_path / "base"), str(tmp_path / "planned"))
    assert p.returncode == 0, p.stderr
    assert "pop_cov_5g" in p.stdout or "population" in p.stdout.lower()
