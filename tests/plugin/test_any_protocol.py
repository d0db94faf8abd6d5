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
from rolloutgate.checks.client import EndpointRefused
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


class _KeepAlive:
    """A raw HTTP/1.1 server on 127.0.0.1 that answers ``answers_per_connection`` requests on
    each connection and then closes it on the next request's arrival, without an answer: what
    a client sees through a port-forward when it reuses a connection whose server's idle close
    had not reached it yet. ``connections`` counts the connections it accepted, ``requests``
    the requests it read."""

    def __init__(self, answers_per_connection: int) -> None:
        import socket
        import threading

        self.answers = answers_per_connection
        self.connections = 0
        self.requests = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Any) -> None:
        with conn:
            reader = conn.makefile("rb")
            answered = 0
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = next(
                    (int(h.split(b":")[1]) for h in head.split(b"\r\n")
                     if h.lower().startswith(b"content-length:")), 0,
                )  # fmt: skip
                reader.read(length)
                self.requests += 1
                if answered >= self.answers:
                    return  # closed with the request unanswered
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                answered += 1

    def close(self) -> None:
        self.sock.close()


def test_keep_alive_connections_are_reused_after_idling() -> None:
    # A new connection through a port-forward is a websocket through the API server and the
    # kubelet: a replica's checks reuse one connection, however long between them.
    server = _KeepAlive(answers_per_connection=10)
    try:
        with HttpClient(server.url, model="", timeout=2, health={}) as http:
            assert http.get("/a").status_code == 200
            time.sleep(1.2)
            assert http.get("/b").status_code == 200
            assert http.send(httpclient.Request("POST", "/c", body={"x": 1})).status_code == 200
        assert server.connections == 1
    finally:
        server.close()


def test_a_request_on_a_stale_connection_is_sent_once_more_on_a_new_one() -> None:
    server = _KeepAlive(answers_per_connection=1)
    try:
        with HttpClient(server.url, model="", timeout=2, health={}) as http:
            assert http.get("/a").status_code == 200
            # The server closes the connection on this request's arrival, without an answer.
            response = http.send(httpclient.Request("POST", "/predict", body={"x": 1}))
            assert response.status_code == 200
        assert (server.connections, server.requests) == (2, 3)
    finally:
        server.close()


def test_a_connection_closed_without_an_answer_twice_is_the_verdict() -> None:
    server = _KeepAlive(answers_per_connection=0)  # closes every connection unanswered
    try:
        with HttpClient(server.url, model="", timeout=2, health={}) as http:
            # Nothing pooled: the first request is not sent again.
            with pytest.raises(EndpointRefused, match=r"GET .*/a got no answer"):
                http.get("/a")
            assert (server.connections, server.requests) == (1, 1)
    finally:
        server.close()
    server = _KeepAlive(answers_per_connection=1)
    try:
        with HttpClient(server.url, model="", timeout=2, health={}) as http:
            http.get("/a")
            server.answers = 0  # from now on no connection answers
            with pytest.raises(EndpointRefused, match=r"GET .*/b got no answer"):
                http.get("/b")
        # The stale connection and one new one: sent once more, not again and again.
        assert (server.connections, server.requests) == (2, 3)
    finally:
        server.close()
