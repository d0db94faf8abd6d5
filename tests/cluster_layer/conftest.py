"""Fixtures for the cluster layer's integration tests, against the project's local cluster.

Each test gets its own namespace (labelled, deleted in teardown) and tiny Deployments of the
busybox test image, whose httpd serves "hello from rolloutgate" on port 8080. The tests skip
without a cluster, unless ROLLOUTGATE_REQUIRE_CLUSTER=1 (CI), where that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import ClusterUnreachable
from rolloutgate.release import rollout

REPO = Path(__file__).resolve().parents[2]
KUBECONFIG = REPO / ".cluster" / "kubeconfig"
CONTEXT = "local"
CRI_SOCKET = "/run/rolloutgate/containerd/containerd.sock"
TEST_IMAGE = "rolloutgate/busybox:test"
TEST_LABEL = {"rolloutgate.test": "cluster-layer"}


def missing(message: str) -> NoReturn:
    """Skip for want of the cluster or an image, or fail under ROLLOUTGATE_REQUIRE_CLUSTER=1
    (CI must never pass by skipping)."""
    __tracebackhide__ = True
    if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def api() -> ApiClient:
    """Session: an API client for the local cluster (skips without one)."""
    if not KUBECONFIG.is_file():
        missing(f"no local cluster ({KUBECONFIG} is missing): run `make cluster-up` first")
    try:
        return kube.connect(str(KUBECONFIG), CONTEXT)
    except ClusterUnreachable as e:
        missing(f"local cluster not answering: {e}")


def _node_images(api: ApiClient) -> set[str]:
    nodes = kube.list_objects(api, "v1", "Node", None)
    return {
        name
        for node in nodes["items"]
        for image in node.get("status", {}).get("images") or []
        for name in image.get("names") or []
    }


@pytest.fixture(scope="session")
def test_image(api: ApiClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Session: the busybox httpd image, imported into the node's containerd if missing."""
    if f"docker.io/{TEST_IMAGE}" in _node_images(api):
        return TEST_IMAGE
    archive = tmp_path_factory.mktemp("image") / "busybox.tar"
    build = [
        "python3", str(REPO / "devcluster" / "image_archive.py"),
        "--tag", TEST_IMAGE,
        "--file", "/bin/busybox:/bin/busybox",
        "--text", "/www/index.html=hello from rolloutgate\n",
        "--output", str(archive),
        "--", "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www",
    ]  # fmt: skip
    subprocess.run(build, check=True, capture_output=True, timeout=60)
    subprocess.run(
        ["ctr", "--address", CRI_SOCKET, "-n", "k8s.io", "images", "import", str(archive)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return TEST_IMAGE


@pytest.fixture
def namespace(api: ApiClient) -> Iterator[str]:
    """Function: a fresh labelled namespace, deleted afterwards. The deletion is not waited
    for: no test looks at another's namespace, and waiting cost each test seconds."""
    name = f"rg-layer-{uuid.uuid4().hex[:8]}"
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(TEST_LABEL)},
    }
    kube.create(api, body, None, field_manager="rolloutgate-tests")
    yield name
    kube.delete(api, "v1", "Namespace", name, None, propagation="Background")


def deployment(
    name: str,
    image: str,
    *,
    replicas: int = 1,
    command: list[str] | None = None,
    readiness_path: str | None = "/index.html",
    env: dict[str, str] | None = None,
    pull_policy: str = "Never",
) -> dict[str, object]:
    """A tiny Deployment of `image` (httpd on 8080) with a fast readiness probe."""
    container: dict[str, object] = {
        "name": "web",
        "image": image,
        "imagePullPolicy": pull_policy,
        "ports": [{"containerPort": 8080, "name": "http"}],
    }
    if command:
        container["command"] = command
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if readiness_path:
        container["readinessProbe"] = {
            "httpGet": {"path": readiness_path, "port": "http"},
            "periodSeconds": 1,
            "failureThreshold": 1,
        }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 1},
            },
        },
    }


def service(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def wait_deployment(
    api: ApiClient,
    namespace: str,
    name: str,
    *,
    deadline: float,
    max_restarts: int,
    generation: int | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """rollout.wait for one Deployment by name, pinned to `generation` (None: the one read
    first), with kubectl's progress-deadline rule."""
    metadata: dict[str, Any] = {"name": name}
    if generation is not None:
        metadata["generation"] = generation
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata}
    (final,) = rollout.wait(
        api, namespace, [target], deadline=deadline, max_restarts=max_restarts,
        on_progress=on_progress, pinned=True,
    )  # fmt: skip
    return final


def workload_ref(name: str) -> dict[str, Any]:
    """A Deployment named `name`, as the diagnostics and viewers take it."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}}
