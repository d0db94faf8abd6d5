"""The canary's verdicts end to end on the local cluster: v1 is live (deployed by the gate),
candidates are judged against it side by side (tests/e2e/canaryrun.py). Every run must leave no
arm behind and the live release as it was.

Pass and latency at the default three pods per arm; the verdicts on predictions and sample size
at one pod per arm. Runs are kept small (2-core machines): 200 requests per arm where the
verdict does not need the default's 720 (its latency power), fewer where it needs fewer."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from canaryrun import ONE_POD, again_on_a_latency_alarm, assert_no_arm, metric, run_canary
from gaterun import deployment_state

pytestmark = pytest.mark.usefixtures("canary_images", "iris_canary_manifests")


# Alone, after the parallel run (`make test`): the arms' latency at three pods each, as a nightly
# canary meets it, not beside other modules' pods starting on the two cores.
@pytest.mark.alone
def test_v2_against_v1_passes_and_touches_nothing_live(
    live_v1: dict[str, Any], e2e_namespace: str, tmp_path: Path
) -> None:
    # From the node, the pods' IPs are routed (as from a pod of the cluster, where `auto` picks
    # them): no port-forward, the traffic straight to each pod. 200 requests over 20 s leave the
    # latency short of power 0.9 at 1.1x: the traffic goes on, for at most 40 s in all.
    result = again_on_a_latency_alarm(
        lambda: run_canary(
            e2e_namespace,
            tmp_path,
            "--image-tag=v2",
            "--canary-requests=200",
            env={"ROLLOUTGATE_CANARY_REACH": "pod-ip", "ROLLOUTGATE_CANARY_MAX_DURATION": "40"},
        ),
        tmp_path,
    )
    assert result.returncode == 0, result.output[-5000:]
    report = result.report
    assert "3 baseline, 3 canary pod(s), at their pod IPs (canary.reach=pod-ip)" in result.output
    assert report["traffic"]["reach"] == "pod-ip"
    assert report["verdict"] == "pass"
    assert report["score"] >= 95
    assert report["baseline_tag"] == "v1"
    assert report["candidate_tag"] == "v2"
    looks = [n for n in report["notes"] if n.startswith("canary latency after 200 requests")]
    assert looks, report["notes"]
    assert looks[0] in result.output
    measured = report["traffic"]["per_arm"]["canary"]["measured"]
    if "sending" in looks[0]:
        assert measured >= 200 + int(looks[0].rsplit("sending ", 1)[1].split()[0])
    else:  # a pod of an arm far from its others: more requests would not narrow the interval
        assert "the pods alone vary that much" in looks[0]
        assert measured == 200
    assert report["phases_s"]["traffic"] < 60, report["phases_s"]  # warm-up, 40 s, last answers
    assert metric(result, "golden")["verdict"] == "pass"
    assert metric(result, "latency")["verdict"] == "pass"
    # v2 (C=10) disagrees with v1 on one iris row: reported, within the 5 % allowed.
    assert metric(result, "agreement")["figures"]["flips"] <= 2
    assert_no_arm(e2e_namespace)
    assert deployment_state(e2e_namespace) == live_v1
    cases = {c.get("name") for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert {"latency", "agreement", "errors", "verdict"} <= cases
    assert "<svg" in (tmp_path / "canary.html").read_text()
    assert json.loads((tmp_path / "history.jsonl").read_text())["verdict"] == "pass"


def test_wrong_fails_on_predictions_naming_flipped_cases(
    live_v1: dict[str, Any], e2e_namespace: str, tmp_path: Path
) -> None:
    result = run_canary(
        e2e_namespace, tmp_path, "--image-tag=wrong", "--canary-requests=80", env=ONE_POD
    )
    assert result.returncode == 1, result.output[-5000:]
    assert result.report["verdict"] == "fail"
    golden = metric(result, "golden")
    assert golden["verdict"] == "fail"
    assert "golden:setosa" in golden["figures"]["failing"]
    agreement = metric(result, "agreement")
    assert agreement["verdict"] == "fail"
    assert "set:iris-" in agreement["reason"]  # flipped request-set lines are named
    assert "canary verdict: FAIL" in result.output
    assert_no_arm(e2e_namespace)
    assert deployment_state(e2e_namespace) == live_v1


def test_retrained_model_is_marginal_naming_its_flips(
    live_v1: dict[str, Any], e2e_namespace: str, tmp_path: Path
) -> None:
    # The test is about the flips, and `retrained` is as fast as v1 (the same model class and
    # runtime, timed alike): its latency is weighed and passes, on time-paired windows of the
    # servers' own metric, 3 pods per arm (judged on each pod's totals with the 0.08 prior, 3
    # of its real runs failed latency on a busy node: false alarms, issue 17).
    result = again_on_a_latency_alarm(
        lambda: run_canary(
            e2e_namespace, tmp_path, "--image-tag=retrained", "--canary-requests=200"
        ),
        tmp_path,
    )
    assert result.returncode == 6, result.output[-5000:]
    assert result.report["verdict"] == "marginal"
    agreement = metric(result, "agreement")
    assert agreement["verdict"] == "pass"
    figures = agreement["figures"]
    flipped = {f["item"] for f in figures["flipped"] + figures["borderline"]}
    assert flipped == {"set:iris-083", "set:iris-106", "set:iris-119", "set:iris-134"}
    assert figures["probability_distance"]["output"] == "predict_proba"
    # 3 rows newly wrong, 1 newly right: not significantly worse (exact McNemar p = 5/16),
    # but not shown to be within 1 point either: a person should look.
    accuracy = metric(result, "accuracy")
    assert accuracy["verdict"] == "fail"
    assert not accuracy["critical"]
    assert accuracy["figures"]["p_value"] == pytest.approx(5 / 16)
    assert accuracy["reason"].startswith("not shown to be within 1.0 pt")
    assert any(n.startswith("warm-up: paired log-latency sd") for n in result.report["notes"])
    latency = metric(result, "latency")
    assert latency["verdict"] == "pass", latency["reason"]
    assert "time-paired windows" in latency["figures"]["source"], latency["reason"]
    assert_no_arm(e2e_namespace)


def test_slower_tag_fails_on_latency_as_the_servers_measured_it(
    live_v1: dict[str, Any], e2e_namespace: str, tmp_path: Path
) -> None:
    # The tag sleeps 1.2 ms more per request than v1 in the model itself: ~25 % of what
    # MLServer measures per inference, however slow the port-forward's path is on a busy
    # machine (it was 35-50 ms under load: the reason the latency is judged server-side).
    # 500 requests per arm, not 200: measured fairly (no canary pod gets two requests at once
    # more than a baseline pod) the tag is ~1.29x at load 25-45, where 200 requests' ~13
    # windows find it with power ~0.7 and 500's ~33 with ~0.97 (the canary says so before
    # its traffic; docs/canary.md, "What a pod's lasting level was"). 500, not the default
    # 720: the test's time. Their traffic takes 50-150 s on a busy node; 300 s for it, above
    # the 260 s the size would get by default.
    result = run_canary(
        e2e_namespace,
        tmp_path,
        "--image-tag=slower",
        "--canary-requests=500",
        env={"ROLLOUTGATE_CANARY_TRAFFIC_TIMEOUT": "300"},
    )
    assert result.returncode == 1, result.output[-5000:]
    assert metric(result, "golden")["verdict"] == "pass"
    latency = metric(result, "latency")
    assert latency["verdict"] == "fail", latency["reason"]
    # Not asserted: critical or not. The sleep's wake-up is late on a loaded node: ratio 1.3
    # at load average 10, 1.65 (critical, >= 1.5) at 60 in the counted runs.
    figures = latency["figures"]
    assert figures["source"].startswith("server-side model_infer_request_duration")
    assert "time-paired windows" in figures["source"]
    assert figures["p_value"] < 0.02
    assert figures["ratio_low"] > 1.0
    assert figures["estimate"]["pods"] == [3, 3]
    assert len(figures["server_ms_by_pod"]["canary"]) == 3
    assert "one-sided p = " in latency["reason"]
    assert_no_arm(e2e_namespace)


def test_too_few_requests_is_inconclusive(
    live_v1: dict[str, Any], e2e_namespace: str, tmp_path: Path
) -> None:
    result = run_canary(
        e2e_namespace, tmp_path, "--image-tag=v2", "--canary-requests=30", env=ONE_POD
    )
    assert result.returncode == 7, result.output[-5000:]
    assert result.report["verdict"] == "inconclusive"
    assert "too few samples" in result.report["reason"]
    assert_no_arm(e2e_namespace)
