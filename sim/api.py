"""The Python API: a scenario in a notebook, in memory.

::

    from sim import api

    sc = api.load_config("configs/shanghai-2021.toml", overrides={"region.resolution_m": 500})
    result = api.simulate(sc)                      # nothing written
    result.citywide["pop_cov_5g_indoor_pct"]       # an indicator, citywide
    result.indicators                              # DataFrame: district x indicator
    rsrp = result.raster("ctcu-n78_rsrp_dbm")      # 2-D numpy array, NaN off land
    result.transform, result.crs                   # its georeference
    result.write("runs/my-run")                    # the run folder `gigacity run` writes

Tiles run on the scenario's ``[compute]`` engine (local processes by default; ``overrides=
{"compute.engine": "dask"}`` or ``{"compute.scheduler": "tcp://HOST:8786"}`` for Dask). To run
many scenarios on one cluster, open the engine once and hand it to each :func:`simulate`::

    with api.open_engine(sc) as engine:            # e.g. a Dask LocalCluster, started once
        results = [api.simulate(s, engine=engine) for s in scenarios]

``load_config`` takes a TOML path or a dict (the TOML's content; relative paths resolve
against ``base_dir``, default the working folder) and ``overrides`` as ``{"section.key":
value}`` or ``["section.key=value", ...]``, checked like ``--set``. Errors are
:class:`sim.errors.GigacityError` with the one-line message the command line prints.
"""

from __future__ import annotations

from pathlib import Path

from .app.run import Simulation, open_engine
from .app.run import simulate as _simulate
from .compose import scenario_from_dict
from .config import Scenario, load_scenario

__all__ = ["load_config", "simulate", "open_engine", "Result", "Scenario"]

Result = Simulation
"""What :func:`simulate` returns (:class:`sim.app.run.Simulation`)."""


def load_config(path_or_dict, overrides=None, *, base_dir=None) -> Scenario:
    """A validated scenario from a TOML file or a dict, with ``overrides`` applied (see module docs)."""
    sets = list(overrides.items()) if isinstance(overrides, dict) else list(overrides or ())
    if isinstance(path_or_dict, dict):
        return scenario_from_dict(path_or_dict, Path(base_dir) if base_dir is not None else Path.cwd(), sets)
    return load_scenario(path_or_dict, sets)


def simulate(scenario: Scenario, *, workers=None, progress=None, engine=None) -> Result:
    """Run ``scenario`` end to end in memory; ``progress(stage, done, total)`` is called as it goes.

    ``engine``: an open engine (:func:`open_engine`) the tiles run on, left open; default the
    scenario's ``[compute]`` engine, opened and closed for this run."""
    return _simulate(scenario, workers=workers, progress=progress, engine=engine)
