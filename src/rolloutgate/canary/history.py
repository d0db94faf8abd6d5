"""A run's line in the canary history (JSON Lines, one run a line), and the confidence
intervals a report's metrics give. Pure: the file itself is written and read by ``report``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

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
