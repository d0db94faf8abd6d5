"""kube.connect against the real cluster, a missing file, an unknown context, a dead server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import ClusterUnreachable, ConfigError

from .conftest import CONTEXT, KUBECONFIG


def test_contexts_lists_the_local_context(api: ApiClient) -> None:
    assert CONTEXT in kube.contexts(str(KUBECONFIG))


def test_unknown_context_lists_the_known_ones(api: ApiClient) -> None:
    with pytest.raises(
        ConfigError, match=rf"context 'staging' not found.*known contexts: .*{CONTEXT}"
    ):
        kube.connect(str(KUBECONFIG), "staging")


def test_missing_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kubeconfig .*nope does not exist"):
        kube.connect(str(tmp_path / "nope"), None)


def test_unreachable_server_is_named_and_fails_fast(api: ApiClient, tmp_path: Path) -> None:
    config = yaml.safe_load(KUBECONFIG.read_text())
    for cluster in config["clusters"]:
        # Port 9 (discard) on localhost: nothing listens there.
        cluster["cluster"]["server"] = "https://127.0.0.1:9"
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(yaml.safe_dump(config))
    started = time.monotonic()
    with pytest.raises(ClusterUnreachable, match=r"https://127\.0\.0\.1:9 did not answer") as info:
        kube.connect(str(dead), CONTEXT, timeout=3)
    assert time.monotonic() - started < 5  # no retries
    assert info.value.__cause__ is not None
