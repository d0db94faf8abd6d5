"""The restore target a release record keeps: the live objects as a restore needs them, and
a record's target turned back into a snapshot to restore. Pure.

The target is the last release a gate verified (or, before any, what the first gate found):
its tag, who verified it and when, and its objects' specs, without what the server owns.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

from rolloutgate.errors import ClusterError
from rolloutgate.objects import Obj, ref
from rolloutgate.release.snapshot import Snapshot
from rolloutgate.workloads import CONTROLLER_ANNOTATIONS

# A ConfigMap holds at most 1 MiB; keep room for the envelope and the other fields.
MAX_OBJECTS_BYTES = 900 * 1024
# Metadata a restore takes from the stored object; the rest is the server's.
_KEPT_METADATA = ("name", "namespace", "labels", "annotations")


def now_iso() -> str:
    """Now, as the record writes a time (UTC, to the second)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def stored(obj: Obj) -> Obj:
    """What a restore needs of a live object: its content (spec, data, ...), name, labels and
    annotations; nothing the server owns (status, uid, resourceVersion, managedFields)."""
    out = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("metadata", "status")}
    meta = obj.get("metadata") or {}
    out["metadata"] = {k: copy.deepcopy(meta[k]) for k in _KEPT_METADATA if k in meta}
    annotations = out["metadata"].get("annotations")
    if isinstance(annotations, dict):
        for key in CONTROLLER_ANNOTATIONS:
            annotations.pop(key, None)
    return out


def target_of(
    objects: list[Obj], *, tag: str | None, verified: bool, by: str, first_deploy: bool
) -> Obj:
    """A restore target; its objects are left out (with the reason) past the size limit."""
    target: Obj = {
        "tag": tag,
        "verified": verified,
        "by": by,
        "at": now_iso(),
        "first_deploy": first_deploy,
        "objects": [stored(o) for o in objects],
    }
    size = len(json.dumps(target["objects"]))
    if size > MAX_OBJECTS_BYTES:
        target["objects"] = None
        target["omitted"] = (
            f"the objects' specs take {size} bytes, over the {MAX_OBJECTS_BYTES} the record "
            "keeps (a ConfigMap holds 1 MiB)"
        )
    return target


def describe_target(target: Obj | None) -> str:
    if not target:
        return "none recorded"
    if target.get("first_deploy"):
        what = "nothing (the first gate found no objects)"
    else:
        what = f"tag {target.get('tag')}"
    how = "verified" if target.get("verified") else "found (never verified by a gate)"
    return f"{what}, {how} by {target.get('by')} at {target.get('at')}"


def target_snapshot(record: Obj, namespace: str) -> Snapshot:
    """The restore of a record's target as a Snapshot: every target object as it was, and
    every object the unfinished release applied that the target did not have, deleted.

    ClusterError when the record has no target objects to restore.
    """
    target = record.get("target") or {}
    objects = target.get("objects")
    if objects is None:
        why = target.get("omitted") or "the record has no restore target"
        raise ClusterError(f"cannot restore the last verified release from the record: {why}")
    snap = Snapshot(namespace=namespace)
    kept = set()
    for obj in objects:
        snap.objects.append((copy.deepcopy(obj), copy.deepcopy(obj)))
        kept.add(ref(obj))
    for applied in record.get("applied") or []:
        manifest = {
            "apiVersion": applied["apiVersion"],
            "kind": applied["kind"],
            "metadata": {"name": applied["name"]},
        }
        if ref(manifest) not in kept:
            snap.objects.append((manifest, None))
    return snap
