"""The canary report as one self-contained HTML page: verdicts, charts, intervals, flips, the
trend of the last runs. Pure: a report's JSON in, the page out."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from rolloutgate.canary.charts import (
    VERDICT_COLORS,
    ecdf_svg,
    histogram_svg,
    timeline_svg,
    trend_svg,
)
from rolloutgate.canary.history import TREND_RUNS, intervals
from rolloutgate.canary.observations import ARMS


def intervals_html(found: Mapping[str, Sequence[float]]) -> str:
    """The confidence intervals the metrics report, one row each."""
    if not found:
        return "<p>no metric reports a confidence interval</p>"
    rows = ["<table><tr><th>metric.figure</th><th>low</th><th>high</th></tr>"]
    rows += [
        f"<tr><td>{html.escape(name)}</td><td>{lo:.4g}</td><td>{hi:.4g}</td></tr>"
        for name, (lo, hi) in found.items()
    ]
    rows.append("</table>")
    return "".join(rows)


def flip_matrix_html(matrix: Sequence[Sequence[Any]]) -> str:
    """Rows: baseline label; columns: canary label; off-diagonal cells are flips."""
    if not matrix:
        return "<p>no label output compared</p>"
    labels = sorted({str(r[0]) for r in matrix} | {str(r[1]) for r in matrix})
    cell = {(str(b), str(c)): int(n) for b, c, n in matrix}
    rows = [
        "<table class='matrix'><tr><th>baseline ↓ / canary →</th>"
        + "".join(f"<th>{html.escape(c)}</th>" for c in labels)
        + "</tr>"
    ]
    for b in labels:
        tds = []
        for c in labels:
            n = cell.get((b, c), 0)
            cls = "diag" if b == c else ("flip" if n else "")
            tds.append(f"<td class='{cls}'>{n}</td>")
        rows.append(f"<tr><th>{html.escape(b)}</th>{''.join(tds)}</tr>")
    rows.append("</table>")
    return "".join(rows)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:980px;color:#202124}
h1{font-size:1.5em}.verdict{color:#fff;padding:.15em .6em;border-radius:.3em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ddd;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f5f5f5}.pass{color:#1e8e3e}.fail{color:#c5221f}
.nodata{color:#5f6368}.matrix td{text-align:right;min-width:3em}.matrix td.diag{background:#e6f4ea}
.matrix td.flip{background:#fce8e6;font-weight:bold}code{background:#f1f3f4;padding:0 .2em}
.small{color:#5f6368;font-size:.9em}
"""


def html_report(data: Mapping[str, Any], history: Sequence[Mapping[str, Any]] = ()) -> str:
    """The page; ``history``: the last runs' history lines, for the trend."""
    e = html.escape
    verdict = str(data["verdict"])
    color = VERDICT_COLORS.get(verdict, "#5f6368")
    metrics = {m["name"]: m for m in data["metrics"]}
    score = f" — score {data['score']:g}" if data["score"] is not None else ""
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>canary {e(str(data['candidate_tag']))}: {e(verdict)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Canary <code>{e(str(data['candidate_tag']))}</code> against live "
        f"<code>{e(str(data['baseline_tag']))}</code>: "
        f"<span class='verdict' style='background:{color}'>{e(verdict.upper())}</span>{score}</h1>",
        f"<p>{e(str(data['reason']))}</p>",
        f"<p class='small'>namespace {e(str(data['target']['namespace']))}, run "
        f"{e(str(data['run_id']))}, started {e(str(data['started']))}, verdict after "
        f"{e(str(data['seconds_to_verdict']))} s; same model: {data['same_model']}; "
        f"exit status {data['exit_status']}</p>",
        "<h2>Verdict per metric</h2><table><tr><th>metric</th><th>group</th><th>verdict</th>"
        "<th>reason</th></tr>",
    ]
    for m in data["metrics"]:
        crit = " (critical)" if m["critical"] else ""
        out.append(
            f"<tr><td>{e(m['name'])}</td><td>{e(m['group'])}</td>"
            f"<td class='{e(m['verdict'])}'>{e(m['verdict'])}{crit}</td>"
            f"<td>{e(m['reason'])}</td></tr>"
        )
    out.append("</table>")
    lat = data.get("latency_ms") or {}
    out.append("<h2>Latency</h2>")
    out.append(histogram_svg({a: lat.get(a) or [] for a in ARMS}, unit=" ms"))
    out.append("<h3>Over time</h3>")
    out.append(timeline_svg((data.get("evidence") or {}).get("samples") or []))
    out.append("<h3>Distribution (ECDF)</h3>")
    out.append(ecdf_svg({a: lat.get(a) or [] for a in ARMS}))
    out.append("<h2>Confidence intervals</h2>")
    out.append(intervals_html(intervals(data["metrics"])))
    figs = (metrics.get("latency") or {}).get("figures") or {}
    if figs:
        out.append(
            "<p class='small'>"
            + ", ".join(
                f"{e(k)} {v:.4g}" if isinstance(v, float) else f"{e(k)} {e(str(v))}"
                for k, v in figs.items()
            )
            + "</p>"
        )
    agreement = (metrics.get("agreement") or {}).get("figures") or {}
    out.append("<h2>Predictions: label flips</h2>")
    out.append(flip_matrix_html(agreement.get("matrix") or []))
    flipped = agreement.get("flipped") or []
    if flipped:
        out.append(
            "<table><tr><th>request</th><th>output</th><th>baseline</th><th>canary</th></tr>"
        )
        out += [
            f"<tr><td>{e(str(f['item']))}</td><td>{e(str(f['output']))}[{f['index']}]</td>"
            f"<td>{e(str(f['baseline']))}</td><td>{e(str(f['canary']))}</td></tr>"
            for f in flipped[:50]
        ]
        out.append("</table>")
    numeric = (metrics.get("numeric") or {}).get("figures") or {}
    if numeric.get("diffs"):
        out.append("<h2>Predictions: numeric differences |canary - baseline|</h2>")
        out.append(histogram_svg({"canary": numeric["diffs"]}, unit=""))
    out.append("<h2>Traffic and arms</h2><table>")
    for arm, t in (data["traffic"]["per_arm"] or {}).items():
        out.append(f"<tr><th>{e(arm)}</th><td>{e(json.dumps(t))}</td></tr>")
    out.append(f"<tr><th>arms</th><td>{e(json.dumps(data['arms']))}</td></tr>")
    out.append(f"<tr><th>cleanup</th><td>{e('; '.join(data['cleanup']))}</td></tr>")
    out.append(f"<tr><th>phases (s)</th><td>{e(json.dumps(data['phases_s']))}</td></tr>")
    if data.get("promotion"):
        out.append(f"<tr><th>promotion</th><td>{e(json.dumps(data['promotion']))}</td></tr>")
    for note in data.get("notes") or []:
        out.append(f"<tr><th>note</th><td>{e(note)}</td></tr>")
    out.append("</table>")
    out.append(f"<h2>Trend: the last {TREND_RUNS} runs</h2>")
    out.append(trend_svg(history))
    out.append("</body></html>")
    return "\n".join(out) + "\n"
