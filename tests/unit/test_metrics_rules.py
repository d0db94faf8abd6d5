"""The metrics check's rules on real Prometheus text (made by prometheus_client itself)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, generate_latest

from rolloutgate.checks import metrics
from rolloutgate.config import MetricsCheck, resolve
from rolloutgate.errors import ConfigError

CHECK = MetricsCheck(
    path="/metrics", counter="wine_prediction_requests", labels=(("outcome", "ok"),)
)


def exposition(ok: int, error: int = 0) -> str:
    registry = CollectorRegistry()
    counter = Counter(
        "wine_prediction_requests", "requests", ["endpoint", "outcome"], registry=registry
    )
    Counter("other_requests", "requests", registry=registry).inc(100)
    if ok:
        counter.labels("/predict", "ok").inc(ok)
    if error:
        counter.labels("/predict", "error").inc(error)
    return generate_latest(registry).decode()


def test_counter_value_sums_matching_samples_only() -> None:
    text = exposition(ok=5, error=2)
    assert metrics.counter_value(text, "wine_prediction_requests", CHECK.labels) == 5
    assert metrics.counter_value(text, "wine_prediction_requests_total", ()) == 7
    assert metrics.counter_value(text, "missing_counter", ()) is None
    # A labelled counter not incremented yet: the family is there, its value 0.
    assert metrics.counter_value(exposition(ok=0), "wine_prediction_requests", ()) == 0


def response(text: str, status: int = 200) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = text.encode()
    return r


def test_growth_by_the_golden_requests_passes_over_pods() -> None:
    before = metrics.read(
        CHECK, {"a": lambda: response(exposition(1)), "b": lambda: response(exposition(0))}
    )
    after = metrics.read(
        CHECK, {"a": lambda: response(exposition(4)), "b": lambda: response(exposition(2))}
    )
    assert metrics.judge(CHECK, before, after, expected=5) == []
    assert metrics.judge(CHECK, before, after, expected=6) == [
        'counter wine_prediction_requests{outcome="ok"} grew by 5 while the gate sent 6 golden '
        "prediction request(s) answered 2xx; per pod: a 1.0 -> 4.0, b 0.0 -> 2.0"
    ]


def test_an_absent_counter_names_what_is_exposed() -> None:
    check = MetricsCheck(path="/metrics", counter="model_infer_request_success")
    reading = metrics.read(check, {"a": lambda: response(exposition(1))})
    (problem,) = metrics.judge(check, reading, reading, expected=1)
    assert problem.startswith("counter model_infer_request_success is not exposed at /metrics")
    assert "other_requests" in problem
    assert "wine_prediction_requests" in problem


def test_unreadable_metrics_are_a_named_error() -> None:
    with pytest.raises(metrics.MetricsUnavailable, match=r"pod a: GET /metrics -> 404"):
        metrics.read(CHECK, {"a": lambda: response("no", 404)})
    with pytest.raises(metrics.MetricsUnavailable, match="not Prometheus text format"):
        metrics.read(CHECK, {"a": lambda: response("{json: 1}\n")})


def test_metrics_settings(tmp_path: Path) -> None:
    def settings(tool: dict[str, object], env: dict[str, str] | None = None) -> object:
        return resolve(
            {},
            env=env or {},
            tool=tool,
            rootdir=tmp_path,
            invocation_dir=tmp_path,
            list_contexts=lambda _k: [],
        ).metrics

    assert settings({}) is None
    assert settings(
        {
            "metrics": {
                "path": "/metrics",
                "counter": "c",
                "port": "metrics",
                "labels": {"outcome": "ok"},
            }
        }
    ) == MetricsCheck("/metrics", "c", "metrics", (("outcome", "ok"),))
    assert settings(
        {"metrics": {"path": "/m", "counter": "c"}}, {"ROLLOUTGATE_METRICS_LABELS": "b=2,a=1"}
    ) == MetricsCheck("/m", "c", None, (("a", "1"), ("b", "2")))
    with pytest.raises(ConfigError, match=r"metrics\.path is set .* but metrics\.counter is not"):
        settings({"metrics": {"path": "/metrics"}})
    with pytest.raises(ConfigError, match="invalid metric name 'a-b'"):
        settings({"metrics": {"path": "/metrics", "counter": "a-b"}})


def test_pod_metrics_forwards_live_for_their_read_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Relays kept for every pod beside the replicas' own ran the gate past descriptor 1023,
    # where the client's port-forward select() fails: none outlives the read that opened it,
    # and only the first pod's proves the right to port-forward.
    import threading
    from collections.abc import Iterator
    from contextlib import contextmanager
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from typing import Any

    counted = [0]

    class Metrics(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = exposition(counted[0]).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    opened: list[tuple[str, bool]] = []
    live: set[str] = set()

    @contextmanager
    def pod_forward(
        api: object, namespace: str, pod: dict[str, Any], port: object, *, probe: bool
    ) -> Iterator[str]:
        name = pod["metadata"]["name"]
        opened.append((name, probe))
        live.add(name)
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            live.discard(name)

    monkeypatch.setattr(metrics.portforward, "pod_forward", pod_forward)
    pods = tuple({"metadata": {"name": name}} for name in ("a", "b", "c"))
    reader = metrics.PodMetrics(None, "ns", pods, CHECK, 8080, timeout=2)  # type: ignore[arg-type]
    try:
        before = reader.read()
        assert not live
        counted[0] = 3
        after = reader.read()
        assert not live
        assert metrics.judge(CHECK, before, after, expected=9) == []
        assert sorted(opened) == sorted([("a", True), ("b", False), ("c", False)] * 2)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_pod_metrics_read_through_the_clients_given_and_forward_only_to_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The replicas' clients keep a connection (a port-forward stream) each: the counter is read
    # over it; a pod without one gets a port-forward of its own.
    from collections.abc import Iterator
    from contextlib import contextmanager
    from typing import Any

    from rolloutgate.checks.client import EndpointUnreachable

    class Client:
        def __init__(self, ok: int) -> None:
            self.ok = ok
            self.paths: list[str] = []

        def get(self, path: str) -> requests.Response:
            self.paths.append(path)
            if self.ok < 0:
                raise EndpointUnreachable(f"GET {path} got no answer: reset")
            return response(exposition(self.ok))

    forwarded: list[str] = []

    @contextmanager
    def pod_forward(
        api: object, namespace: str, pod: dict[str, Any], port: object, *, probe: bool
    ) -> Iterator[str]:
        forwarded.append(pod["metadata"]["name"])
        yield "http://127.0.0.1:9"

    monkeypatch.setattr(metrics.portforward, "pod_forward", pod_forward)
    monkeypatch.setattr(metrics.requests, "get", lambda url, timeout: response(exposition(2)))
    pods = tuple({"metadata": {"name": name}} for name in ("a", "b"))
    a = Client(ok=1)
    reader = metrics.PodMetrics(None, "ns", pods, CHECK, 8080, 2, clients={"a": a})  # type: ignore[arg-type]
    reading = reader.read()
    assert reading.values == {"a": 1, "b": 2}
    assert (a.paths, forwarded) == (["/metrics"], ["b"])
    broken = metrics.PodMetrics(None, "ns", pods[:1], CHECK, 8080, 2, clients={"a": Client(-1)})  # type: ignore[arg-type]
    with pytest.raises(metrics.MetricsUnavailable, match="pod a: GET /metrics got no answer"):
        broken.read()


def test_same_port_resolves_names_on_every_pod() -> None:
    pod = {"spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8000}]}]}}
    other = {"spec": {"containers": [{"ports": [{"name": "http", "containerPort": 9000}]}]}}
    assert metrics.same_port([pod], "http", 8000)
    assert metrics.same_port([pod], "http", "http")
    assert not metrics.same_port([pod, other], "http", 8000)
    assert not metrics.same_port([pod], "metrics", 8000)  # not a port of the pod
