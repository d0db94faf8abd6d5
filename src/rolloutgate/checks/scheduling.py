"""Unschedulable pods: wait while an autoscaler adds a node, fail when no node can come.

``Unschedulable`` is what triggers a new node on clusters with Cluster Autoscaler, Karpenter or
GKE Autopilot, so it is no verdict by itself. The autoscaler says what it did on the pod's
events: ``TriggeredScaleUp`` (Cluster Autoscaler, GKE) or ``Nominated`` (Karpenter: a node is
being launched for it) means wait; ``NotTriggerScaleUp`` means no node group can fit the pod.

A release can also block itself: when the new pod asks for an extended resource (``nvidia.com/
gpu`` or any other) whose units the release's own old pods hold, a rolling update that surges
waits for a unit only the end of the rollout frees (``Contention``). The verdict names the
resource, the counts and the fix (``maxSurge: 0`` with ``maxUnavailable: 1``, or ``Recreate``).
A release also makes room for itself: the pods it replaces hold their node's room (a pod slot,
CPU, memory, host ports) until they are gone, and a new pod refused meanwhile ("Too many pods",
"Insufficient cpu") is scheduled once they are (the scheduler tries again when a pod goes). So
no verdict is given while pods of the same workload are terminating (``leaving``), nor in the
few seconds after the last is gone (LEFT_SETTLE_S): the rollout's deadline bounds the wait.
Pure functions of a Pod, its events, its workload's other pods and the Nodes, tested on
recorded objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity

from rolloutgate.objects import Obj, at, event_instant, is_deleting, name_of

# Event reasons on a pod: an autoscaler is adding a node for it.
SCALE_UP = frozenset({"TriggeredScaleUp", "Nominated"})
# Event reasons on a pod: the autoscaler looked and no node it could add would fit.
NO_SCALE_UP = frozenset({"NotTriggerScaleUp"})
# API groups served where an autoscaler that adds nodes runs: Karpenter's NodePools.
AUTOSCALER_GROUPS = frozenset({"karpenter.sh"})
# Cluster Autoscaler writes its status to this ConfigMap (its --write-status-configmap, on by
# default; the managed ones of GKE and AKS write it too).
CA_STATUS = ("kube-system", "cluster-autoscaler-status")


# Taints the node lifecycle controller puts on a node whose kubelet has not reported for its grace
# period, and takes off once it reports again. An API server outage longer than that grace does
# it to every node (nothing reported through it): the pods they keep off wait for the kubelets,
# not for an autoscaler, and a verdict of "unschedulable" would be false.
NODE_DOWN_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})

# How long a release blocked by its own old pods waits for an autoscaler (at most: the
# unschedulable grace when shorter). Cluster Autoscaler scans every 10 s and posts
# TriggeredScaleUp then; Karpenter nominates within seconds. Past this, only a new node could
# help and none is announced: the verdict comes within 30 s of the first scheduling failure.
CONTENTION_WAIT_S = 20.0
# How long an unschedulable pod still waits once the last terminating pod of its workload is gone:
# the scheduler tries it again on that deletion, and until it has, the pod's condition still holds
# the refusal from before (a verdict then was false at 97 replicas on a full node).
LEFT_SETTLE_S = 5.0
# What the scheduler's refusal names that a pod leaving its node gives back, besides "Insufficient
# <resource>": a pod slot (the kubelet's maxPods), a host port, an anti-affinity term.
_FREED_BY_LEAVING = ("Too many pods", "free ports", "anti-affinity")
_INSUFFICIENT = re.compile(r"Insufficient ([\w-]+(?:[./][\w-]+)*)")
# Resource names the scheduler counts that are not extended resources.
_BUILTIN = ("cpu", "memory", "ephemeral-storage", "pods")


@dataclass(frozen=True)
class Contention:
    """The new pod waits for units of an extended resource the release's own old pods hold."""

    resource: str
    wanted: Decimal  # by the new pod
    held: Decimal  # by the release's old pods
    holders: tuple[str, ...]  # "pod (n)"
    allocatable: Decimal | None  # on all nodes; None when the Nodes cannot be read
    nodes: tuple[str, ...] = ()  # "node (n)" of the nodes that have any

    def text(self) -> str:
        where = (
            f"the nodes have {_fmt(self.allocatable)} ({', '.join(self.nodes) or 'none'})"
            if self.allocatable is not None
            else "the nodes could not be read"
        )
        return (
            f"it asks for {_fmt(self.wanted)} {self.resource}, {where}, and the release's own "
            f"{len(self.holders)} old pod(s) hold {_fmt(self.held)} ({', '.join(self.holders)}), "
            "freed only after the new pods are ready. Fix: strategy.rollingUpdate maxSurge: 0 "
            "with maxUnavailable: 1 (one pod replaced at a time), or strategy.type: Recreate; "
            f"or more {self.resource}"
        )


def extended(resource: str) -> bool:
    """Whether a resource name is an extended resource (``vendor.com/name``), not one the
    scheduler knows itself (cpu, memory, hugepages-*, ...)."""
    return "/" in resource and not resource.startswith(("kubernetes.io/", "requests."))


def contention(
    pod: Obj, scheduler_message: str, siblings: Iterable[Obj], nodes: list[Obj] | None
) -> Contention | None:
    """The contention blocking `pod`, or None. `siblings`: the pods of its workload, every
    revision (the pod itself and those of its revision are skipped); `nodes`: None when they
    cannot be read (then the scheduler's "Insufficient <resource>" and the holders decide).

    Found when the scheduler names the resource insufficient, the workload's old pods hold units
    of it, and the units on the nodes would fit the new pod if those pods gave theirs back.
    """
    wanted = {k: q for k, q in pod_requests(pod).items() if extended(k) and q > 0}
    revision = _revision_labels(pod)
    old = [
        p
        for p in siblings
        if name_of(p) != name_of(pod)
        and _revision_labels(p) != revision
        and at(p, "spec", "nodeName")
        and at(p, "status", "phase") not in ("Succeeded", "Failed")
    ]
    for resource in sorted(wanted):
        if f"Insufficient {resource}" not in scheduler_message:
            continue
        holders = [(name_of(p), q) for p in old if (q := pod_requests(p).get(resource, Decimal(0)))]
        held = sum((q for _, q in holders), Decimal(0))
        if not held:
            continue
        allocatable: Decimal | None = None
        per_node: list[tuple[str, Decimal]] = []
        if nodes:
            per_node = [
                (name_of(n), units)
                for n in nodes
                if (units := _quantity(at(n, "status", "allocatable", resource) or 0))
            ]
            allocatable = sum((units for _, units in per_node), Decimal(0))
            if allocatable - held >= wanted[resource]:
                continue  # room without the old pods' units: someone else holds the rest
        return Contention(
            resource,
            wanted[resource],
            held,
            tuple(f"{n} ({_fmt(q)})" for n, q in holders),
            allocatable,
            tuple(f"{n} ({_fmt(q)})" for n, q in per_node),
        )
    return None


def freed_by_leaving(scheduler_message: str) -> bool:
    """Whether the scheduler refused the pod for room that a pod leaving a node gives back."""
    return any(p in scheduler_message for p in _FREED_BY_LEAVING) or bool(
        _INSUFFICIENT.search(scheduler_message)
    )


def leaving(pod: Obj, scheduler_message: str, siblings: Iterable[Obj]) -> tuple[str, ...]:
    """Names of the pods of `pod`'s workload (`siblings`: any revision; the pod itself is
    skipped) that are terminating on a node and give back what the scheduler found short:
    any of them for a pod slot, a port or anti-affinity; for "Insufficient <resource>" those
    that request some of it. Empty when the refusal is about something else (a taint, a
    node selector): no pod leaving cures that."""
    if not freed_by_leaving(scheduler_message):
        return ()
    any_pod = any(p in scheduler_message for p in _FREED_BY_LEAVING)
    short = set(_INSUFFICIENT.findall(scheduler_message))
    return tuple(
        name_of(p)
        for p in siblings
        if name_of(p) != name_of(pod)
        and is_deleting(p)
        and at(p, "spec", "nodeName")
        and (any_pod or any(pod_requests(p).get(r, Decimal(0)) > 0 for r in short))
    )


def _revision_labels(pod: Obj) -> tuple[tuple[str, str], ...]:
    """The labels that tell a workload's revisions apart (Deployment, StatefulSet, DaemonSet)."""
    labels = at(pod, "metadata", "labels") or {}
    keys = ("pod-template-hash", "controller-revision-hash")
    return tuple((k, str(labels[k])) for k in keys if k in labels)


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


def nodes_down(nodes: list[Obj]) -> list[str]:
    """`node (taint)` of each node a lifecycle taint (NODE_DOWN_TAINTS) keeps new pods off."""
    return [
        f"{name_of(node)} ({taint.get('key')})"
        for node in nodes
        for taint in at(node, "spec", "taints") or []
        if taint.get("key") in NODE_DOWN_TAINTS
        and taint.get("effect") in ("NoSchedule", "NoExecute")
    ]


def no_autoscaler(groups: set[str], ca_status: bool | None) -> str | None:
    """Why no autoscaler can add a node, or None when one may (or nobody can tell).

    `groups`: the API groups the server serves; `ca_status`: whether Cluster Autoscaler's status
    ConfigMap exists (None: it could not be read, e.g. no right to read kube-system).
    """
    if groups & AUTOSCALER_GROUPS or ca_status is not False:
        return None
    namespace, name = CA_STATUS
    return (
        f"no autoscaler runs on this cluster (no ConfigMap {namespace}/{name}, which Cluster "
        "Autoscaler writes, and no karpenter.sh API), so no node will be added"
    )


def _fmt(q: Decimal | None) -> str:
    return "?" if q is None else format(q.normalize(), "f")


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
    blocked: Contention | None = None,
    absent: str | None = None,
    leaving: Sequence[str] = (),
    left_for_s: float | None = None,
) -> Decision:
    """What to do about a pod the scheduler found no node for.

    `events`: the pod's events; `nodes`: the cluster's Nodes (None: not readable, the size
    check is skipped); `unschedulable_for_s`: how long the gate has seen it unschedulable.
    The latest autoscaler event wins: a scale-up under way waits (until the rollout deadline);
    ``NotTriggerScaleUp`` fails. Without one: requests larger than every node fail at once,
    a node whose kubelet has not reported (``nodes_down``) waits (until the rollout deadline);
    anything else fails at once when no autoscaler runs (`absent`: why, ``no_autoscaler``), else
    once no autoscaler has answered within `grace_s`. A pod `blocked` by
    the release's own old pods (``contention``) waits CONTENTION_WAIT_S at most (the grace when
    shorter), and every verdict on it says what blocks it and the fix. While pods of its own
    workload are `leaving` (terminating; ``leaving``), and for LEFT_SETTLE_S after the last went
    (`left_for_s`: seconds since; None: none was seen), only a pod too big for any node fails:
    the room they free comes.
    """
    events = list(events)
    why = f"pod {name_of(pod)} cannot be scheduled: {scheduler_message.strip()}"
    if blocked is not None:
        # What blocks it and the fix first: a report's cause line keeps the start of it.
        why = (
            f"pod {name_of(pod)} cannot be scheduled: {blocked.text()} (the scheduler: "
            f"{scheduler_message.strip()})"
        )
        grace_s = min(grace_s, CONTENTION_WAIT_S)
    settling = left_for_s is not None and left_for_s < LEFT_SETTLE_S
    if leaving or settling:
        big = too_big(pod, nodes or [])
        if big is not None:
            return Decision(True, f"{why}; {big}")
        if leaving:
            more = f" and {len(leaving) - 3} more" if len(leaving) > 3 else ""
            named = ", ".join(leaving[:3]) + more
            return Decision(
                False,
                f"unschedulable ({scheduler_message.strip()}); waiting for {len(leaving)} "
                f"terminating pod(s) of the workload to free their room ({named})",
            )
        return Decision(
            False,
            f"unschedulable ({scheduler_message.strip()}); the workload's terminating pods are "
            "gone, waiting for the scheduler to try again",
        )
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
    down = nodes_down(nodes or [])
    if down and "taint" in scheduler_message:
        return Decision(
            False,
            f"unschedulable ({scheduler_message.strip()}); node(s) {', '.join(down)}: their "
            "kubelet has not reported (the taint goes when it does); waiting",
        )
    if absent is not None:
        return Decision(True, f"{why}; {absent}")
    if unschedulable_for_s >= grace_s:
        setting = "" if blocked is not None else " (unschedulable_grace)"
        return Decision(
            True, f"{why}; no autoscaler announced a scale-up within {grace_s:.0f} s{setting}"
        )
    held = f"; {blocked.resource} held by the release's old pods" if blocked else ""
    return Decision(
        False,
        f"unschedulable ({scheduler_message.strip()}){held}; waiting up to {grace_s:.0f} s for "
        "an autoscaler",
    )
