"""Releases of a V2 model server (iris on MLServer, one replica): a first deploy and an upgrade
pass; a model that answers wrong, and one MLServer never makes ready, fail on their own cause,
roll back to v1 and verify it; afterwards the live Deployment equals the snapshot taken before
the gate ran. The gate's other verdicts are tested on the penguin example
(test_bad_releases.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gaterun import IRIS


def test_first_deploy_of_v1_passes(v1_release: dict, e2e_namespace: str) -> None:
    assert v1_release["verdict"] == "pass"
    assert v1_release["first_deploy"] is True
    assert v1_release["tests"]["failed"] == v1_release["tests"]["error"] == 0
    assert v1_release["tests"]["passed"] >= 10
    assert IRIS.ready_with(e2e_namespace, "v1")


def test_v1_to_v2_passes_and_v2_back_to_v1_passes(
    v1_release: dict, e2e_namespace: str, iris_manifests: Path, tmp_path: Path
) -> None:
    manifests = f"--manifests={iris_manifests}"
    up = IRIS.run(e2e_namespace, tmp_path / "v2.json", manifests, "--image-tag=v2")
    assert up.returncode == 0, up.output[-4000:]
    assert (up.report["verdict"], up.report["previous_tag"]) == ("pass", "v1")
    assert IRIS.ready_with(e2e_namespace, "v2")

    back = IRIS.run(e2e_namespace, tmp_path / "v1.json", manifests, "--image-tag=v1")
    assert back.returncode == 0, back.output[-4000:]
    assert (back.report["verdict"], back.report["previous_tag"]) == ("pass", "v2")
    assert IRIS.ready_with(e2e_namespace, "v1")


# tag → words the verdict's cause must contain (all of them).
BAD_RELEASES = {
    "wrong": ("test_golden_case", "expected 0 got 1"),
    # MLServer answers its readiness probe 400 while a model is not loaded; the local
    # profile's ready_grace (30 s) turns "never" into a verdict before the rollout timeout.
    "unready": ("NeverReady", "statuscode: 400", "ready_grace 30 s"),
}


@pytest.mark.parametrize("tag", list(BAD_RELEASES))
def test_bad_release_fails_on_its_cause_and_rolls_back_to_v1_verified(
    tag: str, v1_release: dict, e2e_namespace: str, iris_manifests: Path, tmp_path: Path
) -> None:
    before = IRIS.state(e2e_namespace)
    result = IRIS.run(
        e2e_namespace,
        tmp_path / "gate.json",
        f"--manifests={iris_manifests}",
        f"--image-tag={tag}",
        "--rollout-timeout=120",
    )

    assert result.returncode == 1, result.output[-4000:]
    report = result.report
    assert report["verdict"] == "rolled-back", report.get("cause")
    assert report["previous_tag"] == "v1"
    for word in BAD_RELEASES[tag]:
        assert word in report["cause"], report["cause"]
    assert report["rollback"]["verified"] is True, report["rollback"]
    assert "rolled back to v1, verified" in result.output
    assert report["diagnostics"], "a failed gate must carry diagnostics"

    assert IRIS.state(e2e_namespace) == before
    assert IRIS.ready_with(e2e_namespace, "v1")
