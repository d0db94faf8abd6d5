"""What the rollout wait knows of one workload (``Target``) and how its controller's refusals
(FailedCreate events: a quota, an admission webhook) become the verdict.

Kept apart from ``rollout`` (the wait's loop and its watches): these are pure rules on what was
seen, unit-tested on recorded events (tests/unit/test_refusal_events.py).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import datetime

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import RolloutFailed
from rolloutgate.objects import Obj, at, event_instant, is_deleting, is_ready, name_of, parse_time
from rolloutgate.workloads import Revision, RolloutStatus, StatusViewer

# How long a quota's refusal of a StatefulSet's or DaemonSet's new pod must stand (no pod of the
# revision created since) before it is the verdict: the controller deletes a pod before creating
# its replacement, and the quota may count the deleted pod until its controller has seen it go
# (the controller retries within milliseconds, then backs off).
REFUSAL_CONFIRM_S = 1.0


@dataclass
class Target:
    """One workload being waited on, and what has been seen of it."""

    viewer: StatusViewer
    name: str
    generation: int | None
    obj: Obj = field(default_factory=dict)
    revision: Revision | None = None
    pods: dict[str, Obj] = field(default_factory=dict)
    status: RolloutStatus = field(default_factory=lambda: RolloutStatus(False, "no status seen"))
    done: bool = False
    since: datetime | None = None  # when our apply changed it (the server's clock), if known
    refused: str | None = None  # the last FailedCreate event's message since the apply
    # A refusal that is the verdict once it stands REFUSAL_CONFIRM_S: (seen at, event, verdict).
    refusal: tuple[float, Obj, str] | None = None
    refusals_synced: bool = False  # the refusal events' first listing was delivered

    @property
    def key(self) -> str:
        return f"{self.viewer.kind}/{self.name}"

    def new_pods(self) -> list[Obj]:
        if self.revision is None:
            return []
        labels = self.revision.pod_labels
        return [
            p
            for p in self.pods.values()
            if all(at(p, "metadata", "labels", k) == v for k, v in labels.items())
            and not is_deleting(p)
        ]

    def progress(self, notes: dict[str, str] | None = None) -> str:
        new = self.new_pods()
        ready = sum(1 for p in new if is_ready(p))
        state = "done" if self.done else self.status.message
        waiting = sorted({(notes or {}).get(name_of(p), "") for p in new} - {""})
        why = f"; {'; '.join(waiting)}" if waiting and not self.done else ""
        return f"{ready}/{self.viewer.replicas(self.obj)} ready ({state}{why})"


def refusals_of(t: Target) -> str:
    """The selector of the FailedCreate events of one workload's controller."""
    return f"involvedObject.kind={t.viewer.kind},involvedObject.name={t.name},reason=FailedCreate"


def applied_at(obj: Obj) -> datetime | None:
    """When the object was last changed, by the server's clock: the latest time of its
    managedFields (the apply's entry, second precision); None without them."""
    times = [
        parse_time(str(e.get("time") or "")) for e in at(obj, "metadata", "managedFields") or []
    ]
    found = [t for t in times if t is not None]
    return max(found) if found else None


def on_refusal(t: Target, event: Obj, synced: bool, now: float) -> None:
    """A FailedCreate event of the target's controller: the verdict at once (an admission
    denial), or once it stands REFUSAL_CONFIRM_S (a quota: ``Target.refusal``), or only named
    by the timeout. Events from before our apply do not count: with no apply time known, only
    those that came after the watch's first listing (``synced``)."""
    if t.since is not None:
        if event_instant(event) < t.since:
            return
    elif not synced:
        return
    message = str(event.get("message") or "").strip()
    t.refused = message
    # The event may come before the workload's own watch has delivered it: the event's
    # involvedObject names its namespace (the fix-it command in the verdict needs it).
    seen = t.obj or {
        "metadata": {"name": t.name, "namespace": at(event, "involvedObject", "namespace")}
    }
    verdict = t.viewer.event_refusal(seen, message)
    if verdict is None:
        return
    if not verdict.confirm:
        raise RolloutFailed(verdict.message, reason="FailedCreate")
    if t.refusal is None:
        t.refusal = (now, event, verdict.message)


def confirm_refusal(api: ApiClient, namespace: str, t: Target, deadline: float) -> None:
    """The refusal stood REFUSAL_CONFIRM_S: the verdict, unless the pod it names exists by now
    (a StatefulSet's pod has its name before it is created; its ADDED may not be here yet)."""
    assert t.refusal is not None
    _, event, verdict = t.refusal
    named = _REFUSED_POD.search(str(event.get("message") or ""))
    if named is not None:
        found = kube.retry(
            functools.partial(kube.get, api, "v1", "Pod", named.group(1), namespace),
            deadline=deadline,
        )
        if found is not None and not is_deleting(found):
            t.refusal = None
            return
    raise RolloutFailed(verdict, reason="FailedCreate")


# The pod an API server refusal names: `pods "web-1" is forbidden: ...`.
_REFUSED_POD = re.compile(r'pods "([^"]+)" is forbidden')


def on_new_pod(t: Target, pod: Obj) -> None:
    """A pod of the new revision created since the refusal: it was passing (the quota had not
    yet seen a deleted pod go); a new refusal starts its own confirmation."""
    if t.refusal is None:
        return
    created = parse_time(str(at(pod, "metadata", "creationTimestamp") or ""))
    # Second precision both: a pod of the same second as the refusal may have come after it.
    if created is not None and created >= event_instant(t.refusal[1]):
        t.refusal = None
