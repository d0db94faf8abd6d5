"""The canary's latency and error metrics: scipy's tests on what each arm answered. Pure.

Latency: one-sided Mann-Whitney U (canary slower) at ``confidence``, and an effect size (the
median ratio); optional absolute p95/p99 budgets on the canary. Errors: Fisher's exact test on
the error counts, and a floor on the canary's success rate. scipy and numpy are imported inside
the functions that need them: only a canary that is judged pays for them.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rolloutgate.canary.metrics import Metric
from rolloutgate.canary.observations import ARMS, Observations, latencies
from rolloutgate.canary.thresholds import Thresholds
from rolloutgate.checks.latency import percentile


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
        "p95_baseline_ms": round(percentile(base, 95), 3),
        "p95_canary_ms": round(percentile(can, 95), 3),
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
        checks.append(("p95", percentile(can, 95), t.p95_ms))
    if t.p99_ms is not None:
        if len(can) >= t.p99_min_samples:
            checks.append(("p99", percentile(can, 99), t.p99_ms))
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
    """The arms' own errors (unexpected statuses, timeouts, connections broken twice): Fisher's
    exact test (one-sided) and a success-rate floor; critical when the traffic stopped because
    the canary failed a significant streak of requests the baseline answered."""
    from scipy.stats import fisher_exact

    counts = {}
    for arm in ARMS:
        measured = [s for s in obs.measured(arm) if s.outcome != "transport"]
        errors = sum(1 for s in measured if not s.ok)
        counts[arm] = (errors, len(measured) - errors)
    (ce, co), (be, bo) = counts["canary"], counts["baseline"]
    n_c, n_b = ce + co, be + bo
    if obs.canary_failing:
        # The traffic stopped on a streak long enough to be significant on its own
        # (Thresholds.failing_streak): a candidate that hangs or fails every request.
        n = t.failing_streak
        return Metric(
            "errors",
            "fail",
            f"the canary stopped answering: {obs.canary_failing}; Fisher one-sided p of "
            f"{n} failures against none = {1 / math.comb(2 * n, n):.3g} (alpha {t.alpha:.2g})",
            critical=True,
            figures={"canary_errors": ce, "canary_requests": n_c, "baseline_errors": be},
        )
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
