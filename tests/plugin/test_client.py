"""The V2 client, the wait for an answering server and latency measurement, against the
loopback model server (model_server.py, V2 model ``wine``).

Golden files and their comparison are tested in tests/unit/test_cases.py, percentiles in
tests/unit/test_latency.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from model_server import serve

from rolloutgate import config
from rolloutgate.checks.client import EndpointUnreachable, V2Client, wait_answering
from rolloutgate.checks.httpclient import HttpClient, client_for
from rolloutgate.checks.latency import measure_latency
from rolloutgate.config import HealthPaths

INFER = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [2.0]}]}


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, Any]]]:
    """Function. (base URL, state) of a server on 127.0.0.1 speaking V2 for ``wine``."""
    with serve() as running:
        yield running


def test_v2_client_speaks_health_and_inference_paths(server: tuple[str, dict[str, Any]]) -> None:
    url, state = server
    client = V2Client(url, "wine", timeout=2)
    assert client.live().status_code == 200
    assert client.ready().status_code == 200
    assert client.model_ready().url == f"{url}/v2/models/wine/ready"
    assert client.model_ready().status_code == 200
    assert client.infer(INFER).json() == {"outputs": [{"name": "predict", "data": [2]}]}
    state["ready"] = False
    assert client.ready().status_code == 400


def test_health_paths_are_configurable(server: tuple[str, dict[str, Any]]) -> None:
    url, _ = server
    client = V2Client(url, "wine", timeout=2, health=HealthPaths(live="/healthz"))
    assert client.live().url == f"{url}/healthz"
    assert client.live().json() == {"status": "alive"}


def test_latency_is_measured_per_request(server: tuple[str, dict[str, Any]]) -> None:
    url, _ = server
    client = V2Client(url, "wine", timeout=2)
    latency = measure_latency(lambda: client.infer(INFER), 5)
    assert len(latency.samples_ms) == 5
    assert latency.errors == ()
    assert 0 < latency.p50_ms <= latency.p95_ms
    failing = measure_latency(lambda: client.request("GET", "/nope"), 2)
    assert failing.samples_ms == ()
    assert failing.errors[0].startswith(f"GET {url}/nope -> 404")


def test_unreachable_endpoint_is_a_named_error() -> None:
    # Port 9 (discard) on loopback: nothing listens there in the test environment.
    client = V2Client("http://127.0.0.1:9", "iris", timeout=0.5)
    with pytest.raises(
        EndpointUnreachable, match=r"GET http://127.0.0.1:9/v2/health/live got no answer"
    ):
        client.live()
    with pytest.raises(EndpointUnreachable, match="did not answer before the deadline"):
        wait_answering(client, deadline=0)


def test_a_recent_200_to_a_health_check_stands_for_asking_again(
    server: tuple[str, dict[str, Any]],
) -> None:
    url, state = server
    client = HttpClient(url, model="wine", timeout=2, health={"live": "/readyz"})

    def live(max_age_s: float = 0.0) -> int:
        response = client.health_check("live", max_age_s=max_age_s)
        assert response is not None
        return response.status_code

    assert client.live().status_code == 200
    state["ready"] = False
    # Within max_age_s the 200 stands; without it (the default), the server is asked.
    assert live(max_age_s=10) == 200
    assert live() == 503
    # The kept answer is now the 503: never reused, the server is asked.
    state["ready"] = True
    assert live(max_age_s=10) == 200
    state["ready"] = False
    assert live(max_age_s=0) == 503


def test_a_client_of_the_gates_own_forward_ignores_the_environments_proxy(
    server: tuple[str, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = server
    # Port 9 (discard): a proxy that answers nothing.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    cfg = config.resolve(
        {}, env={}, tool={}, rootdir=tmp_path, invocation_dir=tmp_path,
        list_contexts=lambda _k: [],
    )  # fmt: skip
    cfg = replace(cfg, request_timeout=2)
    with client_for(url, None, cfg, forwarded=True) as forwarded:
        assert forwarded.get("/healthz").status_code == 200
    with client_for(url, None, cfg) as through_env, pytest.raises(EndpointUnreachable):
        through_env.get("/healthz")
