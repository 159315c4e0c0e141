"""Write examples/huangpu_sites.csv and .geojson: the sites a tiny run places, as a site file.

The example site files are the density placement of ``configs/tiny.toml`` (Huangpu, 30 China
Mobile and 40 Telecom/Unicom sites, seed 7), written in the format the site reader accepts
(:func:`sim.sitefiles.read_sites_csv`: ``site_id, lon, lat, height_m, azimuths, operator,
band``; no ``tilt_deg``, so each carrier's tilt comes from the local site spacing as in the
run). They are synthetic: positions from a jittered hexagonal lattice, not real masts. Run
from the repository root::

    python examples/make_example_sites.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from sim.app.inputs import build_sites, load_region
from sim.config import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    sc = load_scenario(ROOT / "configs" / "tiny.toml")
    districts = load_region(sc)
    table = build_sites(sc, districts, np.random.default_rng(np.random.SeedSequence(sc.scenario.seed))).table
    rows = []
    for sid in np.unique(table.site_id):
        r = np.flatnonzero(table.site_id == sid)
        first = r[table.layer[r] == table.layer[r[0]]]
        rows.append({"site_id": f"HP-{int(sid) + 1:03d}", "lon": round(float(table.lon_deg[r[0]]), 6),
                     "lat": round(float(table.lat_deg[r[0]]), 6), "height_m": float(table.h_bs_m[r[0]]),
                     "azimuths": ";".join(f"{a:.0f}" for a in table.az_deg[first]),
                     "operator": str(table.ran[r[0]]),
                     "band": ";".join(dict.fromkeys(b.split("-", 1)[1] for b in table.layer[r]))})
    frame = pd.DataFrame(rows)
    frame.to_csv(ROOT / "examples" / "huangpu_sites.csv", index=False, lineterminator="\n")
    feats = [{"type": "Feature", "properties": {k: v for k, v in row.items() if k not in ("lon", "lat")},
              "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]}} for row in rows]
    text = '{"type": "FeatureCollection", "features": [\n' + ",\n".join(
        json.dumps(f, ensure_ascii=False) for f in feats) + "\n]}\n"
    (ROOT / "examples" / "huangpu_sites.geojson").write_text(text, encoding="utf-8")
    print(f"{len(frame)} sites written")


if __name__ == "__main__":
    main()
