"""A rollback or recovery that cannot finish (an API server outage longer than its deadline, the
cluster's controllers still catching up) ends in one line that says what restores the last
verified release, as the release record says it."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from rolloutgate.errors import ClusterUnreachable, RollbackFailed, RolloutTimeout
from rolloutgate.release import ending
from rolloutgate.release.report import Rollback

TARGET = {"tag": "v1", "verified": True, "by": "ci@runner/pid-1/ab", "at": "2026-12-03T06:00:00Z"}


class FakeTracker:
    """The record as a gate left it mid-release (step 'checking', target v1 verified)."""

    def __init__(self, step: str = "checking") -> None:
        self.current: dict[str, Any] = {"step": step, "target": TARGET}
        self.found = None
        self.lost = False
        self.interrupt_on_loss = True
        self.steps: list[str] = []

    def ensure_held(self) -> None:
        return None

    def step(self, name: str) -> None:
        self.steps.append(name)
        self.current["step"] = name

    def verified(self, *args: object) -> None:
        raise AssertionError("a failed rollback must not mark the release verified")


def _release(tracker: FakeTracker) -> SimpleNamespace:
    @contextmanager
    def step(phase: object, seconds: float) -> Any:
        yield 0.0

    lines: list[str] = []
    run = SimpleNamespace(
        failed=True,
        rollback=Rollback(),
        early_restore=None,
        interrupted=None,
        aborted=None,
        diagnostics="(none)",
        notes=[],
    )
    return SimpleNamespace(
        cfg=SimpleNamespace(
            cluster="local", rollback=True, timeouts=SimpleNamespace(rollback=300.0, api=120.0)
        ),
        run=run,
        tracker=tracker,
        handoff=None,
        snap=SimpleNamespace(tag=lambda: "v1"),
        _golden=None,
        step=step,
        say=lines.append,
        checkpoint=lambda: None,
        lines=lines,
    )


def test_a_rollback_that_times_out_says_the_record_is_unfinished_and_what_restores_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As measured after a 5 min outage: the restore landed, the rollout of v1 did not finish
    # before the rollback's deadline (the node's pods not ready yet).
    def roll_back(rel: Any, golden: object) -> None:
        rel.run.rollback.outcome = (
            "rollback to v1 FAILED: RolloutTimeout: rollout penguin not done after 58 s"
        )
        raise RollbackFailed(rel.run.rollback.outcome) from RolloutTimeout(
            "not done", reason="Timeout", pod=None
        )

    monkeypatch.setattr(ending, "roll_back", roll_back)
    tracker = FakeTracker()
    rel = _release(tracker)

    with pytest.raises(RollbackFailed) as e:
        ending.finish(rel)  # type: ignore[arg-type]

    assert tracker.steps == ["rolling-back", "rollback-failed"]
    outcome = rel.run.rollback.outcome
    assert outcome == str(e.value)
    assert "\n" not in outcome
    assert outcome.startswith("rollback to v1 FAILED: RolloutTimeout")
    assert (
        "The release record still says step 'rollback-failed' (unfinished): the next gate, or "
        "`pytest --cluster=local --recover`, restores the last verified release (tag v1, "
        "verified by ci@runner/pid-1/ab" in outcome
    )
    assert rel.lines[-1] == f"rolloutgate: {outcome}"


def test_a_rollback_the_api_server_never_answered_is_not_done_and_says_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def roll_back(rel: Any, golden: object) -> None:
        raise ClusterUnreachable("get deployments.apps ml/penguin: API server did not answer")

    monkeypatch.setattr(ending, "roll_back", roll_back)
    tracker = FakeTracker()
    rel = _release(tracker)

    with pytest.raises(RollbackFailed):
        ending.finish(rel)  # type: ignore[arg-type]

    outcome = rel.run.rollback.outcome
    assert outcome.startswith("NOT DONE: the API server did not answer within the rollback")
    assert "still says step 'rolling-back' (unfinished): the next gate, or `pytest" in outcome
    assert "rollback-failed" not in tracker.steps  # its cause is the outage, not the release


def test_restores_names_a_finished_record_as_it_is() -> None:
    rel = _release(FakeTracker(step="locked"))
    text = ending.restores(rel)  # type: ignore[arg-type]
    assert text.startswith("The release record says step 'locked' (finished)")
    assert "the last verified release is tag v1, verified by ci@runner/pid-1/ab" in text
