"""The canary's judgement: per-metric verdicts, a Kayenta-style score and the run's verdict. Pure.

Input is what the traffic observed (``Observations``: every request sent to each arm, with its
answer and latency, plus what happened to the arms); output is a ``Judgement``. Nothing here
talks to a cluster or the network, so every rule is tested on recorded samples.

Statistics come from scipy.stats (Mann-Whitney U for latency, Fisher's exact test for error
counts), imported inside the judging functions: a gate run that never judges a canary does not
pay for importing scipy.

Rules (defaults in ``Thresholds``, the one place they are defined; facts in CANARY.md):

- a metric is ``pass``, ``fail`` or ``nodata`` (not judged: no data, or reported only);
- metrics are grouped (predictions, latency, errors); the score is the weighted mean over groups
  of each group's share of passing judged metrics, x 100 (Kayenta's WeightedSumScorer);
- a failing critical metric fails the run with score 0 (Kayenta's critical metrics);
- too few valid samples, a broken baseline or repeated transport errors on one arm make the run
  ``inconclusive``, never ``pass``;
- otherwise score >= pass_score is ``pass``, >= marginal_score ``marginal``, else ``fail``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from rolloutgate.canary.thresholds import Thresholds

if TYPE_CHECKING:
    from rolloutgate.checks.client import Expected

Arm = Literal["baseline", "canary"]
ARMS: tuple[Arm, Arm] = ("baseline", "canary")
MetricVerdict = Literal["pass", "fail", "nodata"]
RunVerdict = Literal["pass", "marginal", "fail", "inconclusive"]
# How a request ended: answered 2xx, answered otherwise, no answer in time, no connection.
Outcome = Literal["ok", "http", "timeout", "transport"]

# Exit status of a canary run, by verdict. 2 (interrupted), 3 (internal error), 4 (usage error)
# and 5 (nothing collected) stay pytest's own.
EXIT_STATUS: Mapping[RunVerdict, int] = {"pass": 0, "fail": 1, "marginal": 6, "inconclusive": 7}

# Output datatypes of the V2 protocol compared as labels (flips); the rest as numbers.
CATEGORICAL = frozenset(
    {"BOOL", "BYTES", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
)

# Metric name -> (group, in the score). Order is the report's order and the JUnit order.
METRICS: Mapping[str, tuple[str, bool]] = {
    "arms": ("health", False),
    "golden": ("predictions", True),
    "agreement": ("predictions", True),
    "accuracy": ("predictions", True),
    "numeric": ("predictions", True),
    "latency": ("latency", True),
    "latency-budget": ("latency", True),
    "errors": ("errors", True),
    "stability": ("errors", False),
}


@dataclass(frozen=True)
class Item:
    """One distinct input: a golden case (with expectations) or a request-set line."""

    id: str
    request: Mapping[str, Any]
    golden: tuple[Expected, ...] | None = None
    labels: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Sample:
    """One request sent to one arm, and what came back."""

    item: str
    arm: Arm
    outcome: Outcome
    latency_ms: float
    warmup: bool = False
    status: int | None = None
    body: Mapping[str, Any] | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class Observations:
    """What a canary run saw. Filled by the arms' lifecycle and the traffic."""

    items: dict[str, Item] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    same_model: bool = False
    # Why an arm could not be used (rollout or health), None when it served.
    arm_failure: dict[Arm, str | None] = field(
        default_factory=lambda: {"baseline": None, "canary": None}
    )
    # Why the cluster could not run an arm (no room to schedule it): says nothing about the
    # candidate, so the run is inconclusive.
    environment: list[str] = field(default_factory=list)
    # Container restarts per arm during the traffic.
    restarts: dict[Arm, int] = field(default_factory=lambda: {"baseline": 0, "canary": 0})
    # Why the traffic stopped early (deadline, consecutive transport errors), per arm or run.
    stopped: list[str] = field(default_factory=list)
    consecutive_errors: dict[Arm, int] = field(default_factory=lambda: {"baseline": 0, "canary": 0})
    label_output: str | None = None

    def measured(self, arm: Arm) -> list[Sample]:
        return [s for s in self.samples if s.arm == arm and not s.warmup]


@dataclass
class Metric:
    name: str
    verdict: MetricVerdict
    reason: str
    critical: bool = False
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return METRICS[self.name][0]

    @property
    def scored(self) -> bool:
        return METRICS[self.name][1]


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


# ---------------------------------------------------------------------------------------------
# Outputs of a response.


@dataclass(frozen=True)
class Output:
    name: str
    datatype: str
    data: tuple[Any, ...]

    @property
    def categorical(self) -> bool:
        return self.datatype.upper() in CATEGORICAL


def outputs_of(body: Mapping[str, Any] | None) -> dict[str, Output]:
    """The named output tensors of a V2 response, data flattened row-major."""
    found: dict[str, Output] = {}
    for out in (body or {}).get("outputs") or []:
        if isinstance(out, dict) and isinstance(out.get("name"), str):
            data = tuple(_flatten(out.get("data") or []))
            found[out["name"]] = Output(out["name"], str(out.get("datatype") or ""), data)
    return found


def _flatten(data: Iterable[Any]) -> Iterable[Any]:
    for x in data:
        if isinstance(x, list):
            yield from _flatten(x)
        else:
            yield x


def first_answers(obs: Observations, arm: Arm) -> dict[str, Mapping[str, Any]]:
    """Each item's first 2xx answer on the arm (models are deterministic: one is enough)."""
    answers: dict[str, Mapping[str, Any]] = {}
    for s in obs.samples:
        if s.arm == arm and s.ok and s.body is not None and s.item not in answers:
            answers[s.item] = s.body
    return answers


# ---------------------------------------------------------------------------------------------
# Metrics.


def judge_arms(obs: Observations) -> Metric:
    canary, baseline = obs.arm_failure["canary"], obs.arm_failure["baseline"]
    if obs.environment:
        return Metric("arms", "nodata", "; ".join(obs.environment), critical=True)
    if canary:
        return Metric("arms", "fail", f"canary arm: {canary}", critical=True)
    if baseline:
        return Metric("arms", "nodata", f"baseline arm unusable: {baseline}", critical=True)
    return Metric("arms", "pass", "both arms rolled out and answered health checks", True)


def judge_golden(obs: Observations) -> Metric:
    """Every golden case must answer 2xx and as expected on the canary. Critical."""
    # Lazily: the plugin's start-up imports this module's thresholds, not HTTP clients.
    from rolloutgate.checks.client import compare

    golden = {i.id: i for i in obs.items.values() if i.golden is not None}
    if not golden:
        return Metric("golden", "nodata", "no golden cases", critical=True)
    problems: list[tuple[str, str]] = []  # (item, what was wrong)
    checked = 0
    for s in obs.samples:
        # A transport error (no HTTP answer: the port-forward dropped the connection) says
        # nothing about the model; a golden case never answered makes the run inconclusive.
        if s.arm != "canary" or s.item not in golden or s.outcome == "transport":
            continue
        checked += 1
        if not s.ok:
            what = f"HTTP {s.status}" if s.status is not None else s.outcome
            problems.append((s.item, f"{what} {s.error}".rstrip()))
    answers = first_answers(obs, "canary")
    for item_id, item in golden.items():
        if item_id in answers:
            assert item.golden is not None
            problems += [(item_id, p) for p in compare(item.golden, answers[item_id])]
    unanswered = [i for i in golden if i not in answers]
    failing = sorted({i for i, _ in problems})
    figures = {"cases": len(golden), "requests": checked, "failing": failing}
    if problems:
        distinct = list(dict.fromkeys(f"{i}: {p}" for i, p in problems))
        shown = "; ".join(distinct[:5])
        more = f" (+{len(distinct) - 5} more)" if len(distinct) > 5 else ""
        return Metric(
            "golden",
            "fail",
            f"{len(failing)} of {len(golden)} golden cases fail on the canary: {shown}{more}",
            critical=True,
            figures=figures,
        )
    if unanswered:
        return Metric(
            "golden",
            "nodata",
            f"golden cases not answered: {', '.join(unanswered)}",
            critical=True,
            figures=figures,
        )
    return Metric(
        "golden",
        "pass",
        f"all {len(golden)} golden cases answer as expected on the canary",
        critical=True,
        figures=figures,
    )


def _pairs(obs: Observations) -> list[tuple[str, Output, Output]]:
    """(item, baseline output, canary output) for every output both arms gave for an item."""
    base, can = first_answers(obs, "baseline"), first_answers(obs, "canary")
    pairs = []
    for item_id in obs.items:
        if item_id in base and item_id in can:
            b_out, c_out = outputs_of(base[item_id]), outputs_of(can[item_id])
            for name in b_out:
                if name in c_out:
                    pairs.append((item_id, b_out[name], c_out[name]))
    return pairs


def judge_agreement(obs: Observations, t: Thresholds) -> Metric:
    """Label flips between arms on identical inputs (categorical outputs)."""
    compared = 0
    flips: list[tuple[str, str, int, Any, Any]] = []
    matrix: Counter[tuple[str, str]] = Counter()
    for item_id, b, c in _pairs(obs):
        if not (b.categorical and c.categorical):
            continue
        for k, (bv, cv) in enumerate(zip(b.data, c.data, strict=False)):
            compared += 1
            matrix[(str(bv), str(cv))] += 1
            if bv != cv:
                flips.append((item_id, b.name, k, bv, cv))
    critical = obs.same_model
    if compared == 0:
        return Metric("agreement", "nodata", "no label output answered by both arms", critical)
    rate = len(flips) / compared
    limit = 0.0 if obs.same_model else t.max_flip_rate
    figures: dict[str, Any] = {
        "compared": compared,
        "flips": len(flips),
        "flip_rate": round(rate, 6),
        "max_flip_rate": limit,
        "matrix": [[b, c, n] for (b, c), n in sorted(matrix.items())],
        "flipped": [
            {"item": i, "output": o, "index": k, "baseline": bv, "canary": cv}
            for i, o, k, bv, cv in flips[:100]
        ],
    }
    rule = "same model: no flip allowed" if obs.same_model else f"at most {limit:.1%}"
    if rate > limit:
        names = sorted({i for i, *_ in flips})
        shown = ", ".join(f"{i} ({o}[{k}] {bv}->{cv})" for i, o, k, bv, cv in flips[:8])
        more = f" (+{len(flips) - 8} more)" if len(flips) > 8 else ""
        return Metric(
            "agreement",
            "fail",
            f"{len(flips)} of {compared} labels flipped ({rate:.1%}; {rule}) in "
            f"{len(names)} requests: {shown}{more}",
            critical,
            figures,
        )
    return Metric(
        "agreement",
        "pass",
        f"{compared - len(flips)} of {compared} labels agree ({len(flips)} flipped, "
        f"{rate:.1%}; {rule})",
        critical,
        figures,
    )


def _label_output(obs: Observations, answers: Mapping[str, Mapping[str, Any]]) -> str | None:
    if obs.label_output:
        return obs.label_output
    for body in answers.values():
        for out in outputs_of(body).values():
            if out.categorical:
                return out.name
    return None


def judge_accuracy(obs: Observations, t: Thresholds) -> Metric:
    """Accuracy of each arm against the request set's labels; the canary may drop at most
    ``max_accuracy_drop``. Only items both arms answered count, so both are scored alike."""
    labelled = {i.id: i.labels for i in obs.items.values() if i.labels is not None}
    if not labelled:
        return Metric("accuracy", "nodata", "the request set has no labels")
    base, can = first_answers(obs, "baseline"), first_answers(obs, "canary")
    output = _label_output(obs, {**base, **can})
    if output is None:
        return Metric("accuracy", "nodata", "no label output in the answers")
    correct = {"baseline": 0, "canary": 0}
    total = 0
    wrong_canary: list[str] = []
    for item_id, labels in labelled.items():
        if item_id not in base or item_id not in can:
            continue
        b_out, c_out = outputs_of(base[item_id]).get(output), outputs_of(can[item_id]).get(output)
        if b_out is None or c_out is None or labels is None:
            continue
        for k, label in enumerate(labels):
            if k >= len(b_out.data) or k >= len(c_out.data):
                continue
            total += 1
            correct["baseline"] += b_out.data[k] == label
            correct["canary"] += c_out.data[k] == label
            if c_out.data[k] != label and b_out.data[k] == label:
                wrong_canary.append(item_id)
    if total == 0:
        return Metric("accuracy", "nodata", f"no labelled request answered by both arms ({output})")
    acc_b, acc_c = correct["baseline"] / total, correct["canary"] / total
    drop = acc_b - acc_c
    figures = {
        "output": output,
        "labelled": total,
        "baseline": round(acc_b, 6),
        "canary": round(acc_c, 6),
        "drop": round(drop, 6),
        "max_drop": t.max_accuracy_drop,
        "newly_wrong": wrong_canary[:50],
    }
    text = (
        f"accuracy on {total} labels: canary {acc_c:.1%}, baseline {acc_b:.1%} "
        f"(drop {drop * 100:+.1f} pt, at most {t.max_accuracy_drop * 100:.1f} pt)"
    )
    # A tiny epsilon keeps "exactly at the limit" a pass despite float rounding.
    if drop > t.max_accuracy_drop + 1e-12:
        more = f"; newly wrong: {', '.join(wrong_canary[:8])}" if wrong_canary else ""
        return Metric("accuracy", "fail", text + more, figures=figures)
    return Metric("accuracy", "pass", text, figures=figures)


def judge_numeric(obs: Observations, t: Thresholds) -> Metric:
    """Differences of numeric outputs: judged for the same model (critical) or when asked."""
    diffs: list[float] = []
    outside: list[str] = []
    for item_id, b, c in _pairs(obs):
        if b.categorical or c.categorical:
            continue
        for k, (bv, cv) in enumerate(zip(b.data, c.data, strict=False)):
            if not (_number(bv) and _number(cv)):
                continue
            d = abs(float(cv) - float(bv))
            diffs.append(d)
            if d > t.numeric_abs_tol + t.numeric_rel_tol * abs(float(bv)):
                outside.append(f"{item_id} ({b.name}[{k}] {bv:.6g}->{cv:.6g})")
    judged = obs.same_model or t.judge_numeric
    critical = obs.same_model
    if not diffs:
        return Metric("numeric", "nodata", "no numeric output answered by both arms", critical)
    ordered = sorted(diffs)
    figures = {
        "compared": len(diffs),
        "max_abs_diff": ordered[-1],
        "p95_abs_diff": ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)],
        "mean_abs_diff": statistics.fmean(ordered),
        "outside_tolerance": len(outside),
        "abs_tol": t.numeric_abs_tol,
        "rel_tol": t.numeric_rel_tol,
        "diffs": ordered if len(ordered) <= 5000 else ordered[:: len(ordered) // 5000 + 1],
    }
    text = (
        f"{len(diffs)} numbers compared: max |d| {ordered[-1]:.3g}, p95 |d| "
        f"{figures['p95_abs_diff']:.3g}; {len(outside)} outside {t.numeric_abs_tol:g} + "
        f"{t.numeric_rel_tol:g}*|baseline|"
    )
    if not judged:
        return Metric(
            "numeric",
            "nodata",
            text + " (reported, not judged: a new model's scores may move)",
            figures=figures,
        )
    if outside:
        shown = ", ".join(outside[:5])
        return Metric("numeric", "fail", f"{text}: {shown}", critical, figures)
    return Metric("numeric", "pass", text, critical, figures)


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def latencies(obs: Observations, arm: Arm) -> list[float]:
    """Latencies of the arm's measured 2xx answers."""
    return [s.latency_ms for s in obs.measured(arm) if s.ok]


def judge_latency(obs: Observations, t: Thresholds) -> Metric:
    """Canary slower than baseline: one-sided Mann-Whitney AND median ratio >= latency_ratio."""
    # Lazily: only a canary run pays for importing scipy.
    from scipy.stats import mannwhitneyu  # type: ignore[import-untyped]

    base, can = latencies(obs, "baseline"), latencies(obs, "canary")
    if min(len(base), len(can)) < t.min_samples:
        return Metric(
            "latency",
            "nodata",
            f"too few valid samples (baseline {len(base)}, canary {len(can)}; "
            f"need {t.min_samples} per arm)",
        )
    result = mannwhitneyu(can, base, alternative="greater", method="auto")
    p = float(result.pvalue)
    u = float(result.statistic)
    med_b, med_c = statistics.median(base), statistics.median(can)
    ratio = med_c / med_b if med_b > 0 else math.inf
    figures: dict[str, Any] = {
        "n_baseline": len(base),
        "n_canary": len(can),
        "median_baseline_ms": round(med_b, 3),
        "median_canary_ms": round(med_c, 3),
        "median_ratio": round(ratio, 4),
        "p_value": p,
        "alpha": round(t.alpha, 6),
        "cles": round(u / (len(base) * len(can)), 4),
        "hodges_lehmann_ms": round(hodges_lehmann(can, base), 3),
        "p95_baseline_ms": round(_pct(base, 95), 3),
        "p95_canary_ms": round(_pct(can, 95), 3),
        "threshold_ratio": t.latency_ratio,
        "critical_ratio": t.latency_critical_ratio,
    }
    text = (
        f"median canary {med_c:.1f} ms vs baseline {med_b:.1f} ms (ratio {ratio:.2f}, fail at "
        f">= {t.latency_ratio:.2f}); Mann-Whitney one-sided p = {p:.3g} (alpha {t.alpha:.2g}); "
        f"shift {figures['hodges_lehmann_ms']:+.1f} ms, P(canary slower) {figures['cles']:.2f}"
    )
    significant = p < t.alpha
    if significant and ratio >= t.latency_critical_ratio:
        return Metric("latency", "fail", f"canary much slower: {text}", True, figures)
    if significant and ratio >= t.latency_ratio:
        return Metric("latency", "fail", f"canary slower: {text}", figures=figures)
    return Metric("latency", "pass", text, figures=figures)


def hodges_lehmann(a: Sequence[float], b: Sequence[float]) -> float:
    """Median of all pairwise differences a_i - b_j: the shift estimate that goes with U."""
    import numpy as np

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size * y.size > 4_000_000:  # bound memory: thin both samples evenly
        step = math.ceil(math.sqrt(x.size * y.size / 4_000_000))
        x, y = np.sort(x)[::step], np.sort(y)[::step]
    return float(np.median(np.subtract.outer(x, y)))


def _pct(samples: Sequence[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def judge_latency_budget(obs: Observations, t: Thresholds) -> Metric:
    """Optional absolute p95/p99 budgets on the canary (p99 only with enough samples)."""
    can = latencies(obs, "canary")
    if t.p95_ms is None and t.p99_ms is None:
        return Metric("latency-budget", "nodata", "no absolute budget configured")
    if len(can) < t.min_samples:
        return Metric("latency-budget", "nodata", f"too few valid canary samples ({len(can)})")
    checks: list[tuple[str, float, float]] = []
    notes: list[str] = []
    if t.p95_ms is not None:
        checks.append(("p95", _pct(can, 95), t.p95_ms))
    if t.p99_ms is not None:
        if len(can) >= t.p99_min_samples:
            checks.append(("p99", _pct(can, 99), t.p99_ms))
        else:
            notes.append(f"p99 not judged below {t.p99_min_samples} samples ({len(can)})")
    if not checks:
        return Metric("latency-budget", "nodata", "; ".join(notes))
    figures = {f"{n}_ms": round(v, 3) for n, v, _ in checks} | {
        f"{n}_budget_ms": b for n, _, b in checks
    }
    text = ", ".join(f"{n} {v:.1f} ms (budget {b:g})" for n, v, b in checks)
    text += "".join(f"; {n}" for n in notes)
    if any(v > b for _, v, b in checks):
        return Metric("latency-budget", "fail", f"over budget: {text}", True, figures)
    return Metric("latency-budget", "pass", text, figures=figures)


def judge_errors(obs: Observations, t: Thresholds) -> Metric:
    """Non-2xx and timeouts per arm: Fisher's exact test (one-sided) and a success-rate floor."""
    from scipy.stats import fisher_exact

    counts = {}
    for arm in ARMS:
        measured = [s for s in obs.measured(arm) if s.outcome != "transport"]
        errors = sum(1 for s in measured if not s.ok)
        counts[arm] = (errors, len(measured) - errors)
    (ce, co), (be, bo) = counts["canary"], counts["baseline"]
    n_c, n_b = ce + co, be + bo
    if min(n_c, n_b) < t.min_samples:
        return Metric(
            "errors",
            "nodata",
            f"too few measured requests (baseline {n_b}, canary {n_c}; need {t.min_samples})",
        )
    result = fisher_exact([[ce, co], [be, bo]], alternative="greater")
    p = float(result.pvalue)
    success = co / n_c
    kinds = Counter(
        f"HTTP {s.status}" if s.outcome == "http" else s.outcome
        for s in obs.measured("canary")
        if not s.ok and s.outcome != "transport"
    )
    figures = {
        "canary_errors": ce,
        "canary_requests": n_c,
        "baseline_errors": be,
        "baseline_requests": n_b,
        "canary_success_rate": round(success, 6),
        "p_value": p,
        "canary_error_kinds": dict(kinds),
    }
    text = (
        f"canary {ce}/{n_c} errors, baseline {be}/{n_b}; Fisher one-sided p = {p:.3g} "
        f"(alpha {t.alpha:.2g}); canary success {success:.1%} (at least "
        f"{t.min_success_rate:.0%})"
    )
    if kinds:
        text += " [" + ", ".join(f"{k} x{n}" for k, n in kinds.most_common()) + "]"
    if p < t.alpha or success < t.min_success_rate:
        return Metric("errors", "fail", text, figures=figures)
    return Metric("errors", "pass", text, figures=figures)


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


# ---------------------------------------------------------------------------------------------
# The run's verdict.


def inconclusive_reasons(obs: Observations, t: Thresholds) -> list[str]:
    reasons = list(obs.environment)
    if obs.arm_failure["baseline"]:
        reasons.append(f"baseline arm unusable: {obs.arm_failure['baseline']}")
    if obs.arm_failure["canary"]:
        return reasons
    for arm in ARMS:
        if obs.consecutive_errors[arm] >= t.max_consecutive_errors:
            reasons.append(
                f"{obs.consecutive_errors[arm]} consecutive transport errors on the {arm} arm"
            )
    answered = first_answers(obs, "canary")
    unanswered = [i.id for i in obs.items.values() if i.golden is not None and i.id not in answered]
    if unanswered and obs.samples:
        reasons.append(f"golden cases never answered by the canary: {', '.join(unanswered)}")
    base_valid = len(latencies(obs, "baseline"))
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
    reasons = inconclusive_reasons(obs, t)
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
