"""The canary judgement's thresholds and their defaults, defined once (CANARY.md gives the
reasons). Its own module, with nothing to import, because the plugin's options are built from
it at every pytest start-up."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Thresholds:
    """Every threshold of the judgement, with its default (CANARY.md gives the reasons)."""

    # A metric judged on samples needs at least this many valid ones per arm (Kayenta: 50).
    min_samples: int = 50
    # Transport errors in a row on one arm (no answer at all): the run cannot measure.
    max_consecutive_errors: int = 4
    # Latency: one-sided Mann-Whitney (canary slower) at this confidence (Kayenta's 0.98)...
    confidence: float = 0.98
    # ...and an effect size: the canary's median over the baseline's at least this.
    latency_ratio: float = 1.10
    # The pod is the unit of the latency's variance; how much pods of one image differ is
    # calibrated from A/A runs on our cluster (docs/canary.md, "Calibration") and moderated
    # with the run's own pods. Server-side on each pod's totals (a run with too few
    # time-paired windows): the standard deviation of the log of a pod's mean duration over a
    # run of the default size (pod effect and sampling noise together): 0.141 on 124 degrees
    # of freedom of counted runs on our busy 2-core node at load average 1-60 (0.03 when it was
    # quiet); a prior below the node's spread false-alarms (0.08 did: 6.7 % of A/A runs)...
    server_pod_sd: float = 0.15
    # ...server-side on time-paired windows (the servers' metric read every
    # canary.server_window): a pod's own lasting level, what pairing in time leaves: none
    # measurable on our node (-0.0018 in variance on 280 degrees of freedom of windowed runs at
    # load average 4-35, 95 % bootstrap bound sd 0.051; A/A runs' ratios scatter less than
    # their windows alone say). 0.08 until 2026-12-03 came from an estimator that held each
    # pod in the level it was compared with (latency.lasting_pod_variance)...
    window_pod_sd: float = 0.0
    # ...client-side: the pod's own effect on the paired log-latency (requests add their own)...
    client_pod_sd: float = 0.03
    # ...each worth this many degrees of freedom against the run's own pods.
    pod_sd_df: float = 8.0
    # Client-side latencies are not judged when a request doing no model work (the path)
    # takes more than this share of a prediction's time: the path would be measured.
    max_path_share: float = 0.5
    # A significant slow-down this large is critical.
    latency_critical_ratio: float = 1.5
    # Optional absolute budgets on the canary (milliseconds). p99 only with enough samples.
    p95_ms: float | None = None
    p99_ms: float | None = None
    p99_min_samples: int = 1000
    # Predictions of a new model: at most this share of labels may flip (flips where the
    # baseline was confident, see flip_margin; above the A/A flip_noise_floor)...
    max_flip_rate: float = 0.05
    # A flip where the baseline's top two probabilities are closer than this is borderline:
    # reported, not counted (a retrained model moves the decision boundary a little).
    flip_margin: float = 0.2
    # The flip rate two arms of the same image show (A/A): 0 for a deterministic server.
    flip_noise_floor: float = 0.0
    # ...and accuracy on labelled requests: fails (critical) when the exact McNemar test says
    # the canary is less accurate and the drop is above this (1 point); a drop whose interval
    # reaches above it is not shown to be within it (the metric fails, not critically).
    max_accuracy_drop: float = 0.01
    # Numbers of the same model must agree within abs + rel * |baseline| (CANARY.md).
    numeric_abs_tol: float = 1e-5
    numeric_rel_tol: float = 1e-4
    # Judge numeric outputs of a new model too (with the tolerances above); default: reported.
    judge_numeric: bool = False
    # Errors: the canary's success rate must be at least this; Fisher one-sided at confidence.
    min_success_rate: float = 0.99
    # Score thresholds and group weights (Kayenta: pass 95, marginal 75).
    pass_score: float = 95.0
    marginal_score: float = 75.0
    weights: Mapping[str, float] = field(
        default_factory=lambda: {"predictions": 40.0, "latency": 30.0, "errors": 30.0}
    )

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    @property
    def failing_streak(self) -> int:
        """Pairs in a row where the canary failed and the baseline answered that stop the
        traffic as a failure: ``max_consecutive_errors``, or more until such a streak alone is
        significant at ``alpha`` — Fisher's exact one-sided p of n failures against none in n
        pairs is 1 / C(2n, n) (4 pairs: 0.014, below the default 0.02)."""
        n = self.max_consecutive_errors
        while 1 / math.comb(2 * n, n) >= self.alpha:
            n += 1
        return n
