"""What happened to a pod's containers since an instant the gate chose: the apply of a release,
or a rollback's restore. Pure functions of Pods as dicts.

A pod lives for weeks and collects restarts that have nothing to do with a release (a node
reboot, an OOM kill last Tuesday, someone killing a process). A release is judged only on what
happened after it was applied, so the gate lists the workloads' pods just before it writes
(``Baseline.of``) and counts each container's exits from there. Pods the baseline does not
know were created afterwards: their whole life belongs to the release.

Counting exits rather than restarts: ``restartCount`` counts the restarts the kubelet has made,
so a container that has just exited (``state.terminated``) or waits out a back-off
(``state.waiting`` after a ``lastState.terminated``) has one exit more than its restartCount.
Exits are what a release is judged on: a crash before the apply restarted after it is old
history.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rolloutgate.objects import Obj, as_int, at, name_of


def statuses(pod: Obj) -> list[Obj]:
    """Init container and container statuses, in that order."""
    return list(at(pod, "status", "initContainerStatuses") or []) + list(
        at(pod, "status", "containerStatuses") or []
    )


def latest_termination(cs: Obj) -> Obj | None:
    """The latest instance's termination: the current state if it has ended, else the last."""
    for key in ("state", "lastState"):
        terminated = at(cs, key, "terminated")
        if isinstance(terminated, dict):
            return terminated
    return None


def exits(cs: Obj) -> int:
    """How many times the container has exited in its pod's life (see the module's docstring)."""
    restarts = as_int(cs.get("restartCount"))
    terminated = at(cs, "state", "terminated")
    if isinstance(terminated, dict):
        # An init container that ran to completion (exit 0) has done its job: no exit to count.
        # A failed one, or a server that ended, is an exit until the kubelet restarts it.
        return restarts + (1 if as_int(terminated.get("exitCode")) != 0 else 0)
    waiting = at(cs, "state", "waiting")
    if isinstance(waiting, dict) and (
        isinstance(at(cs, "lastState", "terminated"), dict)
        or waiting.get("reason") == "CrashLoopBackOff"
    ):
        return restarts + 1  # the exited instance is not replaced yet
    return restarts


@dataclass(frozen=True)
class PodBaseline:
    """One pod as it was when the baseline was taken."""

    failed: bool
    exits: Mapping[str, int] = field(default_factory=dict)  # container name → exits


@dataclass(frozen=True)
class Baseline:
    """The workloads' pods just before the gate wrote (apply, or a rollback's restore).

    ``taken``: that instant (UTC, the gate's clock), for messages and reports.
    """

    taken: datetime
    pods: Mapping[str, PodBaseline] = field(default_factory=dict)  # pod uid → its state

    @classmethod
    def of(cls, pods: Iterable[Obj], taken: datetime | None = None) -> Baseline:
        return cls(
            taken or datetime.now(UTC),
            {
                str(at(p, "metadata", "uid")): PodBaseline(
                    failed=at(p, "status", "phase") == "Failed",
                    exits={str(cs.get("name")): exits(cs) for cs in statuses(p)},
                )
                for p in pods
                if at(p, "metadata", "uid")
            },
        )

    @classmethod
    def empty(cls) -> Baseline:
        """No pod existed: every pod's whole life counts."""
        return cls(datetime.now(UTC))

    def knows(self, pod: Obj) -> bool:
        """Whether the pod existed when the baseline was taken."""
        return str(at(pod, "metadata", "uid")) in self.pods

    def exits_since(self, pod: Obj, cs: Obj) -> int:
        """The container's exits since the baseline (all of them for a pod created after)."""
        before = self.pods.get(str(at(pod, "metadata", "uid")))
        start = before.exits.get(str(cs.get("name")), 0) if before else 0
        return max(0, exits(cs) - start)

    def failed_since(self, pod: Obj) -> bool:
        """Whether the pod is Failed now and was not when the baseline was taken."""
        if at(pod, "status", "phase") != "Failed":
            return False
        before = self.pods.get(str(at(pod, "metadata", "uid")))
        return before is None or not before.failed


@dataclass(frozen=True)
class Restarts:
    """A container that exited since the baseline: how often, and how it last ended."""

    pod: str
    container: str
    exits: int
    last: Obj | None

    def describe(self) -> str:
        how = ""
        if self.last:
            how = f" (last: {self.last.get('reason') or '?'}, exit code {self.last.get('exitCode')}"
            finished = self.last.get("finishedAt")
            how += f", at {finished})" if finished else ")"
        return f"{self.pod}/{self.container}: {self.exits} exits{how}"


def restarts_since(pods: Iterable[Obj], baseline: Baseline) -> list[Restarts]:
    """Every container of `pods` that exited since the baseline."""
    found = []
    for pod in pods:
        for cs in statuses(pod):
            n = baseline.exits_since(pod, cs)
            if n:
                found.append(Restarts(name_of(pod), str(cs.get("name")), n, latest_termination(cs)))
    return found
