"""The canary's judgement on recorded observations: each metric, the score and the verdict."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from rolloutgate.canary.judge import EXIT_STATUS, judge, score, unjudged
from rolloutgate.canary.latency import lasting_pod_variance, server_windows
from rolloutgate.canary.metrics import Metric
from rolloutgate.canary.observations import Item, Observations, PodTiming, Sample, ServerRead
from rolloutgate.canary.thresholds import Thresholds
from rolloutgate.checks import cases, httpclient


def _case(name: str, data: list[float], expect: list[dict[str, Any]]) -> dict[str, Any]:
    inputs = [{"name": "predict", "shape": [1, 4], "datatype": "FP64", "data": data}]
    return {"name": name, "request": {"inputs": inputs}, "expect": expect}


# The golden cases, as in fixtures/golden/iris.json: their expectations name the values the
# arms are compared on (the label "predict", the scores "predict_proba").
GOLDEN = cases.parse(
    {
        "model": "iris",
        "cases": [
            _case("setosa", [5.1, 3.5, 1.4, 0.2], [{"name": "predict", "data": [0]}]),
            _case("virginica", [6.3, 3.3, 6.0, 2.5], [{"name": "predict", "data": [2]}]),
            _case(
                "setosa-proba",
                [5.1, 3.5, 1.4, 0.2],
                [{"name": "predict_proba", "data": [0.9, 0.05, 0.05], "abs_tol": 0.05}],
            ),
        ],
    },
    Path("golden.json"),
)
TRUTH = {"golden:setosa": 0, "golden:virginica": 2, "golden:setosa-proba": 0}


def body(label: int, proba: list[float] | None = None) -> dict[str, Any]:
    outputs: list[dict[str, Any]] = [
        {"name": "predict", "datatype": "INT64", "shape": [1, 1], "data": [label]}
    ]
    if proba is not None:
        outputs.append(
            {"name": "predict_proba", "datatype": "FP64", "shape": [1, 3], "data": proba}
        )
    return {"model_name": "iris", "outputs": outputs}


def proba(label: int, p: float = 0.9) -> list[float]:
    rest = (1 - p) / 2
    return [p if k == label else rest for k in range(3)]


def observations(
    *,
    n_items: int = 60,
    requests: int = 200,
    base_ms: float = 10.0,
    canary_ms: float = 10.0,
    canary_label: dict[str, int] | None = None,
    canary_status: dict[str, int] | None = None,
    canary_proba_shift: float = 0.0,
    same_model: bool = False,
    labels: bool = True,
    seed: int = 1,
) -> Observations:
    """Two arms that answer `n_items` labelled items (label = index % 3) and the golden cases;
    latencies are log-normal around the given medians."""
    rng = random.Random(seed)
    obs = Observations(same_model=same_model)
    truth: dict[str, int] = {}
    for case in GOLDEN.cases:
        item_id = f"golden:{case.name}"
        obs.items[item_id] = Item(item_id, case.request, case=case)
        truth[item_id] = TRUTH[item_id]
    request = httpclient.Request("POST", "/v2/models/{model}/infer", (), {"inputs": []})
    for k in range(n_items):
        item_id = f"set-{k}"
        obs.items[item_id] = Item(item_id, request, labels=(k % 3,) if labels else None)
        truth[item_id] = k % 3
    ids = list(obs.items)
    plan = ids + [rng.choice(ids) for _ in range(max(0, requests - len(ids)))]
    canary_label = canary_label or {}
    canary_status = canary_status or {}
    for item_id in plan:
        label = truth[item_id]
        obs.samples.append(
            Sample(
                item_id,
                "baseline",
                "ok",
                base_ms * rng.lognormvariate(0, 0.2),
                status=200,
                answer=body(label, proba(label)),
            )
        )
        c_label = canary_label.get(item_id, label)
        status = canary_status.get(item_id, 200)
        c_proba = [x + canary_proba_shift for x in proba(c_label)]
        obs.samples.append(
            Sample(
                item_id,
                "canary",
                "ok" if status == 200 else "http",
                canary_ms * rng.lognormvariate(0, 0.2),
                status=status,
                answer=body(c_label, c_proba) if status == 200 else {"error": "boom"},
                error="" if status == 200 else "boom",
            )
        )
    return obs


def test_identical_arms_pass_with_full_score() -> None:
    result = judge(observations())
    assert result.verdict == "pass", result.reason
    assert result.score == 100.0
    assert result.exit_status == 0
    assert {m.name: m.verdict for m in result.metrics} == {
        "arms": "pass",
        "golden": "pass",
        "agreement": "pass",
        "accuracy": "pass",
        "numeric": "nodata",  # a new model's scores are reported, not judged
        "latency": "pass",
        "latency-budget": "nodata",
        "errors": "pass",
        "stability": "pass",
    }


def test_a_quarter_slower_canary_fails_on_latency_with_p_value_and_effect_size() -> None:
    result = judge(observations(canary_ms=12.5))
    latency = result.metric("latency")
    assert latency.verdict == "fail"
    assert not latency.critical
    assert latency.figures["p_value"] < 0.02
    assert 1.15 < latency.figures["median_ratio"] < 1.35
    assert latency.figures["ratio_low"] > 1.0  # significant: the lower bound is above 1
    assert latency.figures["source"] == "paired client-side latencies"
    assert "one-sided p = " in latency.reason
    assert "ratio 1.2" in latency.reason
    # The latency group (weight 30 of 100) fails: 70 < 75.
    assert result.verdict == "fail"
    assert result.score == 70.0
    assert result.exit_status == 1


def test_significant_but_small_slowdown_passes_the_effect_size() -> None:
    # 3 % slower over 2000 pairs (pods calibrated identical) is significant, but below
    # sqrt(1.10): half the slow-down to detect.
    t = Thresholds(client_pod_sd=0.0)
    result = judge(observations(canary_ms=10.3, requests=2000), t)
    latency = result.metric("latency")
    assert latency.figures["p_value"] < 0.02
    assert latency.verdict == "pass"


def test_one_pod_per_arm_is_not_judged_as_if_it_were_many() -> None:
    # The same 12 % slow-down over 2000 pairs: with pods calibrated identical it is
    # significant; with the calibrated pod-to-pod spread (one pod per arm), it is not.
    obs = observations(canary_ms=11.2, requests=2000)
    assert judge(obs, Thresholds(client_pod_sd=0.0)).metric("latency").verdict == "fail"
    spread = judge(obs, Thresholds(client_pod_sd=0.08)).metric("latency")
    assert spread.verdict == "pass"
    assert spread.figures["estimate"]["pods"] == (1, 1)


def test_much_slower_canary_is_critical() -> None:
    result = judge(observations(canary_ms=20.0))
    assert result.metric("latency").critical
    assert result.verdict == "fail"
    assert result.score == 0.0
    assert result.reason.startswith("critical: latency: canary much slower")


def test_wrong_golden_case_is_critical_and_named() -> None:
    result = judge(observations(canary_label={"golden:setosa": 1}))
    golden = result.metric("golden")
    assert golden.verdict == "fail"
    assert golden.figures["failing"] == ["golden:setosa"]
    assert "golden:setosa: output 'predict'" in golden.reason
    assert result.verdict == "fail"
    assert result.score == 0.0


def test_any_error_on_a_golden_case_is_critical() -> None:
    result = judge(observations(canary_status={"golden:virginica": 500}))
    assert result.metric("golden").verdict == "fail"
    assert "golden:virginica: HTTP 500" in result.metric("golden").reason
    assert result.verdict == "fail"


def test_flips_are_counted_in_a_matrix_and_named() -> None:
    flipped = {f"set-{k}": (k + 1) % 3 for k in range(0, 12)}  # 12 of 62 items
    result = judge(observations(canary_label=flipped))
    agreement = result.metric("agreement")
    assert agreement.verdict == "fail"
    assert agreement.figures["flips"] == 12
    assert "set-0 (predict[0] 0->1)" in agreement.reason
    matrix = {(b, c): n for b, c, n in agreement.figures["matrix"]}
    assert matrix[("0", "1")] == 4
    assert matrix[("0", "0")] > 0
    accuracy = result.metric("accuracy")
    assert accuracy.verdict == "fail"
    assert accuracy.figures["baseline"] == 1.0
    # 12 rows newly wrong, none newly right: exact McNemar p = 0.5^12, critical.
    assert accuracy.critical
    assert accuracy.figures["p_value"] == pytest.approx(0.5**12)
    assert result.verdict == "fail"
    assert result.reason.startswith("critical: accuracy: canary less accurate")


def test_a_few_flips_of_a_new_model_are_tolerated_by_agreement_but_not_accuracy() -> None:
    # 2 of 62 flipped (3.2 % <= 5 %), each to a wrong label: accuracy drops 3.2 pt.
    result = judge(observations(canary_label={"set-0": 1, "set-3": 2}))
    assert result.metric("agreement").verdict == "pass"
    assert result.metric("accuracy").verdict == "fail"
    assert "newly wrong: set-0, set-3" in result.metric("accuracy").reason
    assert result.verdict == "marginal"  # 40 * 2/3 + 60 = 86.7
    assert result.score == 86.67
    assert result.exit_status == 6


def test_same_model_allows_no_flip_and_judges_numbers() -> None:
    one_flip = judge(observations(canary_label={"set-5": 0}, same_model=True))
    assert one_flip.metric("agreement").critical
    assert one_flip.verdict == "fail"
    drift = judge(observations(canary_proba_shift=1e-3, same_model=True))
    assert drift.metric("numeric").verdict == "fail"
    assert drift.verdict == "fail"
    exact = judge(observations(same_model=True))
    assert exact.metric("numeric").verdict == "pass"
    assert exact.verdict == "pass"


def test_too_few_samples_is_inconclusive_never_pass() -> None:
    result = judge(observations(n_items=10, requests=30))
    assert result.verdict == "inconclusive"
    assert result.exit_status == 7
    assert "too few samples" in result.reason
    assert result.metric("latency").verdict == "nodata"


def test_traffic_stopped_by_a_broken_path_makes_the_run_inconclusive() -> None:
    obs = observations()
    obs.stopped.append("stopped: 4 requests in a row got no answer from either arm")
    result = judge(obs)
    assert result.verdict == "inconclusive"
    assert "4 requests in a row got no answer from either arm" in result.reason


def test_errors_are_judged_with_fisher() -> None:
    failing = {f"set-{k}": 503 for k in range(0, 60, 6)}  # 10 items, ~16 requests
    result = judge(observations(canary_status=failing))
    errors = result.metric("errors")
    assert errors.verdict == "fail"
    assert errors.figures["p_value"] < 0.02
    assert errors.figures["canary_error_kinds"] == {"HTTP 503": errors.figures["canary_errors"]}
    assert result.verdict == "fail"  # errors group (30) fails: 70


def test_a_broken_canary_arm_fails_and_a_broken_baseline_is_inconclusive() -> None:
    obs = Observations()
    obs.arm_failure["canary"] = "CrashLoopBackOff: pod iris-canary-x exited 1"
    result = judge(obs)
    assert result.verdict == "fail"
    assert result.metric("arms").reason.startswith("canary arm: CrashLoopBackOff")
    obs = Observations()
    obs.arm_failure["baseline"] = "ImagePullBackOff"
    result = judge(obs)
    assert result.verdict == "inconclusive"
    assert "baseline arm unusable: ImagePullBackOff" in result.reason


def test_canary_restart_during_traffic_is_critical() -> None:
    obs = observations()
    obs.restarts["canary"] = 1
    assert judge(obs).verdict == "fail"


def test_latency_budget_is_optional_and_p99_needs_enough_samples() -> None:
    t = Thresholds(p95_ms=5.0, p99_ms=100.0)
    result = judge(observations(), t)
    budget = result.metric("latency-budget")
    assert budget.verdict == "fail"
    assert "p99 not judged below 1000 samples" in budget.reason
    assert judge(observations(), Thresholds(p95_ms=1000.0)).verdict == "pass"


def test_score_weights_groups_and_skips_groups_without_data() -> None:
    metrics = [
        Metric("golden", "pass", ""),
        Metric("agreement", "fail", ""),
        Metric("latency", "nodata", ""),
        Metric("errors", "pass", ""),
    ]
    # predictions 40 * 1/2 + errors 30 * 1 over weights 70.
    assert score(metrics, Thresholds().weights) == pytest.approx(100 * 50 / 70, abs=0.01)


def test_exit_statuses_are_distinct_and_avoid_pytests_own() -> None:
    assert len(set(EXIT_STATUS.values())) == 4
    assert not {2, 3, 4, 5} & set(EXIT_STATUS.values())


def test_an_arm_the_cluster_cannot_schedule_is_inconclusive_not_fail() -> None:
    obs = Observations()
    obs.environment.append("the canary arm could not be scheduled: Insufficient cpu")
    result = judge(obs)
    assert result.verdict == "inconclusive"
    assert result.metric("arms").verdict == "nodata"
    assert "Insufficient cpu" in result.reason


def test_a_transport_error_on_a_golden_case_is_not_the_models_fault() -> None:
    obs = observations()
    obs.samples.insert(
        0, Sample("golden:setosa", "canary", "transport", 10.0, error="RemoteDisconnected")
    )
    assert judge(obs).verdict == "pass"
    # Never answered at all: not judged, so the run cannot pass.
    obs.samples = [s for s in obs.samples if not (s.item == "golden:setosa" and s.arm == "canary")]
    obs.samples.append(Sample("golden:setosa", "canary", "transport", 10.0, error="reset"))
    result = judge(obs)
    assert result.verdict == "inconclusive"
    assert "golden cases never answered by the canary: golden:setosa" in result.reason


def test_only_values_the_golden_cases_pick_are_compared() -> None:
    obs = observations(canary_proba_shift=1e-3, same_model=True)
    # Without the one case that names predict_proba, its drift is in every answer but unjudged.
    del obs.items["golden:setosa-proba"]
    obs.samples = [s for s in obs.samples if s.item != "golden:setosa-proba"]
    result = judge(obs)
    assert result.metric("numeric").verdict == "nodata"
    assert result.verdict == "pass", result.reason


def test_label_output_names_a_value_by_output_or_path() -> None:
    obs = observations()
    for name in ("predict", cases.v2_output_path("predict")):
        obs.label_output = name
        accuracy = judge(obs).metric("accuracy")
        assert (accuracy.verdict, accuracy.figures["output"]) == ("pass", "predict")
    obs.label_output = "label"
    accuracy = judge(obs).metric("accuracy")
    assert accuracy.verdict == "nodata"
    assert accuracy.reason == (
        "label_output 'label' is none of the values the golden cases pick (predict, predict_proba)"
    )


def regression(canary_error: float, tolerance: dict[str, float]) -> Observations:
    """A regression model's arms (plain protocol, ``{"predictions": [y]}``), 60 labelled rows;
    the baseline is off by 0.01 everywhere, the canary by ``canary_error`` on every third row."""
    golden = cases.parse(
        {
            "protocol": "plain",
            "cases": [
                {
                    "name": "price",
                    "request": {"body": {"instances": [[1.0]]}},
                    "expect": {"values": [{"path": "predictions", "data": [2.0], **tolerance}]},
                }
            ],
        },
        Path("golden.json"),
    )
    obs = Observations()
    case = golden.cases[0]
    obs.items["golden:price"] = Item("golden:price", case.request, case=case)
    request = httpclient.Request("POST", "/predict", (), {"instances": [[0.0]]})
    rows = {f"set:{k}": 1.5 * k for k in range(60)}
    obs.items.update((i, Item(i, request, labels=(y,))) for i, y in rows.items())
    truth = {"golden:price": 2.0, **rows}
    for k, (item_id, y) in enumerate(truth.items()):
        for _ in range(4):
            obs.samples.append(
                Sample(item_id, "baseline", "ok", 5.0, answer={"predictions": [y + 0.01]})
            )
            miss = canary_error if k % 3 == 0 else 0.01
            obs.samples.append(
                Sample(item_id, "canary", "ok", 5.0, answer={"predictions": [y + miss]})
            )
    return obs


def test_a_regression_is_judged_on_its_labels_within_the_golden_tolerance() -> None:
    # Within abs_tol 0.05 both arms are right on every row: a pass, accuracy 100 % each.
    good = judge(regression(0.02, {"abs_tol": 0.05})).metric("accuracy")
    assert good.verdict == "pass", good.reason
    assert (good.figures["baseline"], good.figures["canary"]) == (1.0, 1.0)
    assert good.figures["tolerance"] == "abs_tol=0.05, rel_tol=0"
    assert good.figures["output"] == "predictions"
    # Off by 0.5 on every third row: those rows are wrong on the canary, named.
    bad = judge(regression(0.5, {"abs_tol": 0.05})).metric("accuracy")
    assert bad.verdict == "fail"
    assert bad.figures["canary"] == pytest.approx(40 / 60)
    assert "newly wrong: set:2, set:5, set:8" in bad.reason
    # The label value is a number: flips are not counted on it, differences are reported.
    result = judge(regression(0.5, {"abs_tol": 0.05}))
    assert result.metric("agreement").verdict == "nodata"
    assert result.metric("numeric").figures["compared"] == 61


def _set_answer(obs: Observations, item: str, arm: str, answer: dict[str, Any]) -> None:
    obs.samples = [
        Sample(s.item, s.arm, s.outcome, s.latency_ms, status=s.status, answer=answer)
        if s.item == item and s.arm == arm
        else s
        for s in obs.samples
    ]


def test_a_flip_where_the_baseline_was_unsure_is_borderline_not_counted() -> None:
    obs = observations(n_items=60, same_model=True)
    # set-0 (label 0): the baseline barely preferred 0; the canary says 1.
    _set_answer(obs, "set-0", "baseline", body(0, [0.46, 0.44, 0.10]))
    _set_answer(obs, "set-0", "canary", body(1, [0.44, 0.46, 0.10]))
    agreement = judge(obs).metric("agreement")
    assert agreement.verdict == "pass", agreement.reason
    assert (agreement.figures["confident_flips"], agreement.figures["borderline_flips"]) == (0, 1)
    assert "set-0 (0->1, margin 0.02)" in agreement.reason
    # The same flip where the baseline was sure is one the same model may not make.
    _set_answer(obs, "set-0", "baseline", body(0, [0.9, 0.05, 0.05]))
    agreement = judge(obs).metric("agreement")
    assert agreement.verdict == "fail"
    assert agreement.critical


def test_same_model_flips_are_judged_against_the_a_a_noise_floor() -> None:
    flipped = {"set-1": 2, "set-4": 0}
    deterministic = judge(observations(canary_label=flipped, same_model=True))
    assert deterministic.metric("agreement").verdict == "fail"
    # A server whose A/A runs flip 5 % of labels (GPU non-determinism): 2 of 63 is within it.
    noisy = judge(
        observations(canary_label=flipped, same_model=True), Thresholds(flip_noise_floor=0.05)
    )
    assert noisy.metric("agreement").verdict == "pass"
    assert noisy.metric("agreement").figures["p_value"] > 0.02


def test_the_distance_between_predicted_probabilities_is_reported() -> None:
    obs = observations()
    _set_answer(obs, "set-2", "canary", body(2, [0.1, 0.1, 0.8]))  # baseline 0.05/0.05/0.9
    distance = judge(obs).metric("agreement").figures["probability_distance"]
    assert distance["output"] == "predict_proba"
    assert distance["max_tv"] == pytest.approx(0.1)
    assert 0 < distance["mean_tv"] < 0.1


def test_nothing_judged_beyond_the_golden_cases_is_inconclusive_never_pass() -> None:
    golden_only = [
        Metric("golden", "pass", ""),
        Metric("agreement", "nodata", "no label output answered by both arms"),
        Metric("latency", "nodata", "too few requests"),
        Metric("errors", "nodata", "too few measured requests"),
    ]
    assert unjudged(golden_only, Thresholds().weights) == ["nothing judged beyond the golden cases"]
    # A regression model without labels: latency and errors judged, predictions only golden.
    regression = [*golden_only[:2], Metric("latency", "pass", ""), Metric("errors", "pass", "")]
    assert unjudged(regression, Thresholds().weights) == [
        "nothing judged in the predictions group (golden: ; agreement: no label output "
        "answered by both arms)"
    ]
    # A group weighted 0 does not count.
    weights = {"predictions": 0.0, "latency": 30.0, "errors": 30.0}
    assert unjudged(regression, weights) == []


def test_a_group_with_nothing_judged_makes_the_run_inconclusive() -> None:
    obs = observations()
    # The path alone (a health request) takes 8 of a prediction's 10 ms: not judged.
    obs.path_ms = {"baseline": [8.0] * 20, "canary": [8.0] * 20}
    result = judge(obs)
    latency = result.metric("latency")
    assert latency.verdict == "nodata"
    assert "the path to the servers" in latency.reason
    assert result.verdict == "inconclusive"
    assert "nothing judged in the latency group" in result.reason


def test_latency_is_judged_on_what_the_servers_measured_when_they_export_it() -> None:
    # Client-side the arms look alike (the path dominates); the servers' own metric says the
    # canary spends 1.4 times as long per request, on each of its three pods (read before and
    # after only: judged on each pod's totals, with the calibrated pod spread, 0.15).
    obs = observations()
    obs.path_ms = {"baseline": [9.0] * 20, "canary": [9.0] * 20}
    obs.server_metric = "model_infer_request_duration"
    obs.server = {
        "baseline": [
            PodTiming(f"b{k}", 67, 67 * s) for k, s in enumerate((0.0010, 0.00102, 0.00099))
        ],
        "canary": [
            PodTiming(f"c{k}", 67, 67 * s) for k, s in enumerate((0.00140, 0.00141, 0.00139))
        ],
    }
    latency = judge(obs).metric("latency")
    assert latency.verdict == "fail", latency.reason
    assert latency.figures["source"] == "server-side model_infer_request_duration"
    assert latency.figures["median_ratio"] == pytest.approx(1.40, abs=0.01)
    assert latency.figures["server_ms_by_pod"]["canary"]["c0"] == pytest.approx(1.40)
    # What the client saw is reported beside it, with the path's share of it, each run.
    assert latency.figures["client"]["ratio"] == pytest.approx(1.0, abs=0.1)
    assert latency.figures["path_share"]["canary"] == pytest.approx(0.9, abs=0.1)
    # Too few requests counted by the servers: not judged.
    obs.server = {arm: [PodTiming("p", 10, 0.01)] for arm in ("baseline", "canary")}
    assert judge(obs).metric("latency").verdict == "nodata"


# Real runs' reads of MLServer's model_infer_request_duration on every pod, every second (3
# pods per arm, 200 requests per arm, load average ~20-30; pods renamed b0..c2, times from the
# first read): two A/A runs (v1 against v1) and `slower` (+1.2 ms a request) against v1. In
# "aa_lasting" (load 26-20, MLServer at 12-90 ms an inference) the canary arm was slower in 9
# of 11 windows: its pods kept levels of their own (0.2 apart, beyond their windows' scatter).
RECORDED = json.loads((Path(__file__).parent / "data" / "canary_server_reads.json").read_text())


def recorded(name: str) -> Observations:
    obs = observations()
    obs.server_metric = "model_infer_request_duration"
    run = RECORDED[name]
    obs.server = {arm: [PodTiming(**p) for p in pods] for arm, pods in run["server"].items()}
    obs.server_reads = [ServerRead(*r) for r in run["reads"]]
    return obs


def test_latency_on_recorded_windows_passes_a_a_and_fails_slower() -> None:
    aa = judge(recorded("aa")).metric("latency")
    assert aa.verdict == "pass", aa.reason
    assert "time-paired windows" in aa.figures["source"]
    assert aa.figures["windows"]["count"] >= 10
    assert aa.figures["ratio_low"] < 1.0 < aa.figures["ratio_high"]
    slower = judge(recorded("slower")).metric("latency")
    assert slower.verdict == "fail", slower.reason
    assert slower.figures["p_value"] < 0.02
    assert slower.figures["ratio_low"] > 1.0
    # Each window's ratio is the canary arm's over the baseline's in the same interval.
    windows = server_windows(recorded("slower").server_reads)
    assert [round(w.log_ratio, 4) for w in windows] == slower.figures["windows"]["log_ratios"]
    assert all(min(w.baseline_count, w.canary_count) >= 10 for w in windows)


def test_latency_without_enough_windows_is_judged_on_each_pods_totals() -> None:
    obs = recorded("slower")
    obs.server_reads = [r for r in obs.server_reads if r.sweep in (0, 1, 2, 3)]
    latency = judge(obs).metric("latency")
    assert "windows" not in latency.figures
    assert latency.figures["source"] == "server-side model_infer_request_duration"
    assert latency.figures["estimate"]["pod_sd"] >= Thresholds().server_pod_sd * 0.8


def test_pods_that_keep_their_own_level_widen_the_windows_interval() -> None:
    obs = recorded("aa_lasting")
    lasting, df = lasting_pod_variance(obs.server_reads)
    assert df == 4
    assert math.sqrt(lasting) > 0.15
    latency = judge(obs).metric("latency")
    # Time-paired alone it would fail (the arms differ in most windows); what the run's pods
    # show of their own levels, moderated with the prior, says that is within what pods do.
    assert latency.verdict == "pass", latency.reason
    assert latency.figures["estimate"]["pod_sd"] > Thresholds().window_pod_sd
    alone = judge(obs, Thresholds(pod_sd_df=1e9)).metric("latency")
    assert alone.verdict == "fail", alone.reason
    # A run whose pods agree keeps the prior's pod part: the A/A run above.
    assert lasting_pod_variance(recorded("aa").server_reads)[0] < lasting
