"""The wine example's images under docker (examples/wine, docs/example-wine.md): each tag does
what its row of the table says. Builds nothing: `make -C examples/wine images` does.

Checked with urllib and prometheus_client's parser, not with the gate's code: these tests
check the example, and must not pass just because the gate shares a bug with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from iris_harness import (
    DOCKER_DEADLINE_S,
    HarnessError,
    docker,
    docker_problem,
    free_port,
    http_status,
    request,
)
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
GOLDEN = json.loads((REPO / "fixtures" / "wine" / "golden" / "wine.json").read_text())
IMAGE = "rolloutgate/wine"
START_DEADLINE_S = 60.0

pytestmark = pytest.mark.docker


def _missing(message: str) -> None:
    if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
        pytest.fail(message)
    pytest.skip(message)


class Wine:
    def __init__(self, cid: str, tag: str, port: int) -> None:
        self.cid, self.tag, self.url = cid, tag, f"http://127.0.0.1:{port}"

    def running(self) -> bool:
        return docker("inspect", "-f", "{{.State.Running}}", self.cid) == "true"

    def logs(self) -> str:
        done = subprocess.run(
            ["docker", "logs", self.cid], capture_output=True, text=True, timeout=DOCKER_DEADLINE_S
        )
        return done.stdout + done.stderr

    def wait_status(self, path: str, want: int) -> float:
        start = time.monotonic()
        last = None
        while time.monotonic() - start < START_DEADLINE_S:
            last = http_status(self.url + path)
            if last == want:
                return time.monotonic() - start
            if not self.running():
                raise HarnessError(f"{IMAGE}:{self.tag} exited:\n{self.logs()}")
            time.sleep(0.2)
        raise HarnessError(f"{IMAGE}:{self.tag}: {path} answered {last}, wanted {want}")

    def predict(self, body: dict[str, Any]) -> Any:
        return request(self.url + "/predict", body)


@pytest.fixture
def wine(tmp_path: Path) -> Iterator[Callable[[str], Wine]]:
    """Function: starts tags read-only, without capabilities, on free ports; removes them."""
    problem = docker_problem()
    if problem:
        _missing(f"needs docker: {problem}")
    started: list[Wine] = []

    def start(tag: str) -> Wine:
        if (
            subprocess.run(
                ["docker", "image", "inspect", f"{IMAGE}:{tag}"],
                capture_output=True,
                timeout=DOCKER_DEADLINE_S,
            ).returncode
            != 0
        ):
            _missing(f"image {IMAGE}:{tag} not built; make -C examples/wine images")
        port = free_port()
        cid = docker(
            "run", "-d", "--network=host", "--read-only", "--tmpfs", "/tmp:rw,mode=1777",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--label", "rolloutgate.test=examples", "-e", f"WINE_HTTP_PORT={port}",
            f"{IMAGE}:{tag}",
        )  # fmt: skip
        started.append(Wine(cid, tag, port))
        return started[-1]

    yield start
    for w in started:
        subprocess.run(["docker", "rm", "-f", w.cid], capture_output=True, timeout=60)


def golden_failures(w: Wine) -> list[str]:
    failures = []
    for case in GOLDEN["cases"]:
        reply = w.predict(case["request"]["body"])
        status = case["expect"].get("status", 200)
        if reply.status != status:
            failures.append(f"{case['name']}: HTTP {reply.status}, expected {status}")
            continue
        for value in case["expect"].get("values", []):
            if value["path"] == "predictions" and reply.body["predictions"] != value["data"]:
                failures.append(f"{case['name']}: {reply.body['predictions']} != {value['data']}")
    return failures


@pytest.mark.parametrize("tag", ["v1", "v2"])
def test_good_tags_serve_the_golden_answers(wine: Callable[[str], Wine], tag: str) -> None:
    w = wine(tag)
    w.wait_status("/readyz", 200)
    assert request(w.url + "/readyz").body == {"ready": True, "model_version": tag}
    assert http_status(w.url + "/healthz") == 200
    assert golden_failures(w) == []
    # The TF-Serving routes answer the same classes.
    rows = GOLDEN["cases"][3]["request"]["body"]
    assert request(w.url + "/v1/models/wine:predict", rows).body == {"predictions": [0, 1, 2]}
    status = request(w.url + "/v1/models/wine").body["model_version_status"][0]
    assert status["state"] == "AVAILABLE"


def test_metrics_count_answered_predictions(wine: Callable[[str], Wine]) -> None:
    w = wine("v1")
    w.wait_status("/readyz", 200)
    for _ in range(3):
        w.predict(GOLDEN["cases"][0]["request"]["body"])
    w.predict({"instances": [[1.0]]})  # refused: counted as an error
    text = subprocess.run(
        ["curl", "-s", w.url + "/metrics"], capture_output=True, text=True, timeout=30
    ).stdout
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    ok = ("wine_prediction_requests_total", (("endpoint", "/predict"), ("outcome", "ok")))
    error = ("wine_prediction_requests_total", (("endpoint", "/predict"), ("outcome", "error")))
    assert (samples[ok], samples[error]) == (3.0, 1.0)
    assert samples[("wine_predicted_rows_total", ())] == 3.0


def test_crash_exits_1_naming_the_model_file(wine: Callable[[str], Wine]) -> None:
    w = wine("crash")
    deadline = time.monotonic() + START_DEADLINE_S
    while w.running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert docker("inspect", "-f", "{{.State.ExitCode}}", w.cid) == "1"
    assert "cannot load the model from /opt/wine/model: UnpicklingError" in w.logs()


def test_unready_is_live_and_never_ready(wine: Callable[[str], Wine]) -> None:
    w = wine("unready")
    w.wait_status("/healthz", 200)
    for _ in range(10):  # 5 s
        reply = request(w.url + "/readyz")
        assert reply.status == 503
        time.sleep(0.5)
    assert reply.body == {
        "ready": False,
        "reason": "model takes 13 features, the self-check expects 14",
    }
    assert w.predict(GOLDEN["cases"][0]["request"]["body"]).status == 503


def test_wrong_is_ready_and_fails_the_golden_cases(wine: Callable[[str], Wine]) -> None:
    w = wine("wrong")
    w.wait_status("/readyz", 200)
    failures = golden_failures(w)
    assert len(failures) == 4, failures  # every class case; the refused row still refused


def test_hang_is_ready_and_never_answers_a_prediction(wine: Callable[[str], Wine]) -> None:
    w = wine("hang")
    w.wait_status("/readyz", 200)
    with pytest.raises(TimeoutError):
        request(w.url + "/predict", GOLDEN["cases"][0]["request"]["body"], timeout=3.0)
    assert http_status(w.url + "/healthz") == 200  # health still answers


def test_image_user_is_numeric_and_not_root(wine: Callable[[str], Wine]) -> None:
    wine("v1")  # skips when not built
    assert docker("image", "inspect", "-f", "{{.Config.User}}", f"{IMAGE}:v1") == "10001:10001"
