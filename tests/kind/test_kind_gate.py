"""The gate on a throwaway kind cluster, as a user runs it: `pytest --cluster=kind`.

One cluster for the module: v1 is deployed with --keep-cluster (pytest-kind creates the cluster),
then v2 on the same cluster (kept again), then the crashing release without --keep-cluster: it
must fail on its own cause, roll back to v2 and verify it, and pytest-kind deletes the cluster.

The model is the penguin example, set through the environment as a team's own service would be
(no profile of ours): the test is about kind, and penguin's 105 MB image loads into the node and
starts in a second, where MLServer's 500 MB image and start cost the parallel `make test` a minute
of CPU. docs/kind.md shows the iris example on kind.

Needs Docker, kind and a node image (`make kind-image` offline, or kind on PATH with internet)
and the example images in Docker (`make images`). Without them the tests skip, except under
ROLLOUTGATE_REQUIRE_CLUSTER=1 (.ci/run), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rolloutgate.errors import ConfigError
from rolloutgate.kube.kindcluster import KindTools, docker_has_image, resolve

REPO = Path(__file__).resolve().parents[2]
TAGS = ("v1", "v2", "crash")
IMAGE = "rolloutgate/penguin"
NAMESPACE = "penguin"
# The penguin example's settings (pyproject.toml's local-penguin profile) as environment variables.
PENGUIN_ENV = {
    "ROLLOUTGATE_NAMESPACE": NAMESPACE,
    "ROLLOUTGATE_IMAGES": IMAGE,
    "ROLLOUTGATE_GOLDEN": str(REPO / "fixtures" / "penguin" / "golden" / "penguin.json"),
    "ROLLOUTGATE_MODEL_FILE": "/opt/penguin/model/model.json",
    "ROLLOUTGATE_METRICS_PATH": "/metrics",
    "ROLLOUTGATE_METRICS_PORT": "http",
    "ROLLOUTGATE_METRICS_COUNTER": "penguin_score_requests",
    "ROLLOUTGATE_METRICS_LABELS": "outcome=ok",
}
# A cold cluster (create, node Ready, image load) plus one release, with room to spare.
GATE_TIMEOUT = 600


@dataclass
class Result:
    returncode: int
    output: str
    report: dict[str, Any]


def _missing(message: str) -> None:
    if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def kind_tools() -> KindTools:
    try:
        tools = resolve(None, None, env=os.environ)
    except ConfigError as e:
        _missing(str(e))
    absent = [f"{IMAGE}:{t}" for t in TAGS if not docker_has_image(f"{IMAGE}:{t}")]
    if absent:
        _missing(f"example images not in Docker: {', '.join(absent)}; run `make images`")
    return tools


def clusters(tools: KindTools) -> list[str]:
    out = subprocess.run(
        [tools.kind, "get", "clusters"], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.split()


@dataclass
class KindGate:
    tools: KindTools
    name: str
    workdir: Path
    # The penguin example's manifests (one replica).
    manifests: Path

    def run(self, tag: str, *args: str) -> Result:
        """One gate run on the cluster `name` (created if it does not exist)."""
        report = self.workdir / f"{tag}.json"
        report.unlink(missing_ok=True)
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "--cluster=kind",
                f"--cluster-name={self.name}",
                f"--kubeconfig={self.workdir / 'kubeconfig'}",
                f"--image-tag={tag}",
                f"--manifests={self.manifests}",
                f"--gate-report={report}",
                *args,
            ],
            cwd=REPO,
            env={**os.environ, **PENGUIN_ENV},
            capture_output=True,
            text=True,
            timeout=GATE_TIMEOUT,
        )
        data = json.loads(report.read_text()) if report.exists() else {}
        return Result(proc.returncode, proc.stdout + proc.stderr, data)

    def kubectl(self, *args: str) -> str:
        """kubectl inside the node (kind sets its KUBECONFIG): matches the server's version."""
        out = subprocess.run(
            ["docker", "exec", f"{self.name}-control-plane", "kubectl", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return out.stdout


@pytest.fixture(scope="module")
def kind_gate(
    kind_tools: KindTools, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KindGate]:
    """Module: a cluster name of our own; whatever happens, no cluster of that name is left."""
    workdir = tmp_path_factory.mktemp("kind")
    manifests = workdir / "manifests"
    shutil.copytree(REPO / "fixtures" / "penguin" / "manifests", manifests)
    gate = KindGate(kind_tools, f"rg-e2e-{uuid.uuid4().hex[:6]}", workdir, manifests)
    yield gate
    if gate.name in clusters(kind_tools):
        subprocess.run(
            [kind_tools.kind, "delete", "cluster", f"--name={gate.name}"], timeout=120, check=False
        )
    # pytest-kind makes .pytest-kind/<name>/ in the working directory even when given a kubeconfig.
    shutil.rmtree(REPO / ".pytest-kind" / gate.name, ignore_errors=True)


@pytest.fixture(scope="module")
def releases(kind_gate: KindGate) -> dict[str, Result]:
    """Module: v1 (the cluster is created), then v2 on the same cluster; both kept."""
    v1 = kind_gate.run("v1", "--keep-cluster")
    assert v1.returncode == 0, f"v1 on kind failed:\n{v1.output[-4000:]}"
    v2 = kind_gate.run("v2", "--keep-cluster")
    return {"v1": v1, "v2": v2}


def image_of_live_pods(kind_gate: KindGate) -> set[str]:
    pods = json.loads(
        kind_gate.kubectl(
            "get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=penguin", "-o", "json"
        )
    )["items"]
    return {
        c["image"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        for c in p["spec"]["containers"]
    }


def test_v1_then_v2_pass_on_a_kind_cluster(
    releases: dict[str, Result], kind_gate: KindGate
) -> None:
    v1, v2 = releases["v1"], releases["v2"]
    assert (v1.report["verdict"], v1.report["first_deploy"]) == ("pass", True)
    assert v1.report["phases_s"]["kind"] > 0, "the node wait and image load ran"
    assert v2.returncode == 0, v2.output[-4000:]
    assert (v2.report["verdict"], v2.report["previous_tag"]) == ("pass", "v1")
    assert v2.report["tests"]["failed"] == v2.report["tests"]["error"] == 0
    assert image_of_live_pods(kind_gate) == {f"{IMAGE}:v2"}
    assert kind_gate.name in clusters(kind_gate.tools), "--keep-cluster kept it"


def test_crash_fails_fast_rolls_back_to_v2_verified_and_the_cluster_is_deleted(
    releases: dict[str, Result], kind_gate: KindGate
) -> None:
    assert releases["v2"].returncode == 0, "needs v2 live first"

    result = kind_gate.run("crash")

    assert result.returncode == 1, result.output[-4000:]
    report = result.report
    assert (report["verdict"], report["previous_tag"]) == ("rolled-back", "v2")
    assert "CrashLoopBackOff" in report["cause"] or "exited" in report["cause"], report["cause"]
    # The manifests' progress deadline is 600 s: the cause is the crash, not that deadline.
    assert report["rollback"]["verified"] is True, report["rollback"]
    assert "rolled back to v2, verified" in result.output
    # Without --keep-cluster pytest-kind deletes it at the end of the run.
    assert kind_gate.name not in clusters(kind_gate.tools)
    gone = subprocess.run(
        ["docker", "ps", "-a", "-q", "--filter", f"name={kind_gate.name}-control-plane"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert gone.stdout.strip() == "", "the node container is gone"
