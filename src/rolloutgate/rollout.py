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
from dataclasses import dataclass, field

from kubernetes.client import ApiClient

from rolloutgate import kube, pods
from rolloutgate.errors import ClusterError, RolloutFailed, RolloutTimeout
from rolloutgate.objects import Obj, as_int, at, is_deleting, is_ready, name_of
from rolloutgate.workloads import Revision, RolloutStatus, StatusViewer, viewer_for

# How often a long wait reports progress when nothing changes.
PROGRESS_EVERY_S = 5.0


@dataclass
class _Target:
    """One workload being waited on, and what has been seen of it."""

    viewer: StatusViewer
    name: str
    generation: int | None
    obj: Obj = field(default_factory=dict)
    revision: Revision | None = None
    pods: dict[str, Obj] = field(default_factory=dict)
    status: RolloutStatus = field(default_factory=lambda: RolloutStatus(False, "no status seen"))
    done: bool = False

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

    def progress(self) -> str:
        ready = sum(1 for p in self.new_pods() if is_ready(p))
        state = "done" if self.done else self.status.message
        return f"{ready}/{self.viewer.replicas(self.obj)} ready ({state})"


@dataclass
class _Event:
    target: str  # _Target.key
    source: str  # "workload" | "pod" | "error"
    event: kube.WatchEvent | None = None
    error: BaseException | None = None


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
                    self.events.put(_Event(target, "error", error=e))

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
) -> list[Obj]:
    """Wait until every workload in `objs` has rolled out; returns them as last seen.

    ``pinned``: `objs` are what the apply returned; each wait is pinned to the generation the
    apply recorded, and a ProgressDeadlineExceeded condition is a verdict. Unpinned (a
    rollback's wait): the generation read first, and a leftover ProgressDeadlineExceeded of the
    failed release is not a verdict (the rollback's own deadline bounds the wait).

    RolloutFailed (reason, pod) as soon as a pod of a new revision cannot become ready, with the
    kubelet's message and the log tail; RolloutTimeout naming what was still missing when
    `deadline` (a time.monotonic() value) passed. API errors that retrying can cure (no
    answer, 429, 5xx) are retried until the deadline.
    """
    started = time.monotonic()
    targets = {
        t.key: t
        for t in (
            _Target(
                viewer_for(o),
                name_of(o),
                as_int(at(o, "metadata", "generation")) or None if pinned else None,
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
        last_report = 0.0
        while not all(t.done for t in targets.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _timeout(api, namespace, targets, started, feed.last_error())
            try:
                item: _Event | None = feed.events.get(timeout=min(remaining, PROGRESS_EVERY_S))
            except queue.Empty:
                item = None
            if item is not None:
                _handle(api, namespace, targets[item.target], item, feed, max_restarts, pinned,
                        deadline, on_retry)  # fmt: skip
            now = time.monotonic()
            if on_progress and now - last_report >= PROGRESS_EVERY_S:
                elapsed = now - started
                for t in targets.values():
                    on_progress(f"rollout {t.key}: {t.progress()}, {elapsed:.0f} s")
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


def _handle(
    api: ApiClient,
    namespace: str,
    t: _Target,
    item: _Event,
    feed: _Feed,
    max_restarts: int,
    pinned: bool,
    deadline: float,
    on_retry: Callable[[str], None] | None,
) -> None:
    """Apply one event to its target; raises the verdict when there is one."""
    if item.source == "error":
        error = item.error
        text = str(error) if isinstance(error, ClusterError) else f"{type(error).__name__}: {error}"
        raise ClusterError(f"watching {t.key} in {namespace} failed: {text}") from error
    event = item.event
    if event is None or event.type == kube.SYNCED:
        return
    if item.source == "pod":
        pod_name = name_of(event.obj)
        if event.type == "DELETED":
            t.pods.pop(pod_name, None)
            return
        t.pods[pod_name] = event.obj
        if t.revision is not None and event.obj in t.new_pods() and not t.done:
            failure = pods.pod_failure(event.obj, max_restarts=max_restarts)
            if failure:
                raise _pod_failed(api, namespace, t, event.obj, *failure, deadline=deadline)
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


def _pod_failed(
    api: ApiClient,
    namespace: str,
    t: _Target,
    pod: Obj,
    reason: str,
    message: str,
    *,
    deadline: float,
) -> RolloutFailed:
    pod_name = name_of(pod)
    container = _failing_container(pod)
    previous = _crash_in_previous_log(pod, container, reason)
    if reason in pods.NEVER_STARTED:
        container = None  # no process ever ran: there is no log to show
    tail = ""
    if container:
        tail, previous = _crash_log(api, namespace, pod_name, container, previous, deadline)
    revision = t.revision.name if t.revision else "?"
    text = f"rollout {t.name} (revision {revision}) failed: pod {pod_name}: {reason}: {message}"
    if tail:
        which = "previous" if previous else "current"
        text += f"\nlast log lines of container {container} ({which}):\n{tail}"
    return RolloutFailed(text, reason=reason, pod=pod_name)


def _crash_log(
    api: ApiClient,
    namespace: str,
    pod: str,
    container: str,
    previous: bool,
    deadline: float,
    *,
    within_s: float = 5.0,
) -> tuple[str, bool]:
    """The log tail of the crashed instance, and whether it came from the previous one.

    The kubelet's idea of which instance is "previous" lags the pod status, and it removes a
    dead instance (and its log) soon after restarting it: ask for the other instance too, and
    again for a few seconds, before settling for the "no log" note.
    """
    until = min(time.monotonic() + within_s, deadline)
    while True:
        for prev in (previous, not previous):
            tail = pods.log_tail(api, namespace, pod, container, previous=prev)
            # The kubelet answers 200 with this text for an instance it already removed.
            if tail and not tail.startswith((pods.NO_LOG, "unable to retrieve container logs")):
                return tail, prev
        if time.monotonic() >= until:
            return tail, previous
        time.sleep(0.5)


def _crash_in_previous_log(pod: Obj, container: str | None, reason: str) -> bool:
    """Whether the crash is in the previous instance's log rather than the current one's.

    A container that has just exited is still the current instance; once the kubelet restarted
    it (or backs off before doing so), the crashed instance is the previous one.
    """
    if reason not in {"CrashLoopBackOff", "OOMKilled", "TooManyRestarts"}:
        return False
    for cs in pods.statuses(pod):
        if cs.get("name") == container:
            return not isinstance(at(cs, "state", "terminated"), dict)
    return True


def _failing_container(pod: Obj) -> str | None:
    for cs in pods.statuses(pod):
        if not cs.get("ready"):
            return str(cs.get("name"))
    return None


def _timeout(
    api: ApiClient,
    namespace: str,
    targets: dict[str, _Target],
    started: float,
    api_trouble: str | None,
) -> RolloutTimeout:
    elapsed = time.monotonic() - started
    parts: list[str] = []
    for t in targets.values():
        if t.done:
            continue
        new = t.new_pods()
        ready = sum(1 for p in new if is_ready(p))
        parts.append(f"{t.key}: {ready}/{t.viewer.replicas(t.obj)} new pods ready")
        parts.append(t.status.message)
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
    return RolloutTimeout(
        f"rollout {first.name} (revision {revision}) not done after "
        f"{elapsed:.0f} s: {'; '.join(parts)}. Raise the rollout timeout if the model is slow "
        "to load, or look at the readiness probe and the pod's log",
        reason="Timeout",
        pod=None,
    )
