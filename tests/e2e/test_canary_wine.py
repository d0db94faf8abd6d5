"""The canary on the second example, a plain-HTTP server (FastAPI, ``POST /predict``), through
the ``local-wine`` profile: the golden cases and the 178 labelled wine rows go out in the plain
protocol; v1 is live (deployed by the gate) and candidates are judged against it. Every run
leaves no arm behind and the live release as it was.

One run per verdict, arms at one replica, 100 requests spread over 10 s: enough samples for
every metric (50 per arm), short on a shared 2-core machine."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from canaryrun import again_on_a_latency_alarm
from gaterun import KUBECONFIG, REPO, WINE, Result, gate_argv, kubectl, loaded_tags

TAGS = ("v1", "v2", "wrong", "hang")
SMALL = {
    "ROLLOUTGATE_CANARY_WARMUP": "5",
    "ROLLOUTGATE_CANARY_MIN_DURATION": "10",
    "ROLLOUTGATE_CANARY_REQUESTS": "100",
    "ROLLOUTGATE_CANARY_MAX_DURATION": "0",  # sized for the verdicts, not latency's power
    "ROLLOUTGATE_REQUEST_TIMEOUT": "3",
}


@pytest.fixture(scope="module")
def wine_namespace() -> Iterator[str]:
    """Module: a fresh namespace for the wine release (the gate creates it), deleted after."""
    if not KUBECONFIG.is_file() or not set(TAGS) <= (loaded_tags(WINE.image) or set()):
        message = "no local cluster or wine images: run `make cluster-up load-images`"
        if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    name = f"e2e-wine-canary-{uuid.uuid4().hex[:8]}"
    yield name
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


@pytest.fixture(scope="module")
def wine_manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Module: the wine manifests at one replica (for the live release and so for the arms)."""
    return WINE.copy(tmp_path_factory.mktemp("wine") / "manifests", replicas=1)


@pytest.fixture(scope="module")
def live_v1(
    wine_namespace: str, wine_manifests: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Module: wine v1 deployed by the gate; its state, to compare after each canary."""
    report = tmp_path_factory.mktemp("v1") / "gate.json"
    # The live release's latency budget is not this module's subject (the shared node's load
    # failed it once: p95 over 500 ms with the load average at 20).
    result = WINE.run(
        wine_namespace,
        report,
        f"--manifests={wine_manifests}",
        "--image-tag=v1",
        "--deselect=tests/smoke/test_predictions.py::test_latency_budget",
    )
    assert result.returncode == 0, f"first deploy of wine v1 failed:\n{result.output[-4000:]}"
    return WINE.state(wine_namespace)


def run_canary(
    namespace: str, manifests: Path, out: Path, tag: str, env: dict[str, str] | None = None
) -> Result:
    out.mkdir(parents=True, exist_ok=True)
    argv = [
        *gate_argv(namespace, out / "gate.json", cluster=WINE.profile),
        f"--manifests={manifests}",
        "--canary",
        f"--image-tag={tag}",
        f"--canary-report={out / 'canary.json'}",
    ]
    env = {
        **os.environ,
        **SMALL,
        "ROLLOUTGATE_CANARY_HTML": str(out / "canary.html"),
        "ROLLOUTGATE_CANARY_HISTORY": str(out / "history.jsonl"),
        **(env or {}),
    }
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    report = out / "canary.json"
    data = json.loads(report.read_text()) if report.exists() else {}
    return Result(proc.returncode, proc.stdout + proc.stderr, data)


def metric(result: Result, name: str) -> dict[str, Any]:
    return next(m for m in result.report["metrics"] if m["name"] == name)


def assert_untouched(namespace: str, live: dict[str, Any]) -> None:
    __tracebackhide__ = True
    arms = kubectl(
        "get",
        "deployments",
        "-l",
        "rolloutgate.io/canary-of=wine",
        "-o",
        "name",
        namespace=namespace,
    )
    assert arms.strip() == ""
    assert WINE.state(namespace) == live


def test_v2_against_v1_passes_on_the_plain_protocol(
    live_v1: dict[str, Any], wine_namespace: str, wine_manifests: Path, tmp_path: Path
) -> None:
    # v2 differs from v1 only in C (same pipeline, same compute): its latency is weighed, on
    # the servers' own histogram read in time-paired windows (it failed 2 busy runs of
    # 2026-12-03 judged on each pod's totals with the 0.08 prior: ratio 1.28 in CI, 1.77 at
    # load 59 — false alarms, issue 17).
    result = again_on_a_latency_alarm(
        lambda: run_canary(wine_namespace, wine_manifests, tmp_path, "v2"), tmp_path
    )
    assert result.returncode == 0, result.output[-5000:]
    assert result.report["verdict"] == "pass"
    assert (result.report["baseline_tag"], result.report["candidate_tag"]) == ("v1", "v2")
    assert metric(result, "golden")["verdict"] == "pass"
    latency = metric(result, "latency")
    assert latency["verdict"] == "pass", latency["reason"]
    assert "time-paired windows" in latency["figures"]["source"], latency["reason"]
    # The request set's labelled rows were sent and judged: same classes, other scores.
    accuracy = metric(result, "accuracy")
    assert accuracy["verdict"] == "pass"
    assert accuracy["figures"]["output"] == "predictions"
    assert accuracy["figures"]["labelled"] >= 50
    assert metric(result, "agreement")["figures"]["flips"] <= 2
    assert metric(result, "numeric")["figures"]["compared"] > 0  # probabilities: numbers
    # The refused-row golden case (400 expected) is no error of either arm.
    assert metric(result, "errors")["figures"]["canary_errors"] == 0
    assert_untouched(wine_namespace, live_v1)


def test_wrong_fails_naming_the_flipped_rows(
    live_v1: dict[str, Any], wine_namespace: str, wine_manifests: Path, tmp_path: Path
) -> None:
    result = run_canary(wine_namespace, wine_manifests, tmp_path, "wrong")
    assert result.returncode == 1, result.output[-5000:]
    assert result.report["verdict"] == "fail"
    golden = metric(result, "golden")
    assert golden["verdict"] == "fail"
    assert "golden:class-0" in golden["figures"]["failing"]
    assert "golden:short-row-is-refused" not in golden["figures"]["failing"]
    agreement = metric(result, "agreement")
    assert agreement["verdict"] == "fail"
    flipped = {f["item"] for f in agreement["figures"]["flipped"]}
    assert any(item.startswith("set:wine-") for item in flipped), flipped
    assert "set:wine-" in agreement["reason"]  # the flipped rows are named
    assert metric(result, "accuracy")["figures"]["canary"] < 0.2  # rotated labels
    assert_untouched(wine_namespace, live_v1)


def test_a_candidate_that_never_answers_fails_on_its_own_timeouts(
    live_v1: dict[str, Any], wine_namespace: str, wine_manifests: Path, tmp_path: Path
) -> None:
    # One pod per arm: the verdict is the errors', and six pods on the shared node were more
    # than its probes could bear once (a baseline pod unready after 80 s of rollout).
    result = run_canary(
        wine_namespace, wine_manifests, tmp_path, "hang", env={"ROLLOUTGATE_CANARY_REPLICAS": "1"}
    )
    assert result.returncode == 1, result.output[-5000:]
    assert result.report["verdict"] == "fail"
    errors = metric(result, "errors")
    assert (errors["verdict"], errors["critical"]) == ("fail", True)
    assert "the canary stopped answering: 4 requests in a row" in errors["reason"]
    assert "got no answer within 3 s" in errors["reason"]
    assert_untouched(wine_namespace, live_v1)
