"""Reaching a release and proving it healthy: its endpoint (the configured URL or a
port-forward to the Service), each of its replicas, and the checks a restored or recovered
release must pass (health on the endpoint once routing settled, health and golden cases on
every replica, side by side)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes.client import ApiClient

from rolloutgate.checks import cases, credentials, fanout
from rolloutgate.checks.cases import Golden, HttpClient
from rolloutgate.checks.client import EndpointUnreachable, V2Client, describe, wait_answering
from rolloutgate.config import GateConfig
from rolloutgate.kube import portforward
from rolloutgate.objects import Obj
from rolloutgate.release.prepare import service_and_port
from rolloutgate.workloads import viewer_for


@contextmanager
def open_endpoint(
    api: ApiClient, cfg: GateConfig, objs: list[Obj], *, deadline: float
) -> Iterator[str]:
    """The base URL of the release: the configured endpoint URL (without its userinfo: the
    session carries the credentials), else a port-forward to a ready pod of the Service."""
    url = credentials.endpoint_url(cfg)
    if url is not None:
        yield url
        return
    service, port = service_and_port(cfg, objs)
    with portforward.port_forward(api, cfg.namespace, service, port, deadline=deadline) as url:
        yield url


@contextmanager
def open_replicas(
    api: ApiClient, cfg: GateConfig, objs: list[Obj], live: list[Obj], *, deadline: float
) -> Iterator[dict[str, str]]:
    """A base URL per pod of the release's current revision behind the model's Service: a
    port-forward straight to each pod, so every replica is checked, not only the one a
    connection happens to reach."""
    service, port = service_and_port(cfg, objs)
    pods = [p for w in live for p in release_pods(api, cfg.namespace, w)]
    with portforward.pod_forwards(
        api, cfg.namespace, service, port, pods, deadline=deadline
    ) as urls:
        yield urls


def release_pods(api: ApiClient, namespace: str, workload: Obj) -> list[Obj]:
    """The pods of the workload's current revision."""
    return viewer_for(workload).release_pods(api, namespace, workload)


def v2_client(cfg: GateConfig, url: str, golden: Golden) -> V2Client:
    """The V2 client of the checks: one session with the configured headers and the endpoint
    URL's credentials; over gRPC for the ``grpc`` protocol."""
    model = golden.model
    if golden.protocol.transport == "grpc":
        from rolloutgate.checks.grpc import GrpcClient, GrpcV2Client

        client = cases.client_for(url, golden, cfg)
        assert isinstance(client, GrpcClient)
        return GrpcV2Client(client, cfg.health)
    return V2Client(
        url,
        model,
        timeout=cfg.request_timeout,
        health=cfg.health,
        session=credentials.session(cfg),
    )


def problems(
    api: ApiClient,
    cfg: GateConfig,
    objs: list[Obj],
    live: list[Obj],
    golden: Golden | None,
    deadline: float,
) -> list[str]:
    """A restored or recovered release's problems ([] = healthy): the endpoint answers its
    health checks once routing has settled, and every replica passes health and golden checks
    on its own."""
    found: list[str] = []
    with (
        open_endpoint(api, cfg, objs, deadline=deadline) as url,
        cases.client_for(url, golden, cfg) as client,
    ):
        settle = min(deadline, time.monotonic() + cfg.timeouts.endpoint)
        found += [f"endpoint {p}" for p in settled_health(client, settle)]
    with open_replicas(api, cfg, objs, live, deadline=deadline) as urls:
        if not urls:
            found.append("no pod of the restored release behind the Service")

        def verified(pod_url: str) -> list[str]:
            with cases.client_for(pod_url, golden, cfg) as client:
                wait_answering(client, deadline=deadline)
                return cases.verify(client, golden) if golden is not None else health(client)

        for pod, seen in fanout.each(urls, verified).items():
            found += [f"pod {pod}: {p}" for p in seen]
    return found


def settled_health(client: HttpClient, deadline: float) -> list[str]:
    """The endpoint's health problems once its routing has settled ([] = healthy).

    Right after a rollout a Service or an ingress may still send a request to a pod that is
    shutting down (endpoints and proxies converge asynchronously, within seconds): found
    through an endpoint URL as 502s or refused connections. Failures are asked again until
    `deadline`; the last ones are the verdict.
    """
    wait_answering(client, deadline=deadline)
    while True:
        try:
            found = health(client)
        except EndpointUnreachable as e:
            found = [str(e)]
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def health(client: HttpClient) -> list[str]:
    """The server-wide checks (live, ready): without a golden file there is no model name."""
    found = []
    for name in ("live", "ready"):
        response = client.health_check(name)
        if response is not None and not response.ok:
            found.append(f"health {name}: {describe(response)}")
    return found
