"""Choosing the pod and port a port-forward goes to (pure parts of endpoint)."""

from __future__ import annotations

import pytest

from rolloutgate.errors import ClusterError
from rolloutgate.kube.portforward import container_port, pick_pod, service_port

SERVICE = {
    "metadata": {"name": "iris"},
    "spec": {
        "selector": {"app": "iris"},
        "ports": [
            {"name": "http", "port": 80, "targetPort": "http"},
            {"name": "metrics", "port": 9090, "targetPort": 8082},
            {"port": 8081},
        ],
    },
}
POD = {
    "metadata": {"name": "iris-1"},
    "spec": {"containers": [{"name": "model", "ports": [{"name": "http", "containerPort": 8080}]}]},
}


def test_service_port_by_number_or_name() -> None:
    assert service_port(SERVICE, 80) == "http"
    assert service_port(SERVICE, "http") == "http"
    assert service_port(SERVICE, "metrics") == 8082
    assert service_port(SERVICE, "9090") == 8082
    assert service_port(SERVICE, 8081) == 8081  # no targetPort: the port itself


def test_unknown_service_port_lists_the_ports() -> None:
    with pytest.raises(ClusterError, match=r"no port 81.*http:80, metrics:9090, -:8081"):
        service_port(SERVICE, 81)


def test_named_target_port_resolves_on_the_pod() -> None:
    assert container_port(POD, "http") == 8080
    assert container_port(POD, 9000) == 9000
    with pytest.raises(ClusterError, match="no container port named 'grpc'"):
        container_port(POD, "grpc")


def pod(name: str, ready: bool, created: str, deleting: bool = False) -> dict:  # type: ignore[type-arg]
    meta: dict[str, object] = {"name": name, "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = created
    status = {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return {"metadata": meta, "status": status}


def test_pick_pod_takes_the_newest_ready_pod_not_being_deleted() -> None:
    pods = [
        pod("old", True, "2024-01-01T00:00:00Z"),
        pod("new", True, "2024-01-02T00:00:00Z"),
        pod("newest-unready", False, "2024-01-03T00:00:00Z"),
        pod("terminating", True, "2024-01-04T00:00:00Z", deleting=True),
    ]
    assert (pick_pod(pods) or {})["metadata"]["name"] == "new"
    assert pick_pod([pods[2], pods[3]]) is None
