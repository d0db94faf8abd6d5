"""Promotion (``--promote``, on a Pass only): the normal release gate runs as a child pytest
process with the candidate tag and every setting of the canary run — apply, rollout, checks,
rollback on failure, exactly as a release.

- **Same settings**: the child gets the canary's own command line (options and test paths, from
  the directory it was started in, with its environment), without the canary's options, and
  with the candidate tag and its own reports. What a profile, the environment or
  pyproject.toml set applies to it as it did to the canary.
- **Same lease**: the canary holds the release's own lease from before its first arm; the child
  continues under it (``lock.HANDOFF_ENV`` names the lease and its holder), so no other release
  can slip in between the verdict and the promotion.
- **Signals**: a SIGTERM or Ctrl+C meanwhile is passed on to the child (it rolls back) and its
  end waited for; at the promotion's deadline the child gets SIGTERM too and its rollback is
  waited for (SIGKILL only if it outlives the rollback's own deadline).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolloutgate.canary import config as canary_config
from rolloutgate.config import GateConfig
from rolloutgate.release.lock import HANDOFF_ENV, Lease

# Options of the canary run the child must not get: the canary's own, and those the child is
# given anew (the candidate tag, its reports).
_FLAGS = frozenset({"--canary"}) | {
    s.flag for s in canary_config.SETTINGS if s.flag is not None and s.const is not None
}
# Beyond the rollback's own deadlines, how long a child gate told to stop is waited for.
GRACE_SLACK_S = 60.0
# A refused promotion says nothing about the candidate: inconclusive's status.
REFUSED_EXIT = 7
_WITH_VALUE = frozenset({"--image-tag", "--gate-report", "--junitxml", "--junit-xml"}) | {
    s.flag for s in canary_config.SETTINGS if s.flag is not None and s.const is None
}


def gate_args(args: Iterable[str]) -> list[str]:
    """The canary's command-line arguments without the options the child must not get
    (``--opt=value`` and ``--opt value`` forms); test paths and every other option stay."""
    kept: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        name = arg.split("=", 1)[0]
        if name in _FLAGS or name in _WITH_VALUE:
            skip_value = name in _WITH_VALUE and "=" not in arg
            continue
        kept.append(arg)
    return kept


@dataclass(frozen=True)
class Promotion:
    """How the canary was started: the child gate is started the same way."""

    args: tuple[str, ...]  # the canary's command-line arguments
    cwd: Path  # the directory it was started in
    program: tuple[str, ...] = (sys.executable, "-m", "pytest")

    def argv(self, tag: str, report: Path, junit: Path) -> list[str]:
        """The release gate's command line for ``tag``."""
        return [
            *self.program,
            *gate_args(self.args),
            f"--image-tag={tag}",
            f"--gate-report={report}",
            f"--junitxml={junit}",
        ]


def deadline_s(cfg: GateConfig) -> float:
    """How long a promotion may take: the gate's own waits, one after the other, and slack."""
    t = cfg.timeouts
    return t.lock + t.rollout + t.rollback + 2 * t.endpoint + 120


def promote(
    how: Promotion,
    cfg: GateConfig,
    tag: str,
    lease: Lease,
    report: Path,
    write: Callable[[str], None],
    *,
    timeout: float,
) -> dict[str, Any]:
    """Run the release gate for ``tag`` under ``lease``; returns what happened."""
    junit = report.with_suffix(".xml")
    argv = how.argv(tag, report, junit)
    shown = " ".join(argv[len(how.program) :])
    write(f"canary: promoting {tag} with the release gate: {shown}")
    report.unlink(missing_ok=True)
    start = time.monotonic()
    env = {**os.environ, HANDOFF_ENV: f"{lease.namespace}/{lease.name}={lease.holder}"}
    proc = subprocess.Popen(argv, cwd=how.cwd, env=env)
    interrupted = None
    # After a SIGTERM the child rolls back: its own deadlines, and slack.
    grace = cfg.timeouts.rollback + cfg.timeouts.endpoint + GRACE_SLACK_S
    deadline = start + timeout
    code: int | None = None
    while code is None:
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            interrupted = f"promotion timed out after {timeout:g} s"
            write(f"canary: {interrupted}; SIGTERM to the release gate, waiting for its rollback")
            code = _stop(proc, grace)
        except KeyboardInterrupt as e:
            # The gate must finish its rollback: pass the signal on and keep waiting.
            interrupted = str(e) or "Ctrl+C"
            write(f"canary: {interrupted} during promotion; the release gate rolls back")
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
    gate_report: dict[str, Any] = {}
    if report.exists():
        gate_report = json.loads(report.read_text(encoding="utf-8"))
    return {
        "tag": tag,
        "exit_status": code,
        "verdict": gate_report.get("verdict"),
        "cause": gate_report.get("cause"),
        "rollback": (gate_report.get("rollback") or {}).get("outcome"),
        "report": str(report),
        "junit": str(junit),
        "args": argv[len(how.program) :],
        "duration_s": round(time.monotonic() - start, 3),
        "interrupted": interrupted,
    }


def _stop(proc: subprocess.Popen[bytes], grace: float) -> int:
    """SIGTERM, then wait ``grace`` seconds for the rollback; SIGKILL only past that."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=30)


def refused(tag: str, baseline: str | None, live: str | None) -> dict[str, Any]:
    """The promotion's record when the live release changed during the canary."""
    now = f"runs {live}" if live else "is gone"
    return {
        "tag": tag,
        "exit_status": REFUSED_EXIT,
        "verdict": "refused",
        "refused": (
            f"the live release changed during the canary: it ran {baseline} when the canary "
            f"started and {now}; {tag} was judged against {baseline}, so it is not promoted. "
            "Run the canary again against what is live"
        ),
    }
