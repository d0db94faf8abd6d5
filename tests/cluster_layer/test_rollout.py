"""apply + rollout.wait on the real cluster: success, fail-fast reasons, timeout messages."""

from __future__ import annotations

import time

import pytest
from kubernetes.client import ApiClient

from rolloutgate.errors import RolloutFailed, RolloutTimeout
from rolloutgate.release import apply, diagnostics
from rolloutgate.workloads import DeploymentViewer

from .conftest import deployment, wait_deployment, workload_ref


def deploy(api: ApiClient, namespace: str, obj: dict[str, object]) -> int:
    """Validate and apply one object; the Deployment's generation from the apply."""
    apply.validate(api, namespace, [obj])
    applied = apply.apply(api, namespace, [obj], change_cause="test")
    return int(applied[0]["metadata"]["generation"])


def test_rollout_of_two_replicas_completes_and_reports_progress(
    api: ApiClient, namespace: str, test_image: str
) -> None:
    generation = deploy(api, namespace, deployment("web", test_image, replicas=2))
    lines: list[str] = []
    dep = wait_deployment(
        api,
        namespace,
        "web",
        deadline=time.monotonic() + 90,
        max_restarts=0,
        on_progress=lines.append,
        generation=generation,
    )
    assert dep["status"]["availableReplicas"] == 2
    assert dep["status"]["updatedReplicas"] == 2
    assert dep["metadata"]["annotations"]["kubernetes.io/change-cause"] == "test"
    assert dep["metadata"]["annotations"][DeploymentViewer.REVISION] == "1"
    assert lines, "no progress line"
    assert lines[0].startswith("rollout Deployment/web: ")


def test_second_revision_is_pinned_and_waited_for(
    api: ApiClient, namespace: str, test_image: str
) -> None:
    deploy(api, namespace, deployment("web", test_image, replicas=2))
    wait_deployment(api, namespace, "web", deadline=time.monotonic() + 90, max_restarts=0)
    changed = deployment("web", test_image, replicas=2, env={"RELEASE": "2"})
    generation = deploy(api, namespace, changed)
    # Called at once: the controller may not have bumped the revision yet.
    dep = wait_deployment(
        api,
        namespace,
        "web",
        deadline=time.monotonic() + 90,
        max_restarts=0,
        generation=generation,
    )
    assert dep["metadata"]["annotations"][DeploymentViewer.REVISION] == "2"
    assert dep["status"]["replicas"] == dep["status"]["updatedReplicas"] == 2


def test_image_never_built_fails_fast_on_its_own_reason(
    api: ApiClient, namespace: str, test_image: str
) -> None:
    missing = test_image.rsplit(":", 1)[0] + ":never-built"
    deploy(api, namespace, deployment("web", missing))
    started = time.monotonic()
    with pytest.raises(RolloutFailed) as info:
        wait_deployment(api, namespace, "web", deadline=started + 120, max_restarts=0)
    assert info.value.reason == "ErrImageNeverPull"
    assert info.value.pod
    assert info.value.pod.startswith("web-")
    assert info.value.pod in str(info.value)
    assert "never-built" in str(info.value)  # the kubelet's message names the image
    assert time.monotonic() - started < 60
    assert not isinstance(info.value, RolloutTimeout)


def test_crash_fails_fast_on_its_status_and_the_diagnostics_carry_its_log(
    api: ApiClient, namespace: str, test_image: str
) -> None:
    crash = ["/bin/busybox", "sh", "-c", "echo loading model; echo boom: bad weights; exit 3"]
    deploy(api, namespace, deployment("web", test_image, command=crash))
    started = time.monotonic()
    with pytest.raises(RolloutFailed) as info:
        # No exit allowed: the first crash is the verdict, not the kubelet's later back-off.
        wait_deployment(api, namespace, "web", deadline=started + 120, max_restarts=0)
    assert info.value.reason == "CrashLoopBackOff"
    text = str(info.value)
    assert "exited with code 3" in text
    # The verdict asks the kubelet for nothing (it holds log requests while it restarts the
    # container); the log comes with the diagnostics, gathered beside the rollback.
    assert "boom" not in text
    assert time.monotonic() - started < 90
    found = diagnostics.render(diagnostics.collect(api, namespace, workload_ref("web")))
    assert "boom: bad weights" in found, found


def test_restart_threshold(api: ApiClient, namespace: str, test_image: str) -> None:
    crash = ["/bin/busybox", "sh", "-c", "echo once; exit 1"]
    deploy(api, namespace, deployment("web", test_image, command=crash))
    with pytest.raises(RolloutFailed) as info:
        wait_deployment(api, namespace, "web", deadline=time.monotonic() + 120, max_restarts=0)
    # The first restart is over a threshold of 0; the back-off may be reported first.
    assert info.value.reason in {"TooManyRestarts", "CrashLoopBackOff"}


def test_unready_release_times_out_naming_the_failing_probe(
    api: ApiClient, namespace: str, test_image: str
) -> None:
    deploy(api, namespace, deployment("web", test_image, readiness_path="/v2/health/ready"))
    started = time.monotonic()
    with pytest.raises(RolloutTimeout) as info:
        # Long enough for the pod to start and fail its probe on a busy node.
        wait_deployment(api, namespace, "web", deadline=started + 30, max_restarts=0)
    text = str(info.value)
    assert "0/1 new pods ready" in text
    assert "container web not ready (readiness probe failing:" in text
    assert "404" in text
    assert 30 <= time.monotonic() - started < 60  # the deadline, and not much later


def test_missing_deployment(api: ApiClient, namespace: str) -> None:
    with pytest.raises(RolloutFailed) as info:
        wait_deployment(api, namespace, "nope", deadline=time.monotonic() + 5, max_restarts=0)
    assert info.value.reason == "NotFound"
