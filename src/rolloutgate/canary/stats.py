"""The canary's statistics. Pure; the metrics judged with them are ``latency``'s, ``errorrate``'s
and ``predictions``'.

Every request goes to both arms, so the data is paired, and the tests are paired ones:

- **latency**: the ratio canary/baseline of typical latencies, as a log-ratio with a
  confidence interval (``RatioEstimate``). Judged on what the servers measured themselves when
  they export it: on time-paired windows (``window_ratio``: the metric read on every pod every
  second during the traffic; per window the canary arm's mean duration over the baseline
  arm's in the same interval, so that the node's load swings, which hit both arms alike,
  cancel; a trimmed mean across windows, so that a stall moves one window, not the estimate),
  or, with too few windows, on each pod's totals (``pod_level_ratio``: each pod's mean
  duration, read before and after the traffic); else on the paired client-side latencies
  (``paired_log_ratio``: log(canary) - log(baseline) of the same request). The pod is a unit
  of variance for the last two: two pods of the same image differ by a few per cent (CPU placement,
  caches, neighbours), and that difference does not shrink with more requests. Its size is
  calibrated from A/A runs (``Thresholds.server_pod_sd``, ``client_pod_sd``) and moderated
  with what the run itself shows between its pods (Smyth's empirical-Bayes variance, as limma
  does), so three pods per arm are enough and one pod is not judged as if it were many.
- **accuracy**: exact McNemar test on labelled correctness (only the rows the arms disagree on
  carry information) with a conditional Clopper-Pearson interval on the accuracy drop.
- **errors** (``errorrate``): Fisher's exact test on the error counts, and a floor on the
  success rate.

scipy and numpy are imported inside the functions that need them: only a canary that is judged
pays for them; a run starts their import in the background while its arms start
(``import_in_background``).
"""

from __future__ import annotations

import importlib
import math
import statistics
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

# The judgement's numerical libraries: ~1 s to import on a quiet 2-core node, several seconds
# at load average 20-30, paid by the first statistic (the warm-up's sample size) between the
# warm-up and the measured traffic, or by the judgement itself.
NUMERICAL = ("numpy", "scipy.stats")


def import_in_background() -> threading.Thread:
    """Start importing ``NUMERICAL`` in a daemon thread, so that the import overlaps the arms'
    rollout (tens of seconds of waiting) instead of delaying the traffic and the verdict. Nothing
    joins it: a statistic that needs a module before it is ready waits on Python's import lock,
    as it would have imported it anyway; a failed import is met again, and raised, there."""

    def load() -> None:
        for name in NUMERICAL:
            try:
                importlib.import_module(name)
            except ImportError:
                return

    thread = threading.Thread(target=load, name="canary-import-numerical", daemon=True)
    thread.start()
    return thread


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


@dataclass(frozen=True)
class Window:
    """What both arms' servers measured over one interval of the traffic (the same interval on
    both): requests and the seconds they took, summed over the arm's pods."""

    baseline_count: float
    baseline_sum_s: float
    canary_count: float
    canary_sum_s: float

    @property
    def log_ratio(self) -> float:
        """log(canary's mean duration / baseline's) over the interval."""
        return math.log(
            (self.canary_sum_s / self.canary_count) / (self.baseline_sum_s / self.baseline_count)
        )


def window_ratio(
    windows: Sequence[Window],
    *,
    trim: float,
    prior_pod_sd: float,
    prior_df: float,
    pods: tuple[int, int],
    confidence: float,
    observed_pod_var: float = 0.0,
    observed_pod_df: int = 0,
    variance_of: Sequence[Window] | None = None,
) -> RatioEstimate:
    """The latency ratio from time-paired windows: per window the log of the canary arm's mean
    server time over the baseline arm's in the same interval, so that what the node does to
    both (load swings, a busy neighbour) cancels; across windows Yuen's trimmed mean (``trim``
    of the windows cut from each end: a stall on one pod moves one window, not the estimate),
    its squared standard error (n-1) s_w^2 / (h (h-1)) from the winsorized windows' variance
    s_w^2, h = n - 2g windows kept, on h - 1 degrees of freedom.

    A pod's own lasting level (what no pairing in time removes) adds its variance divided by
    the pods of each arm: the calibrated ``prior_pod_sd`` moderated with what the run's own
    pods show (``observed_pod_var`` on ``observed_pod_df``, ``lasting_pod_variance``; Smyth's
    empirical Bayes, as ``pod_level_ratio``); degrees of freedom by Welch-Satterthwaite.

    ``variance_of``: the first windows of a run that was extended on their scatter (the pods'
    figures then come from the same first part): the windows' variance is theirs, on their
    degrees of freedom, the estimate all windows' trimmed mean (Stein's two-stage test: the
    size of the second stage depends on the first stage's variance only, so the test keeps its
    level; judged on every window's scatter, a run extended because its first windows scattered
    widely would be judged on a narrower interval than its first look allowed, and the false
    alarms rose from 2.9 % to 3.7 % in bench/canary.py's simulation)."""
    import numpy as np

    d = np.sort(np.asarray([w.log_ratio for w in windows], dtype=float))
    k = int(d.size)
    g = math.floor(trim * k)
    if k - 2 * g < 2:
        raise ValueError(f"a windowed ratio needs at least {2 + 2 * g} windows, got {k}")
    h = k - 2 * g
    trimmed = float(d[g : k - g].mean())
    spread, spread_df = _winsorized_variance(
        windows if variance_of is None else variance_of, trim=trim
    )
    window_part = (k - 1) * spread / (h * (h - 1))
    pod_var, pod_df = moderated_variance(observed_pod_var, observed_pod_df, prior_pod_sd, prior_df)
    pod_part = pod_var * (1.0 / pods[0] + 1.0 / pods[1])
    var = window_part + pod_part
    df_parts = window_part**2 / spread_df + (pod_part**2 / pod_df if pod_df > 0 else 0.0)
    df = var**2 / df_parts if df_parts > 0 else float(spread_df)
    n = int(sum(min(w.baseline_count, w.canary_count) for w in windows))
    return _estimate(trimmed, var, df, n, pods, math.sqrt(pod_var), confidence)


def _winsorized_variance(windows: Sequence[Window], *, trim: float) -> tuple[float, int]:
    """The windows' log-ratios' winsorized variance (``trim`` of them pulled in from each end)
    and its degrees of freedom for Yuen's test (the kept windows - 1)."""
    import numpy as np

    d = np.sort(np.asarray([w.log_ratio for w in windows], dtype=float))
    k = int(d.size)
    g = math.floor(trim * k)
    if k - 2 * g < 2:
        raise ValueError(f"a windowed variance needs at least {2 + 2 * g} windows, got {k}")
    return float(np.clip(d, d[g], d[k - g - 1]).var(ddof=1)), k - 2 * g - 1


def pod_variance_two_way(cells: Sequence[Sequence[float]]) -> float:
    """The variance of the pods' own levels from ``cells[w][k]``, pod k's value in window w
    (every pod in every window), under window + pod + noise: (mean square between pods -
    residual mean square) / windows, each cell weighted equally. Unbiased for independent noise,
    even when cells differ in their noise (their requests); negative when the pods differ less
    than their noise explains (the caller decides what to do with that)."""
    windows, k = len(cells), len(cells[0]) if cells else 0
    if windows < 2 or k < 2 or any(len(row) != k for row in cells):
        raise ValueError(f"a two-way analysis needs >= 2 windows of the same >= 2 pods, got {k}")
    grand = statistics.fmean(x for row in cells for x in row)
    window_means = [statistics.fmean(row) for row in cells]
    pod_means = [statistics.fmean(row[j] for row in cells) for j in range(k)]
    between = windows * sum((m - grand) ** 2 for m in pod_means) / (k - 1)
    residual = sum(
        (cells[w][j] - window_means[w] - pod_means[j] + grand) ** 2
        for w in range(windows)
        for j in range(k)
    ) / ((k - 1) * (windows - 1))
    return (between - residual) / windows


def labelled_rows_needed(churn: float, drop: float, *, alpha: float) -> float:
    """Labelled rows for the exact McNemar test to find an accuracy ``drop`` with power
    ``POWER`` at ``alpha`` (one-sided; Connor's normal approximation), when each row is newly
    right with probability ``churn`` and newly wrong with ``churn + drop``."""
    from scipy.stats import norm

    q = 2 * churn + drop  # the probability that the arms disagree on a row
    z_a, z_b = float(norm.ppf(1 - alpha)), float(norm.ppf(POWER))
    return (z_a * math.sqrt(q) + z_b * math.sqrt(q - drop**2)) ** 2 / drop**2


def ratio_power(ratio: float, se: float, df: float, *, alpha: float) -> float:
    """The probability that a one-sided t test at ``alpha`` of a log-ratio with standard error
    ``se`` on ``df`` degrees of freedom finds a true slow-down of ``ratio`` (noncentral t)."""
    from scipy.stats import nct, t

    if se <= 0:
        return 1.0 if ratio > 1 else 0.0
    return float(nct.sf(t.ppf(1 - alpha, df), df, math.log(ratio) / se))


def se_for_power(ratio: float, df: float, *, alpha: float, power: float = POWER) -> float:
    """The largest standard error of a log-ratio on ``df`` degrees of freedom at which a
    one-sided t test at ``alpha`` finds a true slow-down of ``ratio`` with ``power``
    (``ratio_power`` falls as the error grows: bisection)."""
    low, high = 1e-9, math.log(ratio)
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if ratio_power(ratio, mid, df, alpha=alpha) >= power else (low, mid)
    return low


def trimmed_windows_se(window_sd: float, windows: int, *, trim: float) -> tuple[float, int]:
    """The standard error and degrees of freedom of Yuen's trimmed mean of ``windows``
    log-ratios that scatter by ``window_sd`` (winsorized), as ``window_ratio`` judges them."""
    kept = windows - 2 * math.floor(trim * windows)
    return window_sd * math.sqrt((windows - 1) / (kept * (kept - 1))), kept - 1


def windows_needed(
    window_sd: float, *, ratio: float, alpha: float, trim: float, power: float = POWER
) -> int:
    """Time-paired windows needed to find a slow-down of ``ratio`` with ``power`` at
    ``alpha`` when the windows' log-ratios scatter by ``window_sd`` (winsorized), judged by
    Yuen's trimmed mean (``window_ratio``'s standard error and degrees of freedom)."""
    windows = 4
    while windows < 100_000:
        se, df = trimmed_windows_se(window_sd, windows, trim=trim)
        if ratio_power(ratio, se, df, alpha=alpha) >= power:
            return windows
        # One at a time where a window is a user's default size (a 5 % step overshot 0.99 at
        # 1.25x by 5 windows, 75 requests); faster beyond, where only the order matters.
        windows = windows + 1 if windows < 200 else math.ceil(windows * 1.05)
    return windows


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
