"""Command lines the gate refuses: the rootdir trap (an option value in space form that moves
pytest's rootdir) and pytest-xdist. Run in a subprocess: the trap happens while pytest starts,
before any plugin could be handed in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolloutgate.pytest.cmdline import space_form, value_flags

TRIVIAL = "def test_trivial(): pass\n"


@pytest.fixture
def outside(project: pytest.Pytester) -> Path:
    """A directory next to the inner project, with an existing report, manifests and golden
    file: paths pytest would take for test paths."""
    where = project.path.parent / f"{project.path.name}-outside"
    (where / "manifests").mkdir(parents=True)
    (where / "gate.json").write_text("{}")
    (where / "golden.json").write_text((project.path / "golden.json").read_text())
    (where / "manifests" / "iris.yaml").write_text(
        (project.path / "manifests" / "iris.yaml").read_text()
    )
    return where


@pytest.mark.parametrize(
    ("flag", "target"),
    [("--gate-report", "gate.json"), ("--manifests", "manifests"), ("--golden", "golden.json")],
)
def test_space_form_path_outside_the_project_is_a_usage_error_naming_the_fix(
    project: pytest.Pytester, outside: Path, flag: str, target: str
) -> None:
    project.makepyfile(TRIVIAL)
    value = str(outside / target)
    result = project.runpytest_subprocess("--cluster=staging", flag, value, "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(
        [f"*pytest chose * as its rootdir instead of {project.path}:*{flag}={value}"]
    )


@pytest.mark.parametrize(
    ("flag", "target"),
    [("--gate-report", "gate.json"), ("--manifests", "manifests"), ("--golden", "golden.json")],
)
def test_equals_form_path_outside_the_project_keeps_the_rootdir(
    project: pytest.Pytester, outside: Path, flag: str, target: str
) -> None:
    project.makepyfile(TRIVIAL)
    value = str(outside / target)
    result = project.runpytest_subprocess("--cluster=staging", f"{flag}={value}", "--collect-only")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([f"rootdir: {project.path}*", "*1 test collected*"])


def test_space_form_path_inside_the_project_is_accepted(project: pytest.Pytester) -> None:
    # The value still counts as a test path for pytest's rootdir rule, but the rootdir it finds
    # from there is the project's: nothing moved, nothing to refuse.
    project.makepyfile(TRIVIAL)
    (project.path / "reports").mkdir()
    (project.path / "reports" / "gate.json").write_text("{}")
    result = project.runpytest_subprocess(
        "--cluster=staging",
        "--manifests",
        "manifests",
        "--gate-report",
        "reports/gate.json",
        "--collect-only",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines([f"rootdir: {project.path}*", "*1 test collected*"])


def test_space_form_value_that_is_no_path_is_accepted(project: pytest.Pytester) -> None:
    project.makepyfile(TRIVIAL)
    result = project.runpytest_subprocess("--cluster", "staging", "--image-tag", "v2", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()


def test_space_form_pairs_are_found_and_equals_form_is_not() -> None:
    args = ["--cluster", "x", "--gate-report=/a", "--manifests", "/m", "--", "--golden", "/g"]
    assert space_form(args, value_flags()) == [("--cluster", "x"), ("--manifests", "/m")]
    assert "--dry-run" not in value_flags()  # takes no value


def test_xdist_with_a_cluster_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile(TRIVIAL)
    result = project.runpytest_subprocess("-p", "xdist", "-n", "2", "--cluster=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines(
        ["*cannot run distributed by pytest-xdist (-n 2)*deploy the release again*without -n*"]
    )


def test_xdist_without_a_cluster_runs_the_project_tests(project: pytest.Pytester) -> None:
    project.makepyfile(TRIVIAL)
    result = project.runpytest_subprocess("-p", "xdist", "-n", "2")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*1 passed*"])


def test_xdist_with_zero_workers_runs_the_gate_in_process(project: pytest.Pytester) -> None:
    project.makepyfile(TRIVIAL)
    result = project.runpytest_subprocess("-p", "xdist", "-n", "0", "--cluster=staging", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
