"""One error per cause: an unreachable cluster, a wrong kubeconfig or a bad golden file is
said once, at the first check that meets it, with the number of checks not run — not once per
test (a team's first run printed the same ClusterUnreachable 18 times)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def suite(project: pytest.Pytester) -> pytest.Pytester:
    """Function. The inner project with the suite a team copies (conftest.py, tests/deploy,
    tests/smoke); its kubeconfig points at a closed port."""
    shutil.copy(REPO / "conftest.py", project.path / "conftest.py")
    for part in ("tests/deploy", "tests/smoke"):
        shutil.copytree(REPO / part, project.path / part)
    return project


def report(p: pytest.Pytester) -> dict[str, object]:
    data: dict[str, object] = json.loads((p.path / "reports" / "gate.json").read_text())
    return data


def test_an_unreachable_cluster_is_said_once_with_the_checks_not_run(
    suite: pytest.Pytester,
) -> None:
    listing = suite.runpytest("--collect-only", "-q", "tests").stdout.str()
    collected = int(re.search(r"(\d+) tests? collected", listing).group(1))  # type: ignore[union-attr]
    result = suite.runpytest("--cluster=staging", "tests")
    result.assert_outcomes(errors=1)
    # pytest's own short summary repeats the message, cut to the terminal's width except on
    # CI (CI=true); what is counted is what rolloutgate prints above it.
    out = result.stdout.str().split("short test summary info")[0]
    assert out.count("ERROR at setup") == 1
    # The error section, and the verdict's cause line.
    assert out.count("ClusterUnreachable: API server https://127.0.0.1:9 did not answer") == 2
    not_run = collected - 1
    result.stdout.fnmatch_lines(
        [
            f"verdict: FAIL - *ClusterUnreachable: *({not_run} check(s) not run)",
            f"not run: {not_run} check(s) that need rolloutgate_api, which failed (above)",
        ]
    )
    tests = report(suite)["tests"]
    assert isinstance(tests, dict)
    assert tests["not_run"] == not_run
    assert tests["not_run_because"] == {"rolloutgate_api": not_run}


def test_checks_that_do_not_need_the_failed_step_still_run(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        def test_release(rolloutgate_rollout):
            pass

        def test_pods(rolloutgate_pods):
            pass

        def test_settings(rolloutgate_config, rolloutgate_manifests):
            assert rolloutgate_manifests[0]["kind"] == "Deployment"
        """
    )
    result = project.runpytest("--cluster=staging")
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(["not run: 1 check(s) that need rolloutgate_api*"])


def test_a_check_in_the_next_module_runs_after_checks_not_run(project: pytest.Pytester) -> None:
    """The checks not run after a failed step are the rest of a module; the next module's check
    that does not need the step runs as usual (it met pytest's `previous item was not torn down
    properly`, with a traceback, when the endpoint failed in an API server outage: the module of
    the checks not run was never torn down)."""
    project.makepyfile(
        test_a="""
        def test_release(rolloutgate_rollout):
            pass

        def test_release_too(rolloutgate_rollout):
            pass
        """,
        test_b="""
        def test_settings(rolloutgate_config, rolloutgate_manifests):
            assert rolloutgate_manifests[0]["kind"] == "Deployment"
        """,
    )
    result = project.runpytest("--cluster=staging", "test_a.py", "test_b.py")
    result.assert_outcomes(errors=1, passed=1)
    assert "not torn down" not in result.stdout.str()
    result.stdout.fnmatch_lines(["not run: 1 check(s) that need rolloutgate_api*"])


def test_a_kubeconfig_that_is_not_one_is_a_usage_error(suite: pytest.Pytester) -> None:
    (suite.path / "kubeconfig").write_text("clusters: [unclosed\n")
    result = suite.runpytest("--cluster=staging", "tests")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stderr.fnmatch_lines(
        ["ERROR: kubeconfig context 'staging' *is not a kubeconfig (while parsing a flow*"]
    )


def test_a_bad_golden_file_is_the_cause_not_an_interruption(suite: pytest.Pytester) -> None:
    (suite.path / "golden.json").write_text('{"model": "iris", "cases": []}')
    result = suite.runpytest("--cluster=staging", "tests")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # pytest's code for a collection error
    out = result.stdout.str()
    assert out.count('"cases" must be a non-empty list') == 2  # the error, the verdict's cause
    data = report(suite)
    assert data["interrupted"] is None
    assert data["verdict"] == "fail"
    assert str(data["cause"]).startswith("tests/smoke/test_predictions.py: golden file "), data[
        "cause"
    ]
    tests = data["tests"]
    assert isinstance(tests, dict)
    assert tests["not_run"] > 0
    assert f"({tests['not_run']} check(s) not run)" in str(data["cause"])
