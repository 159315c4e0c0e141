"""Any city: a synthetic two-district city in UTM zone 48 (around Chengdu) runs end to end.

The scenario extends the shipped tiny config (radio, traffic and criteria numbers) and
replaces the region: its own polygons, census table and key places, its name, shares of
households for the fibre counts and sites per 10,000 residents. The grid CRS is the UTM
zone of the region's centroid (104.04 E -> zone 48N, EPSG:32648; zone = floor((lon + 180) / 6) + 1),
and the report names the city and its sources, never Shanghai.
"""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

from sim.app.run import run_scenario
from sim.config import load_scenario
from sim.geodata import utm_crs_of

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.toml"


def _square(lon0, lat0, d):
    return [[[lon0, lat0], [lon0 + d, lat0], [lon0 + d, lat0 + d], [lon0, lat0 + d], [lon0, lat0]]]


def write_two_district_city(folder: Path) -> Path:
    """Polygons, census, key places and a config of a made-up two-district city; returns the config."""
    folder.mkdir(parents=True, exist_ok=True)
    feats = [{"type": "Feature", "properties": {"code": code, "name_en": en, "name_zh": zh},
              "geometry": {"type": "Polygon", "coordinates": _square(lon0, 30.64, 0.04)}}
             for code, en, zh, lon0 in (("510104", "East Town", "东城", 104.04),
                                        ("510105", "West Town", "西城", 104.0))]
    (folder / "districts.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}),
                                              encoding="utf-8")
    (folder / "census.csv").write_text(
        "code,name_en,name_zh,population_2020,households_2020,area_km2_official\n"
        "510104,East Town,东城,200000,80000,14.8\n510105,West Town,西城,150000,60000,14.8\n", encoding="utf-8")
    (folder / "places.csv").write_text(
        "id,category,name_en,name_zh,lon,lat,district_code\n"
        "P1,hospital,East Hospital,东医院,104.06,30.66,510104\n"
        "P2,railway_station,West Station,西站,104.02,30.66,510105\n",
        encoding="utf-8")
    cfg = folder / "city.toml"
    cfg.write_text(f'''extends = "{TINY.as_posix()}"
[scenario]
name = "twotowns"
description = "a synthetic two-district city"
[region]
name = "Twotowns"
name_zh = "双城"
districts = "districts.geojson"
census = "census.csv"
key_places = "places.csv"
district_codes = []
resolution_m = 250.0
sources = ["District polygons: synthetic squares (test fixture)", "Census: synthetic numbers (test fixture)"]
[deployment]
sites_per_10k = {{ cmcc = 4.0, ctcu = 5.0 }}
central_districts = ["510104"]
rural_districts = []
[broadband]
gigabit_household_share = 0.6
fibre_household_share = 0.95
fibre_subscriber_share = 0.85
[output]
dir = "runs"
''', encoding="utf-8")
    return cfg


def test_utm_zone_of_centroid():
    assert utm_crs_of(121.47, 31.23) == "EPSG:32651"   # Shanghai
    assert utm_crs_of(104.07, 30.66) == "EPSG:32648"   # Chengdu
    assert utm_crs_of(116.40, 39.90) == "EPSG:32650"   # Beijing
    assert utm_crs_of(114.06, 22.54) == "EPSG:32650"   # Shenzhen
    assert utm_crs_of(-70.0, -33.0) == "EPSG:32719"    # southern hemisphere


def test_config_of_another_city(tmp_path):
    sc = load_scenario(write_two_district_city(tmp_path))
    assert sc.region.name == "Twotowns" and sc.region.districts == tmp_path / "districts.geojson"
    # the shares replaced the totals inherited from tiny.toml, sites_per_10k replaced sites
    assert sc.broadband.fibre_households is None and sc.broadband.fibre_household_share == 0.95
    assert sc.deployment.sites is None and dict(sc.deployment.sites_per_10k) == {"cmcc": 4.0, "ctcu": 5.0}


@pytest.mark.slow
def test_two_district_city_end_to_end(tmp_path):
    sc = load_scenario(write_two_district_city(tmp_path / "city"))
    res = run_scenario(sc, out_dir=tmp_path / "run")
    s = res.summary
    assert s["grid"]["crs"] == "EPSG:32648"
    assert s["region"]["name"] == "Twotowns" and s["region"]["n_districts_file"] == 2
    assert s["inputs"]["sites"] == {"cmcc": 140, "ctcu": 175}       # 350,000 residents x 4 (5) per 10,000
    assert s["sites"]["by_ran"] == {"cmcc": 140, "ctcu": 175}
    # 60 % of 140,000 households passed by 10G-PON
    assert s["citywide"]["fibre_gigabit_coverage_pct"] == pytest.approx(60.0, abs=0.01)
    assert 0 < s["citywide"]["pop_cov_5g_indoor_pct"] <= 100
    for name in ("report.html", "report.md"):
        text = (res.run_dir / name).read_text(encoding="utf-8")
        assert "Twotowns" in text and "synthetic squares" in text
        assert "shanghai" not in text.lower() and "上海" not in text, name
    assert "shanghai" not in (res.run_dir / "summary.json").read_text(encoding="utf-8").lower().replace(
        str(TINY).lower(), "")
