"""The canary's traffic and judgement against two loopback model servers (model_server.py), one
per arm, with a plain-protocol golden file: the requests go out as the gate sends them (the
case's path, headers and body; the configured headers and the endpoint URL's credentials), and
the arms are judged on the values the golden cases pick."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from model_server import serve

from rolloutgate import config
from rolloutgate.canary import measure
from rolloutgate.canary.judge import Judgement, judge
from rolloutgate.canary.observations import ARMS, Arm, Observations
from rolloutgate.canary.thresholds import Thresholds
from rolloutgate.canary.traffic import Traffic, items_of, load_request_set, plan
from rolloutgate.checks import cases

GOLDEN = {
    "protocol": "plain",
    "cases": [
        {
            "name": "batch",
            "request": {
                "body": {"instances": [[0.0], [1.0], [2.0]]},
                "headers": {"X-Gate": "rolloutgate"},
            },
            "expect": {
                "values": [
                    {"path": "predictions", "data": [0, 1, 2]},
                    {"path": "probabilities[0]", "data": [0.9, 0.05, 0.05], "abs_tol": 0.01},
                ]
            },
        },
        # Answered 400 as the case expects: not an error of either arm.
        {"name": "refused", "request": {"body": {"rows": []}}, "expect": {"status": 400}},
    ],
}


@pytest.fixture
def servers() -> Iterator[dict[Arm, tuple[str, dict[str, Any]]]]:
    """Function. (base URL, state) of a loopback server per arm."""
    with ExitStack() as stack:
        yield {arm: stack.enter_context(serve()) for arm in ARMS}


def run_canary(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    urls: dict[Arm, str],
    *,
    request_timeout: float = 5,
) -> tuple[Observations, Judgement]:
    golden_path = tmp_path / "golden.json"
    golden_path.write_text(json.dumps(GOLDEN))
    golden = cases.load(golden_path)
    lines = [
        {"name": f"row-{k}", "request": {"body": {"instances": [[float(k)]]}}, "label": k % 3}
        for k in range(9)
    ]
    request_set = tmp_path / "set.jsonl"
    request_set.write_text("\n".join(json.dumps(line) for line in lines))
    monkeypatch.setenv("CANARY_TOKEN", "t0ken")
    cfg = config.resolve(
        {},
        env={"ROLLOUTGATE_ENDPOINT_URL": "http://ci:pw@model.example"},
        tool={"headers": {"X-Token": "env:CANARY_TOKEN"}},
        rootdir=tmp_path,
        invocation_dir=tmp_path,
        list_contexts=lambda _k: [],
    )
    obs = Observations()
    obs.items = items_of(golden, load_request_set(request_set, golden.protocol))
    traffic = Traffic(
        # The canary's own client of a pod's forward (``measure.arm_client``).
        lambda arm, _pod: measure.arm_client(
            urls[arm], golden, replace(cfg, request_timeout=request_timeout)
        ),
        obs,
        concurrency=2,
        request_timeout=request_timeout,
        max_consecutive_errors=4,
        seed=1,
    )
    schedule = plan(obs.items, requests=30, warmup=2, rng=random.Random(1))
    traffic.run(schedule, deadline=float("inf"))
    return obs, judge(obs, Thresholds(min_samples=20))


def test_requests_go_out_as_the_gate_sends_them(
    servers: dict[Arm, tuple[str, dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    obs, result = run_canary(tmp_path, monkeypatch, {arm: servers[arm][0] for arm in ARMS})
    assert len(obs.measured("canary")) == 30
    basic = "Basic " + base64.b64encode(b"ci:pw").decode()
    for arm in ARMS:
        seen = servers[arm][1]["headers"]
        assert all(h["X-Token"] == "t0ken" and h["Authorization"] == basic for h in seen)
        assert any(h.get("X-Gate") == "rolloutgate" for h in seen)  # the case's own header
    # Every metric but latency passes: two loopback servers of one process on a loaded 2-core
    # machine differ by noise (a ratio of 1.59 at p 0.014 failed this once), not this test's
    # subject.
    failing = [m.name for m in result.metrics if m.verdict == "fail"]
    assert set(failing) <= {"latency"}, result.reason
    assert result.metric("golden").verdict == "pass"
    assert result.metric("errors").figures["canary_errors"] == 0  # the expected 400s
    agreement = result.metric("agreement")
    assert agreement.verdict == "pass"
    assert agreement.figures["flips"] == 0
    accuracy = result.metric("accuracy")
    assert (accuracy.figures["output"], accuracy.figures["canary"]) == ("predictions", 1.0)
    # probabilities[0] has a tolerance and floats: numbers, not labels.
    assert result.metric("numeric").figures["compared"] > 0


def test_the_environments_proxy_never_takes_the_arms_requests(
    servers: dict[Arm, tuple[str, dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The arms are the canary's own forwards on 127.0.0.1: an HTTP_PROXY without a NO_PROXY
    for it (a CI runner's) must not take their requests (port 9, discard: answers nothing)."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    obs, result = run_canary(
        tmp_path, monkeypatch, {arm: servers[arm][0] for arm in ARMS}, request_timeout=2
    )
    assert [s for s in obs.samples if s.outcome in ("transport", "timeout")] == []
    assert len(obs.measured("canary")) == 30
    assert result.metric("golden").verdict == "pass"


def test_a_wrong_candidate_fails_naming_cases_and_flipped_lines(
    servers: dict[Arm, tuple[str, dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers["canary"][1]["wrong"] = True
    _, result = run_canary(tmp_path, monkeypatch, {arm: servers[arm][0] for arm in ARMS})
    assert result.verdict == "fail"
    golden = result.metric("golden")
    assert golden.figures["failing"] == ["golden:batch"]
    assert "predictions (exact): [0] expected 0 got 1" in golden.reason
    agreement = result.metric("agreement")
    assert agreement.verdict == "fail"
    assert "set:row-0 (predictions[0] 0->1)" in agreement.reason
    assert result.metric("accuracy").figures["canary"] == 0.0


def test_a_candidate_that_never_answers_fails_on_its_own_timeouts(
    servers: dict[Arm, tuple[str, dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers["canary"][1]["hang"] = True
    obs, result = run_canary(
        tmp_path, monkeypatch, {arm: servers[arm][0] for arm in ARMS}, request_timeout=0.5
    )
    canary = [s for s in obs.samples if s.arm == "canary"]
    assert {s.outcome for s in canary} == {"timeout"}
    assert len(canary) < 8  # stopped after the streak, not 32 timeouts
    assert result.verdict == "fail"
    errors = result.metric("errors")
    assert (errors.verdict, errors.critical) == ("fail", True)
    assert "the canary stopped answering: 4 requests in a row" in errors.reason
    assert "got no answer within 0.5 s" in errors.reason


def test_a_candidate_that_drops_every_connection_fails(
    servers: dict[Arm, tuple[str, dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers["canary"][1]["reset"] = True
    obs, result = run_canary(tmp_path, monkeypatch, {arm: servers[arm][0] for arm in ARMS})
    outcomes = [s.outcome for s in obs.samples if s.arm == "canary"]
    # Each request sent twice: the first break may be the path's, the second is the arm's.
    assert set(outcomes) == {"transport", "reset"}
    assert outcomes.count("transport") == outcomes.count("reset") >= 4
    assert result.verdict == "fail"
    assert result.metric("errors").critical
