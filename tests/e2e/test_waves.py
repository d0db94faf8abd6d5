"""A release across two real clusters on one machine, in two waves: the project's local
cluster first, then a kind cluster (`make kind-image`). v2 passes on both; then a release whose
second wave crashes: the kind cluster's gate fails and rolls back, and the local cluster's gate,
which had passed and was waiting for the runner's word, rolls back too; both verified. One JSON
report and one JUnit file with a row per cluster.

In the second run the kind cluster's node holds the `crash` build under the tag `v1`, as a
region whose registry serves a broken build would: v1 passes in the first wave and crashes in
the second."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from gaterun import IRIS, KUBECONFIG, KUBECTL, REPO, live_pods_ready_with
from manifestkit import fresh_namespace

from rolloutgate import kube
from rolloutgate.errors import ConfigError
from rolloutgate.kube.kindcluster import docker_has_image, load_images, resolve, wait_nodes_ready

# Loaded into the kind node; there, v1 is the crash build (tagged in its containerd).
TAGS = ("v2", "crash")


def _missing(message: str) -> None:
    if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def kind_cluster(
    e2e_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, str]]:
    """Module: (kubeconfig, context) of a kind cluster of our own holding the example images;
    deleted afterwards (heavy beside the local cluster: only for this module)."""
    try:
        tools = resolve(None, None, env=os.environ)
    except ConfigError as e:
        _missing(str(e))
    images = [f"rolloutgate/iris:{t}" for t in TAGS]
    if not all(docker_has_image(i) for i in images):
        _missing(f"example images not all in Docker ({', '.join(images)}): run `make images`")
    name = f"rg-waves-{uuid.uuid4().hex[:6]}"
    kubeconfig = tmp_path_factory.mktemp("kind") / "kubeconfig"
    create = [tools.kind, "create", "cluster", f"--name={name}", f"--kubeconfig={kubeconfig}"]
    try:
        subprocess.run(
            create + ([f"--image={tools.image}"] if tools.image else []),
            check=True, timeout=600, capture_output=True, text=True,
        )  # fmt: skip
        api = kube.connect(str(kubeconfig), f"kind-{name}", timeout=10)
        try:
            deadline = time.monotonic() + 300
            wait_nodes_ready(api, deadline)
            load_images(tools.kind, name, images, deadline, offline=tools.offline,
                        has_image=docker_has_image)  # fmt: skip
            subprocess.run(
                ["docker", "exec", f"{name}-control-plane", "ctr", "-n", "k8s.io", "images",
                 "tag", "docker.io/rolloutgate/iris:crash", "docker.io/rolloutgate/iris:v1"],
                check=True, timeout=60, capture_output=True,
            )  # fmt: skip
        finally:
            api.close()  # type: ignore[no-untyped-call]
        yield kubeconfig, f"kind-{name}"
    finally:
        subprocess.run([tools.kind, "delete", "cluster", f"--name={name}"], timeout=180,
                       check=False, capture_output=True)  # fmt: skip


def project(target: Path, local_ns: str, kind: tuple[Path, str]) -> Path:
    """The gate suite with two cluster profiles and a profile of waves over them."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    shutil.copy(REPO / "conftest.py", target / "conftest.py")
    for part in ("tests/deploy", "tests/smoke"):
        shutil.copytree(REPO / part, target / part)
    shutil.copytree(REPO / "fixtures" / "golden", target / "golden")
    IRIS.copy(target / "manifests", replicas=1)

    (target / "pyproject.toml").write_text(
        f"""\
[tool.pytest.ini_options]
testpaths = ["tests/deploy", "tests/smoke"]

[tool.rolloutgate]
manifests = "manifests"
golden = "golden/iris.json"
images = ["rolloutgate/iris"]

[tool.rolloutgate.clusters.w-local]
kubeconfig = "{KUBECONFIG}"
context = "local"
namespace = "{local_ns}"

[tool.rolloutgate.clusters.w-kind]
kubeconfig = "{kind[0]}"
context = "{kind[1]}"
namespace = "iris-waves"

[tool.rolloutgate.clusters.regions]
waves = [["w-local"], ["w-kind"]]
"""
    )
    return target


def run_waves(root: Path, *args: str) -> tuple[int, str, dict, ET.Element]:
    report, junit = root / "reports" / "gate.json", root / "reports" / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cluster=regions",
         f"--gate-report={report}", f"--junitxml={junit}", *args],
        cwd=root, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    data = json.loads(report.read_text()) if report.exists() else {}
    rows = ET.parse(junit).getroot() if junit.exists() else ET.Element("none")
    return proc.returncode, proc.stdout + proc.stderr, data, rows


def kind_image(kind: tuple[Path, str]) -> set[str]:
    """Images of the live iris pods on the kind cluster."""
    out = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kind[0]), "--context", kind[1], "get", "pods",
         "-n", "iris-waves", "-l", "app.kubernetes.io/name=iris", "-o", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return {
        c["image"]
        for p in json.loads(out.stdout)["items"]
        if not p["metadata"].get("deletionTimestamp")
        for c in p["spec"]["containers"]
    }


def test_waves_pass_on_both_clusters_and_a_failing_second_wave_rolls_back_both(
    kind_cluster: tuple[Path, str], tmp_path: Path
) -> None:
    with fresh_namespace("e2e-waves") as local_ns:
        root = project(tmp_path / "p", local_ns, kind_cluster)
        code, out, report, junit = run_waves(root, "--image-tag=v2")
        assert code == 0, out[-6000:]
        assert report["verdict"] == "pass", report["cause"]
        clusters = {c["cluster"]: c for c in report["clusters"]}
        assert [(c["cluster"], c["wave"], c["verdict"]) for c in report["clusters"]] == [
            ("w-local", 1, "pass"),
            ("w-kind", 2, "pass"),
        ]
        assert clusters["w-local"]["told"] == "keep"
        rows = {tc.get("name"): tc for tc in junit.iter("testcase")}
        assert set(rows) == {"w-local", "w-kind"}, out[-3000:]
        assert not any(tc.find("failure") is not None for tc in rows.values())
        assert live_pods_ready_with(local_ns, "v2")
        assert kind_image(kind_cluster) == {"rolloutgate/iris:v2"}
        print(
            f"FIGURE waves wall {report['phases_s']}; per cluster "
            + ", ".join(f"{c['cluster']} {c['duration_s']} s" for c in report["clusters"])
        )

        # Wave 1 passes (v2 -> v1 on the local cluster) and waits; wave 2 crashes on kind.
        code, out, report, junit = run_waves(root, "--image-tag=v1")
        assert code == 1, out[-6000:]
        clusters = {c["cluster"]: c for c in report["clusters"]}
        assert report["verdict"] == "rolled-back", report
        assert report["cause"].startswith("cluster w-kind: "), report["cause"]
        assert "CrashLoopBackOff" in report["cause"] or "exited" in report["cause"]
        kind_row, local_row = clusters["w-kind"], clusters["w-local"]
        assert kind_row["rollback_verified"] is True, kind_row
        assert "rolled back to v2, verified" in kind_row["rollback"]
        # The first wave had passed: it was told to roll back, and did, verified.
        assert local_row["told"].startswith("cluster w-kind: "), local_row
        assert local_row["verdict"] == "rolled-back", local_row
        assert local_row["rollback_verified"] is True, local_row
        assert "rolled back to v2, verified" in local_row["rollback"]
        print(
            f"FIGURE waves rollback wall {report['phases_s']}; per cluster "
            + ", ".join(f"{c['cluster']} {c['duration_s']} s" for c in report["clusters"])
        )
        rows = {tc.get("name"): tc for tc in junit.iter("testcase")}
        assert rows["w-kind"].find("failure") is not None
        assert rows["w-local"].find("failure") is not None
        assert live_pods_ready_with(local_ns, "v2")
        assert kind_image(kind_cluster) == {"rolloutgate/iris:v2"}
