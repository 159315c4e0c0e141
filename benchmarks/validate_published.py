"""Set a run's radio figures beside published measurements: "published figure | source | gigacity".

Usage::

    python benchmarks/validate_published.py RUN_FOLDER

Reads ``summary.json`` (the speed-test indicator, indoor and outdoor coverage) and the
outdoor SS-RSRP GeoTIFFs (``<layer>_rsrp_dbm.tif``) of the run folder and prints one table.
Nothing is judged: the published figures are measurements of real networks (crowd-sourced
speed tests, drive tests) in other years, areas or conditions, and each row says what is
compared with what.

Published figures (each checked against the cited publication's text as quoted by the news
reports named; the CAICT reports are titled 全国移动网络质量监测报告):

* CAICT (China Academy of Information and Communications Technology) with the Mobile Network
  Quality Pilot Array, report no. 1 (data Q1 2022, published June 2022): national mean 5G
  downlink access rate 334.98 Mbit/s from speed-test apps; Shanghai ranked first among the
  provinces.
* CAICT report no. 3 (data Q3 2022, published 2022-12-09): national 352.09 Mbit/s;
  Chongqing 412.77, Shanghai 407.92, Beijing 395.01 Mbit/s.
* Ookla, "Growing and Slowing: The State of 5G Worldwide in 2021" (2021-12-20): global median
  5G download speed 166.13 Mbit/s in Q3 2021 (Speedtest Intelligence).
* Drive tests of dense urban 5G networks: SS-RSRP typically -80 to -95 dBm. This is issue
  #12's figure; no published distribution of 5G SS-RSRP drive tests was found. Nearest
  published figures: KPI classes of drive-test guides ("good" above -85 dBm, "fair" -85 to
  -100 dBm); LTE competitive drive-test reports of Chongqing districts (渝中 and 大足 area grid
  reports, the three operators' 4G): mean RSRP -88.3 to -93.1 dBm, 60-75 % of the samples
  between -80 and -100 dBm.
* A drive test is made from a car: TR 38.901 V17.0.0 §7.4.3.2 car penetration loss
  N(9 dB, 5 dB) (mu = 9 dB for a conventional car). The "in a car" row subtracts the 9 dB mean
  from gigacity's pedestrian (1.5 m, outdoor) SS-RSRP; a scanner with a roof antenna reads the
  pedestrian figure.
* The dense-urban rows take the districts of at least 10,000 residents per km² (in Shanghai the
  seven central districts), the figure "dense urban" refers to; the other rows every land pixel.
* SS-RSRP includes the handset's antenna gain and body loss ([radio] ue_antenna_gain_dbi,
  body_loss_db): measured with phones, as drive tests and crowd-sourced apps are.
* Indoor coverage below outdoor coverage (building penetration loss, TR 38.901 §7.4.3).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.errors import GigacityError  # noqa: E402
from sim.report.runfolder import read_geotiff, read_gpkg, read_summary  # noqa: E402

PUBLISHED = [
    # key, published figure, source, what gigacity gives
    ("speedtest_mean_mbps", "335 Mbit/s mean 5G downlink, China, Q1 2022 (Shanghai ranked first)",
     "CAICT 全国移动网络质量监测报告 no. 1 (Q1 2022)", "speed test mean, citywide"),
    ("speedtest_mean_mbps", "408 Mbit/s mean 5G downlink, Shanghai, Q3 2022",
     "CAICT 全国移动网络质量监测报告 no. 3 (Q3 2022, 2022-12-09)", "speed test mean, citywide"),
    ("speedtest_p50_mbps", "166 Mbit/s median 5G download, global, Q3 2021",
     "Ookla, Growing and Slowing: The State of 5G Worldwide in 2021", "speed test median, citywide"),
]

DRIVE_TEST_SOURCE = "issue #12's figure, no published 5G source found (LTE drive tests, Chongqing: mean -88 to -93 dBm)"
DENSE_URBAN_PER_KM2 = 10_000.0   # ASSUMPTION: "dense urban" = districts of at least 10,000 residents per km²
CAR_LOSS_DB = 9.0   # TR 38.901 V17.0.0 §7.4.3.2: O2I car penetration loss, mu = 9 dB (sigma_P = 5 dB)


def _dense_urban_mask(run_dir: Path, grid) -> np.ndarray | None:
    """Pixels of the districts with at least DENSE_URBAN_PER_KM2 residents per km² (None: no district file)."""
    path = run_dir / "districts.gpkg"
    if not path.exists():
        return None
    from rasterio import features

    from sim.report.files import grid_transform

    d = read_gpkg(path, crs=grid.crs)
    area = d["area_km2_official"].where(d["area_km2_official"] > 0, d["area_km2_polygon"])
    dense = d[d["population"] / area >= DENSE_URBAN_PER_KM2]
    if not len(dense):
        return None
    return features.geometry_mask(dense.geometry, grid.shape, grid_transform(grid), invert=True)


def _rsrp_rows(run_dir: Path) -> list[tuple[str, str, str, str]]:
    rows = []
    dense = None
    for tif in sorted(run_dir.glob("*_rsrp_dbm.tif")):
        values, grid, _ = read_geotiff(tif)
        v = values[np.isfinite(values)]
        if not v.size:
            continue
        p10, p50, p90 = np.percentile(v, [10, 50, 90])
        layer = tif.name.removesuffix("_rsrp_dbm.tif")
        dense = _dense_urban_mask(run_dir, grid) if dense is None else dense
        if dense is not None and np.any(dense & np.isfinite(values)):
            q = np.percentile(values[dense & np.isfinite(values)], [10, 50, 90])
            rows.append(("SS-RSRP -80 to -95 dBm, dense urban drive tests", DRIVE_TEST_SOURCE,
                         f"{layer} outdoor SS-RSRP median {q[1]:.1f} dBm in dense-urban districts "
                         f"(>= {DENSE_URBAN_PER_KM2:,.0f} residents/km²; p10 {q[0]:.1f}, p90 {q[2]:.1f})", ""))
        rows.append(("SS-RSRP -80 to -95 dBm, dense urban drive tests", DRIVE_TEST_SOURCE,
                     f"{layer} outdoor SS-RSRP median {p50:.1f} dBm (p10 {p10:.1f}, p90 {p90:.1f}; land pixels)", ""))
        rows.append(("SS-RSRP -80 to -95 dBm, dense urban drive tests", DRIVE_TEST_SOURCE + "; in a car: "
                     "TR 38.901 7.4.3.2 car loss mean 9 dB",
                     f"{layer} SS-RSRP in a car median {p50 - CAR_LOSS_DB:.1f} dBm (p10 {p10 - CAR_LOSS_DB:.1f}, "
                     f"p90 {p90 - CAR_LOSS_DB:.1f})", ""))
    return rows


def published_table(run_dir) -> list[tuple[str, str, str]]:
    """Rows ``(published figure, source, gigacity)`` for one run folder."""
    run_dir = Path(run_dir)
    s = read_summary(run_dir)
    city = s.get("citywide") or {}
    name = (s.get("scenario") or {}).get("name", run_dir.name)
    rows = []
    for key, fig, src, what in PUBLISHED:
        v = city.get(key)
        got = "not in this run (no busy hour)" if v is None else f"{v:.0f} Mbit/s ({what}, {name})"
        if v is not None and key == "speedtest_mean_mbps":
            p = [city.get(f"speedtest_{q}_mbps") for q in ("p10", "p50", "p90")]
            if None not in p:
                got += f"; p10/p50/p90 {p[0]:.0f}/{p[1]:.0f}/{p[2]:.0f}"
        rows.append((fig, src, got))
    rows += [r[:3] for r in _rsrp_rows(run_dir)]
    ind, out = city.get("pop_cov_5g_indoor_pct"), city.get("pop_cov_5g_outdoor_pct")
    if ind is not None and out is not None:
        rel = "below" if ind < out else "NOT below"
        rows.append(("indoor coverage < outdoor coverage", "TR 38.901 7.4.3 building penetration loss",
                     f"population coverage indoor {ind:.2f} % {rel} outdoor {out:.2f} %"))
    return rows


def _print(rows) -> None:
    heads = ("published figure", "source", "gigacity")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    line = " | ".join(h.ljust(w) for h, w in zip(heads, widths))
    print(line)
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python benchmarks/validate_published.py RUN_FOLDER", file=sys.stderr)
        return 2
    try:
        _print(published_table(argv[0]))
    except GigacityError as exc:
        print(f"validate_published: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
