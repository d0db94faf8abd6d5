"""A failure verdict waits at most a bounded time for the crashed container's log."""

from __future__ import annotations

import time

import pytest

from rolloutgate.checks import pods
from rolloutgate.release import rollout

CRASH = 'Traceback (most recent call last):\n  File "mlserver/cli/main.py", line 45'


def test_a_stalled_log_request_does_not_hold_the_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    # As measured on a busy node: the kubelet held the request for the just-exited instance
    # 3.8 s and then answered empty, while the other instance's log came at once.
    def log_tail(api, namespace, pod, container, *, previous, timeout):  # type: ignore[no-untyped-def]
        if not previous:
            time.sleep(min(timeout, 3.8))
            return ""
        return CRASH

    monkeypatch.setattr(pods, "log_tail", log_tail)
    started = time.monotonic()
    tail, previous = rollout._crash_log(None, "ml", "iris-x", "model", False, time.monotonic() + 60)  # type: ignore[arg-type]
    assert (tail, previous) == (CRASH, True)
    assert time.monotonic() - started < 1.0


def test_no_log_within_the_budget_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def log_tail(api, namespace, pod, container, *, previous, timeout):  # type: ignore[no-untyped-def]
        time.sleep(min(timeout, 10))
        return ""

    monkeypatch.setattr(pods, "log_tail", log_tail)
    started = time.monotonic()
    tail, _ = rollout._crash_log(
        None,  # type: ignore[arg-type]
        "ml", "iris-x", "model", False, time.monotonic() + 60, budget_s=1.0,
    )  # fmt: skip
    assert time.monotonic() - started < 2.0
    assert tail.startswith(pods.NO_LOG)
    assert "within 1 s" in tail
