"""End-to-end tests of the gate: real deploys, real failures and real rollbacks on the project's
local cluster (`make cluster-up`, `make load-images`). No mock of the Kubernetes API.

Without a cluster or the images they skip — except under ROLLOUTGATE_REQUIRE_CLUSTER=1 (set by
.ci/run), where that is a failure: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from gaterun import KUBECONFIG, kubectl, loaded_tags, run_gate

TAGS = ("v1", "v2", "crash", "unready", "wrong", "slow")


def _missing(message: str) -> None:
    if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def e2e_cluster() -> None:
    """Session: a running local cluster with every example image loaded."""
    if not KUBECONFIG.is_file():
        _missing("no local cluster: run `make cluster-up`")
    loaded = loaded_tags("rolloutgate/iris")
    if loaded is None or not set(TAGS) <= loaded:
        _missing(f"example images not loaded (have {sorted(loaded or [])}): run `make load-images`")


@pytest.fixture(scope="module")
def e2e_namespace(e2e_cluster: None) -> Iterator[str]:
    """Module: a fresh namespace, labelled, deleted afterwards (the gate creates it)."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    yield name
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


@pytest.fixture(scope="module")
def v1_release(e2e_namespace: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Module: the report of a first deploy of v1, the baseline every failure must come back to."""
    report = tmp_path_factory.mktemp("v1") / "gate.json"
    result = run_gate(e2e_namespace, report, "--image-tag=v1")
    assert result.returncode == 0, f"first deploy of v1 failed:\n{result.output[-4000:]}"
    kubectl("label", "namespace", e2e_namespace, "rolloutgate.test=e2e")
    return result.report
