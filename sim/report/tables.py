"""Text helpers and the busy-hour tables of the reports (Markdown and HTML).

Split from :mod:`sim.report.render`: escaping (:func:`esc`, :func:`md_cell`: URL schemes are
broken so a report links nowhere) and the busy-hour section (fixed point, simpy check, daily
profile, PON ports) shared by ``report.md`` and ``report.html``.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping

__all__ = ["defang", "esc", "md_cell", "busy_hour_md", "busy_hour_html"]


def defang(text) -> str:
    """Text with any URL scheme separator broken (``https[:]//``): the report links nowhere."""
    return str(text).replace("://", "[:]//")


def esc(text) -> str:
    """HTML-escaped, defanged text."""
    return html.escape(defang(text), quote=True)


def md_cell(text) -> str:
    """Text for a Markdown table cell (``|`` escaped, one line)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


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


def busy_hour_md(summary) -> list[str]:
    lines: list[str] = []
    for title, head, rows, note in _busy_hour_tables(summary):
        lines += ["", f"## {title}", "", "| " + " | ".join(md_cell(h) for h in head) + " |",
                  "| --- |" + " ---: |" * (len(head) - 1)]
        lines += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows]
        if note:
            lines += ["", md_cell(note)]
    return lines


def busy_hour_html(summary) -> list[str]:
    out: list[str] = []
    for title, head, rows, note in _busy_hour_tables(summary):
        out.append(f'<section class="busy"><h2>{esc(title)}</h2><div class="scroll"><table><thead><tr>')
        out += [f"<th>{esc(h)}</th>" for h in head]
        out.append("</tr></thead><tbody>")
        for r in rows:
            out.append("<tr>" + f"<td>{esc(r[0])}</td>" + "".join(f'<td class="num">{esc(c)}</td>' for c in r[1:])
                       + "</tr>")
        out.append("</tbody></table></div>")
        if note:
            out.append(f'<p class="small">{esc(note)}</p>')
        out.append("</section>")
    return out
