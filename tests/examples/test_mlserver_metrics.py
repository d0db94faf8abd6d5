"""The gate's metrics check against a real MLServer (rolloutgate/iris:v1 under docker).

MLServer 1.7.1 serves Prometheus text on a port of its own (MLSERVER_METRICS_PORT, default
8082; 404 on the HTTP port) when MLSERVER_METRICS_ENDPOINT is set — the iris images turn it
off, a container may turn it on. Its per-model counter is
``model_infer_request_success_total{model, version}``: the counter docs/gate.md names for
MLServer profiles. This checks that fact and that ``rolloutgate.checks.metrics`` reads it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from iris_harness import Container, docker, free_port, wait_for_status

from rolloutgate.checks import metrics
from rolloutgate.config import MetricsCheck

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.docker
CHECK = MetricsCheck(
    path="/metrics", counter="model_infer_request_success", labels=(("model", "iris"),)
)


@pytest.fixture
def mlserver(iris_image: object) -> Iterator[tuple[Container, int]]:
    """Function: iris v1 with MLServer's metrics server on, (container, metrics port)."""
    iris_image("v1")  # type: ignore[operator]
    http, grpc, port = free_port(), free_port(), free_port()
    cid = docker(
        "run", "-d", "--network=host", "--read-only", "--tmpfs", "/tmp:rw,mode=1777",
        "--cap-drop", "ALL", "--label", "rolloutgate.test=examples",
        "-e", f"MLSERVER_HTTP_PORT={http}", "-e", f"MLSERVER_GRPC_PORT={grpc}",
        "-e", "MLSERVER_METRICS_ENDPOINT=/metrics", "-e", f"MLSERVER_METRICS_PORT={port}",
        "rolloutgate/iris:v1",
    )  # fmt: skip
    c = Container(cid=cid, tag="v1", port=http)
    yield c, port
    subprocess.run(["docker", "rm", "-f", cid], capture_output=True, timeout=60)


def test_metrics_check_counts_mlserver_inferences(mlserver: tuple[Container, int]) -> None:
    c, port = mlserver
    wait_for_status(c, "/v2/health/ready", 200, 90)
    assert requests.get(c.url + "/metrics", timeout=5).status_code == 404  # not on HTTP port

    def fetch() -> requests.Response:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)

    before = metrics.read(CHECK, {"iris": fetch})
    golden = json.loads((REPO / "fixtures" / "golden" / "iris.json").read_text())
    for case in golden["cases"]:
        r = requests.post(c.url + "/v2/models/iris/infer", json=case["request"], timeout=10)
        assert r.status_code == 200
    after = metrics.read(CHECK, {"iris": fetch})
    assert metrics.judge(CHECK, before, after, expected=len(golden["cases"])) == []
    assert after.total - before.total == len(golden["cases"])
    # A counter MLServer does not have is named with what it does expose.
    missing = MetricsCheck(path="/metrics", counter="mlserver_predictions")
    (problem,) = metrics.judge(missing, before, metrics.read(missing, {"iris": fetch}), 1)
    assert "model_infer_request_success" in problem
