"""Options: help text, and each bad value is a usage error naming what is accepted."""

from __future__ import annotations

import pytest

OPTIONS = [
    "--cluster=NAME",
    "--image-tag=TAG",
    "--manifests=DIR",
    "--namespace=NS",
    "--golden=FILE",
    "--context=NAME",
    "--rollout-timeout=SECONDS",
    "--endpoint-timeout=SECONDS",
    "--lock-timeout=SECONDS",
    "--rollback-timeout=SECONDS",
    "--max-restarts=N",
    "--no-rollback",
    "--dry-run",
    "--gate-report=PATH",
    "--endpoint-url=URL",
    "--canary",
    "--promote",
    "--keep-arms",
    "--request-set=FILE",
    "--canary-requests=N",
    "--canary-report=PATH",
]


def test_help_lists_every_option_in_one_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    lines = result.stdout.lines
    start = lines.index("rolloutgate release gate:")
    group = "\n".join(lines[start:])
    group = group[: group.index("\n\n")]
    for option in OPTIONS:
        assert f"  {option}" in group, f"{option} not in the rolloutgate group:\n{group}"


@pytest.mark.parametrize(
    ("args", "accepted"),
    [
        (["--image-tag=v 2"], "*invalid image tag 'v 2'*letters, digits, '_', '.' and '-'*"),
        (["--image-tag=-v2"], "*invalid image tag '-v2'*not starting with '.' or '-'*"),
        (["--image-tag=" + "v" * 129], "*invalid image tag*1-128 characters*"),
        (["--image-tag=v2:latest"], "*invalid image tag 'v2:latest'*"),
        (["--rollout-timeout=soon"], "*invalid timeout 'soon'*number of seconds > 0*"),
        (["--lock-timeout=0"], "*invalid timeout '0'*number of seconds > 0*"),
        (["--endpoint-timeout=-5"], "*invalid timeout '-5'*"),
        (["--rollback-timeout=inf"], "*invalid timeout 'inf'*"),
        (["--max-restarts=-1"], "*invalid count '-1'*whole number >= 0*"),
        (["--max-restarts=two"], "*invalid count 'two'*"),
        (["--namespace=Iris_NS"], "*invalid namespace 'Iris_NS'*lower-case letters, digits*"),
        (["--endpoint-url=iris.local"], "*invalid URL 'iris.local'*http://HOST*"),
        (["--endpoint-url=ftp://iris"], "*invalid URL 'ftp://iris'*"),
        (["--cluster=two words"], "*invalid name 'two words'*without spaces*"),
        (["--canary"], "*--canary needs a cluster: pass --cluster NAME*"),
        (["--canary", "--cluster=kind"], "*--canary compares against a live release*"),
        (["--canary-requests=0"], "*invalid count '0'*whole number >= 1*"),
    ],
    ids=lambda v: v[0][:30] if isinstance(v, list) else "",
)
def test_bad_value_is_a_usage_error_naming_the_format(
    pytester: pytest.Pytester, args: list[str], accepted: str
) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([accepted])


@pytest.mark.parametrize("tag", ["v2", "1.4.0-rc1", "_build.7", "A" * 128])
def test_valid_tags_are_accepted(pytester: pytest.Pytester, tag: str) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--image-tag", tag)
    assert result.ret == pytest.ExitCode.OK
