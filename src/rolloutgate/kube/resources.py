"""Reading and writing objects through the dynamic client, each call under the running step's
patience.
"""

from __future__ import annotations

from typing import Any, TypeVar

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError
from kubernetes.dynamic.resource import Resource

from rolloutgate.errors import (
    ApiError,
    ClusterError,
    UnknownKind,
)
from rolloutgate.kube.retry import REQUEST_TIMEOUT_S, api_errors, patient
from rolloutgate.objects import FIELD_MANAGER, Obj, at

T = TypeVar("T")


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
    dyn = patient(lambda: dynamic(api))

    def lookup() -> Resource:
        with api_errors("discover", f"kind {kind} in {api_version}"):
            found: Resource = dyn.resources.get(api_version=api_version, kind=kind)
        return found

    try:
        found = patient(lookup)
    except (ResourceNotFoundError, ResourceNotUniqueError) as e:
        raise UnknownKind(
            f"the API server does not serve kind {kind!r} in {api_version!r}; "
            f"{_known_kinds(api, api_version)}"
        ) from e
    return found


def served_groups(api: ApiClient) -> set[str]:
    """The names of the API groups the server serves (one GET of /apis)."""
    dyn = patient(lambda: dynamic(api))

    def read() -> Obj:
        with api_errors("get", "the API groups (/apis)"):
            return _as_dict(dyn.request("get", "/apis"))

    return {str(g.get("name")) for g in patient(read).get("groups", [])}


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


def _plain(_client: Any, data: Obj) -> Obj:
    """The answer's JSON as is: the dynamic client's ResourceInstance wraps every field in an
    object that ``to_dict`` then unwraps again, ~1 ms of CPU per pod of a listing: at 100
    replicas ~0.1 s per LIST of the release's pods, which the checks read for several tests
    (issue 21). Each item gets the list's apiVersion and kind, as ResourceInstance gives them
    (a listing's items carry neither)."""
    kind = str(data.get("kind") or "")
    if kind.endswith("List") and "items" in data:
        data["items"] = data["items"] or []
        for item in data["items"]:
            item.setdefault("apiVersion", data.get("apiVersion"))
            item.setdefault("kind", kind[: -len("List")])
    return data


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


def scoped_namespace(res: Resource, namespace: str | None) -> str | None:
    return namespace if res.namespaced else None


def describe_resource(res: Resource, namespace: str | None, name: str | None = None) -> str:
    """``deployments.apps iris/web`` for messages: the resource as RBAC names it."""
    group = res.group_version.split("/")[0] if "/" in res.group_version else ""
    plural = f"{res.name}.{group}" if group else res.name
    where = "/".join(p for p in (scoped_namespace(res, namespace), name) if p)
    return f"{plural} {where}".strip() if where else f"{plural} (cluster-wide)"


def get(
    api: ApiClient, api_version: str, kind: str, name: str, namespace: str | None
) -> Obj | None:
    """The live object, or None if it does not exist."""
    res = resource(api, api_version, kind)

    def call() -> Obj:
        with api_errors("get", describe_resource(res, namespace, name)):
            return _as_dict(
                dynamic(api).get(  # type: ignore[no-untyped-call]
                    res,
                    name=name,
                    namespace=scoped_namespace(res, namespace),
                    _request_timeout=REQUEST_TIMEOUT_S,
                )
            )

    try:
        return patient(call)
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
    return patient(
        lambda: list_once(api, api_version, kind, namespace, label_selector, field_selector)
    )


def list_once(
    api: ApiClient,
    api_version: str,
    kind: str,
    namespace: str | None,
    label_selector: str | None,
    field_selector: str | None,
) -> Obj:
    res = resource(api, api_version, kind)
    with api_errors("list", describe_resource(res, namespace)):
        return _as_dict(
            dynamic(api).get(  # type: ignore[no-untyped-call]
                res,
                namespace=scoped_namespace(res, namespace),
                _request_timeout=REQUEST_TIMEOUT_S,
                serializer=_plain,
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
        with api_errors(verb, describe_resource(res, namespace, at(obj, "metadata", "name"))):
            return _as_dict(
                dynamic(api).server_side_apply(  # type: ignore[no-untyped-call]
                    res,
                    body=obj,
                    namespace=scoped_namespace(res, namespace),
                    _request_timeout=REQUEST_TIMEOUT_S,
                    field_manager=field_manager,
                    force_conflicts=True,
                    dry_run="All" if dry_run else None,
                )
            )

    return patient(call, change=not dry_run)


def replace(
    api: ApiClient, obj: Obj, namespace: str | None, *, field_manager: str = FIELD_MANAGER
) -> Obj:
    """PUT the whole object (optimistic: ApiError 409 unless resourceVersion is current)."""
    return _send_whole(api, "update", obj, namespace, field_manager)


def create(
    api: ApiClient, obj: Obj, namespace: str | None, *, field_manager: str = FIELD_MANAGER
) -> Obj:
    """POST the object (ApiError 409 if it exists)."""
    return _send_whole(api, "create", obj, namespace, field_manager)


def _send_whole(
    api: ApiClient, verb: str, obj: Obj, namespace: str | None, field_manager: str
) -> Obj:
    """The whole object sent with ``verb`` (``update``: PUT, ``create``: POST), retried while
    the server restarts."""
    res = resource(api, obj["apiVersion"], obj["kind"])

    def call() -> Obj:
        client = dynamic(api)
        send = client.replace if verb == "update" else client.create
        with api_errors(verb, describe_resource(res, namespace, at(obj, "metadata", "name"))):
            return _as_dict(
                send(
                    res,
                    body=obj,
                    namespace=scoped_namespace(res, namespace),
                    _request_timeout=REQUEST_TIMEOUT_S,
                    field_manager=field_manager,
                )
            )

    return patient(call, change=True)


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
        with api_errors("delete", describe_resource(res, namespace, name)):
            dynamic(api).delete(  # type: ignore[no-untyped-call]
                res,
                name=name,
                namespace=scoped_namespace(res, namespace),
                _request_timeout=REQUEST_TIMEOUT_S,
                body=body,
            )

    try:
        patient(call, change=True)
    except ApiError as e:
        if e.status == 404:
            return False
        raise
    return True


def add_ephemeral_container(api: ApiClient, namespace: str, pod: str, container: Obj) -> Obj:
    """Add ``container`` to the pod's ephemeral containers (strategic merge on the
    ``ephemeralcontainers`` subresource, as ``kubectl debug`` does); returns the pod. Ephemeral
    containers cannot be removed: one ends when its process does."""
    res = resource(api, "v1", "Pod").subresources["ephemeralcontainers"]

    def call() -> Obj:
        with api_errors("patch", f"pods/ephemeralcontainers {namespace}/{pod}"):
            return _as_dict(
                dynamic(api).patch(  # type: ignore[no-untyped-call]
                    res,
                    body={"spec": {"ephemeralContainers": [container]}},
                    name=pod,
                    namespace=namespace,
                    content_type="application/strategic-merge-patch+json",
                    _request_timeout=REQUEST_TIMEOUT_S,
                )
            )

    return patient(call, change=True)
