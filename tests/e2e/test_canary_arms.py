"""The canary end to end on the local cluster: v1 is live (deployed by the gate), candidates are
judged against it side by side. Every run must leave no arm behind and the live release as it
was; only --promote on a Pass may change it (last test of the module).

Runs are kept small where the verdict does not need 200 requests (2-core machines)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gaterun import (
    CRI_SOCKET,
    REPO,
    Result,
    RunningGate,
    deployment_state,
    gate_argv,
    kubectl,
    live_pods_ready_with,
)

CANARY_TAGS = ("retrained", "slower", "hang")
ARM_SELECTOR = "rolloutgate.io/canary-of=iris"


@pytest.fixture(scope="module", autouse=True)
def _canary_images(e2e_cluster: None) -> None:
    proc = subprocess.run(
        ["ctr", "--address", CRI_SOCKET, "-n", "k8s.io", "images", "ls", "-q"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    loaded = {line.rsplit(":", 1)[-1] for line in proc.stdout.splitlines() if "/iris:" in line}
    missing = set(CANARY_TAGS) - loaded
    if missing:
        message = f"canary example images not loaded: {sorted(missing)}; run `make load-images`"
        if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
            pytest.fail(message)
        pytest.skip(message)


def canary_argv(namespace: str, out: Path, *args: str) -> list[str]:
    return [
        *gate_argv(namespace, out / "gate.json", *args),
        "--canary",
        f"--canary-report={out / 'canary.json'}",
        f"--junitxml={out / 'junit.xml'}",
    ]


def run_canary(namespace: str, out: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    out.mkdir(parents=True, exist_ok=True)
    # The HTML page and history go next to the JSON report (not into the repository's reports/).
    env = {
        "ROLLOUTGATE_CANARY_HTML": str(out / "canary.html"),
        "ROLLOUTGATE_CANARY_HISTORY": str(out / "history.jsonl"),
        **(env or {}),
    }
    proc = subprocess.run(
        canary_argv(namespace, out, *args),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    report = out / "canary.json"
    data = json.loads(report.read_text()) if report.exists() else {}
    return Result(proc.returncode, proc.stdout + proc.stderr, data)


class RunningCanary(RunningGate):
    """A canary started in the background, read line by line and signalled."""

    def __init__(
        self, namespace: str, out: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.report = out / "canary.json"
        self.lines = []
        env = {
            **os.environ,
            "ROLLOUTGATE_CANARY_HISTORY": str(out / "history.jsonl"),
            **(env or {}),
        }
        env["ROLLOUTGATE_CANARY_HTML"] = str(out / "canary.html")
        self.proc = subprocess.Popen(
            canary_argv(namespace, out, *args),
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )


def metric(result: Result, name: str) -> dict[str, Any]:
    return next(m for m in result.report["metrics"] if m["name"] == name)


def assert_no_arm(namespace: str) -> None:
    __tracebackhide__ = True
    left = json.loads(
        kubectl(
            "get", "deployments,replicasets", "-l", ARM_SELECTOR, "-o", "json", namespace=namespace
        )
    )["items"]
    assert left == [], [i["metadata"]["name"] for i in left]
    pods = json.loads(
        kubectl("get", "pods", "-l", ARM_SELECTOR, "-o", "json", namespace=namespace)
    )["items"]
    assert all(p["metadata"].get("deletionTimestamp") for p in pods), pods


@pytest.fixture(scope="module", autouse=True)
def _one_replica(iris_manifests: Path) -> Iterator[None]:
    """Module: every canary, and the gate a promotion runs, takes the one-replica manifests the
    live v1 came from, through the environment (a promotion's gate inherits it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROLLOUTGATE_MANIFESTS", str(iris_manifests))
        yield


@pytest.fixture(scope="module")
def live_v1(v1_release: dict[str, object], e2e_namespace: str) -> dict[str, Any]:
    """Module: v1 is live; what it looks like, to compare after each canary."""
    return deployment_state(e2e_namespace)


def test_v2_against_v1_passes_and_touches_nothing_live(
    live_v1: dict[str, Any], e2e_namespace: str, tmp_path: Path
) -> None:
    result = run_canary(e2e_namespace, tmp_path, "--image-tag=v2")
    assert result.returncode == 0, result.output[-5000:]
    report = result.report
    assert report["verdict"] == "pass"
    assert report["score"] >= 95
    assert report["baseline_tag"] == "v1"
    assert report["candidate_tag"] == "v2"
    assert report["traffic"]["per_arm"]["canary"]["measured"] == 200
    assert metric(result, "golden")["verdict"] == "pass"
    assert metric(result, "latency")["verdict"] == "pass"
    # v2 (C=10) disagrees with v1 on one iris row: reported, within the 5 % allowed.
    assert metric(result, "agreement")["figures"]["flips"] <= 2
    assert report["seconds_to_verdict"] < 120
    assert_no_arm(e2e_namespace)
    assert deployment_state(e2e_namespace) == live_v1
    cases = {c.get("name") for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert {"latency", "agreement", "errors", "verdict"} <= cases
    assert "<svg" in (tmp_path / "canary.html").read_text()
    assert json.loads((tmp_path / "history.jsonl").read_text())["verdict"] == "pass"


def test_wrong_fails_on_predictions_naming_flipped_cases(
    live_v1: dict[str, Any], e2e_namespace: str, tmp_path: Path
) -> None:
    result = run_canary(e2e_namespace, tmp_path, "--image-tag=wrong", "--canary-requests=80")
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
    # The test is about the flips; latency not weighed (nor critical below 10x). `retrained`
    # runs the same model class and runtime as v1, yet 3 of its 9 real runs failed latency
    # server-side (ratio 1.2-1.3 at 3+3 pods; 2 of 8 counted in docs/canary.md, 1 in make
    # test): unexplained, an open question of issue 17, not this test's.
    result = run_canary(
        e2e_namespace,
        tmp_path,
        "--image-tag=retrained",
        env={
            "ROLLOUTGATE_CANARY_WEIGHTS_LATENCY": "0",
            "ROLLOUTGATE_CANARY_LATENCY_CRITICAL_RATIO": "10",
        },
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
    assert_no_arm(e2e_namespace)


def test_slower_tag_fails_on_latency_as_the_servers_measured_it(
    live_v1: dict[str, Any], e2e_namespace: str, tmp_path: Path
) -> None:
    # The tag sleeps 1.2 ms more per request than v1 in the model itself: ~25 % of what
    # MLServer measures per inference, however slow the port-forward's path is on a busy
    # machine (it was 35-50 ms under load: the reason the latency is judged server-side).
    result = run_canary(e2e_namespace, tmp_path, "--image-tag=slower")
    assert result.returncode == 1, result.output[-5000:]
    assert metric(result, "golden")["verdict"] == "pass"
    latency = metric(result, "latency")
    assert latency["verdict"] == "fail", latency["reason"]
    # Not asserted: critical or not. The sleep's wake-up is late on a loaded node: ratio 1.3
    # at load average 10, 1.65 (critical, >= 1.5) at 60 in the counted runs.
    figures = latency["figures"]
    assert figures["source"] == "server-side model_infer_request_duration"
    assert figures["p_value"] < 0.02
    assert figures["ratio_low"] > 1.0
    assert figures["estimate"]["pods"] == [3, 3]
    assert len(figures["server_ms_by_pod"]["canary"]) == 3
    assert "one-sided p = " in latency["reason"]
    assert_no_arm(e2e_namespace)


@pytest.mark.parametrize(
    ("tag", "args", "reason"),
    [
        ("crash", (), "canary arm: "),
        ("missing", (), "canary arm: "),
        ("unready", ("--rollout-timeout=25",), "canary arm: "),
        ("slow", ("--canary-requests=50",), "latency: canary much slower"),
        # Accepts every inference and never answers: 4 request timeouts in a row that the
        # baseline answered stop the traffic (a 3 s request timeout keeps the run short).
        ("hang", (), "errors: the canary stopped answering: 4 requests in a row failed"),
    ],
)
def test_broken_candidates_fail_with_both_arms_removed(
    live_v1: dict[str, Any],
    e2e_namespace: str,
    tmp_path: Path,
    tag: str,
    args: tuple[str, ...],
    reason: str,
) -> None:
    start = time.monotonic()
    result = run_canary(
        e2e_namespace,
        tmp_path,
        f"--image-tag={tag}",
        *args,
        # One pod per arm: a broken candidate is broken on one pod (and the node's pod limit
        # was met by six once).
        env={
            "ROLLOUTGATE_CANARY_WARMUP": "2",
            "ROLLOUTGATE_REQUEST_TIMEOUT": "3",
            "ROLLOUTGATE_CANARY_REPLICAS": "1",
        },
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 1, result.output[-5000:]
    assert result.report["verdict"] == "fail"
    assert reason in result.report["reason"], result.report["reason"]
    if tag in ("crash", "missing"):
        # Fail fast: the arm's first crash or pull error, not a deadline.
        assert result.report["phases_s"]["rollout"] < 60, result.report["phases_s"]
    if tag == "hang":
        errors = metric(result, "errors")
        assert errors["critical"], errors
        assert "got no answer within 3 s" in errors["reason"]
        # Its timeouts are its own: in its latency samples, not filed as the path's.
        samples = result.report["evidence"]["samples"]
        canary = [s for s in samples if s["arm"] == "canary"]
        assert {s["outcome"] for s in canary} == {"timeout"}
        # Stopped on the streak (4 pairs in a row, warm-up included, and what was in flight),
        # not after 200 timeouts.
        assert len(canary) <= 12, len(canary)
        assert result.report["phases_s"]["traffic"] < 30, result.report["phases_s"]
    assert elapsed < 240
    assert_no_arm(e2e_namespace)
    assert deployment_state(e2e_namespace) == live_v1


def test_too_few_requests_is_inconclusive(
    live_v1: dict[str, Any], e2e_namespace: str, tmp_path: Path
) -> None:
    result = run_canary(e2e_namespace, tmp_path, "--image-tag=v2", "--canary-requests=30")
    assert result.returncode == 7, result.output[-5000:]
    assert result.report["verdict"] == "inconclusive"
    assert "too few samples" in result.report["reason"]
    assert_no_arm(e2e_namespace)


def test_sigterm_mid_run_leaves_no_arm_and_the_live_release_untouched(
    live_v1: dict[str, Any], e2e_namespace: str, tmp_path: Path
) -> None:
    gate = RunningCanary(e2e_namespace, tmp_path, "--image-tag=v2", "--canary-requests=5000")
    try:
        gate.wait_for_line("canary traffic: ", timeout=240)
        time.sleep(2)  # mid-traffic
    finally:
        result = gate.terminate_and_wait(timeout=240)
    assert result.returncode == 2, result.output[-5000:]
    assert result.report["verdict"] == "interrupted"
    assert result.report["interrupted"] == "SIGTERM"
    assert any("deleted" in c for c in result.report["cleanup"]), result.report["cleanup"]
    assert_no_arm(e2e_namespace)
    assert deployment_state(e2e_namespace) == live_v1
    assert live_pods_ready_with(e2e_namespace, "v1")


def test_promotion_is_refused_when_the_live_release_changed_during_the_run(
    live_v1: dict[str, Any], e2e_namespace: str, tmp_path: Path
) -> None:
    # Changed the way a person or another tool does it, without the release's lease; paused,
    # so that the template changes and no pod does (nothing to wait for, nothing to undo).
    kubectl("rollout", "pause", "deployment/iris", namespace=e2e_namespace)
    # The candidate is the live tag (A/A): a Pass that does not hang on 60 requests' power.
    # Latency not weighed (nor critical below 10x), as in the next test: one pod per arm on
    # the loaded node, A/A failed it once here (server-side ratio 1.50, the pods' difference).
    gate = RunningCanary(
        e2e_namespace,
        tmp_path,
        "--image-tag=v1",
        "--promote",
        "--canary-requests=60",
        env={
            "ROLLOUTGATE_CANARY_WARMUP": "2",
            "ROLLOUTGATE_CANARY_MIN_DURATION": "5",
            "ROLLOUTGATE_CANARY_REPLICAS": "1",
            "ROLLOUTGATE_CANARY_WEIGHTS_LATENCY": "0",
            "ROLLOUTGATE_CANARY_LATENCY_CRITICAL_RATIO": "10",
        },
    )
    try:
        gate.wait_for_line("canary traffic: ", timeout=240)
        # The canary holds the release's own lease while it runs.
        lease = json.loads(
            kubectl("get", "lease", "rolloutgate-iris", "-o", "json", namespace=e2e_namespace)
        )
        assert "/pid-" in lease["spec"]["holderIdentity"]
        kubectl(
            "set",
            "image",
            "deployment/iris",
            "model=rolloutgate/iris:retrained",
            namespace=e2e_namespace,
        )
        result = gate.wait(timeout=240)
    finally:
        kubectl(
            "set",
            "image",
            "deployment/iris",
            "model=rolloutgate/iris:v1",
            namespace=e2e_namespace,
        )
        kubectl(
            "patch",
            "deployment/iris",
            "--type=json",
            '-p=[{"op": "remove", "path": "/spec/paused"}]',
            namespace=e2e_namespace,
        )
    assert result.returncode == 7, result.output[-5000:]
    assert result.report["verdict"] == "pass"
    refused = result.report["promotion"]["refused"]
    assert "it ran v1 when the canary started and runs retrained" in refused
    assert "v1 was judged against v1, so it is not promoted" in refused
    assert "promotion refused: " in result.output
    assert_no_arm(e2e_namespace)
    assert live_pods_ready_with(e2e_namespace, "v1")  # nothing was released
    leases = kubectl("get", "leases", "-o", "name", namespace=e2e_namespace)
    assert "rolloutgate-iris" not in leases  # released at the end


def test_promote_on_pass_releases_the_candidate_with_the_gate(
    live_v1: dict[str, Any], e2e_namespace: str, tmp_path: Path
) -> None:
    # Latency not weighed: this test is the promotion's; the latency rule has its own tests,
    # and v2 failed it twice here on the loaded node (server-side ratio 1.18 and 1.21).
    result = run_canary(
        e2e_namespace,
        tmp_path,
        "--image-tag=v2",
        "--promote",
        env={"ROLLOUTGATE_CANARY_WEIGHTS_LATENCY": "0", "ROLLOUTGATE_CANARY_REPLICAS": "1"},
    )
    assert result.returncode == 0, result.output[-5000:]
    assert result.report["verdict"] == "pass"
    promotion = result.report["promotion"]
    assert promotion["exit_status"] == 0, promotion
    assert promotion["verdict"] == "pass"
    gate_report = json.loads(Path(promotion["report"]).read_text())
    assert gate_report["previous_tag"] == "v1"
    assert gate_report["tests"]["passed"] > 5  # the gate's own checks ran
    # Started as the canary was, without the canary's own options; under the canary's lease,
    # so it did not wait for it (the canary renews it until the gate ends).
    assert "--canary" not in promotion["args"]
    assert "--promote" not in promotion["args"]
    assert f"--namespace={e2e_namespace}" in promotion["args"]
    assert gate_report["phases_s"]["lock"] < 10, gate_report["phases_s"]
    assert live_pods_ready_with(e2e_namespace, "v2")
    assert_no_arm(e2e_namespace)
