"""The benchmark's own watch of one namespace, running alongside the tools it measures.

The API's timestamps (a pod condition's lastTransitionTime, a container's finishedAt, an event's
firstTimestamp) have 1 s resolution: they are truncated to the second, so a latency measured
from them is too long by 0 to 1 s. The watch adds a sub-second wall-clock time for each: when
the benchmark first received the object in that state (a few ms after the API server had it).
Both are kept; the tables use the watch's.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes import client, watch
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from bench.cluster import DEPLOYMENT

# Waiting reasons that mean a container of the new release is failing (not merely starting).
FAILING_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
    }
)
# Event reasons that mark the same failures, with the kubelet's own time.
FAILING_EVENTS = frozenset({"BackOff", "Failed", "Unhealthy"})
WATCH_CHUNK_S = 30  # the server ends each watch after this; the loop resumes it


@dataclass
class Signal:
    """The first time the benchmark saw something, and the API's own (1 s) time for it."""

    seen: float
    api_time: float | None
    kind: str  # "terminated", "waiting:<reason>", "event:<reason>", "Ready"
    what: str


@dataclass
class Seen:
    """What the watch recorded for the pods of one image tag."""

    ready: dict[str, Signal] = field(default_factory=dict)  # pod name → became Ready
    failures: list[Signal] = field(default_factory=list)  # container states and events
    applied: float | None = None  # the Deployment's generation moved past the initial one


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class Observer:
    """Watch pods, events and the Deployment of `namespace` until stopped or `deadline`."""

    def __init__(self, api: ApiClient, namespace: str, tag: str, deadline: float) -> None:
        self.api, self.namespace, self.tag, self.deadline = api, namespace, tag, deadline
        self.seen = Seen()
        self.applied = threading.Event()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watches: list[watch.Watch] = []
        self._generation: int | None = None
        self._new_pods: set[str] = set()
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self._threads = [
            threading.Thread(target=self._loop, args=(core.list_namespaced_pod, self._pod)),
            threading.Thread(target=self._loop, args=(core.list_namespaced_event, self._event)),
            threading.Thread(
                target=self._loop,
                args=(apps.list_namespaced_deployment, self._deployment),
                kwargs={"field_selector": f"metadata.name={DEPLOYMENT}"},
            ),
        ]

    def start(self, generation: int | None) -> Observer:
        """`generation`: the Deployment's before the measured apply (None: not created yet)."""
        self._generation = generation
        for thread in self._threads:
            thread.daemon = True
            thread.start()
        return self

    def stop(self) -> Seen:
        self._stop.set()
        for w in list(self._watches):
            w.stop()  # type: ignore[no-untyped-call]
        for thread in self._threads:
            thread.join(timeout=WATCH_CHUNK_S + 5)
        return self.seen

    def _loop(self, lister: Any, handle: Any, **selectors: str) -> None:
        """List, then watch from the list's resourceVersion; relist on 410; until stopped."""
        rv: str | None = None
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            try:
                if rv is None:
                    listing = lister(self.namespace, _request_timeout=30, **selectors)
                    rv = listing.metadata.resource_version
                    for item in listing.items:
                        handle(item)
                w = watch.Watch()  # type: ignore[no-untyped-call]
                self._watches.append(w)
                for event in w.stream(  # type: ignore[no-untyped-call]
                    lister,
                    self.namespace,
                    resource_version=rv,
                    timeout_seconds=WATCH_CHUNK_S,
                    _request_timeout=WATCH_CHUNK_S + 10,
                    **selectors,
                ):
                    obj = event["object"]
                    rv = obj.metadata.resource_version
                    handle(obj)
                    if self._stop.is_set():
                        break
                self._watches.remove(w)
            except ApiException as e:
                if e.status != 410:
                    self._error(f"{lister.__name__}: {e.status} {e.reason}")
                rv = None  # too old, or a transient error: list again
            except Exception as e:  # a broken stream when stopped, or a transport error
                if self._stop.is_set():
                    return
                self._error(f"{lister.__name__}: {type(e).__name__}: {e}")
                rv = None

    def _error(self, text: str) -> None:
        self.errors.append(text)
        time.sleep(0.5)  # do not spin on a persistent error; the loop's deadline still holds

    def _is_new(self, pod: Any) -> bool:
        return any(c.image.endswith(f":{self.tag}") for c in pod.spec.containers or [])

    def _pod(self, pod: Any) -> None:
        if not self._is_new(pod):
            return
        now, name = time.time(), pod.metadata.name
        with self._lock:
            self._new_pods.add(name)
            for cond in pod.status.conditions or []:
                if cond.type == "Ready" and cond.status == "True" and name not in self.seen.ready:
                    self.seen.ready[name] = Signal(
                        now, _ts(cond.last_transition_time), "Ready", name
                    )
            for cs in pod.status.container_statuses or []:
                self._container(now, name, cs)

    def _container(self, now: float, pod: str, cs: Any) -> None:
        state, last = cs.state, cs.last_state
        pairs = (("state", state and state.terminated), ("lastState", last and last.terminated))
        for which, terminated in pairs:
            if terminated is not None and terminated.exit_code != 0:
                self.seen.failures.append(
                    Signal(
                        now,
                        _ts(terminated.finished_at),
                        "terminated",
                        f"{pod}: {which} terminated {terminated.reason} ({terminated.exit_code})",
                    )
                )
        waiting = state.waiting if state else None
        if waiting is not None and waiting.reason in FAILING_WAITING:
            self.seen.failures.append(
                Signal(now, None, f"waiting:{waiting.reason}", f"{pod}: {waiting.message}")
            )

    def _event(self, event: Any) -> None:
        ref = event.involved_object
        if ref.kind != "Pod" or event.reason not in FAILING_EVENTS:
            return
        # Only the new release's pods (a pod's ADDED comes before its events); and only the
        # readiness probe's failures, the one signal an unready pod gives, or the startup
        # probe's: with one (the iris example's since 3577fdd) the readiness probe runs only
        # after it passed, and on a busy node the kubelet's ~25 events per pod were spent on the
        # startup probe's refusals before any readiness failure was reported (issue 21).
        if ref.name not in self._new_pods:
            return
        message = event.message or ""
        if event.reason == "Unhealthy" and not ("Readiness" in message or "Startup" in message):
            return
        when = _ts(event.first_timestamp) or _ts(event.event_time)
        with self._lock:
            self.seen.failures.append(
                Signal(time.time(), when, f"event:{event.reason}", f"{ref.name}: {event.message}")
            )

    def _deployment(self, dep: Any) -> None:
        generation = dep.metadata.generation
        if self._generation is None or generation > self._generation:
            with self._lock:
                if self.seen.applied is None:
                    self.seen.applied = time.time()
            self.applied.set()
