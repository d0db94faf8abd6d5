"""The gate's own readiness question: the request of the pod's HTTP readiness probe."""

from __future__ import annotations

from rolloutgate.checks.readyprobe import ProbeRequest, judged, probe_request
from rolloutgate.objects import Obj

from .k8s_objects import container, pod


def _pod(probe: Obj | None, *, ready: bool = False) -> Obj:
    p = pod(phase="Running", container_statuses=[container(ready=ready)])
    spec: Obj = {"name": "model", "ports": [{"name": "http", "containerPort": 8080}]}
    if probe is not None:
        spec["readinessProbe"] = probe
    p["spec"] = {"containers": [{"name": "sidecar"}, spec]}
    return p


def test_the_probes_path_port_name_and_headers() -> None:
    probe = {
        "httpGet": {
            "path": "/v2/health/ready",
            "port": "http",
            "httpHeaders": [{"name": "X-Probe", "value": "1"}],
        }
    }
    assert probe_request(_pod(probe)) == ProbeRequest(
        "model", 8080, "/v2/health/ready", (("X-Probe", "1"),)
    )
    assert probe_request(_pod({"httpGet": {"port": 9000}})) == ProbeRequest("model", 9000, "/", ())


def test_nothing_to_ask_the_gate_cannot_ask_the_same_way() -> None:
    assert probe_request(_pod(None)) is None
    assert probe_request(_pod({"exec": {"command": ["true"]}})) is None
    assert probe_request(_pod({"httpGet": {"port": 8443, "scheme": "HTTPS"}})) is None
    assert probe_request(_pod({"httpGet": {"port": 80, "host": "example.internal"}})) is None
    assert probe_request(_pod({"httpGet": {"port": "metrics"}})) is None  # no such port
    assert probe_request(_pod({"httpGet": {"port": 8080}}, ready=True)) is None


def test_the_kubelets_rule_200_to_399_is_ready() -> None:
    request = ProbeRequest("model", 8080, "/v2/health/ready", ())
    assert judged(request, 200) is None
    assert judged(request, 302) is None
    text = judged(request, 400) or ""
    assert text.startswith("Readiness probe failed: HTTP probe failed with statuscode: 400 ")
    assert "asked by the gate: GET /v2/health/ready on port 8080 of container model" in text
    assert judged(request, 503) is not None
