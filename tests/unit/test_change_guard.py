"""Check-before-write: under a step's patience, every attempt of a change asks the step's guard
first (the lease holder's confirmation); reads never do, nor the guard's own requests."""

from __future__ import annotations

import time

import pytest

from rolloutgate.errors import ClusterUnreachable, LockLost
from rolloutgate.kube.retry import patience, patient, unguarded


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda _s: None)


def test_every_attempt_of_a_change_is_guarded_and_a_read_is_not() -> None:
    asked: list[str] = []
    attempts: list[int] = []

    def flaky_change() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ClusterUnreachable("no answer")
        return "done"

    with patience(time.monotonic() + 60, guard=lambda: asked.append("guard")):
        assert patient(flaky_change, change=True) == "done"
        assert patient(lambda: "read") == "read"
    # The server answered nobody twice: the third attempt, too, asked first.
    assert asked == ["guard", "guard", "guard"]


def test_a_refusing_guard_stops_the_change_before_it_is_sent() -> None:
    sent: list[int] = []

    def refuse() -> None:
        raise LockLost("lease iris/rolloutgate-iris is now held by other")

    with (
        patience(time.monotonic() + 60, guard=refuse),
        pytest.raises(LockLost, match="held by other"),
    ):
        patient(lambda: sent.append(1), change=True)
    assert sent == []


def test_an_inner_step_keeps_the_guard_unless_it_names_another() -> None:
    asked: list[str] = []
    with patience(time.monotonic() + 60, guard=lambda: asked.append("outer")):
        with patience(time.monotonic() + 5):  # a record write's own deadline
            patient(lambda: None, change=True)
        with patience(time.monotonic() + 5, guard=None):
            patient(lambda: None, change=True)
    assert asked == ["outer"]


def test_the_guards_own_requests_and_unguarded_changes_skip_it() -> None:
    asked: list[str] = []

    def guard() -> None:
        asked.append("guard")
        patient(lambda: None, change=True)  # the lease's renewal, inside the guard

    with patience(time.monotonic() + 60, guard=guard):
        patient(lambda: None, change=True)
        with unguarded():
            patient(lambda: None, change=True)
    assert asked == ["guard"]


def test_without_a_step_a_change_is_one_attempt_unguarded() -> None:
    with pytest.raises(ClusterUnreachable):
        patient(lambda: (_ for _ in ()).throw(ClusterUnreachable("no answer")), change=True)
