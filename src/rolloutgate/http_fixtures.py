"""Fixtures of the protocol-neutral HTTP checks; loaded by ``rolloutgate.plugin``.

``rolloutgate_http`` sends golden cases and health checks to the new release, whatever protocol
its golden file names (``rolloutgate.protocols``); ``rolloutgate_metrics`` reads the server's
request counter on each pod of the release (``rolloutgate.metrics``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rolloutgate import endpoint, gate
from rolloutgate.cases import Golden, HttpClient, client_for
from rolloutgate.config import GateConfig
from rolloutgate.errors import GateError
from rolloutgate.metrics import PodMetrics


@pytest.fixture(scope="session")
def rolloutgate_http(
    rolloutgate_endpoint: str, rolloutgate_golden: Golden, rolloutgate_config: GateConfig
) -> Iterator[HttpClient]:
    """Session. A ``rolloutgate.cases.HttpClient`` at the release's endpoint: ``send(case
    .request)``, ``health_check(name)``; health paths from the ``health.*`` settings, else the
    golden file, else its protocol's preset. Per-request timeout ``timeouts.request``."""
    with client_for(rolloutgate_endpoint, rolloutgate_golden, rolloutgate_config) as client:
        yield client


@pytest.fixture
def rolloutgate_metrics(
    request: pytest.FixtureRequest,
    rolloutgate_config: GateConfig,
    rolloutgate_pods: list[dict[str, Any]],
    rolloutgate_manifests: list[dict[str, Any]],
) -> PodMetrics | None:
    """Function. A ``rolloutgate.metrics.PodMetrics`` reading the ``metrics.counter`` on every
    pod of the new release (``read()``); None when no ``metrics.path`` is configured. The port
    is ``metrics.port``, else the container port the Service targets."""
    cfg = rolloutgate_config
    if cfg.metrics is None:
        return None
    port = cfg.metrics.port
    if port is None:
        try:
            service, service_port = gate.service_and_port(cfg, rolloutgate_manifests)
            svc = next(
                o
                for o in rolloutgate_manifests
                if o.get("kind") == "Service" and o["metadata"]["name"] == service
            )
            port = endpoint.service_port(svc, service_port)
        except (GateError, StopIteration) as e:
            pytest.fail(
                f"cannot tell which port serves metrics ({e}); set metrics.port", pytrace=False
            )
    api = request.getfixturevalue("rolloutgate_api")
    return PodMetrics(
        api, cfg.namespace, tuple(rolloutgate_pods), cfg.metrics, port, cfg.request_timeout
    )
