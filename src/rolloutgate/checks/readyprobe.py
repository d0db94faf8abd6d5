"""The gate's own readiness question: the request a pod's HTTP readiness probe makes, sent by
the gate through a port-forward to that pod.

Asked only when ``ready_grace`` is over and the kubelet's events gave no definite answer: the
kubelet stops reporting a pod's failed probes after about 25 events (``checks.readiness``), so
on a busy node a server that answered "400" only after a long start was never reported. The
answer is judged as the kubelet judges it: a status from 200 to 399 is ready, any other
status is a definite "not ready", no answer (refused, reset, timeout) is none.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.client import ApiClient

from rolloutgate.errors import GateError
from rolloutgate.kube import portforward
from rolloutgate.objects import Obj, at

# At most this long for the question (the port-forward's stream and the answer): the rollout's
# watch loop waits on it.
ASK_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ProbeRequest:
    """The GET a container's ``readinessProbe.httpGet`` makes."""

    container: str
    port: int
    path: str
    headers: tuple[tuple[str, str], ...]


def probe_request(pod: Obj) -> ProbeRequest | None:
    """The HTTP readiness probe of the pod's first not-ready container that has one; None
    when there is none the gate can make the same way (an exec or TCP probe, HTTPS, another
    host). Pure."""
    ready = {
        str(cs.get("name")): bool(cs.get("ready"))
        for cs in at(pod, "status", "containerStatuses") or []
    }
    for c in at(pod, "spec", "containers") or []:
        get = at(c, "readinessProbe", "httpGet")
        if not isinstance(get, dict) or ready.get(str(c.get("name")), False):
            continue
        if get.get("host") or str(get.get("scheme") or "HTTP").upper() != "HTTP":
            return None
        port_ref = get.get("port")
        if isinstance(port_ref, str) and port_ref.isdigit():
            port_ref = int(port_ref)
        if not isinstance(port_ref, int | str):
            return None
        try:
            port = portforward.container_port(pod, port_ref)
        except GateError:
            return None
        headers = tuple(
            (str(h.get("name")), str(h.get("value"))) for h in get.get("httpHeaders") or []
        )
        return ProbeRequest(str(c.get("name")), port, str(get.get("path") or "/"), headers)
    return None


def judged(request: ProbeRequest, status: int) -> str | None:
    """The kubelet's rule on an answer: None when ready (200-399), else the verdict's text."""
    if 200 <= status < 400:
        return None
    # The kubelet's own words first: what a user (or a test) looks for is the same whoever
    # asked.
    return (
        f"Readiness probe failed: HTTP probe failed with statuscode: {status} (asked by the "
        f"gate: GET {request.path} on port {request.port} of container {request.container}; "
        "the kubelet reports only about 25 events per pod)"
    )


def ask(api: ApiClient, namespace: str, pod: Obj, timeout: float = ASK_TIMEOUT_S) -> str | None:
    """Send the pod's readiness request: a definite "not ready" (the verdict's text), or None
    (ready, no HTTP probe, or no answer within ``timeout``)."""
    import requests  # only a gate that needs it pays for the import

    request = probe_request(pod)
    if request is None:
        return None
    try:
        with portforward.pod_forward(api, namespace, pod, request.port, probe=False) as url:
            response = requests.get(
                url + request.path,
                headers=dict(request.headers),
                timeout=timeout,
                allow_redirects=False,
            )
    except (requests.RequestException, GateError):
        return None  # no answer: the server may still be starting
    return judged(request, response.status_code)


@dataclass(frozen=True)
class ProbeAsker:
    """``ask`` bound to a cluster and namespace: what ``PodJudge`` calls."""

    api: ApiClient
    namespace: str

    def __call__(self, pod: Obj) -> str | None:
        return ask(self.api, self.namespace, pod)
