"""Promotion (``--promote``, on a Pass only): the normal release gate runs as a child pytest
process with the candidate tag and the canary's resolved settings — apply, rollout, checks,
rollback on failure, exactly as a release. A SIGTERM or Ctrl+C meanwhile is passed on to it and
its rollback waited for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rolloutgate.config import GateConfig


def promote_argv(cfg: GateConfig, tag: str, report: Path, junit: Path) -> list[str]:
    """The release gate's command line for ``tag``, from the resolved settings (so a profile,
    the environment and pyproject.toml apply to it as they did to the canary)."""
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--cluster={cfg.cluster}",
        f"--image-tag={tag}",
        f"--namespace={cfg.namespace}",
        f"--manifests={cfg.manifests}",
        f"--golden={cfg.golden}",
        f"--gate-report={report}",
        f"--junitxml={junit}",
        f"--rollout-timeout={cfg.timeouts.rollout:g}",
        f"--rollback-timeout={cfg.timeouts.rollback:g}",
        f"--lock-timeout={cfg.timeouts.lock:g}",
        f"--endpoint-timeout={cfg.timeouts.endpoint:g}",
        f"--max-restarts={cfg.max_restarts}",
    ]
    if cfg.kubeconfig is not None:
        argv.append(f"--kubeconfig={cfg.kubeconfig}")
    if cfg.context is not None and not cfg.sources.get("context", "").startswith("--cluster"):
        argv.append(f"--context={cfg.context}")
    if not cfg.rollback:
        argv.append("--no-rollback")
    return argv


def promote(
    cfg: GateConfig, tag: str, report: Path, write: Callable[[str], None], *, timeout: float
) -> dict[str, Any]:
    """Run the release gate for ``tag``; a SIGTERM or Ctrl+C meanwhile is passed on to it (it
    rolls back) and waited for. Returns what happened."""
    junit = report.with_suffix(".xml")
    argv = promote_argv(cfg, tag, report, junit)
    write(f"canary: promoting {tag} with the release gate: {' '.join(argv[2:])}")
    report.unlink(missing_ok=True)
    start = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cfg.rootdir, env=dict(os.environ))
    interrupted = None
    deadline = start + timeout
    while True:
        try:
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            break
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait(timeout=30)
            interrupted = f"promotion timed out after {timeout:g} s"
            break
        except KeyboardInterrupt as e:
            # The gate must finish its rollback: pass the signal on and keep waiting.
            interrupted = str(e) or "Ctrl+C"
            write(f"canary: {interrupted} during promotion; the release gate rolls back")
            proc.send_signal(signal.SIGTERM)
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
        "duration_s": round(time.monotonic() - start, 3),
        "interrupted": interrupted,
    }
