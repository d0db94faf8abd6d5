"""Fixtures for the tests of the local cluster tooling (devcluster/)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clusterkit import CRI_SOCKET, DEVCLUSTER, KUBECONFIG, TEST_IMAGE, Kubectl


@pytest.fixture(scope="session")
def cluster() -> Path:
    """Session: the kubeconfig of a running local cluster (skips, or fails in CI, without one)."""
    up = (
        KUBECONFIG.is_file()
        and subprocess.run(
            [str(DEVCLUSTER / "cluster-status.sh")], capture_output=True, timeout=30
        ).returncode
        == 0
    )
    if not up:
        message = "no local cluster: run `make cluster-up` first"
        if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return KUBECONFIG


@pytest.fixture(scope="session")
def test_image(cluster: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Session: a busybox image (httpd on 8080) made without Docker and imported into containerd."""
    out = tmp_path_factory.mktemp("image") / "busybox.tar"
    subprocess.run(
        [
            "python3",
            str(DEVCLUSTER / "image_archive.py"),
            "--tag",
            TEST_IMAGE,
            "--file",
            "/bin/busybox:/bin/busybox",
            "--text",
            "/www/index.html=hello from rolloutgate\n",
            "--output",
            str(out),
            "--",
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            "8080",
            "-h",
            "/www",
        ],
        check=True,
        timeout=60,
    )
    subprocess.run(
        ["ctr", "--address", CRI_SOCKET, "-n", "k8s.io", "images", "import", str(out)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return TEST_IMAGE


@pytest.fixture
def kubectl(cluster: Path) -> Iterator[Kubectl]:
    """Function: kubectl bound to a fresh, labelled namespace that is deleted afterwards (not
    waited for: no test looks at another's namespace)."""
    name = f"devcluster-test-{uuid.uuid4().hex[:8]}"
    Kubectl()("create", "namespace", name)
    Kubectl()("label", "namespace", name, "rolloutgate.test=devcluster")
    yield Kubectl(name)
    Kubectl()("delete", "namespace", name, "--wait=false")
