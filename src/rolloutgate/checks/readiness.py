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
    """Per pod: since when (the gate's monotonic clock) its server has answered "not ready".

    ``observe`` is fed the pod and its readiness events whenever either changes, ``overdue``
    asked on every tick.
    """

    grace_s: float
    _since: dict[str, tuple[str, float, str]] = field(default_factory=dict)  # uid → (start, t, msg)

    def observe(self, pod: Obj, events: list[Obj], now: float) -> None:
        """Record the pod's state: the clock starts at the first definite answer of the
        running instance and stops at any other answer or a restart."""
        uid = str(at(pod, "metadata", "uid"))
        started = _started(pod)
        if started is None:
            self._since.pop(uid, None)
            return
        start = parse_time(started)
        mine = [
            e
            for e in events
            if is_readiness_failure(e) and start is not None and event_instant(e) >= start
        ]
        if not mine:
            self._since.pop(uid, None)
            return
        latest = max(mine, key=event_instant)
        message = str(latest.get("message") or "").strip()
        if not definite(message):
            self._since.pop(uid, None)
            return
        known = self._since.get(uid)
        if known is not None and known[0] == started:
            self._since[uid] = (started, known[1], message)
            return
        # The series began before the gate saw it (an event's count grows under one object):
        # count its age as the kubelet's clock tells it, from the instance's start at most.
        first = parse_time(latest.get("firstTimestamp") or latest.get("eventTime"))
        last = event_instant(latest)
        begin = max(first, start) if first is not None and start is not None else last
        age = max(0.0, (last - begin).total_seconds())
        self._since[uid] = (started, now - age, message)

    def forget(self, pod: Obj) -> None:
        self._since.pop(str(at(pod, "metadata", "uid")), None)

    def pending(self) -> bool:
        return bool(self._since)

    def overdue(self, pod: Obj, now: float) -> str | None:
        """The verdict's text when the pod has answered "not ready" for longer than the grace."""
        known = self._since.get(str(at(pod, "metadata", "uid")))
        if known is None or now - known[1] < self.grace_s:
            return None
        return (
            f'its server has answered its readiness probe with a definite "not ready" for '
            f"{now - known[1]:.0f} s (ready_grace {self.grace_s:.0f} s): {known[2]}"
        )
