"""``python -m rolloutgate record`` against a loopback server (``--endpoint-url``): what it
writes, that the gate's checks pass with what it wrote, and when it refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from model_server import serve

from rolloutgate.__main__ import main
from rolloutgate.checks import cases, httpclient, protocols

ROW = [[0.0], [1.0], [2.0]]
TEMPLATE = {
    "protocol": "plain",
    "latency": {"requests": 5, "p50_ms": 100, "p95_ms": 200},
    "cases": [
        # No expect: record every top-level key of the answer.
        {"name": "batch", "request": {"body": {"instances": ROW}}},
        # Expectations given: record the same paths with today's answers.
        {
            "name": "labels-only",
            "request": {"body": {"instances": [[1.0]]}},
            "expect": {"values": [{"path": "predictions", "data": [9]}]},
        },
        {"name": "refused", "request": {"body": {"rows": []}}, "expect": {"status": 400}},
    ],
}
V2_TEMPLATE = {
    "model": "wine",
    "cases": [
        {
            "name": "two",
            "request": {
                "inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [2.0]}]
            },
            "expect": [{"name": "predict", "data": [0]}],
        }
    ],
}


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, Any]]]:
    with serve() as running:
        yield running


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No pyproject.toml here: the settings are the options and defaults only.
    monkeypatch.chdir(tmp_path)
    for name in ("ROLLOUTGATE_CLUSTER", "ROLLOUTGATE_GOLDEN", "ROLLOUTGATE_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


def run(url: str, template: dict[str, Any], *extra: str) -> tuple[int, Path]:
    source = Path("template.json")
    source.write_text(json.dumps(template))
    out = Path("recorded.json")
    code = main(["record", f"--endpoint-url={url}", f"--golden={source}", f"--out={out}", *extra])
    return code, out


def verify(url: str, path: Path) -> list[str]:
    golden = cases.load(path)
    health = protocols.health_paths(golden.protocol, golden.health, {})
    with httpclient.HttpClient(url, model=golden.model, timeout=2, health=health) as client:
        return cases.verify(client, golden)


def test_records_answers_with_suggested_tolerances_and_the_gate_passes_them(
    server: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = server
    code, out = run(url, TEMPLATE)
    assert code == 0, capsys.readouterr().err
    assert f"wrote 3 cases to {out}" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["protocol"] == "plain"
    assert data["latency"] == TEMPLATE["latency"]
    assert data["recorded"]["from"] == url
    batch, labels, refused = data["cases"]
    assert batch["request"] == {"body": {"instances": ROW}}
    assert batch["expect"] == {
        "values": [
            {"path": "predictions", "data": [0, 1, 2]},
            {
                "path": "probabilities",
                "data": [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]],
                "abs_tol": 0.05,
            },
            {"path": "scores", "data": [1.5, 2.5, 3.5], "rel_tol": 0.01},
        ]
    }
    assert labels["expect"] == {"values": [{"path": "predictions", "data": [1]}]}
    assert refused["expect"] == {"status": 400}
    assert verify(url, out) == []


def test_records_todays_v2_format_as_it_was(
    server: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = server
    code, out = run(url, V2_TEMPLATE)
    assert code == 0, capsys.readouterr().err
    data = json.loads(out.read_text())
    assert "protocol" not in data
    assert data["model"] == "wine"
    (case,) = data["cases"]
    assert case["request"] == V2_TEMPLATE["cases"][0]["request"]  # the bare V2 body
    assert case["expect"] == [{"name": "predict", "data": [2]}]
    assert verify(url, out) == []


def test_refuses_a_release_failing_its_health_checks(
    server: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = server
    state["ready"] = False
    code, out = run(url, TEMPLATE)
    assert code == 1
    assert not out.exists()
    err = capsys.readouterr().err
    assert "refusing to record from a release that fails its health checks: " in err
    assert f"health ready: GET {url}/readyz -> 503" in err


def test_refuses_a_failing_answer_to_a_case_meant_to_succeed(
    server: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = server
    template = {**TEMPLATE, "cases": [{"name": "bad", "request": {"body": {"rows": []}}}]}
    code, out = run(url, template)
    assert code == 1
    assert not out.exists()
    assert (
        "case 'bad' is meant to succeed (status 200) but the live release answered "
        f"POST {url}/predict -> 400" in capsys.readouterr().err
    )


def test_does_not_overwrite_without_force(
    server: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = server
    Path("recorded.json").write_text("{}")
    code, _ = run(url, TEMPLATE)
    assert code == 2
    assert "recorded.json exists; pass --force" in capsys.readouterr().err
    code, out = run(url, TEMPLATE, "--force")
    assert code == 0
    assert json.loads(out.read_text())["cases"]


def test_needs_a_cluster_or_an_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    Path("golden.json").write_text(json.dumps(TEMPLATE))
    assert main(["record", "--out=x.json"]) == 2
    assert "record needs --cluster NAME" in capsys.readouterr().err
