"""The only layer that writes files: run folder, JSON, CSV, PNG, GeoTIFF, GeoPackage, reports.

Callers import the submodules:

- :mod:`sim.report.files`: atomic writers (JSON, CSV, PNG, GeoTIFF, GeoPackage) and the run
  folder;
- :mod:`sim.report.runfolder`: the ``summary.json`` schema and reading run folders back
  (summaries, GeoTIFFs, GeoPackages, the indicator table of two runs);
- :mod:`sim.report.render`: the Markdown and HTML reports and ``compare.md``.

Importing this package imports none of them (nor numpy, pandas, matplotlib or rasterio).
"""
