"""Which kubeconfig the gate reads, as kubectl would: an explicit file, else the $KUBECONFIG list
(missing entries skipped, contexts merged, first file wins), else ~/.kube/config; and the
in-cluster configuration inside a pod when there is no kubeconfig at all. No cluster: the
files here point at a closed port and nothing connects."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rolloutgate.errors import ConfigError
from rolloutgate.kube import connection as kube


def _kubeconfig(path: Path, context: str, current: str | None = None) -> Path:
    path.write_text(
        f"""\
apiVersion: v1
kind: Config
clusters:
- name: c-{context}
  cluster: {{server: "https://127.0.0.1:9"}}
users:
- name: u-{context}
  user: {{token: "x"}}
contexts:
- name: {context}
  context: {{cluster: c-{context}, user: u-{context}}}
current-context: {current or context}
"""
    )
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME without ~/.kube/config, no $KUBECONFIG, no pod token: nothing found by default."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kube, "IN_CLUSTER_TOKEN", tmp_path / "no-token")
    return home


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> Path:
    """What a pod has: the service host variable and a mounted ServiceAccount token."""
    token = tmp_path / "token"
    token.write_text("t")
    monkeypatch.setattr(kube, "IN_CLUSTER_TOKEN", token)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    return token


def test_kubeconfig_list_skips_missing_entries(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _kubeconfig(tmp_path / "a", "alpha")
    b = _kubeconfig(tmp_path / "b", "beta")
    missing = tmp_path / "gone"
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(missing), str(a), "", str(b)]))
    assert kube._kubeconfig_arg(None) == os.pathsep.join([str(a), str(b)])
    # Contexts of every existing file, merged as kubectl merges them.
    assert kube.contexts(None) == ["alpha", "beta"]


def test_kubeconfig_list_with_no_existing_entry_names_every_one(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "x"), str(tmp_path / "y")]))
    with pytest.raises(ConfigError, match=r"none of .*x, .*y \(\$KUBECONFIG\) exists"):
        kube._kubeconfig_arg(None)


def test_explicit_kubeconfig_must_exist_even_when_kubeconfig_env_lists_others(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "a", "alpha")))
    with pytest.raises(ConfigError, match=r"kubeconfig .*nope does not exist.*--kubeconfig"):
        kube._kubeconfig_arg(str(tmp_path / "nope"))


def test_default_path_is_home_kube_config(home: Path) -> None:
    (home / ".kube").mkdir()
    default = _kubeconfig(home / ".kube" / "config", "local")
    assert kube._kubeconfig_arg(None) == str(default)
    assert kube.contexts(None) == ["local"]


def test_no_kubeconfig_outside_a_pod_is_a_config_error(home: Path) -> None:
    assert not kube.in_cluster(None)
    with pytest.raises(ConfigError, match=r"no kubeconfig.*not a pod with a ServiceAccount token"):
        kube._kubeconfig_arg(None)


def test_in_a_pod_without_kubeconfig_the_in_cluster_configuration_is_used(pod: Path) -> None:
    assert kube.in_cluster(None)
    assert kube.contexts(None) == []  # no contexts to choose from: the pod's own identity


@pytest.mark.parametrize("source", ["argument", "KUBECONFIG", "home"])
def test_any_kubeconfig_wins_over_the_pod_identity(
    pod: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    # kubectl in a pod uses a kubeconfig when one is given or present, like here.
    config = _kubeconfig(tmp_path / "cfg", "alpha")
    if source == "argument":
        assert not kube.in_cluster(str(config))
        return
    if source == "KUBECONFIG":
        monkeypatch.setenv("KUBECONFIG", str(config))
    else:
        (home / ".kube").mkdir()
        _kubeconfig(home / ".kube" / "config", "alpha")
    assert not kube.in_cluster(None)
    assert kube.contexts(None) == ["alpha"]


def test_in_a_pod_a_kubeconfig_list_of_missing_files_falls_back_to_the_pod_identity(
    pod: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "gone"))
    assert kube.in_cluster(None)


def test_service_host_without_a_token_is_not_a_pod(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert not kube.in_cluster(None)
