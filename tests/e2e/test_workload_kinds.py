"""The penguin example as a StatefulSet and as a DaemonSet: each release passes, fails fast on a
crash, and rolls back verified — by each kind's own rollout rules (workloads.py's viewers).

A StatefulSet does not replace a pod that never became ready when its template is restored
(Kubernetes' documented "forced rollback"): the gate deletes it after the restore, and the test
proves the restored release healthy. An OnDelete strategy is refused before anything applies.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from gaterun import PENGUIN, kubectl


def as_kind(kind: str, directory: Path, *, on_delete: bool = False) -> Path:
    """The example's manifests with its Deployment turned into `kind`."""
    PENGUIN.copy(directory)
    path = directory / "deployment.yaml"
    dep = yaml.safe_load(path.read_text())
    spec = dep["spec"]
    for key in ("strategy", "progressDeadlineSeconds", "revisionHistoryLimit"):
        spec.pop(key, None)
    dep["kind"] = kind
    strategy: dict[str, Any] = {"type": "OnDelete" if on_delete else "RollingUpdate"}
    if kind == "StatefulSet":
        spec["replicas"] = 2
        spec["serviceName"] = PENGUIN.name
        spec["podManagementPolicy"] = "Parallel"  # both pods start at once on a first deploy
    else:
        spec.pop("replicas", None)
        if not on_delete:
            strategy["rollingUpdate"] = {"maxUnavailable": 1}
    spec["updateStrategy"] = strategy
    path.unlink()
    (directory / f"{kind.lower()}.yaml").write_text(yaml.safe_dump(dep, sort_keys=False))
    return directory


@pytest.fixture(params=["StatefulSet", "DaemonSet"])
def kind_namespace(request: pytest.FixtureRequest, e2e_cluster: None) -> Iterator[tuple[str, str]]:
    """(kind, a fresh namespace), deleted afterwards."""
    name = f"e2e-{request.param.lower()}-{uuid.uuid4().hex[:6]}"
    yield request.param, name
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


def images(namespace: str) -> set[str]:
    pods = json.loads(
        kubectl(
            "get", "pods", "-l", "app.kubernetes.io/name=penguin", "-o", "json", namespace=namespace
        )
    )["items"]
    return {
        c["image"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        for c in p["spec"]["containers"]
    }


def test_release_passes_crash_fails_fast_and_rolls_back_verified(
    kind_namespace: tuple[str, str], tmp_path: Path
) -> None:
    kind, namespace = kind_namespace
    manifests = f"--manifests={as_kind(kind, tmp_path / 'manifests')}"

    first = PENGUIN.run(namespace, tmp_path / "v1.json", "--image-tag=v1", manifests)
    assert first.returncode == 0, first.output[-4000:]
    up = PENGUIN.run(namespace, tmp_path / "v2.json", "--image-tag=v2", manifests)
    assert up.returncode == 0, up.output[-4000:]
    assert (up.report["verdict"], up.report["previous_tag"]) == ("pass", "v1")
    assert images(namespace) == {"rolloutgate/penguin:v2"}
    spec_before = json.loads(
        kubectl("get", kind.lower(), "penguin", "-o", "json", namespace=namespace)
    )["spec"]

    started = time.monotonic()
    crash = PENGUIN.run(namespace, tmp_path / "crash.json", "--image-tag=crash", manifests)
    took = time.monotonic() - started

    assert crash.returncode == 1, crash.output[-4000:]
    report = crash.report
    assert "CrashLoopBackOff" in report["cause"], report["cause"]
    assert report["phases_s"]["rollout"] < 60, report["phases_s"]  # fail fast, not a deadline
    assert report["verdict"] == "rolled-back", report["rollback"]
    assert report["rollback"]["verified"] is True
    assert images(namespace) == {"rolloutgate/penguin:v2"}
    live = json.loads(kubectl("get", kind.lower(), "penguin", "-o", "json", namespace=namespace))
    assert live["spec"] == spec_before
    assert took < 300


def test_on_delete_strategy_is_refused_before_apply(e2e_cluster: None, tmp_path: Path) -> None:
    namespace = f"e2e-ondelete-{uuid.uuid4().hex[:6]}"
    manifests = as_kind("StatefulSet", tmp_path / "manifests", on_delete=True)
    try:
        result = PENGUIN.run(namespace, tmp_path / "gate.json", f"--manifests={manifests}")
        assert result.returncode != 0
        assert "updateStrategy OnDelete" in result.output, result.output[-3000:]
        assert "nothing was applied" in result.output
        found = kubectl("get", "statefulsets", "--ignore-not-found", namespace=namespace)
        assert PENGUIN.name not in found
    finally:
        kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


@pytest.mark.parametrize(
    ("kind", "pods", "refused"),
    [
        # Two pods created at once under a quota of one: either may be the one refused.
        ("StatefulSet", "1", r'pods "penguin-[01]" is forbidden: exceeded quota: e2e-pods'),
        # One pod (one node) under a quota of none.
        ("DaemonSet", "0", r'pods "penguin-[\w-]*" is forbidden: exceeded quota: e2e-pods'),
    ],
)
def test_a_workload_whose_pods_a_quota_refuses_fails_at_once_naming_it(
    e2e_cluster: None, tmp_path: Path, kind: str, pods: str, refused: str
) -> None:
    """A StatefulSet or a DaemonSet sets no condition when the API server refuses its pods: the
    gate watches its controller's FailedCreate events. One run each, a first deploy under a
    quota without room. The gate used to wait its whole rollout timeout and advise raising it."""
    namespace = f"e2e-{kind.lower()}quota-{uuid.uuid4().hex[:6]}"
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "e2e-pods"},
        "spec": {"hard": {"pods": pods}},
    }
    kubectl("create", "namespace", namespace)
    try:
        kubectl("apply", "-f", "-", namespace=namespace, stdin=json.dumps(quota))
        manifests = as_kind(kind, tmp_path / "manifests")
        result = PENGUIN.run(
            namespace,
            tmp_path / "gate.json",
            "--image-tag=v1",
            f"--manifests={manifests}",
            "--rollout-timeout=120",
        )
        assert result.returncode == 1, result.output[-4000:]
        cause = result.report["cause"]
        assert f"{kind.lower()} penguin: FailedCreate: the API server refuses its new pods" in cause
        assert re.search(refused, cause), cause
        assert f"kubectl describe resourcequota -n {namespace}" in cause, cause
    finally:
        kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")
