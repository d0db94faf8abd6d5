"""Helpers for the tests of the local cluster tooling (devcluster/).

These tests drive the real cluster with the real kubectl, as a user of `make cluster-up` would.
They skip when no cluster is up, unless ROLLOUTGATE_REQUIRE_CLUSTER=1 (set by .ci/run), where a
missing cluster is a failure: CI must never pass by skipping.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
DEVCLUSTER = REPO / "devcluster"
KUBECONFIG = REPO / ".cluster" / "kubeconfig"
CRI_SOCKET = "/run/rolloutgate/containerd/containerd.sock"
TEST_IMAGE = "rolloutgate/busybox:test"


def versions() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in (DEVCLUSTER / "versions.env").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    return {k.strip(): v.strip() for k, v in pairs}


def k8s_bin() -> Path:
    cache = Path(os.environ.get("ROLLOUTGATE_CACHE", Path.home() / ".cache" / "rolloutgate"))
    return cache / "k8s" / versions()["K8S_VERSION"] / "bin"


class Kubectl:
    """The cluster's own kubectl, bound to the local kubeconfig; every call has a timeout."""

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace

    def argv(self, *args: str) -> list[str]:
        base = [str(k8s_bin() / "kubectl"), "--kubeconfig", str(KUBECONFIG)]
        if self.namespace:
            base += ["--namespace", self.namespace]
        return [*base, *args]

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        __tracebackhide__ = True
        proc = subprocess.run(
            self.argv(*args), input=stdin, capture_output=True, text=True, timeout=timeout
        )
        if proc.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc.stdout


def wait_until(what: str, check: Callable[[], T | None], timeout: float) -> T:
    """Poll `check` until it returns a value; fail naming `what` after `timeout` seconds."""
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(1)
