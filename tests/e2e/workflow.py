"""The shipped GitHub workflows' steps, run here as GitHub's runner runs them, and cancelled as
it cancels them.

A `run:` step without `shell:` is written to a file and run as `bash -e FILE` (GitHub's default
shell on Linux). Cancelling the job, the runner signals that bash — the step's entry process —
and nothing else: SIGINT, SIGTERM 7.5 s later, then it kills the process tree 2.5 s after that
(actions/runner#1309). A bash that waits for a command passes neither signal on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from gaterun import REPO, default_sigint

WORKFLOWS = REPO / ".github" / "workflows"
SIGTERM_AFTER_S = 7.5
KILL_AFTER_S = 2.5


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


@dataclass(frozen=True)
class Step:
    script: str
    env: dict[str, str]


def step(name: str, job: str, title: str) -> Step:
    """The `run` script and the literal `env` of step `title` of `job` in workflow `name`
    (expressions in env, `${{ ... }}`, are left to the caller to set)."""
    for s in workflow(name)["jobs"][job]["steps"]:
        if s.get("name") == title:
            env = {k: str(v) for k, v in (s.get("env") or {}).items() if "${{" not in str(v)}
            return Step(str(s["run"]), env)
    raise LookupError(f"{name}: job {job} has no step {title!r}")


def start(script: str, directory: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """The script as the runner starts it: written to a file, `bash -e FILE`, in a session of
    its own (its process tree), its output in `output(directory)` (a file: a pipe nobody reads
    while the gate runs could fill up and block it)."""
    path = directory / "step.sh"
    path.write_text(script)
    with output(directory).open("w") as log:
        return subprocess.Popen(
            ["bash", "-e", str(path)],
            cwd=directory,
            env=env,
            text=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=default_sigint,  # as the runner starts it, whatever started these tests
        )


def output(directory: Path) -> Path:
    return directory / "step.log"


@dataclass
class Cancelled:
    """What the cancel sequence did: when each signal went, whether the tree was killed."""

    sigterm_sent: bool = False
    tree_killed: bool = False


def cancel(proc: subprocess.Popen[str], *, each: Callable[[], None] = lambda: None) -> Cancelled:
    """GitHub's cancel: SIGINT to the entry process only, SIGTERM to it 7.5 s later, the whole
    process tree killed 2.5 s after that (unless it has ended). ``each`` runs every 20 ms
    meanwhile (to poll the cluster)."""
    done = Cancelled()
    start_at = time.monotonic()
    proc.send_signal(signal.SIGINT)
    while time.monotonic() - start_at < SIGTERM_AFTER_S + KILL_AFTER_S:
        each()
        if proc.poll() is not None:
            return done
        if not done.sigterm_sent and time.monotonic() - start_at >= SIGTERM_AFTER_S:
            proc.send_signal(signal.SIGTERM)
            done.sigterm_sent = True
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        done.tree_killed = True
    return done
