"""Shared fixtures. Tests are offline and write only under pytest's tmp_path."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GEODATA = ROOT / "geodata"
CONFIGS = ROOT / "configs"


@pytest.fixture(scope="session")
def districts():
    """The 16 shipped Shanghai districts (EPSG:32651)."""
    from sim.geodata import read_districts

    return read_districts(GEODATA / "shanghai_districts.geojson", GEODATA / "shanghai_district_stats.csv")


@pytest.fixture(scope="session")
def root():
    return ROOT
