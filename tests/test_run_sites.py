"""Sites in `gigacity run`: site files (CSV, OpenCellID), site densities, UMi small cells.

Fixtures (generated once with a seeded density placement over Huangpu, then committed):

* ``fixtures/huangpu_sites.csv`` - 60 masts: 58 in Huangpu (29 China Mobile ``cmcc``
  with bands n41;n28, n41 or none; 29 China Telecom ``ctcc`` / China Unicom ``cucc`` with
  n78 or none; heights 25 / 30 / 35 / 42.5 m or empty, azimuths on every fourth) and two
  in Pudong (``PD-001``, ``PD-002``), outside the tiny region.
* ``fixtures/huangpu_opencellid.csv`` - an OpenCellID export with header, 48 cells: 18
  China Mobile sites (MNC 0; NR + LTE at every third), 12 shared-n78 sites seen as China
  Unicom (MNC 1) and China Telecom (MNC 11) at the same position for 9 of them, one GSM
  cell and one MCC 454 cell (filtered) and one China Mobile cell in Minhang (outside).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim.cli import main
from sim.config import load_scenario
from sim.errors import ConfigError, SiteFileError

ROOT = Path(__file__).resolve().parent.parent
FIX = Path(__file__).parent / "fixtures"
SITES_CSV = FIX / "huangpu_sites.csv"
SITES_OCID = FIX / "huangpu_opencellid.csv"
GIGACITY = Path(sys.executable).parent / "gigacity"

HUANGPU_AREA_KM2 = 20.46
"""Huangpu's official land area (geodata/shanghai_district_stats.csv, statistics bureau)."""
HUANGPU_POP = 662030
"""Huangpu's residents, 7th national census 2020 (geodata/shanghai_district_stats.csv)."""
REL_TOL = 1e-3
"""Densities are rounded to 4 decimals in summary.json."""
RSRP_TOL_DB = 1e-3
"""float32 RSRP: adding cells may not lower best RSRP by more than rounding."""


def tiny_config(tmp_path, *, strategy="file", site_file=SITES_CSV, deployment="", name="c.toml", k_sites=16,
                replace=()):
    """configs/tiny.toml written into tmp_path: absolute geodata, no maps/GeoTIFF, the site strategy given."""
    text = (ROOT / "configs" / "tiny.toml").read_text(encoding="utf-8")
    text = text.replace('"../geodata/', f'"{(ROOT / "geodata").as_posix()}/')
    text = text.replace('dir = "../runs"', f'dir = "{(tmp_path / "runs").as_posix()}"')
    text = text.replace("maps = true", "maps = false").replace("geotiff = true", "geotiff = false")
    text = text.replace("k_sites = 24", f"k_sites = {k_sites}")
    if strategy == "file":
        text = re.sub(r'strategy = "density"\nsites = \{[^}]*\}[^\n]*\n',
                      f'strategy = "file"\nsite_file = "{Path(site_file).as_posix()}"\n', text)
    text = text.replace("n_sectors = 3\n", "n_sectors = 3\n" + deployment + "\n", 1)
    for a, b in replace:
        assert a in text, a
        text = text.replace(a, b)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _region(sc):
    from sim.app.inputs import load_region

    return load_region(sc)


def _one_line(capsys, rc, *fragments):
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("gigacity: error: ")
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------ the site file in run


@pytest.mark.slow
def test_run_from_site_file_end_to_end(tmp_path):
    """`gigacity run` on a file-strategy config: sites, counts, densities, report, GIS attributes."""
    import json
    import os

    import pyogrio

    cfg = tiny_config(tmp_path)
    out = tmp_path / "run"
    exe = [str(GIGACITY)] if GIGACITY.exists() else [sys.executable, "-m", "sim"]
    proc = subprocess.run([*exe, "run", str(cfg), "--out", str(out)], capture_output=True, text=True,
                          env=dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT)), timeout=600)
    assert proc.returncode == 0, proc.stderr
    # what the reader counted, on the terminal (progress on stderr)
    assert ("site file huangpu_sites.csv (csv): 60 rows, 58 kept, 0 bad skipped, 2 outside the region, "
            "0 filtered, 0 co-located merged; sites cmcc 29, ctcu 29") in proc.stderr
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    info = summary["inputs"]["site_file"]
    assert (info["rows"], info["kept"], info["bad"], info["outside_region"]) == (60, 58, 0, 2)
    assert info["sites_by_ran"] == {"cmcc": 29, "ctcu": 29}
    assert summary["inputs"]["deployment"] == "file"
    row = summary["districts"][0]
    assert row["sites_5g"] == 58 and row["sites_5g_by_ran"] == {"cmcc": 29, "ctcu": 29}
    assert row["sites_area_basis"] == "official"
    assert row["sites_5g_per_km2"] == pytest.approx(58 / HUANGPU_AREA_KM2, rel=REL_TOL)
    assert row["sites_5g_per_10k"] == pytest.approx(58 / HUANGPU_POP * 1e4, rel=REL_TOL)
    assert summary["sites"]["sites_5g_per_10k"] == pytest.approx(summary["citywide"]["bs_5g_per_10k"], rel=REL_TOL)
    sites = pyogrio.read_dataframe(out / "sites.gpkg", layer="sectors")
    assert sites["site_id"].nunique() == 58
    assert len(pyogrio.read_dataframe(out / "sites.gpkg", layer="sites")) == 58
    assert (sites["source"] == "file:huangpu_sites.csv").all()
    # the file's heights where given, the central class's 30 m where empty
    assert set(np.round(sites["h_bs_m"], 3)) == {25.0, 30.0, 35.0, 42.5}
    # HP-001: azimuths 0;120;240, tilt 4, bands n41;n28 -> 3 sectors on each of two layers
    at_hp1 = np.isclose(sites["lon_deg"], 121.479529, atol=1e-7) & np.isclose(sites["lat_deg"], 31.218190, atol=1e-7)
    hp1 = sites[at_hp1]
    assert sorted(hp1["layer"]) == ["cmcc-n28"] * 3 + ["cmcc-n41"] * 3
    assert sorted(set(np.round(hp1["az_deg"], 3))) == [0.0, 120.0, 240.0]
    assert set(hp1["tilt_deg"]) == {4.0}
    dist = pyogrio.read_dataframe(out / "districts.gpkg")
    assert int(dist["sites_5g"].iloc[0]) == 58
    assert float(dist["sites_5g_per_km2"].iloc[0]) == pytest.approx(58 / HUANGPU_AREA_KM2, rel=REL_TOL)
    md = (out / "report.md").read_text(encoding="utf-8")
    # the district table: sites, sites per km² (official area), then the criteria (5G BS per 10,000 once)
    assert "| District | 5G sites | 5G sites per km² |" in md and "| Huangpu (310101) | 58 | 2.8 |" in md
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'title="5G sites per km² (official area)"' in html


def test_validate_describes_the_site_file(tmp_path, capsys):
    rc = main(["validate", str(tiny_config(tmp_path))])
    out = capsys.readouterr().out
    assert rc == 0
    assert "deployment: from" in out and "huangpu_sites.csv (csv, bad rows: skip)" in out
    assert "60 rows, 58 kept, 0 bad skipped, 2 outside the region" in out
    assert out.strip().endswith("config OK")


def test_opencellid_file_counts_and_networks(tmp_path):
    from sim.app.inputs import build_sites, read_site_file

    sc = load_scenario(tiny_config(tmp_path, site_file=SITES_OCID, deployment='site_format = "opencellid"'))
    districts = _region(sc)
    sf = read_site_file(sc, districts)
    i = sf.info
    # 48 cells: 2 filtered (GSM, MCC 454), 1 outside (Minhang), 45 kept; the 9 shared-n78 masts seen
    # under MNC 1 and MNC 11 are one site each of the shared network ctcu
    assert (i["rows"], i["filtered"], i["outside_region"], i["bad"], i["kept"]) == (48, 2, 1, 0, 45)
    assert i["merged_colocated"] == 9
    assert i["sites_by_ran"] == {"cmcc": 18, "ctcu": 12}
    plan = build_sites(sc, districts, np.random.default_rng(0), sf)
    t = plan.table
    assert t.n_sites == 30
    # OpenCellID has no band: every carrier of the network, 3 sectors, heights of the central class
    assert len(t.for_layer("cmcc-n41")) == len(t.for_layer("cmcc-n28")) == 18 * 3
    assert len(t.for_layer("ctcu-n78")) == 12 * 3
    assert set(t.h_bs_m.tolist()) == {30.0}


def test_geojson_file_same_sites_as_csv(tmp_path):
    import geopandas as gpd
    import pandas as pd

    from sim.app.inputs import read_site_file

    df = pd.read_csv(SITES_CSV, dtype=str, keep_default_na=False)
    gdf = gpd.GeoDataFrame(df.drop(columns=["lon", "lat"]),
                           geometry=gpd.points_from_xy(df["lon"].astype(float), df["lat"].astype(float)),
                           crs="EPSG:4326")
    path = tmp_path / "sites.geojson"
    gdf.to_file(path, driver="GeoJSON", engine="pyogrio")
    sc = load_scenario(tiny_config(tmp_path, site_file=path, deployment='site_format = "geojson"'))
    gj = read_site_file(sc, _region(sc))
    sc = load_scenario(tiny_config(tmp_path, name="csv.toml"))
    cv = read_site_file(sc, _region(sc))
    assert (gj.info["rows"], gj.info["kept"], gj.info["outside_region"]) == (60, 58, 2)
    assert gj.info["sites_by_ran"] == cv.info["sites_by_ran"] == {"cmcc": 29, "ctcu": 29}
    for ran in ("cmcc", "ctcu"):
        np.testing.assert_allclose(gj.by_ran[ran].x_m, cv.by_ran[ran].x_m, atol=0.01)
        np.testing.assert_array_equal(gj.by_ran[ran].h_bs_m, cv.by_ran[ran].h_bs_m)


def _variant(tmp_path, name, transform):
    lines = SITES_CSV.read_text(encoding="utf-8").splitlines()
    path = tmp_path / name
    path.write_text("\n".join(transform(lines)) + "\n", encoding="utf-8")
    return path


def _swap_lonlat(lines):
    out = [lines[0]]
    for line in lines[1:]:
        f = line.split(",")
        f[1], f[2] = f[2], f[1]
        out.append(",".join(f))
    return out


def _edit_line(n, old, new):
    """Replace ``old`` by ``new`` in file line n (1-based, header = line 1)."""
    def t(lines):
        assert old in lines[n - 1]
        return [line.replace(old, new) if k == n - 1 else line for k, line in enumerate(lines)]
    return t


BAD_FILES = {
    "missing": (None, ("missing.csv", "file not found")),
    "delimiter": (lambda ls: [line.replace(",", ";") for line in ls],
                  ("delimiter.csv", "line 1", "expected columns lon, lat separated by ','", "';'-delimited")),
    "swapped": (_swap_lonlat, ("swapped.csv", "columns lon/lat", "look swapped in 60 of 60 rows")),
    "height": (_edit_line(3, ",25,", ",tall,"), ("height.csv", "line 3, column height_m", "expected a height",
                                                  "got 'tall'")),
    "operator": (_edit_line(8, ",cmcc,", ",cmmc,"), ("operator.csv", "line 8, column operator",
                                                     "unknown operator 'cmmc'", "expected one of cmcc, ctcc")),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_site_file_one_line_exit_2_and_nothing_written(tmp_path, capsys, case):
    transform, fragments = BAD_FILES[case]
    path = tmp_path / "missing.csv" if transform is None else _variant(tmp_path, f"{case}.csv", transform)
    cfg = tiny_config(tmp_path, site_file=path, deployment='on_bad_row = "raise"')
    # an existing run folder stays as it was, even with --force
    old = tmp_path / "old-run"
    old.mkdir()
    (old / ".gigacity-run").write_text("{}", encoding="utf-8")   # a gigacity run folder: --force may replace it
    (old / "summary.json").write_text('{"kept": true}', encoding="utf-8")
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in old.iterdir()}
    rc = main(["run", str(cfg), "--out", str(old), "--force", "--quiet"])
    _one_line(capsys, rc, *fragments)
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in old.iterdir()} == before
    # and a new run folder is not even created
    new = tmp_path / "new-run"
    rc = main(["run", str(cfg), "--out", str(new), "--quiet"])
    _one_line(capsys, rc, *fragments)
    assert not new.exists()


def test_skipped_bad_rows_are_counted_and_listed(tmp_path):
    from sim.app.inputs import read_site_file

    bad = _variant(tmp_path, "two-bad.csv", lambda ls: _edit_line(8, ",cmcc,", ",cmmc,")(
        _edit_line(3, ",25,", ",tall,")(ls)))
    sc = load_scenario(tiny_config(tmp_path, site_file=bad))
    sf = read_site_file(sc, _region(sc))
    assert (sf.info["rows"], sf.info["kept"], sf.info["bad"], sf.info["outside_region"]) == (60, 56, 2, 2)
    assert sf.info["first_bad_rows"][0].startswith("line 3, column height_m: expected a height")
    assert sf.info["first_bad_rows"][1].startswith("line 8, column operator: unknown operator 'cmmc'")
    text = "\n".join(sf.lines())
    assert "2 bad skipped" in text and "skipped line 3, column height_m" in text


def test_a_network_without_sites_in_the_file_is_an_error(tmp_path):
    """Decision: no silent empty network; the error names the network and what the reader counted."""
    from sim.app.inputs import read_site_file

    only_cmcc = _variant(tmp_path, "cmcc.csv", lambda ls: [ls[0]] + [x for x in ls[1:] if ",cmcc," in x])
    sc = load_scenario(tiny_config(tmp_path, site_file=only_cmcc))
    with pytest.raises(SiteFileError, match=r"cmcc\.csv: column operator: no site of radio network 'ctcu' "
                                            r"\(operators ctcc, ctcu, cu, cucc\) inside the region"):
        read_site_file(sc, _region(sc))


def test_band_of_another_network_is_a_bad_row(tmp_path):
    from sim.app.inputs import read_site_file

    # HP-002 is a China Mobile site; n78 is a carrier of the scenario but not of China Mobile's network
    wrong = _variant(tmp_path, "band.csv", _edit_line(3, ",cmcc,n41", ",cmcc,n78"))
    sc = load_scenario(tiny_config(tmp_path, site_file=wrong))
    sf = read_site_file(sc, _region(sc))
    assert sf.info["bad"] == 1 and sf.info["sites_by_ran"] == {"cmcc": 28, "ctcu": 29}
    assert sf.info["first_bad_rows"] == [
        "site HP-002, column band: band 'n78' of operator cmcc is not a carrier of its radio network cmcc (n41, n28)"]
    sc = load_scenario(tiny_config(tmp_path, site_file=wrong, deployment='on_bad_row = "raise"'))
    with pytest.raises(SiteFileError, match=r"band\.csv: site HP-002, column band: band 'n78'"):
        read_site_file(sc, _region(sc))


def test_operator_column_required_with_several_networks(tmp_path):
    from sim.app.inputs import read_site_file

    no_op = _variant(tmp_path, "noop.csv", lambda ls: [",".join(x.split(",")[:6]) for x in ls])
    sc = load_scenario(tiny_config(tmp_path, site_file=no_op))
    with pytest.raises(SiteFileError, match=r"noop\.csv: column operator: expected an operator column"):
        read_site_file(sc, _region(sc))


def test_site_delimiter_option(tmp_path):
    from sim.app.inputs import read_site_file

    tab = _variant(tmp_path, "tab.csv", lambda ls: [line.replace(",", "\t") for line in ls])
    sc = load_scenario(tiny_config(tmp_path, site_file=tab, deployment='site_delimiter = "\\t"'))
    assert read_site_file(sc, _region(sc)).info["kept"] == 58


# ------------------------------------------------------------------ densities


def test_site_density_official_area_and_polygon_fallback(districts):
    from sim.indicators import site_density

    d = districts.iloc[:2].copy()
    n = np.array([41, 10])
    d.loc[d.index[1], "area_km2_official"] = np.nan
    out = site_density(n, d["area_km2_official"], d["area_km2_polygon"], d["population"])
    assert out["sites_5g_per_km2"][0] == pytest.approx(41 / d["area_km2_official"].iloc[0], rel=1e-12)
    assert out["sites_5g_per_km2"][1] == pytest.approx(10 / d["area_km2_polygon"].iloc[1], rel=1e-12)
    assert list(out["area_basis"]) == ["official", "polygon"]
    assert out["sites_5g_per_10k"][0] == pytest.approx(1e4 * 41 / d["population"].iloc[0], rel=1e-12)
    city = out["citywide"]
    assert city["sites_5g"] == 51 and city["area_basis"] == "official, polygon where none"
    assert city["sites_5g_per_10k"] == pytest.approx(1e4 * 51 / d["population"].sum(), rel=REL_TOL)


def test_density_too_many_sites_is_one_config_line(tmp_path, capsys):
    """place_by_density refuses a count below the 50 m spacing; run names the config key."""
    cfg = tiny_config(tmp_path, strategy="density", replace=[("sites = { cmcc = 30, ctcu = 40 }",
                                                             "sites = { cmcc = 20000, ctcu = 40 }")])
    rc = main(["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"])
    line = _one_line(capsys, rc, "c.toml: deployment.sites.cmcc: too many sites for district 310101 Huangpu",
                     "20000 sites need a lattice spacing", "sites fit")
    assert not (tmp_path / "run").exists(), line


# ------------------------------------------------------------------ small cells

SMALL = "small_cells = { cmcc = 12, ctcu = 6 }"


def test_small_cells_default_off(tmp_path):
    sc = load_scenario(ROOT / "configs" / "tiny.toml")
    assert not sc.deployment.small_cells
    assert sc.deployment.small_cell.h_bs_m == 10.0  # TR 38.901 Table 7.4.1-1 UMi


def test_small_cells_in_the_site_table(tmp_path):
    """UMi rows at the configured height and count; the macro sites do not move."""
    from sim.app.inputs import build_sites

    base = load_scenario(tiny_config(tmp_path, strategy="density", name="a.toml"))
    sc = load_scenario(tiny_config(tmp_path, strategy="density", name="b.toml",
                                   deployment=SMALL + '\nsmall_cell = { h_bs_m = 12.0, bands = ["n41", "n78"] }'))
    districts = _region(sc)
    macro = build_sites(base, districts, np.random.default_rng(3)).table
    plan = build_sites(sc, districts, np.random.default_rng(3))
    t = plan.table
    umi = t.select(t.scenario == "umi")
    assert plan.small_cells == {"cmcc": 12, "ctcu": 6}
    # cmcc: 12 sites x 3 sectors on n41 only (bands); ctcu: 6 x 3 on n78
    assert len(umi.for_layer("cmcc-n41")) == 36 and len(umi.for_layer("cmcc-n28")) == 0
    assert len(umi.for_layer("ctcu-n78")) == 18
    assert umi.n_sites == 18
    assert set(umi.h_bs_m.tolist()) == {12.0}
    assert set(umi.ptx_dbm.tolist()) == {44.0}          # TR 38.901 Table 7.8-1 UMi BS Tx power
    assert set(umi.source.tolist()) == {"small-cell"}
    assert set(umi.district_idx.tolist()) == {0}        # Huangpu is central
    rest = t.select(t.scenario != "umi")
    for name in ("site_id", "x_m", "y_m", "az_deg", "layer"):
        np.testing.assert_array_equal(getattr(rest, name), getattr(macro, name))
    assert np.intersect1d(umi.site_id, rest.site_id).size == 0


@pytest.mark.slow
def test_small_cells_never_lower_best_rsrp(tmp_path):
    """Metamorphic: adding sites never lowers best RSRP when K covers all sites."""
    from sim.app.inputs import build_rasters, build_sites, layer_radio
    from sim.coverage import compute_coverage

    sc = load_scenario(tiny_config(tmp_path, strategy="density", deployment="small_cells = { cmcc = 12 }"))
    base = load_scenario(tiny_config(tmp_path, strategy="density", name="base.toml"))
    districts = _region(sc)
    rasters = build_rasters(sc, districts)
    lid, _, carrier = sc.layers()[0]
    rsrp = []
    for s in (base, sc):
        t = build_sites(s, districts, np.random.default_rng(5)).table
        sect = t.sector_arrays(lid)
        cov = compute_coverage(rasters, sect, layer_radio(s, lid, carrier), k_sites=int(np.unique(sect.site_id).size),
                               load=s.radio.default_load, workers=1, executor="serial")
        rsrp.append(cov.rsrp_dbm)
    assert np.all(rsrp[1] >= rsrp[0] - RSRP_TOL_DB)
    assert np.any(rsrp[1] > rsrp[0] + 1.0)   # and the small cells are heard somewhere


def test_small_cells_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"deployment\.small_cells\.cu: expected a radio-network id"):
        load_scenario(tiny_config(tmp_path, strategy="density", deployment="small_cells = { cu = 3 }"))
    with pytest.raises(ConfigError, match=r"deployment\.small_cell\.bands: expected a band of radio network ctcu"):
        load_scenario(tiny_config(tmp_path, strategy="density",
                                  deployment='small_cells = { ctcu = 3 }\nsmall_cell = { bands = ["n41"] }'))


def test_small_cells_need_a_central_district_in_the_region(tmp_path):
    from sim.app.inputs import build_sites

    # Minhang (310112) only: suburban, no central district to put small cells in
    sc = load_scenario(tiny_config(tmp_path, strategy="density", deployment="small_cells = { cmcc = 3 }",
                                   replace=[('district_codes = ["310101"]', 'district_codes = ["310112"]')]))
    with pytest.raises(ConfigError, match=r"deployment\.small_cells\.cmcc: expected 0: the region has no central"):
        build_sites(sc, _region(sc), np.random.default_rng(0))


@pytest.mark.slow
def test_spacing_downtilt_keeps_a_dense_grid_covered(tmp_path):
    """Densification at a fixed 6 deg tilt aims the beams at the neighbours and the SINR collapses
    (Huangpu at about 150 m inter-site distance); the spacing rule (sim.sites.spacing_downtilt_deg)
    keeps the indoor population coverage, and a denser grid never covers fewer people by more
    than a point there."""
    from sim.app.inputs import build_rasters, build_sites, layer_radio
    from sim.coverage import compute_coverage
    from sim.indicators import coverage_mask

    cover = {}
    for tilt in ("fixed", "spacing"):
        for n in (100, 1000):
            sc = load_scenario(tiny_config(tmp_path, strategy="density", name=f"{tilt}{n}.toml",
                                           replace=[('downtilt = "spacing"', f'downtilt = "{tilt}"'),
                                                    ("ctcu = 40", f"ctcu = {n}")]))
            districts = _region(sc)
            rasters = build_rasters(sc, districts)
            lid, carrier = next((lid, c) for lid, _, c in sc.layers() if lid == "ctcu-n78")
            sect = build_sites(sc, districts, np.random.default_rng(7)).table.sector_arrays(lid)
            cov = compute_coverage(rasters, sect, layer_radio(sc, lid, carrier), k_sites=16,
                                   load=sc.radio.default_load, workers=1, executor="serial")
            ok = coverage_mask(cov.rsrp_indoor_dbm, cov.sinr_indoor_db, sc.criteria.rsrp_min_dbm,
                               sc.criteria.sinr_min_db)
            pop = rasters.population_land
            cover[tilt, n] = 100.0 * pop[ok].sum() / pop.sum()
    print({k: round(v, 1) for k, v in cover.items()})
    assert cover["fixed", 1000] < cover["fixed", 100] - 10.0       # the collapse at a fixed tilt
    assert cover["spacing", 1000] > cover["fixed", 1000] + 10.0
    assert cover["spacing", 1000] >= cover["spacing", 100] - 1.0
