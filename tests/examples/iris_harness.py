"""Runs rolloutgate/iris images under docker and talks V2 to them, for tests/examples.

Kept apart from the gate's own code on purpose: these tests check the example images, and
must not pass just because the gate shares a bug with them.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "fixtures" / "golden" / "iris.json"
IMAGE = "rolloutgate/iris"
BUILD_HINT = "build them with: make -C examples/iris images"
# Generous for 2 cores: a v1 container is ready in about 4 s when the machine is idle.
START_DEADLINE_S = 90.0
DOCKER_DEADLINE_S = 60.0


class HarnessError(AssertionError):
    """Something the test expected of a container did not happen in time."""


def docker_problem() -> str | None:
    """Why docker cannot be used here, or None when it can."""
    if shutil.which("docker") is None:
        return "docker CLI not found"
    try:
        done = subprocess.run(
            ["docker", "info"], capture_output=True, text=True, timeout=DOCKER_DEADLINE_S
        )
    except subprocess.TimeoutExpired:
        return f"`docker info` did not answer in {DOCKER_DEADLINE_S:.0f} s"
    if done.returncode != 0:
        return "docker daemon not reachable (start it with devcluster/docker-up.sh)"
    return None


def image_exists(tag: str) -> bool:
    done = subprocess.run(
        ["docker", "image", "inspect", f"{IMAGE}:{tag}"],
        capture_output=True,
        timeout=DOCKER_DEADLINE_S,
    )
    return done.returncode == 0


def free_port() -> int:
    # The kernel picks a free port; there is a short race until the server binds it, which
    # is fine for tests (a collision shows as a failed start, not a wrong result).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def docker(*args: str, timeout: float = DOCKER_DEADLINE_S) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise HarnessError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class Container:
    """One running model container on the host network."""

    cid: str
    tag: str
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        done = subprocess.run(
            ["docker", "logs", "--tail", "40", self.cid],
            capture_output=True,
            text=True,
            timeout=DOCKER_DEADLINE_S,
        )
        return done.stdout + done.stderr

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(docker("inspect", "-f", "{{json .State}}", self.cid))
        return state

    def remove(self) -> None:
        subprocess.run(["docker", "rm", "-f", self.cid], capture_output=True, timeout=60)


def run_container(tag: str) -> Container:
    """Start IMAGE:tag detached, on free ports, as the manifests run it.

    Read-only root, /tmp a tmpfs, no capabilities, no privilege escalation: what the
    Deployment's securityContext asks of the image, so a container that works here works
    in the cluster too.
    """
    http, grpc = free_port(), free_port()
    cid = docker(
        "run", "-d", "--network=host", "--read-only", "--tmpfs", "/tmp:rw,mode=1777",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--label", "rolloutgate.test=examples",
        "-e", f"MLSERVER_HTTP_PORT={http}", "-e", f"MLSERVER_GRPC_PORT={grpc}",
        f"{IMAGE}:{tag}",
    )  # fmt: skip
    return Container(cid=cid, tag=tag, port=http)


@dataclass
class Reply:
    status: int
    body: Any


def request(url: str, payload: dict[str, Any] | None = None, timeout: float = 10.0) -> Reply:
    """GET (or POST a JSON payload) and decode the JSON answer; HTTP errors are replies too."""
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    return Reply(status=status, body=json.loads(raw) if raw.strip() else None)


def http_status(url: str) -> int | None:
    """Status of a GET, or None when nothing answers (yet)."""
    try:
        return request(url, timeout=2.0).status
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def wait_for_status(c: Container, path: str, want: int, deadline_s: float) -> float:
    """Poll GET path until it answers `want`; returns the seconds it took."""
    start = time.monotonic()
    last: int | None = None
    while time.monotonic() - start < deadline_s:
        last = http_status(c.url + path)
        if last == want:
            return time.monotonic() - start
        if not c.state().get("Running", False):
            raise HarnessError(
                f"{IMAGE}:{c.tag} exited while waiting for {path} == {want}:\n{c.logs()}"
            )
        time.sleep(0.2)
    raise HarnessError(
        f"{IMAGE}:{c.tag}: {path} still answered {last} (wanted {want}) after "
        f"{deadline_s:.0f} s; last log lines:\n{c.logs()}"
    )


def load_golden() -> dict[str, Any]:
    golden: dict[str, Any] = json.loads(GOLDEN.read_text())
    return golden


def _close(got: float, want: float, abs_tol: float | None, rel_tol: float | None) -> bool:
    # The documented golden semantics: exact without tolerances, else math.isclose.
    if abs_tol is None and rel_tol is None:
        return got == want
    return math.isclose(got, want, abs_tol=abs_tol or 0.0, rel_tol=rel_tol or 0.0)


def golden_failures(url: str, golden: dict[str, Any]) -> list[str]:
    """Run every golden case against url; one line per mismatch (empty when all pass)."""
    failures: list[str] = []
    infer = f"{url}/v2/models/{golden['model']}/infer"
    for case in golden["cases"]:
        reply = request(infer, case["request"])
        if reply.status != 200:
            failures.append(f"{case['name']}: HTTP {reply.status} {reply.body}")
            continue
        outputs = {o["name"]: o for o in reply.body["outputs"]}
        for exp in case["expect"]:
            out = outputs.get(exp["name"])
            if out is None:
                failures.append(f"{case['name']}: no output {exp['name']!r} in {list(outputs)}")
                continue
            got, want = out["data"], exp["data"]
            tol = (exp.get("abs_tol"), exp.get("rel_tol"))
            if len(got) != len(want) or not all(
                _close(g, w, *tol) for g, w in zip(got, want, strict=True)
            ):
                failures.append(f"{case['name']}: {exp['name']} = {got}, expected {want} {tol}")
    return failures


def latency_ms(url: str, golden: dict[str, Any], requests: int) -> tuple[float, float]:
    """p50 and p95 in ms of `requests` sequential calls of the first golden case."""
    infer = f"{url}/v2/models/{golden['model']}/infer"
    body = golden["cases"][0]["request"]
    times: list[float] = []
    for _ in range(requests):
        start = time.perf_counter()
        reply = request(infer, body, timeout=30.0)
        times.append((time.perf_counter() - start) * 1000)
        if reply.status != 200:
            raise HarnessError(f"latency probe got HTTP {reply.status}: {reply.body}")
    if len(times) == 1:
        return times[0], times[0]
    cuts = statistics.quantiles(times, n=20, method="inclusive")
    return statistics.median(times), cuts[18]
