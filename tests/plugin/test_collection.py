"""Which runs need a cluster: project tests never do; gate tests always do."""

from __future__ import annotations

import pytest

GATE_TEST = """
def test_release(rolloutgate_release):
    pass
"""


def test_project_tests_run_without_any_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_plain():
            pass

        def test_config_needs_no_cluster(rolloutgate_config):
            assert rolloutgate_config.cluster is None
            assert not rolloutgate_config.enabled
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    assert not (pytester.path / "reports").exists(), "no gate, no gate report"


def test_plugin_loads_through_its_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["rolloutgate release gate:", "*--cluster=NAME*"])
    result = pytester.runpytest_subprocess("-p", "no:rolloutgate", "--cluster=x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --cluster=x*"])


def test_gate_tests_without_cluster_are_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gate=GATE_TEST, test_plain="def test_plain(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: 1 collected test(s) deploy or check a release (e.g. "
            "test_gate.py::test_release) but no cluster was given. Pass --cluster NAME, where "
            "NAME is a profile of ?tool.rolloutgate.clusters? in pyproject.toml, a kubeconfig "
            "context, or 'kind'*"
        ]
    )


def test_deselected_gate_tests_need_no_cluster(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_gate=GATE_TEST, test_plain="def test_plain(): pass")
    result = pytester.runpytest("-k", "plain")
    result.assert_outcomes(passed=1, deselected=1)


def test_collect_only_lists_gate_tests_without_cluster(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_gate="""
        def test_case(rolloutgate_case):
            pass
        """
    )
    result = project.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["test_gate.py::test_case[setosa]", "test_gate.py::test_case[virginica]"]
    )


def test_golden_cases_become_one_test_each(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_gate="""
        def test_case(rolloutgate_case):
            assert rolloutgate_case.expect[0].name == "predict"
        """
    )
    result = project.runpytest("--cluster=staging", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["test_gate.py::test_case[setosa]", "test_gate.py::test_case[virginica]"]
    )


def test_broken_golden_file_fails_collection_and_deploys_nothing(project: pytest.Pytester) -> None:
    (project.path / "golden.json").write_text('{"model": "iris", "cases": [}')
    project.makepyfile(
        test_gate="""
        def test_case(rolloutgate_case, rolloutgate_release):
            pass
        """
    )
    result = project.runpytest("--cluster=staging")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection error: nothing ran
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting test_gate.py*",
            "golden file */golden.json is not valid JSON (line 1, column 29: Expecting value); "
            'expected {"model": NAME*',
        ]
    )
    result.stdout.no_fnmatch_line("*rolloutgate_release*")
    assert not (project.path / "reports" / "gate.json").exists() or (
        '"applied": false' in (project.path / "reports" / "gate.json").read_text()
    )
