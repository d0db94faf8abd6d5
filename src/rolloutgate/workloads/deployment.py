"""apps/v1 Deployment: ReplicaSets carry revisions, pods carry the pod-template-hash."""

from __future__ import annotations

import copy
import math
from typing import ClassVar

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import RolloutFailed
from rolloutgate.objects import (
    CHANGE_CAUSE,
    Obj,
    as_int,
    at,
    is_deleting,
    name_of,
    owned_by,
)
from rolloutgate.workloads.base import (
    Revision,
    RolloutStatus,
    Viewer,
    admission_verdict,
    template_images,
    unobserved,
)


class DeploymentViewer(Viewer):
    """apps/v1 Deployment: ReplicaSets carry revisions, pods carry the pod-template-hash."""

    kind: ClassVar[str] = "Deployment"
    api_version: ClassVar[str] = "apps/v1"
    REVISION: ClassVar[str] = "deployment.kubernetes.io/revision"
    POD_TEMPLATE_HASH: ClassVar[str] = "pod-template-hash"

    def revision_of(self, obj: Obj) -> str | None:
        value = at(obj, "metadata", "annotations", self.REVISION)
        return str(value) if value is not None else None

    def replicas(self, obj: Obj) -> int:
        value = at(obj, "spec", "replicas")
        return value if isinstance(value, int) else 1  # the API's default

    def status(
        self, obj: Obj, revision: Revision | None, *, progress_deadline: bool = True
    ) -> RolloutStatus:
        """kubectl rollout status rules, in kubectl's order, for one observed Deployment.

        `revision` pins the rollout this gate created: any other revision means another actor
        rolled the Deployment meanwhile (RolloutFailed, reason "RevisionChanged"). Unless
        `progress_deadline` is False, ProgressDeadlineExceeded is a verdict too.
        """
        name = name_of(obj)
        if revision is not None and revision.name is not None:
            current = self.revision_of(obj)
            if current != revision.name:
                raise RolloutFailed(
                    f"deployment {name}: revision changed from {revision.name} to {current} "
                    "while the gate waited: another actor (a person, a CI job, an operator) "
                    f"rolled it out; see `kubectl rollout history deployment/{name}`",
                    reason="RevisionChanged",
                )
        if (waiting := unobserved(obj)) is not None:
            return waiting
        conditions = (at(obj, "status", "conditions") or []) if progress_deadline else []
        for cond in conditions:
            if (
                cond.get("type") == "Progressing"
                and cond.get("reason") == "ProgressDeadlineExceeded"
            ):
                deadline = at(obj, "spec", "progressDeadlineSeconds")
                raise RolloutFailed(
                    f"deployment {name} exceeded its progress deadline"
                    f"{f' ({deadline} s)' if deadline is not None else ''}: "
                    f"{cond.get('message', '')}",
                    reason="ProgressDeadlineExceeded",
                )
        refused = None
        for cond in conditions:
            if _refusal(cond):
                refused = str(cond.get("message") or "").strip()
                final = self.refusal_verdict(obj, refused)
                if final is not None:
                    raise RolloutFailed(final, reason="FailedCreate")
        replicas = self.replicas(obj)
        updated = as_int(at(obj, "status", "updatedReplicas"))
        total = as_int(at(obj, "status", "replicas"))
        available = as_int(at(obj, "status", "availableReplicas"))
        if updated < replicas:
            return RolloutStatus(False, f"{updated}/{replicas} replicas updated", refused)
        if total > updated:
            return RolloutStatus(False, f"{total - updated} old replicas pending termination")
        if available < updated:
            return RolloutStatus(False, f"{available}/{updated} updated replicas available")
        return RolloutStatus(
            True, f"deployment {name} rolled out: {available}/{replicas} available"
        )

    def max_unavailable(self, obj: Obj) -> int:
        """How many pods a rolling update may take down before new ones are ready, as the
        controller resolves it (a percentage of replicas rounded down, maxSurge's rounded up,
        1 when both are 0); every replica with ``Recreate``. Pure."""
        replicas = self.replicas(obj)
        if at(obj, "spec", "strategy", "type") == "Recreate":
            return replicas
        rolling = at(obj, "spec", "strategy", "rollingUpdate") or {}
        unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, up=False)
        surge = _scaled(rolling.get("maxSurge", "25%"), replicas, up=True)
        return 1 if unavailable == 0 and surge == 0 else unavailable

    def makes_room(self, obj: Obj) -> bool:
        return self.max_unavailable(obj) > 0

    def refusal_verdict(self, obj: Obj, message: str) -> str | None:
        """The verdict on a ReplicaFailure (FailedCreate) condition, when waiting cannot cure it,
        else None (the wait goes on and its timeout names the refusal). Pure.

        A quota with no room fails when the update cannot free any (maxUnavailable 0: the old
        pods stay until new ones are ready); with room to take old pods down first, the
        controller's retry may succeed once they are gone. An admission webhook's or Pod
        Security's denial of the template is final.
        """
        name, namespace = name_of(obj), at(obj, "metadata", "namespace") or "<namespace>"
        head = f"deployment {name}: FailedCreate: the API server refuses its new pods: {message}"
        if "exceeded quota" in message:
            if self.makes_room(obj) and not _recreate(obj):
                return None
            return (
                f"{head}. The namespace's ResourceQuota has no room for them: a rolling update "
                "needs room for maxSurge pods beyond the replicas. Fix: raise the quota (`kubectl "
                f"describe resourcequota -n {namespace}`), lower the pods' requests, or replace "
                "pods in place (strategy.rollingUpdate maxSurge: 0 with maxUnavailable: 1)"
            )
        return admission_verdict(head, message)

    def new_replicaset(self, obj: Obj, replicasets: list[Obj]) -> Obj | None:
        """The ReplicaSet the Deployment owns whose pod template is the Deployment's. Pure.

        As the controller matches them: templates equal but for the pod-template-hash label.
        """
        want = at(obj, "spec", "template") or {}
        for rs in replicasets:
            if not owned_by(rs, obj):
                continue
            template = copy.deepcopy(at(rs, "spec", "template") or {})
            labels = at(template, "metadata", "labels")
            if isinstance(labels, dict):
                labels.pop(self.POD_TEMPLATE_HASH, None)
            if template == want:
                return rs
        return None

    def _replicasets(self, api: ApiClient, namespace: str, obj: Obj) -> list[Obj]:
        listing = kube.list_objects(
            api, "apps/v1", "ReplicaSet", namespace, label_selector=self.pod_selector(obj)
        )
        return [rs for rs in listing.get("items") or [] if owned_by(rs, obj)]

    def pin(self, api: ApiClient, obj: Obj, generation: int | None) -> tuple[Revision | None, str]:
        """Pin the revision (and pod-template-hash) of the rollout our apply started.

        Right after an apply the controller may not have acted yet. observedGeneration is not
        enough: a change of replicas and template together is first synced as a scaling event,
        which records our generation while the old revision is still current. Our rollout is
        the ReplicaSet whose template is the Deployment's, once the Deployment carries its
        revision.
        """
        if as_int(at(obj, "status", "observedGeneration")) < (generation or 0):
            return None, "waiting for the spec update to be observed"
        namespace = str(at(obj, "metadata", "namespace"))
        rs = self.new_replicaset(obj, self._replicasets(api, namespace, obj))
        if rs is None or self.revision_of(rs) != self.revision_of(obj):
            return None, "waiting for the new ReplicaSet to be created"
        pod_hash = at(rs, "metadata", "labels", self.POD_TEMPLATE_HASH)
        labels = {self.POD_TEMPLATE_HASH: str(pod_hash)} if pod_hash is not None else {}
        return Revision(self.revision_of(rs), labels), ""

    def problems(self, obj: Obj) -> list[str]:
        if at(obj, "spec", "paused") is True:
            return [
                f"deployment {name_of(obj)} is paused: a rollout would never progress; resume "
                f"it (kubectl rollout resume deployment/{name_of(obj)}) or remove "
                "spec.paused from the manifest"
            ]
        return []

    def after_restore(
        self, api: ApiClient, namespace: str, obj: Obj, *, deadline: float
    ) -> list[str]:
        return []  # the Deployment controller replaces the failed ReplicaSet's pods itself

    def release_pods(self, api: ApiClient, namespace: str, obj: Obj) -> list[Obj]:
        revision = self.revision_of(obj)
        owned = [
            rs for rs in self._replicasets(api, namespace, obj) if self.revision_of(rs) == revision
        ]
        if not owned:
            return []
        pod_hash = at(owned[0], "metadata", "labels", self.POD_TEMPLATE_HASH)
        labels = {self.POD_TEMPLATE_HASH: str(pod_hash)} if pod_hash else {}
        selector = self.pod_selector(obj, Revision(revision, labels))
        pods = kube.list_objects(api, "v1", "Pod", namespace, label_selector=selector)
        return [p for p in pods.get("items") or [] if not is_deleting(p)]

    def history_rows(self, replicasets: list[Obj]) -> list[Obj]:
        """Rollout history from the ReplicaSets a Deployment owns, oldest revision first. Pure."""
        rows = []
        for rs in replicasets:
            rev = self.revision_of(rs)
            rows.append(
                {
                    "revision": int(rev) if rev is not None and rev.isdigit() else rev,
                    "replicaset": name_of(rs),
                    "images": list(template_images(rs).values()),
                    "replicas": at(rs, "spec", "replicas") or 0,
                    "ready": at(rs, "status", "readyReplicas") or 0,
                    "change_cause": at(rs, "metadata", "annotations", CHANGE_CAUSE),
                }
            )
        return sorted(rows, key=lambda r: r["revision"] if isinstance(r["revision"], int) else -1)

    def history(self, api: ApiClient, namespace: str, obj: Obj) -> tuple[list[Obj], dict[str, str]]:
        owned = self._replicasets(api, namespace, obj)
        rows = self.history_rows(owned)
        by_hash = {
            str(at(rs, "metadata", "labels", self.POD_TEMPLATE_HASH)): str(self.revision_of(rs))
            for rs in owned
        }
        pods = kube.list_objects(api, "v1", "Pod", namespace, label_selector=self.pod_selector(obj))
        revisions = {
            name_of(p): by_hash.get(str(at(p, "metadata", "labels", self.POD_TEMPLATE_HASH)), "?")
            for p in pods.get("items") or []
        }
        return rows, revisions

    def summary(self, obj: Obj) -> Obj:
        status = obj.get("status") or {}
        return {
            "kind": self.kind,
            "name": name_of(obj),
            "revision": self.revision_of(obj),
            "generation": at(obj, "metadata", "generation"),
            "observedGeneration": status.get("observedGeneration"),
            "replicas": at(obj, "spec", "replicas"),
            "updatedReplicas": status.get("updatedReplicas", 0),
            "readyReplicas": status.get("readyReplicas", 0),
            "availableReplicas": status.get("availableReplicas", 0),
            "conditions": [
                {k: c.get(k) for k in ("type", "status", "reason", "message")}
                for c in status.get("conditions") or []
            ],
        }


def _refusal(cond: Obj) -> bool:
    """A ReplicaFailure condition of pods the API server refused to create (the controller
    copies it from the ReplicaSet, whose pod creations are refused: quota, admission)."""
    return (
        cond.get("type") == "ReplicaFailure"
        and cond.get("status") == "True"
        and cond.get("reason") == "FailedCreate"
    )


def _recreate(obj: Obj) -> bool:
    return bool(at(obj, "spec", "strategy", "type") == "Recreate")


def _scaled(value: object, replicas: int, *, up: bool) -> int:
    """An int-or-percent of a rolling update resolved against `replicas`."""
    text = str(value).strip()
    if text.endswith("%"):
        try:
            share = float(text[:-1]) * replicas / 100
        except ValueError:
            return 0
        return math.ceil(share) if up else math.floor(share)
    return as_int(value)
