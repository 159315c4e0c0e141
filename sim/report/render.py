"""Markdown and HTML rendering: ``report.md``, ``report.html`` and ``compare.md``.

The reports show the verdict, the citywide criteria, the maps, the district table, the
busy-hour tables, the methods and sources, and the district data's attribution and census
source. Text is escaped and URL schemes are broken, so the HTML page neither loads nor links
anything outside itself. Files are written through :func:`sim.report.files.atomic_path`.
"""

from __future__ import annotations

import base64
import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sim.criteria import INDICATORS
from sim.errors import InputError
from sim.geodata import ATTRIBUTION, CENSUS_SOURCE
from sim.report.files import as_frame, atomic_path
from sim.report.runfolder import criteria_records, read_png_bytes
from sim.report.tables import busy_hour_html as _busy_hour_html
from sim.report.tables import busy_hour_md as _busy_hour_md
from sim.report.tables import esc as _esc
from sim.report.tables import md_cell as _md_cell

__all__ = [
    "BUSY_HOUR_METHODS",
    "VERDICT_KEYS",
    "embed_png_bytes",
    "write_report_md",
    "write_report_html",
    "write_compare_md",
]

VERDICT_KEYS = ("passed", "failed", "unknown", "n_passed", "n_criteria")
"""Keys the reports read from the verdict (the dict :func:`sim.criteria.verdict` returns)."""


# ----------------------------------------------------------------------------- reports

_METHODS = (
    "Coverage: best-server SS-RSRP (SSB beam) and SINR on a raster in EPSG:32651, from 3GPP TR 38.901 path loss, "
    "LOS state (sampled, spatially consistent, or expected), shadow fading, O2I loss and sector antenna pattern, "
    "as radio.* selects; SINR to spectral efficiency by the TS 38.214 CQI tables, rate by the TS 38.306 formula.",
    "Busy hour: processor-sharing discrete-event simulation (simpy) of each cell and each PON port; "
    "cell load feeds back into interference until a fixed point.",
    "Population and households: 2020 census district totals spread over each district's land "
    "pixels.",
    "Best-server maps: the distance from each pixel to the site of its serving sector (a map "
    "coloured by serving site is unreadable citywide); long distances show large cells and "
    "pixels served from afar.",
    "Criteria: the One-Gbps city indicators of MIIT's action plan (2021-2023) appendix, per "
    "district and citywide; each threshold is marked confirmed (the criterion's own number), "
    "assumption (a documented stand-in) or input (a scenario assumption, not simulated).",
)


BUSY_HOUR_METHODS = [
    "Busy hour (5G): active users per pixel = population x mobile users per resident x the RAN's "
    "mobile share x 5G user share x busy-hour active share; they camp on the RAN's layer of highest "
    "indoor rate; Poisson flows, egalitarian processor sharing per cell (Bonald & Proutiere, MobiCom "
    "2003, section 3): load rho = sum lambda E[S] / r, flow throughput r (1 - rho), 0 when rho >= 1.",
    "Indoor and outdoor users (radio.indoor_share) are separate flow classes with their own peak rate "
    "(TR 38.901 7.4.3 O2I loss indoors, expected or per pixel); busy-hour maps and the 100 Mbit/s indicator use the "
    "indoor rate, as the lone-user 1 Gbit/s indicator does. The lone-user indicator (own cell idle) "
    "weights the neighbour cells at the reference load radio.default_load; the busy-hour indicators at "
    "their solved busy-hour loads, so where those loads are far below the reference the busy-hour rates "
    "are the higher ones.",
    "Load-coupled interference: each interferer's power is weighted by its cell load (top 8 interferers "
    "per pixel; the weaker rest scale with their mean load, an assumption), SINR -> TS 38.214 CQI "
    "spectral efficiency -> TS 38.306 rate -> load, iterated from the unloaded network to the least "
    "fixed point; a user served by the idle network keeps at least the lower of the CQI 1 rate and its "
    "idle-network rate (so the iteration is monotone); loads are capped at 1 as interference weights and "
    "cells with rho >= 1 flagged saturated.",
    "simpy check: event-level PS simulation of sampled cells (independent replications, 95 % Student-t "
    "intervals, first 10 % of each replication warm-up) against the analytic E[S]/E[T].",
    "Speed test (the expected measurement, as crowd-sourced tests report it): one outdoor flow in the busy "
    "hour at the solved loads, r_out (1 - rho), over the residents and the networks (mobile shares); mean and "
    "10th/50th/90th percentiles; land no 5G layer serves runs no 5G test. The lone-user rate with the "
    "neighbours at the reference load is the pessimistic bound.",
    "Link (field): rates mix the device classes of radio.devices (carriers aggregated, receive antennas); "
    "SINR passes an impairment ceiling radio.sinr_max_db (1/SINR_eff = 1/SINR + 1/SINR_max, from the "
    "TS 38.104 EVM requirement); the rank mixes an NLOS and a LOS curve with the serving link's TR 38.901 "
    "LOS probability (indoor users: NLOS); rates use the field overhead radio.field_overhead; an idle "
    "neighbour transmits at radio.min_load (SSB, PDCCH, CSI-RS/TRS).",
    "PON busy hour: simpy PS on one port per technology at the configured split, flows capped at the "
    "subscriber's tier (Bonald & Roberts 2012); a flow receives its tier at >= 95 % of it; GPON ports "
    "carry no gigabit tier.",
]
"""Method notes of the busy hour, added to the report's methods."""


def _fmt(v, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    v = float(v)
    s = f"{v:,.1f}" if abs(v) < 1e6 else f"{v:,.0f}"
    return f"{s} %" if unit == "%" else s


def _standing(row) -> str:
    """``confirmed``, ``benchmark`` or ``""`` (no threshold) of a criteria row."""
    st = row.get("standing")
    if st in ("confirmed", "benchmark"):
        return st
    c = row.get("confirmed")
    return "confirmed" if c is True else "benchmark" if c is False else ""


def _basis(row) -> str:
    if row.get("kind") == "input":
        return "input"
    return _standing(row) or "reported"


def _result(passed, standing: str = "confirmed") -> tuple[str, str]:
    """CSS class and word of a row's comparison: pass / fail, or above / below a benchmark."""
    if standing == "benchmark" and passed is not None:
        return ("above", "above benchmark") if passed else ("below", "below benchmark")
    if passed is True:
        return "pass", "pass"
    if passed is False:
        return "fail", "fail"
    return "na", "—"


def _row_result(row) -> tuple[str, str]:
    return _result(row.get("passed"), _standing(row))


def _margin_text(row) -> str:
    """Headroom over the threshold (positive passes), ``pp`` for percentages; "—" without one."""
    m = row.get("margin")
    if not row.get("op") or m is None or (isinstance(m, float) and math.isnan(m)):
        return "—"
    unit = row.get("unit") or ""
    return f"{float(m):+,.1f}" + (" pp" if unit == "%" else "")


def _records(criteria_table) -> list[dict]:
    recs = criteria_records(criteria_table)
    for r in recs:
        if r.get("value") is None:
            r["value"] = math.nan
    return recs


def _label_of(key: str) -> str:
    return INDICATORS[key].label if key in INDICATORS else key


def _benchmark_text(v: Mapping) -> str:
    """" Benchmarks (not criteria): above on ...; below on ..." or ""."""
    above, below = v.get("above") or [], v.get("below") or []
    if not above and not below:
        return ""
    parts = []
    if above:
        parts.append(f"above on {len(above)}")
    if below:
        parts.append(f"below on {len(below)} ({'; '.join(_label_of(k) for k in below)})")
    return " Benchmarks, not criteria (e.g. certified-city averages): " + ", ".join(parts) + "."


def _verdict_text(v: Mapping, recs) -> tuple[str, str]:
    """CSS class and sentence of the verdict ``v``; ``recs`` tell which failing criteria are inputs.

    The verdict counts the *confirmed* criteria only (:func:`sim.criteria.verdict`); the
    benchmarks it lists as above / below follow in a second sentence.
    """
    missing = [k for k in VERDICT_KEYS if k not in v]
    if missing:
        raise InputError("verdict", missing[0], "missing: expected the dict returned by sim.criteria.verdict")
    bench = _benchmark_text(v)
    if v["passed"] is True:
        return "pass", f"Meets all {v['n_passed']} confirmed One-Gbps city criteria citywide." + bench
    if v["passed"] is False:
        names = "; ".join(_label_of(k) for k in v["failed"])
        text = (f"Does not meet {len(v['failed'])} of {v['n_criteria']} confirmed citywide criteria: {names}. "
                f"{v['n_passed']} of {v['n_criteria']} pass.")
        kinds = {r.get("key"): r.get("kind") for r in recs if r.get("scope") == "citywide"}
        if all(kinds.get(k) == "input" for k in v["failed"]):
            text += (" Every failing criterion is a scenario input, not a simulated result: "
                     "the simulated network meets the criteria it is judged on.")
        return "fail", text + bench
    if v["unknown"]:
        names = "; ".join(_label_of(k) for k in v["unknown"])
        return "na", (f"Not judged: {v['n_passed']} of {v['n_criteria']} confirmed citywide criteria pass, "
                      f"{len(v['unknown'])} not evaluated: {names}." + bench)
    return "na", "Not judged: no citywide criterion has a confirmed threshold." + bench


_OP_TEXT = {">": ">", ">=": "≥", "<": "<", "<=": "≤"}


def _threshold_text(r) -> str:
    op = r.get("op")
    return f"{_OP_TEXT.get(op, op)} {_fmt(r.get('threshold'), r.get('unit') or '')}" if op else "—"


_KEY_FIGURES = (
    ("bs_5g_per_10k", "5G base stations per 10,000 residents", ""),
    ("pop_cov_5g_indoor_pct", "residents with indoor 5G coverage", "%"),
    ("speedtest_mean_mbps", "Mbit/s: mean 5G speed test, one outdoor flow in the busy hour "
                            "(the expected measurement)", ""),
    ("pop_5g_1gbps_unloaded_pct", "residents where 5G can deliver 1 Gbit/s to a lone user, neighbour cells "
                                  "at the reference load (the pessimistic bound)", "%"),
    ("pop_5g_1gbps_busy_pct", "residents with >= 1 Gbit/s flow throughput in the busy hour", "%"),
    ("fibre_gigabit_coverage_pct", "households with gigabit fibre available", "%"),
)
"""Headline figures shown under the verdict: citywide key, caption, unit."""


GIGABIT_FIGURES_NOTE = (
    "The two 1 Gbit/s figures differ on purpose: the first is a lone user whose own cell is idle while the "
    "neighbour cells carry the reference load (interference-heavy, a pessimistic bound); the second is a flow "
    "in the busy hour at the solved cell loads, which are far lower than the reference load, so it is higher.")
"""One line beside the lone-user and busy-hour 1 Gbit/s figures."""


def _key_figures_html(summary) -> list[str]:
    city = summary.get("citywide") or {}
    cells = [f'<div class="fig"><b>{_esc(_fmt(city[k], u))}</b><span>{_esc(cap)}</span></div>'
             for k, cap, u in _KEY_FIGURES if city.get(k) is not None]
    if not cells:
        return []
    note = ([f'<p class="small">{_esc(GIGABIT_FIGURES_NOTE)}</p>']
            if city.get("pop_5g_1gbps_unloaded_pct") is not None and city.get("pop_5g_1gbps_busy_pct") is not None
            else [])
    return ['<div class="figures">', *cells, "</div>", *note]


def _district_names(summary) -> dict[str, str]:
    return {str(d.get("code")): str(d.get("name_en", d.get("code"))) for d in summary.get("districts") or []}


def _title(summary) -> str:
    sc = summary.get("scenario") or {}
    return f"gigacity — {sc.get('name', 'run')} ({sc.get('year', '')})"


def _image_bytes(src) -> bytes:
    """The PNG of a report image: bytes as given, or the map file of the run folder."""
    return read_png_bytes(src)


def _is_palette_png(data: bytes) -> bool:
    """The PNG's IHDR says colour type 3 (palette): byte 25 (8 signature + 8 chunk header + 9 into IHDR)."""
    return len(data) > 25 and data[12:16] == b"IHDR" and data[25] == 3


def embed_png_bytes(data: bytes) -> bytes:
    """A smaller PNG of a map for embedding in ``report.html``: 256-colour palette, no dither.

    A palette PNG (every map a run writes: :func:`sim.report.files.write_png`) is embedded as it
    is, not decoded. Another PNG (full colour, e.g. from an older run folder) is quantised (Pillow
    median cut) so the self-contained page stays a few MB for a phone (about 3x smaller on the
    Shanghai maps); the original bytes are kept when the palette copy is not smaller.
    """
    if _is_palette_png(data):
        return data
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        q = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    q.save(buf, format="PNG", optimize=True)
    small = buf.getvalue()
    return small if len(small) < len(data) else data


def _region_line(summary) -> str:
    """"<City>, n of N districts." from the summary's region (the scenario's own name, no default city)."""
    r, n = summary.get("region") or {}, len(summary.get("districts") or [])
    name = (r.get("name") or "The region") + (f" ({r['name_zh']})" if r.get("name_zh") else "")
    total = r.get("n_districts_file")
    return f"{name}, {n} of {total} districts." if total else f"{name}, {n} districts."


def data_sources(summary) -> list[str]:
    """The region's data sources as the summary records them (older summaries: the shipped data's)."""
    r = summary.get("region") or {}
    return [str(s) for s in r["sources"]] if r.get("sources") else [ATTRIBUTION, CENSUS_SOURCE]


def _sources(recs) -> list[str]:
    seen = []
    for r in recs:
        s = r.get("source")
        if s and s not in seen:
            seen.append(s)
    return seen


_CSS = """
:root{--pass:#1a7f3c;--pass-bg:#e3f4e8;--fail:#b3261e;--fail-bg:#fbe4e2;--na:#666;--na-bg:#f1f1f1;
--line:#d8dde3;--ink:#1d232a;--muted:#5b6570}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",\
"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;
color:var(--ink);background:#fafbfc}
main{max-width:1180px;margin:0 auto;padding:1rem 1rem 3rem}
h1{font-size:1.6rem;margin:.5rem 0}h2{font-size:1.25rem;margin:2rem 0 .6rem;border-bottom:1px solid var(--line)}
.verdict{font-size:1.15rem;font-weight:600;padding:.8rem 1rem;border-radius:.5rem;border-left:.4rem solid}
.verdict.pass{background:var(--pass-bg);border-color:var(--pass);color:var(--pass)}
.verdict.fail{background:var(--fail-bg);border-color:var(--fail);color:var(--fail)}
.verdict.na{background:var(--na-bg);border-color:var(--na);color:var(--na)}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;font-size:.92rem;background:#fff}
th,td{border:1px solid var(--line);padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f4;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.pass{background:var(--pass-bg);color:var(--pass);font-weight:600}
td.fail{background:var(--fail-bg);color:var(--fail);font-weight:600}
td.na{color:var(--na)}
.tag{display:inline-block;padding:0 .4rem;border-radius:.3rem;font-size:.8rem;border:1px solid var(--line)}
.tag.confirmed{background:#e3f4e8}.tag.benchmark{background:#efe6fb}.tag.input{background:#e6eefb}
td.above{background:#e6eefb;color:#1d4f91;font-weight:600}td.below{background:#fff1d6;color:#8a5a00;font-weight:600}
.tag.reported{background:#f1f1f1}
figure{margin:1rem 0;background:#fff;border:1px solid var(--line);padding:.5rem;border-radius:.4rem}
figure img{display:block;max-width:100%;height:auto;margin:0 auto}
figcaption{color:var(--muted);font-size:.9rem;margin-top:.3rem}
.maps{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,480px),1fr));gap:1rem}
footer,.small{color:var(--muted);font-size:.85rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
nav{font-size:.9rem;margin:.2rem 0 .8rem}nav a{color:var(--muted);margin-right:.9rem}
.figures{display:grid;grid-template-columns:repeat(auto-fit,minmax(10rem,1fr));gap:.6rem;margin:.8rem 0}
.fig{background:#fff;border:1px solid var(--line);border-radius:.4rem;padding:.5rem .7rem}
.fig b{display:block;font-size:1.45rem;font-variant-numeric:tabular-nums}.fig span{color:var(--muted);font-size:.85rem}
table.districts{font-size:.85rem}table.districts th{font-size:.78rem;line-height:1.2;min-width:4.2rem;
cursor:pointer;vertical-align:bottom}table.districts td:first-child{min-width:7rem}
.desc{font-size:1.02rem;margin:.4rem 0}dd.files a{display:inline-block;margin:0 .8rem .2rem 0;word-break:break-all}
table.districts td:first-child,table.districts th:first-child{position:sticky;left:0;z-index:2;
background:#fff;box-shadow:1px 0 0 var(--line)}table.districts th:first-child{background:#eef1f4;z-index:3}
.hint{display:none}
@media (max-width:600px){body{font-size:15px}main{padding:.6rem}h1{font-size:1.3rem}
th,td{padding:.25rem .35rem}.verdict{font-size:1rem}.hint{display:block}
table.cards thead{display:none}table.cards,table.cards tbody,table.cards tr{display:block;width:100%}
table.cards tr{border:1px solid var(--line);border-radius:.4rem;margin:0 0 .6rem;background:#fff}
table.cards td{display:flex;justify-content:space-between;gap:1rem;border:none;
border-top:1px solid var(--line);text-align:right}
table.cards td:first-child{border-top:none;font-weight:600;text-align:left;display:block}
table.cards td.num{white-space:normal}
table.cards td[data-label]::before{content:attr(data-label);color:var(--muted);font-weight:400;text-align:left}
table.districts{font-size:.8rem}.maps{gap:.6rem}figure{padding:.25rem;margin:.4rem 0}}
@media print{.scroll{overflow:visible}figure{break-inside:avoid}}
"""


_LEGEND = (
    "confirmed: the criterion's own threshold, from the cited MIIT document; it decides the verdict. "
    "benchmark: a published reference that is not the criterion's threshold (e.g. the average of the "
    "certified cities); shown as above or below, never a fail. input: a scenario assumption echoed back, "
    "not simulated. reported: no threshold. Margin: value minus threshold (threshold minus value for "
    "'<' criteria), positive = headroom; pp = percentage points. Per 10,000 residents where not a percentage.")


def _run_date(summary) -> str:
    when = (summary.get("scenario") or {}).get("created_utc") or summary.get("created_utc")
    return str(when) if when else ""


def _scenario_lines_html(summary) -> list[str]:
    """Scenario description, run date, seed and districts, under the key figures."""
    sc = summary.get("scenario") or {}
    out = []
    if sc.get("description"):
        out.append(f'<p class="desc">{_esc(sc["description"])}</p>')
    when = _run_date(summary)
    out.append(f'<p class="small">Scenario {_esc(sc.get("name", ""))}, year {_esc(sc.get("year", ""))}, '
               f'seed {_esc(sc.get("seed", ""))}' + (f"; run {_esc(when)}" if when else "")
               + f". {_esc(_region_line(summary))}</p>")
    return out


def _is_local_file(name) -> bool:
    """A plain relative path inside the run folder (no scheme, no root, no ``..``)."""
    n = str(name)
    return bool(n) and ":" not in n and not n.startswith(("/", "\\")) and ".." not in n.split("/")


def _files_html(summary) -> list[str]:
    """Links to every data file of the run folder (``summary["outputs"]``), relative to the report."""
    names = [str(n) for n in summary.get("outputs") or [] if _is_local_file(n)]
    if not names:
        return []
    groups: dict[str, list[str]] = {}
    for n in names:
        ext = n.rsplit(".", 1)[-1].lower() if "." in n else "other"
        groups.setdefault(_FILE_KINDS.get(ext, "Other"), []).append(n)
    out = ['<section id="files"><h2>Data files of this run</h2><dl>']
    for kind in sorted(groups, key=lambda k: list(_FILE_KINDS.values()).index(k) if k in _FILE_KINDS.values()
                       else 99):
        links = " ".join(f'<a href="{html.escape(n, quote=True)}">{_esc(n)}</a>' for n in groups[kind])
        out.append(f"<dt>{_esc(kind)}</dt><dd class=\"files\">{links}</dd>")
    out.append('</dl><p class="small">Relative links: they open when this page is read from its run folder.'
               "</p></section>")
    return out


_FILE_KINDS = {"csv": "Tables (CSV)", "json": "Summaries (JSON)", "gpkg": "GIS layers (GeoPackage, WGS84)",
               "tif": "Rasters (GeoTIFF, EPSG:32651)", "png": "Maps (PNG)", "md": "Reports", "html": "Reports"}

_SORT_JS = (
    "document.querySelectorAll('table.sortable th').forEach(function(th,i){th.title='Sort';"
    "th.addEventListener('click',function(){var tb=th.closest('table').tBodies[0];"
    "var rows=Array.from(tb.rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';"
    "rows.sort(function(a,b){var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;"
    "var p=parseFloat(x),q=parseFloat(y);if(!isNaN(p)&&!isNaN(q))return asc?p-q:q-p;"
    "return asc?String(x).localeCompare(y):String(y).localeCompare(x);});"
    "rows.forEach(function(r){tb.appendChild(r);});});});")
"""Click a district-table header to sort by it (a few lines, inline: the page stays self-contained)."""


def write_report_html(path, summary, criteria_table, images: Mapping[str, Any] | None = None, *,
                      verdict: Mapping) -> Path:
    """Write a self-contained HTML report (inline CSS, images as base64 data URIs, no URL).

    Parameters
    ----------
    path : str or Path
    summary : dict
        The run summary (schema: :mod:`sim.report.runfolder`).
    criteria_table : DataFrame or rows
        From :func:`sim.criteria.evaluate` (or ``summary["criteria"]``).
    images : mapping caption -> PNG path or bytes, optional
        Maps to embed, in order.
    verdict : dict
        The citywide verdict of ``criteria_table``, as :func:`sim.criteria.verdict` returned
        it (keys :data:`VERDICT_KEYS`); the report states it and does not judge again.

    Notes
    -----
    Sections: headline verdict; citywide criteria with pass/fail colouring and the basis
    of each threshold (confirmed / assumption / input / reported); maps; the district
    table; methods and sources; the ODbL attribution and the census source. All text is
    HTML-escaped and URL schemes are broken (``https[:]//``), so the page neither loads nor
    links anything outside itself; it reads on a phone (fluid grid, scrolling tables).
    """
    path = Path(path)
    recs = _records(criteria_table)
    v_class, v_text = _verdict_text(verdict, recs)
    title = _title(summary)
    sc = summary.get("scenario") or {}
    out: list[str] = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>", "<main>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="verdict {v_class}">{_esc(v_text)}</p>',
        *_scenario_lines_html(summary)[:-1],
        *_key_figures_html(summary),
        *_scenario_lines_html(summary)[-1:],
        '<nav><a href="#criteria">Criteria</a><a href="#maps">Maps</a><a href="#districts">Districts</a>'
        '<a href="#files">Data files</a><a href="#methods">Methods and sources</a></nav>',
        '<section id="criteria"><h2>One-Gbps city criteria, citywide</h2><div class="scroll"><table class="cards">',
        "<thead><tr><th>Indicator</th><th>Value</th><th>Threshold</th><th>Result</th>"
        "<th>Margin</th><th>Basis</th></tr></thead><tbody>",
    ]
    city = [r for r in recs if r.get("scope") == "citywide"]
    for r in city:
        cls, word = _row_result(r)
        unit = r.get("unit") or ""
        thr = _threshold_text(r)
        if _standing(r) == "benchmark" and r.get("benchmark"):
            thr += f" ({r['benchmark']})"
        basis = _basis(r)
        tags = f'<span class="tag {basis}">{basis}</span>'
        if basis == "input" and r.get("op"):
            tags += f' <span class="tag {_standing(r)}">{_standing(r)}</span>'
        out.append(
            f"<tr><td>{_esc(r.get('label') or r.get('key'))}</td>"
            f'<td class="num" data-label="Value">{_esc(_fmt(r.get("value"), unit))}</td>'
            f'<td class="num" data-label="Threshold">{_esc(thr)}</td>'
            f'<td class="{cls}" data-label="Result">{word}</td>'
            f'<td class="num" data-label="Margin">{_esc(_margin_text(r))}</td>'
            f'<td data-label="Basis">{tags}</td></tr>'
        )
    out.append("</tbody></table></div>")
    out.append(f'<p class="small">{_esc(_LEGEND)}</p></section>')
    if images:
        out.append('<section id="maps"><h2>Maps</h2><div class="maps">')
        for caption, src in images.items():
            b64 = base64.b64encode(embed_png_bytes(_image_bytes(src))).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{b64}" alt="{_esc(caption)}" loading="lazy">'
                       f"<figcaption>{_esc(caption)}</figcaption></figure>")
        out.append("</div></section>")
    out += _district_table_html(recs, summary)
    out += _busy_hour_html(summary)
    out += _files_html(summary)
    out.append('<section id="methods"><h2>Methods and sources</h2><ul>')
    out += [f"<li>{_esc(m)}</li>" for m in (*_METHODS, *(summary.get("methods") or []))]
    out.append("</ul><h3>Threshold sources</h3><ul>")
    out += [f"<li>{_esc(s)}</li>" for s in _sources(recs)]
    out.append("</ul><h3>Run</h3><dl>")
    grid = summary.get("grid") or {}
    facts = {
        "config": sc.get("config_path"),
        "grid": f"{grid.get('crs', '')}, {grid.get('res_m', '')} m, {grid.get('shape', '')}",
        "timings": ", ".join(f"{k} {_fmt(v)} s" for k, v in (summary.get("timings_s") or {}).items()),
        "versions": ", ".join(f"{k} {v}" for k, v in (summary.get("versions") or {}).items()),
        "schema": summary.get("schema_version"),
    }
    out += [f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in facts.items()]
    out.append("</dl></section>")
    out.append("<footer>" + "".join(f"<p>{_esc(s.rstrip('.'))}.</p>" for s in data_sources(summary)) + "</footer>")
    out += ["</main>", f"<script>{_SORT_JS}</script>", "</body>", "</html>", ""]
    text = "\n".join(out)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return path


_SITE_COLUMNS = (("sites_5g", "5G sites", ""), ("sites_5g_per_km2", "5G sites per km²", "official area"))
"""Site count and density of ``summary["districts"]`` rows shown before the indicators (sites per
10,000 residents is the criterion ``bs_5g_per_10k``, shown once)."""

SHORT_LABELS = {
    "fibre_gigabit_coverage_pct": "Gigabit fibre, households %",
    "pon_10g_port_share_pct": "10G-PON ports %",
    "key_place_5g_reach_pct": "Key places reached %",
    "bs_5g_per_10k": "5G BS per 10k residents",
    "fbb_500m_user_share_pct": "≥ 500 Mbit/s users %",
    "gigabit_users_per_10k": "Gigabit users per 10k",
    "user_5g_share_pct": "5G users % (input)",
    "pop_cov_5g_indoor_pct": "Indoor 5G coverage, residents %",
    "pop_5g_100mbps_busy_pct": "≥ 100 Mbit/s busy hour, residents %",
    "speedtest_mean_mbps": "Speed test, mean Mbit/s",
}
"""Column heads of the district table (the full label is the head's tooltip)."""

_PHYSICAL_COLUMNS = ("pop_cov_5g_indoor_pct", "pop_5g_100mbps_busy_pct")
"""Key physical indicators of the district table, after the judged ones (plus a speed test when present)."""


def _is_speed_test(key: str) -> bool:
    k = key.lower()
    return "speed_test" in k or "speedtest" in k


def _district_keys(rows) -> list[str]:
    """Judged indicators (with a threshold), then the key physical ones and any speed-test indicator."""
    present = {r["key"] for r in rows}
    judged = [k for k in INDICATORS if any(r["key"] == k and r.get("op") for r in rows)]
    speed = [k for k in INDICATORS if k in present and _is_speed_test(k)]
    speed += sorted(k for k in present if _is_speed_test(k) and k not in speed)
    mean = [k for k in speed if "mean" in k] or speed
    return judged + [k for k in _PHYSICAL_COLUMNS if k in present and k not in judged] + mean[:1]


def _column_head(key: str) -> tuple[str, str]:
    """Short head and full label of a district-table column."""
    spec = INDICATORS.get(key)
    full = f"{spec.label} ({spec.unit})" if spec else key
    if key in SHORT_LABELS:
        return SHORT_LABELS[key], full
    if _is_speed_test(key):
        return ("Speed test, Mbit/s" if key.endswith("_bps") or (spec and spec.unit == "bit/s")
                else (spec.label if spec else key)), full
    return (spec.label if spec else key), full


def _cell_value(key: str, v) -> str:
    if v is not None and not (isinstance(v, float) and math.isnan(v)) and key.endswith("_bps"):
        return f"{float(v) / 1e6:,.0f}"
    return _fmt(v)


def _district_sites(summary) -> dict[str, list[tuple[str, float]]]:
    """District code -> (formatted, raw) site count and density (empty when the summary has none)."""
    out = {}
    for d in summary.get("districts") or []:
        if "sites_5g_per_km2" in d:
            n, km2 = d.get("sites_5g"), d.get("sites_5g_per_km2")
            out[str(d.get("code"))] = [(f"{n:,}" if isinstance(n, int) else "—", n if isinstance(n, int) else math.nan),
                                       ("—" if km2 is None else f"{float(km2):,.1f}",
                                        math.nan if km2 is None else float(km2))]
    return out


def _district_table_html(recs, summary) -> list[str]:
    rows = [r for r in recs if r.get("scope") != "citywide"]
    if not rows:
        return []
    keys = _district_keys(rows)
    scopes = list(dict.fromkeys(r["scope"] for r in rows))
    cell = {(r["scope"], r["key"]): r for r in rows}
    names = _district_names(summary)
    site_cells = _district_sites(summary)
    out = ['<section id="districts"><h2>Districts</h2><p class="small">The criteria with a threshold, then the '
           "key physical indicators. Click a column head to sort.</p>"
           '<p class="small hint">The table scrolls sideways; the district column stays.</p>'
           '<div class="scroll"><table class="districts sortable"><thead><tr><th>District</th>']
    if site_cells:
        out += [f'<th title="{_esc(label + (f" ({basis})" if basis else ""))}">{_esc(label)}</th>'
                for _, label, basis in _SITE_COLUMNS]
    for k in keys:
        short, full = _column_head(k)
        out.append(f'<th title="{_esc(full)}">{_esc(short)}</th>')
    out.append("</tr></thead><tbody>")
    for s in scopes:
        name = names.get(s, s)
        out.append(f'<tr><td data-v="{_esc(name)}">{_esc(name)}<br><span class="small">{_esc(s)}</span></td>')
        if site_cells:
            out += [f'<td class="num" data-v="{v:g}">{_esc(t)}</td>'
                    for t, v in site_cells.get(s, [("—", math.nan)] * len(_SITE_COLUMNS))]
        for k in keys:
            r = cell.get((s, k))
            if r is None:
                out.append('<td class="num na" data-v="nan">—</td>')
                continue
            cls, _ = _row_result(r)
            v = r.get("value")
            raw = "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.6g}"
            out.append(f'<td class="num {cls}" data-v="{raw}">{_esc(_cell_value(k, v))}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div><p class=\"small\">Green passes, red fails a confirmed threshold applied "
               "to the district; blue is above, amber below a benchmark (not a criterion); grey: no threshold "
               "or no value. Hover a column head for the full indicator name.</p></section>")
    return out


def write_report_md(path, summary, criteria_table, images: Mapping[str, Any] | None = None, *,
                    verdict: Mapping) -> Path:
    """Write the Markdown report; images (caption -> PNG path) are linked relative to it.

    ``verdict`` is the citywide verdict of ``criteria_table`` from :func:`sim.criteria.verdict`
    (see :func:`write_report_html`).
    """
    path = Path(path)
    recs = _records(criteria_table)
    v_class, v_text = _verdict_text(verdict, recs)
    mark = {"pass": "PASS", "fail": "FAIL", "na": "NOT JUDGED"}[v_class]
    sc = summary.get("scenario") or {}
    when = _run_date(summary)
    lines = [f"# {_title(summary)}", "", f"**{mark}**: {v_text}", ""]
    if sc.get("description"):
        lines += [_md_cell(sc["description"]), ""]
    lines += [f"Scenario `{sc.get('name', '')}`, year {sc.get('year', '')}, seed {sc.get('seed', '')}, "
              f"config `{sc.get('config_path', '')}`" + (f", run {when}" if when else "") + "."
              + (f" {_region_line(summary)}" if summary.get("region") else ""), "",
              "## One-Gbps city criteria, citywide", "",
              "| Indicator | Value | Threshold | Result | Margin | Basis |",
              "| --- | ---: | ---: | --- | ---: | --- |"]
    for r in (r for r in recs if r.get("scope") == "citywide"):
        unit = r.get("unit") or ""
        _, word = _row_result(r)
        thr = _threshold_text(r)
        if _standing(r) == "benchmark" and r.get("benchmark"):
            thr += f" ({r['benchmark']})"
        basis = _basis(r) + (f", {_standing(r)}" if _basis(r) == "input" and r.get("op") else "")
        lines.append(f"| {_md_cell(r.get('label') or r.get('key'))} | {_fmt(r.get('value'), unit)} | "
                     f"{_md_cell(thr)} | {word} | {_margin_text(r)} | {basis} |")
    lines += ["", _md_cell(_LEGEND)]
    if images:
        lines += ["", "## Maps", ""]
        for caption, src in images.items():
            rel = os.path.relpath(Path(src), path.parent) if not isinstance(src, (bytes, bytearray)) else ""
            lines += [f"![{_md_cell(caption)}]({Path(rel).as_posix()})", ""]
    lines += _district_table_md(recs, summary)
    names = [str(n) for n in summary.get("outputs") or [] if _is_local_file(n)]
    if names:
        lines += ["", "## Data files of this run", ""] + [f"- [{_md_cell(n)}]({n})" for n in names]
    lines += _busy_hour_md(summary)
    lines += ["", "## Methods and sources", ""]
    lines += [f"- {m}" for m in (*_METHODS, *(summary.get("methods") or []))]
    lines += ["", "Threshold sources:", ""] + [f"- {_md_cell(s)}" for s in _sources(recs)]
    lines += ["", "---", ""]
    for s in data_sources(summary):
        lines += [f"{s.rstrip('.')}.", ""]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8", newline="\n")
    return path


def _district_table_md(recs, summary) -> list[str]:
    rows = [r for r in recs if r.get("scope") != "citywide"]
    if not rows:
        return []
    keys = _district_keys(rows)
    names = _district_names(summary)
    cell = {(r["scope"], r["key"]): r for r in rows}
    site_cells = _district_sites(summary)
    heads = [label for _, label, _ in _SITE_COLUMNS] if site_cells else []
    heads += [_column_head(k)[0] for k in keys]
    lines = ["", "## Districts", "", "✓ passes, ✗ fails a confirmed threshold; ▲ above, ▼ below a benchmark.", "",
             "| District | " + " | ".join(_md_cell(h) for h in heads) + " |", "| --- |" + " ---: |" * len(heads)]
    for s in dict.fromkeys(r["scope"] for r in rows):
        vals = [t for t, _ in site_cells.get(s, [("—", 0)] * len(_SITE_COLUMNS))] if site_cells else []
        for k in keys:
            r = cell.get((s, k))
            if r is None:
                vals.append("—")
                continue
            flag = {"pass": " ✓", "fail": " ✗", "above": " ▲", "below": " ▼"}.get(_row_result(r)[0], "")
            vals.append(_cell_value(k, r.get("value")) + flag)
        lines.append(f"| {_md_cell(names.get(s, s))} ({s}) | " + " | ".join(vals) + " |")
    return lines


def _passed_word(p, standing: str = "") -> str:
    if standing == "benchmark":
        return {True: "above", False: "below"}.get(p, "—")
    return {True: "pass", False: "fail"}.get(p, "—")


def write_compare_md(path, summary_a, summary_b, table, diffs: Sequence[Mapping] = (), *,
                     run_a: str = "A", run_b: str = "B") -> Path:
    """Write ``compare.md``: citywide changes, districts whose verdict changed, difference maps.

    Parameters
    ----------
    path : str or Path
    summary_a, summary_b : dict
        The two run summaries.
    table : DataFrame
        From :func:`sim.report.runfolder.compare_runs`.
    diffs : sequence of dict
        One per difference raster: ``raster, label, png, tif, resampled, pixels, mean_mbps,
        gain_share_pct, loss_share_pct``.
    """
    path = Path(path)

    def title(s):
        sc = s.get("scenario") or {}
        return f"{sc.get('name', '?')} ({sc.get('year', '?')})"

    ta, tb = title(summary_a), title(summary_b)
    names = {**_district_names(summary_a), **_district_names(summary_b)}
    lines = [f"# gigacity compare — {_md_cell(tb)} vs {_md_cell(ta)}", "",
             f"A: `{_md_cell(run_a)}` ({_md_cell(ta)}); B: `{_md_cell(run_b)}` ({_md_cell(tb)}). "
             "Change = B - A. Every row, per district too, is in `compare.csv`.", "",
             "## Citywide", "", "| Indicator | A | B | Change | Result A → B |", "| --- | ---: | ---: | ---: | --- |"]
    df = as_frame(table)
    for r in df[df["scope"] == "citywide"].itertuples():
        st = getattr(r, "standing", "")
        res = (f"{_passed_word(r.passed_a, st)} → {_passed_word(r.passed_b, st)}"
               if r.passed_a is not None or r.passed_b is not None else "")
        lines.append(f"| {_md_cell(_label_of(r.key))} | {_fmt(r.value_a)} | {_fmt(r.value_b)} | "
                     f"{_fmt(r.change)} | {res} |")
    flips = df[(df["scope"] != "citywide") & df["passed_a"].notna() & df["passed_b"].notna()
               & (df["passed_a"] != df["passed_b"])]
    lines += ["", "## Districts whose result changed", ""]
    if len(flips):
        lines += ["| District | Indicator | A | B | Result A → B |", "| --- | --- | ---: | ---: | --- |"]
        for r in flips.itertuples():
            lines.append(f"| {_md_cell(names.get(r.scope, r.scope))} ({r.scope}) | {_md_cell(_label_of(r.key))} | "
                         f"{_fmt(r.value_a)} | {_fmt(r.value_b)} | "
                         f"{_passed_word(r.passed_a, getattr(r, 'standing', ''))} → "
                         f"{_passed_word(r.passed_b, getattr(r, 'standing', ''))} |")
    else:
        lines.append("None: every district passes or fails each criterion in both runs.")
    if diffs:
        lines += ["", "## Throughput difference maps", "",
                  "Downlink rate of B minus A per pixel (GeoTIFF in bit/s on A's grid, map in Mbit/s; "
                  "blue gains, red losses). Where the grids differ, B is resampled onto A's grid "
                  "(rasterio.warp.reproject, area-weighted average).", "",
                  "| Raster | Mean change (Mbit/s) | Pixels gaining | Pixels losing | B resampled |",
                  "| --- | ---: | ---: | ---: | --- |"]
        for d in diffs:
            lines.append(f"| `{_md_cell(d['tif'])}` | {float(d['mean_mbps']):+.1f} | "
                         f"{_fmt(d['gain_share_pct'], '%')} | "
                         f"{_fmt(d['loss_share_pct'], '%')} | {'yes' if d['resampled'] else 'no'} |")
        lines.append("")
        for d in diffs:
            lines += [f"![{_md_cell(d['label'])}]({d['png']})", ""]
    lines += ["", "---", "", f"{data_sources(summary_a)[0].rstrip('.')}.", ""]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8", newline="\n")
    return path
