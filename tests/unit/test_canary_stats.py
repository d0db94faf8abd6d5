"""The canary's statistics against known values: exact McNemar, the pod-level and paired
latency ratios (which reduce to the textbook t-tests when no calibration is given), the
moderated variance and the sample sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sp

from rolloutgate.canary.latency import latency_decision
from rolloutgate.canary.predictions import accuracy_decision
from rolloutgate.canary.stats import (
    RatioEstimate,
    Window,
    labelled_rows_needed,
    mcnemar,
    moderated_variance,
    paired_log_ratio,
    pairs_needed,
    pod_level_ratio,
    pod_variance_two_way,
    ratio_power,
    trimmed_windows_se,
    window_ratio,
    windows_needed,
)
from rolloutgate.canary.thresholds import Thresholds


def test_mcnemar_of_the_retrained_tag_is_not_significant_and_not_shown_within_a_point() -> None:
    # retrained against v1: 3 rows newly wrong, 1 newly right of 150 (96.0 % vs 97.3 %).
    test = mcnemar(150, 3, 1, confidence=0.98)
    assert test.p_worse == pytest.approx(5 / 16)  # P(X >= 3), X ~ Bin(4, 1/2)
    assert test.drop == pytest.approx(2 / 150)
    # Conditional Clopper-Pearson bounds for 3 of 4, 98 % on each side, scaled by 4/150.
    assert test.drop_high == pytest.approx(4 / 150 * (2 * 0.98 ** (1 / 4) - 1))
    assert test.drop_low == pytest.approx(4 / 150 * (2 * sp.beta.ppf(0.02, 3, 2) - 1))
    assert accuracy_decision(test, Thresholds()) == "fail"  # marginal: a person should look


def test_mcnemar_of_a_clearly_worse_model_is_critical() -> None:
    test = mcnemar(150, 8, 0, confidence=0.98)
    assert test.p_worse == pytest.approx(0.5**8)
    assert accuracy_decision(test, Thresholds()) == "critical"


def test_mcnemar_of_identical_answers_passes_and_a_better_model_passes() -> None:
    same = mcnemar(150, 0, 0, confidence=0.98)
    assert (same.drop, same.drop_high, same.p_worse) == (0.0, 0.0, 1.0)
    assert accuracy_decision(same, Thresholds()) == "pass"
    # v2 against v1: one row newly right.
    better = mcnemar(150, 0, 1, confidence=0.98)
    assert better.drop_high == pytest.approx(1 / 150 * (2 * 0.98 - 1))
    assert accuracy_decision(better, Thresholds()) == "pass"
    with pytest.raises(ValueError, match="at least one labelled row"):
        mcnemar(0, 0, 0, confidence=0.98)


def test_pod_level_ratio_without_calibration_is_the_pooled_t_test() -> None:
    base = [1.00, 1.04, 0.97]
    can = [1.12, 1.09, 1.15]
    est = pod_level_ratio(base, can, prior_pod_sd=0.05, prior_df=0, confidence=0.98)
    ref = sp.ttest_ind(np.log(can), np.log(base), equal_var=True, alternative="greater")
    assert est.p_value == pytest.approx(ref.pvalue)
    assert est.df == 4
    assert est.ratio == pytest.approx(math.exp(np.log(can).mean() - np.log(base).mean()))
    assert est.pods == (3, 3)


def test_pod_level_ratio_moderates_the_pods_spread_with_the_calibration() -> None:
    # Pods that agree exactly: the variance is the prior's, weighted 8 against 4.
    est = pod_level_ratio([2.0] * 3, [2.2] * 3, prior_pod_sd=0.05, prior_df=8, confidence=0.98)
    var = 8 * 0.05**2 / 12
    assert est.se == pytest.approx(math.sqrt(var * (1 / 3 + 1 / 3)))
    assert est.df == 12
    assert est.p_value == pytest.approx(sp.t.sf(math.log(1.1) / est.se, 12))
    # The bounds: exp(log ratio -+ t_0.98(12) * se).
    q = sp.t.ppf(0.98, 12)
    assert est.low == pytest.approx(1.1 * math.exp(-q * est.se))
    assert est.high == pytest.approx(1.1 * math.exp(q * est.se))
    # One pod per arm: the prior alone says how far apart two pods may be.
    one = pod_level_ratio([2.0], [2.2], prior_pod_sd=0.05, prior_df=8, confidence=0.98)
    assert one.se == pytest.approx(0.05 * math.sqrt(2))
    assert one.p_value > est.p_value


def test_paired_ratio_of_one_pod_without_calibration_is_the_paired_t_test() -> None:
    rng = np.random.default_rng(3)
    base = np.exp(rng.normal(1.6, 0.3, 80))
    can = base * np.exp(rng.normal(0.08, 0.2, 80))
    est = paired_log_ratio(
        base, can, [""] * 80, [""] * 80, prior_pod_sd=0.0, prior_df=0, confidence=0.98
    )
    ref = sp.ttest_rel(np.log(can), np.log(base), alternative="greater")
    assert est.p_value == pytest.approx(ref.pvalue)
    assert est.df == pytest.approx(79)
    assert est.n == 80


def test_paired_ratio_adds_the_pod_variance_by_the_pods_shares() -> None:
    rng = np.random.default_rng(4)
    base = np.exp(rng.normal(1.6, 0.3, 90))
    can = base * np.exp(rng.normal(0.0, 0.2, 90))
    plain = paired_log_ratio(
        base, can, [""] * 90, [""] * 90, prior_pod_sd=0.0, prior_df=0, confidence=0.98
    )
    # One pod per arm, calibrated pod sd 0.03 with no own estimate: + 2 * 0.03^2.
    one = paired_log_ratio(
        base, can, [""] * 90, [""] * 90, prior_pod_sd=0.03, prior_df=8, confidence=0.98
    )
    assert one.se**2 == pytest.approx(plain.se**2 + 2 * 0.03**2)
    # Three pods per arm, equal shares, identical pods: the prior's part shrinks to 2/3 of
    # it, weighted against the run's own 2 + 2 degrees of freedom that show no pod effect.
    pods = [str(k % 3) for k in range(90)]
    three = paired_log_ratio(base, can, pods, pods, prior_pod_sd=0.03, prior_df=8, confidence=0.98)
    assert plain.se < three.se < one.se
    assert three.pods == (3, 3)


def test_paired_ratio_sees_pods_that_differ_more_than_calibrated() -> None:
    rng = np.random.default_rng(5)
    n = 300
    pods = [str(k % 3) for k in range(n)]
    offset = np.array([-0.15, 0.0, 0.15])[[k % 3 for k in range(n)]]
    base = np.exp(rng.normal(1.6, 0.2, n))
    can = base * np.exp(offset + rng.normal(0.0, 0.1, n))
    est = paired_log_ratio(
        base, can, [""] * n, pods, prior_pod_sd=0.01, prior_df=8, confidence=0.98
    )
    assert est.pod_sd > 0.05


def test_moderated_variance_weighs_by_degrees_of_freedom() -> None:
    assert moderated_variance(0.04, 4, 0.1, 8) == pytest.approx(((8 * 0.01 + 4 * 0.04) / 12, 12))
    assert moderated_variance(0.0, 0, 0.0, 0) == (0.0, 0.0)


def test_latency_decision_needs_significance_and_half_the_slowdown() -> None:
    t = Thresholds()

    def est(ratio: float, p: float) -> RatioEstimate:
        return RatioEstimate(ratio, ratio, ratio, p, 0.01, 10, 200, (3, 3), 0.03)

    assert latency_decision(est(1.2, 0.001), t) == "fail"
    assert latency_decision(est(1.2, 0.03), t) == "pass"  # not significant at 0.02
    assert latency_decision(est(1.04, 1e-9), t) == "pass"  # below sqrt(1.1) = 1.0488
    assert latency_decision(est(1.06, 1e-9), t) == "fail"
    assert latency_decision(est(1.6, 1e-9), t) == "critical"


def test_sample_sizes() -> None:
    z = sp.norm.ppf(0.98) + sp.norm.ppf(0.9)
    # No pod part: the textbook n = ((z_a + z_b) sd / log r)^2.
    assert pairs_needed(0.3, 0.0, ratio=1.1, alpha=0.02) == pytest.approx(
        (z * 0.3 / math.log(1.1)) ** 2
    )
    # Pods alone as variable as the effect: no number of requests is enough.
    assert pairs_needed(0.3, (math.log(1.1) / z) ** 2, ratio=1.1, alpha=0.02) == math.inf
    # Connor's McNemar size: 2/150 churn, a 5-point drop; the simulation finds power 0.95 at 400.
    assert 300 < labelled_rows_needed(2 / 150, 0.05, alpha=0.02) < 400


def test_window_ratio_is_yuens_trimmed_mean_of_the_windows_log_ratios() -> None:
    # Ten windows: the canary's mean server time over the baseline's, the same interval each.
    ratios = [1.10, 1.05, 1.20, 1.12, 0.98, 1.08, 3.00, 1.15, 1.02, 1.11]
    windows = [Window(10, 0.02, 10, 0.02 * r) for r in ratios]
    est = window_ratio(
        windows, trim=0.2, prior_pod_sd=0.0, prior_df=8, pods=(3, 3), confidence=0.98
    )
    d = np.sort(np.log(ratios))
    kept = d[2:8]  # two of ten cut from each end
    assert est.ratio == pytest.approx(math.exp(kept.mean()))
    winsorized = np.clip(d, d[2], d[7])
    se = math.sqrt(9 * winsorized.var(ddof=1) / (6 * 5))
    assert est.se == pytest.approx(se)
    assert est.df == pytest.approx(5)
    assert est.p_value == pytest.approx(sp.t.sf(kept.mean() / se, 5))
    # The stalled window (3x) is cut: the plain mean of the log-ratios is pulled up by it.
    assert est.ratio < math.exp(np.log(ratios).mean())
    assert est.n == 100


def test_an_extended_runs_window_variance_is_its_first_windows_on_their_df() -> None:
    # Stein's two-stage test: ten first windows scattered widely (that is why the run went on),
    # twenty more narrowly; the estimate is all thirty's, the variance the first ten's.
    rng = np.random.default_rng(4)
    first = [Window(30, 0.03, 30, 0.03 * math.exp(x)) for x in rng.normal(0, 0.2, 10)]
    later = [Window(30, 0.03, 30, 0.03 * math.exp(x)) for x in rng.normal(0, 0.05, 20)]

    def ratio(variance_of: list[Window] | None) -> RatioEstimate:
        return window_ratio(
            first + later,
            trim=0.2,
            prior_pod_sd=0.0,
            prior_df=8,
            pods=(3, 3),
            confidence=0.98,
            variance_of=variance_of,
        )

    stein, pooled = ratio(first), ratio(None)
    assert stein.ratio == pooled.ratio  # the same estimate: every window's trimmed mean
    d = np.sort([w.log_ratio for w in first])
    spread = np.clip(d, d[2], d[7]).var(ddof=1)
    assert stein.se == pytest.approx(math.sqrt(29 * spread / (18 * 17)))  # 30 windows, 18 kept
    assert stein.df == pytest.approx(5)  # the first ten's: 6 kept - 1
    assert stein.se > pooled.se
    assert pooled.df == pytest.approx(17)


def test_window_ratio_adds_a_pods_lasting_level_by_the_pods_per_arm() -> None:
    windows = [Window(10, 0.02, 10, 0.02 * r) for r in (1.1, 1.0, 1.2, 1.05, 1.15, 1.1, 1.12)]

    def ratio(prior: float, observed: float = 0.0, df: int = 0) -> RatioEstimate:
        return window_ratio(
            windows,
            trim=0.2,
            prior_pod_sd=prior,
            prior_df=8,
            pods=(3, 3),
            confidence=0.98,
            observed_pod_var=observed,
            observed_pod_df=df,
        )

    alone, pods = ratio(0.0), ratio(0.05)
    assert pods.se**2 == pytest.approx(alone.se**2 + 0.05**2 * (1 / 3 + 1 / 3))
    assert pods.p_value > alone.p_value
    assert pods.pod_sd == pytest.approx(0.05)
    # The run's own pods keep levels 0.2 apart (4 df): moderated with the prior, 8 against 4.
    own = ratio(0.05, 0.2**2, 4)
    assert own.pod_sd**2 == pytest.approx((8 * 0.05**2 + 4 * 0.2**2) / 12)
    assert own.se**2 == pytest.approx(alone.se**2 + own.pod_sd**2 * (2 / 3))
    assert own.p_value > pods.p_value
    with pytest.raises(ValueError, match="at least 4 windows"):
        window_ratio(
            windows[:3], trim=0.34, prior_pod_sd=0.0, prior_df=8, pods=(3, 3), confidence=0.98
        )


def _windows_of_pods(rng: np.random.Generator, pod_sd: float) -> np.ndarray:
    """20 windows x 3 pods of one arm: the node's load per window (shared by the pods), each
    pod's lasting level, each cell's own noise (a few requests: sd 0.6, as measured)."""
    load = rng.normal(0.0, 0.5, (20, 1))
    level = rng.normal(0.0, pod_sd, (1, 3))
    return load + level + rng.normal(0.0, 0.6, (20, 3))


def _deviation_estimate(cells: np.ndarray) -> float:
    """The estimator used until 2026-12-03: each pod's deviation from its arm's level in the
    same window (a level that holds the pod itself), its mean's spread less its noise."""
    dev = cells - cells.mean(axis=1, keepdims=True)
    between = float(dev.mean(axis=0).var(ddof=1))
    noise = float((dev.var(axis=0, ddof=1) / cells.shape[0]).mean())
    return between - noise


def test_pod_variance_two_way_finds_no_level_where_pods_have_none() -> None:
    rng = np.random.default_rng(17)
    runs = [_windows_of_pods(rng, 0.0) for _ in range(3000)]
    two_way = np.mean([pod_variance_two_way(c.tolist()) for c in runs])
    old = np.mean([_deviation_estimate(c) for c in runs])
    # Noise of the mean over 20 windows: 0.6^2 / 20 = 0.018; the old estimator kept a third
    # of it as a lasting level (sd 0.077 with none there), the two-way analysis none.
    assert abs(two_way) < 0.0015
    assert old == pytest.approx(0.018 / 3, rel=0.15)


def test_pod_variance_two_way_recovers_a_lasting_level() -> None:
    rng = np.random.default_rng(18)
    est = np.mean([pod_variance_two_way(_windows_of_pods(rng, 0.2).tolist()) for _ in range(3000)])
    assert est == pytest.approx(0.2**2, rel=0.1)
    # Exact on noiseless cells: the pods' own spread.
    cells = [[w + 0.1, w - 0.1, w] for w in (0.0, 0.5, -0.3, 1.0)]
    assert pod_variance_two_way(cells) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="same >= 2 pods"):
        pod_variance_two_way([[0.0, 1.0], [0.0]])


def test_ratio_power_is_alpha_without_a_slow_down_and_grows_with_it() -> None:
    assert ratio_power(1.0, 0.1, 8, alpha=0.02) == pytest.approx(0.02)
    powers = [ratio_power(r, 0.087, 8, alpha=0.02) for r in (1.05, 1.1, 1.25, 1.5)]
    assert powers == sorted(powers)
    assert 0.1 < powers[1] < 0.2 < 0.5 < powers[2] < 0.7 < 0.95 < powers[3]


def test_the_power_said_is_what_the_windowed_rule_does() -> None:
    # 13 windows, 1.25x slower: how often window_ratio's test finds it, against what
    # ratio_power says beforehand at the windows' winsorized spread (what WINDOW_SD measures).
    rng = np.random.default_rng(5)
    runs, found, spreads = 2000, 0, []
    for _ in range(runs):
        logs = rng.normal(math.log(1.25), 0.3, 13)
        windows = [Window(10, 0.02, 10, 0.02 * math.exp(x)) for x in logs]
        est = window_ratio(
            windows, trim=0.2, prior_pod_sd=0.0, prior_df=8, pods=(3, 3), confidence=0.98
        )
        found += est.p_value < 0.02
        d = np.sort(logs)
        spreads.append(float(np.clip(d, d[2], d[10]).std(ddof=1)))
    se = float(np.sqrt(np.mean(np.square(spreads)))) * math.sqrt(12 / (9 * 8))
    assert found / runs == pytest.approx(ratio_power(1.25, se, 8, alpha=0.02), abs=0.06)
    # And the windows it takes for power 0.9: more for a smaller slow-down.
    assert 20 < windows_needed(0.21, ratio=1.25, alpha=0.02, trim=0.2) < 40
    assert windows_needed(0.21, ratio=1.1, alpha=0.02, trim=0.2) > 120


@pytest.mark.parametrize(("ratio", "power"), [(1.25, 0.9), (1.25, 0.99), (1.1, 0.9)])
def test_windows_needed_is_the_fewest_windows_with_that_power(ratio: float, power: float) -> None:
    # The default canary size is read off this (0.99 at 1.25x): one window fewer must fall
    # short of the power, or the default asks for requests it does not need.
    n = windows_needed(0.21, ratio=ratio, alpha=0.02, trim=0.2, power=power)

    def power_at(windows: int) -> float:
        se, df = trimmed_windows_se(0.21, windows, trim=0.2)
        return ratio_power(ratio, se, df, alpha=0.02)

    assert power_at(n) >= power > power_at(n - 1)
