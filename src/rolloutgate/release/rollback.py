"""Exact restore of a snapshot: not `kubectl rollout undo`.

An object that existed gets back its whole spec (or data), labels and annotations by a PUT onto
its current resourceVersion, so fields our apply added are removed too. Objects that did not
exist are deleted (foreground: their pods go first). Waiting for the restored release to be
ready and checking it is the caller's job (rollout.wait, then the smoke checks).
"""

from __future__ import annotations

import copy
import functools
import time

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import ApiError, ClusterError, RollbackFailed
from rolloutgate.objects import Obj, name_of, ref
from rolloutgate.release.snapshot import Snapshot
from rolloutgate.workloads import CONTROLLER_ANNOTATIONS

# Top-level keys that are not the object's content.
_ENVELOPE = {"apiVersion", "kind", "metadata", "status"}


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
    for key in sorted(CONTROLLER_ANNOTATIONS):
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

    Existing objects are restored in manifest order, new ones deleted in reverse order (the
    manifests come in apply order, Namespaces first: a created Namespace is deleted last).
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
        except ClusterError as e:
            failures.append(f"{ref(manifest)}: {e}")
    for manifest, live in reversed(snapshot.objects):
        if live is not None:
            continue
        try:
            lines.append(_delete_new(api, namespace, manifest, deadline))
        except ClusterError as e:
            failures.append(f"{ref(manifest)}: {e}")
    if failures:
        raise RollbackFailed(
            f"restoring the snapshot in {namespace} failed for "
            + "; ".join(failures)
            + (f". Done: {'; '.join(lines)}" if lines else "")
        )
    return lines


def _restore_one(api: ApiClient, namespace: str, manifest: Obj, live: Obj, deadline: float) -> str:
    api_version, kind = str(manifest["apiVersion"]), str(manifest["kind"])
    name = str(manifest["metadata"]["name"])
    while True:
        current = kube.retry(
            lambda: kube.get(api, api_version, kind, name, namespace), deadline=deadline
        )
        if current is None:
            kube.retry(lambda: kube.create(api, _recreated(live), namespace), deadline=deadline)
            return f"{kind}/{name}: recreated from the snapshot (it had been deleted)"
        if not differs(live, current):
            return f"{kind}/{name}: unchanged, already as in the snapshot"
        try:
            body = restored_body(live, current)
            kube.retry(functools.partial(kube.replace, api, body, namespace), deadline=deadline)
        except ApiError as e:
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
    gone = not kube.retry(
        lambda: kube.delete(api, api_version, kind, name, namespace, propagation="Foreground"),
        deadline=deadline,
    )
    if gone:
        return f"{kind}/{name}: absent, as before the gate"
    if kind == "Namespace":
        # The namespace controller empties it first, which may take minutes; it is terminating
        # now, and waiting for it would spend the deadline the rest of the rollback needs.
        return f"{kind}/{name}: deleted (it did not exist before the gate), terminating"
    if kube.wait_gone(api, api_version, kind, name, namespace, deadline):
        return f"{kind}/{name}: deleted (it did not exist before the gate)"
    return f"{kind}/{name}: deletion requested, still terminating at the deadline"


def still_present(api: ApiClient, namespace: str, objs: list[Obj]) -> list[str]:
    """Objects of ``objs`` that exist and are not being deleted, as ``Kind/name``."""
    left = []
    for obj in objs:
        live = kube.get(api, obj["apiVersion"], obj["kind"], name_of(obj), namespace)
        if live is not None and not live["metadata"].get("deletionTimestamp"):
            left.append(ref(obj))
    return left
