"""The commands: the only place below :mod:`sim.cli` that knows the validated scenario.

Each module wires the layers for one job, passing arrays and result objects down and
handing what comes back to :mod:`sim.report`:

* :mod:`.inputs` - the region, grid, site file and sites of a scenario;
* :mod:`.busyhour` - the 5G busy hour, its simpy checks and the PON busy hour;
* :mod:`.outputs` - every file of a run folder: rasters, maps, tables, summary, reports;
* :mod:`.run` - ``gigacity run`` (:func:`sim.app.run.run_scenario`, a short list of stages);
* :mod:`.plan`, :mod:`.compare`, :mod:`.validate` - the other commands;
* :mod:`.stages` - stage timing and progress callbacks.
"""
