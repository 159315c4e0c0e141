"""Per-district inputs (``[district_inputs]``): fibre and 5G user share by district class or code.

A district's input yields exactly that district's indicator; the citywide value is the
household-weighted (fibre) or population-weighted (5G users) total; without per-district
inputs the citywide inputs of ``[broadband]`` / ``[traffic]`` are reproduced exactly.
"""

import dataclasses
import tomllib
from pathlib import Path

import numpy as np
import pytest

from sim import indicators as I
from sim.app.assess import fibre_inputs_by_district, user_5g_share_pct
from sim.broadband import district_fibre
from sim.config import DistrictInputs, DistrictInputTable, load_scenario, parse_scenario
from sim.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.toml"
CODES = ["310101", "310112", "310151"]           # central, suburban, rural (tiny's class lists)
HOUSEHOLDS = np.array([300_000.0, 900_000.0, 250_000.0])
POPULATION = np.array([660_000.0, 2_430_000.0, 630_000.0])
CENSUS_HOUSEHOLDS = 9_645_600.0
EXACT_TOL = 1e-9


def _scenario(**classes):
    sc = load_scenario(TINY)
    return dataclasses.replace(sc, district_inputs=DistrictInputTable(**classes))


def _fibre(sc):
    bb = sc.broadband
    inp = fibre_inputs_by_district(sc, CODES, HOUSEHOLDS, CENSUS_HOUSEHOLDS)
    fibre = district_fibre(HOUSEHOLDS, inp["fibre_households"], inp["ten_g_households"], inp["take_up"],
                           np.asarray(bb.tier_mbps) * 1e6, inp["tier_mix"], gpon_split=bb.gpon_split,
                           ten_g_split=bb.xgspon_split, ten_g_technology=bb.xgspon_kind,
                           fill_factor=bb.fill_factor, ten_g_port_share=inp["ten_g_port_share"])
    return fibre, I.fibre_indicators(fibre, HOUSEHOLDS, POPULATION)


def test_without_district_inputs_the_citywide_split_is_reproduced():
    sc = _scenario()
    bb = sc.broadband
    _, (by_d, city) = _fibre(sc)
    share = HOUSEHOLDS / CENSUS_HOUSEHOLDS
    # the pro-rata split of the citywide counts (the model before per-district inputs)
    old = district_fibre(HOUSEHOLDS, bb.fibre_households * share, bb.gigabit_households * share,
                         bb.fibre_subscribers / bb.fibre_households, np.asarray(bb.tier_mbps) * 1e6,
                         np.asarray(bb.tier_mix), gpon_split=bb.gpon_split, ten_g_split=bb.xgspon_split,
                         ten_g_technology=bb.xgspon_kind, fill_factor=bb.fill_factor)
    old_by_d, old_city = I.fibre_indicators(old, HOUSEHOLDS, POPULATION)
    for k in old_by_d:
        np.testing.assert_array_equal(by_d[k], old_by_d[k])
        assert city[k] == old_city[k]
    # every district at the citywide gigabit share: 9.6 M of 9,645,600 households
    np.testing.assert_allclose(by_d["fibre_gigabit_coverage_pct"], 100.0 * 9.6e6 / CENSUS_HOUSEHOLDS,
                               rtol=EXACT_TOL)
    d5, c5 = user_5g_share_pct(sc, CODES, POPULATION)
    assert c5 == 100.0 * sc.traffic.fiveg_user_share
    np.testing.assert_array_equal(d5, np.full(3, 100.0 * sc.traffic.fiveg_user_share))


def test_district_fibre_inputs_give_those_district_values_and_the_household_weighted_total():
    sc = _scenario(central=DistrictInputs(gigabit_passed_share=1.0, ten_g_port_share=0.6, take_up=0.9),
                   suburban=DistrictInputs(gigabit_passed_share=0.9, ten_g_port_share=0.45),
                   rural=DistrictInputs(gigabit_passed_share=0.7, ten_g_port_share=0.3,
                                        tier_mix=(0.6, 0.3, 0.1, 0.0, 0.0)))
    fibre, (by_d, city) = _fibre(sc)
    shares = np.array([1.0, 0.9, 0.7])
    np.testing.assert_allclose(by_d["fibre_gigabit_coverage_pct"], 100.0 * shares, rtol=EXACT_TOL)
    expected_city = 100.0 * (shares * HOUSEHOLDS).sum() / HOUSEHOLDS.sum()
    assert city["fibre_gigabit_coverage_pct"] == pytest.approx(expected_city, rel=EXACT_TOL)
    # the port share is the inventory input (to one port), not the households passed
    ports = fibre.ports_gpon + fibre.ports_ten_g
    np.testing.assert_allclose(by_d["pon_10g_port_share_pct"], [60.0, 45.0, 30.0], atol=100.0 / ports.min())
    assert abs(by_d["pon_10g_port_share_pct"][1] - by_d["fibre_gigabit_coverage_pct"][1]) > 40.0
    # the rural tier mix has no gigabit tier and 10 % on 500 Mbit/s
    assert by_d["gigabit_users_per_10k"][2] == 0.0
    assert by_d["fbb_500m_user_share_pct"][2] == pytest.approx(10.0, rel=EXACT_TOL)
    # take-up 0.9 in the central district
    assert fibre.subscribers[0] == pytest.approx(0.9 * fibre.fibre_households[0], rel=EXACT_TOL)


def test_a_district_entry_wins_over_its_class():
    sc = _scenario(suburban=DistrictInputs(fiveg_user_share=0.2),
                   by_code={"310151": DistrictInputs(fiveg_user_share=0.1)})
    d5, c5 = user_5g_share_pct(sc, CODES, POPULATION)
    tiny = sc.traffic.fiveg_user_share
    np.testing.assert_allclose(d5, [100.0 * tiny, 20.0, 10.0], rtol=EXACT_TOL)
    assert c5 == pytest.approx(100.0 * (np.array([tiny, 0.2, 0.1]) * POPULATION).sum() / POPULATION.sum(),
                               rel=EXACT_TOL)


def test_shipped_2021_classes_differ():
    """Chongming (rural) gets a lower fibre tier mix and take-up than the centre (the issue's ask)."""
    sc = load_scenario(ROOT / "configs" / "shanghai-2021.toml")
    c, r = sc.district_inputs.central, sc.district_inputs.rural
    assert sum(r.tier_mix[3:]) < sum(c.tier_mix[3:]) and r.take_up < c.take_up
    assert r.ten_g_port_share < c.ten_g_port_share and r.fiveg_user_share < c.fiveg_user_share


def _parse(extra: str):
    data = tomllib.loads(TINY.read_text(encoding="utf-8") + "\n" + extra)
    return parse_scenario(data, TINY)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"district_inputs\.rural\.take_up: expected a share in \[0, 1\]"):
        _parse("[district_inputs.rural]\ntake_up = -0.5\n")
    with pytest.raises(ConfigError, match=r"district_inputs\.central\.tier_mix: expected shares summing to 1"):
        _parse("[district_inputs.central]\ntier_mix = [0.5, 0.3, 0.1, 0.0, 0.0]\n")
    with pytest.raises(ConfigError, match=r"district_inputs\.by_code\.31015: expected a 6-digit district code"):
        _parse('[district_inputs.by_code."31015"]\ntake_up = 0.5\n')
