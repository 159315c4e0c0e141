"""One-Gbps city (千兆城市) indicators, per district and citywide.

The indicators are those of the appendix "千兆城市评价指标" of MIIT's
《"双千兆"网络协同发展行动计划（2021-2023年）》 (工信部通信〔2021〕34号, March 2021), as
applied by MIIT's evaluation notices of 2021, 2022 (工信厅通信函〔2022〕, 2022-12-18, with
its appendix 1 "千兆城市关键指标情况汇总表") and 2023. Where the threshold of an indicator
could not be confirmed from the appendix itself, the threshold is an *assumption*: the
average reached by the certified cities, as published in MIIT's 2022 notice. Each
:class:`Threshold` says which (``confirmed``) and where the number comes from (``source``).

Each threshold has a *standing*: ``confirmed`` (the criterion's own number, with the
document) decides the verdict; ``benchmark`` (e.g. the certified cities' average) is shown
as above / below and never fails a city.

Three kinds of row come out of :func:`evaluate`:

``"result"``
    computed by the simulation (coverage, fibre, sites): the answer of a run;
``"input"``
    an assumption of the scenario echoed back (the 5G-user share is not simulated);
``"physical"``
    what only a simulation gives (5G population and area coverage, 1 Gbit/s reach, busy
    hour): reported, judged only when a threshold is configured.

All shares are in percent (``_pct``, 0-100), densities per 10,000 residents. The values
themselves are computed in :mod:`sim.indicators`; this module judges them.

This module imports numpy and pandas only (and :mod:`sim.errors`); it reads no files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.errors import InputError

__all__ = [
    "OPS",
    "KINDS",
    "IndicatorSpec",
    "INDICATORS",
    "Threshold",
    "DEFAULT_THRESHOLDS",
    "NATIONAL_GIGABIT_USERS_GOAL_2023",
    "CHINA_POPULATION_2020",
    "GIGABIT_USERS_PER_10K_THRESHOLD",
    "Indicator",
    "passes",
    "gap_to_pass",
    "evaluate_indicator",
    "evaluate_rows",
    "evaluate",
    "rows_to_frame",
    "verdict",
    "margin_of",
    "benchmark_position",
]

OPS: tuple[str, ...] = (">", ">=", "<", "<=")
KINDS: tuple[str, ...] = ("result", "input", "physical")

_ACTION_PLAN = (
    'MIIT, "双千兆"网络协同发展行动计划(2021-2023年) (工信部通信〔2021〕34号), '
    "appendix 千兆城市评价指标"
)
_NOTICE_2022 = (
    "MIIT 2022 notice on One-Gbps city construction (工业和信息化部办公厅, 2022-12-18; "
    "figures as of end-October 2022)"
)


@dataclass(frozen=True)
class IndicatorSpec:
    """What an indicator is: key, human label, unit and kind."""

    key: str
    label: str
    label_zh: str
    unit: str
    kind: str


INDICATORS: dict[str, IndicatorSpec] = {
    s.key: s
    for s in (
        # the seven One-Gbps city indicators
        IndicatorSpec("fibre_gigabit_coverage_pct",
                      "Household gigabit-fibre coverage", "城市家庭千兆光纤网络覆盖率", "%", "result"),
        IndicatorSpec("pon_10g_port_share_pct",
                      "10G-PON port share", "10G-PON端口占比", "%", "result"),
        IndicatorSpec("key_place_5g_reach_pct",
                      "5G reach at key places, indoor", "重点场所5G网络通达率", "%", "result"),
        IndicatorSpec("bs_5g_per_10k",
                      "5G base stations per 10,000 residents", "每万人拥有5G基站数",
                      "per 10,000 residents", "result"),
        IndicatorSpec("fbb_500m_user_share_pct",
                      "Fixed-broadband users on >= 500 Mbit/s plans", "500Mbps及以上用户占比", "%",
                      "result"),
        IndicatorSpec("gigabit_users_per_10k",
                      "Users on >= 1000 Mbit/s plans, per 10,000 residents", "千兆宽带用户数",
                      "per 10,000 residents", "result"),
        IndicatorSpec("user_5g_share_pct",
                      "5G users among mobile users, scenario input", "5G用户占比", "%", "input"),
        # physical indicators only a simulation gives
        IndicatorSpec("pop_cov_5g_outdoor_pct",
                      "5G population coverage, outdoor", "", "%", "physical"),
        IndicatorSpec("area_cov_5g_outdoor_pct", "5G area coverage, outdoor", "", "%", "physical"),
        IndicatorSpec("pop_cov_5g_indoor_pct", "5G population coverage, indoor", "", "%", "physical"),
        IndicatorSpec("area_cov_5g_indoor_pct", "5G area coverage, indoor", "", "%", "physical"),
        IndicatorSpec("pop_5g_1gbps_unloaded_pct",
                      "Population where 5G delivers >= 1 Gbit/s, own cell idle, neighbours at the reference load "
                      "(pessimistic bound)",
                      "", "%", "physical"),
        IndicatorSpec("pop_5g_1gbps_busy_pct",
                      "Population where 5G delivers >= 1 Gbit/s, busy hour", "", "%", "physical"),
        IndicatorSpec("pop_5g_100mbps_busy_pct",
                      "Population where 5G delivers >= 100 Mbit/s, busy hour", "", "%", "physical"),
        IndicatorSpec("speedtest_mean_mbps",
                      "5G speed test, mean: one outdoor flow in the busy hour (the expected measurement)",
                      "5G下载速率(拨测)", "Mbit/s", "physical"),
        IndicatorSpec("speedtest_p10_mbps", "5G speed test, 10th percentile", "", "Mbit/s", "physical"),
        IndicatorSpec("speedtest_p50_mbps", "5G speed test, median", "", "Mbit/s", "physical"),
        IndicatorSpec("speedtest_p90_mbps", "5G speed test, 90th percentile", "", "Mbit/s", "physical"),
        IndicatorSpec("fibre_tier_met_busy_pct",
                      "Fibre households receiving their tier in the busy hour", "", "%", "physical"),
    )
}
"""Every indicator gigacity reports, in report order."""


@dataclass(frozen=True)
class Threshold:
    """A pass mark: ``value <op> threshold`` passes.

    Parameters
    ----------
    key : str
        Indicator key (one of :data:`INDICATORS`).
    op : {">", ">=", "<", "<="}
        Comparison; ``">"`` means strictly more (80.0 fails "> 80 %").
    value : float
        The threshold, in ``unit``.
    unit : str
        Unit of ``value`` (the indicator's unit).
    source : str
        Where the number comes from (document, clause; or why it is assumed).
    confirmed : bool
        True when the number is the criterion's own; False for an assumption.
    benchmark : str
        For an unconfirmed threshold, what the number is (e.g. "certified-city average,
        Oct 2022"); shown beside "above / below". Empty: "benchmark".

    Notes
    -----
    :attr:`standing` is ``"confirmed"`` (the verdict is decided on it) or ``"benchmark"``
    (shown as above / below, never a fail).
    """

    key: str
    op: str
    value: float
    unit: str
    source: str
    confirmed: bool
    benchmark: str = ""

    @property
    def standing(self) -> str:
        """``"confirmed"`` or ``"benchmark"``."""
        return "confirmed" if self.confirmed else "benchmark"

    def __post_init__(self):
        if self.op not in OPS:
            raise InputError("Threshold", f"{self.key}.op", f"expected one of {OPS}, got {self.op!r}")
        if not (isinstance(self.value, (int, float, np.number)) and math.isfinite(self.value)):
            raise InputError("Threshold", f"{self.key}.value",
                             f"expected a finite number, got {self.value!r}")


NATIONAL_GIGABIT_USERS_GOAL_2023 = 30_000_000
"""Action plan goal: more than 30 million gigabit broadband users nationally by end 2023."""

CHINA_POPULATION_2020 = 1_411_778_724
"""Mainland resident population, 7th national census (NBS communiqué No. 2, 2021-05-11)."""

GIGABIT_USERS_PER_10K_THRESHOLD = round(
    1e4 * NATIONAL_GIGABIT_USERS_GOAL_2023 / CHINA_POPULATION_2020, 2
)
"""212.5 gigabit users per 10,000 residents: the national 2023 goal pro rata by population."""

DEFAULT_THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("fibre_gigabit_coverage_pct", ">", 80.0, "%",
              f"{_ACTION_PLAN}: urban household gigabit-fibre coverage above 80 %", True),
    Threshold("pon_10g_port_share_pct", ">=", 46.7, "%",
              f"benchmark: average of the 110 certified cities, {_NOTICE_2022}", False,
              "certified-city average, Oct 2022"),
    Threshold("key_place_5g_reach_pct", ">=", 80.0, "%",
              "benchmark: every certified city exceeded 80 % "
              f"({_NOTICE_2022}, as reported by People's Daily 2023-02-20)", False,
              "lowest of the certified cities, 2022"),
    Threshold("bs_5g_per_10k", ">", 12.0, "per 10,000 residents",
              f"{_ACTION_PLAN}: more than 12 5G base stations per 10,000 residents", True),
    Threshold("fbb_500m_user_share_pct", ">=", 32.6, "%",
              f"benchmark: average of the certified cities, {_NOTICE_2022}", False,
              "certified-city average, Oct 2022"),
    Threshold("gigabit_users_per_10k", ">=", GIGABIT_USERS_PER_10K_THRESHOLD,
              "per 10,000 residents",
              "benchmark: the action plan's national goal of 30 million gigabit users by 2023, "
              "pro rata to the 2020 census population (1,411,778,724)", False,
              "national 2023 goal, pro rata"),
    Threshold("user_5g_share_pct", ">=", 38.9, "%",
              f"benchmark: average of the certified cities at end 2022, {_NOTICE_2022}", False,
              "certified-city average, end 2022"),
)
"""The default pass marks; the config may replace any (``dataclasses.replace``)."""


@dataclass(frozen=True)
class Indicator:
    """One evaluated row: an indicator in one scope.

    ``passed`` is None when there is no threshold or the value is not known (NaN).
    ``standing``: ``"confirmed"``, ``"benchmark"`` (see :class:`Threshold`) or ``""`` (no
    threshold). ``margin``: the headroom over the threshold in the indicator's unit, positive
    when passing (``value - threshold`` for ``>``, ``>=``; ``threshold - value`` for ``<``,
    ``<=``), NaN without a threshold or value. ``gap`` is what the value lacks to reach the
    threshold, in the indicator's unit:
    0.0 when passing, ``threshold - value`` (``value - threshold`` for ``<``, ``<=``) when
    failing, NaN when ``passed`` is None. A strict comparison failing exactly at the
    threshold has gap 0.0 and ``passed`` False: any increase passes.
    """

    scope: str
    key: str
    label: str
    value: float
    unit: str
    threshold: float
    op: str | None
    passed: bool | None
    gap: float
    kind: str
    confirmed: bool | None
    source: str
    standing: str = ""
    margin: float = math.nan
    benchmark: str = ""


COLUMNS: tuple[str, ...] = tuple(Indicator.__dataclass_fields__)


def passes(value: float, op: str, threshold: float) -> bool | None:
    """Exact comparison ``value <op> threshold``; None for a NaN value.

    No tolerance is applied: ``passes(80.0, ">", 80.0)`` is False.
    """
    if value is None or math.isnan(float(value)):
        return None
    v = float(value)
    if op == ">":
        return v > threshold
    if op == ">=":
        return v >= threshold
    if op == "<":
        return v < threshold
    if op == "<=":
        return v <= threshold
    raise InputError("passes", "op", f"expected one of {OPS}, got {op!r}")


def gap_to_pass(value: float, op: str, threshold: float) -> float:
    """What ``value`` lacks to pass, in its unit: 0 when passing, NaN for a NaN value."""
    ok = passes(value, op, threshold)
    if ok is None:
        return math.nan
    if ok:
        return 0.0
    v = float(value)
    return float(threshold - v) if op in (">", ">=") else float(v - threshold)


def margin_of(value: float, op: str, threshold: float) -> float:
    """Headroom of ``value`` over the threshold, in its unit: positive passes (strict ops: > 0)."""
    if value is None or math.isnan(float(value)):
        return math.nan
    v = float(value)
    return float(v - threshold) if op in (">", ">=") else float(threshold - v)


def _spec(key: str) -> IndicatorSpec:
    try:
        return INDICATORS[key]
    except KeyError:
        raise InputError("criteria", key, f"unknown indicator; expected one of {sorted(INDICATORS)}") from None


def _threshold_map(thresholds) -> dict[str, Threshold]:
    if thresholds is None:
        thresholds = DEFAULT_THRESHOLDS
    if isinstance(thresholds, Mapping):
        items = list(thresholds.values())
    else:
        items = list(thresholds)
    out: dict[str, Threshold] = {}
    for t in items:
        if not isinstance(t, Threshold):
            raise InputError("criteria", "thresholds", f"expected Threshold objects, got {type(t).__name__}")
        spec = _spec(t.key)
        if t.unit != spec.unit:
            raise InputError("criteria", f"{t.key}.unit",
                             f"expected {spec.unit!r} (the indicator's unit), got {t.unit!r}")
        if t.key in out:
            raise InputError("criteria", t.key, "threshold given twice")
        out[t.key] = t
    return out


def evaluate_indicator(scope: str, key: str, value: float, threshold: Threshold | None) -> Indicator:
    """Evaluate one indicator value in one scope against its threshold (or none)."""
    spec = _spec(key)
    value = float(value) if value is not None else math.nan
    if threshold is None:
        return Indicator(scope, key, spec.label, value, spec.unit, math.nan, None, None, math.nan,
                         spec.kind, None, "")
    return Indicator(
        scope, key, spec.label, value, spec.unit, float(threshold.value), threshold.op,
        passes(value, threshold.op, threshold.value),
        gap_to_pass(value, threshold.op, threshold.value),
        spec.kind, threshold.confirmed, threshold.source, threshold.standing,
        margin_of(value, threshold.op, threshold.value), threshold.benchmark,
    )


def evaluate_rows(
    values_by_district: Mapping[str, Sequence[float]],
    citywide: Mapping[str, float],
    thresholds: Iterable[Threshold] | Mapping[str, Threshold] | None = None,
    *,
    district_codes: Sequence[str],
) -> list[Indicator]:
    """Evaluate every indicator given, citywide first, then district by district.

    Parameters
    ----------
    values_by_district : mapping key -> array [n_districts]
        Per-district values, in ``district_codes`` order; NaN where unknown.
    citywide : mapping key -> float
        Citywide values (not the mean of districts: each helper aggregates numerators
        and denominators).
    thresholds : iterable of Threshold, mapping, or None
        Pass marks; None uses :data:`DEFAULT_THRESHOLDS`. Indicators without one are
        reported with ``passed=None``.
    district_codes : sequence of str
        Scope label of each district row.

    Returns
    -------
    list of Indicator
        Rows in :data:`INDICATORS` order within each scope. Every thresholded indicator
        has a citywide row; one missing from ``citywide`` has value NaN and ``passed``
        None, so that a verdict never passes on criteria that were not evaluated.
    """
    th = _threshold_map(thresholds)
    codes = [str(c) for c in district_codes]
    for key in list(values_by_district) + list(citywide):
        _spec(key)
    arrays = {}
    for key, vals in values_by_district.items():
        arr = np.asarray(vals, dtype=np.float64)
        if arr.shape != (len(codes),):
            raise InputError("criteria", key,
                             f"expected {len(codes)} district values, got shape {arr.shape}")
        arrays[key] = arr
    rows: list[Indicator] = []
    for key in INDICATORS:
        if key in citywide:
            rows.append(evaluate_indicator("citywide", key, citywide[key], th.get(key)))
        elif key in th:
            # a criterion with a pass mark but no value: listed, not judged (passed None)
            rows.append(evaluate_indicator("citywide", key, math.nan, th[key]))
    for i, code in enumerate(codes):
        for key in INDICATORS:
            if key in arrays:
                rows.append(evaluate_indicator(code, key, arrays[key][i], th.get(key)))
    return rows


def rows_to_frame(rows: Sequence[Indicator]) -> pd.DataFrame:
    """A DataFrame with one column per :class:`Indicator` field (``passed`` as object)."""
    df = pd.DataFrame([r.__dict__ for r in rows], columns=list(COLUMNS))
    df["passed"] = df["passed"].astype(object)
    df["confirmed"] = df["confirmed"].astype(object)
    return df


def evaluate(
    values_by_district: Mapping[str, Sequence[float]],
    citywide: Mapping[str, float],
    thresholds: Iterable[Threshold] | Mapping[str, Threshold] | None = None,
    *,
    district_codes: Sequence[str],
) -> pd.DataFrame:
    """The criteria table: :func:`evaluate_rows` as a DataFrame.

    Columns: scope, key, label, value, unit, threshold, op, passed, gap, kind, confirmed,
    source (see :class:`Indicator`).
    """
    return rows_to_frame(evaluate_rows(values_by_district, citywide, thresholds,
                                       district_codes=district_codes))


def verdict(table: pd.DataFrame) -> dict:
    """Citywide verdict: does the city meet every *confirmed* citywide criterion?

    Benchmarks (thresholds that are not the criterion's own number, e.g. a certified-city
    average) never decide the verdict: they are listed as above or below.

    Returns
    -------
    dict
        ``passed``: False when any confirmed criterion fails; True when all pass; None when
        none fails but some could not be judged (no value) or none is confirmed.
        ``failed`` and ``unknown`` (keys), ``n_passed`` and ``n_criteria`` (confirmed
        criteria only); ``above`` and ``below`` (keys of benchmarks the value reaches or not)
        and ``n_benchmarks``.
    """
    city = table[(table["scope"] == "citywide") & table["op"].notna()]
    standing = city["standing"] if "standing" in city else city["confirmed"].map(
        lambda c: "confirmed" if c is True else "benchmark")
    conf = city[standing.to_numpy() == "confirmed"]
    bench = city[standing.to_numpy() == "benchmark"]
    failed = [k for k, p in zip(conf["key"], conf["passed"]) if p is False]
    unknown = [k for k, p in zip(conf["key"], conf["passed"]) if p is None]
    n_passed = sum(1 for p in conf["passed"] if p is True)
    if failed:
        ok = False
    elif unknown or n_passed == 0:
        ok = None
    else:
        ok = True
    return {"passed": ok, "failed": failed, "unknown": unknown, "n_passed": n_passed,
            "n_criteria": len(conf),
            "above": [k for k, p in zip(bench["key"], bench["passed"]) if p is True],
            "below": [k for k, p in zip(bench["key"], bench["passed"]) if p is False],
            "n_benchmarks": len(bench)}


def benchmark_position(passed) -> str:
    """``"above"``, ``"below"`` or ``""`` for a benchmark row's comparison."""
    return {True: "above", False: "below"}.get(passed, "")
