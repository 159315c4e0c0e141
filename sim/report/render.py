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
    "Coverage: best-server SS-RSRP and SINR on a raster in EPSG:32651, from 3GPP TR 38.901 path "
    "loss, LOS probability, O2I penetration loss and sector antenna pattern; SINR to spectral "
    "efficiency by the TS 38.214 CQI tables, rate by the TS 38.306 formula.",
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
    "(TR 38.901 7.4.3 expected O2I loss indoors); busy-hour maps and the 100 Mbit/s indicator use the "
    "indoor rate, as the lone-user 1 Gbit/s indicator does. The lone-user indicator (own cell idle) "
    "weights the neighbour cells at the reference load radio.default_load; the busy-hour indicators at "
    "their solved busy-hour loads, so where those loads are far below the reference the busy-hour rates "
    "are the higher ones.",
    "Load-coupled interference: each interferer's power is weighted by its cell load (top 8 interferers "
    "per pixel; the weaker rest scale with their mean load, an assumption), SINR -> TS 38.214 CQI "
    "spectral efficiency -> TS 38.306 rate -> load, iterated from the unloaded network to the least "
    "fixed point; a user served by the idle network keeps at least the CQI 1 rate (so the iteration is "
    "monotone); loads are capped at 1 as interference weights and cells with rho >= 1 flagged saturated.",
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


def _defang(text) -> str:
    """Text with any URL scheme separator broken (``https[:]//``): the report links nowhere."""
    return str(text).replace("://", "[:]//")


def _esc(text) -> str:
    return html.escape(_defang(text), quote=True)


def _fmt(v, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    v = float(v)
    s = f"{v:,.1f}" if abs(v) < 1e6 else f"{v:,.0f}"
    return f"{s} %" if unit == "%" else s


def _basis(row) -> str:
    if row.get("kind") == "input":
        return "input"
    c = row.get("confirmed")
    if c is True:
        return "confirmed"
    if c is False:
        return "assumption"
    return "reported"


def _result(passed) -> tuple[str, str]:
    if passed is True:
        return "pass", "pass"
    if passed is False:
        return "fail", "fail"
    return "na", "—"


def _records(criteria_table) -> list[dict]:
    recs = criteria_records(criteria_table)
    for r in recs:
        if r.get("value") is None:
            r["value"] = math.nan
    return recs


def _label_of(key: str) -> str:
    return INDICATORS[key].label if key in INDICATORS else key


def _verdict_text(v: Mapping, recs) -> tuple[str, str]:
    """CSS class and sentence of the verdict ``v``; ``recs`` tell which failing criteria are inputs."""
    missing = [k for k in VERDICT_KEYS if k not in v]
    if missing:
        raise InputError("verdict", missing[0], "missing: expected the dict returned by sim.criteria.verdict")
    if v["passed"] is True:
        return "pass", f"Meets all {v['n_passed']} citywide One-Gbps city criteria."
    if v["passed"] is False:
        names = "; ".join(_label_of(k) for k in v["failed"])
        text = (f"Does not meet {len(v['failed'])} of {v['n_criteria']} citywide criteria: {names}. "
                f"{v['n_passed']} of {v['n_criteria']} pass.")
        kinds = {r.get("key"): r.get("kind") for r in recs if r.get("scope") == "citywide"}
        if all(kinds.get(k) == "input" for k in v["failed"]):
            text += (" Every failing criterion is a scenario input, not a simulated result: "
                     "the simulated network meets the criteria it is judged on.")
        return "fail", text
    if v["unknown"]:
        names = "; ".join(_label_of(k) for k in v["unknown"])
        return "na", (f"Not judged: {v['n_passed']} of {v['n_criteria']} citywide criteria pass, "
                      f"{len(v['unknown'])} not evaluated: {names}.")
    return "na", "Not judged: no citywide criterion has a threshold."


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


def _key_figures_html(summary) -> list[str]:
    city = summary.get("citywide") or {}
    cells = [f'<div class="fig"><b>{_esc(_fmt(city[k], u))}</b><span>{_esc(cap)}</span></div>'
             for k, cap, u in _KEY_FIGURES if city.get(k) is not None]
    return ['<div class="figures">', *cells, "</div>"] if cells else []


def _district_names(summary) -> dict[str, str]:
    return {str(d.get("code")): str(d.get("name_en", d.get("code"))) for d in summary.get("districts") or []}


def _title(summary) -> str:
    sc = summary.get("scenario") or {}
    return f"gigacity — {sc.get('name', 'run')} ({sc.get('year', '')})"


def _image_bytes(src) -> bytes:
    """The PNG of a report image: bytes as given, or the map file of the run folder."""
    return read_png_bytes(src)


def embed_png_bytes(data: bytes) -> bytes:
    """A smaller PNG of a map for embedding in ``report.html``: 256-colour palette, no dither.

    The map PNG files keep full colour; the embedded copies are quantised (Pillow median
    cut) so the self-contained page stays a few MB for a phone (about 3x smaller on the
    Shanghai maps). Returns the original bytes when the palette copy is not smaller.
    """
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        q = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    q.save(buf, format="PNG", optimize=True)
    small = buf.getvalue()
    return small if len(small) < len(data) else data


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
main{max-width:1100px;margin:0 auto;padding:1rem 1rem 3rem}
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
.tag.confirmed{background:#e3f4e8}.tag.assumption{background:#fff4d6}.tag.input{background:#e6eefb}
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
table.cards td[data-label]::before{content:attr(data-label);color:var(--muted);font-weight:400;text-align:left}
table.districts{font-size:.8rem}.maps{gap:.6rem}figure{padding:.25rem;margin:.4rem 0}}
@media print{.scroll{overflow:visible}figure{break-inside:avoid}}
"""


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
        *_key_figures_html(summary),
        f'<p class="small">Scenario {_esc(sc.get("name", ""))}, year {_esc(sc.get("year", ""))}, '
        f'seed {_esc(sc.get("seed", ""))}. Shanghai, {len(summary.get("districts") or [])} of 16 districts.</p>',
        '<nav><a href="#criteria">Criteria</a><a href="#maps">Maps</a><a href="#districts">Districts</a>'
        '<a href="#methods">Methods and sources</a></nav>',
        '<section id="criteria"><h2>One-Gbps city criteria, citywide</h2><div class="scroll"><table class="cards">',
        "<thead><tr><th>Indicator</th><th>Value</th><th>Threshold</th><th>Result</th>"
        "<th>Gap to pass</th><th>Basis</th></tr></thead><tbody>",
    ]
    city = [r for r in recs if r.get("scope") == "citywide"]
    for r in city:
        cls, word = _result(r.get("passed"))
        unit = r.get("unit") or ""
        thr = _threshold_text(r)
        basis = _basis(r)
        out.append(
            f"<tr><td>{_esc(r.get('label') or r.get('key'))}</td>"
            f'<td class="num" data-label="Value">{_esc(_fmt(r.get("value"), unit))}</td>'
            f'<td class="num" data-label="Threshold">{_esc(thr)}</td>'
            f'<td class="{cls}" data-label="Result">{word}</td>'
            f'<td class="num" data-label="Gap to pass">{_esc(_fmt(r.get("gap"), unit) if r.get("op") else "—")}</td>'
            f'<td data-label="Basis"><span class="tag {basis}">{basis}</span></td></tr>'
        )
    out.append("</tbody></table></div>")
    out.append('<p class="small">confirmed: the criterion\'s own threshold; assumption: a documented '
               "stand-in (see sources); input: a scenario assumption, not simulated; reported: no "
               "threshold. Per 10,000 residents where not a percentage.</p></section>")
    if images:
        out.append('<section id="maps"><h2>Maps</h2><div class="maps">')
        for caption, src in images.items():
            b64 = base64.b64encode(embed_png_bytes(_image_bytes(src))).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{b64}" alt="{_esc(caption)}" loading="lazy">'
                       f"<figcaption>{_esc(caption)}</figcaption></figure>")
        out.append("</div></section>")
    out += _district_table_html(recs, summary)
    out += _busy_hour_html(summary)
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
    out.append(f"<footer><p>{_esc(ATTRIBUTION)}.</p><p>{_esc(CENSUS_SOURCE)}.</p></footer>")
    out += ["</main>", "</body>", "</html>", ""]
    text = "\n".join(out)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return path


_SITE_COLUMNS = (("sites_5g", "5G sites", ""), ("sites_5g_per_km2", "5G sites per km²", "official area"),
                 ("sites_5g_per_10k", "5G sites per 10,000 residents", "census"))
"""Site counts and densities of ``summary["districts"]`` rows shown before the indicators."""


def _district_sites(summary) -> dict[str, list[str]]:
    """District code -> formatted site count and densities (empty when the summary has none)."""
    out = {}
    for d in summary.get("districts") or []:
        if "sites_5g_per_km2" in d:
            out[str(d.get("code"))] = [f"{d['sites_5g']:,}" if isinstance(d.get("sites_5g"), int) else "—",
                                       _fmt(d.get("sites_5g_per_km2")) if d.get("sites_5g_per_km2") is None
                                       else f"{float(d['sites_5g_per_km2']):,.2f}",
                                       _fmt(d.get("sites_5g_per_10k")) if d.get("sites_5g_per_10k") is None
                                       else f"{float(d['sites_5g_per_10k']):,.2f}"]
    return out


def _district_table_html(recs, summary) -> list[str]:
    rows = [r for r in recs if r.get("scope") != "citywide"]
    if not rows:
        return []
    keys = [k for k in INDICATORS if any(r["key"] == k for r in rows)]
    keys += sorted({r["key"] for r in rows} - set(keys))
    scopes = list(dict.fromkeys(r["scope"] for r in rows))
    cell = {(r["scope"], r["key"]): r for r in rows}
    names = _district_names(summary)
    site_cells = _district_sites(summary)
    out = ['<section id="districts"><h2>Districts</h2><p class="small hint">The table scrolls sideways; '
           'the district column stays.</p><div class="scroll"><table class="districts"><thead><tr>'
           "<th>District</th>"]
    if site_cells:
        out += [f"<th>{_esc(label)}{f' ({_esc(basis)})' if basis else ''}</th>" for _, label, basis in _SITE_COLUMNS]
    for k in keys:
        spec = INDICATORS.get(k)
        label = spec.label if spec else k
        unit = spec.unit if spec else ""
        out.append(f"<th>{_esc(label)} ({_esc(unit)})</th>")
    out.append("</tr></thead><tbody>")
    for s in scopes:
        out.append(f"<tr><td>{_esc(names.get(s, s))} <span class=\"small\">{_esc(s)}</span></td>")
        if site_cells:
            out += [f'<td class="num">{_esc(v)}</td>' for v in site_cells.get(s, ["—"] * len(_SITE_COLUMNS))]
        for k in keys:
            r = cell.get((s, k))
            if r is None:
                out.append('<td class="num na">—</td>')
                continue
            cls, _ = _result(r.get("passed"))
            out.append(f'<td class="num {cls}">{_esc(_fmt(r.get("value")))}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div><p class=\"small\">Green passes, red fails the citywide "
               "threshold applied to the district; grey: no threshold or no value.</p></section>")
    return out


def _md_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


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
    lines = [f"# {_title(summary)}", "", f"**{mark}**: {v_text}", "",
             f"Scenario `{sc.get('name', '')}`, year {sc.get('year', '')}, seed {sc.get('seed', '')}, "
             f"config `{sc.get('config_path', '')}`.", "",
             "## One-Gbps city criteria, citywide", "",
             "| Indicator | Value | Threshold | Result | Gap to pass | Basis |",
             "| --- | ---: | ---: | --- | ---: | --- |"]
    for r in (r for r in recs if r.get("scope") == "citywide"):
        unit = r.get("unit") or ""
        _, word = _result(r.get("passed"))
        thr = _threshold_text(r)
        gap = _fmt(r.get("gap"), unit) if r.get("op") else "—"
        lines.append(f"| {_md_cell(r.get('label') or r.get('key'))} | {_fmt(r.get('value'), unit)} | "
                     f"{_md_cell(thr)} | {word} | {gap} | {_basis(r)} |")
    if images:
        lines += ["", "## Maps", ""]
        for caption, src in images.items():
            rel = os.path.relpath(Path(src), path.parent) if not isinstance(src, (bytes, bytearray)) else ""
            lines += [f"![{_md_cell(caption)}]({Path(rel).as_posix()})", ""]
    rows = [r for r in recs if r.get("scope") != "citywide"]
    if rows:
        keys = [k for k in INDICATORS if any(r["key"] == k for r in rows)]
        names = _district_names(summary)
        cell = {(r["scope"], r["key"]): r for r in rows}
        site_cells = _district_sites(summary)
        site_heads = ([label + (f" ({basis})" if basis else "") for _, label, basis in _SITE_COLUMNS]
                      if site_cells else [])
        lines += ["", "## Districts", "",
                  "| District | " + " | ".join(_md_cell(h) for h in site_heads + [INDICATORS[k].label for k in keys])
                  + " |",
                  "| --- |" + " ---: |" * (len(site_heads) + len(keys))]
        for s in dict.fromkeys(r["scope"] for r in rows):
            vals = list(site_cells.get(s, ["—"] * len(_SITE_COLUMNS))) if site_cells else []
            for k in keys:
                r = cell.get((s, k))
                if r is None:
                    vals.append("—")
                    continue
                flag = {True: " ✓", False: " ✗"}.get(r.get("passed"), "")
                vals.append(_fmt(r.get("value")) + flag)
            lines.append(f"| {_md_cell(names.get(s, s))} ({s}) | " + " | ".join(vals) + " |")
    lines += _busy_hour_md(summary)
    lines += ["", "## Methods and sources", ""]
    lines += [f"- {m}" for m in (*_METHODS, *(summary.get("methods") or []))]
    lines += ["", "Threshold sources:", ""] + [f"- {_md_cell(s)}" for s in _sources(recs)]
    lines += ["", "---", "", f"{ATTRIBUTION}.", "", f"{CENSUS_SOURCE}.", ""]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8", newline="\n")
    return path


def _passed_word(p) -> str:
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
        res = (f"{_passed_word(r.passed_a)} → {_passed_word(r.passed_b)}"
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
                         f"{_passed_word(r.passed_a)} → {_passed_word(r.passed_b)} |")
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
    lines += ["", "---", "", f"{ATTRIBUTION}.", ""]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8", newline="\n")
    return path


# ----------------------------------------------------------------------------- busy-hour section


def _mbps(v) -> str:
    return "—" if v is None or not math.isfinite(float(v)) else f"{float(v) / 1e6:,.1f}"


def _pct(v) -> str:
    return "—" if v is None or not math.isfinite(float(v)) else f"{100.0 * float(v):.1f} %"


def _num(v, fmt="{:.3g}") -> str:
    return "—" if v is None or not math.isfinite(float(v)) else fmt.format(float(v))


def _busy_hour_tables(summary) -> list[tuple[str, list[str], list[list[str]], str]]:
    """The busy-hour section as (title, header, rows, note) tables, shared by Markdown and HTML."""
    bh = summary.get("busy_hour")
    if not isinstance(bh, Mapping):
        return []
    out = []
    layers = bh.get("layers") or {}
    if layers:
        rows = [[lid, str(v.get("cells")), str(v.get("iterations")), _num(v.get("max_change"), "{:.2g}"),
                 "yes" if v.get("converged") else "no", str(v.get("saturated_cells")),
                 _num(v.get("mean_load"), "{:.3f}"), _num(v.get("max_load"), "{:.3f}")]
                for lid, v in layers.items()]
        out.append(("Busy hour: load <-> interference fixed point",
                    ["Layer", "Cells", "Iterations", "Largest load change", "Converged", "Saturated cells",
                     "Mean load (capped)", "Largest load"], rows,
                    "Loads are capped at 1 as interference weights; a saturated cell (load >= 1) has no steady "
                    "state and its users get 0 in the busy-hour rasters. Per cell: cells.csv."))
    sim = bh.get("simpy_cells") or []
    if sim:
        rows = [[f"{r['layer']} #{r['sector']}", _num(r.get("load"), "{:.3f}"), _mbps(r.get("analytic_bps")),
                 f"{_mbps(r.get('simpy_bps'))} ± {_mbps(r.get('ci_half_width_bps'))}",
                 _num(100.0 * r["relative_difference"] if r.get("relative_difference") is not None else None,
                      "{:+.1f} %"),
                 _mbps(r.get("p5_bps")), _mbps(r.get("p50_bps")), _pct(r.get("share_ge_100mbps")),
                 _pct(r.get("share_ge_1gbps")), str(r.get("flows"))] for r in sim]
        out.append(("Busy hour: simpy against the analytic processor-sharing result",
                    ["Cell", "Load", "Analytic E[S]/E[T] (Mbit/s)", "simpy (Mbit/s, 95 % CI)", "Difference",
                     "5th pct (Mbit/s)", "Median (Mbit/s)", ">= 100 Mbit/s", ">= 1 Gbit/s", "Flows"], rows,
                    str(bh.get("simpy_agreement", ""))))
    day = bh.get("day") or []
    if day:
        rows = [[f"{r['hour']:02d}h", _num(r.get("load"), "{:.3f}"), _mbps(r.get("throughput_bps")),
                 _mbps(r.get("p5_bps")), _pct(r.get("share_ge_100mbps"))] for r in day]
        out.append((f"Daily profile of cell {day[0]['layer']} #{day[0]['sector']} (simpy)",
                    ["Hour", "Load", "E[S]/E[T] (Mbit/s)", "5th pct (Mbit/s)", ">= 100 Mbit/s"], rows,
                    "Busy-hour demand scaled by the configured hourly weights."))
    pon = bh.get("pon") or []
    if pon:
        rows = [[str(r["technology"]), f"1:{r['split']}", str(r.get("subscribers_per_port")),
                 _num(r.get("load"), "{:.3f}"),
                 f"{_pct(r.get('share_at_tier'))} ± {_pct(r.get('share_at_tier_ci'))}",
                 f"{_pct(r.get('gigabit_share_ge_1gbps'))} ± {_pct(r.get('gigabit_share_ge_1gbps_ci'))}"]
                for r in pon]
        out.append(("Fibre: PON ports in the busy hour (simpy)",
                    ["Technology", "Split", "Subscribers per port", "Load", "Flows receiving their tier",
                     "Gigabit-tier flows >= 1 Gbit/s"], rows,
                    "A flow receives its tier at >= 95 % of the tier rate; 95 % CI across replications."))
    return out


def _busy_hour_md(summary) -> list[str]:
    lines: list[str] = []
    for title, head, rows, note in _busy_hour_tables(summary):
        lines += ["", f"## {title}", "", "| " + " | ".join(_md_cell(h) for h in head) + " |",
                  "| --- |" + " ---: |" * (len(head) - 1)]
        lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
        if note:
            lines += ["", _md_cell(note)]
    return lines


def _busy_hour_html(summary) -> list[str]:
    out: list[str] = []
    for title, head, rows, note in _busy_hour_tables(summary):
        out.append(f'<section class="busy"><h2>{_esc(title)}</h2><div class="scroll"><table><thead><tr>')
        out += [f"<th>{_esc(h)}</th>" for h in head]
        out.append("</tr></thead><tbody>")
        for r in rows:
            out.append("<tr>" + f"<td>{_esc(r[0])}</td>" + "".join(f'<td class="num">{_esc(c)}</td>' for c in r[1:])
                       + "</tr>")
        out.append("</tbody></table></div>")
        if note:
            out.append(f'<p class="small">{_esc(note)}</p>')
        out.append("</section>")
    return out
