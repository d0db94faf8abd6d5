"""Reach a Service's pods from the gate's host: a port-forward made with the Python client.

A small thread-based TCP relay listens on 127.0.0.1 (never another address) on an ephemeral
port; each accepted connection gets its own port-forward websocket to one ready pod behind the
Service, so `requests` can use a plain http:// URL.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import ClusterError
from rolloutgate.objects import Obj, is_deleting, is_ready, name_of, selector_string

LOCALHOST = "127.0.0.1"
# How long one relayed connection waits for the API server to open its port-forward stream.
FORWARD_RETRY_S = 10.0
# How long the stream a relay opened at its start is kept for its first connection.
SPARE_FRESH_S = 1.0


def service_port(service: Obj, port: int | str) -> int | str:
    """The targetPort behind Service port `port` (its number or name). Pure.

    Returns a number, or a container port name to resolve on the pod. ClusterError when the
    Service has no such port.
    """
    ports = (service.get("spec") or {}).get("ports") or []
    for p in ports:
        if port in (p.get("port"), p.get("name")) or str(port) == str(p.get("port")):
            target = p.get("targetPort", p.get("port"))
            return int(target) if isinstance(target, int) or str(target).isdigit() else str(target)
    name = (service.get("metadata") or {}).get("name")
    known = ", ".join(f"{p.get('name') or '-'}:{p.get('port')}" for p in ports) or "none"
    raise ClusterError(f"service {name} has no port {port!r}; its ports (name:port): {known}")


def container_port(pod: Obj, target: int | str) -> int:
    """A numeric targetPort as is; a named one looked up in the pod's container ports. Pure."""
    if isinstance(target, int):
        return target
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            if p.get("name") == target:
                return int(p["containerPort"])
    pod_name = (pod.get("metadata") or {}).get("name")
    raise ClusterError(f"pod {pod_name} has no container port named {target!r}")


def pick_pod(pods: list[Obj]) -> Obj | None:
    """A ready pod that is not being deleted, the newest first. Pure."""
    ready = [p for p in pods if is_ready(p) and not is_deleting(p)]
    ready.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))
    return ready[-1] if ready else None


def _ready_pod(
    api: ApiClient, namespace: str, service: Obj, deadline: float, only: set[str] | None
) -> Obj:
    """A ready pod behind the Service (one of ``only`` when given), watching for one until
    `deadline`."""
    name = name_of(service)
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        raise ClusterError(f"service {namespace}/{name} has no selector: no pods to forward to")
    labels = selector_string({"matchLabels": selector})
    pods: dict[str, Obj] = {}
    watch = kube.Watch(api, "v1", "Pod", namespace, deadline=deadline, label_selector=labels)
    try:
        for event in watch:
            if event.type == kube.SYNCED:
                continue
            if event.type == "DELETED":
                pods.pop(name_of(event.obj), None)
            elif only is None or name_of(event.obj) in only:
                pods[name_of(event.obj)] = event.obj
            chosen = pick_pod(list(pods.values()))
            if chosen is not None:
                return chosen
    finally:
        watch.stop()
    trouble = f"; API trouble: {watch.last_error}" if watch.last_error else ""
    raise ClusterError(
        f"no ready pod behind service {namespace}/{name} (selector {labels}); "
        f"pods seen: {', '.join(pods) or 'none'}{trouble}"
    )


class _Relay:
    """Accept on 127.0.0.1:<ephemeral>, relay each connection through its own port-forward.

    With several pods, connections go to them in turn, as a Service's do (per connection).
    """

    def __init__(self, api: ApiClient, namespace: str, targets: list[tuple[str, int]]) -> None:
        self.api, self.namespace, self.targets = api, namespace, targets
        self._next = itertools.cycle(targets)
        pod = targets[0][0] if len(targets) == 1 else f"{len(targets)}-pods"
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind((LOCALHOST, 0))
        self.server.listen(16)
        self.local_port: int = self.server.getsockname()[1]
        self.closed = threading.Event()
        self.errors: list[str] = []
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._spare: tuple[kube.PortForwardStream, str, float] | None = None
        self._thread = threading.Thread(
            target=self._accept, name=f"rolloutgate-forward-{pod}", daemon=True
        )

    def start(self, *, probe: bool = True) -> None:
        # One stream opened first: a refusal (a missing right on pods/portforward) is then an
        # error naming verb, resource and namespace, not a connection reset in the HTTP checks.
        if not probe:
            self._thread.start()
            return
        pod, port = self.targets[0]
        try:
            # Retried briefly like every relayed connection: a restarting API server or kubelet
            # answers the handshake with a 500 for a moment.
            stream = kube.retry(
                lambda: kube.PortForwardStream(self.api, self.namespace, pod, port),
                deadline=time.monotonic() + FORWARD_RETRY_S,
            )
        except ClusterError:
            self.close()
            raise
        # Kept for the first connection, which comes at once (a check follows the forward):
        # one websocket handshake fewer per relay.
        self._spare = (stream, pod, time.monotonic())
        self._thread.start()

    def _take_spare(self, pod: str) -> kube.PortForwardStream | None:
        """The probe's stream for `pod` if still fresh, else None (closed). Its connection in
        the pod is idle until then, and a server closes idle connections (uvicorn after 5 s)."""
        with self._lock:
            spare, self._spare = self._spare, None
        if spare is None:
            return None
        stream, for_pod, opened = spare
        if for_pod == pod and time.monotonic() - opened <= SPARE_FRESH_S:
            return stream
        stream.close()
        return None

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _addr = self.server.accept()
            except OSError:  # the listening socket was closed: we are shutting down
                return
            threading.Thread(
                target=self._serve, args=(conn,), name="rolloutgate-forward-conn", daemon=True
            ).start()

    def _serve(self, conn: socket.socket) -> None:
        # Without it, a response relayed in two writes (headers, body) waits for the client's
        # delayed ACK (Nagle): ~40 ms added to a quarter of requests, measured by the canary.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            pod, port = next(self._next)
        try:
            # A restarting API server cannot open the stream for a moment: retry briefly, so a
            # request made then is slow rather than failed.
            stream = self._take_spare(pod) or kube.retry(
                lambda: kube.PortForwardStream(self.api, self.namespace, pod, port),
                deadline=time.monotonic() + FORWARD_RETRY_S,
                stopped=self.closed,
            )
        except ClusterError as e:
            self.errors.append(f"port-forward to pod {pod}:{port}: {e}")
            conn.close()
            return
        with self._lock:
            self._open.add(conn)
        try:
            # The client's proxy thread relays ``conn`` itself (``PortForwardStream.relay``).
            stream.relay(conn, self.closed)
        finally:
            error = stream.error()
            if error:
                self.errors.append(f"pod {pod}:{port}: {error.strip()}")
            with self._lock:
                self._open.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()
            stream.close()

    def close(self) -> None:
        self.closed.set()
        # close() alone does not wake a thread blocked in accept() on Linux (the join below
        # then waits its full timeout); shutdown() does.
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            # shutdown wakes the accept() blocked in the relay thread (close alone does not on
            # Linux, and the join below would wait its whole timeout: 5 s before any rollback).
            self.server.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.server.close()
        with self._lock:
            for s in list(self._open):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        if self._thread.ident is not None:  # started (close() also ends a failed start)
            self._thread.join(timeout=5)
        self._take_spare("")  # closes it


def _service(api: ApiClient, namespace: str, service: str, deadline: float) -> Obj:
    svc = kube.retry(lambda: kube.get(api, "v1", "Service", service, namespace), deadline=deadline)
    if svc is None:
        raise ClusterError(f"service {namespace}/{service} does not exist")
    return svc


def selects(service: Obj, pod: Obj) -> bool:
    """Whether the Service's selector selects the pod. Pure."""
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


@contextmanager
def port_forward(
    api: ApiClient,
    namespace: str,
    service: str,
    port: int | str,
    *,
    deadline: float,
    only: set[str] | None = None,
) -> Iterator[str]:
    """Yield "http://127.0.0.1:<local port>" forwarding to the ready pods behind `service`.

    `port` is the Service's port number or name; its targetPort is resolved on each pod. Waits
    (watch) until `deadline` for a ready pod; new connections go to the pods ready then, in
    turn. ``only``: the pods that may be chosen (a release's own: never one of the release
    before, shutting down). The relay is closed on exit.
    """
    svc = _service(api, namespace, service, deadline)
    target = service_port(svc, port)
    first = _ready_pod(api, namespace, svc, deadline, only)
    listing = kube.list_objects(
        api,
        "v1",
        "Pod",
        namespace,
        label_selector=selector_string({"matchLabels": svc["spec"]["selector"]}),
    )
    ready = [
        p
        for p in listing.get("items") or []
        if is_ready(p) and not is_deleting(p) and (only is None or name_of(p) in only)
    ] or [first]
    relay = _Relay(api, namespace, [(name_of(p), container_port(p, target)) for p in ready])
    relay.start()
    try:
        yield f"http://{LOCALHOST}:{relay.local_port}"
    finally:
        relay.close()


@contextmanager
def pod_forwards(
    api: ApiClient,
    namespace: str,
    service: str,
    port: int | str,
    pods: list[Obj],
    *,
    deadline: float,
) -> Iterator[dict[str, str]]:
    """Yield {pod name: "http://127.0.0.1:<port>"}: one relay per pod that `service` selects,
    each straight to that pod (not through the Service), to check every replica."""
    svc = _service(api, namespace, service, deadline)
    target = service_port(svc, port)
    relays: dict[str, _Relay] = {}
    try:
        for pod in pods:
            if selects(svc, pod):
                relay = _Relay(api, namespace, [(name_of(pod), container_port(pod, target))])
                relays[name_of(pod)] = relay
        for i, relay in enumerate(relays.values()):
            # One stream opened first proves the right to port-forward, for every pod of the
            # namespace alike (RBAC has no per-pod rule): a stream per pod only to close it
            # again cost 100 websocket handshakes at 100 replicas.
            relay.start(probe=i == 0)
        yield {name: f"http://{LOCALHOST}:{r.local_port}" for name, r in relays.items()}
    finally:
        for relay in relays.values():
            relay.close()


@contextmanager
def pod_forward(
    api: ApiClient, namespace: str, pod: Obj, port: int | str, *, probe: bool = True
) -> Iterator[str]:
    """Yield "http://127.0.0.1:<local port>" forwarding to ``port`` (number or container port
    name) of one given pod, e.g. to scrape each pod's metrics. The relay is closed on exit.
    ``probe``: open one stream first, so a refused right is an error naming it (one per
    namespace is enough)."""
    relay = _Relay(api, namespace, [(name_of(pod), container_port(pod, port))])
    relay.start(probe=probe)
    try:
        yield f"http://{LOCALHOST}:{relay.local_port}"
    finally:
        relay.close()
