"""Good releases pass; every bad release fails on its own cause, rolls back to v1 and verifies
it; afterwards the live Deployment equals the snapshot taken before the gate ran."""

from __future__ import annotations

from pathlib import Path

import pytest
from gaterun import deployment_state, live_pods_ready_with, run_gate


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
