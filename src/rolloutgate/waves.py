"""A release across several clusters, in waves: one gate per cluster, a wave runner above them.

A profile names ordered waves of cluster profiles (``waves = [["staging"], ["eu", "us"]]``).
The runner starts the gate of every cluster of a wave at once, each a child ``pytest
--cluster=<member>`` process with its own engine, lease, release record, checks, JSON report
and JUnit file. A gate that passes does not end its release: it waits, lease held and snapshot
in hand, for the runner's word (``release.handoff``). The next wave starts only when every
cluster of this one has passed; when all have, every gate is told to keep its release. When
any fails (or the run is interrupted), no further wave starts, the failing gate rolls back as
it always does, and every gate still waiting is told to roll back: each restores its own
snapshot and verifies it with the same checks. The verdict names the cluster and its check.

Nothing here talks to a cluster: the gates do. Progress lines of every gate are passed on,
prefixed with the cluster's name; each gate's whole output goes to a log file beside its
report.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from rolloutgate import config as cfgmod
from rolloutgate.config import GateConfig
from rolloutgate.phases import timed
from rolloutgate.release import handoff

Verdict = Literal["pass", "fail", "rolled-back"]
# How often the runner looks at its gates.
POLL_S = 0.2
# Settings a wave's gates do not take from the runner's command line: each cluster's own.
OWN = frozenset({"kubeconfig", "context", "report"})


@dataclass
class Member:
    """One cluster's gate in a run of waves."""

    cluster: str
    wave: int
    report_path: Path
    junit: Path
    log: Path
    proc: subprocess.Popen[str] | None = None
    started: float | None = None
    ended: float | None = None
    ready: bool = False  # passed, waiting for the word
    told: str | None = None  # "keep" or the rollback's reason
    relay: threading.Thread | None = None  # its output to the log and the terminal
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def released(self) -> bool:
        return self.proc is not None

    @property
    def exit_status(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    @property
    def passed(self) -> bool:
        return self.exit_status == 0 and self.report.get("verdict") == "pass"

    @property
    def stopped_early(self) -> bool:
        """Ended by the runner's SIGTERM before its gate took the signal over (pytest still
        starting): it wrote no report and, applying nothing before that, changed nothing."""
        return self.exit_status == -signal.SIGTERM and not self.report

    def summary(self) -> dict[str, Any]:
        rollback = self.report.get("rollback") or {}
        return {
            "cluster": self.cluster,
            "wave": self.wave,
            "released": self.released,
            "exit_status": self.exit_status,
            "verdict": "stopped before it changed anything"
            if self.stopped_early
            else self.report.get("verdict"),
            "cause": self.report.get("cause"),
            "rollback": rollback.get("outcome"),
            "rollback_verified": rollback.get("verified"),
            "told": self.told,
            "duration_s": round(self.ended - self.started, 1)
            if self.started is not None and self.ended is not None
            else None,
            "report": str(self.report_path),
            "junit": str(self.junit),
            "log": str(self.log),
        }


def gate_argv(cfg: GateConfig, member: Member) -> list[str]:
    """One cluster's gate: its own profile, the options given to the runner (but the cluster's
    own: kubeconfig, context, report), its report and JUnit file beside the runner's."""
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--cluster={member.cluster}",
        f"--gate-report={member.report_path}",
        f"--junitxml={member.junit}",
    ]
    for setting in cfgmod.SETTINGS:
        if setting.flag is None or setting.key in OWN:
            continue
        if cfg.sources.get(setting.key) != setting.flag:
            continue  # not given on the command line: the member's own profile decides
        value = _value(cfg, setting.key)
        if setting.const is not None:
            argv.append(setting.flag)
        elif value is not None:
            argv.append(f"{setting.flag}={_text(value)}")
    return argv


def _value(cfg: GateConfig, key: str) -> Any:
    if key.startswith("timeouts."):
        return getattr(cfg.timeouts, key.split(".", 1)[1])
    return getattr(cfg, key, None)


def _text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass
class WaveRun:
    """The run of every wave; ``execute`` does it, the rest is what it found."""

    cfg: GateConfig
    write: Callable[[str], None]
    directory: Path  # reports, JUnit files and logs of the gates
    members: list[Member] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    failure: str | None = None  # the first cluster that failed, and why
    interrupted: str | None = None
    _control: Path | None = None
    _lines: queue.Queue[str] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        assert self.cfg.waves is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        for i, wave in enumerate(self.cfg.waves, 1):
            for cluster in wave:
                base = self.directory / cluster
                self.members.append(
                    Member(
                        cluster,
                        i,
                        base.with_suffix(".json"),
                        base.with_suffix(".xml"),
                        base.with_suffix(".log"),
                    )
                )

    def wave(self, i: int) -> list[Member]:
        return [m for m in self.members if m.wave == i]

    def execute(self) -> None:
        """Every wave in order until one fails; then every gate's word; then their ends."""
        assert self.cfg.waves is not None
        with tempfile.TemporaryDirectory(prefix="rolloutgate-waves-") as control:
            self._control = Path(control)
            try:
                for i in range(1, len(self.cfg.waves) + 1):
                    with timed(self.phases, f"wave {i}"):
                        self._release(self.wave(i))
                    if self.failure is not None:
                        break
            except KeyboardInterrupt as e:
                self.interrupted = str(e) or "Ctrl+C"
                self.failure = self.failure or f"interrupted ({self.interrupted})"
                self.write(f"rolloutgate waves: {self.interrupted}; every cluster rolls back")
                self._look(self.members)  # a gate that passed is told, not signalled
                for m in self.members:
                    if m.proc is not None and not m.ready and m.exit_status is None:
                        m.proc.send_signal(signal.SIGTERM)  # it restores and verifies
            with timed(self.phases, "end"):
                self._end()
        self.finished = time.time()

    def _release(self, wave: list[Member]) -> None:
        names = ", ".join(m.cluster for m in wave)
        self.write(f"rolloutgate waves: wave {wave[0].wave}: releasing to {names}")
        for m in wave:
            self._start(m)
        while not all(m.ready or m.exit_status is not None for m in wave):
            self._sleep()
            self._look(wave)
        for m in wave:
            if m.exit_status is not None:
                self._read(m)
            if m.exit_status not in (None, 0) and self.failure is None:
                self.failure = f"cluster {m.cluster}: {m.report.get('cause') or _no_report(m)}"
        if self.failure is None:
            self.write(f"rolloutgate waves: wave {wave[0].wave} passed ({names})")

    def _look(self, wave: list[Member]) -> None:
        assert self._control is not None
        for m in wave:
            if m.released and not m.ready and (self._control / f"{m.cluster}.ready").exists():
                m.ready = True
                self.write(f"rolloutgate waves: {m.cluster} passed its checks; it waits")

    def _start(self, m: Member) -> None:
        assert self._control is not None
        for path in (m.report_path, m.junit):
            path.unlink(missing_ok=True)
        # Unbuffered: its progress lines are relayed as they come, not at its exit.
        env = {**os.environ, handoff.ENV: str(self._control), "PYTHONUNBUFFERED": "1"}
        m.started = time.monotonic()
        m.proc = subprocess.Popen(
            gate_argv(self.cfg, m),
            cwd=self.cfg.rootdir,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Its own process group: a Ctrl+C on the terminal reaches the runner only, which
            # tells each gate what to do (a signal mid-decision would cut a gate's rollback).
            start_new_session=True,
        )
        out = m.log.open("w", encoding="utf-8", buffering=1)  # line by line: a log to tail
        m.relay = threading.Thread(
            target=self._relay, args=(m, out), name=f"rolloutgate-wave-{m.cluster}", daemon=True
        )
        m.relay.start()

    def _relay(self, m: Member, out: TextIO) -> None:
        """Every line of a gate to its log; its progress and verdict lines to the terminal (by
        the main thread, ``_say``: the terminal is not this thread's to write)."""
        assert m.proc is not None
        assert m.proc.stdout is not None
        with out:
            for line in m.proc.stdout:
                out.write(line)
                # pytest's progress dots may precede a line the gate wrote mid-test.
                text = line.rstrip().lstrip(".sFE")
                if text.startswith(("rollout", "rollback", "rolloutgate", "verdict:")):
                    self._lines.put(f"[{m.cluster}] {text}")

    def _say(self) -> None:
        """The gates' lines relayed so far, on the terminal."""
        while True:
            try:
                self.write(self._lines.get_nowait())
            except queue.Empty:
                return

    def _sleep(self) -> None:
        self._say()
        time.sleep(POLL_S)

    def _end(self) -> None:
        """The word to every gate that waits, then each gate's end (a rollback is waited for:
        its own deadlines bound it)."""
        assert self._control is not None
        for m in self.members:
            if m.ready and m.told is None:
                m.told = handoff.KEEP if self.failure is None else self.failure
                handoff.decide(self._control, m.cluster, None if self.failure is None else
                               f"the release failed elsewhere: {self.failure}")  # fmt: skip
        waiting = [m for m in self.members if m.proc is not None]
        while any(m.exit_status is None for m in waiting):
            try:
                self._sleep()
            except KeyboardInterrupt:  # the rollbacks are under way: finish them first
                self.write("rolloutgate waves: interrupt ignored: the gates are ending")
        for m in waiting:
            self._read(m)
        self._say()

    def _read(self, m: Member) -> None:
        if m.ended is None:
            m.ended = time.monotonic()
        if m.relay is not None:
            m.relay.join(timeout=5)  # its last lines (the verdict) before the summary
        if m.report_path.exists():
            m.report = json.loads(m.report_path.read_text(encoding="utf-8"))

    # -- the verdict ------------------------------------------------------------------------

    @property
    def verdict(self) -> Verdict:
        released = [m for m in self.members if m.released and not m.stopped_early]
        if self.failure is None and all(m.passed for m in self.members):
            return "pass"
        if released and all(m.report.get("verdict") == "rolled-back" for m in released):
            return "rolled-back"
        return "fail"

    @property
    def cause(self) -> str:
        if self.failure is not None:
            return self.failure
        return f"{len(self.members)} clusters in {len(self.wave_numbers)} waves passed"

    @property
    def wave_numbers(self) -> list[int]:
        return sorted({m.wave for m in self.members})

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "cause": self.cause,
            "cluster": self.cfg.cluster,
            "waves": [list(w) for w in self.cfg.waves or ()],
            "image_tag": self.cfg.image_tag,
            "dry_run": self.cfg.dry_run,
            "started": _iso(self.started),
            "finished": _iso(self.finished or time.time()),
            "phases_s": self.phases,
            "interrupted": self.interrupted,
            "clusters": [m.summary() for m in self.members],
        }

    def summary_lines(self) -> list[str]:
        lines = [f"verdict: {self.verdict.upper()} - {self.cause}"]
        for m in self.members:
            s = m.summary()
            if not m.released:
                lines.append(f"wave {m.wave} {m.cluster}: not released")
                continue
            lines.append(
                f"wave {m.wave} {m.cluster}: {s['verdict'] or 'no report'} "
                f"(exit {s['exit_status']}, {s['duration_s']} s) - {s['cause']}"
            )
            if s["rollback"] not in (None, "not needed"):
                lines.append(f"  rollback: {s['rollback']}")
        lines.append("phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.phases.items()))
        return lines


def _no_report(m: Member) -> str:
    return f"its gate exited {m.exit_status} without a report; see {m.log}"


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")
