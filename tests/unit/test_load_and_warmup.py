"""Each new pod's start-to-ready time (the model's load time), and the warm-up requests sent
before the latency budget, as the report shows them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rolloutgate.checks import loadtime, warmup
from rolloutgate.checks.httpclient import HttpClient, Request
from rolloutgate.checks.latency import Latency
from rolloutgate.checks.loadtime import PodStart
from rolloutgate.checks.podhistory import Baseline
from rolloutgate.release.report import GateRun

from .k8s_objects import gate_config

Obj = dict[str, Any]


def pod(name: str, uid: str, *, created: str, started: str | None, ready: str | None) -> Obj:
    status: Obj = {"conditions": [], "containerStatuses": []}
    if ready is not None:
        status["conditions"].append(
            {"type": "Ready", "status": "True", "lastTransitionTime": ready}
        )
    if started is not None:
        status["containerStatuses"].append(
            {"name": "model", "state": {"running": {"startedAt": started}}}
        )
    return {
        "metadata": {"name": name, "uid": uid, "creationTimestamp": created},
        "status": status,
    }


def test_load_time_is_container_start_to_ready() -> None:
    p = pod(
        "iris-a",
        "u1",
        created="2026-12-01T10:00:00Z",
        started="2026-12-01T10:00:03Z",
        ready="2026-12-01T10:00:15Z",
    )
    assert loadtime.pod_start(p) == PodStart("iris-a", 15.0, 12.0)


def test_a_pod_not_ready_has_no_figures() -> None:
    p = pod("iris-a", "u1", created="2026-12-01T10:00:00Z", started=None, ready=None)
    assert loadtime.pod_start(p) == PodStart("iris-a", None, None)


def test_only_pods_created_after_the_apply_are_new() -> None:
    old = pod("iris-old", "u-old", created="2026-11-01T10:00:00Z", started=None, ready=None)
    new = pod(
        "iris-new",
        "u-new",
        created="2026-12-01T10:00:00Z",
        started="2026-12-01T10:00:01Z",
        ready="2026-12-01T10:00:05Z",
    )
    baseline = Baseline.of([old], datetime(2026, 12, 1, 9, 59, tzinfo=UTC))
    assert [s.pod for s in loadtime.new_pod_starts([new, old], baseline)] == ["iris-new"]


def test_summary_gives_range_and_median() -> None:
    starts = [PodStart("a", 10.0, 4.0), PodStart("b", 12.0, 6.0), PodStart("c", 9.0, 5.0)]
    assert loadtime.summary(starts) == (
        "new pods: 3, container start to Ready (model load) 4-6 s (median 5 s), "
        "created to Ready 9-12 s (median 10 s)"
    )
    assert loadtime.summary([PodStart("a", 3.0, None)]) == (
        "new pods: 1, container start to Ready (model load) not known, created to Ready 3 s"
    )
    assert loadtime.summary([]) is None


class _Slow(BaseHTTPRequestHandler):
    """Answers after a delay the first time (lazy model load), at once afterwards; 500 for
    /broken."""

    seen = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.lock:
            type(self).seen += 1
            first = type(self).seen == 1
        if first:
            threading.Event().wait(0.3)
        code = 500 if self.path == "/broken" else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def slow_server() -> Iterator[str]:
    _Slow.seen = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=5)


def test_warm_up_sends_n_requests_per_pod_and_keeps_their_latencies(slow_server: str) -> None:
    clients = {
        "pod-a": HttpClient(slow_server, model="", timeout=5, health={}),
        "pod-b": HttpClient(slow_server, model="", timeout=5, health={}),
    }
    found = warmup.warm_up(clients, Request("POST", "/predict", body={"x": 1}), 3)
    assert _Slow.seen == 6
    assert [len(w.samples_ms) for w in found.values()] == [3, 3]
    # The pods are warmed side by side: whichever asked first met the lazy load.
    slow = max(found, key=lambda pod: found[pod].samples_ms[0])
    first = found[slow].samples_ms
    assert first[0] >= 300 > max(first[1:]), first
    line = warmup.summary(found, 3)
    assert line is not None
    assert line.startswith("warm-up: 3 request(s) per pod, not timed by the latency budget: ")
    assert f"(pod {slow})" in line


def test_warm_up_failures_are_counted_not_raised(slow_server: str) -> None:
    clients = {"pod-a": HttpClient(slow_server, model="", timeout=5, health={})}
    found = warmup.warm_up(clients, Request("POST", "/broken", body={}), 2)
    assert found["pod-a"].samples_ms == ()
    assert len(found["pod-a"].errors) == 2
    assert warmup.summary(found, 2) is None


def test_report_carries_load_times_and_warm_up() -> None:
    run = GateRun(gate_config(warmup_requests=2))
    run.pod_starts = [PodStart("iris-a", 15.0, 12.0)]
    run.warmup = {"iris-a": Latency((812.0, 12.5), ())}
    data = run.to_json()
    assert data["new_pods"] == [
        {"pod": "iris-a", "created_to_ready_s": 15.0, "start_to_ready_s": 12.0}
    ]
    assert data["warmup"] == {
        "requests": 2,
        "pods": {"iris-a": {"samples_ms": (812.0, 12.5), "errors": ()}},
    }
    lines = run.summary_lines()
    assert "new pods: 1, container start to Ready (model load) 12 s, created to Ready 15 s" in lines
    assert any(line.startswith("warm-up: 2 request(s) per pod") for line in lines)


def test_warm_up_counts_the_answers_the_checks_already_had(slow_server: str) -> None:
    client = HttpClient(slow_server, model="", timeout=5, health={})
    request = Request("POST", "/predict", body={"x": 1})
    client.send(request)  # the golden case's own request: the pod's first answer (slow)
    client.send(Request("POST", "/predict", body={"x": 2}))  # another case: not the same
    client.send(Request("POST", "/broken", body={"x": 1}))  # a failure is no warm answer
    found = warmup.warm_up({"pod-a": client}, request, 3)
    assert _Slow.seen == 5  # 3 before, 2 more: the first answer counted
    samples = found["pod-a"].samples_ms
    assert len(samples) == 3
    assert samples[0] >= 300 > max(samples[1:]), samples  # the first is the first user's wait
