"""A release that waits for the wave runner's word before it stands (``waves``: one gate per
cluster, run by a wave runner in another process).

A cluster's gate that passed its checks does not end its release yet: the release across all
clusters is good only when every cluster's is. It says so (``<dir>/<cluster>.ready``, a JSON
line) and waits, lease held and snapshot in hand, for the runner's decision
(``<dir>/<cluster>.decision``): ``keep`` (the release stands, recorded as verified) or
``rollback: <why>`` (a later wave failed, or the run was interrupted: the engine restores its
snapshot and verifies it as for any failure). Files in a directory the runner made: nothing
to listen on, nothing a stranger can reach, and a runner killed with SIGKILL leaves a decision
nobody writes, so the gate also watches its parent process: once the runner is gone, the
release is rolled back (an unconfirmed multi-cluster release must not stay).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

# The directory of a gate the wave runner started (an internal variable, not a setting).
ENV = "ROLLOUTGATE_WAVE_CONTROL"
KEEP = "keep"
ROLLBACK = "rollback"
# How often the decision file is looked for.
POLL_S = 0.2


@dataclass(frozen=True)
class Handoff:
    """Where a cluster's gate and the wave runner meet; ``parent``: the runner's pid."""

    directory: Path
    cluster: str
    parent: int

    @property
    def ready_file(self) -> Path:
        return self.directory / f"{self.cluster}.ready"

    @property
    def decision_file(self) -> Path:
        return self.directory / f"{self.cluster}.decision"

    def ready(self, summary: str) -> None:
        """Tell the runner the release passed its checks (written whole, then renamed)."""
        partial = self.ready_file.with_suffix(".partial")
        partial.write_text(json.dumps({"summary": summary, "pid": os.getpid()}) + "\n")
        partial.replace(self.ready_file)

    def wait(self, deadline: float) -> str | None:
        """None: keep the release; else why it is rolled back (the runner's word, the runner
        gone, no word before `deadline`, or an interrupt: the runner sends SIGTERM to a gate
        it has not yet seen passing, which may be this one, just passed)."""
        try:
            return self._wait(deadline)
        except KeyboardInterrupt as e:
            return f"interrupted ({e or 'Ctrl+C'}) while waiting for the wave runner's word"

    def _wait(self, deadline: float) -> str | None:
        while True:
            if self.decision_file.exists():
                word = self.decision_file.read_text().strip()
                if word == KEEP:
                    return None
                return word.removeprefix(f"{ROLLBACK}:").strip() or "the wave runner said so"
            if os.getppid() != self.parent:
                return "the wave runner is gone (killed?) before it confirmed the release"
            if time.monotonic() >= deadline:
                return "no word from the wave runner before the deadline"
            time.sleep(POLL_S)


def decide(directory: Path, cluster: str, rollback: str | None) -> None:
    """The runner's word to one cluster's gate: keep (None) or roll back (why)."""
    path = directory / f"{cluster}.decision"
    partial = path.with_suffix(".partial")
    partial.write_text(KEEP if rollback is None else f"{ROLLBACK}: {rollback}")
    partial.replace(path)


def from_env(value: str | None, cluster: str | None) -> Handoff | None:
    """The handoff of a gate the wave runner started (``ROLLOUTGATE_WAVE_CONTROL``)."""
    if not value or cluster is None:
        return None
    return Handoff(Path(value), cluster, os.getppid())
