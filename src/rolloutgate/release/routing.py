"""Routing that has settled: a Service's EndpointSlices hold only ready pods of the release.

Right after a rollout (or a rollback's), the Service may still route to a pod of the release
before, shutting down: the endpoints controller, then every node's proxy, converge on the new
pods asynchronously. A check sent through the Service (``endpoint_url``) meanwhile meets a
terminating pod that refuses the connection, and a good release would be judged on it. So the
checks through the Service start once its EndpointSlices (``discovery.k8s.io/v1``) say that
every endpoint is a ready pod of the release: none terminating, none of a pod of the release
before. What a proxy has not caught up with yet is left to the checks' own retry of a request
that met no pod (``checks.client.retry_unrouted``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import Forbidden
from rolloutgate.objects import Obj, name_of

API_VERSION = "discovery.k8s.io/v1"
KIND = "EndpointSlice"
SERVICE_LABEL = "kubernetes.io/service-name"


def unsettled(slices: Iterable[Obj], pods: set[str]) -> list[str]:
    """What keeps the Service's routing from holding only ready pods of ``pods`` ([] when
    settled). Pure.

    An endpoint that is terminating, or a pod outside ``pods`` that is not ready (one shutting
    down), is still routing's business; a ready endpoint outside ``pods`` that is not
    terminating is another workload's pod the Service also selects, not the release's before
    (a finished rollout leaves none of those running), and is left alone. A ready pod of the
    release must be there: before it is, routing has nowhere to send a check.
    """
    found: list[str] = []
    ready_new = 0
    for endpoint in (e for s in slices for e in s.get("endpoints") or []):
        conditions = endpoint.get("conditions") or {}
        # The API: a ready condition that is not set means ready ("unknown" is ready).
        ready = conditions.get("ready") is not False
        terminating = conditions.get("terminating") is True
        target = endpoint.get("targetRef") or {}
        pod = str(target.get("name")) if target.get("kind") == "Pod" else None
        who = f"pod {pod}" if pod else f"address {', '.join(endpoint.get('addresses') or [])}"
        if terminating:
            found.append(f"{who} terminating")
        elif pod in pods:
            ready_new += ready
        elif not ready:
            found.append(f"{who} (not of this release) not ready")
    if not ready_new:
        found.append("no ready pod of this release yet")
    return found


def wait_settled(
    api: ApiClient,
    namespace: str,
    service: str,
    pods: Iterable[str],
    *,
    deadline: float,
    on_wait: Callable[[str], None] | None = None,
) -> str | None:
    """Watch the Service's EndpointSlices until they hold only ready endpoints of ``pods``, or
    until ``deadline``. None when settled; else a note saying what was still there (the checks
    then go ahead: a request that meets no pod is retried, and judged only after that).
    ``on_wait`` hears once what the wait is for, when it has to wait at all.
    """
    wanted = set(pods)
    slices: dict[str, Obj] = {}
    told = False
    last = ["no EndpointSlice of the Service seen"]
    watch = kube.Watch(
        api,
        API_VERSION,
        KIND,
        namespace,
        deadline=deadline,
        label_selector=f"{SERVICE_LABEL}={service}",
    )
    synced = False  # judged once the first listing is whole, then on every change
    try:
        for event in watch:
            if event.type == kube.SYNCED:
                synced = True
            elif event.type == "DELETED":
                slices.pop(name_of(event.obj), None)
            else:
                slices[name_of(event.obj)] = event.obj
            if not synced:
                continue
            last = unsettled(slices.values(), wanted)
            if not last:
                return None
            if not told and on_wait is not None:
                told = True
                on_wait(
                    f"service {namespace}/{service}: waiting for its endpoints to hold only "
                    f"ready pods of this release ({'; '.join(last)})"
                )
    except Forbidden as e:
        return f"routing of service {namespace}/{service} not awaited: {e}"
    finally:
        watch.stop()
    return (
        f"service {namespace}/{service}: its endpoints did not settle before the deadline "
        f"({'; '.join(last)}); the checks went ahead, each request that met no pod retried"
    )
