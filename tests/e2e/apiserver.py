"""Outages of the local cluster's kube-apiserver, for the fault tests only.

Other engineers run tests on the same cluster: every outage is short (a few seconds down plus
the server's own start-up), and the server is always brought back with the command line,
environment and working directory it ran with (read from /proc), its pid file updated the way
devcluster/lib.sh writes it, so `make cluster-status` still finds it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gaterun import KUBECONFIG, KUBECTL

STATE = Path(os.environ.get("ROLLOUTGATE_STATE_DIR", "/var/lib/rolloutgate"))
PID_FILE = STATE / "pids" / "kube-apiserver.pid"
LOG_FILE = STATE / "logs" / "kube-apiserver.log"
# The longest an outage may last in these tests (the cluster is shared).
MAX_DOWN_S = 30.0


def _start_ticks(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rpartition(")")[2].split()[19]


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a zombie keeps its /proc entry until reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _pid() -> int:
    return int(PID_FILE.read_text().split()[0])


def ready() -> bool:
    proc = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "get", "--raw", "/readyz"],
        capture_output=True,
        timeout=10,
    )
    return proc.returncode == 0


def _wait_ready(timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if ready():
                return time.monotonic() - start
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"kube-apiserver not ready {timeout:.0f} s after its restart")


@dataclass
class Outage:
    """What one outage measured, for docs/reliability.md."""

    kind: str
    started: float = 0.0
    stopped_s: float = 0.0  # SIGTERM → process gone
    down_s: float = 0.0  # process gone (or stopped) → ready again
    errors: list[str] = field(default_factory=list)


def restart(down_s: float = 8.0) -> Outage:
    """SIGTERM the kube-apiserver, keep it down `down_s` seconds, start it again with the same
    command line, and wait until /readyz answers. It is started again whatever happens."""
    assert down_s <= MAX_DOWN_S
    out = Outage("restart", started=time.monotonic())
    pid = _pid()
    argv = [
        a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    ]
    env_items = Path(f"/proc/{pid}/environ").read_bytes().rstrip(b"\0").split(b"\0")
    env = dict(item.split(b"=", 1) for item in env_items if b"=" in item)
    cwd = os.readlink(f"/proc/{pid}/cwd")
    gone_at = time.monotonic()
    try:
        os.kill(pid, signal.SIGTERM)
        # Its graceful shutdown drains requests and watches for up to ~15 s; the cluster is
        # shared, so after 5 s it is killed (a crash is an outage too).
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
        gone_at = time.monotonic()
        out.stopped_s = gone_at - out.started
        time.sleep(down_s)
    finally:
        # As devcluster's `start` does: setsid in the background of a shell that exits at once,
        # so the server is init's child (reaped when it exits), not a zombie of this process.
        launcher = subprocess.run(
            ["sh", "-c", 'setsid "$@" >>"$LOG" 2>&1 </dev/null & echo $!', "sh", *argv],
            env={**{k.decode(): v.decode() for k, v in env.items()}, "LOG": str(LOG_FILE)},
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        new_pid = int(launcher.stdout.strip())
        PID_FILE.write_text(f"{new_pid}\n{_start_ticks(new_pid)}\n")
        _wait_ready(60)
        out.down_s = time.monotonic() - gone_at
    return out


def hang(seconds: float = 12.0) -> Outage:
    """SIGSTOP the kube-apiserver for `seconds` (it accepts connections and answers nothing),
    then SIGCONT; continued whatever happens."""
    assert seconds <= MAX_DOWN_S
    out = Outage("hang", started=time.monotonic())
    pid = _pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    _wait_ready(60)
    out.down_s = time.monotonic() - out.started
    return out


@contextmanager
def in_background(action: str, **kwargs: float) -> Iterator[list[Outage]]:
    """Run `restart` or `hang` in a thread while the block goes on; the block's end waits for
    the server to be back. Yields a list that gets the Outage."""
    done: list[Outage] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            done.append(restart(**kwargs) if action == "restart" else hang(**kwargs))
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run, name=f"apiserver-{action}")
    thread.start()
    try:
        yield done
    finally:
        thread.join(timeout=120)
        if errors:
            raise errors[0]
