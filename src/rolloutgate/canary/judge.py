"""The canary's judgement: every metric, a Kayenta-style score and the run's verdict. Pure.

Input is what the traffic observed (``observations.Observations``: every request sent to each
arm, with its answer and latency, plus what happened to the arms); output is a ``Judgement``.
Nothing here talks to a cluster or the network, so every rule is tested on recorded samples.
The metrics' rules are in ``predictions`` and ``stats``; the arms and stability are here.

Rules (defaults in ``thresholds.Thresholds``, the one place they are defined; facts in
CANARY.md):

- a metric is ``pass``, ``fail`` or ``nodata`` (not judged: no data, or reported only);
- metrics are grouped (predictions, latency, errors); the score is the weighted mean over groups
  of each group's share of passing judged metrics, x 100 (Kayenta's WeightedSumScorer);
- a failing critical metric fails the run with score 0 (Kayenta's critical metrics);
- too few valid samples, a broken baseline, repeated transport errors on one arm, nothing
  judged beyond the golden cases, or a weighted group with nothing judged make the run
  ``inconclusive``, never ``pass``;
- otherwise score >= pass_score is ``pass``, >= marginal_score ``marginal``, else ``fail``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rolloutgate.canary.errorrate import judge_errors
from rolloutgate.canary.latency import judge_latency, judge_latency_budget
from rolloutgate.canary.metrics import METRICS, Metric
from rolloutgate.canary.observations import Observations, first_answers
from rolloutgate.canary.predictions import (
    judge_accuracy,
    judge_agreement,
    judge_golden,
    judge_numeric,
)
from rolloutgate.canary.thresholds import Thresholds

RunVerdict = Literal["pass", "marginal", "fail", "inconclusive"]

# Exit status of a canary run, by verdict. 2 (interrupted), 3 (internal error), 4 (usage error)
# and 5 (nothing collected) stay pytest's own.
EXIT_STATUS: Mapping[RunVerdict, int] = {"pass": 0, "fail": 1, "marginal": 6, "inconclusive": 7}


@dataclass
class Judgement:
    verdict: RunVerdict
    score: float
    reason: str
    metrics: list[Metric]
    inconclusive: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.verdict]

    def metric(self, name: str) -> Metric:
        return next(m for m in self.metrics if m.name == name)


def judge_arms(obs: Observations) -> Metric:
    canary, baseline = obs.arm_failure["canary"], obs.arm_failure["baseline"]
    if obs.environment:
        return Metric("arms", "nodata", "; ".join(obs.environment), critical=True)
    if canary:
        return Metric("arms", "fail", f"canary arm: {canary}", critical=True)
    if baseline:
        return Metric("arms", "nodata", f"baseline arm unusable: {baseline}", critical=True)
    return Metric("arms", "pass", "both arms rolled out and answered health checks", True)


def judge_stability(obs: Observations) -> Metric:
    can, base = obs.restarts["canary"], obs.restarts["baseline"]
    figures = {"canary_restarts": can, "baseline_restarts": base}
    if obs.arm_failure["canary"] or obs.arm_failure["baseline"] or obs.environment:
        return Metric("stability", "nodata", "no traffic was sent", True, figures)
    if can > 0:
        return Metric(
            "stability",
            "fail",
            f"canary containers restarted {can} times during the run",
            True,
            figures,
        )
    return Metric("stability", "pass", f"no canary restart (baseline {base})", True, figures)


def inconclusive_reasons(obs: Observations, t: Thresholds) -> list[str]:
    reasons = list(obs.environment)
    if obs.arm_failure["baseline"]:
        reasons.append(f"baseline arm unusable: {obs.arm_failure['baseline']}")
    if obs.arm_failure["canary"]:
        return reasons
    answered = first_answers(obs, "canary")
    unanswered = [i.id for i in obs.items.values() if i.case is not None and i.id not in answered]
    if unanswered and obs.samples:
        reasons.append(f"golden cases never answered by the canary: {', '.join(unanswered)}")
    base_valid = sum(1 for s in obs.measured("baseline") if s.ok)
    can_answered = sum(1 for s in obs.measured("canary") if s.outcome != "transport")
    if base_valid < t.min_samples or can_answered < t.min_samples:
        reasons.append(
            f"too few samples: baseline {base_valid} valid, canary {can_answered} answered "
            f"(need {t.min_samples} per arm)"
        )
    if obs.restarts["baseline"] > 0:
        reasons.append(f"baseline containers restarted {obs.restarts['baseline']} times")
    reasons += obs.stopped
    return list(dict.fromkeys(reasons))


def unjudged(metrics: Sequence[Metric], weights: Mapping[str, float]) -> list[str]:
    """Why the judged metrics cannot make a verdict: nothing judged beyond the golden cases
    (they check a handful of answers, not the candidate), or a group that counts in the score
    with nothing judged (a regression model without labels must not pass on latency and
    errors alone; a latency the path dominates must not pass unmeasured)."""
    # The golden cases check a handful of answers, each against its own expectation; they
    # compare nothing between the arms.
    judged = [m for m in metrics if m.scored and m.verdict != "nodata" and m.name != "golden"]
    if not judged:
        return ["nothing judged beyond the golden cases"]
    reasons = []
    for group, weight in weights.items():
        if weight > 0 and not [m for m in judged if m.group == group]:
            why = "; ".join(
                f"{m.name}: {m.reason}" for m in metrics if m.group == group and m.scored
            )
            reasons.append(f"nothing judged in the {group} group ({why})")
    return reasons


def score(metrics: Sequence[Metric], weights: Mapping[str, float]) -> float:
    """Kayenta's weighted sum: each group's share of passing judged metrics, weighted."""
    total_weight = 0.0
    total = 0.0
    for group, weight in weights.items():
        judged = [m for m in metrics if m.scored and m.group == group and m.verdict != "nodata"]
        if not judged:
            continue
        passed = sum(1 for m in judged if m.verdict == "pass")
        total += weight * passed / len(judged)
        total_weight += weight
    return round(100.0 * total / total_weight, 2) if total_weight else 0.0


def judge(obs: Observations, t: Thresholds | None = None) -> Judgement:
    """Every metric, the score and the run's verdict."""
    t = t or Thresholds()
    metrics = [judge_arms(obs)]
    if obs.arm_failure["canary"] or obs.arm_failure["baseline"] or obs.environment:
        metrics += [
            Metric(name, "nodata", "no traffic: an arm did not come up", critical=False)
            for name in METRICS
            if name not in ("arms", "stability")
        ]
        metrics.append(judge_stability(obs))
    else:
        metrics += [
            judge_golden(obs),
            judge_agreement(obs, t),
            judge_accuracy(obs, t),
            judge_numeric(obs, t),
            judge_latency(obs, t),
            judge_latency_budget(obs, t),
            judge_errors(obs, t),
            judge_stability(obs),
        ]
    metrics.sort(key=lambda m: list(METRICS).index(m.name))
    critical = [m for m in metrics if m.critical and m.verdict == "fail"]
    if critical:
        return Judgement(
            "fail",
            0.0,
            "critical: " + "; ".join(f"{m.name}: {m.reason}" for m in critical),
            metrics,
        )
    reasons = inconclusive_reasons(obs, t) + unjudged(metrics, t.weights)
    value = score(metrics, t.weights)
    if reasons:
        return Judgement("inconclusive", value, "; ".join(reasons), metrics, reasons)
    failing = [m for m in metrics if m.verdict == "fail"]
    why = "; ".join(f"{m.name}: {m.reason}" for m in failing)
    if value >= t.pass_score:
        return Judgement("pass", value, f"score {value:g} >= {t.pass_score:g}", metrics)
    if value >= t.marginal_score:
        return Judgement(
            "marginal",
            value,
            f"score {value:g} in [{t.marginal_score:g}, {t.pass_score:g}): {why}",
            metrics,
        )
    return Judgement("fail", value, f"score {value:g} < {t.marginal_score:g}: {why}", metrics)
