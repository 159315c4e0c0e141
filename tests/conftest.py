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


def _group_alive(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes of process group ``pgid`` (Linux /proc)."""
    alive = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[2]) == pgid and stat[0] != "Z":
                alive.append(int(d.name))
    return alive


@pytest.fixture(scope="session")
def group_alive():
    """``group_alive(pgid)``: the live processes of a process group (a run started with a new session)."""
    return _group_alive
