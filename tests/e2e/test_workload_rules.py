"""What the gate does with workloads around it: an HorizontalPodAutoscaler keeps the replica
count through releases; a paused Deployment is refused before anything is applied; a
configuration change that no rollout picks up is said loudly, or restarts the workload when
asked. The local cluster has no metrics-server: the HPA controller still enforces minReplicas
and maxReplicas, which is what these tests rely on."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from gaterun import PENGUIN, kubectl
from manifestkit import edit_deployment, fresh_namespace, get, manifests

HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: penguin}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: penguin}
  minReplicas: 2
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
"""


def _replicas_owners(dep: dict[str, Any]) -> list[str]:
    return [
        f"{m['manager']} ({m['operation']})"
        for m in dep["metadata"].get("managedFields", [])
        if "f:replicas" in m.get("fieldsV1", {}).get("f:spec", {})
    ]


def _wait_replicas(namespace: str, want: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        dep = get("deployment", "penguin", namespace)
        if dep["spec"].get("replicas") == want or time.monotonic() > deadline:
            return dep
        time.sleep(1)


def test_hpa_keeps_the_replica_count_through_releases(e2e_cluster: None, tmp_path: Path) -> None:
    with fresh_namespace("e2e-hpa") as ns:
        # A release without HPA: the gate applies (and owns) spec.replicas = 1.
        plain = manifests(tmp_path / "plain", replicas=1)
        first = PENGUIN.run(ns, tmp_path / "v1.json", "--image-tag=v1", f"--manifests={plain}")
        assert first.returncode == 0, first.output[-4000:]
        assert get("deployment", "penguin", ns)["spec"]["replicas"] == 1

        # The release adds an HPA (min 2) and still says replicas: 1 in the manifest. The gate
        # applies without spec.replicas; the HPA controller scales to 2 while the gate runs or
        # soon after; the deploy checks accept that scale.
        scaled = manifests(tmp_path / "hpa", replicas=1, hpa=HPA)
        second = PENGUIN.run(ns, tmp_path / "v2.json", "--image-tag=v2", f"--manifests={scaled}")
        assert second.returncode == 0, second.output[-4000:]
        assert "replicas left to HorizontalPodAutoscaler/penguin" in second.output
        dep = _wait_replicas(ns, 2, timeout=60)
        assert dep["spec"]["replicas"] == 2, "the HPA did not scale to its minReplicas"
        assert not any(o.startswith("rolloutgate ") for o in _replicas_owners(dep)), dep

        # The HPA decided 3 (as it would under load); the next release's manifests say 1 and
        # hold no HPA any more (the live one still targets the Deployment): 3 stays.
        kubectl("scale", "deployment/penguin", "--replicas=3", namespace=ns)
        third = PENGUIN.run(ns, tmp_path / "v1b.json", "--image-tag=v1", f"--manifests={plain}")
        assert third.returncode == 0, third.output[-4000:]
        dep = get("deployment", "penguin", ns)
        assert dep["spec"]["replicas"] == 3
        assert dep["status"].get("updatedReplicas") == 3
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "rolloutgate/penguin:v1"


def test_paused_deployment_is_refused_before_anything_is_applied(
    e2e_cluster: None, tmp_path: Path
) -> None:
    with fresh_namespace("e2e-paused") as ns:
        plain = manifests(tmp_path / "plain", replicas=1)
        first = PENGUIN.run(ns, tmp_path / "v1.json", "--image-tag=v1", f"--manifests={plain}")
        assert first.returncode == 0, first.output[-4000:]

        kubectl("rollout", "pause", "deployment/penguin", namespace=ns)
        before = get("deployment", "penguin", ns)["metadata"]["resourceVersion"]
        live = PENGUIN.run(ns, tmp_path / "v2.json", "--image-tag=v2", f"--manifests={plain}")
        assert live.returncode != 0, live.output[-4000:]
        assert "live: deployment penguin is paused" in live.output, live.output[-4000:]
        assert "kubectl rollout resume deployment/penguin" in live.output
        assert live.report["applied"] is False
        assert get("deployment", "penguin", ns)["metadata"]["resourceVersion"] == before

        kubectl("rollout", "resume", "deployment/penguin", namespace=ns)
        edit_deployment(plain, lambda d: d["spec"].__setitem__("paused", True))
        in_manifest = PENGUIN.run(
            ns, tmp_path / "v2b.json", "--image-tag=v2", f"--manifests={plain}"
        )
        assert in_manifest.returncode != 0, in_manifest.output[-4000:]
        assert "deployment penguin is paused: a rollout would never progress" in in_manifest.output
        assert "live: deployment" not in in_manifest.output  # refused from the manifest alone
        assert in_manifest.report["applied"] is False


CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata: {{name: penguin-settings}}
data: {{LOG_LEVEL: "{level}"}}
"""


def _uses_config(d: dict[str, Any]) -> None:
    container = d["spec"]["template"]["spec"]["containers"][0]
    container["envFrom"] = [{"configMapRef": {"name": "penguin-settings"}}]


def _pod_names(namespace: str) -> set[str]:
    """The penguin pods not being deleted."""
    pods = json.loads(
        kubectl(
            "get", "pods", "-l", "app.kubernetes.io/name=penguin", "-o", "json", namespace=namespace
        )
    )["items"]
    return {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}


def test_config_only_change_is_said_loudly_or_restarts_on_request(
    e2e_cluster: None, tmp_path: Path
) -> None:
    with fresh_namespace("e2e-config") as ns:
        target = tmp_path / "m"
        manifests(target, replicas=1, config=CONFIG.format(level="INFO"))
        edit_deployment(target, _uses_config)
        first = PENGUIN.run(ns, tmp_path / "v1.json", "--image-tag=v1", f"--manifests={target}")
        assert first.returncode == 0, first.output[-4000:]
        pods = _pod_names(ns)

        # Only the ConfigMap changes: the pods would keep LOG_LEVEL=INFO. Said in the progress,
        # the terminal summary and the report; nothing restarts.
        (target / "config.yaml").write_text(CONFIG.format(level="DEBUG"))
        warned = PENGUIN.run(ns, tmp_path / "w.json", "--image-tag=v1", f"--manifests={target}")
        assert warned.returncode == 0, warned.output[-4000:]
        warning = "ConfigMap/penguin-settings changes but Deployment/penguin does not"
        assert warned.output.count(warning) >= 2, warned.output[-4000:]
        assert any(warning in note for note in warned.report["notes"]), warned.report["notes"]
        assert _pod_names(ns) == pods

        # Asked to, the gate restarts it as `kubectl rollout restart` does, in the same apply.
        (target / "config.yaml").write_text(CONFIG.format(level="WARNING"))
        restarted = PENGUIN.run(
            ns,
            tmp_path / "r.json",
            "--image-tag=v1",
            f"--manifests={target}",
            "--restart-on-config-change",
        )
        assert restarted.returncode == 0, restarted.output[-4000:]
        assert "restarting Deployment/penguin as `kubectl rollout restart` does" in restarted.output
        template = get("deployment", "penguin", ns)["spec"]["template"]
        assert "kubectl.kubernetes.io/restartedAt" in template["metadata"]["annotations"]
        assert not _pod_names(ns) & pods
