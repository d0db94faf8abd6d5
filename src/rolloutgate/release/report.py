"""What a gate run did, and the reports made from it.

``GateRun`` is filled in as the fixtures and hooks go (phase timings, test outcomes, the
rollback's outcome, diagnostics); at session end it becomes a JSON report (``--gate-report``),
a Markdown summary (appended to ``$GITHUB_STEP_SUMMARY`` in GitHub Actions) and the terminal
summary. Nothing here knows pytest or Kubernetes.
"""

from __future__ import annotations

import json
import os
import re
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rolloutgate import redact
from rolloutgate.checks import loadtime, warmup
from rolloutgate.checks.latency import Latency
from rolloutgate.checks.loadtime import PodStart
from rolloutgate.checks.podhistory import Baseline
from rolloutgate.config import GateConfig
from rolloutgate.phases import timed

Outcome = Literal["passed", "failed", "error", "skipped"]
Verdict = Literal["pass", "fail", "rolled-back"]


@dataclass
class TestOutcome:
    nodeid: str
    outcome: Outcome
    duration_s: float
    message: str = ""


@dataclass
class Rollback:
    """What happened at the end of a failed run."""

    needed: bool = False
    enabled: bool = True
    attempted: bool = False
    verified: bool = False
    outcome: str = "not needed"
    actions: list[str] = field(default_factory=list)
    # An interrupted run: seconds from the interrupt to the restore acknowledged by the API.
    restored_after_interrupt_s: float | None = None
    # Wall-clock times (time.time()): the restore acknowledged by the API, and the restored
    # release verified. A failed rollout's restore is submitted at its verdict (``fail_fast``).
    restored_at: float | None = None
    verified_at: float | None = None


@dataclass
class LiveRelease:
    """What ``--verify`` found live: the workloads' tag, and whether a gate verified exactly
    that release (the release record's restore target); ``text`` says it in one line."""

    tag: str | None
    verified: bool
    text: str
    record_step: str | None = None


@dataclass
class GateRun:
    """The record of one gate session."""

    config: GateConfig
    started: float = field(default_factory=time.time)
    finished: float | None = None
    phases: dict[str, float] = field(default_factory=dict)
    tests: dict[str, TestOutcome] = field(default_factory=dict)
    manifest_source: str | None = None
    previous_tag: str | None = None
    first_deploy: bool | None = None
    applied: bool = False
    created_namespace: bool = False
    interrupted: str | None = None
    interrupted_at: float | None = None  # time.monotonic() of the first interrupt
    # The pods' baseline of a restore submitted at once on the interrupt (gate.restore_now);
    # None while no restore was submitted. Not reported: the rollback's fields say it.
    early_restore: Any = None
    # Why this gate's lease was lost (another gate owns the target: nothing more is changed).
    lock_lost: str | None = None
    rollback: Rollback = field(default_factory=Rollback)
    # The restore of the last verified release before anything else (--recover, or an
    # unfinished release left by a gate that is gone).
    recovery: Rollback | None = None
    diagnostics: str | None = None
    dry_run_diff: str | None = None
    exit_status: int | None = None
    notes: list[str] = field(default_factory=list)
    # The workloads' pods just before the apply: what happened before is not this release's.
    baseline: Baseline | None = None
    # --verify: the release found live (nothing is applied or rolled back).
    live_release: LiveRelease | None = None
    # One cluster of a release in waves whose runner called it back: why.
    aborted: str | None = None
    # Tests collected, and how many never ran because a step of the release they need had
    # failed (each would have failed again with the same words), or a module could not be
    # collected; by the step's fixture.
    collected: int = 0
    not_run: int = 0
    # Each new pod's start-to-ready time (model load time), once rolled out.
    pod_starts: list[PodStart] = field(default_factory=list)
    # Requests each pod answered before the latency budget, by pod.
    warmup: dict[str, Latency] = field(default_factory=dict)
    not_run_because: dict[str, int] = field(default_factory=dict)

    def phase(self, name: str) -> AbstractContextManager[None]:
        """Time a phase; the time is recorded even when the phase fails."""
        return timed(self.phases, name)

    def record(self, outcome: TestOutcome) -> None:
        """Keep the worst outcome seen for a test across its setup, call and teardown."""
        rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
        seen = self.tests.get(outcome.nodeid)
        if seen is None:
            self.tests[outcome.nodeid] = outcome
            return
        seen.duration_s = round(seen.duration_s + outcome.duration_s, 3)
        if rank[outcome.outcome] > rank[seen.outcome]:
            seen.outcome, seen.message = outcome.outcome, outcome.message

    @property
    def failures(self) -> list[TestOutcome]:
        return [t for t in self.tests.values() if t.outcome in ("failed", "error")]

    @property
    def skipped(self) -> list[TestOutcome]:
        """The checks that did not run, each with its reason (``message``)."""
        return [t for t in self.tests.values() if t.outcome == "skipped"]

    def skipped_lines(self) -> list[str]:
        """The skipped checks grouped by reason: ``  test_a, test_b: reason``."""
        by_reason: dict[str, list[str]] = {}
        for t in self.skipped:
            by_reason.setdefault(t.message or "no reason given", []).append(
                t.nodeid.rsplit("::", 1)[-1]
            )
        lines = [f"skipped: {len(self.skipped)} check(s)"] if by_reason else []
        for reason, names in by_reason.items():
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            lines.append(f"  {', '.join(names[:3])}{more}: {reason}")
        return lines

    @property
    def failed(self) -> bool:
        """Whether the release must not stay: a test failed or errored, or the run was stopped."""
        return (
            bool(self.failures)
            or self.interrupted is not None
            or self.lock_lost is not None
            or self.aborted is not None
        )

    @property
    def verdict(self) -> Verdict:
        if not self.failed:
            return "pass"
        return "rolled-back" if self.rollback.verified else "fail"

    @property
    def cause(self) -> str:
        """One line saying why the verdict is what it is."""
        if self.lock_lost is not None:
            return (
                f"lease lost ({self.lock_lost}): another gate owns the target, this gate "
                "stopped changing it and did not roll back"
            )
        if self.interrupted is not None:
            return f"interrupted ({self.interrupted})"
        if self.aborted is not None and not self.failures:
            return f"passed here, rolled back with the other clusters: {self.aborted}"
        failures = self.failures
        if failures:
            first = failures[0]
            more = f" (+{len(failures) - 1} more failing)" if len(failures) > 1 else ""
            if self.not_run:
                more += f" ({self.not_run} check(s) not run)"
            what = (first.message or first.outcome).strip().splitlines()[0]
            return f"{first.nodeid}: {what}{more}"
        counts = self.counts()
        if self.recovery is not None and self.config.recover:
            return f"recovery: {self.recovery.outcome}"
        if self.config.dry_run:
            return "dry run: every manifest passed the server-side dry-run; nothing was applied"
        if self.config.verify:
            return (
                f"verify-only: {counts['passed']} checks passed against the live release, "
                f"{counts['skipped']} skipped; nothing was applied"
            )
        return f"{counts['passed']} checks passed, {counts['skipped']} skipped"

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("passed", "failed", "error", "skipped"), 0)
        for t in self.tests.values():
            counts[t.outcome] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "verdict": self.verdict,
            "cause": self.cause,
            "target": {
                "cluster": cfg.cluster,
                "kind": cfg.kind,
                "context": cfg.context,
                "namespace": cfg.namespace,
                "endpoint_url": redact.url(cfg.endpoint_url) if cfg.endpoint_url else None,
            },
            "image_tag": cfg.image_tag,
            "manifest_source": self.manifest_source,
            "previous_tag": self.previous_tag,
            "first_deploy": self.first_deploy,
            "dry_run": cfg.dry_run,
            "verify": cfg.verify,
            "live_release": vars(self.live_release) if self.live_release else None,
            "applied": self.applied,
            "created_namespace": self.created_namespace,
            "started": _iso(self.started),
            "finished": _iso(self.finished or time.time()),
            "phases_s": self.phases,
            "tests": {
                **self.counts(),
                "not_run": self.not_run,
                "not_run_because": self.not_run_because,
                "items": [vars(t) for t in self.tests.values()],
            },
            "skipped": [{"nodeid": t.nodeid, "reason": t.message} for t in self.skipped],
            "new_pods": [vars(p) for p in self.pod_starts],
            "warmup": {
                "requests": cfg.warmup_requests,
                "pods": {pod: vars(w) for pod, w in self.warmup.items()},
            },
            "rollback": vars(self.rollback),
            "interrupted": self.interrupted,
            "lock_lost": self.lock_lost,
            "aborted": self.aborted,
            "recovery": vars(self.recovery) if self.recovery is not None else None,
            "diagnostics": self.diagnostics,
            "dry_run_diff": self.dry_run_diff,
            "exit_status": self.exit_status,
            "notes": self.notes,
        }

    def summary_lines(self) -> list[str]:
        """The terminal summary: verdict, cause, target, tags, rollback, phases."""
        cfg = self.config
        tag = cfg.image_tag or "as in the manifests"
        lines = [
            f"verdict: {self.verdict.upper()} - {self.cause}",
            f"target: {cfg.target}",
            f"image tag: {tag} ({'live' if cfg.verify else 'previous'}: "
            f"{self.previous_tag or 'none'})",
        ]
        if self.manifest_source:
            lines.append(f"manifests: {self.manifest_source}")
        if self.live_release is not None:
            lines.append(f"live release: {self.live_release.text}")
        if self.recovery is not None:
            lines.append(f"recovery: {self.recovery.outcome}")
            lines += [f"  {a}" for a in self.recovery.actions]
        if self.failed:
            lines.append(f"rollback: {self.rollback.outcome}")
            lines += [f"  {a}" for a in self.rollback.actions]
        if self.phases:
            lines.append("phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.phases.items()))
        lines += [
            line
            for line in (
                loadtime.summary(self.pod_starts),
                warmup.summary(self.warmup, cfg.warmup_requests),
            )
            if line
        ]
        for step, n in self.not_run_because.items():
            lines.append(f"not run: {n} check(s) that need {step}, which failed (above)")
        lines += self.skipped_lines()
        lines += self.notes
        return lines


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def write_json(run: GateRun, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Userinfo is stripped where URLs are made; this catches one that came in a message (a
    # suite's own assertion quoting a URL).
    text = redact.urls_in(json.dumps(run.to_json(), indent=2))
    path.write_text(text + "\n", encoding="utf-8")


_ICON = {"pass": "✅", "fail": "❌", "rolled-back": "↩️"}


def markdown(run: GateRun) -> str:
    """A summary a human reads in 30 s (GitHub step summary)."""
    cfg = run.config
    rows = [
        ("cause", run.cause),
        ("target", cfg.target),
        ("image tag", _code(cfg.image_tag or "as in the manifests")),
        ("previous tag", _code(run.previous_tag) if run.previous_tag else "none"),
    ]
    if run.live_release is not None:
        rows.append(("live release", run.live_release.text))
    if run.recovery is not None:
        rows.append(("recovery", run.recovery.outcome))
    if run.failed:
        rows.append(("rollback", run.rollback.outcome))
    counts = run.counts()
    rows.append(("tests", ", ".join(f"{n} {k}" for k, n in counts.items() if n)))
    rows.append(("phases", ", ".join(f"{k} {v:.1f} s" for k, v in run.phases.items()) or "-"))
    if load := loadtime.summary(run.pod_starts):
        rows.append(("new pods", load.removeprefix("new pods: ")))
    out = [f"## rolloutgate: {_ICON[run.verdict]} {run.verdict}", "", "| | |", "|---|---|"]
    out += [f"| {k} | {_cell(v)} |" for k, v in rows]
    if run.failures:
        out += ["", "**Failing checks**", ""]
        out += [f"- {_code(t.nodeid)} ({t.outcome}): {_cell(t.message)}" for t in run.failures]
    if run.skipped:
        out += ["", "**Skipped checks**", ""]
        out += [f"- {_code(t.nodeid)}: {_cell(t.message)}" for t in run.skipped]
    if run.diagnostics:
        out += ["", "<details><summary>Diagnostics</summary>", "", *fenced(run.diagnostics)]
        out += ["</details>"]
    return "\n".join(out) + "\n"


def _backtick_run(text: str) -> int:
    """The longest run of backticks in `text`."""
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def fenced(text: str) -> list[str]:
    """`text` as a fenced code block no line of it can close: the fence is longer than any
    run of backticks inside (CommonMark closes a fence only with one at least as long).
    Log excerpts are text written by someone else's program."""
    fence = "`" * max(3, _backtick_run(text) + 1)
    return [fence, text, fence]


def _code(text: str) -> str:
    """Inline code that a backtick inside cannot end (a longer delimiter, padded when the text
    starts or ends with a backtick, as CommonMark strips one space on each side)."""
    delimiter = "`" * (_backtick_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{delimiter}{pad}{text}{pad}{delimiter}"


def _cell(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first.replace("|", "\\|")[:300]


def append_step_summary(run: GateRun, env: dict[str, str] | None = None) -> Path | None:
    """Append the Markdown summary to ``$GITHUB_STEP_SUMMARY`` when it is set."""
    target = (env if env is not None else dict(os.environ)).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    with open(target, "a", encoding="utf-8") as f:
        f.write(redact.urls_in(markdown(run)))
    return Path(target)
