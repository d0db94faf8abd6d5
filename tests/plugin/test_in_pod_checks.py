"""The in-pod checks' container is decided before anything is deployed: a name the pods do not
have is a usage error listing theirs; the model file is a setting, and the check says "not
configured" without it."""

from __future__ import annotations

import json

import pytest

IN_POD_TEST = """
def test_in_pod(rolloutgate_in_pod):
    pass
"""

TWO_CONTAINERS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo}
spec:
  replicas: 1
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - {name: server, image: team/echo:v1}
      - {name: proxy, image: mesh/proxy:1.2}
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""


def test_a_container_the_pods_lack_is_a_usage_error_naming_theirs(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_pod=IN_POD_TEST)
    monkeypatch.setenv("ROLLOUTGATE_CONTAINER", "server")
    result = project.runpytest("--cluster=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: container 'server' (setting `container`) is not a container of the release's "
            "pods: Deployment/iris has model. Set `container` to one of them"
        ]
    )
    # Nothing was tried: the cluster (a closed port here) was never asked.
    assert "ClusterUnreachable" not in result.stdout.str() + result.stderr.str()


def test_containers_the_image_tag_cannot_tell_apart_are_a_usage_error(
    project: pytest.Pytester,
) -> None:
    (project.path / "manifests" / "iris.yaml").write_text(TWO_CONTAINERS)
    project.makepyfile(test_pod=IN_POD_TEST)
    result = project.runpytest("--cluster=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: the in-pod checks cannot tell which container serves the model*proxy, server*"]
    )


def test_images_decide_the_container(project: pytest.Pytester) -> None:
    (project.path / "manifests" / "iris.yaml").write_text(TWO_CONTAINERS)
    project.makepyfile(
        test_pod="""
        def test_container(rolloutgate_container):
            assert rolloutgate_container == "server"
        """
    )
    # Without images the tag sets both containers' images: undecidable, as above.
    assert project.runpytest("--cluster=staging").ret == pytest.ExitCode.USAGE_ERROR
    with (project.path / "pyproject.toml").open("a") as f:
        f.write('\n[tool.rolloutgate.clusters.echo]\ncontext = "staging"\nimages = ["team/echo"]\n')
    result = project.runpytest("--cluster=echo")
    result.assert_outcomes(passed=1)


def test_a_suites_own_container_fixture_is_not_second_guessed(project: pytest.Pytester) -> None:
    (project.path / "manifests" / "iris.yaml").write_text(TWO_CONTAINERS)
    project.makeconftest(
        """
        import pytest

        @pytest.fixture
        def rolloutgate_container():
            return "proxy"
        """
    )
    project.makepyfile(
        test_pod="""
        def test_container(rolloutgate_container):
            assert rolloutgate_container == "proxy"
        """
    )
    result = project.runpytest("--cluster=staging")
    result.assert_outcomes(passed=1)


def test_model_file_not_configured_is_skipped_and_reported(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_pod="""
        def test_model_file_present(rolloutgate_model_file):
            pass
        """
    )
    result = project.runpytest("--cluster=staging", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "skipped: 1 check(s)",
            "  test_model_file_present: not configured: set `model_file`*",
        ]
    )
    report = json.loads((project.path / "reports" / "gate.json").read_text())
    assert report["skipped"] == [
        {
            "nodeid": "test_pod.py::test_model_file_present",
            "reason": report["tests"]["items"][0]["message"],
        }
    ]
    assert report["skipped"][0]["reason"].startswith("not configured: set `model_file`")


def test_model_file_configured(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLOUTGATE_MODEL_FILE", "/opt/model/model.bin")
    project.makepyfile(
        test_pod="""
        def test_model_file(rolloutgate_model_file):
            assert rolloutgate_model_file == "/opt/model/model.bin"
        """
    )
    project.runpytest("--cluster=staging").assert_outcomes(passed=1)
    monkeypatch.setenv("ROLLOUTGATE_MODEL_FILE", "model.bin")
    result = project.runpytest("--cluster=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*env ROLLOUTGATE_MODEL_FILE: invalid path in the container*"])
