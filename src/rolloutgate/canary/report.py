"""Reports of a canary run: the JSON, the history line appended, the HTML page and the step
summary written, the terminal summary.

The HTML page (``page``, its charts in ``charts``) needs no network: styles and charts (inline
SVG) are in the file. The history is JSON Lines, one line per run appended (``history``), so a
team can chart verdicts, scores and latency ratios night after night. Nothing here knows pytest
or Kubernetes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rolloutgate.canary import evidence
from rolloutgate.canary.history import TREND_RUNS, history_line
from rolloutgate.canary.judge import EXIT_STATUS
from rolloutgate.canary.observations import ARMS, latencies
from rolloutgate.canary.page import html_report
from rolloutgate.canary.run import CanaryRun

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
            "reach": run.reach,
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
