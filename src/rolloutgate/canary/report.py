"""Reports of a canary run: JSON, Markdown (step summary), a self-contained HTML page, history.

The HTML page needs no network: styles and charts (inline SVG) are in the file. The history is
JSON Lines, one line per run appended, so a team can chart verdicts, scores and latency ratios
night after night. Nothing here knows pytest or Kubernetes.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

from rolloutgate.canary import evidence
from rolloutgate.canary.judge import EXIT_STATUS
from rolloutgate.canary.observations import ARMS, latencies
from rolloutgate.canary.run import CanaryRun
from rolloutgate.checks.latency import percentile

INTERRUPTED_EXIT = 2  # pytest's own status for an interrupted run
USAGE_ERROR_EXIT = 4  # pytest's own status for a usage error


def exit_status(run: CanaryRun) -> int:
    if run.interrupted is not None:
        return INTERRUPTED_EXIT
    if run.usage_error is not None:
        return USAGE_ERROR_EXIT
    if run.promotion is not None:
        # The release gate decided the run's outcome: its own status (0 released, 1 failed).
        return int(run.promotion["exit_status"])
    return EXIT_STATUS[run.judgement.verdict] if run.judgement else EXIT_STATUS["inconclusive"]


def _iso(t: float | None) -> str | None:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds") if t else None


def to_json(run: CanaryRun) -> dict[str, Any]:
    cfg, ccfg, obs, j = run.cfg, run.ccfg, run.obs, run.judgement
    traffic = {
        arm: {
            "measured": len(obs.measured(arm)),
            "valid": len(latencies(obs, arm)),
            "warmup": sum(1 for s in obs.samples if s.arm == arm and s.warmup),
            "consecutive_transport_errors": obs.consecutive_errors[arm],
            "restarts": obs.restarts[arm],
        }
        for arm in ARMS
    }
    thresholds = asdict(ccfg.thresholds)
    return {
        "verdict": run.verdict,
        "score": j.score if j else None,
        "reason": f"interrupted ({run.interrupted})"
        if run.interrupted
        else (j.reason if j else ""),
        "usage_error": run.usage_error,
        "exit_status": exit_status(run),
        "candidate_tag": run.candidate_tag,
        "baseline_tag": run.baseline_tag,
        "same_model": obs.same_model,
        "target": {"cluster": cfg.cluster, "context": cfg.context, "namespace": cfg.namespace},
        "run_id": run.run_id,
        "arms": run.arms,
        "arm_failure": obs.arm_failure,
        "started": _iso(run.started),
        "finished": _iso(run.finished),
        "seconds_to_verdict": run.seconds_to_verdict,
        "phases_s": run.phases,
        "traffic": {
            "per_arm": traffic,
            "distinct_inputs": len(obs.items),
            "concurrency": ccfg.concurrency,
            "stopped": obs.stopped,
        },
        "metrics": [
            {
                "name": m.name,
                "group": m.group,
                "verdict": m.verdict,
                "critical": m.critical,
                "reason": m.reason,
                "figures": m.figures,
            }
            for m in (j.metrics if j else [])
        ],
        "latency_ms": {arm: [round(x, 3) for x in latencies(obs, arm)] for arm in ARMS},
        # Every input and sample: `python -m rolloutgate canary-verdict REPORT` judges again.
        "evidence": evidence.to_json(obs),
        "thresholds": thresholds,
        "cleanup": run.cleanup,
        "kept_arms": ccfg.keep_arms,
        "interrupted": run.interrupted,
        "promotion": run.promotion,
        "notes": run.notes,
    }


def write_json(data: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


# The history line's shape: 2 added schema, run_id, thresholds_hash, samples,
# median_baseline_ms and intervals.
HISTORY_SCHEMA = 2
# Runs shown in the HTML page's trend.
TREND_RUNS = 30


def thresholds_hash(thresholds: Mapping[str, Any]) -> str:
    """A short digest of the thresholds: runs judged alike have the same one."""
    text = json.dumps(thresholds, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def intervals(metrics: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Every confidence interval a metric reports, as ``"<metric>.<name>": [low, high]``: two
    figures ``<name>_low`` and ``<name>_high`` (the latency ratio's, the accuracy drop's), or
    one ``<name>_ci`` holding both."""
    found: dict[str, list[float]] = {}
    for m in metrics:
        figures = m.get("figures") or {}
        for key, value in figures.items():
            if key.endswith("_ci") and isinstance(value, list | tuple) and len(value) == 2:
                found[f"{m['name']}.{key.removesuffix('_ci')}"] = [float(value[0]), float(value[1])]
            elif key.endswith("_low") and _number(value):
                high = figures.get(key.removesuffix("_low") + "_high")
                if _number(high):
                    found[f"{m['name']}.{key.removesuffix('_low')}"] = [float(value), float(high)]
    return found


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def history_line(data: Mapping[str, Any]) -> dict[str, Any]:
    """The trend-worthy part of a report: one JSON object per run."""
    metrics = {m["name"]: m for m in data["metrics"]}

    def fig(metric: str, key: str) -> Any:
        return (metrics.get(metric) or {}).get("figures", {}).get(key)

    per_arm = (data.get("traffic") or {}).get("per_arm") or {}
    return {
        "schema": HISTORY_SCHEMA,
        "run_id": data.get("run_id"),
        "thresholds_hash": thresholds_hash(data.get("thresholds") or {}),
        "samples": {
            arm: {"measured": t.get("measured"), "valid": t.get("valid")}
            for arm, t in per_arm.items()
        },
        "median_baseline_ms": fig("latency", "median_baseline_ms"),
        "intervals": intervals(data["metrics"]),
        "finished": data["finished"],
        "candidate_tag": data["candidate_tag"],
        "baseline_tag": data["baseline_tag"],
        "verdict": data["verdict"],
        "score": data["score"],
        "exit_status": data["exit_status"],
        "seconds_to_verdict": data["seconds_to_verdict"],
        "metrics": {name: m["verdict"] for name, m in metrics.items()},
        "median_ratio": fig("latency", "median_ratio"),
        "latency_p_value": fig("latency", "p_value"),
        "median_canary_ms": fig("latency", "median_canary_ms"),
        "flip_rate": fig("agreement", "flip_rate"),
        "accuracy_canary": fig("accuracy", "canary"),
        "accuracy_baseline": fig("accuracy", "baseline"),
        "canary_errors": fig("errors", "canary_errors"),
        "promotion": (data.get("promotion") or {}).get("verdict"),
    }


def append_history(data: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(history_line(data), default=str) + "\n")


def read_history(path: Path, last: int = TREND_RUNS) -> list[dict[str, Any]]:
    """The last ``last`` runs of a history file (lines that are not JSON objects skipped:
    a file cut short by a killed job must not break the next report)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    runs: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            runs.append(row)
    return runs[-last:]


# ---------------------------------------------------------------------------------------------
# Markdown.

_ICON = {"pass": "✅", "marginal": "🟡", "fail": "❌", "inconclusive": "❔", "interrupted": "⏹️"}
_METRIC_ICON = {"pass": "✅", "fail": "❌", "nodata": "-"}


def markdown(data: Mapping[str, Any]) -> str:
    verdict = data["verdict"]
    out = [
        f"## rolloutgate canary: {_ICON.get(verdict, '')} {verdict}"
        + (f" (score {data['score']:g})" if data["score"] is not None else ""),
        "",
        f"`{data['candidate_tag']}` against live `{data['baseline_tag']}` in "
        f"{data['target']['namespace']}: {_cell(data['reason'])}",
        "",
        "| metric | verdict | reason |",
        "|---|---|---|",
    ]
    for m in data["metrics"]:
        crit = " (critical)" if m["critical"] and m["verdict"] == "fail" else ""
        out.append(
            f"| {m['name']} | {_METRIC_ICON[m['verdict']]} {m['verdict']}{crit} | "
            f"{_cell(m['reason'])} |"
        )
    if data["seconds_to_verdict"] is not None:
        out += ["", f"Verdict after {data['seconds_to_verdict']:.1f} s; arms: {data['cleanup']}"]
    if data.get("promotion"):
        p = data["promotion"]
        why = f": {_cell(p['refused'])}" if p.get("refused") else ""
        out += ["", f"Promotion of `{p['tag']}`: {p['verdict']} (exit {p['exit_status']}){why}"]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")[:400]


def append_step_summary(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> None:
    target = (env if env is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if target:
        with open(target, "a", encoding="utf-8") as f:
            f.write(markdown(data))


# ---------------------------------------------------------------------------------------------
# HTML.

_COLORS = {"baseline": "#3b73b9", "canary": "#e0702b"}
_VERDICT_COLORS = {
    "pass": "#1e8e3e",
    "marginal": "#c69200",
    "fail": "#c5221f",
    "inconclusive": "#5f6368",
    "interrupted": "#5f6368",
}


def histogram_svg(
    series: Mapping[str, Sequence[float]],
    *,
    unit: str,
    bins: int = 40,
    width: int = 640,
    height: int = 220,
) -> str:
    """Overlaid histograms (one translucent step area per series) as an inline SVG."""
    values = [x for xs in series.values() for x in xs]
    if not values:
        return "<p>no samples</p>"
    lo = min(values)
    # Cut the far tail (0.5 %) so one outlier does not squash the picture; it is still counted.
    hi = percentile(values, 99.5)
    if hi <= lo:
        hi = lo + 1e-9 + abs(lo) * 0.01
    step = (hi - lo) / bins
    counts: dict[str, list[float]] = {}
    for name, xs in series.items():
        c = [0.0] * bins
        for x in xs:
            c[min(bins - 1, max(0, int((x - lo) / step)))] += 1
        counts[name] = [n / max(1, len(xs)) for n in c]  # shares: arms may differ in size
    top = max(max(c) for c in counts.values()) or 1.0
    left, bottom, plot_w, plot_h = 48, 28, width - 60, height - 44
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{left + plot_w}" '
        f'y2="{height - bottom}" stroke="#999"/>',
    ]
    for name, c in counts.items():
        color = _COLORS.get(name, "#777")
        points = [f"{left},{height - bottom}"]
        for k, share in enumerate(c):
            x0 = left + k * plot_w / bins
            x1 = left + (k + 1) * plot_w / bins
            y = height - bottom - share / top * plot_h
            points += [f"{x0:.1f},{y:.1f}", f"{x1:.1f},{y:.1f}"]
        points.append(f"{left + plot_w},{height - bottom}")
        parts.append(
            f'<polygon points="{" ".join(points)}" fill="{color}" fill-opacity="0.35" '
            f'stroke="{color}" stroke-width="1.2"><title>{html.escape(name)}</title></polygon>'
        )
        if series[name]:
            med = statistics.median(series[name])
            mx = left + (min(max(med, lo), hi) - lo) / (hi - lo) * plot_w
            parts.append(
                f'<line x1="{mx:.1f}" y1="{height - bottom}" x2="{mx:.1f}" y2="12" '
                f'stroke="{color}" stroke-dasharray="4 3"/>'
            )
    for k in range(5):
        v = lo + k * (hi - lo) / 4
        x = left + k * plot_w / 4
        parts.append(
            f'<text x="{x:.1f}" y="{height - 8}" font-size="11" text-anchor="middle">'
            f"{v:.3g}{html.escape(unit)}</text>"
        )
    legend_x = left + 8
    for k, name in enumerate(series):
        color = _COLORS.get(name, "#777")
        y = 16 + 16 * k
        n = len(series[name])
        parts.append(
            f'<rect x="{legend_x}" y="{y - 9}" width="12" height="10" fill="{color}" '
            f'fill-opacity="0.5"/><text x="{legend_x + 18}" y="{y}" font-size="12">'
            f"{html.escape(name)} (n={n}, dashed: median)</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
    )


def _legend(names: Sequence[str], x: float, notes: Mapping[str, str] | None = None) -> str:
    parts = []
    for k, name in enumerate(names):
        color = _COLORS.get(name, "#777")
        y = 16 + 16 * k
        note = f" {notes[name]}" if notes and name in notes else ""
        parts.append(
            f'<rect x="{x}" y="{y - 9}" width="12" height="10" fill="{color}"/>'
            f'<text x="{x + 18}" y="{y}" font-size="12">{html.escape(name + note)}</text>'
        )
    return "".join(parts)


def timeline_svg(
    samples: Sequence[Mapping[str, Any]], *, width: int = 640, height: int = 220
) -> str:
    """Each measured request's latency against the time it was sent, per arm; a timeout is a
    cross at the top (slower than anything drawn)."""
    shown = [s for s in samples if not s.get("warmup") and s.get("outcome") in ("ok", "timeout")]
    if not shown:
        return "<p>no samples</p>"
    answered = [float(s["latency_ms"]) for s in shown if s["outcome"] == "ok"] or [1.0]
    top = percentile(answered, 99.5) * 1.05 or 1.0
    end = max(float(s.get("at") or 0) for s in shown) or 1.0
    left, bottom, plot_w, plot_h = 48, 28, width - 60, height - 44
    parts = [_svg_open(width, height)]
    parts.append(
        f'<line x1="{left}" y1="{height - bottom}" x2="{left + plot_w}" y2="{height - bottom}" '
        'stroke="#999"/>'
    )
    for s in shown:
        color = _COLORS.get(str(s["arm"]), "#777")
        x = left + float(s.get("at") or 0) / end * plot_w
        if s["outcome"] == "timeout":
            y = 14.0
            parts.append(
                f'<path d="M{x - 3:.1f},{y - 3} l6,6 m0,-6 l-6,6" stroke="{color}">'
                f"<title>{html.escape(str(s['item']))}: timeout</title></path>"
            )
            continue
        y = height - bottom - min(float(s["latency_ms"]), top) / top * plot_h
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.8" fill="{color}" fill-opacity="0.6"/>'
        )
    for k in range(5):
        parts.append(
            f'<text x="{left + k * plot_w / 4:.1f}" y="{height - 8}" font-size="11" '
            f'text-anchor="middle">{k * end / 4:.0f} s</text>'
            f'<text x="{left - 4}" y="{height - bottom - k * plot_h / 4 + 4:.1f}" '
            f'font-size="11" text-anchor="end">{k * top / 4:.3g}</text>'
        )
    parts.append(_legend(list(ARMS), left + 8, {"canary": "(ms; x: timeout)"}))
    parts.append("</svg>")
    return "".join(parts)


def ecdf_svg(series: Mapping[str, Sequence[float]], *, width: int = 640, height: int = 220) -> str:
    """The empirical distribution function of each arm's latencies (share of requests
    answered within x ms); the far tail (0.5 %) is cut as in the histogram."""
    values = [x for xs in series.values() for x in xs]
    if not values:
        return "<p>no samples</p>"
    lo, hi = min(values), percentile(values, 99.5)
    if hi <= lo:
        hi = lo + 1e-9 + abs(lo) * 0.01
    left, bottom, plot_w, plot_h = 48, 28, width - 60, height - 44
    parts = [_svg_open(width, height)]
    for name, xs in series.items():
        ordered = sorted(xs)
        if not ordered:
            continue
        color = _COLORS.get(name, "#777")
        points = [f"{left},{height - bottom}"]
        for k, x in enumerate(ordered):
            px = left + (min(x, hi) - lo) / (hi - lo) * plot_w
            points += [
                f"{px:.1f},{height - bottom - k / len(ordered) * plot_h:.1f}",
                f"{px:.1f},{height - bottom - (k + 1) / len(ordered) * plot_h:.1f}",
            ]
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" '
            f'stroke-width="1.5"><title>{html.escape(name)}</title></polyline>'
        )
    for k in range(5):
        parts.append(
            f'<text x="{left + k * plot_w / 4:.1f}" y="{height - 8}" font-size="11" '
            f'text-anchor="middle">{lo + k * (hi - lo) / 4:.3g} ms</text>'
            f'<text x="{left - 4}" y="{height - bottom - k * plot_h / 4 + 4:.1f}" '
            f'font-size="11" text-anchor="end">{k / 4:.2g}</text>'
        )
    parts.append(_legend(list(series), left + 8))
    parts.append("</svg>")
    return "".join(parts)


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


def trend_svg(runs: Sequence[Mapping[str, Any]], *, width: int = 640, height: int = 160) -> str:
    """Score of the last runs (oldest left), one dot each in its verdict's colour."""
    if not runs:
        return "<p>no history yet</p>"
    left, bottom, plot_w, plot_h = 36, 20, width - 48, height - 32
    step = plot_w / max(1, len(runs) - 1)
    parts = [_svg_open(width, height)]
    for score_line in (75, 95):
        y = height - bottom - score_line / 100 * plot_h
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ccc" '
            f'stroke-dasharray="3 3"/><text x="{left - 4}" y="{y + 4:.1f}" font-size="10" '
            f'text-anchor="end">{score_line}</text>'
        )
    for k, run in enumerate(runs):
        verdict = str(run.get("verdict"))
        score = float(run.get("score") or 0)
        x = left + k * step if len(runs) > 1 else left + plot_w / 2
        y = height - bottom - score / 100 * plot_h
        tip = (
            f"{run.get('finished')}: {run.get('candidate_tag')} against "
            f"{run.get('baseline_tag')}: {verdict} (score {score:g}, median ratio "
            f"{run.get('median_ratio')})"
        )
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" '
            f'fill="{_VERDICT_COLORS.get(verdict, "#5f6368")}"><title>{html.escape(tip)}'
            "</title></circle>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 4}" font-size="11">score of the last {len(runs)} runs '
        "(oldest left; colour: verdict)</text></svg>"
    )
    return "".join(parts)


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
    color = _VERDICT_COLORS.get(verdict, "#5f6368")
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


def write_html(
    data: Mapping[str, Any], path: Path, history: Sequence[Mapping[str, Any]] = ()
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_report(data, history), encoding="utf-8")


def summary_lines(data: Mapping[str, Any]) -> list[str]:
    """The terminal summary."""
    lines = [
        f"canary verdict: {str(data['verdict']).upper()}"
        + (f" (score {data['score']:g})" if data["score"] is not None else "")
        + f" - {data['reason']}",
        f"candidate {data['candidate_tag']} vs live {data['baseline_tag']} in "
        f"{data['target']['namespace']}; exit status {data['exit_status']}",
    ]
    for m in data["metrics"]:
        crit = " critical" if m["critical"] and m["verdict"] == "fail" else ""
        lines.append(f"  {m['name']:<15} {m['verdict']}{crit}: {m['reason']}")
    lines.append("arms: " + "; ".join(data["cleanup"]))
    if data.get("promotion"):
        p = data["promotion"]
        lines.append(
            f"promotion of {p['tag']}: {p['verdict']} (exit {p['exit_status']}): "
            f"{p.get('refused') or p.get('cause')}"
        )
    lines += list(data.get("notes") or [])
    return lines
