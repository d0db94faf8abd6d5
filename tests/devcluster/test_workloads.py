"""The local cluster runs real workloads: rollouts, services, image errors, crash loops."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request

from clusterkit import Kubectl, versions, wait_until


def deployment(
    name: str,
    image: str,
    *,
    replicas: int = 1,
    command: list[str] | None = None,
    pull_policy: str = "Never",
) -> str:
    container: dict[str, object] = {
        "name": "web",
        "image": image,
        "imagePullPolicy": pull_policy,
        "ports": [{"containerPort": 8080, "name": "http"}],
    }
    if command:
        container["command"] = command
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [container], "terminationGracePeriodSeconds": 1},
                },
            },
        }
    )


def test_node_is_ready_and_reports_the_pinned_version(cluster: object) -> None:
    k = Kubectl()
    nodes = json.loads(k("get", "nodes", "-o", "json"))["items"]
    assert len(nodes) == 1
    ready = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}["Ready"]
    assert ready == "True"
    server = json.loads(k("version", "-o", "json"))["serverVersion"]
    assert server["gitVersion"] == versions()["K8S_VERSION"]


def test_three_replicas_become_available_and_the_service_answers_port_forward(
    kubectl: Kubectl, test_image: str
) -> None:
    kubectl("apply", "-f", "-", stdin=deployment("web", test_image, replicas=3))
    kubectl("expose", "deployment", "web", "--port=8080", "--target-port=http")
    kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=130)
    status = json.loads(kubectl("get", "deployment", "web", "-o", "json"))["status"]
    assert status["availableReplicas"] == 3

    # Port 0: kubectl picks a free local port and says which.
    proc = subprocess.Popen(
        kubectl.argv("port-forward", "service/web", ":8080"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", first)
        assert match, f"unexpected port-forward output: {first!r}"
        with urllib.request.urlopen(f"http://127.0.0.1:{match[1]}/", timeout=10) as resp:
            assert resp.read().decode() == "hello from rolloutgate\n"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_service_ip_answers_from_inside_a_pod(kubectl: Kubectl, test_image: str) -> None:
    # Pod → ClusterIP crosses kube-proxy's iptables rules; exec crosses API server → kubelet.
    kubectl("apply", "-f", "-", stdin=deployment("web", test_image))
    kubectl("expose", "deployment", "web", "--port=80", "--target-port=http")
    kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=130)
    ip = kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}")
    # busybox's wget crashes in a static glibc build (NSS); nc speaks plain HTTP/1.0 instead.
    request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | /bin/busybox nc -w 5 {ip} 80"
    body = kubectl("exec", "deployment/web", "--", "/bin/busybox", "sh", "-c", request)
    lines = body.replace("\r", "").splitlines()
    assert lines[0] == "HTTP/1.1 200 OK"
    assert lines[-2:] == ["", "hello from rolloutgate"]


def test_missing_image_blocks_the_rollout_and_undo_restores_the_old_replicaset(
    kubectl: Kubectl, test_image: str
) -> None:
    kubectl("apply", "-f", "-", stdin=deployment("web", test_image, replicas=2))
    kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=130)
    kubectl("set", "image", "deployment/web", "web=rolloutgate/busybox:never-built")

    def never_pull() -> str | None:
        pods = json.loads(kubectl("get", "pods", "-l", "app=web", "-o", "json"))["items"]
        for pod in pods:
            for status in pod["status"].get("containerStatuses", []):
                if (status["state"].get("waiting") or {}).get("reason") == "ErrImageNeverPull":
                    return str(pod["metadata"]["name"])
        return None

    wait_until("a new pod in ErrImageNeverPull", never_pull, timeout=90)
    kubectl("rollout", "undo", "deployment/web")
    kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=130)
    pods = json.loads(kubectl("get", "pods", "-l", "app=web", "-o", "json"))["items"]
    running = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert {c["image"] for p in running for c in p["spec"]["containers"]} == {test_image}
    assert all(p["status"]["phase"] == "Running" for p in running)


def test_container_exiting_non_zero_reaches_crashloopbackoff(
    kubectl: Kubectl, test_image: str
) -> None:
    command = ["/bin/busybox", "sh", "-c", "echo going down; exit 3"]
    kubectl("apply", "-f", "-", stdin=deployment("crash", test_image, command=command))
    kubectl(
        "wait",
        "pod",
        "-l",
        "app=crash",
        "--for=jsonpath={.status.containerStatuses[0].state.waiting.reason}=CrashLoopBackOff",
        "--timeout=120s",
        timeout=130,
    )
    pod = json.loads(kubectl("get", "pods", "-l", "app=crash", "-o", "json"))["items"][0]
    last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 3

    # The crashed instance is "current" while the kubelet backs off and "previous" once it has
    # restarted; the kubelet also removes older dead instances. Ask for both, within a deadline.
    def crash_log() -> str | None:
        for extra in ((), ("--previous",)):
            proc = subprocess.run(
                kubectl.argv("logs", pod["metadata"]["name"], *extra),
                capture_output=True,
                text=True,
                timeout=30,
            )
            if proc.returncode == 0 and proc.stdout.strip() == "going down":
                return proc.stdout.strip()
        return None

    assert wait_until("the crashed instance's log", crash_log, timeout=60) == "going down"
