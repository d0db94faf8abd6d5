"""Good releases pass; every bad release fails on its own cause, rolls back to v1 and verifies
it; afterwards the live Deployment equals the snapshot taken before the gate ran."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from gaterun import REPO, deployment_state, kubectl, live_pods_ready_with, run_gate

MANIFESTS = REPO / "fixtures" / "manifests"


def test_first_deploy_of_v1_passes(v1_release: dict, e2e_namespace: str) -> None:
    assert v1_release["verdict"] == "pass"
    assert v1_release["first_deploy"] is True
    assert v1_release["tests"]["failed"] == v1_release["tests"]["error"] == 0
    assert v1_release["tests"]["passed"] >= 10
    assert live_pods_ready_with(e2e_namespace, "v1")


def test_v1_to_v2_passes_and_v2_back_to_v1_passes(
    v1_release: dict, e2e_namespace: str, tmp_path: Path
) -> None:
    up = run_gate(e2e_namespace, tmp_path / "v2.json", "--image-tag=v2")
    assert up.returncode == 0, up.output[-4000:]
    assert (up.report["verdict"], up.report["previous_tag"]) == ("pass", "v1")
    assert live_pods_ready_with(e2e_namespace, "v2")

    back = run_gate(e2e_namespace, tmp_path / "v1.json", "--image-tag=v1")
    assert back.returncode == 0, back.output[-4000:]
    assert (back.report["verdict"], back.report["previous_tag"]) == ("pass", "v2")
    assert live_pods_ready_with(e2e_namespace, "v1")


# tag → words the verdict's cause must contain (any of them). crash and missing run with the
# manifests' progressDeadlineSeconds of 600 s and must fail on their own reason, not a deadline.
BAD_RELEASES = {
    "crash": ("CrashLoopBackOff", "restart"),
    "missing": ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull"),
    "unready": ("not ready", "readiness", "Readiness"),
    "wrong": ("golden", "expected", "predict"),
    "slow": ("latency", "p95", "p50"),
}


@pytest.mark.parametrize("tag", list(BAD_RELEASES))
def test_bad_release_fails_on_its_cause_and_rolls_back_to_v1_verified(
    tag: str, v1_release: dict, e2e_namespace: str, tmp_path: Path
) -> None:
    before = deployment_state(e2e_namespace)
    # The unready release only ever fails on a deadline: keep that one short.
    result = run_gate(
        e2e_namespace, tmp_path / "gate.json", f"--image-tag={tag}", "--rollout-timeout=45"
    )

    assert result.returncode == 1, result.output[-4000:]
    report = result.report
    assert report["verdict"] == "rolled-back", report.get("cause")
    assert report["previous_tag"] == "v1"
    assert any(word in report["cause"] for word in BAD_RELEASES[tag]), report["cause"]
    if tag in ("crash", "missing"):
        assert "ProgressDeadlineExceeded" not in report["cause"]
        assert "timed out" not in report["cause"].lower()
    assert report["rollback"]["verified"] is True, report["rollback"]
    assert "rolled back to v1, verified" in result.output
    assert report["diagnostics"], "a failed gate must carry diagnostics"

    assert deployment_state(e2e_namespace) == before
    assert live_pods_ready_with(e2e_namespace, "v1")


def test_release_past_a_short_progress_deadline_rolls_back_and_verifies(
    e2e_cluster: None, tmp_path: Path
) -> None:
    # The failed release leaves ProgressDeadlineExceeded on the Deployment; the rollback's wait
    # must not hold that against the restored v1. With one replica the controller sees no
    # progress in the restore (updated replicas stay 1) and keeps the condition for a while.
    manifests = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, manifests)
    deployment = manifests / "deployment.yaml"
    text = deployment.read_text()
    assert "progressDeadlineSeconds: 600" in text
    assert "replicas: 3" in text
    text = text.replace("progressDeadlineSeconds: 600", "progressDeadlineSeconds: 15")
    deployment.write_text(text.replace("replicas: 3", "replicas: 1"))
    namespace = f"e2e-deadline-{uuid.uuid4().hex[:8]}"
    try:
        first = run_gate(
            namespace, tmp_path / "v1.json", "--image-tag=v1", f"--manifests={manifests}"
        )
        assert first.returncode == 0, first.output[-4000:]
        before = deployment_state(namespace)

        result = run_gate(
            namespace,
            tmp_path / "gate.json",
            "--image-tag=unready",
            f"--manifests={manifests}",
            "--rollout-timeout=120",
        )

        assert result.returncode == 1, result.output[-4000:]
        assert "exceeded its progress deadline" in result.report["cause"], result.report["cause"]
        assert result.report["rollback"]["verified"] is True, result.report["rollback"]
        assert deployment_state(namespace) == before
        assert live_pods_ready_with(namespace, "v1")
    finally:
        kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
