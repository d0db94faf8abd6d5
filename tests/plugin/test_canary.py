"""--canary through pytester: items per metric, reports, exit status; no cluster is contacted
(the inner project's kubeconfig points at a closed port, so the run is inconclusive)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from rolloutgate.canary.metrics import METRICS


def test_unreachable_cluster_is_inconclusive_with_a_report_per_metric(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_suite="def test_gate_check(): pass")
    result = project.runpytest(
        "--cluster=staging",
        "--canary",
        "--image-tag=v2",
        "--junitxml=junit.xml",
        "--canary-report=out/canary.json",
    )
    assert result.ret == 7, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "rolloutgate canary: candidate v2 against the live release; 720 measured*",
            "*1 deselected*",
            "*canary verdict: INCONCLUSIVE*ClusterUnreachable*",
        ]
    )
    report = json.loads((project.path / "out" / "canary.json").read_text())
    assert report["verdict"] == "inconclusive"
    assert report["exit_status"] == 7
    assert (project.path / "reports" / "canary.html").is_file()
    history = (project.path / "reports" / "canary-history.jsonl").read_text().splitlines()
    assert json.loads(history[0])["verdict"] == "inconclusive"
    cases = ET.parse(project.path / "junit.xml").getroot().iter("testcase")
    by_name = {c.get("name"): c for c in cases}
    assert list(by_name) == [*METRICS, "verdict"]
    assert all(c.get("classname") == "canary" for c in by_name.values())
    skipped = by_name["latency"].find("skipped")
    assert skipped is not None
    assert "ClusterUnreachable" in (skipped.get("message") or "")


def test_canary_options_need_a_candidate(project: pytest.Pytester) -> None:
    result = project.runpytest("--cluster=staging", "--canary")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--canary needs the candidate: pass --image-tag TAG*"])


def test_bad_canary_setting_in_pyproject_names_its_source(project: pytest.Pytester) -> None:
    pyproject = project.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.rolloutgate.canary]\nconfidence = 2\n")
    result = project.runpytest("--cluster=staging", "--canary", "--image-tag=v2")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*[[]tool.rolloutgate[]], key 'canary.confidence': invalid confidence 2*"]
    )


def test_without_canary_the_gate_is_unchanged(project: pytest.Pytester) -> None:
    project.makepyfile(test_suite="def test_plain(): pass")
    result = project.runpytest()
    assert result.ret == 0
    assert not (project.path / "reports" / "canary.json").exists()


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (
            lambda p: (p.path / "set.jsonl").write_text(
                '{"name": "a", "request": {"inputs": []}}\n{'
            ),
            ("--request-set=set.jsonl",),
            "*request set *set.jsonl:2: not JSON (*); expected one JSON object per line*",
        ),
        (
            lambda p: (p.path / "set.jsonl").write_text('{"request": {"instances": [[1]]}}\n'),
            ("--request-set=set.jsonl",),
            "*request set *set.jsonl:1: request has unknown keys *instances*"
            'a V2 infer body needs "inputs"*',
        ),
        (
            lambda p: None,
            ("--request-set=missing.jsonl",),
            "*request set *missing.jsonl cannot be read*",
        ),
        (
            lambda p: (p.path / "pyproject.toml").write_text(
                (p.path / "pyproject.toml").read_text()
                + '\n[tool.rolloutgate.canary]\nlabel_output = "proba"\n'
            ),
            (),
            "*canary.label_output 'proba' (*) is none of the values*expected one of: 'predict'*",
        ),
        (
            lambda p: (p.path / "manifests" / "second.yaml").write_text(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other}\n"
                "spec: {selector: {matchLabels: {app: o}}, template: {metadata: {labels: "
                "{app: o}}, spec: {containers: [{name: c, image: x}]}}}\n"
            ),
            (),
            "*the canary compares one Deployment; * has: Deployment/iris, Deployment/other*",
        ),
    ],
    ids=["not-json", "wrong-protocol", "unreadable", "label-output", "two-deployments"],
)
def test_bad_canary_input_is_a_usage_error_before_the_cluster_is_contacted(
    project: pytest.Pytester, setup: Any, args: tuple[str, ...], message: str
) -> None:
    setup(project)
    result = project.runpytest("--cluster=staging", "--canary", "--image-tag=v2", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines([message])
    # Nothing ran: no connection attempt, no report.
    assert "ClusterUnreachable" not in result.stdout.str() + result.stderr.str()
    assert not (project.path / "reports").exists()
