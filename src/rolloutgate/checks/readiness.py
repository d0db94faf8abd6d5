"""A release that will never become ready: a server that answers its readiness probe with a
definite "not ready" for longer than ``ready_grace``.

The kubelet reports each failed probe as an ``Unhealthy`` event on the pod. An HTTP status
("HTTP probe failed with statuscode: 400") is a definite answer: the server runs and says it is
not ready. A refused connection or a timeout is not (the server is still starting). A model
server may answer "not ready" while it loads, so the grace must cover the model's load time;
the rule is off unless a grace is set. Pure: events and pods as dicts, the clock passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rolloutgate.objects import Obj, at, event_instant, parse_time

# The kubelet's message for an HTTP readiness probe answered with a failing status.
DEFINITE = re.compile(r"HTTP probe failed with statuscode: \d+")


def is_readiness_failure(event: Obj) -> bool:
    return event.get("reason") == "Unhealthy" and "Readiness probe" in str(
        event.get("message") or ""
    )


def definite(message: str) -> bool:
    """Whether a readiness probe's failure is the server's own answer (an HTTP status)."""
    return DEFINITE.search(message) is not None


def _started(pod: Obj) -> str | None:
    """When the pod's not-ready containers started (the latest start): events from before
    belong to an earlier instance."""
    starts = [
        str(at(cs, "state", "running", "startedAt"))
        for cs in at(pod, "status", "containerStatuses") or []
        if not cs.get("ready") and at(cs, "state", "running", "startedAt")
    ]
    return max(starts) if starts else None


@dataclass
class NeverReady:
    """Per pod: when its running instance started (the gate's monotonic clock) and whether its
    server's latest answer to the readiness probe is a definite "not ready".

    The grace counts from the container's start, not from the first definite answer: on a busy
    node a server may take most of a minute to answer at all, and a grace counted from that
    answer decided an unready release only after 53 s or more (issue 21). ``observe`` is fed
    the pod and its readiness events whenever either changes, ``overdue`` asked on every tick.
    """

    grace_s: float
    _start: dict[str, tuple[str, float]] = field(default_factory=dict)  # uid → (startedAt, t0)
    _answer: dict[str, str] = field(default_factory=dict)  # uid → latest definite "not ready"

    def observe(self, pod: Obj, events: list[Obj], now: float) -> None:
        """Record the pod's state: its instance's start (a restart starts a new clock) and
        whether the instance's latest probe answer is a definite "not ready"."""
        uid = str(at(pod, "metadata", "uid"))
        started = _started(pod)
        start = parse_time(started) if started is not None else None
        if started is None or start is None:
            self.forget(pod)
            return
        known = self._start.get(uid)
        if known is None or known[0] != started:
            known = (started, now)  # first seen running now: it started at most then
            self._answer.pop(uid, None)
        t0 = known[1]
        mine = [e for e in events if is_readiness_failure(e) and event_instant(e) >= start]
        if mine:
            latest = max(mine, key=event_instant)
            # The kubelet's clock says how long after the start its latest answer came: a gate
            # that sees the pod late counts from that age, never from its own first sight.
            age = max(0.0, (event_instant(latest) - start).total_seconds())
            t0 = min(t0, now - age)
            message = str(latest.get("message") or "").strip()
            if definite(message):
                self._answer[uid] = message
            else:
                self._answer.pop(uid, None)
        self._start[uid] = (started, t0)

    def forget(self, pod: Obj) -> None:
        uid = str(at(pod, "metadata", "uid"))
        self._start.pop(uid, None)
        self._answer.pop(uid, None)

    def pending(self) -> bool:
        return bool(self._answer)

    def overdue(self, pod: Obj, now: float) -> str | None:
        """The verdict's text when the pod's server answers a definite "not ready" and its
        container started longer than the grace ago."""
        uid = str(at(pod, "metadata", "uid"))
        known, message = self._start.get(uid), self._answer.get(uid)
        if known is None or message is None or now - known[1] < self.grace_s:
            return None
        return (
            f'its server answers its readiness probe with a definite "not ready" '
            f"{now - known[1]:.0f} s after its container started (ready_grace "
            f"{self.grace_s:.0f} s): {message}"
        )
