"""Maps of the city: rasters, districts, criteria choropleths and sites.

Every function returns a :class:`matplotlib.figure.Figure` built with the object API (no
pyplot state) and never saves it: :func:`sim.report.files.write_png` does. Each map has the
district boundaries and English names (Chinese too when a CJK font is installed), a
colour bar with units or a legend, the title passed in (scenario and year), a scale bar in
km and a north arrow drawn with matplotlib primitives, the ODbL attribution line, and an
inset zooming on the central districts (``inset_codes``: the scenario's
``deployment.central_districts``).

Coordinates are metres in the grid CRS (EPSG:32651, UTM 51N). The rooms:

- :mod:`sim.maps.frame`: what every map shares (figure, outlines, labels and their layout,
  inset, scale bar, north arrow, attribution);
- :mod:`sim.maps.rasters`: maps of per-pixel rasters and of differences;
- :mod:`sim.maps.districts`: district, criteria, sites and key-places maps;
- :mod:`sim.maps.charts`: the site-planning curve.

``import sim`` does not import this package; matplotlib is imported here only.
"""

from __future__ import annotations

from .charts import plan_curve_figure
from .districts import choropleth, criteria_panels, district_map, key_places_map, sites_map
from .frame import FAIL_COLOUR, NONE_COLOUR, PASS_COLOUR, cjk_font_family
from .rasters import difference_map, raster_map, reused_frames

__all__ = [
    "raster_map",
    "district_map",
    "choropleth",
    "sites_map",
    "key_places_map",
    "difference_map",
    "reused_frames",
    "criteria_panels",
    "cjk_font_family",
    "plan_curve_figure",
    "PASS_COLOUR",
    "FAIL_COLOUR",
    "NONE_COLOUR",
]
