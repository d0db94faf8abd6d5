"""The gate needs no more than the Role it ships (deploy/rbac/role.yaml): a ServiceAccount bound
only to it deploys, fails and rolls back, dry-runs and meets another gate's lock; with one right
taken away the gate names the verb, the resource and the namespace that were denied, and
changes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from gaterun import PENGUIN, kubectl, namespace_objects
from rbac_kubeconfig import SERVICE_ACCOUNT, apply_rbac, role_rules, write_kubeconfig


@pytest.fixture(scope="module")
def sa_namespace(e2e_cluster: None) -> Iterator[str]:
    """Module: a namespace made by the admin, holding only the shipped ServiceAccount, Role and
    RoleBinding (the gate bound to the Role cannot create namespaces)."""
    name = f"e2e-rbac-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    try:
        apply_rbac(name)
        yield name
    finally:
        kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


@pytest.fixture(scope="module")
def sa_kubeconfig(sa_namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Module: a kubeconfig holding only the ServiceAccount's token (context `local`)."""
    return write_kubeconfig(sa_namespace, tmp_path_factory.mktemp("rbac") / "kubeconfig")


@pytest.fixture(scope="module")
def as_sa(sa_kubeconfig: Path) -> list[str]:
    """Module: the gate's arguments: the ServiceAccount's kubeconfig (the penguin profile's
    manifests, one replica)."""
    return [f"--kubeconfig={sa_kubeconfig}"]


@pytest.fixture(scope="module")
def sa_v1(sa_namespace: str, as_sa: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Module: the first deploy of v1 with the Role only: the baseline of the other tests."""
    result = PENGUIN.run(
        sa_namespace,
        tmp_path_factory.mktemp("v1") / "gate.json",
        *as_sa,
        "--image-tag=v1",
    )
    assert result.returncode == 0, result.output[-4000:]
    return result.report


def test_the_kubeconfig_is_the_service_account_and_it_cannot_do_more(
    sa_namespace: str, sa_kubeconfig: Path
) -> None:
    who = f"system:serviceaccount:{sa_namespace}:{SERVICE_ACCOUNT}"
    config = sa_kubeconfig.read_text()
    assert "client-key-data" not in config
    assert "token:" in config

    def can(*what: str, namespace: str | None = None) -> str:
        answer = kubectl("auth", "can-i", *what, f"--as={who}", check=False, namespace=namespace)
        return answer.strip()

    assert can("patch", "deployments", namespace=sa_namespace) == "yes"
    assert can("create", "namespaces") == "no"
    assert can("get", "secrets", namespace=sa_namespace) == "no"
    assert can("list", "pods", namespace="default") == "no"


def test_first_deploy_passes_with_the_role_only(sa_v1: dict, sa_namespace: str) -> None:
    assert sa_v1["verdict"] == "pass"
    assert sa_v1["first_deploy"] is True
    assert sa_v1["created_namespace"] is False
    assert sa_v1["tests"]["failed"] == sa_v1["tests"]["error"] == 0
    assert PENGUIN.ready_with(sa_namespace, "v1")


def test_a_failing_release_rolls_back_verified_with_the_role_only(
    sa_v1: dict, sa_namespace: str, as_sa: list[str], tmp_path: Path
) -> None:
    before = PENGUIN.state(sa_namespace)
    result = PENGUIN.run(sa_namespace, tmp_path / "gate.json", *as_sa, "--image-tag=wrong")
    assert result.returncode == 1, result.output[-4000:]
    assert result.report["verdict"] == "rolled-back", result.report["cause"]
    assert result.report["rollback"]["verified"] is True, result.report["rollback"]
    # Diagnostics read events, pods and logs: with the Role only, none of them was refused.
    assert "forbidden" not in (result.report["diagnostics"] or "").lower()
    assert PENGUIN.state(sa_namespace) == before
    assert PENGUIN.ready_with(sa_namespace, "v1")


def test_a_dry_run_passes_with_the_role_only(
    sa_v1: dict, sa_namespace: str, as_sa: list[str], tmp_path: Path
) -> None:
    before = namespace_objects(sa_namespace)
    result = PENGUIN.run(
        sa_namespace,
        tmp_path / "gate.json",
        *as_sa,
        "--image-tag=v2",
        "--dry-run",
    )
    assert result.returncode == 0, result.output[-4000:]
    assert "rolloutgate/penguin:v2" in result.report["dry_run_diff"]
    assert namespace_objects(sa_namespace) == before


def test_another_gates_lock_is_named_with_the_role_only(
    sa_v1: dict, sa_namespace: str, as_sa: list[str], tmp_path: Path
) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    holder = "other-gate@ci-runner/pid-7/feedbeef"
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": PENGUIN.lease},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 300,
            "acquireTime": now,
            "renewTime": now,
        },
    }
    kubectl("apply", "-f", "-", namespace=sa_namespace, stdin=json.dumps(lease))
    try:
        before = namespace_objects(sa_namespace)
        result = PENGUIN.run(
            sa_namespace,
            tmp_path / "gate.json",
            *as_sa,
            "--image-tag=v2",
            "--lock-timeout=3",
        )
        assert result.returncode == 1, result.output[-4000:]
        assert "LockHeld" in result.output
        assert f"held by {holder}" in result.output
        assert namespace_objects(sa_namespace) == before
    finally:
        kubectl("delete", "lease", PENGUIN.lease, namespace=sa_namespace)


# resource -> (verb taken away, what the gate's message must name)
TAKEN = {
    "deployments": ("patch", "patch (server-side apply dry-run) deployments.apps"),
    "leases": ("create", "create leases.coordination.k8s.io"),
}


@pytest.mark.parametrize("resource", list(TAKEN))
def test_a_missing_right_is_named_and_changes_nothing(
    resource: str, sa_v1: dict, sa_namespace: str, as_sa: list[str], tmp_path: Path
) -> None:
    verb, named = TAKEN[resource]
    rules = role_rules()
    for rule in rules:
        if rule["resources"] == [resource]:
            rule["verbs"] = [v for v in rule["verbs"] if v != verb]
    apply_rbac(sa_namespace, rules)
    try:
        before = namespace_objects(sa_namespace)
        result = PENGUIN.run(sa_namespace, tmp_path / "gate.json", *as_sa, "--image-tag=v2")
    finally:
        apply_rbac(sa_namespace)

    assert result.returncode == 1, result.output[-4000:]
    assert "Forbidden" in result.output
    # The gate's own words, then the API server's: verb, resource and namespace denied.
    assert f"{named} {sa_namespace}/" in result.output, result.output[-3000:]
    assert f'cannot {verb} resource "{resource}"' in result.output
    assert f'in the namespace "{sa_namespace}"' in result.output
    assert f"grant `{verb}`" in result.output
    assert "docs/rbac.md" in result.output
    assert "Traceback" not in result.output
    assert namespace_objects(sa_namespace) == before
    assert PENGUIN.ready_with(sa_namespace, "v1")
