"""How long each new pod of a release took to become Ready: from its container's start (the
model server's process) and from its creation. For a model server the first is the model's
load time, the figure ML teams ask for first. Pure functions of Pods as dicts.

The times are the API's: a container's ``state.running.startedAt`` and the pod's ``Ready``
condition's ``lastTransitionTime``, whole seconds, and Ready is seen by a readiness probe, so a
figure includes up to one probe period. Pods that existed before the apply (a release that
changed nothing in the pod template) are not new and not counted.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rolloutgate.checks.podhistory import Baseline
from rolloutgate.objects import Obj, at, name_of, parse_time


@dataclass(frozen=True)
class PodStart:
    """One new pod: seconds from its creation and from its containers' start to Ready (None
    when the API does not say, e.g. the pod is not Ready)."""

    pod: str
    created_to_ready_s: float | None
    start_to_ready_s: float | None


def _ready_at(pod: Obj) -> str | None:
    for condition in at(pod, "status", "conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return str(condition.get("lastTransitionTime") or "") or None
    return None


def pod_start(pod: Obj) -> PodStart:
    """Creation → Ready and the latest container start → Ready (the server that is running
    now: after a restart, its own start)."""
    ready = parse_time(_ready_at(pod))
    created = parse_time(at(pod, "metadata", "creationTimestamp"))
    starts = [
        t
        for cs in at(pod, "status", "containerStatuses") or []
        if (t := parse_time(at(cs, "state", "running", "startedAt"))) is not None
    ]
    started = max(starts) if starts else None

    def span(since: datetime | None) -> float | None:
        if ready is None or since is None:
            return None
        return max(0.0, (ready - since).total_seconds())

    return PodStart(name_of(pod), span(created), span(started))


def new_pod_starts(pods: Iterable[Obj], baseline: Baseline | None) -> list[PodStart]:
    """``pod_start`` of each pod the baseline (taken before the apply) does not know."""
    known = baseline.pods if baseline is not None else {}
    return sorted(
        (pod_start(p) for p in pods if str(at(p, "metadata", "uid")) not in known),
        key=lambda s: s.pod,
    )


def summary(starts: Sequence[PodStart]) -> str | None:
    """One line for the terminal: the range and median of each figure; None without pods."""
    if not starts:
        return None

    def spread(values: list[float]) -> str:
        if not values:
            return "not known"
        if len(values) == 1:
            return f"{values[0]:.0f} s"
        return f"{min(values):.0f}-{max(values):.0f} s (median {statistics.median(values):.0f} s)"

    load = [s.start_to_ready_s for s in starts if s.start_to_ready_s is not None]
    total = [s.created_to_ready_s for s in starts if s.created_to_ready_s is not None]
    return (
        f"new pods: {len(starts)}, container start to Ready (model load) {spread(load)}, "
        f"created to Ready {spread(total)}"
    )
