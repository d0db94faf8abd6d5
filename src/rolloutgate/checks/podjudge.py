"""The verdict on each pod of a new release while a rollout is waited on.

One ``PodJudge`` per wait holds what the pure rules need beyond the pod itself: the baseline
taken before the apply (``podhistory``: only what happened since counts), the pod's events
(autoscaler decisions for ``scheduling``, probe answers for ``readiness``), the Nodes, and
since when each pod has been unschedulable or answering "not ready". ``rollout.wait`` feeds it
pods and events and asks it on every tick while a timer runs (``pending``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.checks import pods, readiness, scheduling
from rolloutgate.checks.podhistory import Baseline
from rolloutgate.errors import ApiError, ClusterError
from rolloutgate.objects import Obj, at, is_ready, name_of

# How long an unschedulable pod waits for an autoscaler to announce a scale-up, by default.
# Cluster Autoscaler scans every 10 s; Karpenter nominates a node within seconds.
UNSCHEDULABLE_GRACE_S = 30.0
# How long a listing of a workload's pods (every revision) answers whether any are terminating:
# asked only when an unschedulable pod's verdict would be due, at most this often.
SIBLINGS_EVERY_S = 1.0
# A not-ready pod past its ready_grace without a definite answer from the kubelet's events is
# asked by the gate itself (``readyprobe``) at most this often; and the wait ticks from this
# long before the grace ends (it wakes at least every 5 s), so the first question is on time.
ASK_READY_EVERY_S = 2.0
ASK_READY_LEAD_S = 5.0


class PodJudge:
    """Judges the new release's pods; ``judge`` returns (reason, message) for a verdict."""

    def __init__(
        self,
        api: ApiClient | None,
        namespace: str,
        *,
        max_restarts: int,
        baseline: Baseline | None = None,
        ready_grace: float | None = None,
        unschedulable_grace: float = UNSCHEDULABLE_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
        nodes: list[Obj] | None = None,
        ask_ready: Callable[[Obj], str | None] | None = None,
    ) -> None:
        self.api, self.namespace = api, namespace
        self.max_restarts = max_restarts
        self.baseline = baseline
        self.unschedulable_grace = unschedulable_grace
        self.never_ready = readiness.NeverReady(ready_grace) if ready_grace else None
        # The gate's own readiness question (a definite "not ready", or None); by default the
        # pod's HTTP readiness probe sent through a port-forward, when there is a cluster.
        if ask_ready is None and api is not None and ready_grace:
            from rolloutgate.checks.readyprobe import ProbeAsker

            ask_ready = ProbeAsker(api, namespace)
        self.ask_ready = ask_ready
        self.clock = clock
        self.notes: dict[str, str] = {}  # pod name → why it waits (progress lines)
        self.warnings: list[str] = []  # what the judge cannot do, said once in the progress
        self._events: dict[str, dict[str, Obj]] = {}  # pod name → event key → event
        self._unschedulable: dict[str, float] = {}  # pod uid → first seen unschedulable
        self._contentions: dict[str, scheduling.Contention | None] = {}  # pod uid → found
        self._left: dict[str, float] = {}  # pod uid → last seen with its workload's pods leaving
        self._was_leaving: set[str] = (
            set()
        )  # pod uids: their workload's pods were, at the last look
        self._siblings: dict[str, tuple[float, list[Obj]]] = {}  # selector → (read at, pods)
        self._nodes = nodes
        self._nodes_read = nodes is not None
        self._absent: str | None = None  # why no autoscaler runs (None: one may)
        self._absent_read = api is None

    @property
    def wants_events(self) -> bool:
        """Whether the wait should watch the namespace's pod events."""
        return self.never_ready is not None or bool(self._unschedulable)

    def pending(self) -> bool:
        """Whether a verdict may come from the clock alone (a grace running out)."""
        if self._unschedulable:
            return True
        nr = self.never_ready
        if nr is None:
            return False
        return nr.pending() or (
            self.ask_ready is not None and nr.near_grace(self.clock(), ASK_READY_LEAD_S)
        )

    def on_event(self, event: Obj, deleted: bool = False) -> str | None:
        """Keep a pod's event; returns the pod's name (None: not about a pod)."""
        involved = event.get("involvedObject") or {}
        if involved.get("kind") != "Pod" or not involved.get("name"):
            return None
        pod = str(involved["name"])
        key = str(at(event, "metadata", "uid") or name_of(event))
        if deleted:
            self._events.get(pod, {}).pop(key, None)
        else:
            self._events.setdefault(pod, {})[key] = event
        return pod

    def events_of(self, pod: Obj) -> list[Obj]:
        uid = at(pod, "metadata", "uid")
        return [
            e
            for e in self._events.get(name_of(pod), {}).values()
            if not uid or at(e, "involvedObject", "uid") in (None, uid)
        ]

    def judge(
        self, pod: Obj, selector: str | None = None, *, makes_room: bool = True
    ) -> tuple[str, str] | None:
        """(reason, message) when the pod fails the release, else None (it may still).
        `selector`: the label selector of the pod's workload (every revision), to find the
        old pods that may hold what an unschedulable new pod waits for; `makes_room`: whether
        its workload's update takes old pods down first (else, with no autoscaler on the
        cluster, an unschedulable pod fails at once: nothing will make room for it)."""
        failure = pods.pod_failure(pod, max_restarts=self.max_restarts, baseline=self.baseline)
        if failure:
            return failure
        now, name, uid = self.clock(), name_of(pod), str(at(pod, "metadata", "uid"))
        message = pods.unschedulable(pod)
        if message is not None:
            decision = self._decide(pod, message, selector, now, makes_room, ())
            if decision.failed:
                # Asked only of a verdict to be (a LIST): are pods of its workload leaving?
                leaving = self._leaving(pod, message, selector, now)
                if leaving or uid in self._was_leaving:
                    # Leaving, or gone since the last look: the grace and the settling time
                    # count from now.
                    self._unschedulable[uid] = self._left[uid] = now
                    if leaving:
                        self._was_leaving.add(uid)
                    else:
                        self._was_leaving.discard(uid)
                    decision = self._decide(pod, message, selector, now, makes_room, leaving)
            if decision.failed:
                return "Unschedulable", decision.message
            self.notes[name] = decision.message
            return None
        if self._unschedulable.pop(uid, None) is not None:
            self.notes.pop(name, None)
            self._left.pop(uid, None)
            self._was_leaving.discard(uid)
        if self.never_ready is not None:
            if is_ready(pod):
                self.never_ready.forget(pod)
                return None
            self.never_ready.observe(pod, self.events_of(pod), now)
            text = self.never_ready.overdue(pod, now)
            asking = self.ask_ready is not None and text is None
            if asking and self.never_ready.ask_due(pod, now, ASK_READY_EVERY_S):
                assert self.ask_ready is not None
                self.never_ready.asked(pod, now, self.ask_ready(pod))
                text = self.never_ready.overdue(pod, self.clock())
            if text:
                return "NeverReady", text
        return None

    def _decide(
        self,
        pod: Obj,
        message: str,
        selector: str | None,
        now: float,
        makes_room: bool,
        leaving: tuple[str, ...],
    ) -> scheduling.Decision:
        uid = str(at(pod, "metadata", "uid"))
        first = self._unschedulable.setdefault(uid, now)
        left = self._left.get(uid)
        return scheduling.decide(
            pod,
            message,
            self.events_of(pod),
            self.nodes(),
            unschedulable_for_s=now - first,
            grace_s=self.unschedulable_grace,
            blocked=self._contention(pod, message, selector),
            absent=None if makes_room else self.no_autoscaler(),
            leaving=leaving,
            left_for_s=None if left is None else now - left,
        )

    def _leaving(self, pod: Obj, message: str, selector: str | None, now: float) -> tuple[str, ...]:
        """The terminating pods of the pod's workload that give back what it waits for
        (``scheduling.leaving``)."""
        if not selector or not scheduling.freed_by_leaving(message):
            return ()
        return scheduling.leaving(pod, message, self._workload_pods(selector, now) or [])

    def _workload_pods(self, selector: str, now: float) -> list[Obj] | None:
        """The pods of a workload (every revision), from a listing at most SIBLINGS_EVERY_S old:
        one LIST a second per workload while one of its pods waits for room. A listing that
        fails keeps the last one; None when there is none (or no API)."""
        if self.api is None:
            return None
        read_at, pods_ = self._siblings.get(selector, (float("-inf"), None))
        if now - read_at >= SIBLINGS_EVERY_S:
            try:
                listing = kube.list_objects(
                    self.api, "v1", "Pod", self.namespace, label_selector=selector
                )
            except ClusterError:
                return pods_  # asked again at the next judgement
            pods_ = list(listing.get("items") or [])
            self._siblings[selector] = (now, pods_)
        return pods_

    def _contention(
        self, pod: Obj, message: str, selector: str | None
    ) -> scheduling.Contention | None:
        """Whether the release's own old pods hold what the pod waits for; looked for once per
        pod (a listing of its workload's pods), and only when the scheduler names an extended
        resource insufficient."""
        uid = str(at(pod, "metadata", "uid"))
        if uid in self._contentions:
            return self._contentions[uid]
        wanted = [r for r in scheduling.pod_requests(pod) if scheduling.extended(r)]
        if not any(f"Insufficient {r}" in message for r in wanted) or not selector:
            return None
        siblings = self._workload_pods(selector, self.clock())
        if siblings is None:
            return None  # asked again at the next judgement
        found = scheduling.contention(pod, message, siblings, self.nodes())
        self._contentions[uid] = found
        return found

    def forget(self, pod: Obj) -> None:
        self._unschedulable.pop(str(at(pod, "metadata", "uid")), None)
        self._left.pop(str(at(pod, "metadata", "uid")), None)
        self._was_leaving.discard(str(at(pod, "metadata", "uid")))
        self.notes.pop(name_of(pod), None)
        if self.never_ready is not None:
            self.never_ready.forget(pod)

    def events_refused(self, error: ApiError) -> None:
        """The pod events cannot be watched (no `list`/`watch` on events): the rules that need
        them fall back (unschedulable: the size check and the grace; ready_grace: off)."""
        self.warnings.append(
            f"cannot watch the pods' events ({error}): autoscaler events and ready_grace are not "
            "judged; grant list and watch on events (docs/rbac.md)"
        )
        if self.never_ready is not None:
            self.never_ready = None

    def no_autoscaler(self) -> str | None:
        """Why no autoscaler can add a node (then an unschedulable pod fails at once), or None
        when one may run or nobody can tell (the autoscaler's events and the grace decide).
        Asked once: one GET of /apis and one of Cluster Autoscaler's status ConfigMap."""
        if self._absent_read or self.api is None:
            return self._absent
        namespace, name = scheduling.CA_STATUS
        try:
            groups = kube.served_groups(self.api)
            try:
                ca_status: bool | None = (
                    kube.get(self.api, "v1", "ConfigMap", name, namespace) is not None
                )
            except ApiError as e:
                if e.status not in (401, 403):
                    return None  # asked again at the next judgement
                ca_status = None  # no right to read kube-system: nobody can tell
        except ClusterError:
            return None  # no answer: asked again at the next judgement
        self._absent = scheduling.no_autoscaler(groups, ca_status)
        self._absent_read = True
        return self._absent

    def nodes(self) -> list[Obj] | None:
        """The cluster's Nodes, read once; None when they cannot be read (no ClusterRole to
        list nodes: the size check is skipped, the rest still holds)."""
        if not self._nodes_read and self.api is not None:
            try:
                listing = kube.list_objects(self.api, "v1", "Node", None)
                self._nodes = list(listing.get("items") or [])
                self._nodes_read = True
            except ApiError as e:
                if e.status not in (401, 403):
                    return None  # asked again at the next judgement (a restarting server)
                self._nodes_read = True
                self.warnings.append(
                    "cannot list Nodes (needs a ClusterRole with list on nodes): the "
                    "requests-larger-than-any-node check is skipped"
                )
            except ClusterError:
                return None  # no answer: asked again at the next judgement
        return self._nodes
