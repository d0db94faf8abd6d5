"""Waiting for workloads to roll out: each kind's ``rollout status`` rules pinned to the revision
this run created, plus fail-fast on the new revision's pods.

Every workload of a release is waited on at the same time, from one queue fed by the watches
(``kube.Watch``) of each workload and of its new pods: any one's failure is the verdict as soon
as it is seen. The rules live in ``workloads`` (per kind) and ``pods`` (per pod).
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.checks import pods
from rolloutgate.checks.podhistory import Baseline
from rolloutgate.checks.podjudge import UNSCHEDULABLE_GRACE_S, PodJudge
from rolloutgate.errors import ApiError, ClusterError, RolloutFailed, RolloutTimeout
from rolloutgate.objects import (
    Obj,
    as_int,
    at,
    is_ready,
    name_of,
)
from rolloutgate.release.refusals import (
    REFUSAL_CONFIRM_S,
    Target,
    applied_at,
    confirm_refusal,
    on_new_pod,
    on_refusal,
    refusals_of,
)
from rolloutgate.workloads import RolloutStatus, viewer_for

# How often a long wait reports progress when nothing changes.
PROGRESS_EVERY_S = 5.0
# How often pods are judged again while a grace runs out (unschedulable, never ready).
TICK_S = 1.0
# The feed's target for the namespace's pod events (they belong to no one workload).
EVENTS = ""


@dataclass
class _Event:
    target: str  # Target.key
    source: str  # "workload" | "pod" | "event" | "refusal" | "error"
    event: kube.WatchEvent | None = None
    error: BaseException | None = None
    origin: str = ""  # of an error: the source whose watch failed


class _Feed:
    """Watches run in threads and feed one queue; the waiting thread owns every verdict."""

    def __init__(self) -> None:
        self.events: queue.Queue[_Event] = queue.Queue()
        self.watches: list[kube.Watch] = []

    def start(self, target: str, source: str, watch: kube.Watch) -> None:
        self.watches.append(watch)

        def run() -> None:
            try:
                for event in watch:
                    self.events.put(_Event(target, source, event))
            except Exception as e:  # handed over: the consumer raises it with context
                if not watch.stopped:
                    self.events.put(_Event(target, "error", error=e, origin=source))

        threading.Thread(target=run, name=f"rolloutgate-watch-{target}", daemon=True).start()

    def last_error(self) -> str | None:
        errors = [w.last_error for w in self.watches if w.last_error]
        return errors[-1] if errors else None

    def stop(self) -> None:
        for watch in self.watches:
            watch.stop()


def wait(
    api: ApiClient,
    namespace: str,
    objs: list[Obj],
    *,
    deadline: float,
    max_restarts: int,
    on_progress: Callable[[str], None] | None = None,
    pinned: bool = True,
    baseline: Baseline | None = None,
    ready_grace: float | None = None,
    unschedulable_grace: float = UNSCHEDULABLE_GRACE_S,
) -> list[Obj]:
    """Wait until every workload in `objs` has rolled out; returns them as last seen.

    ``pinned``: `objs` are what the apply returned; each wait is pinned to the generation the
    apply recorded, and a ProgressDeadlineExceeded condition is a verdict. Unpinned (a
    rollback's wait): the generation read first, and a leftover ProgressDeadlineExceeded of the
    failed release is not a verdict (the rollback's own deadline bounds the wait).

    RolloutFailed (reason, pod) as soon as a pod of a new revision cannot become ready, with the
    kubelet's message (the log tail comes with the diagnostics, gathered beside the rollback);
    RolloutTimeout naming what was still missing when `deadline` (a time.monotonic() value)
    passed. API errors that retrying can cure (no
    answer, 429, 5xx) are retried until the deadline.

    Pods are judged by ``podjudge.PodJudge``: on what happened since ``baseline`` (the
    workloads' pods listed just before the apply or restore; None: every pod's whole life),
    ``max_restarts`` exits per container, unschedulable pods against the autoscaler's events
    (``unschedulable_grace``), and, when ``ready_grace`` is set, servers answering "not ready".
    """
    started = time.monotonic()
    judge = PodJudge(
        api,
        namespace,
        max_restarts=max_restarts,
        baseline=baseline,
        ready_grace=ready_grace,
        unschedulable_grace=unschedulable_grace,
    )
    targets = {
        t.key: t
        for t in (
            Target(
                viewer_for(o),
                name_of(o),
                as_int(at(o, "metadata", "generation")) or None if pinned else None,
                since=applied_at(o),
            )
            for o in objs
        )
    }
    feed = _Feed()
    on_retry = _throttled(on_progress)
    try:
        for t in targets.values():
            first = kube.retry(
                functools.partial(
                    kube.get, api, t.viewer.api_version, t.viewer.kind, t.name, namespace
                ),
                deadline=deadline,
                on_retry=on_retry,
            )
            if first is None:
                raise RolloutFailed(
                    f"{t.viewer.kind.lower()} {namespace}/{t.name} does not exist; was it applied?",
                    reason="NotFound",
                )
            feed.start(
                t.key,
                "workload",
                kube.Watch(
                    api,
                    t.viewer.api_version,
                    t.viewer.kind,
                    namespace,
                    deadline=deadline,
                    field_selector=f"metadata.name={t.name}",
                    on_retry=on_retry,
                ),
            )
            if pinned and t.viewer.refusal_events():
                feed.start(
                    t.key,
                    "refusal",
                    _events_watch(api, namespace, refusals_of(t), deadline, on_retry),
                )
        last_report = last_tick = 0.0
        events_watched = False
        while not all(t.done for t in targets.values()):
            if judge.wants_events and not events_watched:
                # Started when first needed: its list delivers the events from before.
                events_watched = True
                feed.start(
                    EVENTS, "event", _events_watch(api, namespace, POD_EVENTS, deadline, on_retry)
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _timeout(api, namespace, targets, started, feed.last_error())
            every = TICK_S if judge.pending() else PROGRESS_EVERY_S
            confirm = [
                t.refusal[0] + REFUSAL_CONFIRM_S - time.monotonic()
                for t in targets.values()
                if t.refusal is not None
            ]
            try:
                wake = max(0.01, min(remaining, every, *confirm))
                item: _Event | None = feed.events.get(timeout=wake)
            except queue.Empty:
                item = None
            if item is not None and item.target == EVENTS:
                _handle_event(namespace, targets, item, judge)
            elif item is not None:
                _handle(api, namespace, targets[item.target], item, feed, judge, pinned,
                        deadline, on_retry)  # fmt: skip
            now = time.monotonic()
            for t in targets.values():
                if t.refusal is not None and now - t.refusal[0] >= REFUSAL_CONFIRM_S:
                    confirm_refusal(api, namespace, t, deadline)
            if judge.pending() and now - last_tick >= TICK_S:
                last_tick = now
                for t in targets.values():
                    for pod in t.new_pods() if not t.done else []:
                        _judge(t, pod, judge)
            if on_progress and judge.warnings:
                for warning in judge.warnings:
                    on_progress(f"rolloutgate: {warning}")
                judge.warnings.clear()
            if on_progress and now - last_report >= PROGRESS_EVERY_S:
                elapsed = now - started
                for t in targets.values():
                    on_progress(f"rollout {t.key}: {t.progress(judge.notes)}, {elapsed:.0f} s")
                last_report = now
        return [t.obj for t in targets.values()]
    finally:
        feed.stop()


def _throttled(write: Callable[[str], None] | None) -> Callable[[str], None] | None:
    """Retry notes at most every few seconds: an API server restart must not flood the log."""
    if write is None:
        return None
    last = [0.0]

    def note(text: str) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            write(f"rolloutgate: API server trouble, retrying: {text}")

    return note


def _events_watch(
    api: ApiClient,
    namespace: str,
    field_selector: str,
    deadline: float,
    on_retry: Callable[[str], None] | None,
) -> kube.Watch:
    """The namespace's Events that ``field_selector`` picks: every pod's, or the FailedCreate
    events of one workload's controller (StatefulSet, DaemonSet)."""
    return kube.Watch(
        api,
        "v1",
        "Event",
        namespace,
        deadline=deadline,
        field_selector=field_selector,
        on_retry=on_retry,
    )


POD_EVENTS = "involvedObject.kind=Pod"


def _handle_event(
    namespace: str, targets: dict[str, Target], item: _Event, judge: PodJudge
) -> None:
    """A pod event (probe answer, autoscaler decision): judge that pod again."""
    if isinstance(item.error, ApiError) and item.error.status in (401, 403):
        judge.events_refused(item.error)
        return
    if item.error is not None:
        raise ClusterError(f"watching pod events in {namespace} failed: {item.error}") from (
            item.error
        )
    event = item.event
    if event is None or event.type == kube.SYNCED:
        return
    name = judge.on_event(event.obj, deleted=event.type == "DELETED")
    for t in targets.values():
        pod = t.pods.get(name or "")
        if pod is not None and not t.done and pod in t.new_pods():
            _judge(t, pod, judge)


def _judge(t: Target, pod: Obj, judge: PodJudge) -> None:
    selector = t.viewer.pod_selector(t.obj) if t.obj else None
    failure = judge.judge(pod, selector, makes_room=t.viewer.makes_room(t.obj) if t.obj else True)
    if failure:
        raise _pod_failed(t, pod, *failure)


def _handle(
    api: ApiClient,
    namespace: str,
    t: Target,
    item: _Event,
    feed: _Feed,
    judge: PodJudge,
    pinned: bool,
    deadline: float,
    on_retry: Callable[[str], None] | None,
) -> None:
    """Apply one event to its target; raises the verdict when there is one."""
    if item.source == "error":
        error = item.error
        if item.origin == "refusal":
            # No right to watch events (403), or the watch broke: the rollout goes on, and the
            # refusals are named by its timeout only.
            judge.warnings.append(
                f"cannot watch {t.key}'s events ({error}): a quota's or an admission policy's "
                "refusal of its pods is named only when the rollout times out; grant list and "
                "watch on events (docs/rbac.md)"
            )
            return
        text = str(error) if isinstance(error, ClusterError) else f"{type(error).__name__}: {error}"
        raise ClusterError(f"watching {t.key} in {namespace} failed: {text}") from error
    event = item.event
    if event is None:
        return
    if item.source == "refusal":
        if event.type == kube.SYNCED:
            t.refusals_synced = True
        elif event.type != "DELETED":
            on_refusal(t, event.obj, t.refusals_synced, time.monotonic())
        return
    if event.type == kube.SYNCED:
        return
    if item.source == "pod":
        pod_name = name_of(event.obj)
        if event.type == "DELETED":
            t.pods.pop(pod_name, None)
            judge.forget(event.obj)
            return
        t.pods[pod_name] = event.obj
        if t.revision is not None and event.obj in t.new_pods():
            on_new_pod(t, event.obj)
        if t.revision is not None and event.obj in t.new_pods() and not t.done:
            _judge(t, event.obj, judge)
        return
    if event.type == "DELETED":
        raise RolloutFailed(
            f"{t.key} in {namespace} was deleted during the rollout", reason="Deleted"
        )
    t.obj = event.obj
    if t.generation is None:
        t.generation = as_int(at(event.obj, "metadata", "generation"))
    if t.revision is None:
        revision, waiting = kube.retry(
            lambda: t.viewer.pin(api, t.obj, t.generation), deadline=deadline, on_retry=on_retry
        )
        if revision is None:
            t.status = RolloutStatus(False, waiting)
            return
        t.revision = revision
        feed.start(
            t.key,
            "pod",
            kube.Watch(
                api,
                "v1",
                "Pod",
                namespace,
                deadline=deadline,
                label_selector=t.viewer.pod_selector(t.obj, revision),
                on_retry=on_retry,
            ),
        )
    t.status = t.viewer.status(t.obj, t.revision, progress_deadline=pinned)
    t.done = t.status.done


def _pod_failed(t: Target, pod: Obj, reason: str, message: str) -> RolloutFailed:
    """The verdict, from the status the watch delivered and nothing else: the log tail, events
    and pod states are gathered in parallel with the rollback (``diagnostics.gather``). Waiting for
    the crashed container's log here held the verdict, and the rollback, for up to 4 s: the
    kubelet holds log requests while it restarts a container (issue 21)."""
    revision = t.revision.name if t.revision else "?"
    text = f"rollout {t.name} (revision {revision}) failed: pod {name_of(pod)}: {reason}: {message}"
    # No process ever ran (an image that cannot be pulled): there is no log to read.
    container = None if reason in pods.NEVER_STARTED else _failing_container(pod)
    return RolloutFailed(text, reason=reason, pod=name_of(pod), container=container)


def _failing_container(pod: Obj) -> str | None:
    for cs in pods.statuses(pod):
        if not cs.get("ready"):
            return str(cs.get("name"))
    return None


def _timeout(
    api: ApiClient,
    namespace: str,
    targets: dict[str, Target],
    started: float,
    api_trouble: str | None,
) -> RolloutTimeout:
    elapsed = time.monotonic() - started
    parts: list[str] = []
    refused: list[str] = []
    for t in targets.values():
        if t.done:
            continue
        new = t.new_pods()
        ready = sum(1 for p in new if is_ready(p))
        parts.append(f"{t.key}: {ready}/{t.viewer.replicas(t.obj)} new pods ready")
        parts.append(t.status.message)
        generation = as_int(at(t.obj, "metadata", "generation"))
        if t.obj and generation > as_int(at(t.obj, "status", "observedGeneration")):
            parts.append(
                f"no controller observed generation {generation} of {t.key} in all that time: "
                "its controller (kube-controller-manager's) is likely not running or cut off "
                "from the API server; ask the cluster's operators"
            )
        if t.status.refused or t.refused:
            refused.append(
                f"{t.key}: the API server refuses its new pods: {t.status.refused or t.refused}"
            )
        for pod in new:
            if is_ready(pod):
                continue
            try:
                probe = pods.probe_message(api, namespace, name_of(pod))
            except ClusterError:
                probe = None
            parts.append(pods.not_ready_reason(pod, probe))
    if api_trouble:
        parts.append(f"the API server was unreachable or failing meanwhile: {api_trouble}")
    pending = [t for t in targets.values() if not t.done]
    first = pending[0] if pending else next(iter(targets.values()))
    revision = first.revision.name if first.revision else "not yet known"
    # A refusal is the cause: more time does not cure a quota or a policy by itself.
    advice = (
        f"{'; '.join(refused)}. Fix what refuses them (a ResourceQuota: `kubectl describe "
        f"resourcequota -n {namespace}`; an admission policy)"
        if refused
        else "Raise the rollout timeout if the model is slow to load, or look at the readiness "
        "probe and the pod's log"
    )
    return RolloutTimeout(
        f"rollout {first.name} (revision {revision}) not done after "
        f"{elapsed:.0f} s: {'; '.join(parts)}. {advice}",
        reason="Timeout",
        pod=None,
    )
