"""Talking to the API server: connect, read and write objects, and the one list-then-watch.

Everything above this module sees plain dicts and domain exceptions: the client's transport
errors (urllib3) become ``ClusterUnreachable`` and its ``ApiException`` becomes ``ApiError``
(``Forbidden`` for 403), each naming the verb and the resource, chained ``from e``.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError
from kubernetes.dynamic.resource import Resource
from kubernetes.stream import portforward

from rolloutgate.errors import (
    ApiError,
    ClusterError,
    ClusterUnreachable,
    ConfigError,
    Forbidden,
    UnknownKind,
)
from rolloutgate.objects import FIELD_MANAGER, Obj, at

T = TypeVar("T")

# Every single request has a deadline: a server that accepts the connection and then hangs
# must not hang the gate.
REQUEST_TIMEOUT_S = 30.0
# Longest server-side watch; a wait's own deadline usually ends it sooner.
WATCH_MAX_S = 300
# Backoff between attempts after a transient error: doubling from the first to the last.
BACKOFF_S = (0.2, 5.0)
# Where a pod finds its ServiceAccount's token (the in-cluster configuration).
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


# ---------------------------------------------------------------------------------------------
# Connecting.


def _kubeconfig_paths(kubeconfig: str | None) -> list[Path]:
    """The files kubectl would read: the argument, else $KUBECONFIG (a path list, missing
    entries skipped as kubectl does), else ~/.kube/config."""
    if kubeconfig:
        return [Path(kubeconfig).expanduser()]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def in_cluster(kubeconfig: str | None) -> bool:
    """No kubeconfig anywhere, but a ServiceAccount token: the gate runs in a pod (Tekton,
    GitLab's Kubernetes executor, Argo Workflows) and uses the in-cluster configuration."""
    if kubeconfig:
        return False
    # As kubectl: a $KUBECONFIG list whose files are all missing loads an empty config, and an
    # empty config in a pod falls back to the in-cluster one.
    if any(p.is_file() for p in _kubeconfig_paths(None)):
        return False
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and IN_CLUSTER_TOKEN.is_file()


def _kubeconfig_arg(kubeconfig: str | None) -> str:
    paths = _kubeconfig_paths(kubeconfig)
    if kubeconfig:
        if not paths[0].is_file():
            raise ConfigError(
                f"kubeconfig {paths[0]} does not exist; pass an existing file "
                "(profile `kubeconfig`, --kubeconfig or ROLLOUTGATE_KUBECONFIG)"
            )
        return str(paths[0])
    existing = [p for p in paths if p.is_file()]
    if not existing:
        where = "$KUBECONFIG" if os.environ.get("KUBECONFIG") else "the default path"
        raise ConfigError(
            f"no kubeconfig: none of {', '.join(map(str, paths))} ({where}) exists, and this "
            "is not a pod with a ServiceAccount token; pass --kubeconfig or set KUBECONFIG"
        )
    # The client merges a path list joined like $KUBECONFIG.
    return os.pathsep.join(str(p) for p in existing)


def contexts(kubeconfig: str | None) -> list[str]:
    """Names of the contexts in the kubeconfig (ConfigError if it is missing or unreadable);
    [] inside a pod that uses the in-cluster configuration."""
    if in_cluster(kubeconfig):
        return []
    path = _kubeconfig_arg(kubeconfig)
    try:
        found, _current = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=path
        )
    except ConfigException as e:
        raise ConfigError(f"kubeconfig {path} cannot be read: {e}") from e
    return sorted(str(c["name"]) for c in found or [])


def connect(kubeconfig: str | None, context: str | None, *, timeout: float = 10.0) -> ApiClient:
    """An API client for `context` (None: the kubeconfig's current context) that answered /version.

    Inside a pod with no kubeconfig, the in-cluster configuration (its ServiceAccount).
    ConfigError: the kubeconfig is missing or the context unknown (the message lists the known
    ones). ClusterUnreachable: the API server did not answer /version within `timeout` seconds.
    """
    configuration = client.Configuration()
    if in_cluster(kubeconfig) and context is None:
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    else:
        path = _kubeconfig_arg(kubeconfig)
        known = contexts(kubeconfig)
        if context is not None and context not in known:
            raise ConfigError(
                f"kubeconfig context {context!r} not found in {path}; "
                f"known contexts: {', '.join(known) or '(none)'}"
            )
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except ConfigException as e:
            raise ConfigError(f"kubeconfig {path}, context {context or '(current)'}: {e}") from e
    _probe(configuration, timeout)
    return ApiClient(configuration=configuration)


def _probe(configuration: client.Configuration, timeout: float) -> None:
    """GET /version once, without the client's retries, so an unreachable server fails fast."""
    host = configuration.host
    # The REST client reads `retries` when it is built: build the probe's without them.
    previous, configuration.retries = configuration.retries, 0
    try:
        probe = ApiClient(configuration=configuration)
    finally:
        configuration.retries = previous
    with probe:
        try:
            client.VersionApi(probe).get_code(_request_timeout=timeout)
        except urllib3.exceptions.HTTPError as e:
            # MaxRetryError wraps the real cause (connection refused, timeout, TLS...).
            cause = getattr(e, "reason", None) or e
            raise ClusterUnreachable(
                f"API server {host} did not answer /version (timeout {timeout:g} s): {cause}; "
                "is the cluster running, and is the kubeconfig's server address right?"
            ) from e
        except ApiException as e:
            if e.status == 0:  # the client's wrapper for a transport failure
                raise ClusterUnreachable(f"API server {host} did not answer: {e.reason}") from e
            raise ClusterError(
                f"API server {host} refused /version: {e.status} {e.reason}; "
                "check the kubeconfig's credentials"
            ) from e


# ---------------------------------------------------------------------------------------------
# Errors: the one place transport and API errors become domain errors.


def message_of(e: BaseException) -> str:
    """The API server's own message (the Status object's `message`), else the error's text."""
    body = getattr(e, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return body.strip()
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])
    reason = getattr(e, "reason", None)
    return str(reason or e)


@contextmanager
def api_errors(verb: str, what: str) -> Iterator[None]:
    """Map errors raised inside the block to domain errors naming `verb` and `what`.

    `what` names the resource and namespace, e.g. ``deployments iris/iris``.
    """
    try:
        yield
    except ApiException as e:
        status = int(e.status or 0)
        message = message_of(e)
        if status == 0:
            status, message = _handshake(e)
        if status == 0:
            raise ClusterUnreachable(f"{verb} {what}: API server did not answer: {e}") from e
        text = f"{verb} {what}: {status} {message}"
        if status == 403:
            # `verb` may say more than RBAC's verb ("patch (server-side apply dry-run)").
            rbac_verb = verb.split(" ", 1)[0]
            raise Forbidden(
                f"{text}. The gate's credentials lack this permission: grant `{rbac_verb}` on it "
                "(docs/rbac.md lists every permission the gate needs)",
                status=status,
            ) from e
        raise ApiError(text, status=status) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        cause = getattr(e, "reason", None) or e
        raise ClusterUnreachable(f"{verb} {what}: API server did not answer: {cause}") from e


def _handshake(e: ApiException) -> tuple[int, str]:
    """(status, server message) of a refused websocket handshake (port-forward, exec), which the
    client reports as status 0 with ``Handshake status 403 Forbidden -+-+- headers -+-+- body``
    as its reason; (0, "") for a real transport failure."""
    reason = str(e.reason or "")
    if not reason.startswith("Handshake status "):
        return 0, ""
    parts = reason.split(" -+-+- ")
    try:
        status = int(parts[0].split()[2])
    except (IndexError, ValueError):
        return 0, ""
    message = parts[0]
    if len(parts) > 2:
        try:
            body = json.loads(parts[2])
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("message"):
            message = str(body["message"])
    return status, message


def transient(e: BaseException) -> bool:
    """Whether retrying can help: no answer, 429, or a 5xx."""
    return isinstance(e, ClusterUnreachable) or (isinstance(e, ApiError) and e.transient)


def retry(
    call: Callable[[], T],
    *,
    deadline: float,
    on_retry: Callable[[str], None] | None = None,
    stopped: threading.Event | None = None,
) -> T:
    """``call()``, retried with backoff on transient errors until `deadline` (monotonic).

    The last transient error is raised once the deadline has passed; any other error at once.
    """
    delay = BACKOFF_S[0]
    while True:
        try:
            return call()
        except ClusterError as e:
            if not transient(e) or time.monotonic() + delay >= deadline:
                raise
            if on_retry is not None:
                on_retry(f"{e}; retrying in {delay:.1f} s")
            pause = delay * random.uniform(0.8, 1.2)  # jitter: gates do not retry in step
            if stopped is not None:
                if stopped.wait(pause):
                    raise
            else:
                time.sleep(pause)
            delay = min(delay * 2, BACKOFF_S[1])


@dataclass
class _Patience:
    deadline: float
    on_retry: Callable[[str], None] | None


# The running step's deadline: under it every request below retries transient errors (no
# answer, 429, 5xx) until then, so an API server that restarts in the middle of a step delays
# the step instead of failing it. A context variable, not a global: the lease's renewal thread
# and the port-forward relay have their own deadlines, and a new thread starts without one.
_PATIENCE: ContextVar[_Patience | None] = ContextVar("rolloutgate_patience", default=None)


@contextmanager
def patience(deadline: float, on_retry: Callable[[str], None] | None = None) -> Iterator[None]:
    """Within the block, every request of this module (but the watch's own, which retries
    anyway) is retried on transient errors until `deadline` (monotonic). ``on_retry`` hears
    when the API server stops answering and when it answers again."""
    token = _PATIENCE.set(_Patience(deadline, on_retry))
    try:
        yield
    finally:
        _PATIENCE.reset(token)


def _patient(call: Callable[[], T]) -> T:
    """``call()`` under the running step's patience (one attempt when there is none).

    Retrying is safe for every call here: reads; server-side apply (the same patch gives the
    same object); PUT and conditional DELETE carry a resourceVersion (a retry of one that had
    landed gets a 409, which the callers already handle by reading again); create gets a 409
    AlreadyExists and delete a 404, both of which the callers read as done.
    """
    p = _PATIENCE.get()
    if p is None:
        return call()
    failing_since: list[float] = []

    def said(message: str) -> None:
        if not failing_since:
            failing_since.append(time.monotonic())
            if p.on_retry is not None:
                left = max(0.0, p.deadline - time.monotonic())
                p.on_retry(f"{message} (retrying for up to {left:.0f} s)")

    result = retry(call, deadline=p.deadline, on_retry=said)
    if failing_since and p.on_retry is not None:
        p.on_retry(f"API server answered again after {time.monotonic() - failing_since[0]:.1f} s")
    return result


# ---------------------------------------------------------------------------------------------
# Resources and objects.


def dynamic(api: ApiClient) -> DynamicClient:
    """A DynamicClient for `api`, cached on it so discovery runs once per connection."""
    cached = getattr(api, "_rolloutgate_dynamic", None)
    if isinstance(cached, DynamicClient):
        return cached
    with api_errors("discover", "the API server's resources"):
        dyn = DynamicClient(api)  # type: ignore[no-untyped-call]
    api._rolloutgate_dynamic = dyn  # type: ignore[attr-defined]
    return dyn


# The dynamic client is untyped: the helpers below are the typed boundary the other modules use,
# so each untyped call is marked once, here.


def resource(api: ApiClient, api_version: str, kind: str) -> Resource:
    """The API resource serving `kind` in `api_version`.

    UnknownKind (a ConfigError) when the server does not serve it; the message lists the kinds
    the server does serve in that group version, or its group versions when that is unknown too.
    """
    dyn = _patient(lambda: dynamic(api))

    def lookup() -> Resource:
        with api_errors("discover", f"kind {kind} in {api_version}"):
            found: Resource = dyn.resources.get(api_version=api_version, kind=kind)
        return found

    try:
        found = _patient(lookup)
    except (ResourceNotFoundError, ResourceNotUniqueError) as e:
        raise UnknownKind(
            f"the API server does not serve kind {kind!r} in {api_version!r}; "
            f"{_known_kinds(api, api_version)}"
        ) from e
    return found


def _known_kinds(api: ApiClient, api_version: str) -> str:
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    dyn = dynamic(api)
    try:
        listing = _as_dict(dyn.request("get", path))
        kinds = sorted({r["kind"] for r in listing.get("resources", []) if "/" not in r["name"]})
        return f"kinds it serves in {api_version}: {', '.join(kinds)}"
    except ApiException:
        groups = _as_dict(dyn.request("get", "/apis"))
        served = (
            v["groupVersion"] for g in groups.get("groups", []) for v in g.get("versions", [])
        )
        versions = ["v1", *sorted(served)]
        return f"it serves no {api_version!r}; group versions it serves: {', '.join(versions)}"


def _as_dict(value: Any) -> Obj:
    """A dynamic client result (ResourceInstance) as a plain dict."""
    if isinstance(value, dict):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, dict):
            return result
    raise ClusterError(f"unexpected answer from the API server: {value!r:.200}")


def _ns(res: Resource, namespace: str | None) -> str | None:
    return namespace if res.namespaced else None


def _what(res: Resource, namespace: str | None, name: str | None = None) -> str:
    """``deployments.apps iris/web`` for messages: the resource as RBAC names it."""
    group = res.group_version.split("/")[0] if "/" in res.group_version else ""
    plural = f"{res.name}.{group}" if group else res.name
    where = "/".join(p for p in (_ns(res, namespace), name) if p)
    return f"{plural} {where}".strip() if where else f"{plural} (cluster-wide)"


def get(
    api: ApiClient, api_version: str, kind: str, name: str, namespace: str | None
) -> Obj | None:
    """The live object, or None if it does not exist."""
    res = resource(api, api_version, kind)

    def call() -> Obj:
        with api_errors("get", _what(res, namespace, name)):
            return _as_dict(
                dynamic(api).get(  # type: ignore[no-untyped-call]
                    res,
                    name=name,
                    namespace=_ns(res, namespace),
                    _request_timeout=REQUEST_TIMEOUT_S,
                )
            )

    try:
        return _patient(call)
    except ApiError as e:
        if e.status == 404:
            return None
        raise


def list_objects(
    api: ApiClient,
    api_version: str,
    kind: str,
    namespace: str | None,
    *,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> Obj:
    """A list object: `items` and `metadata.resourceVersion` (to start a watch from)."""
    return _patient(
        lambda: _list_once(api, api_version, kind, namespace, label_selector, field_selector)
    )


def _list_once(
    api: ApiClient,
    api_version: str,
    kind: str,
    namespace: str | None,
    label_selector: str | None,
    field_selector: str | None,
) -> Obj:
    res = resource(api, api_version, kind)
    with api_errors("list", _what(res, namespace)):
        return _as_dict(
            dynamic(api).get(  # type: ignore[no-untyped-call]
                res,
                namespace=_ns(res, namespace),
                _request_timeout=REQUEST_TIMEOUT_S,
                label_selector=label_selector,
                field_selector=field_selector,
            )
        )


def server_side_apply(
    api: ApiClient,
    obj: Obj,
    namespace: str | None,
    *,
    field_manager: str = FIELD_MANAGER,
    dry_run: bool = False,
) -> Obj:
    """PATCH application/apply-patch+yaml with force=true: `field_manager` takes every field."""
    res = resource(api, obj["apiVersion"], obj["kind"])
    verb = "patch (server-side apply dry-run)" if dry_run else "patch (server-side apply)"

    def call() -> Obj:
        with api_errors(verb, _what(res, namespace, at(obj, "metadata", "name"))):
            return _as_dict(
                dynamic(api).server_side_apply(  # type: ignore[no-untyped-call]
                    res,
                    body=obj,
                    namespace=_ns(res, namespace),
                    _request_timeout=REQUEST_TIMEOUT_S,
                    field_manager=field_manager,
                    force_conflicts=True,
                    dry_run="All" if dry_run else None,
                )
            )

    return _patient(call)


def replace(
    api: ApiClient, obj: Obj, namespace: str | None, *, field_manager: str = FIELD_MANAGER
) -> Obj:
    """PUT the whole object (optimistic: ApiError 409 unless resourceVersion is current)."""
    res = resource(api, obj["apiVersion"], obj["kind"])

    def call() -> Obj:
        with api_errors("update", _what(res, namespace, at(obj, "metadata", "name"))):
            return _as_dict(
                dynamic(api).replace(  # type: ignore[no-untyped-call]
                    res,
                    body=obj,
                    namespace=_ns(res, namespace),
                    _request_timeout=REQUEST_TIMEOUT_S,
                    field_manager=field_manager,
                )
            )

    return _patient(call)


def create(
    api: ApiClient, obj: Obj, namespace: str | None, *, field_manager: str = FIELD_MANAGER
) -> Obj:
    """POST the object (ApiError 409 if it exists)."""
    res = resource(api, obj["apiVersion"], obj["kind"])

    def call() -> Obj:
        with api_errors("create", _what(res, namespace, at(obj, "metadata", "name"))):
            return _as_dict(
                dynamic(api).create(  # type: ignore[no-untyped-call]
                    res,
                    body=obj,
                    namespace=_ns(res, namespace),
                    _request_timeout=REQUEST_TIMEOUT_S,
                    field_manager=field_manager,
                )
            )

    return _patient(call)


def delete(
    api: ApiClient,
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    *,
    propagation: str = "Foreground",
    resource_version: str | None = None,
) -> bool:
    """Delete the object; False if it was already gone.

    `resource_version` makes the delete conditional (ApiError 409 if the object changed since).
    """
    res = resource(api, api_version, kind)
    body: Obj = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
    if resource_version is not None:
        body["preconditions"] = {"resourceVersion": resource_version}

    def call() -> None:
        with api_errors("delete", _what(res, namespace, name)):
            dynamic(api).delete(  # type: ignore[no-untyped-call]
                res,
                name=name,
                namespace=_ns(res, namespace),
                _request_timeout=REQUEST_TIMEOUT_S,
                body=body,
            )

    try:
        _patient(call)
    except ApiError as e:
        if e.status == 404:
            return False
        raise
    return True


# ---------------------------------------------------------------------------------------------
# The one list-then-watch.


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
        listing = _list_once(
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
        what = _what(res, self.namespace)
        path = res.path(namespace=_ns(res, self.namespace))  # type: ignore[no-untyped-call]
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


# ---------------------------------------------------------------------------------------------
# Port-forward.


class PortForwardStream:
    """One port-forward websocket to one pod port, seen as a socket (the client's own relay)."""

    def __init__(self, api: ApiClient, namespace: str, pod: str, port: int) -> None:
        self.port = port
        # The client's stream() swaps the ApiClient's `request` for a websocket one while it
        # connects: on the shared client, a request another thread makes meanwhile (the lock's
        # renewal, a watch's relist) would go to the websocket code and fail ("Missing required
        # parameter `ports`"). A client of its own per stream, sharing the configuration.
        self._client = ApiClient(configuration=api.configuration)
        try:
            # A websocket upgrade is a GET: RBAC checks `get` on pods/portforward (SPDY,
            # kubectl's fallback, is a POST: `create`).
            with api_errors("get", f"pods/portforward {namespace}/{pod}"):
                self._pf = portforward(
                    client.CoreV1Api(self._client).connect_get_namespaced_pod_portforward,
                    pod,
                    namespace,
                    ports=str(port),
                )
        except BaseException:
            self._client.close()  # type: ignore[no-untyped-call]
            raise

    def socket(self) -> socket.socket:
        """The local end (an AF_UNIX socket pair end wrapped by the client)."""
        sock: socket.socket = self._pf.socket(self.port)
        return sock

    def error(self) -> str | None:
        """What the kubelet reported on the port's error channel, if anything."""
        err = self._pf.error(self.port)
        return str(err) if err else None

    def close(self) -> None:
        try:
            self._pf.close()
        finally:
            self._client.close()  # type: ignore[no-untyped-call]


# A log request goes through the kubelet, which may hold it while it restarts the container.
LOG_TIMEOUT_S = 10.0


def pod_log(
    api: ApiClient,
    namespace: str,
    pod: str,
    container: str,
    *,
    previous: bool,
    lines: int,
    timeout: float = LOG_TIMEOUT_S,
) -> str:
    """The last `lines` of a container's log (ApiError when the kubelet has none; no answer
    within `timeout` seconds is ClusterUnreachable)."""
    which = "previous " if previous else ""

    def call() -> str:
        with api_errors("get", f"pods/log {namespace}/{pod} ({which}container {container})"):
            text = client.CoreV1Api(api).read_namespaced_pod_log(
                pod,
                namespace,
                container=container,
                previous=previous,
                tail_lines=lines,
                _request_timeout=timeout,
            )
        return str(text).rstrip()

    return _patient(call)
