"""Outages of the local cluster's components (devcluster/), for the fault tests and the fault
benchmark (`python -m bench faults`).

Each component of the project's local cluster is a host process started by devcluster/lib.sh's
`start`, its pid (and start time) in /var/lib/rolloutgate/pids/NAME.pid. An outage stops one
(SIGTERM, or SIGKILL as a crash or an OOM kill does), keeps it down, and starts it again with
the command line, environment and working directory it ran with (read from /proc), its pid file
written the way lib.sh writes it, so `make cluster-status` and `make cluster-down` still find
it. It is started again whatever happens: other engineers' tests run on the same cluster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.cluster import KUBECTL

REPO = Path(__file__).resolve().parents[1]
STATE = Path(os.environ.get("ROLLOUTGATE_STATE_DIR", "/var/lib/rolloutgate"))
KUBECONFIG = REPO / ".cluster" / "kubeconfig"
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "containerd",
)
# How long a component's graceful shutdown may take before it is killed (the apiserver drains
# requests and watches for up to ~15 s; the cluster is shared).
STOP_GRACE_S = 5.0
# How long a component may take to be ready again after its start.
READY_TIMEOUT_S = 120.0


def pid_file(name: str) -> Path:
    return STATE / "pids" / f"{name}.pid"


def log_file(name: str) -> Path:
    return STATE / "logs" / f"{name}.log"


def _start_ticks(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[19]


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie keeps its /proc entry until reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def pid_of(name: str) -> int:
    return int(pid_file(name).read_text().split()[0])


def kubectl(*args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def apiserver_ready() -> bool:
    try:
        return kubectl("get", "--raw", "/readyz").returncode == 0
    except subprocess.TimeoutExpired:
        return False


def node_ready() -> bool:
    try:
        out = kubectl(
            "get",
            "nodes",
            "-o",
            'jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}',
        )
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0 and out.stdout.split() == ["True"] * len(out.stdout.split()) != []


def ready(name: str) -> bool:
    """The component is doing its job again, as far as the API shows it: the API server (and
    etcd behind it) answers /readyz; the kubelet's node is Ready; the others run (the API
    server answering)."""
    if name == "kubelet":
        return apiserver_ready() and node_ready()
    if name in ("kube-controller-manager", "kube-scheduler", "containerd"):
        return alive(pid_of(name)) and apiserver_ready()
    return apiserver_ready()


def wait_ready(name: str, timeout: float = READY_TIMEOUT_S) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if ready(name):
            return time.monotonic() - start
        time.sleep(0.3)
    raise RuntimeError(f"{name} not ready {timeout:.0f} s after its start")


@dataclass
class Stopped:
    """A component stopped, and how to start it again as it ran."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: str


def stop(name: str, how: str = "term") -> Stopped:
    """Stop the component: SIGTERM (killed after STOP_GRACE_S), or SIGKILL at once (`kill`)."""
    pid = pid_of(name)
    argv = [
        a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    ]
    env_items = Path(f"/proc/{pid}/environ").read_bytes().rstrip(b"\0").split(b"\0")
    env = {
        k.decode(): v.decode()
        for k, v in (item.split(b"=", 1) for item in env_items if b"=" in item)
    }
    cwd = os.readlink(f"/proc/{pid}/cwd")
    os.kill(pid, signal.SIGKILL if how == "kill" else signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    return Stopped(name, argv, env, cwd)


def start(stopped: Stopped) -> None:
    """Start it again as devcluster's `start` does: setsid in the background of a shell that
    exits at once, so the component is init's child, not a zombie of this process."""
    launcher = subprocess.run(
        ["sh", "-c", 'setsid "$@" >>"$LOG" 2>&1 </dev/null & echo $!', "sh", *stopped.argv],
        env={**stopped.env, "LOG": str(log_file(stopped.name))},
        cwd=stopped.cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    pid = int(launcher.stdout.strip())
    pid_file(stopped.name).write_text(f"{pid}\n{_start_ticks(pid)}\n")


@dataclass
class Outage:
    """What one outage measured."""

    component: str
    how: str
    started: float = 0.0
    stopped_s: float = 0.0  # the signal → process gone
    down_s: float = 0.0  # process gone → ready again
    errors: list[str] = field(default_factory=list)


def outage(
    name: str, down_s: float, *, how: str = "term", after: Callable[[], None] | None = None
) -> Outage:
    """Stop the component, keep it down `down_s` seconds, start it again and wait until it is
    ready. It is started again whatever happens (``after`` runs while it is down, at the end)."""
    out = Outage(name, how, started=time.monotonic())
    stopped = stop(name, how)
    gone_at = time.monotonic()
    out.stopped_s = gone_at - out.started
    try:
        time.sleep(down_s)
        if after is not None:
            after()
    finally:
        start(stopped)
        wait_ready(name)
        out.down_s = time.monotonic() - gone_at
    return out


def hang(name: str, seconds: float) -> Outage:
    """SIGSTOP the component for `seconds` (the API server then accepts connections and answers
    nothing), then SIGCONT; continued whatever happens."""
    out = Outage(name, "hang", started=time.monotonic())
    pid = pid_of(name)
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_ready(name)
    out.down_s = time.monotonic() - out.started
    return out


@contextmanager
def in_background(action: Callable[[], Outage]) -> Iterator[list[Outage]]:
    """Run ``action`` (an outage) in a thread while the block goes on; the block's end waits for
    the component to be back. Yields a list that gets the Outage."""
    done: list[Outage] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            done.append(action())
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run, name="controlplane-outage")
    thread.start()
    try:
        yield done
    finally:
        thread.join(timeout=READY_TIMEOUT_S + 600)
        if errors:
            raise errors[0]
