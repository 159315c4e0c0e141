"""Tests of sim.criteria: exact threshold edges, the criteria table and the verdict."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from sim import criteria as cr
from sim.errors import InputError
from sim.indicators import ratio_by_district

# Shares are sums of small integers divided once: the arithmetic is exact to float64
# rounding of the final division.
EXACT_TOL = 1e-12

CODES3 = ("A", "B", "C")


def test_exact_fraction_gives_exact_percent_and_fails_strict_edge():
    # 4 of 5 households is exactly 80 %: "> 80 %" (action plan) must fail, not pass by rounding
    per, city = ratio_by_district([4], [5])
    assert per[0] == 80.0 and city == 80.0
    th = {t.key: t for t in cr.DEFAULT_THRESHOLDS}["fibre_gigabit_coverage_pct"]
    row = cr.evaluate_indicator("citywide", th.key, city, th)
    assert row.passed is False
    assert row.gap == 0.0


@pytest.mark.parametrize(
    ("value", "op", "threshold", "expected"),
    [
        (80.0, ">", 80.0, False),
        (math.nextafter(80.0, 100.0), ">", 80.0, True),
        (46.7, ">=", 46.7, True),
        (math.nextafter(46.7, 0.0), ">=", 46.7, False),
        (12.0, ">", 12.0, False),
        (5.0, "<", 5.0, False),
        (5.0, "<=", 5.0, True),
        (math.nan, ">", 1.0, None),
    ],
)
def test_passes_is_exact_at_edges(value, op, threshold, expected):
    assert cr.passes(value, op, threshold) is expected


def test_gap_to_pass():
    assert cr.gap_to_pass(70.0, ">", 80.0) == 10.0
    assert cr.gap_to_pass(90.0, ">", 80.0) == 0.0
    assert cr.gap_to_pass(7.0, "<=", 5.0) == 2.0
    assert math.isnan(cr.gap_to_pass(math.nan, ">=", 5.0))


def test_evaluate_table_rows_and_kinds():
    ths = cr.DEFAULT_THRESHOLDS
    table = cr.evaluate(
        {"bs_5g_per_10k": [12.0, 12.5, np.nan], "pop_cov_5g_outdoor_pct": [90.0, 95.0, 99.0]},
        {"bs_5g_per_10k": 12.2, "user_5g_share_pct": 38.9, "pop_cov_5g_outdoor_pct": 95.0},
        ths,
        district_codes=CODES3,
    )
    assert list(table.columns) == list(cr.COLUMNS)
    # citywide first: the 3 values given plus the 5 other thresholded criteria (not judged),
    # then 2 keys x 3 districts; each scope in INDICATORS order
    n_city = 3 + 5
    assert table["scope"].tolist() == ["citywide"] * n_city + ["A", "A", "B", "B", "C", "C"]
    assert table["key"].tolist()[:n_city] == [
        "fibre_gigabit_coverage_pct", "pon_10g_port_share_pct", "key_place_5g_reach_pct",
        "bs_5g_per_10k", "fbb_500m_user_share_pct", "gigabit_users_per_10k",
        "user_5g_share_pct", "pop_cov_5g_outdoor_pct"]
    row = table.set_index(["scope", "key"])
    assert row.loc[("citywide", "bs_5g_per_10k"), "passed"] is True
    assert row.loc[("A", "bs_5g_per_10k"), "passed"] is False  # "> 12" at 12.0
    assert row.loc[("C", "bs_5g_per_10k"), "passed"] is None
    assert row.loc[("citywide", "user_5g_share_pct"), "kind"] == "input"
    assert row.loc[("citywide", "user_5g_share_pct"), "passed"] is True  # ">= 38.9" at 38.9
    assert row.loc[("citywide", "user_5g_share_pct"), "confirmed"] is False
    phys = row.loc[("citywide", "pop_cov_5g_outdoor_pct")]
    assert phys["kind"] == "physical" and phys["passed"] is None and math.isnan(phys["threshold"])
    assert row.loc[("citywide", "bs_5g_per_10k"), "confirmed"] is True
    assert "34号" in row.loc[("citywide", "bs_5g_per_10k"), "source"]
    missing = row.loc[("citywide", "fibre_gigabit_coverage_pct")]
    assert math.isnan(missing["value"]) and missing["passed"] is None and missing["op"] == ">"


def test_configured_threshold_for_physical_indicator():
    th = cr.Threshold("pop_cov_5g_outdoor_pct", ">=", 95.0, "%", "config: plan target", False)
    table = cr.evaluate({}, {"pop_cov_5g_outdoor_pct": 94.5}, [th], district_codes=CODES3)
    assert len(table) == 1
    assert table.loc[0, "passed"] is False
    assert table.loc[0, "gap"] == pytest.approx(0.5, abs=EXACT_TOL)


def test_verdict():
    two = [t for t in cr.DEFAULT_THRESHOLDS if t.key in ("bs_5g_per_10k", "fibre_gigabit_coverage_pct")]
    good = cr.evaluate({}, {"bs_5g_per_10k": 20.0, "fibre_gigabit_coverage_pct": 99.0}, two, district_codes=())
    assert cr.verdict(good) == {"passed": True, "failed": [], "unknown": [], "n_passed": 2,
                                "n_criteria": 2, "above": [], "below": [], "n_benchmarks": 0}
    # with all seven default thresholds, the two confirmed ones decide; five benchmarks without
    # a value are neither above nor below
    partial = cr.evaluate({}, {"bs_5g_per_10k": 20.0, "fibre_gigabit_coverage_pct": 99.0}, district_codes=())
    v = cr.verdict(partial)
    assert v["passed"] is True and v["n_criteria"] == 2 and v["n_benchmarks"] == 5
    assert v["above"] == v["below"] == []
    bad = cr.evaluate({}, {"bs_5g_per_10k": 12.0, "fibre_gigabit_coverage_pct": math.nan}, two, district_codes=())
    v = cr.verdict(bad)
    assert v["passed"] is False and v["failed"] == ["bs_5g_per_10k"]
    assert v["unknown"] == ["fibre_gigabit_coverage_pct"]
    unknown = cr.evaluate({}, {"fibre_gigabit_coverage_pct": math.nan}, two, district_codes=())
    assert cr.verdict(unknown)["passed"] is None


def test_gigabit_threshold_hand_evaluation():
    # 1e4 * 30,000,000 / 1,411,778,724 = 212.50 per 10,000 residents
    assert cr.GIGABIT_USERS_PER_10K_THRESHOLD == pytest.approx(212.50, abs=0.005)


def test_default_thresholds_units_match_indicators():
    for t in cr.DEFAULT_THRESHOLDS:
        assert t.unit == cr.INDICATORS[t.key].unit
        assert t.source
    confirmed = {t.key for t in cr.DEFAULT_THRESHOLDS if t.confirmed}
    assert confirmed == {"fibre_gigabit_coverage_pct", "bs_5g_per_10k"}


def test_errors():
    with pytest.raises(InputError, match=r"op: expected one of"):
        cr.Threshold("bs_5g_per_10k", "=>", 12.0, "per 10,000 residents", "x", True)
    with pytest.raises(InputError, match=r"value: expected a finite number"):
        cr.Threshold("bs_5g_per_10k", ">", math.nan, "per 10,000 residents", "x", True)
    with pytest.raises(InputError, match=r"nope: unknown indicator"):
        cr.evaluate({}, {"nope": 1.0}, district_codes=())
    with pytest.raises(InputError, match=r"expected 3 district values, got shape \(2,\)"):
        cr.evaluate({"bs_5g_per_10k": [1.0, 2.0]}, {}, district_codes=CODES3)
    bad_unit = dataclasses.replace(cr.DEFAULT_THRESHOLDS[0], unit="fraction")
    with pytest.raises(InputError, match=r"unit: expected '%'"):
        cr.evaluate({}, {}, [bad_unit], district_codes=())


def test_verdict_ignores_benchmarks():
    """Benchmarks (certified-city averages) never fail a city; confirmed thresholds decide."""
    city = {"bs_5g_per_10k": 20.9, "fibre_gigabit_coverage_pct": 99.5, "user_5g_share_pct": 21.3,
            "pon_10g_port_share_pct": 30.0, "fbb_500m_user_share_pct": 40.0}
    table = cr.evaluate({}, city, district_codes=())
    v = cr.verdict(table)
    assert v["passed"] is True and v["failed"] == [] and v["n_passed"] == 2 and v["n_criteria"] == 2
    assert set(v["below"]) == {"user_5g_share_pct", "pon_10g_port_share_pct"}
    assert v["above"] == ["fbb_500m_user_share_pct"]
    row = table.set_index("key").loc["user_5g_share_pct"]
    assert row["standing"] == "benchmark" and row["benchmark"].startswith("certified-city average")
    # a confirmed threshold that fails still fails the city
    table = cr.evaluate({}, {**city, "bs_5g_per_10k": 11.0}, district_codes=())
    assert cr.verdict(table)["failed"] == ["bs_5g_per_10k"]
    # the same number made confirmed decides the verdict
    conf = [cr.Threshold("user_5g_share_pct", ">=", 38.9, "%", "test: confirmed", True),
            cr.Threshold("bs_5g_per_10k", ">", 12.0, "per 10,000 residents", "test", True)]
    assert cr.verdict(cr.evaluate({}, city, conf, district_codes=()))["failed"] == ["user_5g_share_pct"]


def test_margin_is_headroom():
    """margin > 0 passes (headroom), < 0 fails (shortfall), sign flipped for '<' thresholds."""
    th = [cr.Threshold("bs_5g_per_10k", ">", 12.0, "per 10,000 residents", "t", True),
          cr.Threshold("pop_cov_5g_outdoor_pct", "<=", 50.0, "%", "t", False)]
    t = cr.evaluate({}, {"bs_5g_per_10k": 20.5, "pop_cov_5g_outdoor_pct": 60.0}, th,
                    district_codes=()).set_index("key")
    assert t.loc["bs_5g_per_10k", "margin"] == pytest.approx(8.5, abs=EXACT_TOL)
    assert t.loc["pop_cov_5g_outdoor_pct", "margin"] == pytest.approx(-10.0, abs=EXACT_TOL)
    assert t.loc["bs_5g_per_10k", "gap"] == 0.0
