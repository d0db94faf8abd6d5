"""Connecting to a cluster, and the few API helpers every cluster module shares.

Everything above this module sees plain dicts and domain exceptions: the client's transport
errors (urllib3) and API errors (``ApiException``) are mapped here, chained ``from e``.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import (
    ResourceNotFoundError,
    ResourceNotUniqueError,
)
from kubernetes.dynamic.resource import Resource
from kubernetes.stream import portforward
from kubernetes.watch import Watch

from rolloutgate.errors import ClusterError, ClusterUnreachable, ConfigError, UnknownKind

# A Kubernetes object as the API returns it or YAML parses it.
Obj = dict[str, Any]

# Every single request has a deadline: a server that accepts the connection and then hangs
# must not hang the gate.
REQUEST_TIMEOUT_S = 30.0


def _kubeconfig_paths(kubeconfig: str | None) -> list[Path]:
    """The files kubectl would read: the argument, else $KUBECONFIG (a path list), else ~/.kube."""
    if kubeconfig:
        return [Path(kubeconfig).expanduser()]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def _kubeconfig_arg(kubeconfig: str | None) -> str:
    paths = _kubeconfig_paths(kubeconfig)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(
            f"kubeconfig {', '.join(missing)} does not exist; pass an existing file "
            "(profile `kubeconfig`, --kubeconfig or $KUBECONFIG)"
        )
    # The client merges a path list joined like $KUBECONFIG.
    return os.pathsep.join(str(p) for p in paths)


def contexts(kubeconfig: str | None) -> list[str]:
    """Names of the contexts in the kubeconfig (ConfigError if it is missing or unreadable)."""
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

    ConfigError: the kubeconfig is missing or the context unknown (the message lists the known
    ones). ClusterUnreachable: the API server did not answer /version within `timeout` seconds.
    """
    path = _kubeconfig_arg(kubeconfig)
    known = contexts(kubeconfig)
    if context is not None and context not in known:
        raise ConfigError(
            f"kubeconfig context {context!r} not found in {path}; "
            f"known contexts: {', '.join(known) or '(none)'}"
        )
    configuration = client.Configuration()
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


def dynamic(api: ApiClient) -> DynamicClient:
    """A DynamicClient for `api`, cached on it so discovery runs once per connection."""
    cached = getattr(api, "_rolloutgate_dynamic", None)
    if isinstance(cached, DynamicClient):
        return cached
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
    dyn = dynamic(api)
    try:
        found: Resource = dyn.resources.get(api_version=api_version, kind=kind)
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


def get(
    api: ApiClient, api_version: str, kind: str, name: str, namespace: str | None
) -> Obj | None:
    """The live object, or None if it does not exist."""
    res = resource(api, api_version, kind)
    try:
        return _as_dict(
            dynamic(api).get(
                res, name=name, namespace=_ns(res, namespace), _request_timeout=REQUEST_TIMEOUT_S
            )  # type: ignore[no-untyped-call]
        )
    except ApiException as e:
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
    res = resource(api, api_version, kind)
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
    api: ApiClient, obj: Obj, namespace: str | None, *, field_manager: str, dry_run: bool = False
) -> Obj:
    """PATCH application/apply-patch+yaml with force=true: `field_manager` takes every field."""
    res = resource(api, obj["apiVersion"], obj["kind"])
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


def replace(api: ApiClient, obj: Obj, namespace: str | None, *, field_manager: str) -> Obj:
    """PUT the whole object (optimistic: fails with 409 unless resourceVersion is current)."""
    res = resource(api, obj["apiVersion"], obj["kind"])
    return _as_dict(
        dynamic(api).replace(  # type: ignore[no-untyped-call]
            res,
            body=obj,
            namespace=_ns(res, namespace),
            _request_timeout=REQUEST_TIMEOUT_S,
            field_manager=field_manager,
        )
    )


def create(api: ApiClient, obj: Obj, namespace: str | None, *, field_manager: str) -> Obj:
    """POST the object (409 if it exists)."""
    res = resource(api, obj["apiVersion"], obj["kind"])
    return _as_dict(
        dynamic(api).create(  # type: ignore[no-untyped-call]
            res,
            body=obj,
            namespace=_ns(res, namespace),
            _request_timeout=REQUEST_TIMEOUT_S,
            field_manager=field_manager,
        )
    )


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

    `resource_version` makes the delete conditional (409 if the object changed since).
    """
    res = resource(api, api_version, kind)
    body: Obj = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
    if resource_version is not None:
        body["preconditions"] = {"resourceVersion": resource_version}
    try:
        dynamic(api).delete(  # type: ignore[no-untyped-call]
            res,
            name=name,
            namespace=_ns(res, namespace),
            _request_timeout=REQUEST_TIMEOUT_S,
            body=body,
        )
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


def watch(
    api: ApiClient,
    api_version: str,
    kind: str,
    namespace: str | None,
    *,
    resource_version: str,
    timeout_s: int,
    watcher: Watch,
    label_selector: str | None = None,
    field_selector: str | None = None,
) -> Iterator[tuple[str, Obj]]:
    """(event type, object) from a watch that the server ends after `timeout_s` seconds.

    BOOKMARK events are passed on (their object carries only the resourceVersion). A watch whose
    resourceVersion is too old raises ApiException with status 410: list again and re-watch.
    """
    res = resource(api, api_version, kind)
    dyn = dynamic(api)
    stream = watcher.stream(  # type: ignore[no-untyped-call]
        functools.partial(dyn.get, res),
        namespace=_ns(res, namespace),
        label_selector=label_selector,
        field_selector=field_selector,
        resource_version=resource_version,
        timeout_seconds=timeout_s,
        allow_watch_bookmarks=True,
        serialize=False,
        # The client-side read timeout is a backstop for a server that stops answering.
        _request_timeout=timeout_s + 10,
    )
    for event in stream:
        raw = event.get("raw_object")
        if isinstance(raw, dict):
            yield str(event.get("type")), raw


class PortForwardStream:
    """One port-forward websocket to one pod port, seen as a socket (the client's own relay)."""

    def __init__(self, api: ApiClient, namespace: str, pod: str, port: int) -> None:
        self.port = port
        # The client's stream() swaps ApiClient.request for the websocket one during the call
        # and puts back what it found: two streams opened at once on one ApiClient (a relay
        # serving two connections) can leave the websocket request installed for good, and
        # every later API call of the gate fails with "Missing required parameter `ports`".
        # A private ApiClient per stream keeps the shared one untouched.
        self._api = ApiClient(configuration=api.configuration)
        self._pf = portforward(
            client.CoreV1Api(self._api).connect_get_namespaced_pod_portforward,
            pod,
            namespace,
            ports=str(port),
        )

    def socket(self) -> socket.socket:
        """The local end (an AF_UNIX socket pair end wrapped by the client)."""
        sock: socket.socket = self._pf.socket(self.port)
        return sock

    def error(self) -> str | None:
        """What the kubelet reported on the port's error channel, if anything."""
        err = self._pf.error(self.port)
        return str(err) if err else None

    def close(self) -> None:
        self._pf.close()
        self._api.close()  # type: ignore[no-untyped-call]


def new_watcher() -> Watch:
    return Watch()  # type: ignore[no-untyped-call]


def stop_watcher(watcher: Watch) -> None:
    """End a watch from another thread: the client shuts its socket down."""
    watcher.stop()  # type: ignore[no-untyped-call]


def _ns(res: Resource, namespace: str | None) -> str | None:
    return namespace if res.namespaced else None


def status_of(e: BaseException) -> int | None:
    """The HTTP status of an API error from either client flavour, else None."""
    # DynamicApiError is an ApiException too.
    if not isinstance(e, ApiException):
        return None
    status = e.status
    return int(status) if status is not None else None


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
def cluster_errors(what: str) -> Iterator[None]:
    """Map transport and API errors raised inside the block to ClusterError naming `what`."""
    try:
        yield
    except ApiException as e:
        raise ClusterError(f"{what}: {status_of(e)} {message_of(e)}") from e
    except urllib3.exceptions.HTTPError as e:
        raise ClusterUnreachable(f"{what}: API server did not answer ({e})") from e


def ref(obj: Obj) -> str:
    """`Kind/name` for messages."""
    return f"{obj.get('kind', '?')}/{obj.get('metadata', {}).get('name', '?')}"
