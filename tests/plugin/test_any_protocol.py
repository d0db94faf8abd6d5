"""The HTTP checks against loopback servers of each preset: v2, v1 (TF-Serving), plain.

The suite's own tests (tests/smoke) run through pytester against a plain ``POST /predict``
server, with ``rolloutgate_endpoint`` pointed at it: no cluster, the checks only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from model_server import serve

from rolloutgate.checks import cases, httpclient
from rolloutgate.checks.httpclient import HttpClient

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, Any]]]:
    """Function. (base URL, state) of a server on 127.0.0.1 speaking v2, v1 and plain."""
    with serve() as running:
        yield running


def golden_of(protocol: str) -> dict[str, Any]:
    if protocol == "v2":
        return {
            "model": "wine",
            "cases": [
                {
                    "name": "two",
                    "request": {
                        "inputs": [
                            {"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [2.0]}
                        ]
                    },
                    "expect": [{"name": "predict", "data": [2]}],
                }
            ],
        }
    return {
        "protocol": protocol,
        "model": "wine",
        "cases": [
            {
                "name": "batch",
                "request": {
                    "body": {"instances": [[0.0], [1.0], [2.0]]},
                    "headers": {"X-Gate": "rolloutgate"},
                },
                "expect": {"status": 200, "values": [{"path": "predictions", "data": [0, 1, 2]}]},
            },
            {
                "name": "refused",
                "request": {"body": {"rows": []}},
                "expect": {"status": 400},
            },
        ],
    }


def client(tmp_path: Path, url: str, protocol: str) -> tuple[HttpClient, cases.Golden]:
    path = tmp_path / f"{protocol}.json"
    path.write_text(json.dumps(golden_of(protocol)))
    golden = cases.load(path)
    health = cases.protocols.health_paths(golden.protocol, golden.health, {})
    return HttpClient(url, model=golden.model, timeout=2, health=health), golden


@pytest.mark.parametrize("protocol", ["v2", "v1", "plain"])
def test_each_preset_verifies_a_good_server_and_names_wrong_answers(
    server: tuple[str, dict[str, Any]], tmp_path: Path, protocol: str
) -> None:
    url, state = server
    http, golden = client(tmp_path, url, protocol)
    assert cases.verify(http, golden) == []
    state["wrong"] = True
    problems = cases.verify(http, golden)
    assert len(problems) == 1
    first = golden.cases[0].name
    assert problems[0].startswith(f"case {first!r}: ")
    assert "expected 0 got 1" in problems[0] or "expected 2 got 0" in problems[0]
    state["ready"] = False
    problems = cases.verify(http, golden)
    assert problems
    assert all(p.startswith("health ") for p in problems)


def test_case_headers_are_sent(server: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, state = server
    http, golden = client(tmp_path, url, "plain")
    cases.verify(http, golden)
    assert state["headers"][0]["X-Gate"] == "rolloutgate"


def test_unexpected_status_is_named(server: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    url, _ = server
    http, golden = client(tmp_path, url, "plain")
    refused = golden.cases[1]
    ok = cases.Case("ok", refused.request, status=200, expect=refused.expect)
    assert cases.check(ok, http.send(ok.request)) == [
        f"status 400, expected 200: POST {url}/predict -> 400: "
        '{"error": "instances must be a list of rows"}'
    ]


INNER_CONFTEST = """
import pytest

from rolloutgate.checks.httpclient import client_for


@pytest.fixture(scope="session")
def rolloutgate_endpoint():
    return {url!r}


@pytest.fixture(scope="session")
def rolloutgate_replicas(rolloutgate_golden, rolloutgate_config):
    # Two "replicas": the same loopback server twice.
    with client_for({url!r}, rolloutgate_golden, rolloutgate_config) as a:
        with client_for({url!r}, rolloutgate_golden, rolloutgate_config) as b:
            yield {{"pod-a": a, "pod-b": b}}
"""


@pytest.fixture
def suite(project: pytest.Pytester, server: tuple[str, dict[str, Any]]) -> pytest.Pytester:
    """Function. The inner project running the repository's tests/smoke against ``server``."""
    url, _ = server
    project.makeconftest(INNER_CONFTEST.format(url=url))
    (project.path / "golden.json").write_text(
        json.dumps(
            {**golden_of("plain"), "latency": {"requests": 5, "p50_ms": 500, "p95_ms": 1000}}
        )
    )
    for name in ("test_health.py", "test_predictions.py"):
        (project.path / name).write_text((REPO / "tests" / "smoke" / name).read_text())
    return project


def test_suite_passes_a_plain_server(suite: pytest.Pytester) -> None:
    result = suite.runpytest("--cluster=staging", "-rs")
    result.assert_outcomes(passed=5, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "*no model_ready check for this server*",
            "*protocol plain has no model metadata*",
        ]
    )


def test_suite_fails_wrong_predictions_of_a_plain_server(
    suite: pytest.Pytester, server: tuple[str, dict[str, Any]]
) -> None:
    server[1]["wrong"] = True
    result = suite.runpytest("--cluster=staging")
    result.assert_outcomes(passed=4, failed=1, skipped=3)
    result.stdout.re_match_lines(
        [
            r".*case 'batch': 2 of 2 replicas answered wrong: pod pod-a: predictions \(exact\): "
            r"\[0\] expected 0 got 1, \[1\] expected 1 got 2"
        ]
    )


def test_idle_keep_alive_connections_are_not_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Through the port-forward relay a server's close of an idle connection does not reach the
    # client; the client must not send on a connection idle longer than IDLE_REUSE_S.
    import socketserver
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    connections: list[int] = []

    class KeepAlive(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            connections.append(1)

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    assert isinstance(httpd, socketserver.BaseServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setattr(httpclient, "IDLE_REUSE_S", 0.2)
    try:
        with HttpClient(
            f"http://127.0.0.1:{httpd.server_address[1]}", model="", timeout=2, health={}
        ) as http:
            http.get("/a")
            http.get("/b")
            assert len(connections) == 1  # back to back: reused
            time.sleep(0.3)
            http.get("/c")
            assert len(connections) == 2  # after idling: a fresh connection
    finally:
        httpd.shutdown()
        httpd.server_close()
