"""Site planning (sim/planning.py, gigacity plan) on Huangpu (310101) at 100 m.

Checks: the incremental state equals a full recompute of the planning model; a candidate's
culled gain equals its true effect; the cut-off radius bounds every site's power; greedy
planning reaches a target with fewer added sites than uniform density placement; the CLI's
outputs and one-line errors.
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim import placement as PL
from sim import planning as P
from sim import sites as S
from sim.app import inputs as R
from sim.config import load_scenario
from sim.errors import ConfigError, InputError

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.toml"
GIGACITY = Path(sys.executable).parent / "gigacity"
LAYER = "ctcu-n78"
RTOL_POWER = 1e-9          # incremental vs full recompute: float64 sums in the same order
RTOL_GAIN = 1e-9           # culled gain vs applied change (same pixels, summed in another order)
ATOL_GAIN_PERSONS = 1e-6
TARGET_VS_UNIFORM = 0.95   # population share both strategies must reach


def _table(spec, x, y, d, start, seed):
    return S.build_site_table(S.PhysicalSites.from_xy(x, y, d), ran="ctcu", carriers=[spec],
                              rng=np.random.default_rng(seed), site_class=S.SiteClass("uma", 30.0),
                              site_id_start=start)


@pytest.fixture(scope="module")
def scene():
    """Huangpu at 100 m, 3 density-placed n78 sites, candidates every 150 m."""
    sc = load_scenario(TINY)
    districts = R.load_region(sc)
    rasters = R.build_rasters(sc, districts)
    op, car = next((o, c) for lid, o, c in sc.layers() if lid == LAYER)
    spec = S.CarrierSpec(layer=LAYER, band=car.band, ptx_dbm=car.ptx_dbm, g_max_dbi=car.antenna.g_max_dbi,
                         hpbw_h_deg=car.antenna.hpbw_h_deg, hpbw_v_deg=car.antenna.hpbw_v_deg,
                         tilt_deg=car.antenna.tilt_deg)
    # planning ranks on the expected path gain (as sim.app.plan does for a sampled-LOS, shadowed scenario)
    radio = dataclasses.replace(R.layer_radio(sc, LAYER, car), los_mode="expected", shadow_fading=False,
                                los_consistent=False)
    ex = PL.place_by_density(districts, np.array([3]), np.random.default_rng(1), 0.25)
    existing = _table(spec, ex.x_m, ex.y_m, ex.district_idx, 0, 2)
    cx, cy, cd = P.candidate_lattice(rasters, 150.0, exclude_x_m=existing.x_m, exclude_y_m=existing.y_m)
    table = existing.concat(_table(spec, cx, cy, cd, 100, 5))

    def model(t):
        return P.PlanModel(rasters, t.sector_arrays(LAYER), radio, load=sc.radio.default_load,
                           rsrp_min_dbm=sc.criteria.rsrp_min_dbm, sinr_min_db=sc.criteria.sinr_min_db)

    m = model(table)
    return dict(sc=sc, districts=districts, rasters=rasters, spec=spec, radio=radio, existing=existing,
                model=m, make_model=model, n_existing=3, start=m.full_state(range(3)))


@pytest.fixture(scope="module")
def plan(scene):
    m = scene["model"]
    return P.plan_sites(m, scene["start"], np.arange(scene["n_existing"], m.n_sites), target_share=1.0, budget=8)


def test_incremental_state_equals_full_recompute(scene, plan):
    m = scene["model"]
    assert plan.n_added == 8 and plan.stop_reason == "budget"
    full = m.full_state(list(range(scene["n_existing"])) + list(plan.site_index))
    np.testing.assert_array_equal(plan.state.covered, full.covered)
    np.testing.assert_allclose(plan.state.best_mw, full.best_mw, rtol=RTOL_POWER, atol=0)
    np.testing.assert_allclose(plan.state.total_mw, full.total_mw, rtol=RTOL_POWER, atol=0)
    np.testing.assert_array_equal(plan.state.cell_margin_mw, full.cell_margin_mw)
    np.testing.assert_array_equal(plan.state.cell_uncovered, full.cell_uncovered)
    # the curve is the covered population of the state, step by step
    assert plan.covered_population[-1] == pytest.approx(m.covered_population(full), rel=RTOL_GAIN)
    np.testing.assert_allclose(np.diff(plan.covered_population), plan.gain_population, rtol=RTOL_GAIN,
                               atol=ATOL_GAIN_PERSONS)
    assert np.all(plan.gain_population > 0)
    assert np.all(np.diff(plan.covered_share) > 0)
    # the start state was not modified
    np.testing.assert_array_equal(scene["start"].covered, m.full_state(range(scene["n_existing"])).covered)


def test_culled_gain_equals_applied_change(scene, plan):
    m = scene["model"]
    rng = np.random.default_rng(11)
    for state in (scene["start"], plan.state):
        cands = rng.choice(np.arange(scene["n_existing"], m.n_sites), 40, replace=False)
        nonzero = 0
        for j in cands:
            g = m.gain(state, int(j))
            trial = state.copy()
            applied = m.apply_site(trial, int(j))
            assert g == pytest.approx(applied, rel=RTOL_GAIN, abs=ATOL_GAIN_PERSONS), j
            nonzero += applied != 0
        assert nonzero > 0


def test_cutoff_radius_bounds_site_power(scene):
    m = scene["model"]
    j = scene["n_existing"] + 7
    r = m.site_radius_m(j)
    assert m.noise_mw * 10 ** (-m.cutoff_db / 10) == pytest.approx(m.cutoff_mw)
    # at and beyond the cut-off radius, in every direction, below noise - cutoff_db
    ang = np.deg2rad(np.arange(0.0, 360.0, 0.5))
    for f in (1.0005, 1.2, 2.0):
        x = m.site_x_m[j] + f * r * np.sin(ang)
        y = m.site_y_m[j] + f * r * np.cos(ang)
        sec = m.site_sectors[j]
        from sim import kernel

        p = kernel.sector_power_mw(x, y, np.arange(x.size), np.broadcast_to(sec[None, None, :], (x.size, 1, sec.size)),
                                   m.prepared)
        assert p.max() < m.cutoff_mw
    # inside, the envelope bounds the site's strongest sector, and the site matters somewhere
    idx, d2 = m.site_pixels(j)
    smax, ssum = m.site_power(j, idx)
    assert np.all(smax <= m.envelope_mw(j, d2))
    assert np.all(ssum >= smax)
    assert smax.max() > m.s_min_mw
    # a larger cut-off margin gives a larger radius
    wider = P.PlanModel(scene["rasters"], scene["model"].sectors, scene["radio"], load=0.5, rsrp_min_dbm=-105.0,
                        sinr_min_db=-3.0, cutoff_db=20.0)
    assert wider.site_radius_m(j) > r


@pytest.mark.slow
def test_planning_beats_uniform_density(scene, capsys):
    """Greedy additions reach the target with fewer sites than a uniform density placement."""
    districts, make_model, existing, spec = scene["districts"], scene["make_model"], scene["existing"], scene["spec"]
    n_uniform = None
    for n in range(1, 60):
        u = PL.place_by_density(districts, np.array([n]), np.random.default_rng(3), 0.25)
        m = make_model(existing.concat(_table(spec, u.x_m, u.y_m, u.district_idx, 100, 4)))
        st = m.full_state(range(m.n_sites))
        if m.covered_population(st) / m.weight_total >= TARGET_VS_UNIFORM:
            n_uniform = n
            break
    assert n_uniform is not None
    m = scene["model"]
    res = P.plan_sites(m, scene["start"], np.arange(scene["n_existing"], m.n_sites),
                       target_share=TARGET_VS_UNIFORM, budget=n_uniform)
    with capsys.disabled():
        print(f"\nHuangpu 100 m, 3 existing n78 sites, target {TARGET_VS_UNIFORM:.0%}: uniform density needs "
              f"{n_uniform} added sites, greedy planning {res.n_added}")
    assert res.reached and res.stop_reason == "target"
    assert res.n_added < n_uniform


def test_same_inputs_same_plan(scene, plan):
    m = scene["model"]
    again = P.plan_sites(m, scene["start"], np.arange(scene["n_existing"], m.n_sites), target_share=1.0, budget=3)
    np.testing.assert_array_equal(again.site_index, plan.site_index[:3])


def test_candidate_lattice_spacing_and_exclusion(scene):
    ras, ex = scene["rasters"], scene["existing"]
    x, y, d = P.candidate_lattice(ras, 150.0, exclude_x_m=ex.x_m, exclude_y_m=ex.y_m)
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
    assert dist[:, 1].min() == pytest.approx(150.0)
    dist_ex, _ = cKDTree(np.column_stack([ex.x_m, ex.y_m])).query(np.column_stack([x, y]))
    assert dist_ex.min() >= 75.0
    assert np.all(d == 0)
    # every candidate sits on a land pixel
    flat = ras.grid.flat_index_of(x, y)
    assert np.isin(flat, ras.land_flat).all()


def test_bad_arguments_raise(scene):
    m = scene["model"]
    with pytest.raises(InputError, match="target_share"):
        P.plan_sites(m, scene["start"], [5], target_share=0.0, budget=1)
    with pytest.raises(InputError, match="budget"):
        P.plan_sites(m, scene["start"], [5], target_share=0.9, budget=-1)
    with pytest.raises(InputError, match="candidates"):
        P.plan_sites(m, scene["start"], [m.n_sites], target_share=0.9, budget=1)
    import dataclasses

    with pytest.raises(InputError, match="los_mode"):
        P.PlanModel(scene["rasters"], m.sectors, dataclasses.replace(scene["radio"], los_mode="sampled"), load=0.5,
                    rsrp_min_dbm=-105.0, sinr_min_db=-3.0)


def test_config_planning_section(tmp_path):
    text = TINY.read_text(encoding="utf-8")
    sc = load_scenario(TINY)
    assert sc.planning.layer == LAYER and sc.planning.target_pop_share == 0.99
    for old, new, key in (('layer = "ctcu-n78"', 'layer = "ctcu-n99"', "planning.layer"),
                          ("target_pop_share = 0.99", "target_pop_share = 1.5", "planning.target_pop_share"),
                          ("budget_sites = 20", "budget_sites = -1", "planning.budget_sites"),
                          ("min_rate_bps = 0.0", "min_rate_bps = 0.0\nspeed = 1", "planning.speed")):
        bad = tmp_path / "bad.toml"
        bad.write_text(text.replace("../", str(ROOT) + "/").replace(old, new), encoding="utf-8")
        with pytest.raises(ConfigError, match=key) as exc:
            load_scenario(bad)
        assert str(bad) in str(exc.value) and "\n" not in str(exc.value)


# ----------------------------------------------------------------------------- CLI


def _cli(*args):
    cmd = [str(GIGACITY), *args] if GIGACITY.exists() else [sys.executable, "-m", "sim", *args]
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))   # this checkout's sim
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)


def _one_line_error(proc, *fragments):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("gigacity: error: "), proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.slow
def test_cli_plan_writes_outputs(tmp_path):
    import pandas as pd
    import pyogrio

    out = tmp_path / "plan"
    proc = _cli("plan", str(TINY), "--target", "0.9999", "--budget", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "sites added" in proc.stderr          # progress lines
    assert "target 99.99 % reached" in proc.stdout
    summary = json.loads((out / "plan_summary.json").read_text(encoding="utf-8"))
    n = summary["added_sites"]
    assert 1 <= n <= 3 and summary["reached"] and summary["layer"] == LAYER
    sites = pd.read_csv(out / "added_sites.csv")
    assert len(sites) == n and list(sites["order"]) == list(range(1, n + 1))
    assert (sites["district"].astype(str) == "310101").all()
    gdf = pyogrio.read_dataframe(out / "added_sites.gpkg")
    assert len(gdf) == n and gdf.crs.to_epsg() == 4326
    np.testing.assert_allclose(gdf.geometry.x, sites["lon"])
    curve = pd.read_csv(out / "plan_curve.csv")
    assert list(curve["sites_added"]) == list(range(n + 1))
    assert curve["covered_share"].iloc[-1] >= 0.9999 and curve["covered_share"].is_monotonic_increasing
    assert (out / "plan_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_cli_plan_bad_input_one_line_nothing_damaged(tmp_path):
    out = tmp_path / "plan"
    out.mkdir()
    keep = out / "plan_summary.json"
    keep.write_text('{"previous": true}\n', encoding="utf-8")
    _one_line_error(_cli("plan", str(TINY), "--target", "1.5", "--out", str(out)), "--target", "(0, 1]")
    _one_line_error(_cli("plan", str(TINY), "--budget", "-2", "--out", str(out)), "--budget")
    _one_line_error(_cli("plan", str(TINY), "--target", "0.99", "--out", str(out)), str(out), "force")
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.read_text(encoding="utf-8").replace("../", str(ROOT) + "/")
                   .replace("candidate_spacing_m = 150.0", 'candidate_spacing_m = "150 m"'), encoding="utf-8")
    _one_line_error(_cli("plan", str(bad), "--out", str(tmp_path / "p2")), str(bad), "planning.candidate_spacing_m")
    assert keep.read_text(encoding="utf-8") == '{"previous": true}\n'
    assert sorted(p.name for p in out.iterdir()) == ["plan_summary.json"]
    assert not (tmp_path / "p2").exists()
