"""A failure verdict waits at most a bounded time for the crashed container's log.

The kubelet is faked: a request it holds is answered only when the test releases it, or after
HOLD_S, with a log of its own. A verdict that waited for a held request therefore comes back
with that log, and the test fails on what it says, not on how long it took. Every log thread is
joined before the test ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from rolloutgate.checks import pods
from rolloutgate.release import rollout

CRASH = 'Traceback (most recent call last):\n  File "mlserver/cli/main.py", line 45'
LATE = "the log of a request the verdict should not have waited for"
# How long the fake holds a request at most: far beyond the waits under test.
HOLD_S = 120.0


class Kubelet:
    """Stands in for ``pods.log_tail``. ``answers`` maps an instance (previous: True/False) to
    the log the kubelet gives at once; a request for any other instance is held, as the kubelet
    holds requests for a pod whose container has just exited, and then answered LATE."""

    def __init__(self, answers: dict[bool, str]) -> None:
        self.answers = answers
        self._released = threading.Event()

    def log_tail(self, api, namespace, pod, container, *, previous, timeout):  # type: ignore[no-untyped-def]
        if previous in self.answers:
            return self.answers[previous]
        self._released.wait(HOLD_S)
        return LATE

    def finish(self) -> list[str]:
        """Answer the held requests and join the log threads; the names of any still running."""
        self._released.set()
        for thread in _log_threads():
            thread.join(timeout=HOLD_S)
        return [t.name for t in _log_threads()]


def _log_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rolloutgate-log")]


@pytest.fixture
def kubelet(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[bool, str]], Kubelet]]:
    """Function: installs the fake kubelet; answers whatever it still holds afterwards."""
    made: list[Kubelet] = []

    def make(answers: dict[bool, str]) -> Kubelet:
        made.append(Kubelet(answers))
        monkeypatch.setattr(pods, "log_tail", made[-1].log_tail)
        return made[-1]

    yield make
    for k in made:
        k.finish()


def crash_log(budget_s: float) -> tuple[str, bool]:
    """The log of container model of pod iris-x, the current instance guessed to have crashed;
    the release's own deadline far away."""
    deadline = time.monotonic() + 2 * HOLD_S
    return rollout._crash_log(None, "ml", "iris-x", "model", False, deadline, budget_s=budget_s)  # type: ignore[arg-type]


def test_a_stalled_log_request_does_not_hold_the_verdict(kubelet) -> None:  # type: ignore[no-untyped-def]
    # As measured on a busy node: the kubelet held the request for the just-exited (current)
    # instance for seconds, while the previous instance's log came at once. The budget is no
    # limit here: only not waiting for the held request gives the previous instance's log.
    fake = kubelet({True: CRASH})

    assert crash_log(budget_s=2 * HOLD_S) == (CRASH, True)
    assert fake.finish() == []


def test_no_log_within_the_budget_says_so(kubelet) -> None:  # type: ignore[no-untyped-def]
    fake = kubelet({})  # both instances' requests held

    tail, _ = crash_log(budget_s=1.0)

    assert tail.startswith(pods.NO_LOG), tail
    assert "the kubelet gave none within 1 s" in tail
    assert fake.finish() == []
