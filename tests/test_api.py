"""The Python API (sim.api): load a config from a path or a dict, simulate in memory, write."""

import json
import tomllib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from sim import api
from sim.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.toml"


def test_load_config_from_path_dict_and_overrides():
    a = api.load_config(TINY, overrides={"radio.k_sites": 8})
    b = api.load_config(tomllib.loads(TINY.read_text(encoding="utf-8")), overrides=["radio.k_sites=8"],
                        base_dir=TINY.parent)
    assert a.radio.k_sites == b.radio.k_sites == 8
    assert a.region.districts == b.region.districts          # relative paths against base_dir
    c = api.load_config({"extends": str(TINY), "scenario": {"name": "from-dict"}})
    assert c.scenario.name == "from-dict" and c.operators == a.operators
    with pytest.raises(ConfigError, match=r"--set: radio\.k_sites: expected an integer"):
        api.load_config(TINY, overrides={"radio.k_sites": "many"})


@pytest.mark.slow
def test_simulate_in_memory_then_write(tmp_path):
    sc = api.load_config(TINY, overrides={"region.resolution_m": 400, "output.maps": False})
    res = api.simulate(sc)
    assert not any(tmp_path.iterdir())
    rsrp = res.raster("ctcu-n78_rsrp_dbm")
    assert rsrp.shape == res.grid.shape and rsrp.dtype == np.float32
    assert int(np.isfinite(rsrp).sum()) == res.inputs.rasters.n_land
    assert res.transform.a == 400.0 and res.crs == "EPSG:32651"
    assert "ctcu_rate_busy_bps" in res.raster_names()
    assert list(res.indicators.index) == ["310101"] and "pop_cov_5g_indoor_pct" in res.indicators
    assert set(res.criteria["key"]) >= {"bs_5g_per_10k"}
    assert len(res.sites) > 0
    out = res.write(tmp_path / "run")
    summary = json.loads((out.run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["citywide"]["pop_cov_5g_indoor_pct"] == pytest.approx(res.citywide["pop_cov_5g_indoor_pct"])
    assert "writing outputs" in summary["timings_s"]
    import rasterio

    with rasterio.open(out.run_dir / "ctcu-n78_rate_indoor_mbps.tif") as ds:
        mbps = ds.read(1)
        assert ds.units == ("Mbit/s",)
    bps = res.raster("ctcu-n78_rate_indoor_bps")
    np.testing.assert_allclose(mbps[np.isfinite(mbps)], bps[np.isfinite(bps)] / 1e6, rtol=1e-6)
