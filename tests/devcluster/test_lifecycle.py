"""cluster-up is idempotent; cluster-down stops everything and cluster-up works again.

Marked `disruptive`: stopping the cluster breaks every other test on it, so `make test` runs
this module alone, after the parallel run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from clusterkit import CRI_SOCKET, DEVCLUSTER, Kubectl, k8s_bin

pytestmark = pytest.mark.disruptive

STATE = Path("/var/lib/rolloutgate")


def run(script: str, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(DEVCLUSTER / script)], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def pids() -> dict[str, str]:
    return {p.stem: p.read_text().strip() for p in (STATE / "pids").glob("*.pid")}


# Clients that may run from the same directory (other tests' kubectl, crictl) are not the cluster.
CLIENTS = ("pgrep", "/kubectl ", "/crictl ", "kubectl --", "crictl --")


def cluster_processes() -> list[str]:
    pattern = f"{CRI_SOCKET}|{k8s_bin()}/|{STATE}/conf/"
    out = subprocess.run(["pgrep", "-a", "-f", pattern], capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if not any(c in line for c in CLIENTS)]


def test_cluster_up_twice_leaves_the_same_healthy_cluster(cluster: object) -> None:
    before = pids()
    proc = run("cluster-up.sh", timeout=180)
    assert "already running" in proc.stderr
    assert pids() == before
    assert "Ready" in Kubectl()("get", "nodes")


def test_cluster_down_stops_everything_and_up_works_again(cluster: object) -> None:
    try:
        run("cluster-down.sh", timeout=180)
        assert cluster_processes() == []
        assert "rg0" not in subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
        status = subprocess.run([str(DEVCLUSTER / "cluster-status.sh")], capture_output=True)
        assert status.returncode == 3
    finally:
        # Whatever failed above, every later test needs the cluster back.
        run("cluster-up.sh", timeout=300)
    Kubectl()("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s", timeout=70)
