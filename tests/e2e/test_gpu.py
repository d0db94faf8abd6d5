"""A release that blocks itself on an extended resource: the local node advertises one unit of
a resource of this test's own (a node status patch, as Kubernetes documents for extended
resources; no GPU needed), each iris pod asks for one. v1 takes the unit; v2's surge pod can
only be scheduled once v1's pod stops, which a rolling update with maxSurge 1 never does
first. The gate fails it within 30 s of the first scheduling failure, naming the resource, the
counts and the fix, and rolls back to v1, verified; with the fix (maxSurge 0, maxUnavailable
1) v2 passes. The resource is removed from the node afterwards."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gaterun import IRIS, kubectl, live_pods_ready_with, run_gate
from manifestkit import edit_deployment, fresh_namespace

NODE = "vm"


@pytest.fixture
def one_unit(e2e_cluster: None) -> Iterator[str]:
    """Function. The name of an extended resource the node advertises one unit of, removed
    afterwards (a name per test run: the node is shared with other tests)."""
    name = f"rolloutgate.dev/gpu-{uuid.uuid4().hex[:8]}"
    path = "/status/capacity/" + name.replace("~", "~0").replace("/", "~1")
    op = [{"op": "add", "path": path, "value": "1"}]
    kubectl("patch", "node", NODE, "--subresource=status", "--type=json", "-p", json.dumps(op))
    try:
        # The kubelet derives allocatable from capacity at its next node status update.
        deadline = time.monotonic() + 90
        while _allocatable(name) != "1":
            assert time.monotonic() < deadline, f"node {NODE} never made {name} allocatable"
            time.sleep(1)
        yield name
    finally:
        op = [{"op": "remove", "path": path}]
        kubectl("patch", "node", NODE, "--subresource=status", "--type=json",
                "-p", json.dumps(op), check=False)  # fmt: skip


def _allocatable(resource: str) -> str | None:
    node = json.loads(kubectl("get", "node", NODE, "-o", "json"))
    return node["status"].get("allocatable", {}).get(resource)


def _asking_for(target: Path, resource: str, *, surge: bool) -> Path:
    """The iris manifests at one replica, each pod asking for one unit of `resource` (requests =
    limits, as extended resources require), surging (maxSurge 1) or not."""
    m = IRIS.copy(target, replicas=1)

    def edit(dep: dict[str, Any]) -> None:
        resources = dep["spec"]["template"]["spec"]["containers"][0]["resources"]
        resources["requests"][resource] = resources["limits"][resource] = "1"
        rolling = dep["spec"]["strategy"]["rollingUpdate"]
        assert rolling == {"maxUnavailable": 0, "maxSurge": 1}, rolling
        if not surge:
            dep["spec"]["strategy"]["rollingUpdate"] = {"maxUnavailable": 1, "maxSurge": 0}

    edit_deployment(m, edit)
    return m


def test_release_blocked_by_its_own_pods_fails_fast_naming_the_fix(
    one_unit: str, tmp_path: Path
) -> None:
    with fresh_namespace("e2e-gpu") as target:
        surging = _asking_for(tmp_path / "surge", one_unit, surge=True)
        first = run_gate(target, tmp_path / "v1.json", "--image-tag=v1", f"--manifests={surging}")
        assert first.returncode == 0, first.output[-4000:]

        blocked = run_gate(target, tmp_path / "v2.json", "--image-tag=v2", f"--manifests={surging}")
        assert blocked.returncode == 1, blocked.output[-4000:]
        report = blocked.report
        cause = report["cause"]
        assert "Unschedulable" in cause, cause
        assert f"Insufficient {one_unit}" in blocked.output, cause  # the scheduler's own words
        assert f"it asks for 1 {one_unit}, the nodes have 1 ({NODE} (1))" in cause, cause
        assert "the release's own 1 old pod(s) hold 1" in cause, cause
        assert "maxSurge: 0 with maxUnavailable: 1" in cause, cause
        assert "strategy.type: Recreate" in cause, cause
        rollout_s = report["phases_s"]["rollout"]
        print(f"FIGURE gpu contention verdict: {rollout_s:.1f} s after the apply")
        assert rollout_s < 60, f"the verdict took {rollout_s} s (rollout timeout 300 s)"
        assert report["verdict"] == "rolled-back", report["rollback"]
        assert report["rollback"]["verified"] is True
        assert live_pods_ready_with(target, "v1")

        # The fix the verdict names: one pod replaced at a time. (Not the latency budget: on
        # the shared node it measures the other tests' load, and a failure there would roll
        # back to v1's surging strategy, which blocks itself again.)
        fixed = _asking_for(tmp_path / "fixed", one_unit, surge=False)
        done = run_gate(
            target,
            tmp_path / "fixed.json",
            "--image-tag=v2",
            f"--manifests={fixed}",
            "--deselect=tests/smoke/test_predictions.py::test_latency_budget",
        )
        assert done.returncode == 0, done.output[-4000:]
        assert live_pods_ready_with(target, "v2")
