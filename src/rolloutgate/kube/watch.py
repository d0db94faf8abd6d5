"""The one list-then-watch (kubectl's ``UntilWithSync``, client-go's reflector)."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes.client import ApiClient

from rolloutgate.errors import (
    ApiError,
    ClusterError,
    ClusterUnreachable,
)
from rolloutgate.kube.resources import (
    describe_resource,
    dynamic,
    list_once,
    resource,
    scoped_namespace,
)
from rolloutgate.kube.retry import BACKOFF_S, REQUEST_TIMEOUT_S, api_errors
from rolloutgate.objects import Obj, at

T = TypeVar("T")

# Longest server-side watch; a wait's own deadline usually ends it sooner.
WATCH_MAX_S = 300


SYNCED = "SYNCED"


@dataclass(frozen=True)
class WatchEvent:
    """ADDED, MODIFIED or DELETED, and the object as the server sent it; or SYNCED (no object)
    after each list, once every listed object was delivered: "what exists now" is known."""

    type: str
    obj: Obj


class Watch:
    """List, then watch, the objects of one kind until the caller's deadline or ``stop()``.

    kubectl's ``UntilWithSync`` and client-go's reflector are the model: the first list is
    delivered as ADDED events; the watch resumes from the last resourceVersion when the server
    ends it; 410 Gone lists again and delivers the difference (DELETED for what disappeared);
    no answer, 429 and 5xx are retried with backoff until the deadline, resuming where it left
    off. Other errors (403, 404, ...) are raised as domain errors. Iteration ends at the
    deadline or after ``stop()``; ``stop()`` closes the connection, from any thread.
    """

    def __init__(
        self,
        api: ApiClient,
        api_version: str,
        kind: str,
        namespace: str | None,
        *,
        deadline: float,
        label_selector: str | None = None,
        field_selector: str | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.api, self.api_version, self.kind, self.namespace = api, api_version, kind, namespace
        self.deadline = deadline
        self.label_selector, self.field_selector = label_selector, field_selector
        self.on_retry = on_retry
        self.last_error: str | None = None  # the last transient error, for timeout messages
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._response: Any = None
        self._known: dict[str, Obj] = {}

    def stop(self) -> None:
        """End the iteration now: closes the open watch connection, if any."""
        self._stopped.set()
        with self._lock:
            response = self._response
        if response is not None:
            _shut(response)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def __iter__(self) -> Iterator[WatchEvent]:
        rv: str | None = None
        delay = BACKOFF_S[0]
        while not self._stopped.is_set() and time.monotonic() < self.deadline:
            try:
                if rv is None:
                    rv, events = self._relist()
                    yield from events
                for event in self._stream(rv):
                    if event.type == "BOOKMARK":
                        rv = str(at(event.obj, "metadata", "resourceVersion") or rv)
                        continue
                    rv = str(at(event.obj, "metadata", "resourceVersion") or rv)
                    self._remember(event)
                    yield event
                delay = BACKOFF_S[0]  # the server ended a healthy watch: resume from rv
            except ApiError as e:
                if e.status == 410:
                    rv = None  # our resourceVersion is too old: list again
                    continue
                if not e.transient:
                    raise
                delay = self._back_off(e, delay)
            except ClusterUnreachable as e:
                delay = self._back_off(e, delay)

    def _back_off(self, e: ClusterError, delay: float) -> float:
        if self._stopped.is_set():
            return delay
        self.last_error = str(e)
        if self.on_retry is not None:
            self.on_retry(f"watching {self.kind}s: {e}; retrying in {delay:.1f} s")
        pause = min(delay * random.uniform(0.8, 1.2), max(0.0, self.deadline - time.monotonic()))
        self._stopped.wait(pause)
        return min(delay * 2, BACKOFF_S[1])

    def _relist(self) -> tuple[str, list[WatchEvent]]:
        # One attempt: the watch's own loop retries, and notices stop() between attempts.
        listing = list_once(
            self.api,
            self.api_version,
            self.kind,
            self.namespace,
            self.label_selector,
            self.field_selector,
        )
        items = listing.get("items") or []
        # A list answer's items carry neither kind nor apiVersion; the watch's objects do.
        for item in items:
            item.setdefault("kind", self.kind)
            item.setdefault("apiVersion", self.api_version)
        current = {_key(o): o for o in items}
        events = [WatchEvent("DELETED", o) for k, o in self._known.items() if k not in current]
        events += [
            WatchEvent("MODIFIED" if k in self._known else "ADDED", o) for k, o in current.items()
        ]
        self._known = current
        events.append(WatchEvent(SYNCED, {}))
        return str(at(listing, "metadata", "resourceVersion") or ""), events

    def _remember(self, event: WatchEvent) -> None:
        if event.type == "DELETED":
            self._known.pop(_key(event.obj), None)
        else:
            self._known[_key(event.obj)] = event.obj

    def _stream(self, rv: str) -> Iterator[WatchEvent]:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return
        timeout_s = max(1, min(WATCH_MAX_S, int(remaining) + 1))
        res = resource(self.api, self.api_version, self.kind)
        what = describe_resource(res, self.namespace)
        path = res.path(namespace=scoped_namespace(res, self.namespace))  # type: ignore[no-untyped-call]
        with api_errors("watch", what):
            response = dynamic(self.api).request(
                "get",
                path,
                watch=True,
                resource_version=rv,
                timeout_seconds=timeout_s,
                allow_watch_bookmarks=True,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
                serialize=False,
                # The client-side read timeout is a backstop for a server that stops answering.
                _request_timeout=(REQUEST_TIMEOUT_S, timeout_s + 10),
            )
        with self._lock:
            self._response = response
        if self._stopped.is_set():  # stop() came before the response was ours to close
            _shut(response)
        try:
            with api_errors("watch", what):
                for raw in _lines(response):
                    if self._stopped.is_set():
                        return
                    event = json.loads(raw)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        # A Status object: 410 Gone for an expired resourceVersion, else a fault.
                        raise ApiError(
                            f"watch {what}: {obj.get('code')} {obj.get('message')}",
                            status=int(obj.get("code") or 500),
                        )
                    yield WatchEvent(str(event.get("type")), obj)
        except ClusterUnreachable:
            if self._stopped.is_set():  # our own stop() closed the socket
                return
            raise
        finally:
            with self._lock:
                self._response = None
            with suppress(Exception):
                response.release_conn()


def _key(obj: Obj) -> str:
    return f"{at(obj, 'metadata', 'namespace') or ''}/{at(obj, 'metadata', 'name')}"


def _lines(response: Any) -> Iterator[bytes]:
    """The newline-delimited JSON events of a watch response, as they arrive."""
    pending = b""
    for chunk in response.stream(None, decode_content=False):
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def _shut(response: Any) -> None:
    """Shut the response's socket down: a read blocked on it in another thread returns at once
    (closing alone does not wake a blocked read)."""
    sock = getattr(getattr(response, "connection", None), "sock", None)
    if sock is not None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    with suppress(Exception):
        response.close()


def wait_gone(
    api: ApiClient, api_version: str, kind: str, name: str, namespace: str, deadline: float
) -> bool:
    """Watch until the object is gone (True) or the deadline passes (False)."""
    watch = Watch(
        api, api_version, kind, namespace, deadline=deadline, field_selector=f"metadata.name={name}"
    )
    present = False
    try:
        for event in watch:
            if event.type == "DELETED" or (event.type == SYNCED and not present):
                return True
            present = True
    finally:
        watch.stop()
    return False
