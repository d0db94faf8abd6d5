"""The release record: what a gate is doing to its target, kept in the cluster.

A gate can die at any moment (SIGKILL, an OOM-killed runner, a lost VM). What it was doing must
outlive it, so the next gate can tell a half-done release from a good one and restore the last
release a gate proved healthy, never one it merely found (Helm keeps its release history in the
cluster for the same reason).

The record is a ConfigMap ``<lease name>-release`` in the target namespace, labelled as the
gate's own, with one key ``release.json``::

    holder     the lease holder writing it, and its process (host, boot id, pid namespace, pid,
               start time: enough to tell on the same machine that it is no longer running)
    tag        the image tag being released; step  where it got to (STEPS); updated  when
    found      what the gate found before applying: the previous tag, first deploy or not
    applied    Kind/name of every object the release applied (a recovery deletes what the
               target release did not have)
    target     the release a rollback restores: the last verified one (``verified: true``:
               its tag, who verified it and when, and its objects' specs), or, before any gate
               verified one, what the first gate found (``verified: false``)

Only the lease holder writes it (server-side apply, idempotent, so a write retried across an
API server restart is safe), and it stops writing the moment the lease is lost.

A ConfigMap is readable by far more people than a Secret (the built-in ``view`` role reads
ConfigMaps, never Secrets), so the values of Secrets among the target's objects are not in it:
they go to a Secret of the same name beside it (``SECRETS_KEY``), written only when the target
holds Secrets (then the gate has rights on Secrets anyway), and read back with the record.

The restore target's content is ``target``'s; the writer's process, ``process``'s.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import ClusterError, LockLost
from rolloutgate.objects import MANAGED_BY, Obj, at
from rolloutgate.release import lock
from rolloutgate.release.process import process_gone, this_process
from rolloutgate.release.report import LiveRelease
from rolloutgate.release.snapshot import Snapshot
from rolloutgate.release.target import describe_target, now_iso, target_of

KEY = "release.json"
# The companion Secret's key: {Secret name: its content fields} of the target's Secrets.
SECRETS_KEY = "secrets.json"
SECRETS_TYPE = "rolloutgate.dev/release-secrets"
# Where a target Secret's content went, in its place in the record.
CONTENT_IN = "contentInSecret"
# Fields of a Secret that hold (or copy) its values.
_SECRET_CONTENT = ("data", "stringData")
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# Steps in order. A record whose step is not FINISHED was left by a gate that did not end its
# release: the cluster may hold anything between the target and the new release.
STEPS = (
    "locked",
    "applying",
    "rolling-out",
    "checking",
    "verified",
    "rolling-back",
    "rolled-back",
    "rollback-failed",
    "left-failed",
    "recovering",
)
FINISHED = frozenset({"locked", "verified", "rolled-back"})


def record_name(lease_name: str) -> str:
    return f"{lease_name}-release"


def holder_gone(api: ApiClient, namespace: str, lease_name: str, lease: Obj) -> str | None:
    """Why the lease's holder is certainly gone (its record names a process of this machine that
    no longer runs), else None: a holder elsewhere is waited for until its lease expires."""
    try:
        found = read(api, namespace, record_name(lease_name))
    except ClusterError:
        return None
    holder = (lease.get("spec") or {}).get("holderIdentity")
    if not found or not holder or found.get("holder") != holder:
        return None
    process = found.get("process") or {}
    if not process_gone(process):
        return None
    return (
        f"its holder {holder} (pid {process.get('pid')} on this machine) is no longer running "
        f"(its release record: step {found.get('step')!r})"
    )


# ---------------------------------------------------------------------------------------------
# What a record says. Pure.


def unfinished(record: Obj | None) -> bool:
    return record is not None and record.get("step") not in FINISHED


def describe(record: Obj) -> str:
    """One line: who released which tag, how far it got."""
    found = record.get("found") or {}
    previous = "nothing" if found.get("first_deploy") else f"tag {found.get('tag')}"
    return (
        f"release of tag {record.get('tag')} by {record.get('holder')}, step "
        f"{record.get('step')!r} at {record.get('updated')} (it found {previous})"
    )


def live_release(record: Obj | None, live_tag: str | None, name: str) -> LiveRelease:
    """Which release is live and whether a gate verified it, from the record (``name``: the
    record's ConfigMap, None when it does not exist) and the live workloads' tag. Pure.

    The live release counts as verified when the record's restore target is a verified
    release of the same tag and no gate left its release unfinished since: anything else was
    put there by someone other than a gate (a GitOps sync, ``kubectl``) or is half done.
    """
    shown = live_tag or "none (no workload of the manifests is live)"
    if record is None:
        return LiveRelease(
            live_tag,
            False,
            f"tag {shown}; no release record (configmap {name}): no gate has released here, "
            "so no gate verified it",
        )
    target = record.get("target") or {}
    step = record.get("step")
    if unfinished(record):
        return LiveRelease(
            live_tag,
            False,
            f"tag {shown}; a gate left its release unfinished ({describe(record)}): the live "
            "objects may be half done; the last verified release was "
            f"{describe_target(target)}",
            step,
        )
    if not target.get("verified"):
        return LiveRelease(
            live_tag, False, f"tag {shown}; no gate verified a release here yet", step
        )
    verified = target.get("tag")
    if verified != live_tag:
        return LiveRelease(
            live_tag,
            False,
            f"tag {shown}, NOT the release a gate last verified ({describe_target(target)}): "
            "changed since by something other than a gate (a GitOps sync, kubectl)",
            step,
        )
    return LiveRelease(
        live_tag,
        True,
        f"tag {shown}, verified by {target.get('by')} at {target.get('at')} (record step {step!r})",
        step,
    )


# ---------------------------------------------------------------------------------------------
# Reading and writing it.


def split_secrets(record: Obj, name: str) -> tuple[Obj, Obj]:
    """(record without Secret values, {Secret name: content}) for a record named `name`. Pure.

    Each Secret among the target's objects keeps its name, type, labels and annotations in the
    record; its ``data``/``stringData`` (and a last-applied-configuration annotation, which
    ``kubectl apply`` fills with the values) move to the companion Secret.
    """
    public = copy.deepcopy(record)
    hidden: Obj = {}
    for obj in (public.get("target") or {}).get("objects") or []:
        if obj.get("kind") != "Secret" or obj.get("apiVersion") != "v1":
            continue
        content = {k: obj.pop(k) for k in _SECRET_CONTENT if k in obj}
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if _LAST_APPLIED in annotations:
            content["lastApplied"] = annotations.pop(_LAST_APPLIED)
        hidden[str(at(obj, "metadata", "name"))] = content
        obj[CONTENT_IN] = name
    return public, hidden


def merge_secrets(record: Obj, hidden: Obj) -> Obj:
    """The record with its Secrets' content put back (``split_secrets`` undone). Pure."""
    merged = copy.deepcopy(record)
    for obj in (merged.get("target") or {}).get("objects") or []:
        if obj.pop(CONTENT_IN, None) is None:
            continue
        content = copy.deepcopy(hidden.get(str(at(obj, "metadata", "name"))) or {})
        last_applied = content.pop("lastApplied", None)
        obj.update(content)
        if last_applied is not None:
            obj.setdefault("metadata", {}).setdefault("annotations", {})[_LAST_APPLIED] = (
                last_applied
            )
    return merged


def _hidden_in(record: Obj) -> bool:
    return any(CONTENT_IN in o for o in (record.get("target") or {}).get("objects") or [])


def read_public(api: ApiClient, namespace: str, name: str) -> Obj | None:
    """The record without its Secrets' values (what ``--verify`` reads: it restores nothing,
    so it needs no right on Secrets). None without one."""
    return _read_configmap(api, namespace, name)


def read(api: ApiClient, namespace: str, name: str) -> Obj | None:
    """The record, None without one. ClusterError when it cannot be parsed, or when the Secret
    holding its Secrets' values is missing or unreadable."""
    record = _read_configmap(api, namespace, name)
    if record is None or not _hidden_in(record):
        return record
    secret = kube.get(api, "v1", "Secret", name, namespace)
    text = ((secret or {}).get("data") or {}).get(SECRETS_KEY)
    try:
        hidden = json.loads(base64.b64decode(text or "").decode("utf-8"))
    except (ValueError, binascii.Error) as e:
        raise ClusterError(
            f"release record secrets {namespace}/{name}: missing or not JSON ({e}); the record's "
            f"target cannot be restored without it"
        ) from e
    return merge_secrets(record, hidden if isinstance(hidden, dict) else {})


def _read_configmap(api: ApiClient, namespace: str, name: str) -> Obj | None:
    cm = kube.get(api, "v1", "ConfigMap", name, namespace)
    if cm is None:
        return None
    text = (cm.get("data") or {}).get(KEY)
    try:
        record = json.loads(text or "")
    except ValueError as e:
        raise ClusterError(
            f"release record configmaps {namespace}/{name} key {KEY} is not JSON ({e}); "
            f"delete it (kubectl -n {namespace} delete configmap {name}) to start afresh"
        ) from e
    if not isinstance(record, dict):
        raise ClusterError(f"release record configmaps {namespace}/{name}: not a JSON object")
    return record


def write(api: ApiClient, namespace: str, name: str, record: Obj) -> None:
    """The Secrets' values first (a record never names a companion that is not there), then
    the ConfigMap."""
    record, hidden = split_secrets(record, name)
    if hidden:
        payload = base64.b64encode(json.dumps(hidden, sort_keys=True).encode()).decode()
        secret: Obj = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
            "type": SECRETS_TYPE,
            "data": {SECRETS_KEY: payload},
        }
        kube.server_side_apply(api, secret, namespace)
    body: Obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "data": {KEY: json.dumps(record, indent=1, sort_keys=True)},
    }
    kube.server_side_apply(api, body, namespace)


@dataclass
class Tracker:
    """The record of this gate's release: read once after the lease is taken, then written at
    each step while the lease is held. ``lose`` (from the lease's renewal thread) stops every
    further write and change."""

    api: ApiClient
    namespace: str
    lease: lock.Lease
    api_timeout: float
    found: Obj | None = None  # the record as this gate found it
    current: Obj | None = None
    lost_reason: str | None = None
    on_lost: Callable[[str], None] | None = None
    # Set from apply until the release's end: a lost lease then interrupts the main thread.
    interrupt_on_loss: bool = False

    def __post_init__(self) -> None:
        self.name = record_name(self.lease.name)
        self._lost = threading.Event()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def lose(self, reason: str) -> None:
        """The lease is gone: no further write, apply or restore by this gate."""
        if self._lost.is_set():
            return
        self.lost_reason = reason
        self._lost.set()
        if self.on_lost is not None:
            self.on_lost(reason)

    def ensure_held(self) -> None:
        """LockLost unless the lease is still ours, read fresh (before any change). An API
        server that does not answer is waited for under the running step's patience, and past
        its deadline is that error (ClusterUnreachable), never a lost lease."""
        if not self.lost:
            holder = lock.holder(self.api, self.lease)
            if holder != self.lease.holder:
                self.lose(
                    f"lease {self.lease.namespace}/{self.lease.name} is now held by "
                    f"{holder or '(nobody)'}"
                )
        if self.lost:
            raise LockLost(
                f"{self.lost_reason}; another gate owns the target now, so this gate changes "
                "nothing more (no apply, no restore)"
            )

    def load(self) -> Obj | None:
        self.found = read(self.api, self.namespace, self.name)
        return self.found

    def save(self, **fields: Any) -> None:
        """Write the record with `fields` changed; nothing once the lease is lost."""
        if self.lost:
            return
        record = copy.deepcopy(self.current or self.found or {})
        record.update(fields)
        record["holder"] = self.lease.holder
        record["process"] = this_process()
        record["updated"] = now_iso()
        with kube.patience(time.monotonic() + self.api_timeout):
            write(self.api, self.namespace, self.name, record)
        self.current = record

    def start(self, tag: str | None) -> None:
        """Right after the lease is taken: name this gate as the writer. An unfinished record
        keeps its step, tag and target (what must be recovered), naming who left it."""
        found = self.found
        if unfinished(found):
            assert found is not None
            self.save(left_by=found.get("left_by") or found.get("holder"))
        else:
            self.save(step="locked", tag=tag, left_by=None)

    def begin(self, tag: str | None, snap: Snapshot, objs: list[Obj]) -> None:
        """Before apply: what this gate found, what it applies, and the restore target (the
        last verified release; before any, what it found)."""
        target = (self.current or {}).get("target")
        if not target or not target.get("verified"):
            target = target_of(
                [live for _m, live in snap.objects if live is not None],
                tag=snap.tag(),
                verified=False,
                by=self.lease.holder,
                first_deploy=snap.first_deploy,
            )
        self.save(
            step="applying",
            tag=tag,
            started=now_iso(),
            left_by=None,
            found={"tag": snap.tag(), "first_deploy": snap.first_deploy},
            applied=[
                {"apiVersion": o["apiVersion"], "kind": o["kind"], "name": o["metadata"]["name"]}
                for o in objs
            ],
            target=target,
        )

    def step(self, step: str) -> None:
        assert step in STEPS, step
        self.save(step=step)

    def verified(self, step: str, objs: list[Obj], tag: str | None) -> None:
        """The release now live was verified: it is the restore target from now on."""
        live = []
        for obj in objs:
            got = kube.get(
                self.api, obj["apiVersion"], obj["kind"], obj["metadata"]["name"], self.namespace
            )
            if got is not None:
                live.append(got)
        target = target_of(
            live, tag=tag, verified=True, by=self.lease.holder, first_deploy=not live
        )
        self.save(step=step, target=target)
