"""The canary's errors metric: the arms' own errors (unexpected statuses, timeouts, broken
connections) by Fisher's exact test and a success-rate floor. scipy is imported inside: only a
canary that is judged pays for it."""

from __future__ import annotations

import math
from collections import Counter

from rolloutgate.canary.metrics import Metric
from rolloutgate.canary.observations import ARMS, Observations
from rolloutgate.canary.thresholds import Thresholds


def judge_errors(obs: Observations, t: Thresholds) -> Metric:
    """The arms' own errors (unexpected statuses, timeouts, connections broken twice): Fisher's
    exact test (one-sided) and a success-rate floor; critical when the traffic stopped because
    the canary failed a significant streak of requests the baseline answered."""
    from scipy.stats import fisher_exact  # type: ignore[import-untyped]

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
