"""Runs the gate as a user would — `python -m pytest --cluster=local ...` in the repo — and reads
what it left: exit code, output, JSON report, and the live objects through kubectl."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBECONFIG = REPO / ".cluster" / "kubeconfig"
CRI_SOCKET = "/run/rolloutgate/containerd/containerd.sock"
K8S_VERSION = next(
    line.split("=", 1)[1].strip()
    for line in (REPO / "devcluster" / "versions.env").read_text().splitlines()
    if line.startswith("K8S_VERSION=")
)
KUBECTL = Path(os.environ.get("ROLLOUTGATE_CACHE", Path.home() / ".cache" / "rolloutgate"))
KUBECTL = KUBECTL / "k8s" / K8S_VERSION / "bin" / "kubectl"
# Annotations the controller owns; they legitimately change on every rollout and rollback.
CONTROLLER_ANNOTATIONS = {"deployment.kubernetes.io/revision"}


@dataclass
class Result:
    returncode: int
    output: str
    report: dict[str, Any]


def kubectl(
    *args: str,
    namespace: str | None = None,
    timeout: float = 60,
    stdin: str | None = None,
    check: bool = True,
) -> str:
    """kubectl as the cluster admin; its output (check=False: whatever the exit code)."""
    __tracebackhide__ = True
    argv = [str(KUBECTL), "--kubeconfig", str(KUBECONFIG)]
    if namespace:
        argv += ["--namespace", namespace]
    proc = subprocess.run(
        [*argv, *args], capture_output=True, text=True, timeout=timeout, input=stdin
    )
    if check and proc.returncode != 0:
        pytest.fail(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc.stdout


def gate_argv(namespace: str, report: Path, *args: str, cluster: str = "local") -> list[str]:
    """The gate's command line for profile `cluster`; a `--cluster` in `args` wins (argparse
    keeps the last value given)."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--cluster={cluster}",
        f"--namespace={namespace}",
        f"--gate-report={report}",
        *args,
    ]


def run_gate(
    namespace: str,
    report: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    cluster: str = "local",
) -> Result:
    """Run one gate to its end (under a deadline) and return what it said."""
    report.unlink(missing_ok=True)
    proc = subprocess.run(
        gate_argv(namespace, report, *args, cluster=cluster),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return Result(proc.returncode, proc.stdout + proc.stderr, data)


def default_sigint() -> None:
    """``preexec_fn`` of a gate these tests will interrupt: SIGINT back to its default. A job
    started in the background by a non-interactive shell (`nohup ... &`, some CI harnesses)
    ignores SIGINT, an ignored signal stays ignored across exec, and Python then installs no
    KeyboardInterrupt: the gate would never see the Ctrl+C or the cancel the test sends (a
    cold `.ci/run` started that way failed five tests so). A terminal, and GitHub's runner,
    start their commands with the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class RunningGate:
    """A gate started in the background, to be read line by line and signalled."""

    def __init__(
        self,
        namespace: str,
        report: Path,
        *args: str,
        env: dict[str, str] | None = None,
        cluster: str = "local",
    ) -> None:
        report.unlink(missing_ok=True)
        self.report = report
        self.lines: list[str] = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            gate_argv(namespace, report, *args, cluster=cluster),
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=default_sigint,
        )

    def wait_for_line(self, needle: str, timeout: float) -> str:
        """Read output until a line contains `needle`; fail after `timeout` seconds."""
        __tracebackhide__ = True
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        os.set_blocking(self.proc.stdout.fileno(), False)
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line:
                self.lines.append(line)
                if needle in line:
                    return line
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.1)
        pytest.fail(f"gate never printed {needle!r}; output so far:\n{''.join(self.lines)}")

    def terminate_and_wait(self, timeout: float) -> Result:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> Result:
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), True)
        out, _ = self.proc.communicate(timeout=timeout)
        data = json.loads(self.report.read_text()) if self.report.exists() else {}
        return Result(self.proc.returncode, "".join(self.lines) + (out or ""), data)


def deployment_state(namespace: str, name: str = "iris") -> dict[str, Any]:
    """What a rollback must restore exactly: the whole spec, annotations (but the controller's)
    and labels."""
    dep = json.loads(kubectl("get", "deployment", name, "-o", "json", namespace=namespace))
    annotations = {
        k: v
        for k, v in dep["metadata"].get("annotations", {}).items()
        if k not in CONTROLLER_ANNOTATIONS
    }
    return {
        "spec": dep["spec"],
        "annotations": annotations,
        "labels": dep["metadata"].get("labels", {}),
    }


def namespace_objects(namespace: str) -> dict[str, str]:
    """Every object of the kinds the gate touches, by kind/name → resourceVersion."""
    items = json.loads(
        kubectl("get", "deployments,replicasets,services,leases", "-o", "json", namespace=namespace)
    )["items"]
    return {f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in items}


def loaded_tags(repo: str) -> set[str] | None:
    """Tags of `repo` (e.g. "rolloutgate/iris") in the cluster's containerd; None if unreadable."""
    proc = subprocess.run(
        ["ctr", "--address", CRI_SOCKET, "-n", "k8s.io", "images", "ls", "-q"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if proc.returncode != 0:
        return None
    return {line.rsplit(":", 1)[-1] for line in proc.stdout.splitlines() if f"/{repo}:" in line}


def live_pods_ready_with(namespace: str, tag: str, app: str = "iris") -> bool:
    """Every live pod of `app` is ready and runs rolloutgate/<app>:<tag>."""
    pods = json.loads(
        kubectl(
            "get", "pods", "-l", f"app.kubernetes.io/name={app}", "-o", "json", namespace=namespace
        )
    )["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    images = {c["image"] for p in live for c in p["spec"]["containers"]}
    ready = all(
        {c["type"]: c["status"] for c in p["status"].get("conditions", [])}.get("Ready") == "True"
        for p in live
    )
    return bool(live) and ready and images == {f"rolloutgate/{app}:{tag}"}


@dataclass(frozen=True)
class Example:
    """An example model server the gate runs on: its profile, and the names its manifests give
    the Deployment, the Service, the app label and the image (all `name`)."""

    name: str
    profile: str
    manifests: Path
    # The Service's port, for tests that talk to the Service's ClusterIP.
    port: int

    @property
    def image(self) -> str:
        return f"rolloutgate/{self.name}"

    @property
    def lease(self) -> str:
        return f"rolloutgate-{self.name}"

    @property
    def record(self) -> str:
        """The release record's ConfigMap."""
        return f"rolloutgate-{self.name}-release"

    @property
    def rollout_line(self) -> str:
        """What the gate prints once it waits for the Deployment's rollout."""
        return f"rollout Deployment/{self.name}:"

    def run(self, namespace: str, report: Path, *args: str, **kwargs: Any) -> Result:
        """`run_gate` with this example's profile."""
        return run_gate(namespace, report, *args, cluster=self.profile, **kwargs)

    def start(self, namespace: str, report: Path, *args: str, **kwargs: Any) -> RunningGate:
        """A `RunningGate` with this example's profile."""
        return RunningGate(namespace, report, *args, cluster=self.profile, **kwargs)

    def state(self, namespace: str) -> dict[str, Any]:
        return deployment_state(namespace, self.name)

    def ready_with(self, namespace: str, tag: str) -> bool:
        return live_pods_ready_with(namespace, tag, app=self.name)

    def copy(
        self, target: Path, *, replicas: int | None = None, extra: dict[str, str] | None = None
    ) -> Path:
        """A copy of the manifests in `target` (replacing what is there), the Deployment at
        `replicas` (None: as shipped), plus `extra` files (name -> text)."""
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(self.manifests, target)
        if replicas is not None:
            path = target / "deployment.yaml"
            dep = yaml.safe_load(path.read_text())
            dep["spec"]["replicas"] = replicas
            path.write_text(yaml.safe_dump(dep, sort_keys=False))
        for name, content in (extra or {}).items():
            (target / name).write_text(content)
        return target


IRIS = Example("iris", "local", REPO / "fixtures" / "manifests", 8080)
WINE = Example("wine", "local-wine", REPO / "fixtures" / "wine" / "manifests", 8080)
# The gate's mechanics are tested on this one: ready about a second after its container starts.
PENGUIN = Example("penguin", "local-penguin", REPO / "fixtures" / "penguin" / "manifests", 80)
