"""Reaching a release and proving it healthy: its endpoint (the configured URL or a
port-forward to the Service's pods of the release), each of its replicas, and the checks a
restored or recovered release must pass (health on the endpoint once routing settled, health
and golden cases on every replica, side by side)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from kubernetes.client import ApiClient

from rolloutgate.checks import cases, credentials, fanout
from rolloutgate.checks.cases import Golden
from rolloutgate.checks.client import UNROUTED_RETRY_S, V2Client, describe, wait_answering
from rolloutgate.checks.httpclient import HttpClient, client_for
from rolloutgate.config import GateConfig
from rolloutgate.errors import ConfigError
from rolloutgate.kube import portforward
from rolloutgate.objects import Obj, name_of
from rolloutgate.release import routing
from rolloutgate.release.prepare import service_and_port
from rolloutgate.workloads import viewer_for


def _silent(_line: str) -> None:
    return None


@contextmanager
def open_endpoint(
    api: ApiClient,
    cfg: GateConfig,
    objs: list[Obj],
    live: list[Obj],
    *,
    deadline: float,
    say: Callable[[str], None] = _silent,
    note: Callable[[str], None] = _silent,
) -> Iterator[str]:
    """The base URL of the release ``live`` (its rolled-out workloads), reached as users reach
    it once routing has settled: the configured endpoint URL (without its userinfo: the session
    carries the credentials) once the Service's EndpointSlices hold only ready pods of the
    release (``routing``; ``say`` hears that it waits, ``note`` what had not settled by the
    deadline), else a port-forward to the release's own ready pods behind the Service."""
    pods = {name_of(p) for w in live for p in release_pods(api, cfg.namespace, w)}
    url = credentials.endpoint_url(cfg)
    if url is not None:
        try:
            service, _port = service_and_port(cfg, objs)
        except ConfigError as e:
            note(f"routing not awaited: {e}")
        else:
            if pods:
                unsettled = routing.wait_settled(
                    api, cfg.namespace, service, pods, deadline=deadline, on_wait=say
                )
                if unsettled is not None:
                    note(unsettled)
        yield url
        return
    service, port = service_and_port(cfg, objs)
    with portforward.port_forward(
        api, cfg.namespace, service, port, deadline=deadline, only=pods or None
    ) as url:
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
    """The V2 client of the checks at the endpoint: one session with the configured headers and
    the endpoint URL's credentials, a request that met no pod sent again for
    ``UNROUTED_RETRY_S``; over gRPC for the ``grpc`` protocol."""
    model = golden.model
    if golden.protocol.transport == "grpc":
        from rolloutgate.checks.grpc import GrpcClient, GrpcV2Client

        client = client_for(url, golden, cfg)
        assert isinstance(client, GrpcClient)
        return GrpcV2Client(client, cfg.health)
    return V2Client(
        url,
        model,
        timeout=cfg.request_timeout,
        health=cfg.health,
        session=credentials.session(cfg),
        unrouted_retry_s=UNROUTED_RETRY_S,
    )


def problems(
    api: ApiClient,
    cfg: GateConfig,
    objs: list[Obj],
    live: list[Obj],
    golden: Golden | None,
    deadline: float,
    *,
    say: Callable[[str], None] = _silent,
    note: Callable[[str], None] = _silent,
) -> list[str]:
    """A restored or recovered release's problems ([] = healthy): the endpoint answers its
    health checks once routing has settled (``open_endpoint``; a request that met no pod sent
    again), and every replica passes health and golden checks on its own."""
    found: list[str] = []
    with (
        open_endpoint(api, cfg, objs, live, deadline=deadline, say=say, note=note) as url,
        client_for(url, golden, cfg, unrouted_retry_s=UNROUTED_RETRY_S) as client,
    ):
        wait_answering(client, deadline=deadline)
        found += [f"endpoint {p}" for p in health(client)]
    with open_replicas(api, cfg, objs, live, deadline=deadline) as urls:
        if not urls:
            found.append("no pod of the restored release behind the Service")

        def verified(pod_url: str) -> list[str]:
            with client_for(pod_url, golden, cfg, forwarded=True) as client:
                wait_answering(client, deadline=deadline)
                return cases.verify(client, golden) if golden is not None else health(client)

        for pod, seen in fanout.each(urls, verified).items():
            found += [f"pod {pod}: {p}" for p in seen]
    return found


def health(client: HttpClient) -> list[str]:
    """The server-wide checks (live, ready): without a golden file there is no model name."""
    found = []
    for name in ("live", "ready"):
        response = client.health_check(name)
        if response is not None and not response.ok:
            found.append(f"health {name}: {describe(response)}")
    return found
