"""The gate run from a pod of the cluster with the in-cluster configuration: no kubeconfig, the
shipped ServiceAccount bound only to the shipped Role (deploy/rbac/), the whole chain — lock,
snapshot, apply, rollout, port-forwarded health and golden checks, in-pod checks."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import incluster
from gaterun import IRIS, KUBECONFIG, KUBECTL, kubectl
from manifestkit import fresh_namespace, get
from rbac_kubeconfig import apply_rbac


def _phase(namespace: str, pod: str = "gate") -> str:
    """The runner pod's phase; "" while the API server does not answer (other tests on this
    cluster restart it)."""
    proc = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "-n", namespace, "get", "pod", pod,
         "-o", "jsonpath={.status.phase}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return proc.stdout.strip() if proc.returncode == 0 else ""


def test_gate_runs_from_a_pod_with_the_in_cluster_configuration(
    e2e_cluster: None, tmp_path: Path
) -> None:
    deps = incluster.dependencies()  # built once (about 40 s, 111 MB), then cached
    with fresh_namespace("e2e-incl") as target:
        project = tmp_path / "project"
        project.mkdir()
        incluster.suite(project, target, IRIS.copy(tmp_path / "m", replicas=1))
        out = tmp_path / "out"
        out.mkdir()
        # The pod runs as the image's user (10001): the suite readable, the report writable.
        for path in [project, *project.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        out.chmod(0o777)
        # As docs/rbac.md says: an admin creates the namespace and applies deploy/rbac/ in it.
        kubectl("create", "namespace", target)
        apply_rbac(target)
        (tmp_path / "pod.yaml").write_text(
            incluster.runner_pod(target, deps, project, out, "--image-tag=v1")
        )
        started = time.monotonic()
        kubectl("apply", "-f", str(tmp_path / "pod.yaml"))
        deadline = started + 600
        while _phase(target) not in ("Succeeded", "Failed") and time.monotonic() < deadline:
            time.sleep(2)
        took = time.monotonic() - started
        phase = _phase(target)
        log = kubectl("logs", "gate", namespace=target)
        gate_json = out / "gate.json"
        report = json.loads(gate_json.read_text()) if gate_json.exists() else {}

        print(f"gate in a pod: {took:.0f} s from pod creation to its end")
        assert phase == "Succeeded", log[-6000:]
        assert report["verdict"] == "pass", report
        assert report["tests"]["failed"] == report["tests"]["error"] == 0, log[-6000:]
        assert "in-cluster configuration, the pod's ServiceAccount" in log
        dep = get("deployment", "iris", target)
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "rolloutgate/iris:v1"
        assert dep["status"].get("availableReplicas") == 1

        # The nightly canary as a CronJob's pod would run it: canary.reach left at `auto`, so
        # the in-cluster configuration sends the traffic to the arms' pod IPs (no port-forward).
        small = {
            "ROLLOUTGATE_CANARY_REPLICAS": "1",
            "ROLLOUTGATE_CANARY_WARMUP": "5",
            "ROLLOUTGATE_CANARY_MIN_DURATION": "5",
            "ROLLOUTGATE_CANARY_MAX_DURATION": "0",
            "ROLLOUTGATE_CANARY_HTML": "/out/canary.html",
            "ROLLOUTGATE_CANARY_HISTORY": "/out/history.jsonl",
        }
        args = ("--canary", "--image-tag=v2", "--canary-requests=100",
                "--canary-report=/out/canary.json")  # fmt: skip
        pod = incluster.runner_pod(target, deps, project, out, *args, name="canary", env=small)
        (tmp_path / "canary.yaml").write_text(pod)
        kubectl("apply", "-f", str(tmp_path / "canary.yaml"))
        deadline = time.monotonic() + 600
        while _phase(target, "canary") not in ("Succeeded", "Failed"):
            assert time.monotonic() < deadline, kubectl("logs", "canary", namespace=target)
            time.sleep(2)
        log = kubectl("logs", "canary", namespace=target)
        canary = json.loads((out / "canary.json").read_text())
        assert canary["traffic"]["reach"] == "pod-ip", log[-6000:]
        assert "at their pod IPs (canary.reach=auto)" in log
        # v2 against v1 on 100 of the labelled rows: a pass, or marginal when 100 rows cannot
        # show the accuracy within 1 point; never a failure, and every request answered.
        assert canary["verdict"] in ("pass", "marginal"), canary["reason"]
        assert canary["traffic"]["per_arm"]["canary"]["valid"] == 100
        assert not kubectl(
            "get", "deployments", "-l", "rolloutgate.io/canary-of=iris", "-o", "name",
            namespace=target,
        ).strip()  # fmt: skip
