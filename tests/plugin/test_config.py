"""Settings: profile → env → option precedence, the header's sources, unknown targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolloutgate.config import KIND, resolve
from rolloutgate.errors import ConfigError

TRIVIAL = "def test_x(): pass"


def header(result: pytest.RunResult) -> str:
    return "\n".join(line for line in result.stdout.lines if line.startswith("rolloutgate:"))


def test_profile_supplies_context_namespace_and_timeouts(project: pytest.Pytester) -> None:
    project.makepyfile(TRIVIAL)
    result = project.runpytest("--cluster=staging", "--image-tag=v2")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "rolloutgate: cluster staging (--cluster), context staging (profile staging), "
            "namespace iris (profile staging)",
            "rolloutgate: image tag v2 (--image-tag), manifests manifests ([tool.rolloutgate]), "
            "golden golden.json ([tool.rolloutgate])",
            "rolloutgate: kubeconfig kubeconfig ([tool.rolloutgate])",
        ]
    )


def test_env_beats_profile_and_option_beats_env(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(TRIVIAL)
    monkeypatch.setenv("ROLLOUTGATE_NAMESPACE", "from-env")
    monkeypatch.setenv("ROLLOUTGATE_IMAGE_TAG", "v9")
    result = project.runpytest("--cluster=staging", "--image-tag=v2")
    assert "namespace from-env (env ROLLOUTGATE_NAMESPACE)" in header(result)
    assert "image tag v2 (--image-tag)" in header(result)
    result = project.runpytest("--cluster=staging", "--namespace=from-option")
    assert "namespace from-option (--namespace)" in header(result)
    assert "image tag v9 (env ROLLOUTGATE_IMAGE_TAG)" in header(result)


def test_cluster_from_env(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    project.makepyfile(TRIVIAL)
    monkeypatch.setenv("ROLLOUTGATE_CLUSTER", "staging")
    result = project.runpytest()
    assert "cluster staging (env ROLLOUTGATE_CLUSTER)" in header(result)


def test_cluster_may_name_a_kubeconfig_context(project: pytest.Pytester) -> None:
    project.makepyfile(TRIVIAL)
    result = project.runpytest("--cluster=dev")
    assert result.ret == pytest.ExitCode.OK
    assert "context dev (--cluster (kubeconfig context))" in header(result)
    assert "namespace default (default)" in header(result)


def fake_tools(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Executables that do nothing, first on PATH (the run must not start them)."""
    bin_dir = project.path / "fake-bin"
    bin_dir.mkdir()
    for name in names:
        (bin_dir / name).write_text("#!/bin/sh\nexit 99\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def test_cluster_kind_means_a_throwaway_kind_cluster(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tools(project, monkeypatch, "docker", "kind")
    project.makepyfile(TRIVIAL)
    result = project.runpytest("--cluster=kind")
    assert "context kind cluster (kind cluster (pytest-kind))" in header(result)


def test_cluster_kind_without_kind_is_one_usage_error_naming_make_kind_image(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytester's HOME is empty: no `make kind-image` record, and no kind on PATH.
    fake_tools(project, monkeypatch, "docker")
    project.makepyfile(TRIVIAL)
    result = project.runpytest("--cluster=kind")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --cluster=kind needs a kind binary*`make kind-image`*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_unknown_cluster_lists_profiles_and_contexts(project: pytest.Pytester) -> None:
    project.makepyfile(TRIVIAL)
    result = project.runpytest("--cluster=prod")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: unknown cluster 'prod' (--cluster)*Profiles: staging; contexts: dev, staging*"]
    )


def test_unknown_context_lists_contexts_and_profiles(project: pytest.Pytester) -> None:
    project.makepyfile(TRIVIAL)
    result = project.runpytest("--cluster=staging", "--context=stagign")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: kubeconfig context 'stagign' (--context) not found in kubeconfig "
            "*Contexts: dev, staging; profiles: staging*"
        ]
    )


def test_bad_profile_value_names_profile_and_key(project: pytest.Pytester) -> None:
    project.makefile(
        ".toml",
        pyproject='[tool.rolloutgate.clusters.staging]\ntimeouts = { rollout = "soon" }\n',
    )
    project.makepyfile(TRIVIAL)
    result = project.runpytest("--cluster=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: profile staging, key 'timeouts.rollout': invalid timeout 'soon'*seconds > 0*"]
    )


def test_bad_env_value_names_the_variable(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(TRIVIAL)
    monkeypatch.setenv("ROLLOUTGATE_ROLLOUT_TIMEOUT", "abc")
    result = project.runpytest("--cluster=staging")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: env ROLLOUTGATE_ROLLOUT_TIMEOUT: invalid timeout 'abc'*"])


def test_no_cluster_header_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TRIVIAL)
    result = pytester.runpytest()
    assert header(result) == "rolloutgate: no cluster given (gate tests need --cluster NAME)"


# resolve() directly: precedence, paths, and the profile's nested tables.


def contexts(_kubeconfig: str | None) -> list[str]:
    return ["dev", "staging"]


TOOL = {
    "manifests": "deploy",
    "namespace": "team",
    "timeouts": {"rollout": 100, "lock": 7},
    "clusters": {"staging": {"context": "staging", "timeouts": {"rollout": 600}}},
}


def test_resolve_precedence_and_sources(tmp_path: Path) -> None:
    cfg = resolve(
        {"rolloutgate_cluster": "staging", "rolloutgate_lock_timeout": 3.0},
        env={"ROLLOUTGATE_ENDPOINT_TIMEOUT": "9"},
        tool=TOOL,
        rootdir=tmp_path / "root",
        invocation_dir=tmp_path / "cwd",
        list_contexts=contexts,
    )
    assert (cfg.timeouts.rollout, cfg.sources["timeouts.rollout"]) == (600, "profile staging")
    assert (cfg.timeouts.lock, cfg.sources["timeouts.lock"]) == (3.0, "--lock-timeout")
    assert (cfg.timeouts.endpoint, cfg.sources["timeouts.endpoint"]) == (
        9,
        "env ROLLOUTGATE_ENDPOINT_TIMEOUT",
    )
    assert (cfg.namespace, cfg.sources["namespace"]) == ("team", "[tool.rolloutgate]")
    assert (cfg.timeouts.rollback, cfg.sources["timeouts.rollback"]) == (300, "default")
    assert cfg.rollback is True
    assert cfg.dry_run is False
    assert not cfg.kind


def test_resolve_paths_relative_to_where_they_were_given(tmp_path: Path) -> None:
    cfg = resolve(
        {"rolloutgate_cluster": "staging", "rolloutgate_golden": "g.json"},
        env={},
        tool=TOOL,
        rootdir=tmp_path / "root",
        invocation_dir=tmp_path / "cwd",
        list_contexts=contexts,
    )
    # From pyproject: relative to the rootdir; from the command line: to the invocation dir.
    assert cfg.manifests == tmp_path / "root" / "deploy"
    assert cfg.golden == tmp_path / "cwd" / "g.json"
    assert cfg.report == tmp_path / "root" / "reports" / "gate.json"


def test_resolve_without_cluster_needs_no_kubeconfig(tmp_path: Path) -> None:
    def unreadable(_kubeconfig: str | None) -> list[str]:
        raise AssertionError("contexts must not be read when no cluster is given")

    cfg = resolve(
        {}, env={}, tool=TOOL, rootdir=tmp_path, invocation_dir=tmp_path, list_contexts=unreadable
    )
    assert not cfg.enabled
    assert cfg.sources["cluster"] == "not given"


def test_resolve_flags_from_env(tmp_path: Path) -> None:
    cfg = resolve(
        {"rolloutgate_cluster": KIND},
        env={"ROLLOUTGATE_ROLLBACK": "false", "ROLLOUTGATE_DRY_RUN": "yes"},
        tool={},
        rootdir=tmp_path,
        invocation_dir=tmp_path,
        list_contexts=contexts,
    )
    assert cfg.kind
    assert cfg.rollback is False
    assert cfg.dry_run is True
    with pytest.raises(ConfigError, match=r"env ROLLOUTGATE_DRY_RUN: invalid boolean 'maybe'"):
        resolve(
            {"rolloutgate_cluster": KIND},
            env={"ROLLOUTGATE_DRY_RUN": "maybe"},
            tool={},
            rootdir=tmp_path,
            invocation_dir=tmp_path,
            list_contexts=contexts,
        )


def test_cluster_context_and_a_different_context_conflict(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"names a kubeconfig context.*give one of them"):
        resolve(
            {"rolloutgate_cluster": "dev", "rolloutgate_context": "staging"},
            env={},
            tool={},
            rootdir=tmp_path,
            invocation_dir=tmp_path,
            list_contexts=contexts,
        )


def test_verify_excludes_dry_run_and_recover(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"--verify checks the live release .*--dry-run validates.*give one"
    ):
        resolve(
            {"rolloutgate_cluster": KIND, "rolloutgate_verify": True},
            env={"ROLLOUTGATE_DRY_RUN": "1"},
            tool={},
            rootdir=tmp_path,
            invocation_dir=tmp_path,
            list_contexts=contexts,
        )
    cfg = resolve(
        {"rolloutgate_cluster": KIND},
        env={"ROLLOUTGATE_VERIFY": "yes"},
        tool={},
        rootdir=tmp_path,
        invocation_dir=tmp_path,
        list_contexts=contexts,
    )
    assert cfg.verify is True
    assert cfg.sources["verify"] == "env ROLLOUTGATE_VERIFY"


def test_unknown_protocol_is_a_usage_error_naming_the_presets(project: pytest.Pytester) -> None:
    project.makepyfile(TRIVIAL)
    result = project.runpytest("--cluster=staging", "--protocol=soap")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown protocol 'soap'; known presets: v2 *grpc (Open*"])


def test_without_pytest_kind_the_gate_defines_kubeconfig_itself(project: pytest.Pytester) -> None:
    # pytest-kind is an extra (rolloutgate[kind]); without it --kubeconfig is the gate's option.
    project.makepyfile(TRIVIAL)
    (project.path / "other-kubeconfig").write_text((project.path / "kubeconfig").read_text())
    result = project.runpytest(
        "-p", "no:pytest-kind", "--cluster=staging", "--kubeconfig=other-kubeconfig"
    )
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    assert "kubeconfig other-kubeconfig (--kubeconfig)" in header(result)


def test_cluster_kind_without_pytest_kind_is_one_usage_error_naming_the_extra(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_tools(project, monkeypatch, "docker", "kind")
    project.makepyfile(TRIVIAL)
    result = project.runpytest("-p", "no:pytest-kind", "--cluster=kind")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --cluster=kind makes its cluster through pytest-kind, which is not enabled*"]
    )
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
