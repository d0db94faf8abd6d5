"""StatefulSet and DaemonSet: ControllerRevisions, pods labelled with the revision's hash."""

from __future__ import annotations

from typing import ClassVar

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import RolloutFailed
from rolloutgate.objects import (
    CHANGE_CAUSE,
    Obj,
    as_int,
    at,
    is_ready,
    name_of,
    owned_by,
    ref,
)
from rolloutgate.workloads.base import (
    Refusal,
    Revision,
    RolloutStatus,
    Viewer,
    admission_verdict,
    observed,
    pods_with,
    rolling_update_only,
    template_images,
    unobserved,
)


class RevisionedViewer(Viewer):
    """Kinds whose revisions are ControllerRevisions and whose pods carry the revision's hash in
    the `controller-revision-hash` label (StatefulSet, DaemonSet)."""

    kind: ClassVar[str]
    api_version: ClassVar[str] = "apps/v1"
    REVISION_HASH: ClassVar[str] = "controller-revision-hash"

    def problems(self, obj: Obj) -> list[str]:
        return rolling_update_only(self.kind, obj)

    def refusal_events(self) -> bool:
        # Their controllers set no condition when the API server refuses a pod: the only trace
        # is a FailedCreate event on the workload.
        return True

    def event_refusal(self, obj: Obj, message: str) -> Refusal | None:
        """The verdict on a FailedCreate event of the controller (its message), or None when
        waiting may cure it (the wait goes on and its timeout names the refusal). Pure.

        An admission webhook's or Pod Security's denial of the template is final. A quota with
        no room is final once it still refuses a moment later (``Refusal.confirm``): the
        controller deletes a pod before it creates its replacement, and the quota's usage may
        count the deleted pod until the quota controller has seen it go.
        """
        name, namespace = name_of(obj), at(obj, "metadata", "namespace") or "<namespace>"
        head = (
            f"{self.kind.lower()} {name}: FailedCreate: the API server refuses its new pods: "
            f"{message}"
        )
        if "exceeded quota" in message:
            return Refusal(
                f"{head}. The namespace's ResourceQuota has no room for them. Fix: raise the "
                f"quota (`kubectl describe resourcequota -n {namespace}`), lower the pods' "
                "requests or the replicas",
                confirm=True,
            )
        final = admission_verdict(head, message)
        return Refusal(final) if final is not None else None

    def controller_revisions(self, api: ApiClient, namespace: str, obj: Obj) -> list[Obj]:
        listing = kube.list_objects(
            api, "apps/v1", "ControllerRevision", namespace, label_selector=self.pod_selector(obj)
        )
        owned = [cr for cr in listing.get("items") or [] if owned_by(cr, obj)]
        return sorted(owned, key=lambda cr: as_int(cr.get("revision")))

    def history_rows(self, revisions: list[Obj]) -> list[Obj]:
        """Rollout history from the object's ControllerRevisions, oldest first. Pure."""
        return [
            {
                "revision": as_int(cr.get("revision")),
                "replicaset": name_of(cr),
                "images": list(template_images({"spec": at(cr, "data", "spec") or {}}).values()),
                "replicas": None,
                "ready": None,
                "change_cause": at(cr, "metadata", "annotations", CHANGE_CAUSE),
            }
            for cr in revisions
        ]

    def history(self, api: ApiClient, namespace: str, obj: Obj) -> tuple[list[Obj], dict[str, str]]:
        revisions = self.controller_revisions(api, namespace, obj)
        by_hash = {
            str(at(cr, "metadata", "labels", self.REVISION_HASH) or name_of(cr)): str(
                cr.get("revision")
            )
            for cr in revisions
        }
        by_name = {name_of(cr): str(cr.get("revision")) for cr in revisions}
        pods = pods_with(api, namespace, self.pod_selector(obj))
        found = {}
        for p in pods:
            label = str(at(p, "metadata", "labels", self.REVISION_HASH))
            found[name_of(p)] = by_hash.get(label) or by_name.get(label) or "?"
        return self.history_rows(revisions), found


class StatefulSetViewer(RevisionedViewer):
    """apps/v1 StatefulSet: status.updateRevision names the revision; pods carry it as their
    controller-revision-hash label."""

    kind: ClassVar[str] = "StatefulSet"

    def replicas(self, obj: Obj) -> int:
        value = at(obj, "spec", "replicas")
        return value if isinstance(value, int) else 1

    def status(
        self, obj: Obj, revision: Revision | None, *, progress_deadline: bool = True
    ) -> RolloutStatus:
        """kubectl's StatefulSet rules, in its order."""
        name = name_of(obj)
        for problem in rolling_update_only(self.kind, obj):
            raise RolloutFailed(problem, reason="UpdateStrategy")
        update = at(obj, "status", "updateRevision")
        if revision is not None and revision.name is not None and update != revision.name:
            raise RolloutFailed(
                f"statefulset {name}: update revision changed from {revision.name} to {update} "
                "while the gate waited: another actor rolled it out",
                reason="RevisionChanged",
            )
        if (waiting := unobserved(obj, unset=True)) is not None:
            return waiting
        replicas = self.replicas(obj)
        ready = as_int(at(obj, "status", "readyReplicas"))
        if ready < replicas:
            return RolloutStatus(False, f"{ready}/{replicas} pods ready")
        partition = at(obj, "spec", "updateStrategy", "rollingUpdate", "partition")
        if isinstance(partition, int) and partition > 0:
            updated = as_int(at(obj, "status", "updatedReplicas"))
            if updated < replicas - partition:
                return RolloutStatus(
                    False,
                    f"partitioned roll out: {updated} of {replicas - partition} new pods updated",
                )
            return RolloutStatus(
                True, f"statefulset {name}: partitioned roll out complete ({updated} new pods)"
            )
        current = at(obj, "status", "currentRevision")
        if update != current:
            updated = as_int(at(obj, "status", "updatedReplicas"))
            return RolloutStatus(
                False, f"rolling update: {updated}/{replicas} pods at revision {update}"
            )
        return RolloutStatus(
            True, f"statefulset {name} rolled out: {replicas} pods at revision {update}"
        )

    def pin(self, api: ApiClient, obj: Obj, generation: int | None) -> tuple[Revision | None, str]:
        observed = as_int(at(obj, "status", "observedGeneration"))
        update = at(obj, "status", "updateRevision")
        if observed < (generation or 1) or not update:
            return None, "waiting for the spec update to be observed"
        return Revision(str(update), {self.REVISION_HASH: str(update)}), ""

    def release_pods(self, api: ApiClient, namespace: str, obj: Obj) -> list[Obj]:
        update = at(obj, "status", "updateRevision")
        if not update:
            return []
        return pods_with(
            api, namespace, self.pod_selector(obj, Revision(update, {self.REVISION_HASH: update}))
        )

    def after_restore(
        self, api: ApiClient, namespace: str, obj: Obj, *, deadline: float
    ) -> list[str]:
        """A StatefulSet does not replace a pod that never became ready with the restored
        template (the documented "forced rollback"): once the controller has seen the restored
        template, delete the pods of another revision that are not ready."""
        current = observed(api, namespace, self, name_of(obj), deadline)
        if current is None:
            return [f"{ref(obj)}: restored template not observed before the deadline"]
        update = at(current, "status", "updateRevision")
        done = []
        for pod in pods_with(api, namespace, self.pod_selector(current)):
            if is_ready(pod) or at(pod, "metadata", "labels", self.REVISION_HASH) == update:
                continue
            kube.delete(api, "v1", "Pod", name_of(pod), namespace, propagation="Background")
            done.append(
                f"Pod/{name_of(pod)}: deleted (not ready, failed revision; the StatefulSet "
                "recreates it from the restored template)"
            )
        return done

    def summary(self, obj: Obj) -> Obj:
        status = obj.get("status") or {}
        return {
            "kind": self.kind,
            "name": name_of(obj),
            "revision": status.get("updateRevision"),
            "generation": at(obj, "metadata", "generation"),
            "observedGeneration": status.get("observedGeneration"),
            "replicas": at(obj, "spec", "replicas"),
            "updatedReplicas": status.get("updatedReplicas", 0),
            "readyReplicas": status.get("readyReplicas", 0),
            "availableReplicas": status.get("availableReplicas", 0),
            "conditions": [],
        }


class DaemonSetViewer(RevisionedViewer):
    """apps/v1 DaemonSet: the newest ControllerRevision is the current template; its hash is the
    pods' controller-revision-hash label."""

    kind: ClassVar[str] = "DaemonSet"
    TEMPLATE_GENERATION: ClassVar[str] = "deprecated.daemonset.template.generation"

    def replicas(self, obj: Obj) -> int:
        return as_int(at(obj, "status", "desiredNumberScheduled"))

    def status(
        self, obj: Obj, revision: Revision | None, *, progress_deadline: bool = True
    ) -> RolloutStatus:
        """kubectl's DaemonSet rules, in its order."""
        name = name_of(obj)
        for problem in rolling_update_only(self.kind, obj):
            raise RolloutFailed(problem, reason="UpdateStrategy")
        if (waiting := unobserved(obj)) is not None:
            return waiting
        desired = as_int(at(obj, "status", "desiredNumberScheduled"))
        updated = as_int(at(obj, "status", "updatedNumberScheduled"))
        available = as_int(at(obj, "status", "numberAvailable"))
        if updated < desired:
            return RolloutStatus(False, f"{updated} of {desired} new pods updated")
        if available < desired:
            return RolloutStatus(False, f"{available} of {desired} updated pods available")
        return RolloutStatus(True, f"daemon set {name} rolled out: {available}/{desired} available")

    def _current(self, api: ApiClient, namespace: str, obj: Obj) -> Obj | None:
        """The ControllerRevision holding the object's current template, if recorded yet."""
        want = at(obj, "spec", "template") or {}
        for cr in reversed(self.controller_revisions(api, namespace, obj)):
            template = dict(at(cr, "data", "spec", "template") or {})
            template.pop("$patch", None)  # the controller stores the template as a patch
            if template == want:
                return cr
        return None

    def pin(self, api: ApiClient, obj: Obj, generation: int | None) -> tuple[Revision | None, str]:
        if as_int(at(obj, "status", "observedGeneration")) < (generation or 1):
            return None, "waiting for the spec update to be observed"
        current = self._current(api, str(at(obj, "metadata", "namespace")), obj)
        label = at(current, "metadata", "labels", self.REVISION_HASH) if current else None
        if current is None or not label:
            return None, "waiting for the new revision to be recorded"
        return Revision(str(current.get("revision")), {self.REVISION_HASH: str(label)}), ""

    def release_pods(self, api: ApiClient, namespace: str, obj: Obj) -> list[Obj]:
        current = self._current(api, namespace, obj)
        label = at(current, "metadata", "labels", self.REVISION_HASH) if current else None
        if not label:
            return []
        revision = Revision(
            str(current.get("revision")) if current else None, {self.REVISION_HASH: str(label)}
        )
        return pods_with(api, namespace, self.pod_selector(obj, revision))

    def after_restore(
        self, api: ApiClient, namespace: str, obj: Obj, *, deadline: float
    ) -> list[str]:
        return []  # the DaemonSet controller replaces pods of the failed revision itself

    def summary(self, obj: Obj) -> Obj:
        status = obj.get("status") or {}
        return {
            "kind": self.kind,
            "name": name_of(obj),
            "revision": at(obj, "metadata", "annotations", self.TEMPLATE_GENERATION),
            "generation": at(obj, "metadata", "generation"),
            "observedGeneration": status.get("observedGeneration"),
            "replicas": status.get("desiredNumberScheduled"),
            "updatedReplicas": status.get("updatedNumberScheduled", 0),
            "readyReplicas": status.get("numberReady", 0),
            "availableReplicas": status.get("numberAvailable", 0),
            "conditions": [],
        }
