"""The gate run from a pod of the cluster with the in-cluster configuration: no kubeconfig, a
ServiceAccount bound to a namespaced Role (plus `get` on its own Namespace), the whole chain —
lock, snapshot, apply, rollout, port-forwarded health and golden checks, in-pod checks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import incluster
from gaterun import kubectl
from manifestkit import fresh_namespace, get, manifests


def _phase(namespace: str) -> str:
    return kubectl("get", "pod", "gate", "-o", "jsonpath={.status.phase}", namespace=namespace)


def test_gate_runs_from_a_pod_with_the_in_cluster_configuration(
    e2e_cluster: None, tmp_path: Path
) -> None:
    deps = incluster.dependencies()  # built once (about 40 s, 111 MB), then cached
    with fresh_namespace("e2e-runner") as runner, fresh_namespace("e2e-incl") as target:
        project = tmp_path / "project"
        project.mkdir()
        incluster.suite(project, target, manifests(tmp_path / "m", replicas=1))
        out = tmp_path / "out"
        out.mkdir()
        # The pod runs as the image's user (10001): the suite readable, the report writable.
        for path in [project, *project.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        out.chmod(0o777)
        kubectl("create", "namespace", runner)
        kubectl("create", "namespace", target)
        (tmp_path / "rbac.yaml").write_text(incluster.rbac(runner, target))
        (tmp_path / "pod.yaml").write_text(
            incluster.runner_pod(runner, deps, project, out, "--image-tag=v1")
        )
        try:
            kubectl("apply", "-f", str(tmp_path / "rbac.yaml"))
            started = time.monotonic()
            kubectl("apply", "-f", str(tmp_path / "pod.yaml"))
            deadline = started + 600
            while _phase(runner) not in ("Succeeded", "Failed") and time.monotonic() < deadline:
                time.sleep(2)
            took = time.monotonic() - started
            phase = _phase(runner)
            log = kubectl("logs", "gate", namespace=runner)
            report = (
                json.loads((out / "gate.json").read_text()) if (out / "gate.json").exists() else {}
            )
        finally:
            kubectl("delete", "clusterrolebinding,clusterrole", f"rolloutgate-{target}",
                    "--ignore-not-found")  # fmt: skip

        print(f"gate in a pod: {took:.0f} s from pod creation to its end")
        assert phase == "Succeeded", log[-6000:]
        assert report["verdict"] == "pass", report
        assert report["tests"]["failed"] == report["tests"]["error"] == 0, log[-6000:]
        assert "in-cluster configuration, the pod's ServiceAccount" in log
        dep = get("deployment", "iris", target)
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "rolloutgate/iris:v1"
        assert dep["status"].get("availableReplicas") == 1
