"""``--verify`` from a pod of the cluster, as an Argo CD PostSync hook or a Flux post-deploy Job
runs it (docs/gitops.md): the in-cluster configuration, the shipped ServiceAccount bound only to
the shipped Role, nothing applied and nothing rolled back. A healthy release a gate verified
passes; after an outside change that breaks the golden cases (``kubectl set image``, as a sync
of a bad commit would) it fails, and the cluster is left exactly as it was."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import incluster
from gaterun import IRIS, KUBECONFIG, KUBECTL, kubectl, run_gate
from manifestkit import exists, fresh_namespace, get
from rbac_kubeconfig import apply_rbac


def _phase(namespace: str, pod: str) -> str:
    """The pod's phase; "" while the API server does not answer (other tests restart it)."""
    proc = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "-n", namespace, "get", "pod", pod,
         "-o", "jsonpath={.status.phase}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _verify_in_pod(
    namespace: str, deps: Path, project: Path, tmp: Path, pod: str
) -> tuple[str, str, dict[str, Any]]:
    """(phase, log, JSON report) of `--verify` run to its end in pod `pod`."""
    out = tmp / pod
    out.mkdir()
    out.chmod(0o777)  # the pod runs as the image's user (10001)
    spec = tmp / f"{pod}.yaml"
    spec.write_text(
        incluster.runner_pod(namespace, deps, project, out, "--verify", "--image-tag=v1", name=pod)
    )
    kubectl("apply", "-f", str(spec))
    deadline = time.monotonic() + 600
    while _phase(namespace, pod) not in ("Succeeded", "Failed") and time.monotonic() < deadline:
        time.sleep(2)
    log = kubectl("logs", pod, namespace=namespace)
    report = out / "gate.json"
    return _phase(namespace, pod), log, json.loads(report.read_text()) if report.exists() else {}


def _state(namespace: str) -> dict[str, str]:
    """What must not change: the Deployment (generation, resourceVersion) and the record."""
    dep = get("deployment", "iris", namespace)
    record = get("configmap", "rolloutgate-iris-release", namespace)
    return {
        "generation": str(dep["metadata"]["generation"]),
        "deployment": dep["metadata"]["resourceVersion"],
        "record": record["metadata"]["resourceVersion"],
    }


def test_verify_from_a_pod_passes_a_healthy_release_and_fails_a_broken_one(
    e2e_cluster: None, tmp_path: Path
) -> None:
    deps = incluster.dependencies()  # built once, cached (shared with test_incluster)
    with fresh_namespace("e2e-verify") as target:
        m = IRIS.copy(tmp_path / "m", replicas=1)
        # The release a gate verified (from this machine), then what a GitOps Job holds.
        released = run_gate(target, tmp_path / "gate.json", "--image-tag=v1", f"--manifests={m}")
        assert released.returncode == 0, released.output[-4000:]
        apply_rbac(target)
        project = tmp_path / "project"
        project.mkdir()
        incluster.suite(project, target, m)
        for path in [project, *project.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)

        before = _state(target)
        phase, log, report = _verify_in_pod(target, deps, project, tmp_path, "verify-healthy")
        assert phase == "Succeeded", log[-6000:]
        assert report["verdict"] == "pass", report
        assert report["verify"] is True
        assert report["applied"] is False
        assert report["live_release"]["verified"] is True, report["live_release"]
        assert report["live_release"]["tag"] == "v1"
        assert report["tests"]["failed"] == 0, log[-6000:]
        assert report["tests"]["passed"] > 10, log[-6000:]
        assert "in-cluster configuration, the pod's ServiceAccount" in log
        assert _state(target) == before, "a passing --verify changed the cluster"
        assert not exists("lease", "rolloutgate-iris", target), "--verify took the lease"

        # From outside the gate: the model answers wrong (a GitOps sync of a bad commit would).
        kubectl("set", "image", "deployment/iris", "model=rolloutgate/iris:wrong", namespace=target)
        kubectl("rollout", "status", "deployment/iris", "--timeout=300s", namespace=target,
                timeout=320)  # fmt: skip
        before = _state(target)
        phase, log, report = _verify_in_pod(target, deps, project, tmp_path, "verify-broken")
        assert phase == "Failed", log[-6000:]
        assert report["verdict"] == "fail", report
        assert report["exit_status"] == 1
        failed = {t["nodeid"] for t in report["tests"]["items"] if t["outcome"] == "failed"}
        assert "tests/smoke/test_predictions.py::test_golden_case[virginica]" in failed, failed
        assert report["rollback"]["attempted"] is False
        assert report["live_release"]["verified"] is False
        assert "NOT the release a gate last verified (tag v1" in report["live_release"]["text"]
        # Nothing changed: the broken release is still live, the record and lease untouched.
        assert _state(target) == before, "a failing --verify changed the cluster"
        dep = get("deployment", "iris", target)
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "rolloutgate/iris:wrong"
        assert not exists("lease", "rolloutgate-iris", target), "--verify took the lease"
