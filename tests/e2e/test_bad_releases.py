"""Every bad release fails on its own cause, rolls back to v1 and verifies it; afterwards the
live Deployment equals the snapshot taken before the gate ran. On the penguin example (plain
HTTP on its own paths, one replica): what is tested is the gate's verdict, not the server."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from gaterun import PENGUIN
from manifestkit import fresh_namespace

# tag → (extra arguments, words the verdict's cause must contain: any of them). crash and
# missing run with the manifests' progressDeadlineSeconds of 600 s and must fail on their own
# reason, not a deadline; unready on the ready grace given here, not the rollout timeout.
BAD_RELEASES = {
    "crash": ((), ("CrashLoopBackOff", "restart")),
    "missing": ((), ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull")),
    "unready": (("--ready-grace=5",), ("NeverReady",)),
    "wrong": ((), ("expected 'Adelie' got 'Chinstrap'",)),
    "slow": ((), ("latency",)),
}


@pytest.mark.parametrize("tag", list(BAD_RELEASES))
def test_bad_release_fails_on_its_cause_and_rolls_back_to_v1_verified(
    tag: str, penguin_v1: dict, e2e_namespace: str, tmp_path: Path
) -> None:
    args, words = BAD_RELEASES[tag]
    before = PENGUIN.state(e2e_namespace)

    result = PENGUIN.run(
        e2e_namespace, tmp_path / "gate.json", f"--image-tag={tag}", "--rollout-timeout=120", *args
    )

    assert result.returncode == 1, result.output[-4000:]
    report = result.report
    assert report["verdict"] == "rolled-back", report.get("cause")
    assert report["previous_tag"] == "v1"
    assert any(word in report["cause"] for word in words), report["cause"]
    if tag in ("crash", "missing", "unready"):
        assert "ProgressDeadlineExceeded" not in report["cause"]
        assert "timed out" not in report["cause"].lower()
    assert report["rollback"]["verified"] is True, report["rollback"]
    assert "rolled back to v1, verified" in result.output
    assert report["diagnostics"], "a failed gate must carry diagnostics"

    assert PENGUIN.state(e2e_namespace) == before
    assert PENGUIN.ready_with(e2e_namespace, "v1")


def test_release_past_a_short_progress_deadline_rolls_back_and_verifies(
    e2e_cluster: None, tmp_path: Path
) -> None:
    # The failed release leaves ProgressDeadlineExceeded on the Deployment; the rollback's wait
    # must not hold that against the restored v1. With one replica the controller sees no
    # progress in the restore (updated replicas stay 1) and keeps the condition for a while.
    manifests = PENGUIN.copy(tmp_path / "manifests")
    deployment = manifests / "deployment.yaml"
    dep = yaml.safe_load(deployment.read_text())
    assert dep["spec"]["progressDeadlineSeconds"] == 600
    assert dep["spec"]["replicas"] == 1
    dep["spec"]["progressDeadlineSeconds"] = 15
    deployment.write_text(yaml.safe_dump(dep, sort_keys=False))
    with fresh_namespace("e2e-deadline") as namespace:
        first = PENGUIN.run(
            namespace, tmp_path / "v1.json", "--image-tag=v1", f"--manifests={manifests}"
        )
        assert first.returncode == 0, first.output[-4000:]
        before = PENGUIN.state(namespace)

        result = PENGUIN.run(
            namespace,
            tmp_path / "gate.json",
            "--image-tag=unready",
            f"--manifests={manifests}",
            "--rollout-timeout=120",
        )

        assert result.returncode == 1, result.output[-4000:]
        assert "exceeded its progress deadline" in result.report["cause"], result.report["cause"]
        assert result.report["rollback"]["verified"] is True, result.report["rollback"]
        assert PENGUIN.state(namespace) == before
        assert PENGUIN.ready_with(namespace, "v1")
