"""The tools measured side by side: the gate, `kubectl rollout status`, `helm upgrade --wait`.

Each runs as a child process whose exit is timed by a thread of its own (wall clock, sub-second),
and is stopped at a cap so a run always finishes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import probe
from bench.cluster import CONTEXT, IMAGE, KUBECONFIG, KUBECTL, REPO, Obj

# Pinned once, in devcluster/versions.env (devcluster/build-helm.sh builds it into the cache).
HELM_VERSION = next(
    line.split("=", 1)[1].strip()
    for line in (REPO / "devcluster" / "versions.env").read_text().splitlines()
    if line.startswith("HELM_VERSION=")
)
HELM = Path(f"~/.cache/rolloutgate/helm/{HELM_VERSION}/bin/helm").expanduser()
RELEASE = "iris"
TAG_PLACEHOLDER = "BENCH_TAG"
# kubectl -v=6 logs one line per HTTP request: `... round_trippers.go:NNN] "Response" verb="GET"`
# in recent klog text format, `GET https://... 200 OK in 3 milliseconds` in older ones.
KUBECTL_REQUEST = re.compile(r'verb="(GET|POST|PUT|PATCH|DELETE)"|\] (GET|POST|PUT|PATCH|DELETE) ')


@dataclass
class Proc:
    """One measured child process."""

    name: str
    popen: subprocess.Popen[bytes]
    started: float
    log: Path
    exited: float | None = None
    capped: bool = False
    stopped_at: float | None = None
    _done: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread(target=self._wait, daemon=True).start()

    def _wait(self) -> None:
        self.popen.wait()
        self.exited = time.time()
        self._done.set()

    @property
    def rc(self) -> int | None:
        return self.popen.returncode

    def wait(self, until: float) -> bool:
        """Wait until exit or the wall-clock time `until`; True when it exited."""
        return self._done.wait(timeout=max(0.0, until - time.time()))

    def stop(self, grace_s: float) -> None:
        """SIGTERM (the gate rolls back on it), then SIGKILL after `grace_s`."""
        if self._done.is_set():
            return
        self.stopped_at = time.time()
        self.popen.send_signal(signal.SIGTERM)
        if not self._done.wait(timeout=grace_s):
            self.popen.kill()
            self._done.wait(timeout=10)


def spawn(
    name: str,
    cmd: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    *,
    cwd: Path = REPO,
) -> Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        popen = subprocess.Popen(
            cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env or os.environ.copy()
        )
    return Proc(name, popen, time.time(), log)


def tempdir(prefix: str) -> str:
    return tempfile.mkdtemp(prefix=prefix)


def gate(
    namespace: str, tag: str, manifests: Path, workdir: Path, deadline_s: int, extra: list[str]
) -> Proc:
    """The gate as a user runs it, plus the observing probe plugin (bench/probe.py)."""
    env = os.environ.copy()
    env[probe.ENV] = str(workdir / "probe.json")
    # The in-pod checks (testinfra's kubectl backend) need kubectl on PATH.
    env["PATH"] = f"{KUBECTL.parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "bench.probe",
        "--cluster=local", f"--image-tag={tag}", f"--namespace={namespace}",
        f"--manifests={manifests}", f"--gate-report={workdir / 'gate.json'}",
        f"--rollout-timeout={deadline_s}", "-q", *extra,
    ]  # fmt: skip
    return spawn("gate", cmd, workdir / "gate.log", env)


def gate_rollout(workdir: Path) -> dict[str, Any] | None:
    """The probe's rollout record, as soon as the gate's rollout fixture has finished."""
    path = (workdir / "probe.json").with_suffix(".rollout")
    return json.loads(path.read_text()) if path.exists() else None


def gate_results(workdir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(probe record, gate report); empty dicts for what the gate did not write."""

    def load(name: str) -> dict[str, Any]:
        path = workdir / name
        return dict(json.loads(path.read_text())) if path.exists() else {}

    return load("probe.json"), load("gate.json")


def kubectl_rollout_status(namespace: str, log: Path) -> Proc:
    """No --timeout (kubectl's default, forever): the Deployment's progress deadline ends it."""
    cmd = [
        str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "--context", CONTEXT, "-n", namespace,
        "rollout", "status", "deployment/iris", "-v=6",
    ]  # fmt: skip
    return spawn("kubectl", cmd, log)


def kubectl_requests(log: Path) -> int:
    return sum(
        1 for line in log.read_text(errors="replace").splitlines() if KUBECTL_REQUEST.search(line)
    )


def helm_available() -> tuple[bool, str]:
    """Whether the pinned Helm is built (`make`-free: the benchmark builds it if Go is here)."""
    if HELM.exists():
        return True, f"helm {HELM_VERSION} at {HELM}"
    env = os.environ.copy()
    env["GOBIN"] = str(HELM.parent)
    try:
        subprocess.run(
            ["go", "install", f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"],
            env=env, check=True, capture_output=True, timeout=900,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        return False, f"helm {HELM_VERSION} could not be built: {e} {detail.decode()[-500:]}"
    return True, f"helm {HELM_VERSION} built into {HELM}"


def write_chart(objs: list[Obj], directory: Path) -> Path:
    """A chart of the example manifests whose only value is the image tag."""
    templates = directory / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    (directory / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": "iris-bench", "version": "0.1.0"})
    )
    (directory / "values.yaml").write_text(yaml.safe_dump({"tag": "v1"}))
    for obj in objs:
        text = yaml.safe_dump(obj).replace(
            f"{IMAGE}:{TAG_PLACEHOLDER}", f"{IMAGE}:{{{{ .Values.tag }}}}"
        )
        (templates / f"{obj['kind'].lower()}.yaml").write_text(text)
    return directory


def helm_upgrade(namespace: str, chart: Path, tag: str, log: Path, *, wait_s: int | None) -> Proc:
    """`helm upgrade --install`; with `--wait --timeout` when `wait_s` is given."""
    cmd = [
        str(HELM), "upgrade", "--install", RELEASE, str(chart), "-n", namespace,
        "--kubeconfig", str(KUBECONFIG), "--kube-context", CONTEXT, "--set", f"tag={tag}",
    ]  # fmt: skip
    if wait_s is not None:
        cmd += ["--wait", f"--timeout={wait_s}s"]
    return spawn("helm", cmd, log)


def commit(repo: Path = REPO) -> str:
    """The checkout's commit, `+dirty` when files differ from it: the code a run measured."""

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", "-C", str(repo), *args],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return ""
        return out.stdout.strip()

    sha = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return sha + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
