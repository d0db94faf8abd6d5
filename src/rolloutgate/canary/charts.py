"""The canary report's charts, as inline SVG (no network, no script): latency histograms, latency
over time, the ECDF, the score trend. Pure: data in, markup out."""

from __future__ import annotations

import html
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from rolloutgate.canary.observations import ARMS
from rolloutgate.checks.latency import percentile

_COLORS = {"baseline": "#3b73b9", "canary": "#e0702b"}
VERDICT_COLORS = {
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
        _svg_open(width, height),
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
            f'fill="{VERDICT_COLORS.get(verdict, "#5f6368")}"><title>{html.escape(tip)}'
            "</title></circle>"
        )
    parts.append(
        f'<text x="{left}" y="{height - 4}" font-size="11">score of the last {len(runs)} runs '
        "(oldest left; colour: verdict)</text></svg>"
    )
    return "".join(parts)
