"""In-pod checks of an image without a shell, on the local cluster.

The server is busybox's httpd alone (`rolloutgate/noshell:test`: one static binary, no
/bin/sh), serving a JSON answer, running as uid 10001 in a container named `web`. testinfra's
kubectl backend cannot exec into it; the gate runs the in-pod checks from an ephemeral
container of `debug_image` that shares the pod's process namespace, or — when that image
cannot start — skips them with the reason. The release passes either way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gaterun import CRI_SOCKET, KUBECONFIG, REPO, kubectl, loaded_tags
from manifestkit import fresh_namespace

IMAGE = "rolloutgate/noshell:test"
# Loaded by `make load-images`: Debian's shell and coreutils, USER 10001.
DEBUG_IMAGE = "rolloutgate/iris:v1"
MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: noshell}
spec:
  replicas: 1
  selector: {matchLabels: {app: noshell}}
  template:
    metadata: {labels: {app: noshell}}
    spec:
      terminationGracePeriodSeconds: 1
      securityContext: {runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001}
      containers:
      - name: web
        image: rolloutgate/noshell:test
        imagePullPolicy: IfNotPresent
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /predict.json, port: http}, periodSeconds: 1}
        resources: {requests: {cpu: 5m, memory: 8Mi}, limits: {memory: 32Mi}}
        securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: ["ALL"]}}
---
apiVersion: v1
kind: Service
metadata: {name: noshell}
spec:
  selector: {app: noshell}
  ports: [{name: http, port: 80, targetPort: http}]
"""
GOLDEN = {
    "protocol": "plain",
    "health": {"live": "/predict.json", "ready": None},
    "cases": [
        {
            "name": "static-answer",
            "request": {"method": "GET", "path": "/predict.json"},
            "expect": {"values": [{"path": "label", "data": "ok"}]},
        }
    ],
}
IN_POD = ("test_serving_process_is_not_root", "test_model_file_present")


def _missing(message: str) -> None:
    if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def noshell_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Module: the shell-less image, built from Debian's static busybox and imported into the
    node's containerd when missing."""
    if not KUBECONFIG.is_file():
        _missing("no local cluster: run `make cluster-up`")
    if not {"v1"} <= (loaded_tags("rolloutgate/iris") or set()):
        _missing(f"{DEBUG_IMAGE} not loaded: run `make load-images`")
    if "test" in (loaded_tags("rolloutgate/noshell") or set()):
        return IMAGE
    archive = tmp_path_factory.mktemp("image") / "noshell.tar"
    build = [
        sys.executable, str(REPO / "devcluster" / "image_archive.py"),
        "--tag", IMAGE,
        "--file", "/bin/busybox:/bin/busybox",
        "--text", '/www/predict.json={"label": "ok"}',
        "--text", "/model/model.bin=weights",
        "--output", str(archive),
        "--", "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www",
    ]  # fmt: skip
    subprocess.run(build, check=True, capture_output=True, timeout=60)
    subprocess.run(
        ["ctr", "--address", CRI_SOCKET, "-n", "k8s.io", "images", "import", str(archive)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return IMAGE


@pytest.fixture(scope="module")
def project(noshell_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Module: a team's repository for the shell-less server (the suite copied, its manifests,
    golden file and profile) and a fresh namespace."""
    root = tmp_path_factory.mktemp("noshell")
    shutil.copy(REPO / "conftest.py", root / "conftest.py")
    for part in ("tests/deploy", "tests/smoke"):
        shutil.copytree(REPO / part, root / part)
    (root / "manifests").mkdir()
    (root / "manifests" / "app.yaml").write_text(MANIFESTS)
    (root / "golden.json").write_text(json.dumps(GOLDEN))
    with fresh_namespace("e2e-noshell") as namespace:
        (root / "pyproject.toml").write_text(
            f"""\
[tool.pytest.ini_options]
testpaths = ["tests/deploy", "tests/smoke"]

[tool.rolloutgate]
manifests = "manifests"
golden = "golden.json"
model_file = "/model/model.bin"

[tool.rolloutgate.clusters.local]
kubeconfig = "{KUBECONFIG}"
context = "local"
namespace = "{namespace}"
"""
        )
        yield root


def gate(root: Path, debug_image: str) -> tuple[int, str, dict[str, Any]]:
    report = root / "reports" / "gate.json"
    report.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cluster=local"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ROLLOUTGATE_DEBUG_IMAGE": debug_image},
    )
    return proc.returncode, proc.stdout + proc.stderr, json.loads(report.read_text())


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {i["nodeid"].rsplit("::", 1)[-1]: i["outcome"] for i in report["tests"]["items"]}


def test_a_debug_image_that_cannot_start_skips_the_in_pod_checks_with_the_reason(
    project: Path,
) -> None:
    code, output, report = gate(project, "rolloutgate/never-built:none")
    assert code == 0, output[-4000:]
    assert report["verdict"] == "pass"
    assert {outcomes(report)[name] for name in IN_POD} == {"skipped"}
    reasons = {s["nodeid"].rsplit("::", 1)[-1]: s["reason"] for s in report["skipped"]}
    for name in IN_POD:
        assert reasons[name].startswith(
            f"not possible: image {IMAGE} of container web has no shell (/bin/sh), and "
            "ephemeral container rolloutgate-debug-"
        ), reasons[name]
        assert "will not start: ErrImagePull" in reasons[name], reasons[name]
    # The terminal summary lists them with their reason too.
    assert f"  {', '.join(IN_POD)}: not possible: image {IMAGE}" in output


def test_an_image_without_a_shell_is_checked_from_an_ephemeral_container(project: Path) -> None:
    code, output, report = gate(project, DEBUG_IMAGE)
    assert code == 0, output[-4000:]
    assert report["verdict"] == "pass"
    assert {outcomes(report)[name] for name in IN_POD} == {"passed"}, report["skipped"]
    assert "in-pod checks from ephemeral container rolloutgate-debug-" in output
    namespace = next(
        line.split('"')[1] for line in (project / "pyproject.toml").read_text().splitlines()
        if line.startswith("namespace")
    )  # fmt: skip
    pods = json.loads(
        kubectl("get", "pods", "-l", "app=noshell", "-o", "json", namespace=namespace)
    )
    debug = [c for p in pods["items"] for c in p["spec"].get("ephemeralContainers", [])]
    assert {(c["image"], c["targetContainerName"]) for c in debug} >= {(DEBUG_IMAGE, "web")}
