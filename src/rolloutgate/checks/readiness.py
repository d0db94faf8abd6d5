"""A release that will never become ready: a server that answers its readiness probe with a
definite "not ready" for longer than ``ready_grace``.

The kubelet reports each failed probe as an ``Unhealthy`` event on the pod. An HTTP status
("HTTP probe failed with statuscode: 400") is a definite answer: the server runs and says it is
not ready. A refused connection or a timeout is not (the server is still starting). A model
server may answer "not ready" while it loads, so the grace must cover the model's load time;
the rule is off unless a grace is set. Pure: events and pods as dicts, the clock passed in.

The events alone are not enough: the kubelet's event recorder lets through about 25 events per
pod, then one every 5 minutes (client-go's spam filter). A server that refused connections for
the first ~40 s (a busy node) used them up, its later "400"s were never reported, and the rule
waited for the rollout's deadline (issue 21: 80 s and more). So once the grace is over without
a definite answer, the gate asks the server itself, as the probe does (``checks.readyprobe``),
and takes that answer until the kubelet reports a newer one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

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
    _own: dict[str, str] = field(default_factory=dict)  # uid → the gate's own definite answer
    _asked: dict[str, float] = field(default_factory=dict)  # uid → when the gate last asked
    _latest: dict[str, datetime] = field(default_factory=dict)  # uid → latest event's instant

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
            for answers in (self._answer, self._own, self._asked, self._latest):
                answers.pop(uid, None)
        t0 = known[1]
        mine = [e for e in events if is_readiness_failure(e) and event_instant(e) >= start]
        if mine:
            latest = max(mine, key=event_instant)
            if self._latest.get(uid) != event_instant(latest):
                # A probe reported after the gate's own question: the kubelet's word again.
                self._latest[uid] = event_instant(latest)
                self._own.pop(uid, None)
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
        for answers in (self._start, self._answer, self._own, self._asked, self._latest):
            answers.pop(uid, None)

    def pending(self) -> bool:
        """Whether a definite "not ready" is known, so the clock alone may bring a verdict."""
        return bool(self._answer) or bool(self._own)

    def near_grace(self, now: float, lead_s: float) -> bool:
        """Whether a running, not-ready pod without a definite answer is within ``lead_s`` of
        the end of its grace, or past it: the gate should then ask it itself (``ask_due``)."""
        return any(
            now - t0 >= self.grace_s - lead_s
            for uid, (_started, t0) in self._start.items()
            if uid not in self._answer and uid not in self._own
        )

    def ask_due(self, pod: Obj, now: float, every_s: float) -> bool:
        """Whether to ask the pod's server itself now: its grace is over, no definite answer
        is known (the kubelet may have stopped reporting), and the last question is
        ``every_s`` old."""
        uid = str(at(pod, "metadata", "uid"))
        known = self._start.get(uid)
        if known is None or uid in self._answer or uid in self._own:
            return False
        return now - known[1] >= self.grace_s and now - self._asked.get(uid, -1e18) >= every_s

    def asked(self, pod: Obj, now: float, answer: str | None) -> None:
        """The gate's own question's result: a definite "not ready" (the text for the
        verdict) or None (no answer, or ready)."""
        uid = str(at(pod, "metadata", "uid"))
        if uid not in self._start:
            return
        self._asked[uid] = now
        if answer is not None:
            self._own[uid] = answer

    def overdue(self, pod: Obj, now: float) -> str | None:
        """The verdict's text when the pod's server answers a definite "not ready" and its
        container started longer than the grace ago."""
        uid = str(at(pod, "metadata", "uid"))
        known, message = self._start.get(uid), self._answer.get(uid) or self._own.get(uid)
        if known is None or message is None or now - known[1] < self.grace_s:
            return None
        return (
            f'its server answers its readiness probe with a definite "not ready" '
            f"{now - known[1]:.0f} s after its container started (ready_grace "
            f"{self.grace_s:.0f} s): {message}"
        )
