"""The penguin example's images under docker (examples/penguin, docs/example-penguin.md): each
tag does what its row of the table says. Builds nothing: `make -C examples/penguin images` does.

Checked with urllib and prometheus_client's parser, not with the gate's code: these tests check
the example, and must not pass just because the gate shares a bug with it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from iris_harness import (
    DOCKER_DEADLINE_S,
    HarnessError,
    Reply,
    docker,
    docker_problem,
    free_port,
    http_status,
    request,
)
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
GOLDEN = json.loads((REPO / "fixtures" / "penguin" / "golden" / "penguin.json").read_text())
IMAGE = "rolloutgate/penguin"
# Generous for a loaded 2-core machine: the server itself is up in a fraction of a second.
START_DEADLINE_S = 30.0

pytestmark = pytest.mark.docker


def _missing(message: str) -> None:
    if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
        pytest.fail(message)
    pytest.skip(message)


class Penguin:
    def __init__(self, cid: str, tag: str, port: int) -> None:
        self.cid, self.tag, self.port = cid, tag, port
        self.url = f"http://127.0.0.1:{port}"

    def running(self) -> bool:
        return docker("inspect", "-f", "{{.State.Running}}", self.cid) == "true"

    def logs(self) -> str:
        done = subprocess.run(
            ["docker", "logs", self.cid], capture_output=True, text=True, timeout=DOCKER_DEADLINE_S
        )
        return done.stdout + done.stderr

    def wait_status(self, path: str, want: int) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        last = None
        while time.monotonic() < deadline:
            last = http_status(self.url + path)
            if last == want:
                return
            if not self.running():
                raise HarnessError(f"{IMAGE}:{self.tag} exited:\n{self.logs()}")
            time.sleep(0.1)
        raise HarnessError(f"{IMAGE}:{self.tag}: {path} answered {last}, wanted {want}")

    def score(self, body: dict[str, Any], timeout: float = 10.0) -> Reply:
        return request(self.url + "/api/score", body, timeout=timeout)


@pytest.fixture
def penguin() -> Iterator[Callable[[str], Penguin]]:
    """Function: starts tags as the manifests run them (read-only, no capabilities, the image's
    non-root user) on free ports; removes them."""
    problem = docker_problem()
    if problem:
        _missing(f"needs docker: {problem}")
    started: list[Penguin] = []

    def start(tag: str) -> Penguin:
        inspect = ["docker", "image", "inspect", f"{IMAGE}:{tag}"]
        if subprocess.run(inspect, capture_output=True, timeout=DOCKER_DEADLINE_S).returncode:
            _missing(f"image {IMAGE}:{tag} not built; make -C examples/penguin images")
        port = free_port()
        cid = docker(
            "run", "-d", "--network=host", "--read-only", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--label", "rolloutgate.test=examples",
            "-e", f"PENGUIN_HTTP_PORT={port}", f"{IMAGE}:{tag}",
        )  # fmt: skip
        started.append(Penguin(cid, tag, port))
        return started[-1]

    yield start
    for p in started:
        subprocess.run(["docker", "rm", "-f", p.cid], capture_output=True, timeout=60)


def golden_failures(p: Penguin) -> list[str]:
    """One line per golden case the server answers otherwise (statuses and species only)."""
    failures = []
    for case in GOLDEN["cases"]:
        reply = p.score(case["request"]["body"])
        status = case["expect"].get("status", 200)
        if reply.status != status:
            failures.append(f"{case['name']}: HTTP {reply.status}, expected {status}")
            continue
        for value in case["expect"].get("values", []):
            got = reply.body["species"]
            want = value["data"] if value["path"] == "species" else [value["data"]]
            if value["path"] in ("species", "species[0]") and got[: len(want)] != want:
                failures.append(f"{case['name']}: {got} != {want}")
    return failures


@pytest.mark.parametrize("tag", ["v1", "v2"])
def test_good_tags_serve_the_golden_answers(penguin: Callable[[str], Penguin], tag: str) -> None:
    p = penguin(tag)
    p.wait_status("/readyz", 200)
    assert request(p.url + "/readyz").body == {"ready": True, "model_version": tag}
    assert http_status(p.url + "/healthz") == 200
    assert golden_failures(p) == []
    scores = p.score(GOLDEN["cases"][0]["request"]["body"]).body["scores"][0]
    assert abs(sum(scores) - 1.0) < 1e-9
    assert scores[0] > 0.95  # the Adelie row


def test_v2_scores_differ_from_v1_with_the_same_species(
    penguin: Callable[[str], Penguin],
) -> None:
    body = GOLDEN["cases"][3]["request"]["body"]  # batch-of-three
    answers = {}
    for tag in ("v1", "v2"):
        p = penguin(tag)
        p.wait_status("/readyz", 200)
        answers[tag] = p.score(body).body
    assert answers["v1"]["species"] == answers["v2"]["species"]
    assert answers["v1"]["scores"] != answers["v2"]["scores"]


def test_metrics_count_answered_scores(penguin: Callable[[str], Penguin]) -> None:
    p = penguin("v1")
    p.wait_status("/readyz", 200)
    for _ in range(3):
        assert p.score(GOLDEN["cases"][0]["request"]["body"]).status == 200
    assert p.score({"penguins": [{"bill_length_mm": 1}]}).status == 400  # counted as an error
    text = subprocess.run(
        ["curl", "-s", p.url + "/metrics"], capture_output=True, text=True, timeout=30
    ).stdout
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["penguin_score_requests"].type == "counter"
    samples = {s.labels["outcome"]: s.value for s in families["penguin_score_requests"].samples}
    assert samples == {"ok": 3.0, "error": 1.0}


def test_crash_exits_1_naming_the_model_file(penguin: Callable[[str], Penguin]) -> None:
    p = penguin("crash")
    deadline = time.monotonic() + START_DEADLINE_S
    while p.running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert docker("inspect", "-f", "{{.State.ExitCode}}", p.cid) == "1"
    assert "cannot load the model from /opt/penguin/model/model.json" in p.logs()


def test_unready_is_live_and_never_ready(penguin: Callable[[str], Penguin]) -> None:
    p = penguin("unready")
    p.wait_status("/healthz", 200)
    for _ in range(5):
        reply = request(p.url + "/readyz")
        assert reply.status == 503
        time.sleep(0.2)
    assert reply.body == {
        "ready": False,
        "reason": "model takes 4 features, the self-check expects 5",
    }
    assert p.score(GOLDEN["cases"][0]["request"]["body"]).status == 503


def test_wrong_is_ready_and_fails_the_golden_cases(penguin: Callable[[str], Penguin]) -> None:
    p = penguin("wrong")
    p.wait_status("/readyz", 200)
    failures = golden_failures(p)
    assert len(failures) == 5, failures  # every species case; the refused one still refused


def test_slow_is_correct_and_slower_than_the_latency_budget(
    penguin: Callable[[str], Penguin],
) -> None:
    p = penguin("slow")
    p.wait_status("/readyz", 200)
    started = time.monotonic()
    assert golden_failures(p) == []
    # The delay is a floor the server sleeps, so this bound holds however loaded the machine.
    per_request_ms = (time.monotonic() - started) * 1000 / len(GOLDEN["cases"])
    assert per_request_ms > GOLDEN["latency"]["p50_ms"]


def test_hang_is_ready_and_never_answers_a_score(penguin: Callable[[str], Penguin]) -> None:
    p = penguin("hang")
    p.wait_status("/readyz", 200)
    body = json.dumps(GOLDEN["cases"][0]["request"]["body"]).encode()
    with socket.create_connection(("127.0.0.1", p.port), timeout=5) as conn:
        conn.sendall(
            b"POST /api/score HTTP/1.1\r\nHost: penguin\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        conn.settimeout(3)
        with pytest.raises(TimeoutError):
            conn.recv(1)  # the connection is accepted and the request read: no answer comes
    assert http_status(p.url + "/healthz") == 200  # a hung request does not block the others


def test_image_user_is_numeric_and_not_root(penguin: Callable[[str], Penguin]) -> None:
    penguin("v1")  # skips when not built
    assert docker("image", "inspect", "-f", "{{.Config.User}}", f"{IMAGE}:v1") == "10001:10001"


def test_the_standard_library_is_compiled_in_the_image(penguin: Callable[[str], Penguin]) -> None:
    """The base image ships Python's standard library compiled (examples/iris/scripts/
    base-image.sh): without the .pyc files every Python start in every pod compiles what it
    imports again (~1 CPU-s per MLServer start). Checked on what a server imports."""
    penguin("v1")  # skips when not built
    script = (
        "import asyncio, email.parser, http.server, importlib.util, json, logging, os, sys\n"
        "for name, mod in sorted(sys.modules.items()):\n"
        "    path = getattr(mod, '__file__', None) or ''\n"
        "    if path.startswith('/usr/lib/python3') and path.endswith('.py'):\n"
        "        print(name, os.path.exists(importlib.util.cache_from_source(path)))\n"
    )
    out = docker(
        "run", "--rm", "--network=none", "--read-only", "--label", "rolloutgate.test=examples",
        "--entrypoint", "python3", f"{IMAGE}:v1", "-c", script,
    )  # fmt: skip
    modules = dict(line.split() for line in out.splitlines())
    assert len(modules) > 50, out  # the imports above pull in that many modules
    assert [name for name, compiled in modules.items() if compiled != "True"] == []
