"""Golden file parsing, output comparison, latency percentiles, the V2 client (loopback)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rolloutgate.checks.client import (
    EndpointUnreachable,
    Expected,
    V2Client,
    compare,
    load_golden,
    measure_latency,
    percentile,
    verify,
    wait_answering,
)
from rolloutgate.config import HealthPaths
from rolloutgate.errors import ConfigError

CASE = {
    "name": "setosa",
    "request": {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
    "expect": [{"name": "predict", "data": [0]}],
}


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "golden.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_golden_file_parses(tmp_path: Path) -> None:
    golden = load_golden(
        write(
            tmp_path,
            {
                "model": "iris",
                "latency": {"requests": 5, "p50_ms": 100, "p95_ms": 200.5},
                "cases": [
                    CASE,
                    {
                        **CASE,
                        "name": "nested",
                        "expect": [{"name": "p", "data": [[1, 2]], "rel_tol": 0.1}],
                    },
                ],
            },
        )
    )
    assert golden.model == "iris"
    assert [c.name for c in golden.cases] == ["setosa", "nested"]
    assert golden.cases[1].expect[0] == Expected("p", (1, 2), None, 0.1)
    assert golden.latency is not None
    assert (golden.latency.requests, golden.latency.p95_ms) == (5, 200.5)


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ("{not json", "is not valid JSON (line 1, column 2"),
        ([], "the top level must be an object"),
        ({"cases": [CASE]}, '"model" must be'),
        ({"model": "iris", "cases": []}, '"cases" must be a non-empty list'),
        ({"model": "iris", "cases": [{**CASE, "name": ""}]}, "cases[0].name must be"),
        ({"model": "iris", "cases": [CASE, CASE]}, "case 'setosa'.name is used twice"),
        ({"model": "iris", "cases": [{**CASE, "request": {}}]}, "case 'setosa'.request must be"),
        ({"model": "iris", "cases": [{**CASE, "expect": []}]}, "case 'setosa'.expect must be"),
        (
            {"model": "iris", "cases": [{**CASE, "expect": [{"name": "p", "data": 0}]}]},
            "case 'setosa'.expect[0].data must be a list",
        ),
        (
            {
                "model": "iris",
                "cases": [{**CASE, "expect": [{"name": "p", "data": [0], "abs_tol": -1}]}],
            },
            "case 'setosa'.expect[0].abs_tol must be a number >= 0",
        ),
        (
            {
                "model": "iris",
                "cases": [CASE],
                "latency": {"requests": 0, "p50_ms": 1, "p95_ms": 1},
            },
            "latency.requests must be a whole number >= 1",
        ),
        (
            {"model": "iris", "cases": [CASE], "latency": {"requests": 3, "p50_ms": 1}},
            "latency.p95_ms must be a number of milliseconds > 0",
        ),
    ],
)
def test_bad_golden_file_names_file_field_and_format(
    tmp_path: Path, content: object, names: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as info:
        load_golden(path)
    message = str(info.value)
    assert str(path) in message
    assert names in message
    assert '"cases": [{"name": NAME, "request": {V2 infer body}' in message


def test_missing_golden_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"golden file .*missing.json cannot be read"):
        load_golden(tmp_path / "missing.json")


def response(*outputs: tuple[str, list[Any]]) -> dict[str, Any]:
    return {
        "outputs": [
            {"name": n, "datatype": "FP64", "shape": [len(d)], "data": d} for n, d in outputs
        ]
    }


def test_exact_comparison_without_tolerances() -> None:
    exp = [Expected("predict", (0, 1))]
    assert compare(exp, response(("predict", [0, 1]))) == []
    assert compare(exp, response(("predict", [0, 2]))) == [
        "output 'predict' (exact): [1] expected 1 got 2"
    ]
    assert compare(exp, response(("predict", [0.0, 1.0000001]))) != []


def test_comparison_within_tolerances() -> None:
    absolute = [Expected("p", (1.0, 0.0), abs_tol=0.05)]
    assert compare(absolute, response(("p", [0.96, 0.04]))) == []
    assert compare(absolute, response(("p", [0.94, 0.0]))) == [
        "output 'p' (abs_tol=0.05, rel_tol=0): [0] expected 1.0 got 0.94"
    ]
    relative = [Expected("p", (100.0,), rel_tol=0.01)]
    assert compare(relative, response(("p", [100.9]))) == []
    assert compare(relative, response(("p", [102.0]))) != []


def test_comparison_names_missing_outputs_and_shape_mismatches() -> None:
    assert compare([Expected("proba", (1,))], response(("predict", [0]))) == [
        "output 'proba' missing; outputs: ['predict']"
    ]
    assert compare([Expected("p", (1, 2))], response(("p", [1]))) == [
        "output 'p': expected 2 values [1, 2], got 1 values [1]"
    ]
    assert compare([Expected("p", (1,))], {"error": "boom"}) == [
        'response has no "outputs" list: {"error": "boom"}'
    ]
    # Booleans are not numbers here: True must not pass for 1.
    assert compare([Expected("p", (1,))], response(("p", [True]))) != []


@pytest.mark.parametrize(
    ("samples", "p", "expected"),
    [
        ([5.0], 50, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),  # rank ceil(0.5*4)=2
        ([4.0, 3.0, 2.0, 1.0, 5.0], 50, 3.0),  # unsorted input; rank 3
        (list(map(float, range(1, 21))), 95, 19.0),  # rank ceil(0.95*20)=19
        (list(map(float, range(1, 21))), 100, 20.0),
        (list(map(float, range(1, 101))), 95, 95.0),
    ],
)
def test_nearest_rank_percentile(samples: list[float], p: float, expected: float) -> None:
    assert percentile(samples, p) == expected


def test_percentile_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 0)


# A loopback V2 server: /v2/health/* and the iris model, with switches for failures.


class _Handler(BaseHTTPRequestHandler):
    state: ClassVar[dict[str, Any]] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path in ("/v2/health/live", "/healthz"):
            self._send(200, {})
        elif self.path == "/v2/health/ready":
            self._send(200 if self.state.get("ready", True) else 503, {})
        elif self.path == "/v2/models/iris/ready":
            self._send(200, {"name": "iris", "ready": True})
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v2/models/iris/infer":
            self._send(404, {"error": "no model"})
            return
        label = self.state.get("label", 0)
        self._send(
            200,
            {
                "model_name": "iris",
                "id": body.get("id", "1"),
                "outputs": [{"name": "predict", "data": [label]}],
            },
        )


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, Any]]]:
    """Function. (base URL, state dict) of a V2 server on 127.0.0.1."""
    state: ClassVar[dict[str, Any]] = {}
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    httpd.shutdown()
    httpd.server_close()


def golden(tmp_path: Path) -> Any:
    return load_golden(write(tmp_path, {"model": "iris", "cases": [CASE]}))


def test_client_and_verify_against_a_v2_server(
    server: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    url, state = server
    client = V2Client(url, "iris", timeout=2)
    assert client.live().status_code == 200
    assert client.model_ready().json() == {"name": "iris", "ready": True}
    assert verify(client, golden(tmp_path)) == []
    state["label"] = 2
    assert verify(client, golden(tmp_path)) == [
        "case 'setosa': output 'predict' (exact): [0] expected 0 got 2"
    ]
    state["ready"] = False
    problems = verify(client, golden(tmp_path))
    assert len(problems) == 1
    assert problems[0].startswith(f"health: GET {url}/v2/health/ready -> 503")


def test_health_paths_are_configurable(server: tuple[str, dict[str, Any]]) -> None:
    url, _ = server
    client = V2Client(url, "iris", timeout=2, health=HealthPaths(live="/healthz"))
    assert client.live().status_code == 200
    assert client.request("GET", "/v2/models/{model}/ready").url == f"{url}/v2/models/iris/ready"


def test_latency_is_measured_per_request(server: tuple[str, dict[str, Any]]) -> None:
    url, _ = server
    client = V2Client(url, "iris", timeout=2)
    latency = measure_latency(lambda: client.infer(CASE["request"]), 5)  # type: ignore[arg-type]
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
