"""The busy hour wired into the run, at the integration level, on configs/tiny.toml.

Checks: the run's load <-> interference fixed point converges; zero demand gives back the
unloaded (noise-limited) rates of the coverage kernel; more demand never raises a pixel's
busy-hour throughput; same seed, same numbers; the summary's busy-hour indicator equals a
recomputation from the written GeoTIFFs and the population raster.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from sim import linkfield, linkmodel
from sim.app import busyhour
from sim.app import inputs as R
from sim.app.assess import mobile_share_by_ran
from sim.app.run import run_scenario
from sim.busyload import rates_for_load
from sim.config import load_scenario
from sim.coverage import compute_coverage

pytestmark = pytest.mark.slow  # each test reads a full run of configs/tiny.toml

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

# float32 SINR arithmetic of kernel and sinr_for_load differ in rounding only; a rate is a
# CQI staircase, so a pixel exactly at a CQI threshold may flip one step: compare rates with
# a relative tolerance on all but a few pixels.
RATE_RTOL = 1e-4
MAX_STEP_FLIPS_SHARE = 0.002  # of land pixels
# The iterates of both demands rise from zero load (monotone map), the higher demand's never
# below the lower's at the same step; they stop at different steps once no load moves by
# traffic.fixed_point_tol (1e-3), so a load may be short by about tol and r (1 - rho) off by
# about tol / (1 - rho) relative.
MONOTONE_RTOL = 2e-3
# The indicator is recomputed from float32 GeoTIFF values with float64 sums.
INDICATOR_ATOL_PCT = 1e-6


def _scenario(**traffic):
    sc = load_scenario(CONFIGS / "tiny.toml")
    sc = dataclasses.replace(sc, output=dataclasses.replace(sc.output, maps=False))
    if traffic:
        sc = dataclasses.replace(sc, traffic=dataclasses.replace(sc.traffic, **traffic))
    return sc


@pytest.fixture(scope="module")
def scene():
    """Districts, rasters, sites and coverage (with top-M terms) of the tiny scenario."""
    sc = _scenario()
    districts = R.load_region(sc)
    rasters = R.build_rasters(sc, districts)
    sites = R.build_sites(sc, districts, np.random.default_rng(np.random.SeedSequence(sc.scenario.seed))).table
    coverage = {}
    for lid, _, carrier in sc.layers():
        coverage[lid] = compute_coverage(rasters, sites.sector_arrays(lid), R.layer_radio(sc, lid, carrier),
                                         k_sites=sc.radio.k_sites, load=sc.radio.default_load, workers=1,
                                         seed=sc.scenario.seed, top_m=R.BUSY_TOP_M)
    return sc, districts, rasters, sites, coverage, mobile_share_by_ran(sc)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("busy") / "run"
    res = run_scenario(_scenario(), out_dir=out, workers=1)
    return res


def _busy(scene, **traffic):
    sc, districts, rasters, sites, coverage, share = scene
    if traffic:
        sc = dataclasses.replace(sc, traffic=dataclasses.replace(sc.traffic, **traffic))
    b = busyhour.solve_busy_hour(sc, rasters, coverage, sites, share, list(districts["code"]))
    return b.layers, b.rate_by_ran, b.cells, b.layer_summary


def _floor_bps(radio):
    """The lowest rate ``rates_for_load`` keeps for a served user (busyload.rates_for_load, ASSUMPTION 2)."""
    return float(linkfield.layer_rate_bps(np.float64(linkmodel.CQI_SINR_THRESHOLDS_DB[0]),
                                          dataclasses.replace(radio, sinr_max_db=0.0)))


def _assert_rates_close(a, b, floor_bps=None):
    """``a`` (busy hour) matches ``b`` (coverage run) but for CQI-step flips. A pixel whose users the
    coverage run cannot serve (rate 0, e.g. deep indoors with the drawn O2I loss) has no busy-hour
    throughput (NaN); a rate below ``floor_bps`` may be lifted to its floor, the lower of its zero-load
    rate and ``floor_bps`` (busyload.rates_for_load, ASSUMPTION 2)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a = np.where(np.isnan(a) & (b == 0.0), 0.0, a)
    if floor_bps is not None:
        a = np.where((b < floor_bps) & (a >= b) & (a <= floor_bps * (1 + 1e-6)), b, a)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    bad = ~np.isclose(a[ok], b[ok], rtol=RATE_RTOL, atol=0.0)
    assert bad.mean() <= MAX_STEP_FLIPS_SHARE, f"{bad.sum()} of {bad.size} pixels differ"


def test_run_fixed_point_converges_and_is_recorded(tiny_run):
    sc = _scenario()
    bh = tiny_run.summary["busy_hour"]
    assert set(bh["layers"]) == {lid for lid, _, _ in sc.layers()}
    for lid, v in bh["layers"].items():
        assert v["converged"], lid
        assert 1 <= v["iterations"] < sc.traffic.fixed_point_max_iter, lid
        assert 0.0 <= v["max_change"] < sc.traffic.fixed_point_tol, lid
    assert bh["converged"] and bh["iterations"] == max(v["iterations"] for v in bh["layers"].values())
    # tiny.toml thins Huangpu's sites about 40-fold (30 + 40 sites): its capacity layers saturate
    assert bh["saturated_cells"] > 0
    from sim.report.runfolder import validate_summary

    validate_summary(tiny_run.summary)


def test_rates_for_load_reproduces_the_coverage_run(scene):
    """At the coverage run's own loads the recomputed SINR gives back its rates."""
    sc, _, _, _, coverage, _ = scene
    for lid, _, carrier in sc.layers():
        cov = coverage[lid]
        radio = R.layer_radio(sc, lid, carrier)
        r_in, r_out = rates_for_load(cov, radio, sc.radio.default_load)(np.full(cov.load.size, sc.radio.default_load))
        _assert_rates_close(r_in, cov.rate_indoor_bps, _floor_bps(radio))
        _assert_rates_close(r_out, cov.rate_outdoor_bps, _floor_bps(radio))


def test_zero_demand_gives_the_unloaded_rates(scene):
    """No 5G users: loads stay 0 and every pixel gets the rate of an idle network (coverage at load 0)."""
    sc, _, rasters, sites, coverage, _ = scene
    layers, rate_by_ran, rows, summ = _busy(scene, fiveg_user_share=0.0)
    for lid, _, carrier in sc.layers():
        idle = compute_coverage(rasters, sites.sector_arrays(lid), R.layer_radio(sc, lid, carrier),
                                k_sites=sc.radio.k_sites, load=0.0, workers=1, seed=sc.scenario.seed)
        bh = layers[lid]
        assert summ[lid]["iterations"] == 1 and summ[lid]["max_change"] == 0.0
        assert not bh.fixed_point.load.any() and not bh.fixed_point.implied_load.any()
        floor = _floor_bps(R.layer_radio(sc, lid, carrier))
        _assert_rates_close(bh.throughput_indoor_bps, idle.rate_indoor_bps, floor)
        _assert_rates_close(bh.throughput_outdoor_bps, idle.rate_outdoor_bps, floor)
    assert len(rows) and (rows["load"] == 0.0).all()


@pytest.mark.parametrize("low, high", [(0.005, 0.01), (0.01, 0.213), (0.213, 0.6)])
def test_more_demand_never_raises_a_pixels_throughput(scene, low, high):
    lo_layers, lo_rate, _, _ = _busy(scene, fiveg_user_share=low)
    hi_layers, hi_rate, _, _ = _busy(scene, fiveg_user_share=high)
    for ran in lo_rate:
        a, b = lo_rate[ran].astype(np.float64), hi_rate[ran].astype(np.float64)
        ok = ~np.isnan(a)
        assert np.array_equal(ok, ~np.isnan(b))
        assert np.all(b[ok] <= a[ok] * (1 + MONOTONE_RTOL)), ran
    for lid in lo_layers:
        assert np.all(hi_layers[lid].fixed_point.implied_load >= lo_layers[lid].fixed_point.implied_load
                      - 10 * _scenario().traffic.fixed_point_tol)
    # and the change is not vacuous: some pixel loses throughput
    assert any(np.nanmax(lo_rate[r] - hi_rate[r]) > 0 for r in lo_rate)


def test_same_seed_same_numbers(tiny_run, tmp_path):
    again = run_scenario(_scenario(), out_dir=tmp_path / "again", workers=1)
    a, b = tiny_run.summary["busy_hour"], again.summary["busy_hour"]
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    for name in ("cells.csv", "simpy_cells.csv", "pon_busy_hour.csv", "cmcc_rate_busy_mbps.tif"):
        assert (tiny_run.run_dir / name).read_bytes() == (again.run_dir / name).read_bytes(), name
    assert tiny_run.summary["citywide"] == again.summary["citywide"]


def test_busy_indicator_equals_recomputation_from_geotiffs(tiny_run, scene):
    import rasterio

    sc, _, rasters, _, _, share = scene
    total = sum(share.values())
    marks = {"pop_5g_100mbps_busy_pct": sc.criteria.busy_rate_bps,
             "pop_5g_1gbps_busy_pct": sc.criteria.gigabit_rate_bps}
    pct = dict.fromkeys(marks, 0.0)
    for ran in sc.ran_ids:
        with rasterio.open(tiny_run.run_dir / f"{ran}_rate_busy_mbps.tif") as ds:
            assert ds.crs.to_epsg() == 32651 and ds.units == ("Mbit/s",)
            band = ds.read(1).astype(np.float64).ravel() * 1e6
        rate = band[rasters.land_flat]
        pop = rasters.population_land
        for key, mark in marks.items():
            ok = rate >= mark
            pct[key] += share[ran] / total * 100.0 * pop[ok].sum() / pop.sum()
    for key in marks:
        assert tiny_run.summary["citywide"][key] == pytest.approx(pct[key], abs=INDICATOR_ATOL_PCT), key
    city = tiny_run.summary["citywide"]
    assert 0.0 < city["pop_5g_100mbps_busy_pct"] < 100.0
    assert city["pop_5g_1gbps_busy_pct"] <= city["pop_5g_100mbps_busy_pct"]
    keys = {r["key"] for r in tiny_run.summary["criteria"]}
    assert {"pop_5g_100mbps_busy_pct", "pop_5g_1gbps_busy_pct", "fibre_tier_met_busy_pct"} <= keys


def test_run_writes_cells_simpy_and_fibre_outputs(tiny_run):
    import csv

    import rasterio

    out = tiny_run.run_dir
    sc = _scenario()
    with open(out / "cells.csv", newline="", encoding="utf-8") as f:
        cells = list(csv.DictReader(f))
    n_cells = sum(1 for _ in cells)
    assert n_cells == 30 * 3 * 2 + 40 * 3
    assert {"layer", "sector", "site", "district", "load", "saturated", "served_users", "arrival_rate_per_s",
            "mean_throughput_bps", "p5_bps", "p50_bps", "share_ge_100mbps", "share_ge_1gbps"} <= set(cells[0])
    for c in cells:
        if c["p50_bps"] in ("", "nan"):
            continue
        p5, p50, s100, s1g = (float(c[k]) for k in ("p5_bps", "p50_bps", "share_ge_100mbps", "share_ge_1gbps"))
        assert 0.0 <= p5 <= p50 and 0.0 <= s1g <= s100 <= 1.0, c
        if c["saturated"] == "True":      # rho >= 1: no steady state, every flow gets 0
            assert p50 == 0.0 and s100 == 0.0, c
    # cells.parquet: the same table with its column types (what the issue asks of a typed copy)
    import pandas as pd

    typed = pd.read_parquet(out / "cells.parquet")
    text = pd.read_csv(out / "cells.csv", keep_default_na=False, na_values=[""])
    assert list(typed.columns) == list(text.columns) and len(typed) == n_cells
    assert typed["sector"].dtype == np.int64 and typed["saturated"].dtype == bool
    assert typed["load"].dtype == np.float64 and pd.api.types.is_string_dtype(typed["district"])
    for col in typed.columns:
        if typed[col].dtype.kind == "f":
            np.testing.assert_array_equal(typed[col].to_numpy(), text[col].to_numpy(np.float64), err_msg=col)
        else:
            assert typed[col].astype(str).tolist() == text[col].astype(str).tolist(), col
    sim = tiny_run.summary["busy_hour"]["simpy_cells"]
    assert 0 < len(sim) <= sc.traffic.simpy_cells
    assert all(0.0 < r["load"] <= 0.9 for r in sim)
    assert "simpy agrees" in tiny_run.summary["busy_hour"]["simpy_agreement"]
    assert len(tiny_run.summary["busy_hour"]["day"]) == 24
    assert {r["technology"] for r in tiny_run.summary["busy_hour"]["pon"]} == {"gpon", sc.broadband.xgspon_kind}
    with rasterio.open(out / "fibre_gigabit_households.tif") as ds:
        hh = ds.read(1)
    # 10G-PON households of Huangpu on the grid: at most its households, most of them (2021: 99.5 %)
    total_hh = sum(d["households"] for d in tiny_run.summary["districts"])
    assert 0.9 * total_hh < float(np.nansum(hh)) <= total_hh * (1 + 1e-6)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "simpy against the analytic" in md and "PON ports in the busy hour" in md
