"""End-to-end tests of the gate: real deploys, real failures and real rollbacks on the project's
local cluster (`make cluster-up`, `make load-images`). No mock of the Kubernetes API.

The gate's mechanics (faults, interrupts, bad input, credentials, RBAC, workload kinds, sources,
replicas, pod verdicts) are tested on the penguin example, ready about a second after its
container starts; what is about a V2 model server (a first deploy, an upgrade, wrong answers,
MLServer's not-ready, the canary, in-cluster) on iris, at one replica. Each module has its own
namespaces, so modules run in parallel (`make test`: pytest-xdist, one module per worker).

Without a cluster or the images they skip — except under ROLLOUTGATE_REQUIRE_CLUSTER=1 (set by
.ci/run), where that is a failure: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from canaryrun import CANARY_TAGS
from gaterun import IRIS, KUBECONFIG, PENGUIN, deployment_state, kubectl, loaded_tags

# The tags each example's tests deploy (`make load-images` loads them all).
TAGS = {
    IRIS.image: ("v1", "v2", "crash", "unready", "wrong", "slow"),
    PENGUIN.image: ("v1", "v2", "crash", "unready", "wrong", "slow"),
}


def _missing(message: str) -> None:
    if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def e2e_cluster() -> None:
    """Session: a running local cluster with the example images loaded."""
    if not KUBECONFIG.is_file():
        _missing("no local cluster: run `make cluster-up`")
    for repo, tags in TAGS.items():
        loaded = loaded_tags(repo)
        if loaded is None or not set(tags) <= loaded:
            have = sorted(loaded or [])
            _missing(f"{repo} images not loaded (have {have}): run `make load-images`")


@pytest.fixture(scope="module")
def e2e_namespace(e2e_cluster: None, request: pytest.FixtureRequest) -> Iterator[str]:
    """Module: a fresh namespace, labelled, deleted afterwards (the gate creates it). Its name
    says which module made it (a leftover, or a pod's CPU in a measurement, points to a file)."""
    module = request.module.__name__.rpartition(".")[2].removeprefix("test_").replace("_", "-")
    name = f"e2e-{module[:40]}-{uuid.uuid4().hex[:6]}"
    yield name
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


@pytest.fixture(scope="module")
def iris_manifests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Module: the iris example's manifests at one replica (the tests are not about replicas,
    and every MLServer pod start costs seconds on the shared node)."""
    return IRIS.copy(tmp_path_factory.mktemp("iris") / "manifests", replicas=1)


@pytest.fixture(scope="module")
def v1_release(
    e2e_namespace: str, iris_manifests: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Module: the report of a first deploy of iris v1 (`iris_manifests`), the baseline every
    failure must come back to."""
    report = tmp_path_factory.mktemp("v1") / "gate.json"
    result = IRIS.run(e2e_namespace, report, f"--manifests={iris_manifests}", "--image-tag=v1")
    assert result.returncode == 0, f"first deploy of v1 failed:\n{result.output[-4000:]}"
    kubectl("label", "namespace", e2e_namespace, "rolloutgate.test=e2e")
    return result.report


@pytest.fixture(scope="module")
def penguin_v1(e2e_namespace: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Module: the report of a first deploy of penguin v1 (its profile's manifests), the
    baseline every failure must come back to."""
    report = tmp_path_factory.mktemp("penguin-v1") / "gate.json"
    result = PENGUIN.run(e2e_namespace, report, "--image-tag=v1")
    assert result.returncode == 0, f"first deploy of penguin v1 failed:\n{result.output[-4000:]}"
    kubectl("label", "namespace", e2e_namespace, "rolloutgate.test=e2e")
    return result.report


@pytest.fixture(scope="module")
def canary_images(e2e_cluster: None) -> None:
    """Module: the iris canary's own tags are loaded too (`make load-images`)."""
    missing = set(CANARY_TAGS) - (loaded_tags(IRIS.image) or set())
    if missing:
        _missing(f"canary example images not loaded: {sorted(missing)}; run `make load-images`")


@pytest.fixture(scope="module")
def iris_canary_manifests(iris_manifests: Path) -> Iterator[None]:
    """Module: every canary, and the gate a promotion runs, takes the one-replica manifests the
    live v1 came from, through the environment (a promotion's gate inherits it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROLLOUTGATE_MANIFESTS", str(iris_manifests))
        yield


@pytest.fixture(scope="module")
def live_v1(v1_release: dict[str, object], e2e_namespace: str) -> dict[str, Any]:
    """Module: iris v1 is live; what it looks like, to compare after each canary."""
    return deployment_state(e2e_namespace)
