"""Exact restore of a snapshot: not `kubectl rollout undo`.

An object that existed gets back its whole spec (or data), labels and annotations by a PUT onto
its current resourceVersion, so fields our apply added are removed too. Objects that did not
exist are deleted (foreground: their pods go first). Waiting for the restored release to be
ready and checking it is the caller's job (rollout.wait, then the smoke checks).
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from rolloutgate import kube
from rolloutgate.errors import ClusterError, RollbackFailed
from rolloutgate.rollout import REVISION
from rolloutgate.snapshot import Snapshot

Obj = dict[str, Any]

FIELD_MANAGER = "rolloutgate"
# Top-level keys that are not the object's content.
_ENVELOPE = {"apiVersion", "kind", "metadata", "status"}
# Annotations the controllers own: keep the live value.
_CONTROLLER_ANNOTATIONS = (REVISION,)


def restored_body(snapshot: Obj, current: Obj) -> Obj:
    """What to PUT so `current` becomes `snapshot` again. Pure.

    Every content key (spec, data, binaryData, ...) comes from the snapshot, keys the snapshot
    lacks are dropped; labels and annotations are the snapshot's, except those controllers own.
    """
    body = {k: copy.deepcopy(v) for k, v in snapshot.items() if k not in _ENVELOPE}
    body["apiVersion"] = current["apiVersion"]
    body["kind"] = current["kind"]
    meta = copy.deepcopy(current["metadata"])
    # Without managedFields in the request the server recomputes ownership from the change.
    meta.pop("managedFields", None)
    snap_meta = snapshot.get("metadata") or {}
    meta["labels"] = copy.deepcopy(snap_meta.get("labels") or {})
    annotations = copy.deepcopy(snap_meta.get("annotations") or {})
    for key in _CONTROLLER_ANNOTATIONS:
        annotations.pop(key, None)
        live_value = (current["metadata"].get("annotations") or {}).get(key)
        if live_value is not None:
            annotations[key] = live_value
    meta["annotations"] = annotations
    body["metadata"] = meta
    return body


def differs(snapshot: Obj, current: Obj) -> bool:
    """Whether `current` is not already what restoring `snapshot` would make it."""
    body = restored_body(snapshot, current)
    keys = (set(body) | set(current)) - _ENVELOPE
    if any(body.get(k) != current.get(k) for k in keys):
        return True
    return any(
        body["metadata"].get(k) != (current["metadata"].get(k) or {})
        for k in ("labels", "annotations")
    )


def restore(api: ApiClient, namespace: str, snapshot: Snapshot, *, deadline: float) -> list[str]:
    """Put every object back as the snapshot has it; delete what did not exist before.

    Existing objects are restored in manifest order, new ones deleted in reverse order.
    Returns one line per object. RollbackFailed names the object that could not be restored
    (every other object is still attempted first).
    """
    lines: list[str] = []
    failures: list[str] = []
    for manifest, live in snapshot.objects:
        if live is None:
            continue
        try:
            lines.append(_restore_one(api, namespace, manifest, live, deadline))
        except (ClusterError, ApiException) as e:
            failures.append(f"{kube.ref(manifest)}: {_text(e)}")
    for manifest, live in reversed(snapshot.objects):
        if live is not None:
            continue
        try:
            lines.append(_delete_new(api, namespace, manifest, deadline))
        except (ClusterError, ApiException) as e:
            failures.append(f"{kube.ref(manifest)}: {_text(e)}")
    if failures:
        raise RollbackFailed(
            f"restoring the snapshot in {namespace} failed for "
            + "; ".join(failures)
            + (f". Done: {'; '.join(lines)}" if lines else "")
        )
    return lines


def _text(e: BaseException) -> str:
    return kube.message_of(e) if isinstance(e, ApiException) else str(e)


def _restore_one(api: ApiClient, namespace: str, manifest: Obj, live: Obj, deadline: float) -> str:
    api_version, kind = str(manifest["apiVersion"]), str(manifest["kind"])
    name = str(manifest["metadata"]["name"])
    while True:
        current = kube.get(api, api_version, kind, name, namespace)
        if current is None:
            kube.create(api, _recreated(live), namespace, field_manager=FIELD_MANAGER)
            return f"{kind}/{name}: recreated from the snapshot (it had been deleted)"
        if not differs(live, current):
            return f"{kind}/{name}: unchanged, already as in the snapshot"
        try:
            kube.replace(api, restored_body(live, current), namespace, field_manager=FIELD_MANAGER)
        except ApiException as e:
            # 409: a controller wrote (a status update) since we read: read again and retry.
            if e.status != 409 or time.monotonic() >= deadline:
                raise
            continue
        return f"{kind}/{name}: restored spec, labels and annotations from the snapshot"


def _recreated(live: Obj) -> Obj:
    body = {k: copy.deepcopy(v) for k, v in live.items() if k != "status"}
    meta = live.get("metadata") or {}
    body["metadata"] = {
        k: copy.deepcopy(meta[k])
        for k in ("name", "namespace", "labels", "annotations")
        if k in meta
    }
    return body


def _delete_new(api: ApiClient, namespace: str, manifest: Obj, deadline: float) -> str:
    api_version, kind = str(manifest["apiVersion"]), str(manifest["kind"])
    name = str(manifest["metadata"]["name"])
    if not kube.delete(api, api_version, kind, name, namespace, propagation="Foreground"):
        return f"{kind}/{name}: absent, as before the gate"
    if _wait_gone(api, api_version, kind, name, namespace, deadline):
        return f"{kind}/{name}: deleted (it did not exist before the gate)"
    return f"{kind}/{name}: deletion requested, still terminating at the deadline"


def _wait_gone(
    api: ApiClient, api_version: str, kind: str, name: str, namespace: str, deadline: float
) -> bool:
    """Watch until the object is gone (True) or the deadline passes (False)."""
    watcher = kube.new_watcher()
    try:
        while True:
            listing = kube.list_objects(
                api, api_version, kind, namespace, field_selector=f"metadata.name={name}"
            )
            if not listing.get("items"):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            rv = str(listing["metadata"]["resourceVersion"])
            try:
                for event_type, _obj in kube.watch(
                    api,
                    api_version,
                    kind,
                    namespace,
                    resource_version=rv,
                    timeout_s=max(1, math.ceil(remaining)),
                    watcher=watcher,
                    field_selector=f"metadata.name={name}",
                ):
                    if event_type == "DELETED":
                        return True
            except ApiException as e:
                if e.status != 410:  # 410: our resourceVersion expired; list again
                    raise
    finally:
        kube.stop_watcher(watcher)
