"""Fixtures of the protocol-neutral HTTP checks; loaded by ``rolloutgate.pytest.plugin``.

``rolloutgate_http`` sends golden cases and health checks to the new release, whatever protocol
its golden file names (``rolloutgate.checks.protocols``); ``rolloutgate_metrics`` reads the server's
request counter on each pod of the release (``rolloutgate.checks.metrics``). What they need is
imported inside them: a pytest run that uses neither pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from rolloutgate.config import GateConfig
from rolloutgate.objects import Obj

if TYPE_CHECKING:
    from rolloutgate.checks.cases import Golden
    from rolloutgate.checks.httpclient import HttpClient
    from rolloutgate.checks.metrics import PodMetrics


@pytest.fixture(scope="session")
def rolloutgate_http(
    rolloutgate_endpoint: str, rolloutgate_golden: Golden, rolloutgate_config: GateConfig
) -> Iterator[HttpClient]:
    """Session. A ``rolloutgate.checks.httpclient.HttpClient`` at the release's endpoint:
    ``send(case.request)``, ``health_check(name)``; health paths from the ``health.*``
    settings, else the golden file, else its protocol's preset. Per-request timeout
    ``timeouts.request``; a request that met no pod (refused, 502, 504) is sent again for up to
    10 s before it is judged."""
    from rolloutgate.checks.client import UNROUTED_RETRY_S
    from rolloutgate.checks.httpclient import client_for

    with client_for(
        rolloutgate_endpoint,
        rolloutgate_golden,
        rolloutgate_config,
        unrouted_retry_s=UNROUTED_RETRY_S,
    ) as client:
        yield client


@pytest.fixture
def rolloutgate_metrics(
    request: pytest.FixtureRequest,
    rolloutgate_config: GateConfig,
    rolloutgate_pods: list[Obj],
    rolloutgate_manifests: list[Obj],
) -> PodMetrics | None:
    """Function. A ``rolloutgate.checks.metrics.PodMetrics`` reading the ``metrics.counter`` on
    every pod of the new release (``read()``); None when no ``metrics.path`` is configured. The
    port is ``metrics.port``, else the container port the Service targets; on that one, read
    through the ``rolloutgate_replicas`` clients (their connections kept) when they speak HTTP."""
    cfg = rolloutgate_config
    if cfg.metrics is None:
        return None
    from rolloutgate.checks.metrics import PodMetrics, same_port
    from rolloutgate.errors import GateError
    from rolloutgate.kube import portforward
    from rolloutgate.release.prepare import service_and_port

    target: int | str | None = None  # the container port the Service targets
    try:
        service, service_port = service_and_port(cfg, rolloutgate_manifests)
        svc = next(
            o
            for o in rolloutgate_manifests
            if o.get("kind") == "Service" and o["metadata"]["name"] == service
        )
        target = portforward.service_port(svc, service_port)
    except (GateError, StopIteration) as e:
        if cfg.metrics.port is None:
            pytest.fail(
                f"cannot tell which port serves metrics ({e}); set metrics.port", pytrace=False
            )
    port = cfg.metrics.port if cfg.metrics.port is not None else target
    assert port is not None
    clients = {}
    if target is not None and same_port(rolloutgate_pods, port, target):
        golden: Golden = request.getfixturevalue("rolloutgate_golden")
        if golden.protocol.transport != "grpc":  # a gRPC client has no GET
            clients = request.getfixturevalue("rolloutgate_replicas")
    api = request.getfixturevalue("rolloutgate_api")
    return PodMetrics(
        api,
        cfg.namespace,
        tuple(rolloutgate_pods),
        cfg.metrics,
        port,
        cfg.request_timeout,
        clients=clients,
    )
