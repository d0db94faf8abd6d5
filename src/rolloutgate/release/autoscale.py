"""Workloads whose replica count a HorizontalPodAutoscaler owns.

The HPA documentation asks that a workload an HPA targets be applied without ``spec.replicas``:
a server-side apply with force that sets it takes the field from the autoscaler, which then
scales back (moving the generation under the gate's feet). So the gate finds the HPAs of the
release (in the manifests, and live in the namespace) and applies their targets without it.

Dropping a field our field manager owned alone would make the server reset it to the default
(1 replica). Kubernetes' "transferring ownership" recipe avoids that: first apply only
``spec.replicas``, at its live value, under a second field manager (``HANDOVER_MANAGER``); then
our apply without the field gives up our share, and the value stays.
"""

from __future__ import annotations

import copy

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import Forbidden, UnknownKind
from rolloutgate.objects import FIELD_MANAGER, Obj, at, name_of

HPA_KIND = "HorizontalPodAutoscaler"
HPA_API_VERSION = "autoscaling/v2"
# The field manager that keeps spec.replicas while our own manager lets go of it.
HANDOVER_MANAGER = "rolloutgate-replicas-handover"


def targets(hpas: list[Obj]) -> dict[tuple[str, str], str]:
    """(kind, name) of each workload an HPA scales → the HPA's name. Pure.

    Any HPA version: ``scaleTargetRef`` is the same in autoscaling/v1 and v2.
    """
    found: dict[tuple[str, str], str] = {}
    for hpa in hpas:
        if hpa.get("kind") != HPA_KIND:
            continue
        ref = at(hpa, "spec", "scaleTargetRef") or {}
        if ref.get("kind") and ref.get("name"):
            found[(str(ref["kind"]), str(ref["name"]))] = name_of(hpa)
    return found


def live_hpas(api: ApiClient, namespace: str) -> list[Obj] | None:
    """The HPAs in `namespace` ([] when the server serves no autoscaling/v2); None when the
    gate may not list them (a Role without that rule: the caller says so)."""
    try:
        listing = kube.list_objects(api, HPA_API_VERSION, HPA_KIND, namespace)
    except UnknownKind:
        return []
    except Forbidden:
        return None
    items = listing.get("items") or []
    for item in items:
        item.setdefault("kind", HPA_KIND)  # list items carry no kind
    return list(items)


def without_replicas(obj: Obj) -> Obj:
    """A copy of the workload without ``spec.replicas``. Pure."""
    out = copy.deepcopy(obj)
    (out.get("spec") or {}).pop("replicas", None)
    return out


def owns_replicas(live: Obj, manager: str = FIELD_MANAGER) -> bool:
    """Whether `manager` has an apply entry for ``spec.replicas`` in the live object. Pure."""
    for entry in at(live, "metadata", "managedFields") or []:
        if entry.get("manager") != manager or entry.get("operation") != "Apply":
            continue
        if "f:replicas" in (at(entry, "fieldsV1", "f:spec") or {}):
            return True
    return False


def handover(api: ApiClient, namespace: str, workload: Obj) -> bool:
    """Keep the live ``spec.replicas`` under ``HANDOVER_MANAGER`` before our manager drops it.

    Read fresh (the HPA may have scaled since the snapshot). Only needed (True) when our manager
    applied the field before; the value written is the one the workload has now, so nothing
    changes but the field's owners.
    """
    api_version, kind, name = str(workload["apiVersion"]), str(workload["kind"]), name_of(workload)
    live = kube.get(api, api_version, kind, name, namespace)
    if live is None or not owns_replicas(live):
        return False
    replicas = at(live, "spec", "replicas")
    if not isinstance(replicas, int):
        return False
    body: Obj = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas},
    }
    kube.server_side_apply(api, body, namespace, field_manager=HANDOVER_MANAGER)
    return True
