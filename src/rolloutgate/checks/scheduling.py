"""Unschedulable pods: wait while an autoscaler adds a node, fail when no node can come.

``Unschedulable`` is what triggers a new node on clusters with Cluster Autoscaler, Karpenter or
GKE Autopilot, so it is no verdict by itself. The autoscaler says what it did on the pod's
events: ``TriggeredScaleUp`` (Cluster Autoscaler, GKE) or ``Nominated`` (Karpenter: a node is
being launched for it) means wait; ``NotTriggerScaleUp`` means no node group can fit the pod.
Pure functions of a Pod, its events and the Nodes, tested on recorded objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity

from rolloutgate.objects import Obj, at, event_instant, name_of

# Event reasons on a pod: an autoscaler is adding a node for it.
SCALE_UP = frozenset({"TriggeredScaleUp", "Nominated"})
# Event reasons on a pod: the autoscaler looked and no node it could add would fit.
NO_SCALE_UP = frozenset({"NotTriggerScaleUp"})


@dataclass(frozen=True)
class Decision:
    """Wait (``failed`` False, ``message`` for the progress line) or fail (the verdict's text)."""

    failed: bool
    message: str


def _quantity(value: object) -> Decimal | None:
    try:
        return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, ArithmeticError):
        return None


def pod_requests(pod: Obj) -> dict[str, Decimal]:
    """What the scheduler reserves for the pod: the containers' requests summed, at least the
    largest init container's (they run one at a time, before), plus the pod overhead."""
    spec = pod.get("spec") or {}

    def requests(container: Obj) -> dict[str, Decimal]:
        found = {}
        for key, value in (at(container, "resources", "requests") or {}).items():
            q = _quantity(value)
            if q is not None:
                found[str(key)] = q
        return found

    total: dict[str, Decimal] = {}
    for c in spec.get("containers") or []:
        for key, q in requests(c).items():
            total[key] = total.get(key, Decimal(0)) + q
    for c in spec.get("initContainers") or []:
        for key, q in requests(c).items():
            total[key] = max(total.get(key, Decimal(0)), q)
    for key, value in (spec.get("overhead") or {}).items():
        extra = _quantity(value)
        if extra is not None:
            total[str(key)] = total.get(str(key), Decimal(0)) + extra
    return total


def too_big(pod: Obj, nodes: list[Obj]) -> str | None:
    """Why no node could hold the pod even empty (its requests exceed every node's
    allocatable), else None. None without nodes: nothing is known."""
    wanted = pod_requests(pod)
    if not nodes or not wanted:
        return None
    shortfalls = []
    for node in nodes:
        allocatable = at(node, "status", "allocatable") or {}
        short = [
            f"{key} {_fmt(q)} > {_fmt(have)}"
            for key, q in sorted(wanted.items())
            if (have := _quantity(allocatable.get(key, 0))) is not None and q > have
        ]
        if not short:
            return None
        shortfalls.append(f"{name_of(node)} ({', '.join(short)})")
    return (
        "its requests exceed the allocatable resources of every node, so only a larger node "
        f"could hold it: {'; '.join(shortfalls)}"
    )


def _fmt(q: Decimal) -> str:
    return format(q.normalize(), "f")


def _latest(events: Iterable[Obj], reasons: frozenset[str]) -> Obj | None:
    found = [e for e in events if e.get("reason") in reasons]
    return max(found, key=event_instant) if found else None


def decide(
    pod: Obj,
    scheduler_message: str,
    events: Iterable[Obj],
    nodes: list[Obj] | None,
    *,
    unschedulable_for_s: float,
    grace_s: float,
) -> Decision:
    """What to do about a pod the scheduler found no node for.

    `events`: the pod's events; `nodes`: the cluster's Nodes (None: not readable, the size
    check is skipped); `unschedulable_for_s`: how long the gate has seen it unschedulable.
    The latest autoscaler event wins: a scale-up under way waits (until the rollout deadline);
    ``NotTriggerScaleUp`` fails. Without one: requests larger than every node fail at once,
    anything else fails once no autoscaler has answered within `grace_s`.
    """
    events = list(events)
    why = f"pod {name_of(pod)} cannot be scheduled: {scheduler_message.strip()}"
    up, no = _latest(events, SCALE_UP), _latest(events, NO_SCALE_UP)
    if no is not None and (up is None or event_instant(no) >= event_instant(up)):
        return Decision(
            True, f"{why}; the autoscaler will not add a node: {str(no.get('message')).strip()}"
        )
    if up is not None:
        return Decision(
            False,
            f"waiting for a new node ({up.get('reason')}: {str(up.get('message')).strip()})",
        )
    big = too_big(pod, nodes or [])
    if big is not None:
        return Decision(True, f"{why}; {big}")
    if unschedulable_for_s >= grace_s:
        return Decision(
            True,
            f"{why}; no autoscaler announced a scale-up within {grace_s:.0f} s "
            "(unschedulable_grace)",
        )
    return Decision(
        False,
        f"unschedulable ({scheduler_message.strip()}); waiting up to {grace_s:.0f} s for an "
        "autoscaler",
    )
