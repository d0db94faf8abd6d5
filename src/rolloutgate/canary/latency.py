"""The canary's latency metrics: the paired ratio canary/baseline (on what the servers measured
when they export it: time-paired windows of their duration metric, or each pod's totals when
there are too few windows; else on the paired client-side latencies, unless the path to the
servers dominates), the optional absolute budgets, and the sample size the warm-up asks for. The
statistics themselves are ``stats``'."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rolloutgate.canary.metrics import Metric
from rolloutgate.canary.observations import (
    ARMS,
    Arm,
    Observations,
    Sample,
    ServerRead,
    latencies,
)
from rolloutgate.canary.stats import (
    POWER,
    RatioEstimate,
    Window,
    paired_log_ratio,
    pairs_needed,
    pod_level_ratio,
    pod_variance_two_way,
    ratio_power,
    se_for_power,
    trimmed_windows_se,
    window_ratio,
    windows_needed,
)
from rolloutgate.canary.thresholds import Thresholds
from rolloutgate.checks.latency import percentile


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


# A window holds at least this many requests on each arm (shorter ones are joined to the next).
# At ~10 requests a second per arm, a request ending just before or after a sweep moves a
# window's count by one: in the recorded runs windows of >= 5 requests scattered by sd 0.45
# (log-ratio), of >= 10 by 0.3, of >= 20 by 0.23 (but only ~8 of them, few to trim).
MIN_WINDOW_REQUESTS = 10
# Windows judged at least (fewer: each pod's totals over the whole traffic are judged instead).
MIN_WINDOWS = 6
# The share of windows cut from each end before averaging their log-ratios.
WINDOW_TRIM = 0.2
# What the power printed before the traffic assumes (``server_power``), measured on our busy
# 2-core node (76 recorded runs at load average 4-35, 200 requests per arm): the windows'
# log-ratios scattered by 0.214 (winsorized sd, median; quartiles 0.16-0.29), and a window
# held 15 requests per arm (13 windows of 200 requests: short ones are joined).
WINDOW_SD = 0.21
REQUESTS_PER_WINDOW = 15
# The power wanted at 1.25x (issue 17's target; ``POWER`` is the one at ``latency_ratio``): the
# default ``canary.requests`` is what it takes at ``WINDOW_SD``.
BIG_SLOWDOWN_POWER = 0.99


def server_windows(reads: Sequence[ServerRead]) -> list[Window]:
    """Both arms' requests and server seconds between consecutive sweeps of the pods' metric,
    summed over each arm's pods: the same intervals on both arms. A pod missing from a sweep
    (its read failed) adds its requests to the window of its next read; a pod whose counters
    went down (restarted) adds nothing to that window. Windows with fewer than
    ``MIN_WINDOW_REQUESTS`` on either arm are joined to the next one."""
    last: dict[tuple[Arm, str], ServerRead] = {}
    windows: list[Window] = []
    pending = {arm: [0.0, 0.0] for arm in ARMS}
    by_sweep: dict[int, list[ServerRead]] = {}
    for r in reads:
        by_sweep.setdefault(r.sweep, []).append(r)
    for sweep in sorted(by_sweep):
        for r in by_sweep[sweep]:
            before = last.get((r.arm, r.pod))
            last[(r.arm, r.pod)] = r
            if before is not None and r.count >= before.count and r.sum_s >= before.sum_s:
                pending[r.arm][0] += r.count - before.count
                pending[r.arm][1] += r.sum_s - before.sum_s
        if all(c >= MIN_WINDOW_REQUESTS and t > 0 for c, t in pending.values()):
            b, c = pending["baseline"], pending["canary"]
            windows.append(Window(b[0], b[1], c[0], c[1]))
            pending = {arm: [0.0, 0.0] for arm in ARMS}
    return windows


def lasting_pod_variance(reads: Sequence[ServerRead]) -> tuple[float, int]:
    """How much each arm's pods keep a level of their own beyond their windows' scatter, pooled
    over both arms: (variance, degrees of freedom). Per arm, the sweep-to-sweep windows in which
    every pod of the arm served at least 2 requests; per pod and window the log of its mean
    server time; a two-way analysis of variance of those (window + pod + noise, each cell
    weighted equally): (mean square between pods - residual mean square) / windows, on pods - 1
    degrees of freedom (``stats.pod_variance_two_way``; 0 when negative).

    Not each pod's deviation from its arm's level in the same window: that level holds the pod
    itself, which takes 1/pods of the pod's noise out of its deviations but none out of the
    pods' spread, so that pods with no level of their own seemed to keep one (3 pods: the
    spread 1.5 times what the deviations explained; a lasting sd 0.081 measured on the recorded
    runs, 0.056 on the same runs with the pods' labels shuffled in every window, where the
    analysis of variance finds none: docs/canary.md, "What a pod's lasting level was")."""
    by: dict[tuple[Arm, str], dict[int, ServerRead]] = {}
    for r in reads:
        by.setdefault((r.arm, r.pod), {})[r.sweep] = r
    sweeps = sorted({r.sweep for r in reads})
    excess, df = 0.0, 0
    for arm in ARMS:
        pods = [v for k, v in sorted(by.items(), key=lambda kv: kv[0]) if k[0] == arm]
        if len(pods) < 2:
            continue
        cells: list[list[float]] = []  # [window][pod]: log mean server time
        for a, b in itertools.pairwise(sweeps):
            row = []
            for v in pods:
                if a in v and b in v:
                    n, s = v[b].count - v[a].count, v[b].sum_s - v[a].sum_s
                    if n >= 2 and s > 0:
                        row.append(math.log(s / n))
            if len(row) == len(pods):
                cells.append(row)
        if len(cells) < 4:
            continue
        excess += pod_variance_two_way(cells) * (len(pods) - 1)
        df += len(pods) - 1
    return (max(0.0, excess / df) if df else 0.0), df


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


def server_power(t: Thresholds, requests: int, max_duration: float = 0.0) -> str:
    """What ``requests`` per arm can find on time-paired windows of the servers' metric, said
    before the traffic: the power to find the ``latency_ratio`` slow-down and 1.25x, and the
    requests the ``POWER`` target takes, at the window spread our busy node showed
    (``WINDOW_SD``; a quieter node's windows scatter less: the run reports its own after)."""
    windows = max(MIN_WINDOWS, round(requests / REQUESTS_PER_WINDOW))
    se, df = trimmed_windows_se(WINDOW_SD, windows, trim=WINDOW_TRIM)
    targets = ((t.latency_ratio, POWER), (1.25, BIG_SLOWDOWN_POWER))
    powers = ", ".join(
        f"{ratio_power(r, se, df, alpha=t.alpha):.2f} to find {r:g}x" for r, _ in targets
    )
    needed = {
        (r, power): REQUESTS_PER_WINDOW
        * windows_needed(WINDOW_SD, ratio=r, alpha=t.alpha, trim=WINDOW_TRIM, power=power)
        for r, power in targets
    }
    needs = ", ".join(f"{power:g} at {r:g}x ~{n}" for (r, power), n in needed.items())
    return (
        f"server-side: {requests} requests per arm make ~{windows} time-paired windows; at a "
        f"busy node's window spread ({WINDOW_SD:g}) the latency has power {powers}; requests "
        f"per arm for power {needs} (canary.requests)"
    ) + (
        f"; more follow while this run's own scatter leaves less than {POWER:g} at "
        f"{t.latency_ratio:g}x, within canary.max_duration {max_duration:g} s"
        if max_duration > 0
        else ""
    )


def latency_power(est: RatioEstimate, t: Thresholds) -> dict[str, float]:
    """The power this run's interval had to find the ``latency_ratio`` slow-down and 1.25x."""
    return {
        f"{r:g}": round(ratio_power(r, est.se, est.df, alpha=t.alpha), 3)
        for r in (t.latency_ratio, 1.25)
    }


def requests_for_power(est: RatioEstimate, t: Thresholds, sent: int, windows: int) -> float:
    """Measured requests per arm, in all, that the scatter of a run so far (``sent`` requests
    per arm in ``windows`` time-paired windows, estimate ``est``) says the latency needs for
    power ``POWER`` to find ``latency_ratio``; infinite when the pods' own levels alone leave
    too wide an interval (more pods per arm, not more requests, would help). The estimate's
    variance is the pods' part, pod_sd^2 (1/pods_b + 1/pods_c), which no number of requests
    shrinks, and the windows' part, as Yuen's trimmed mean of that many windows scattering as
    these do would have it (``stats.trimmed_windows_se``: with a fifth cut from each end rounded
    down, 19 windows keep 13 and 58 keep 36, so the part shrinks less than 1/requests: sized
    as 1/requests, four real runs reached power 0.84-0.89, not 0.9); on the look's degrees of
    freedom, which the extended run is judged on (``windowed_estimate``), at the requests per
    window so far, plus one window. Only the scatter decides, never the ratio."""
    pod_part = est.pod_sd**2 * (1 / est.pods[0] + 1 / est.pods[1])
    target = se_for_power(t.latency_ratio, est.df, alpha=t.alpha)
    if target**2 <= pod_part:
        return math.inf
    now, _ = trimmed_windows_se(1.0, windows, trim=WINDOW_TRIM)
    spread = math.sqrt(max(est.se**2 - pod_part, 0.0)) / now  # the windows' own scatter
    k = windows
    while trimmed_windows_se(spread, k, trim=WINDOW_TRIM)[0] ** 2 + pod_part > target**2:
        k += 1
    return sent / windows * (k + 1) if k > windows else float(sent)


# An extension of fewer requests per arm is rounded up to this (a window or two more).
MIN_EXTENSION = 50


@dataclass(frozen=True)
class Extension:
    """What a look at a run's latency so far asks of its traffic."""

    power: float  # to find latency_ratio, as the interval stands
    needed: float  # measured requests per arm in all for POWER (inf: the pods alone prevent it)
    more: int  # to send now: 0 when the power is there, cannot be had, or has no room

    @property
    def reached(self) -> bool:
        return self.power >= POWER


def extension(
    est: RatioEstimate, t: Thresholds, *, sent: int, windows: int, room: int
) -> Extension:
    """Whether and how far to extend a run that has sent ``sent`` measured requests per arm
    (in ``windows`` windows) and has room for ``room`` more: what its scatter asks
    (``requests_for_power``; at least ``MIN_EXTENSION``), once: the run is then judged with
    the interval's variance of this look (``windowed_estimate``'s ``look``), so that its size,
    not its test, depends on it.
    ``measure.extend`` and bench/canary.py's simulation call this."""
    power = ratio_power(t.latency_ratio, est.se, est.df, alpha=t.alpha)
    if power >= POWER:
        return Extension(power, sent, 0)
    needed = requests_for_power(est, t, sent, windows)
    if math.isinf(needed):
        return Extension(power, needed, 0)
    more = min(max(MIN_EXTENSION, math.ceil(needed) - sent), room)
    return Extension(power, needed, more if more >= MIN_EXTENSION else 0)


def windowed_estimate(
    reads: Sequence[ServerRead],
    t: Thresholds,
    pods: tuple[int, int],
    *,
    look: int | None = None,
    prior_pod_sd: float | None = None,
) -> tuple[RatioEstimate, int]:
    """The latency ratio on the time-paired windows of ``reads`` (``stats.window_ratio``), and
    how many windows set its variance. ``look``: the last sweep a run extended its traffic on
    (``measure.extend``): the windows up to it set the windows' variance and the pods' lasting
    level, all windows the estimate (Stein's two-stage test; ``window_ratio``); fewer than
    ``MIN_WINDOWS`` there, all windows set both. ``prior_pod_sd``: the calibration
    (``t.window_pod_sd`` unless given: the simulation tries others)."""
    windows = server_windows(reads)
    first_reads = [r for r in reads if look is None or r.sweep <= look]
    first = server_windows(first_reads)
    if look is None or len(first) < MIN_WINDOWS:
        first_reads, first = list(reads), windows
    lasting, lasting_df = lasting_pod_variance(first_reads)
    est = window_ratio(
        windows,
        trim=WINDOW_TRIM,
        prior_pod_sd=t.window_pod_sd if prior_pod_sd is None else prior_pod_sd,
        prior_df=t.pod_sd_df,
        pods=pods,
        confidence=t.confidence,
        observed_pod_var=lasting,
        observed_pod_df=lasting_df,
        variance_of=None if first is windows else first,
    )
    return est, len(first)


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
        windows = server_windows(obs.server_reads)
        pods = (len(levels["baseline"]), len(levels["canary"]))
        if len(windows) >= MIN_WINDOWS:
            # Time-paired: a node-wide slow spell lands on both arms of a window and cancels.
            est, first = windowed_estimate(obs.server_reads, t, pods, look=obs.latency_look)
            figures["windows"] = {
                "power": latency_power(est, t),
                "count": len(windows),
                # An extended run's interval is as wide as its first windows' scatter says.
                "variance_from": first,
                "trim": WINDOW_TRIM,
                "log_ratios": [round(w.log_ratio, 4) for w in windows],
                "requests": [[w.baseline_count, w.canary_count] for w in windows],
            }
        else:
            # Too few windows (a report from before they were read): each pod's whole traffic.
            est = pod_level_ratio(
                levels["baseline"],
                levels["canary"],
                prior_pod_sd=t.server_pod_sd,
                prior_df=t.pod_sd_df,
                confidence=t.confidence,
                n=min(counts.values()),
            )
        source = f"server-side {obs.server_metric}" + (
            f", {len(windows)} time-paired windows" if len(windows) >= MIN_WINDOWS else ""
        )
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
