"""Scenario configs: the shipped ones load; every bad input is a one-line error naming file and key."""

import dataclasses
import tomllib
from pathlib import Path

import pytest

from sim.config import Scenario, load_scenario, parse_scenario, with_overrides
from sim.errors import ConfigError

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.mark.parametrize("name", ["shanghai-2021", "shanghai-2025", "tiny"])
def test_shipped_configs_load(name):
    sc = load_scenario(CONFIGS / f"{name}.toml")
    assert isinstance(sc, Scenario)
    assert sc.scenario.name == name
    assert sc.region.districts.is_file() and sc.region.census.is_file()
    assert [lid for lid, _, _ in sc.layers()] == ["cmcc-n41", "cmcc-n28", "ctcu-n78"]


def test_baseline_numbers():
    sc = load_scenario(CONFIGS / "shanghai-2021.toml")
    # 52,000 outdoor 5G base stations, Nov 2021 (Shanghai Communications Administration)
    assert sum(sc.deployment.sites.values()) == 52_000
    assert sc.broadband.gigabit_households == 9.6e6
    assert sc.operators[2].ran_id == "ctcu"


def test_immutable():
    sc = load_scenario(CONFIGS / "tiny.toml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sc.radio.k_sites = 3  # type: ignore[misc]


def test_round_trip_equal():
    path = CONFIGS / "tiny.toml"
    a = load_scenario(path)
    b = parse_scenario(tomllib.loads(path.read_text(encoding="utf-8")), path)
    assert a == b


def _write(tmp_path, text_edit):
    src = (CONFIGS / "tiny.toml").read_text(encoding="utf-8")
    src = src.replace('"../geodata/', f'"{(CONFIGS.parent / "geodata").as_posix()}/')
    path = tmp_path / "x.toml"
    path.write_text(text_edit(src), encoding="utf-8")
    return path


def test_relative_paths_resolve_against_config_folder(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    path = _write(sub, lambda s: s.replace('dir = "../runs"', 'dir = "out"'))
    sc = load_scenario(path)
    assert sc.output.dir == sub / "out"


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda s: s.replace("k_sites = 24", "k_sites = 24\nkk_sites = 3"),
         r"x\.toml: radio\.kk_sites: unknown key \(expected one of: h_ut_m,"),
        (lambda s: s.replace("[radio]", "[radios]"), r"x\.toml: radios: unknown section"),
        (lambda s: s.replace("noise_figure_db = 9.0", 'noise_figure_db = "9dB"'),
         r"x\.toml: radio\.noise_figure_db: expected a number in \[0, 20\], got '9dB'"),
        (lambda s: s.replace("k_sites = 24", "k_sites = 3.5"), r"radio\.k_sites: expected an integer"),
        (lambda s: s.replace("resolution_m = 100.0", "resolution_m = 0.0"),
         r"x\.toml: region\.resolution_m: expected a number in \[10, 2000\], got 0\.0"),
        (lambda s: s.replace("resolution_m = 100.0", "resolution_m = -25.0"),
         r"region\.resolution_m: expected a number"),
        (lambda s: s.replace('fc_ghz = 3.5', 'fc_ghz = 35.0'),
         r"operators\[1\]\.carriers\[0\]\.fc_ghz: expected a number in \[0\.41, 7\.125\], got 35\.0"),
        (lambda s: s.replace('los_mode = "sampled"', 'los_mode = "maybe"'),
         r"radio\.los_mode: expected one of 'expected', 'nlos', 'sampled', got 'maybe'"),
        (lambda s: s.replace('ran = "ctcu"', 'ran = "ctc"'), r"operators\[2\]\.ran: expected the id of an operator"),
        (lambda s: s.replace("sites = { cmcc = 30, ctcu = 40 }", "sites = { cmcc = 30 }"),
         r"deployment\.sites\.ctcu: expected a site count for every radio network"),
        (lambda s: s.replace("tier_mix = [0.35, 0.30, 0.20, 0.14, 0.01]", "tier_mix = [0.35, 0.30, 0.20, 0.14, 0.02]"),
         r"broadband\.tier_mix: expected shares summing to 1, got 1\.01"),
        (lambda s: s.replace("[scenario]\n", "").replace('name = "tiny"\n', "", 1),
         r"year: unknown section|scenario: required section is missing"),
        (lambda s: s.replace("seed = 7", "seed = -1"), r"scenario\.seed: expected an integer in \[0,"),
        (lambda s: s.replace("fiveg_user_share = 0.213", "fiveg_user_share = 1.2"),
         r"traffic\.fiveg_user_share: expected a number in \[0, 1\], got 1\.2"),
    ],
)
def test_bad_config_one_line_error(tmp_path, edit, pattern):
    path = _write(tmp_path, edit)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_scenario(path)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith(str(path)) or "x.toml" in str(info.value)


def test_not_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[scenario\nname=")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_scenario(path)


def test_missing_config(tmp_path):
    with pytest.raises(ConfigError, match=r"nothere\.toml: config file not found"):
        load_scenario(tmp_path / "nothere.toml")


def test_resolution_override():
    sc = load_scenario(CONFIGS / "tiny.toml")
    assert with_overrides(sc, resolution_m=250).region.resolution_m == 250.0
    with pytest.raises(ConfigError, match=r"--resolution-m: expected a number in \[10, 2000\], got 0"):
        with_overrides(sc, resolution_m=0)
