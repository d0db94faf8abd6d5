"""The canary's statistics and its latency and error metrics. Pure.

Every request goes to both arms, so the data is paired, and the tests are paired ones:

- **latency**: the ratio canary/baseline of typical latencies, as a log-ratio with a
  confidence interval (``RatioEstimate``). Judged on what the servers measured themselves when
  they export it (``pod_level_ratio``: each pod's mean duration from its own Prometheus metric,
  read before and after the traffic), else on the paired client-side latencies
  (``paired_log_ratio``: log(canary) - log(baseline) of the same request). Either way the pod
  is a unit of variance: two pods of the same image differ by a few per cent (CPU placement,
  caches, neighbours), and that difference does not shrink with more requests. Its size is
  calibrated from A/A runs (``Thresholds.server_pod_sd``, ``client_pod_sd``) and moderated
  with what the run itself shows between its pods (Smyth's empirical-Bayes variance, as limma
  does), so three pods per arm are enough and one pod is not judged as if it were many.
- **accuracy**: exact McNemar test on labelled correctness (only the rows the arms disagree on
  carry information) with a conditional Clopper-Pearson interval on the accuracy drop.
- **errors**: Fisher's exact test on the error counts, and a floor on the success rate.

scipy and numpy are imported inside the functions that need them: only a canary that is judged
pays for them.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from rolloutgate.canary.metrics import Metric
from rolloutgate.canary.observations import ARMS, Arm, Observations, Sample, latencies
from rolloutgate.canary.thresholds import Thresholds
from rolloutgate.checks.latency import percentile

# Power the sample size is computed for (the target: 0.9 at the ratio to detect).
POWER = 0.9


@dataclass(frozen=True)
class RatioEstimate:
    """Canary/baseline latency ratio with a one-sided test (canary slower) and an interval.

    ``low``/``high``: the interval at ``confidence`` on each side (so ``low > 1`` exactly when
    ``p_value < 1 - confidence``). ``se`` is the log-ratio's standard error, ``pod_sd`` the
    pod-to-pod standard deviation used (calibrated prior moderated by the run's own pods)."""

    ratio: float
    low: float
    high: float
    p_value: float
    se: float
    df: float
    n: int
    pods: tuple[int, int]  # (baseline, canary)
    pod_sd: float

    def as_figures(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def moderated_variance(
    observed: float, observed_df: int, prior_sd: float, prior_df: float
) -> tuple[float, float]:
    """Smyth's moderated variance: the run's own estimate shrunk towards the calibrated prior,
    weighted by their degrees of freedom. Returns (variance, degrees of freedom)."""
    total_df = prior_df + observed_df
    if total_df <= 0:
        return 0.0, 0.0
    return (prior_df * prior_sd**2 + observed_df * observed) / total_df, total_df


def _estimate(
    log_ratio: float,
    var: float,
    df: float,
    n: int,
    pods: tuple[int, int],
    pod_sd: float,
    confidence: float,
) -> RatioEstimate:
    from scipy.stats import t as student  # type: ignore[import-untyped]

    se = math.sqrt(max(var, 0.0))
    if se == 0.0:
        p = 0.0 if log_ratio > 0 else 1.0
        q = 0.0
    else:
        p = float(student.sf(log_ratio / se, df))
        q = float(student.ppf(confidence, df))
    return RatioEstimate(
        ratio=math.exp(log_ratio),
        low=math.exp(log_ratio - q * se),
        high=math.exp(log_ratio + q * se),
        p_value=p,
        se=se,
        df=df,
        n=n,
        pods=pods,
        pod_sd=pod_sd,
    )


def paired_log_ratio(
    baseline_ms: Sequence[float],
    canary_ms: Sequence[float],
    baseline_pods: Sequence[str],
    canary_pods: Sequence[str],
    *,
    prior_pod_sd: float,
    prior_df: float,
    confidence: float,
) -> RatioEstimate:
    """The latency ratio from paired requests: element k of each sequence is one request sent
    to both arms (its latency and the pod that answered it on each arm).

    Var(mean log-ratio) = s_d^2 / n  (request to request)
                        + tau^2 * (sum of squared pod shares, both arms)  (pod to pod),
    tau^2 moderated between the calibrated prior and the spread of the pods' own mean
    log-ratios beyond what their request counts explain; degrees of freedom by
    Welch-Satterthwaite."""
    import numpy as np

    b = np.log(np.asarray(baseline_ms, dtype=float))
    c = np.log(np.asarray(canary_ms, dtype=float))
    d = c - b
    n = int(d.size)
    if n < 2:
        raise ValueError(f"a paired ratio needs at least 2 pairs, got {n}")
    mean = float(d.mean())
    s2 = float(d.var(ddof=1))
    observed: list[float] = []
    observed_df = 0
    share_sq = 0.0
    pods: list[int] = []
    for sign, labels in ((-1.0, baseline_pods), (1.0, canary_pods)):
        by_pod = Counter(labels)
        pods.append(len(by_pod))
        share_sq += sum((k / n) ** 2 for k in by_pod.values())
        if len(by_pod) < 2:
            continue
        arr = np.asarray(labels)
        effects = [sign * (float(d[arr == p].mean()) - mean) for p in by_pod]
        # What the pods' means would scatter by with no pod effect at all: s_d^2 / n_p.
        noise = s2 * float(np.mean([1.0 / k for k in by_pod.values()]))
        spread = float(np.sum(np.square(effects))) / (len(by_pod) - 1)
        observed.append(max(0.0, spread - noise) * (len(by_pod) - 1))
        observed_df += len(by_pod) - 1
    pod_var, pod_df = moderated_variance(
        sum(observed) / observed_df if observed_df else 0.0, observed_df, prior_pod_sd, prior_df
    )
    request_part, pod_part = s2 / n, pod_var * share_sq
    var = request_part + pod_part
    df_parts = request_part**2 / (n - 1) + (pod_part**2 / pod_df if pod_df > 0 else 0.0)
    df = var**2 / df_parts if df_parts > 0 else float(n - 1)
    return _estimate(mean, var, df, n, (pods[0], pods[1]), math.sqrt(pod_var), confidence)


def pod_level_ratio(
    baseline_levels: Sequence[float],
    canary_levels: Sequence[float],
    *,
    prior_pod_sd: float,
    prior_df: float,
    confidence: float,
    n: int = 0,
) -> RatioEstimate:
    """The latency ratio from one level per pod (a pod's mean duration as its server measured
    it): the difference of the arms' mean log levels, with the pods' spread within each arm
    (pooled, moderated by the calibrated prior) as its variance."""
    import numpy as np

    b = np.log(np.asarray(baseline_levels, dtype=float))
    c = np.log(np.asarray(canary_levels, dtype=float))
    if b.size == 0 or c.size == 0:
        raise ValueError("a pod-level ratio needs at least one pod per arm")
    squares = float(np.sum(np.square(b - b.mean())) + np.sum(np.square(c - c.mean())))
    observed_df = int(b.size - 1 + c.size - 1)
    observed = squares / observed_df if observed_df else 0.0
    var, df = moderated_variance(observed, observed_df, prior_pod_sd, prior_df)
    log_ratio = float(c.mean() - b.mean())
    se2 = var * (1.0 / b.size + 1.0 / c.size)
    return _estimate(log_ratio, se2, df, n, (int(b.size), int(c.size)), math.sqrt(var), confidence)


def labelled_rows_needed(churn: float, drop: float, *, alpha: float) -> float:
    """Labelled rows for the exact McNemar test to find an accuracy ``drop`` with power
    ``POWER`` at ``alpha`` (one-sided; Connor's normal approximation), when each row is newly
    right with probability ``churn`` and newly wrong with ``churn + drop``."""
    from scipy.stats import norm

    q = 2 * churn + drop  # the probability that the arms disagree on a row
    z_a, z_b = float(norm.ppf(1 - alpha)), float(norm.ppf(POWER))
    return (z_a * math.sqrt(q) + z_b * math.sqrt(q - drop**2)) ** 2 / drop**2


def pairs_needed(sd: float, pod_var_share: float, *, ratio: float, alpha: float) -> float:
    """Pairs needed to detect a slow-down of ``ratio`` with power ``POWER`` at ``alpha``
    (one-sided, normal approximation), given the paired log-ratio's per-request standard
    deviation and the pod part of the variance (which more requests do not shrink).
    ``math.inf`` when the pods alone make it impossible: more pods per arm are needed."""
    from scipy.stats import norm

    z = float(norm.ppf(1 - alpha) + norm.ppf(POWER))
    room = (math.log(ratio) / z) ** 2 - pod_var_share
    if room <= 0:
        return math.inf
    return max(2.0, sd**2 / room)


@dataclass(frozen=True)
class McNemar:
    """Labelled correctness of both arms on the same rows.

    ``worse``: rows the baseline got right and the canary wrong; ``better``: the reverse.
    ``p_worse``: exact one-sided McNemar (binomial on the discordant rows) that the canary is
    less accurate; ``drop_low``/``drop_high``: the accuracy drop's interval at ``confidence``
    on each side, conditional on the discordant count (Clopper-Pearson)."""

    rows: int
    worse: int
    better: int
    drop: float
    drop_low: float
    drop_high: float
    p_worse: float


def mcnemar(rows: int, worse: int, better: int, *, confidence: float) -> McNemar:
    from scipy.stats import binomtest

    discordant = worse + better
    if rows <= 0:
        raise ValueError("McNemar needs at least one labelled row")
    if discordant == 0:
        return McNemar(rows, 0, 0, 0.0, 0.0, 0.0, 1.0)
    test = binomtest(worse, discordant, 0.5, alternative="greater")
    # Two-sided level 2c-1 puts 1-c in each tail: the one-sided bounds at ``confidence``.
    # (The interval of a one-sided test object is one-sided: ask a two-sided one.)
    ci = binomtest(worse, discordant, 0.5).proportion_ci(
        confidence_level=2 * confidence - 1, method="exact"
    )
    scale = discordant / rows
    return McNemar(
        rows,
        worse,
        better,
        (worse - better) / rows,
        scale * (2 * ci.low - 1),
        scale * (2 * ci.high - 1),
        float(test.pvalue),
    )


# ---------------------------------------------------------------------------------------------
# The metrics.


def paired_latencies(obs: Observations, *, warmup: bool = False) -> list[tuple[Sample, Sample]]:
    """(baseline, canary) samples of the same planned request: the k-th measured (or warm-up)
    answer of an item on one arm with the k-th on the other (each request goes to both)."""
    seen: dict[Arm, dict[str, list[Sample]]] = {arm: {} for arm in ARMS}
    for arm in ARMS:
        for s in obs.samples:
            if s.arm == arm and s.warmup == warmup and s.outcome != "transport":
                seen[arm].setdefault(s.item, []).append(s)
    pairs: list[tuple[Sample, Sample]] = []
    for item, base in seen["baseline"].items():
        for b, c in zip(base, seen["canary"].get(item, []), strict=False):
            if b.ok and c.ok:
                pairs.append((b, c))
    return pairs


def sample_size(obs: Observations, t: Thresholds, pods: int, requests: int) -> str:
    """What the warm-up says about the measured traffic to come: the paired log-latency's
    standard deviation and the pairs it takes to find a ``latency_ratio`` slow-down with power
    ``POWER`` (printed before the traffic; a server-side duration metric needs fewer)."""
    pairs = paired_latencies(obs, warmup=True)
    if len(pairs) < 3:
        return f"{len(pairs)} warm-up pairs answered: no sample size estimated"
    sd = statistics.stdev(math.log(c.latency_ms / b.latency_ms) for b, c in pairs)
    needed = pairs_needed(
        sd, t.client_pod_sd**2 * 2 / max(1, pods), ratio=t.latency_ratio, alpha=t.alpha
    )
    size = (
        "more pods per arm (the pods alone vary that much)"
        if math.isinf(needed)
        else (f"{math.ceil(needed)} pairs")
    )
    return (
        f"warm-up: paired log-latency sd {sd:.3f} over {len(pairs)} pairs; to find a "
        f"{t.latency_ratio:g}x slow-down client-side with power {POWER:g} at alpha "
        f"{t.alpha:.2g} with {pods} pod(s) per arm takes {size}; sending {requests}"
    )


def judge_latency(obs: Observations, t: Thresholds) -> Metric:
    """Canary slower than baseline: the ratio's one-sided test at ``confidence`` AND an
    estimated ratio of at least sqrt(latency_ratio) (half the slow-down to detect, on the log
    scale: a smaller one is reported, not failed)."""
    figures: dict[str, Any] = {}
    # Client-side, always (when enough pairs): judged when the servers measure nothing, else
    # reported beside theirs (with the path's share: how much of it is not the model's).
    pairs = paired_latencies(obs)
    shares = path_shares(obs)
    client: RatioEstimate | None = None
    if len(pairs) >= max(2, t.min_samples):
        client = paired_log_ratio(
            [b.latency_ms for b, _ in pairs],
            [c.latency_ms for _, c in pairs],
            [b.pod for b, _ in pairs],
            [c.pod for _, c in pairs],
            prior_pod_sd=t.client_pod_sd,
            prior_df=t.pod_sd_df,
            confidence=t.confidence,
        )
        figures["client"] = {
            "median_baseline_ms": round(_geomean([b.latency_ms for b, _ in pairs]), 4),
            "median_canary_ms": round(_geomean([c.latency_ms for _, c in pairs]), 4),
            "paired_log_sd": round(
                float(statistics.stdev(math.log(c.latency_ms / b.latency_ms) for b, c in pairs)),
                4,
            ),
            "path_share": {arm: round(v, 4) for arm, v in shares.items()},
            **client.as_figures(),
        }
    if all(obs.server.get(arm) for arm in ARMS):
        levels = {
            arm: [p.sum_s / p.count * 1000 for p in obs.server[arm] if p.count > 0] for arm in ARMS
        }
        counts = {arm: int(sum(p.count for p in obs.server[arm])) for arm in ARMS}
        if min(counts.values()) < t.min_samples or not all(levels.values()):
            return Metric(
                "latency",
                "nodata",
                f"too few requests in the servers' {obs.server_metric} (baseline "
                f"{counts['baseline']}, canary {counts['canary']}; need {t.min_samples} per arm)",
                figures=figures,
            )
        est = pod_level_ratio(
            levels["baseline"],
            levels["canary"],
            prior_pod_sd=t.server_pod_sd,
            prior_df=t.pod_sd_df,
            confidence=t.confidence,
            n=min(counts.values()),
        )
        source = f"server-side {obs.server_metric}"
        typical = {arm: _geomean(levels[arm]) for arm in ARMS}
        figures["server_ms_by_pod"] = {
            arm: {p.pod: round(p.sum_s / p.count * 1000, 4) for p in obs.server[arm] if p.count}
            for arm in ARMS
        }
    else:
        if client is None:
            return Metric(
                "latency",
                "nodata",
                f"too few requests answered by both arms ({len(pairs)}; need {t.min_samples})",
            )
        if shares and max(shares.values()) > t.max_path_share:
            arm, share = max(shares.items(), key=lambda kv: kv[1])
            return Metric(
                "latency",
                "nodata",
                f"not judged: the path to the servers (a request that does no model work) takes "
                f"{share:.0%} of a prediction's time on the {arm} arm (at most "
                f"{t.max_path_share:.0%}); the servers export no duration metric "
                f"(canary.latency_metric) to judge instead",
                figures=figures,
            )
        est = client
        source = "paired client-side latencies"
        typical = {arm: figures["client"][f"median_{arm}_ms"] for arm in ARMS}
    if shares:
        figures["path_share"] = {arm: round(v, 4) for arm, v in shares.items()}
    floor = math.sqrt(t.latency_ratio)
    figures |= {
        "source": source,
        "median_baseline_ms": round(typical["baseline"], 4),
        "median_canary_ms": round(typical["canary"], 4),
        "median_ratio": round(est.ratio, 4),
        "ratio_low": round(est.low, 4),
        "ratio_high": round(est.high, 4),
        "p_value": est.p_value,
        "alpha": round(t.alpha, 6),
        "threshold_ratio": t.latency_ratio,
        "fail_from_ratio": round(floor, 4),
        "critical_ratio": t.latency_critical_ratio,
        "estimate": est.as_figures(),
    }
    can = latencies(obs, "canary")
    base = latencies(obs, "baseline")
    if can and base:
        figures["p95_baseline_ms"] = round(percentile(base, 95), 3)
        figures["p95_canary_ms"] = round(percentile(can, 95), 3)
    text = (
        f"{source}: canary {typical['canary']:.3g} ms vs baseline {typical['baseline']:.3g} ms, "
        f"ratio {est.ratio:.3f} ({t.confidence:.0%} bounds {est.low:.3f}-{est.high:.3f}), "
        f"one-sided p = {est.p_value:.3g} (alpha {t.alpha:.2g}); pods {est.pods[0]}+"
        f"{est.pods[1]}, pod sd {est.pod_sd:.3f}; fails from ratio {floor:.3f} when significant"
    )
    decision = latency_decision(est, t)
    if decision == "critical":
        return Metric("latency", "fail", f"canary much slower: {text}", True, figures)
    if decision == "fail":
        return Metric("latency", "fail", f"canary slower: {text}", figures=figures)
    return Metric("latency", "pass", text, figures=figures)


def latency_decision(est: RatioEstimate, t: Thresholds) -> str:
    """``critical``, ``fail`` or ``pass``: significantly slower (one-sided p < alpha) and by at
    least sqrt(latency_ratio) fails; by latency_critical_ratio is critical. (The simulation in
    bench/canary.py calls this very rule.)"""
    if est.p_value >= t.alpha or est.ratio < math.sqrt(t.latency_ratio):
        return "pass"
    return "critical" if est.ratio >= t.latency_critical_ratio else "fail"


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def path_shares(obs: Observations) -> dict[Arm, float]:
    """Per arm, the median time of a request that does no model work (the path: relay,
    port-forward, API server, kubelet, the server's HTTP stack) over the median prediction."""
    shares: dict[Arm, float] = {}
    for arm in ARMS:
        path, full = obs.path_ms.get(arm) or [], latencies(obs, arm)
        if path and full:
            shares[arm] = statistics.median(path) / max(statistics.median(full), 1e-9)
    return shares


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
