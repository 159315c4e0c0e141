"""The geodata reader: shipped Shanghai districts, census and key places, and bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import shapely

from sim.errors import GeodataError
from sim.geodata import GeodataWarning, read_census, read_districts, read_key_places

GEODATA = Path(__file__).resolve().parent.parent / "geodata"

# The 16 county-level districts of Shanghai (post-2016 division), codes from the national
# administrative division code list (GB/T 2260), as in geodata/SOURCE.md.
SHANGHAI_CODES = [
    "310101", "310104", "310105", "310106", "310107", "310109", "310110", "310112",
    "310113", "310114", "310115", "310116", "310117", "310118", "310120", "310151",
]
# geodata/SOURCE.md, validation: total area of the polygons in EPSG:32651 is 7,003.5 km².
SOURCE_POLYGON_AREA_KM2 = 7003.5
AREA_REL_TOL = 0.005  # the tolerance: 0.5 %
# 7th national census (2020): Shanghai resident population 24,870,895 (geodata/SOURCE.md).
CENSUS_TOTAL_2020 = 24_870_895


def test_sixteen_districts_with_codes_and_names(districts):
    assert list(districts["code"]) == SHANGHAI_CODES
    assert districts.crs.to_epsg() == 32651
    assert districts.loc[districts.code == "310115", "name_en"].item() == "Pudong New Area"
    assert districts.loc[districts.code == "310151", "name_zh"].item() == "崇明区"


def test_census_joined(districts):
    assert int(districts["population"].sum()) == CENSUS_TOTAL_2020
    assert districts.loc[districts.code == "310101", "population"].item() == 662030
    assert float(districts["area_km2_official"].sum()) == pytest.approx(6340.50, abs=1e-6)


def test_polygon_area_matches_source_within_half_percent(districts):
    total = float(districts["area_km2_polygon"].sum())
    assert total == pytest.approx(SOURCE_POLYGON_AREA_KM2, rel=AREA_REL_TOL)
    # the known tidal-flat excess of the coastal districts: polygons > official land area
    assert total > 1.09 * float(districts["area_km2_official"].sum())


def test_key_places(districts):
    kp = read_key_places(GEODATA / "shanghai_key_places.csv", districts["code"])
    assert len(kp) == 31
    assert kp.crs.to_epsg() == 32651
    # KEY_PLACES.md: every point falls inside the district it names
    joined = kp.sjoin(districts[["code", "geometry"]], predicate="within")
    assert (joined["district_code"] == joined["code"]).all()


def test_missing_geodata_file(tmp_path):
    with pytest.raises(GeodataError, match=r"nope\.geojson: file not found"):
        read_districts(tmp_path / "nope.geojson", GEODATA / "shanghai_district_stats.csv")


def test_geojson_not_valid(tmp_path):
    bad = tmp_path / "bad.geojson"
    bad.write_text("{ this is not json")
    with pytest.raises(GeodataError, match=r"bad\.geojson: not a readable GeoJSON file"):
        read_districts(bad, GEODATA / "shanghai_district_stats.csv")


def test_invalid_polygon_repaired_with_warning(tmp_path):
    doc = json.loads((GEODATA / "shanghai_districts.geojson").read_text())
    feat = doc["features"][0]
    # a bow-tie (self-intersecting) ring in Huangpu's place
    feat["geometry"] = {
        "type": "MultiPolygon",
        "coordinates": [[[[121.47, 31.22], [121.50, 31.25], [121.50, 31.22], [121.47, 31.25], [121.47, 31.22]]]],
    }
    path = tmp_path / "bowtie.geojson"
    path.write_text(json.dumps(doc))
    with pytest.warns(GeodataWarning, match=r"bowtie\.geojson: invalid polygon\(s\) for district\(s\) 310101 repaired"):
        d = read_districts(path, GEODATA / "shanghai_district_stats.csv")
    assert shapely.is_valid(d.geometry.values).all()
    assert d.geometry.values[0].area > 0


def _census_variant(tmp_path, edit):
    lines = (GEODATA / "shanghai_district_stats.csv").read_text(encoding="utf-8").splitlines()
    lines = edit(lines)
    path = tmp_path / "census.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_census_missing_district(tmp_path):
    path = _census_variant(tmp_path, lambda ls: [line for line in ls if not line.startswith("310151")])
    msg = r"census\.csv: column code: district 310151 .* missing from the census table"
    with pytest.raises(GeodataError, match=msg):
        read_districts(GEODATA / "shanghai_districts.geojson", path)


def test_census_duplicate_code(tmp_path):
    path = _census_variant(tmp_path, lambda ls: ls + [ls[1]])
    with pytest.raises(GeodataError, match=r"census\.csv: line 18, column code: duplicate district code 310101"):
        read_census(path)


def test_census_non_numeric_population(tmp_path):
    path = _census_variant(tmp_path, lambda ls: [ls[0], ls[1].replace("662030", "six hundred")] + ls[2:])
    with pytest.raises(GeodataError, match=r"line 2, column population_2020: expected an integer, got 'six hundred'"):
        read_census(path)


def test_census_missing_column(tmp_path):
    path = _census_variant(tmp_path, lambda ls: [line.rsplit(",", 1)[0] for line in ls])
    with pytest.raises(GeodataError, match=r"column area_km2_official: expected columns"):
        read_census(path)


def test_reader_does_not_modify_inputs(tmp_path):
    src = tmp_path / "d.geojson"
    shutil.copy(GEODATA / "shanghai_districts.geojson", src)
    before = src.read_bytes()
    read_districts(src, GEODATA / "shanghai_district_stats.csv")
    assert src.read_bytes() == before
    assert np.isfinite(read_census(GEODATA / "shanghai_district_stats.csv")["area_km2_official"]).all()


def test_lonlat_grid_transforms_round_trip_and_match_geopandas():
    import geopandas as gpd

    from sim.geodata import GRID_CRS, WGS84_CRS, lonlat_to_xy_m, xy_m_to_lonlat

    lon = np.array([121.4737, 121.5055, 121.3975])     # People's Square, Lujiazui, Chengqiao
    lat = np.array([31.2304, 31.2397, 31.6228])
    x, y = lonlat_to_xy_m(lon, lat)
    assert x.dtype == y.dtype == np.float64 and x.shape == (3,)
    ref = gpd.GeoSeries.from_xy(lon, lat, crs=WGS84_CRS).to_crs(GRID_CRS)
    np.testing.assert_allclose(x, ref.x.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(y, ref.y.to_numpy(), atol=1e-6)
    back_lon, back_lat = xy_m_to_lonlat(x, y)
    np.testing.assert_allclose(back_lon, lon, atol=1e-9)
    np.testing.assert_allclose(back_lat, lat, atol=1e-9)
    sx, sy = lonlat_to_xy_m(121.4737, 31.2304)        # scalars in, 0-d arrays out
    assert float(sx) == x[0] and float(sy) == y[0]
