"""Rollout readiness: kubectl `rollout status` rules pinned to a revision, plus pod fail-fast.

The rules (`deployment_status`, `pod_failure`) are pure functions of API objects as dicts, tested
on recorded status sequences. `wait` drives them from watches of the Deployment and of the new
ReplicaSet's pods, under one deadline.
"""

from __future__ import annotations

import copy
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rolloutgate import kube
from rolloutgate.errors import ClusterError, RolloutFailed, RolloutTimeout

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
POD_TEMPLATE_HASH = "pod-template-hash"

# Waiting reasons that do not cure themselves within a rollout: each is a verdict at once.
WAITING_FAILURES = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
    }
)

# Failures where no container process ever ran, so no log exists.
_NEVER_STARTED = frozenset(
    {"ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName", "Unschedulable"}
)

# log_tail's answer when there is no log, so callers can tell it from a log.
NO_LOG = "(no log: "

# How often a long wait reports progress when nothing changes.
PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True)
class Verdict:
    """One evaluation of the readiness rules: done, or what is still missing."""

    done: bool
    message: str


def _get(obj: Obj | None, *path: str) -> Any:
    """obj[path[0]][path[1]]... or None where a level is missing."""
    value: Any = obj
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int) else 0


def revision_of(obj: Obj) -> str | None:
    value = _get(obj, "metadata", "annotations", REVISION)
    return str(value) if value is not None else None


def deployment_status(dep: Obj, revision: str | None, *, progress_deadline: bool = True) -> Verdict:
    """kubectl rollout status rules, in kubectl's order, for one observed Deployment.

    `revision` pins the rollout this gate created: any other revision means another actor
    rolled the Deployment meanwhile. Raises RolloutFailed for a revision change
    (reason "RevisionChanged") and, unless `progress_deadline` is False, for
    ProgressDeadlineExceeded.
    """
    name = _get(dep, "metadata", "name") or "?"
    if revision is not None:
        current = revision_of(dep)
        if current != revision:
            raise RolloutFailed(
                f"deployment {name}: revision changed from {revision} to {current} while the "
                "gate waited: another actor (a person, a CI job, an operator) rolled it out; "
                f"see `kubectl rollout history deployment/{name}`",
                reason="RevisionChanged",
            )
    generation = _int(_get(dep, "metadata", "generation"))
    observed = _int(_get(dep, "status", "observedGeneration"))
    if generation > observed:
        return Verdict(
            False,
            f"waiting for the spec update to be observed (generation {generation}, "
            f"observed {observed})",
        )
    conditions = (_get(dep, "status", "conditions") or []) if progress_deadline else []
    for cond in conditions:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            deadline = _get(dep, "spec", "progressDeadlineSeconds")
            raise RolloutFailed(
                f"deployment {name} exceeded its progress deadline"
                f"{f' ({deadline} s)' if deadline is not None else ''}: "
                f"{cond.get('message', '')}",
                reason="ProgressDeadlineExceeded",
            )
    spec_replicas = _get(dep, "spec", "replicas")
    replicas = spec_replicas if isinstance(spec_replicas, int) else 1  # the API's default
    updated = _int(_get(dep, "status", "updatedReplicas"))
    total = _int(_get(dep, "status", "replicas"))
    available = _int(_get(dep, "status", "availableReplicas"))
    if updated < replicas:
        return Verdict(False, f"{updated}/{replicas} replicas updated")
    if total > updated:
        return Verdict(False, f"{total - updated} old replicas pending termination")
    if available < updated:
        return Verdict(False, f"{available}/{updated} updated replicas available")
    return Verdict(True, f"deployment {name} rolled out: {available}/{replicas} available")


def pod_failure(pod: Obj, *, max_restarts: int) -> tuple[str, str] | None:
    """(reason, message) when a pod of the new release cannot become ready, else None.

    A pod being deleted is no verdict: scaled-down pods end Failed when their process exits on
    SIGTERM, and a rollback to an older template reuses the ReplicaSet such pods belong to.
    """
    if _get(pod, "metadata", "deletionTimestamp"):
        return None
    statuses = (_get(pod, "status", "initContainerStatuses") or []) + (
        _get(pod, "status", "containerStatuses") or []
    )
    for cs in statuses:
        found = _container_failure(cs, max_restarts)
        if found:
            return found
    for cond in _get(pod, "status", "conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return "Unschedulable", f"pod cannot be scheduled: {cond.get('message', '')}"
    if _get(pod, "status", "phase") == "Failed":
        reason = _get(pod, "status", "reason") or "Failed"
        return str(reason), f"pod failed: {_get(pod, 'status', 'message') or reason}"
    return None


def _container_failure(cs: Obj, max_restarts: int) -> tuple[str, str] | None:
    name = cs.get("name", "?")
    # OOMKilled first: a container killed for memory then shows CrashLoopBackOff, which hides why.
    for state_key in ("state", "lastState"):
        terminated = _get(cs, state_key, "terminated")
        if isinstance(terminated, dict) and terminated.get("reason") == "OOMKilled":
            return "OOMKilled", (
                f"container {name} was killed for exceeding its memory limit "
                f"(exit code {terminated.get('exitCode')})"
            )
    waiting = _get(cs, "state", "waiting")
    if isinstance(waiting, dict) and waiting.get("reason") in WAITING_FAILURES:
        reason = str(waiting["reason"])
        return reason, f"container {name}: {waiting.get('message') or reason}"
    restarts = _int(cs.get("restartCount"))
    if restarts > max_restarts:
        last = _get(cs, "lastState", "terminated") or {}
        why = f"; last exit: {last.get('reason')} (code {last.get('exitCode')})" if last else ""
        return "TooManyRestarts", (
            f"container {name} restarted {restarts} times (more than {max_restarts}){why}"
        )
    # A new pod's container that exited non-zero and is not ready is crashing now: waiting for
    # the kubelet's CrashLoopBackOff costs a second start-up and back-off for no new information.
    if not cs.get("ready"):
        for state_key in ("state", "lastState"):
            terminated = _get(cs, state_key, "terminated")
            if isinstance(terminated, dict) and _int(terminated.get("exitCode")) != 0:
                return "CrashLoopBackOff", (
                    f"container {name} exited with code {terminated.get('exitCode')} "
                    f"({terminated.get('reason') or 'Error'}) and is not ready; the kubelet "
                    "restarts it into CrashLoopBackOff"
                )
    return None


def not_ready_reason(pod: Obj, probe_message: str | None = None) -> str:
    """Why a pod that is not failing is still not ready, for timeout messages."""
    name = _get(pod, "metadata", "name") or "?"
    phase = _get(pod, "status", "phase") or "Unknown"
    for cs in _get(pod, "status", "containerStatuses") or []:
        if cs.get("ready"):
            continue
        cname = cs.get("name", "?")
        waiting = _get(cs, "state", "waiting")
        if isinstance(waiting, dict):
            return f"pod {name}: container {cname} waiting ({waiting.get('reason')})"
        if _get(cs, "state", "running") is not None:
            probe = (
                f"readiness probe failing: {probe_message}" if probe_message else "no probe event"
            )
            return f"pod {name}: container {cname} not ready ({probe})"
        return f"pod {name}: container {cname} not ready"
    return f"pod {name}: {phase}, not ready"


def is_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in _get(pod, "status", "conditions") or []
    )


# --- the watch that drives the rules --------------------------------------------------------


@dataclass
class _Event:
    source: str  # "Deployment" | "Pod"
    type: str  # ADDED, MODIFIED, DELETED, or ERROR (then `error` is set)
    obj: Obj = field(default_factory=dict)
    error: BaseException | None = None


class _WatchThread(threading.Thread):
    """List, then watch, one kind under a deadline; every event goes to `out`.

    A watch the server ends (timeout_seconds) resumes from the last resourceVersion; one whose
    resourceVersion expired (410 Gone) lists again. Errors are handed to the consumer, which
    owns the verdict.
    """

    def __init__(
        self,
        api: ApiClient,
        api_version: str,
        kind: str,
        namespace: str,
        out: queue.Queue[_Event],
        deadline: float,
        *,
        field_selector: str | None = None,
        label_selector: str | None = None,
    ) -> None:
        super().__init__(name=f"rolloutgate-watch-{kind}", daemon=True)
        self.api, self.api_version, self.kind, self.namespace = api, api_version, kind, namespace
        self.out, self.deadline = out, deadline
        self.field_selector, self.label_selector = field_selector, label_selector
        self._stopped = threading.Event()
        self._watcher = kube.new_watcher()

    def stop(self) -> None:
        self._stopped.set()
        kube.stop_watcher(self._watcher)

    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # handed over: the consumer raises it with context
            if not self._stopped.is_set():
                self.out.put(_Event(self.kind, "ERROR", error=e))

    def _run(self) -> None:
        rv: str | None = None
        while not self._stopped.is_set():
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return
            if rv is None:
                listing = kube.list_objects(
                    self.api,
                    self.api_version,
                    self.kind,
                    self.namespace,
                    field_selector=self.field_selector,
                    label_selector=self.label_selector,
                )
                rv = str(_get(listing, "metadata", "resourceVersion"))
                for item in listing.get("items") or []:
                    self.out.put(_Event(self.kind, "ADDED", item))
            try:
                for kind, obj in kube.watch(
                    self.api,
                    self.api_version,
                    self.kind,
                    self.namespace,
                    resource_version=rv,
                    timeout_s=max(1, math.ceil(remaining)),
                    watcher=self._watcher,
                    field_selector=self.field_selector,
                    label_selector=self.label_selector,
                ):
                    if self._stopped.is_set():
                        return
                    rv = str(_get(obj, "metadata", "resourceVersion") or rv)
                    if kind != "BOOKMARK":
                        self.out.put(_Event(self.kind, kind, obj))
            except ApiException as e:
                if e.status != 410:
                    raise
                rv = None  # too old: list again


@dataclass
class _Rollout:
    """What the wait has seen so far."""

    api: ApiClient
    name: str
    namespace: str
    max_restarts: int
    generation: int | None
    started: float
    deadline: float
    progress_deadline: bool = True
    events: queue.Queue[_Event] = field(default_factory=queue.Queue)
    threads: list[_WatchThread] = field(default_factory=list)
    dep: Obj = field(default_factory=dict)
    revision: str | None = None
    pod_hash: str | None = None
    pods: dict[str, Obj] = field(default_factory=dict)
    verdict: Verdict = field(default_factory=lambda: Verdict(False, "no status seen yet"))

    def replicas(self) -> int:
        value = _get(self.dep, "spec", "replicas")
        return value if isinstance(value, int) else 1

    def new_pods(self) -> list[Obj]:
        return [
            p
            for p in self.pods.values()
            if self.pod_hash
            and _get(p, "metadata", "labels", POD_TEMPLATE_HASH) == self.pod_hash
            and not _get(p, "metadata", "deletionTimestamp")
        ]

    def progress(self) -> str:
        ready = sum(1 for p in self.new_pods() if is_ready(p))
        elapsed = time.monotonic() - self.started
        return f"rollout {self.name}: {ready}/{self.replicas()} ready, {elapsed:.0f} s"

    def start_watch(self, api_version: str, kind: str, **selectors: str) -> None:
        thread = _WatchThread(
            self.api, api_version, kind, self.namespace, self.events, self.deadline, **selectors
        )
        self.threads.append(thread)
        thread.start()

    def start_pod_watch(self) -> None:
        """Watch the pods of the new ReplicaSet: the Deployment's selector and its hash."""
        selector = selector_string(_get(self.dep, "spec", "selector") or {})
        if self.pod_hash:
            selector = ",".join(s for s in (selector, f"{POD_TEMPLATE_HASH}={self.pod_hash}") if s)
        self.start_watch("v1", "Pod", label_selector=selector)

    def stop(self) -> None:
        for thread in self.threads:
            thread.stop()


def wait(
    api: ApiClient,
    namespace: str,
    name: str,
    *,
    deadline: float,
    max_restarts: int,
    on_progress: Callable[[str], None] | None = None,
    generation: int | None = None,
    progress_deadline: bool = True,
) -> Obj:
    """Wait until Deployment `name` has rolled out the revision this run created.

    `generation` is the metadata.generation returned by the apply (default: the one read
    first). Returns the final Deployment. RolloutFailed (reason, pod) as soon as a pod of the new
    ReplicaSet cannot become ready, with the kubelet's message and the log tail; RolloutTimeout
    naming what was still missing when `deadline` (a time.monotonic() value) passed.

    `progress_deadline=False` ignores a ProgressDeadlineExceeded condition: a Deployment just
    restored by a rollback still carries the failed release's condition until the controller
    sees progress, and kubectl's rule would fail the healthy release on it.
    """
    state = _Rollout(
        api,
        name,
        namespace,
        max_restarts,
        generation,
        time.monotonic(),
        deadline,
        progress_deadline,
    )
    first = kube.get(api, "apps/v1", "Deployment", name, namespace)
    if first is None:
        raise RolloutFailed(
            f"deployment {namespace}/{name} does not exist; was it applied?", reason="NotFound"
        )
    state.events.put(_Event("Deployment", "ADDED", first))
    state.start_watch("apps/v1", "Deployment", field_selector=f"metadata.name={name}")
    last_report = 0.0
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _timeout(state)
            try:
                event = state.events.get(timeout=min(remaining, PROGRESS_EVERY_S))
            except queue.Empty:
                event = None
            if event is not None and _handle(state, event):
                return state.dep
            now = time.monotonic()
            if on_progress and now - last_report >= PROGRESS_EVERY_S:
                on_progress(state.progress())
                last_report = now
    finally:
        state.stop()


def _handle(state: _Rollout, event: _Event) -> bool:
    """Apply one event to the state; True when the rollout is done."""
    if event.type == "ERROR":
        raise ClusterError(
            f"watching {event.source}s of deployment {state.namespace}/{state.name} failed: "
            f"{kube.message_of(event.error) if event.error else 'unknown error'}"
        ) from event.error
    if event.source == "Pod":
        pod_name = str(_get(event.obj, "metadata", "name"))
        if event.type == "DELETED":
            state.pods.pop(pod_name, None)
            return False
        state.pods[pod_name] = event.obj
        if _get(event.obj, "metadata", "labels", POD_TEMPLATE_HASH) == state.pod_hash:
            failure = pod_failure(event.obj, max_restarts=state.max_restarts)
            if failure:
                raise _pod_failed(state, event.obj, *failure)
        return False
    if event.type == "DELETED":
        raise RolloutFailed(
            f"deployment {state.namespace}/{state.name} was deleted during the rollout",
            reason="Deleted",
        )
    state.dep = event.obj
    if state.generation is None:
        state.generation = _int(_get(event.obj, "metadata", "generation"))
    if state.revision is None and not _pin(state):
        return False
    state.verdict = deployment_status(
        event.obj, state.revision, progress_deadline=state.progress_deadline
    )
    return state.verdict.done


def _pin(state: _Rollout) -> bool:
    """Pin the revision (and pod-template-hash) of the rollout our apply started, once known.

    Right after an apply the controller may not have acted yet. observedGeneration is not
    enough: a change of replicas and template together is first synced as a scaling event,
    which records our generation while the old revision is still current. Our rollout is the
    ReplicaSet whose template is the Deployment's, once the Deployment carries its revision.
    """
    dep = state.dep
    if _int(_get(dep, "status", "observedGeneration")) < (state.generation or 0):
        state.verdict = Verdict(False, "waiting for the spec update to be observed")
        return False
    listing = kube.list_objects(
        state.api,
        "apps/v1",
        "ReplicaSet",
        state.namespace,
        label_selector=selector_string(_get(dep, "spec", "selector") or {}),
    )
    rs = new_replicaset(dep, listing.get("items") or [])
    if rs is None or revision_of(rs) != revision_of(dep):
        state.verdict = Verdict(False, "waiting for the new ReplicaSet to be created")
        return False
    state.revision = revision_of(rs)
    hash_label = _get(rs, "metadata", "labels", POD_TEMPLATE_HASH)
    state.pod_hash = str(hash_label) if hash_label is not None else None
    state.start_pod_watch()
    return True


def new_replicaset(dep: Obj, replicasets: list[Obj]) -> Obj | None:
    """The ReplicaSet the Deployment owns whose pod template is the Deployment's. Pure.

    As the controller matches them: templates equal but for the pod-template-hash label.
    """
    uid = _get(dep, "metadata", "uid")
    want = _get(dep, "spec", "template") or {}
    for rs in replicasets:
        owners = _get(rs, "metadata", "ownerReferences") or []
        if not any(o.get("uid") == uid and o.get("controller") for o in owners):
            continue
        template = copy.deepcopy(_get(rs, "spec", "template") or {})
        labels = _get(template, "metadata", "labels")
        if isinstance(labels, dict):
            labels.pop(POD_TEMPLATE_HASH, None)
        if template == want:
            return rs
    return None


def selector_string(selector: Obj) -> str:
    """A LabelSelector object as the query-string form the API takes."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def _pod_failed(state: _Rollout, pod: Obj, reason: str, message: str) -> Exception:
    pod_name = str(_get(pod, "metadata", "name"))
    container = _failing_container(pod)
    previous = _crash_in_previous_log(pod, container, reason)
    if reason in _NEVER_STARTED:
        container = None  # no process ever ran: there is no log to show
    tail = ""
    if container:
        tail, previous = _crash_log(state, pod_name, container, previous)
    text = (
        f"rollout {state.name} (revision {state.revision}) failed: pod {pod_name}: {reason}: "
        f"{message}"
    )
    if tail:
        which = "previous" if previous else "current"
        text += f"\nlast log lines of container {container} ({which}):\n{tail}"
    return RolloutFailed(text, reason=reason, pod=pod_name)


def _crash_log(
    state: _Rollout, pod: str, container: str, previous: bool, *, within_s: float = 5.0
) -> tuple[str, bool]:
    """The log tail of the crashed instance, and whether it came from the previous one.

    The kubelet's idea of which instance is "previous" lags the pod status, and it removes a
    dead instance (and its log) soon after restarting it: ask for the other instance too, and
    again for a few seconds, before settling for the "no log" note.
    """
    deadline = min(time.monotonic() + within_s, state.deadline)
    while True:
        for prev in (previous, not previous):
            tail = log_tail(state.api, state.namespace, pod, container, previous=prev)
            # The kubelet answers 200 with this text for an instance it already removed.
            if tail and not tail.startswith((NO_LOG, "unable to retrieve container logs")):
                return tail, prev
        if time.monotonic() >= deadline:
            return tail, previous
        time.sleep(0.5)


def _crash_in_previous_log(pod: Obj, container: str | None, reason: str) -> bool:
    """Whether the crash is in the previous instance's log rather than the current one's.

    A container that has just exited is still the current instance; once the kubelet restarted
    it (or backs off before doing so), the crashed instance is the previous one.
    """
    if reason not in {"CrashLoopBackOff", "OOMKilled", "TooManyRestarts"}:
        return False
    statuses = (_get(pod, "status", "initContainerStatuses") or []) + (
        _get(pod, "status", "containerStatuses") or []
    )
    for cs in statuses:
        if cs.get("name") == container:
            return not isinstance(_get(cs, "state", "terminated"), dict)
    return True


def _failing_container(pod: Obj) -> str | None:
    statuses = (_get(pod, "status", "initContainerStatuses") or []) + (
        _get(pod, "status", "containerStatuses") or []
    )
    for cs in statuses:
        if not cs.get("ready"):
            return str(cs.get("name"))
    return None


def log_tail(
    api: ApiClient, namespace: str, pod: str, container: str, *, previous: bool, lines: int = 20
) -> str:
    """The last `lines` of a container's log, or a note saying why there is none."""
    from kubernetes.client import CoreV1Api

    try:
        text = CoreV1Api(api).read_namespaced_pod_log(
            pod,
            namespace,
            container=container,
            previous=previous,
            tail_lines=lines,
            _request_timeout=10,
        )
    except ApiException as e:
        return f"{NO_LOG}{kube.message_of(e)})"
    return str(text).rstrip()


def probe_message(api: ApiClient, namespace: str, pod: str) -> str | None:
    """The message of the pod's latest Unhealthy event (a failing probe), if any."""
    events = kube.list_objects(
        api,
        "v1",
        "Event",
        namespace,
        field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod},reason=Unhealthy",
    )
    items = sorted(events.get("items") or [], key=event_instant)
    return str(items[-1].get("message", "")).strip() if items else None


def event_time(event: Obj) -> str:
    """When an event last happened, as the API gave it."""
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or _get(event, "metadata", "creationTimestamp")
        or ""
    )


def event_instant(event: Obj) -> datetime:
    """event_time as an instant: events carry Time ("...:46Z") or MicroTime ("...:46.712040Z"),
    which do not sort correctly as text."""
    try:
        return datetime.fromisoformat(event_time(event).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def _timeout(state: _Rollout) -> RolloutTimeout:
    elapsed = time.monotonic() - state.started
    new = state.new_pods()
    ready = sum(1 for p in new if is_ready(p))
    parts = [f"{ready}/{state.replicas()} new pods ready", state.verdict.message]
    for pod in new:
        if is_ready(pod):
            continue
        pod_name = str(_get(pod, "metadata", "name"))
        try:
            probe = probe_message(state.api, state.namespace, pod_name)
        except (ApiException, ClusterError):
            probe = None
        parts.append(not_ready_reason(pod, probe))
    return RolloutTimeout(
        f"rollout {state.name} (revision {state.revision or 'not yet known'}) not done after "
        f"{elapsed:.0f} s: {'; '.join(parts)}. Raise the rollout timeout if the model is slow "
        "to load, or look at the readiness probe and the pod's log",
        reason="Timeout",
        pod=None,
    )
