"""One status viewer per workload kind (kubectl's ``StatusViewerFor``): the only module that
knows what a Deployment is.

A viewer says, for one kind: when a rollout is done (kubectl ``rollout status`` rules), which
revision an apply started and which pods belong to it, which images its containers want, and
its rollout history. The rules are pure functions of API objects as dicts, tested on recorded
objects; ``pin``, ``release_pods`` and ``history`` read from the API server. Adding a kind is
adding one class to ``VIEWERS``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import ConfigError, RolloutFailed
from rolloutgate.objects import (
    CHANGE_CAUSE,
    Obj,
    as_int,
    at,
    is_deleting,
    is_ready,
    name_of,
    owned_by,
    ref,
    selector_string,
)


@dataclass(frozen=True)
class RolloutStatus:
    """One evaluation of a kind's readiness rules: done, or what is still missing."""

    done: bool
    message: str


@dataclass(frozen=True)
class Revision:
    """The revision a rollout is pinned to, and the labels only its pods carry."""

    name: str | None
    pod_labels: dict[str, str] = field(default_factory=dict)


class StatusViewer(Protocol):
    """What the gate needs to know about one workload kind."""

    kind: ClassVar[str]
    api_version: ClassVar[str]

    def status(
        self, obj: Obj, revision: Revision | None, *, progress_deadline: bool = True
    ) -> RolloutStatus:
        """The readiness rules for one observed object; RolloutFailed for a verdict."""
        ...

    def pin(self, api: ApiClient, obj: Obj, generation: int | None) -> tuple[Revision | None, str]:
        """The revision the apply at `generation` started, once the controller made it;
        else (None, what is awaited)."""
        ...

    def replicas(self, obj: Obj) -> int: ...

    def pod_selector(self, obj: Obj, revision: Revision | None = None) -> str: ...

    def images(self, obj: Obj) -> dict[str, str]:
        """Container name → image the pod template asks for."""
        ...

    def release_pods(self, api: ApiClient, namespace: str, obj: Obj) -> list[Obj]:
        """The pods of the object's current revision, not being deleted."""
        ...

    def history(self, api: ApiClient, namespace: str, obj: Obj) -> tuple[list[Obj], dict[str, str]]:
        """Rollout history rows (oldest first) and pod name → revision."""
        ...

    def summary(self, obj: Obj) -> Obj:
        """Revision, generations, replica counts and conditions, JSON-ready."""
        ...

    def problems(self, obj: Obj) -> list[str]:
        """Why the gate cannot roll this object out as it is (a paused Deployment, an OnDelete
        strategy), checked before anything is applied; [] when it can."""
        ...

    def after_restore(
        self, api: ApiClient, namespace: str, obj: Obj, *, deadline: float
    ) -> list[str]:
        """What a rollback must do beyond restoring the object for the controller to roll it
        back (one line per action)."""
        ...


def template_images(obj: Obj) -> dict[str, str]:
    """Container name → image of a workload's pod template: containers, then init containers."""
    spec = at(obj, "spec", "template", "spec") or {}
    return {
        str(c.get("name")): str(c.get("image"))
        for key in ("containers", "initContainers")
        for c in spec.get(key) or []
        if isinstance(c, dict) and c.get("image")
    }


class _Viewer:
    """What every kind shares: pods are selected by spec.selector (plus the revision's labels),
    images come from the pod template."""

    def pod_selector(self, obj: Obj, revision: Revision | None = None) -> str:
        selector = selector_string(at(obj, "spec", "selector") or {})
        extra = ",".join(
            f"{k}={v}" for k, v in sorted((revision.pod_labels if revision else {}).items())
        )
        return ",".join(s for s in (selector, extra) if s)

    def images(self, obj: Obj) -> dict[str, str]:
        return template_images(obj)


class DeploymentViewer(_Viewer):
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
        generation = as_int(at(obj, "metadata", "generation"))
        observed = as_int(at(obj, "status", "observedGeneration"))
        if generation > observed:
            return RolloutStatus(
                False,
                f"waiting for the spec update to be observed (generation {generation}, "
                f"observed {observed})",
            )
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
        replicas = self.replicas(obj)
        updated = as_int(at(obj, "status", "updatedReplicas"))
        total = as_int(at(obj, "status", "replicas"))
        available = as_int(at(obj, "status", "availableReplicas"))
        if updated < replicas:
            return RolloutStatus(False, f"{updated}/{replicas} replicas updated")
        if total > updated:
            return RolloutStatus(False, f"{total - updated} old replicas pending termination")
        if available < updated:
            return RolloutStatus(False, f"{available}/{updated} updated replicas available")
        return RolloutStatus(
            True, f"deployment {name} rolled out: {available}/{replicas} available"
        )

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


def _pods_with(api: ApiClient, namespace: str, selector: str) -> list[Obj]:
    pods = kube.list_objects(api, "v1", "Pod", namespace, label_selector=selector)
    return [p for p in pods.get("items") or [] if not is_deleting(p)]


def _rolling_update_only(kind: str, obj: Obj) -> list[str]:
    strategy = at(obj, "spec", "updateStrategy", "type") or "RollingUpdate"
    if strategy == "RollingUpdate":
        return []
    return [
        f"{kind.lower()} {name_of(obj)} uses updateStrategy {strategy}: its pods are replaced only "
        "when someone deletes them, so a rollout never finishes by itself. The gate needs "
        "RollingUpdate (kubectl rollout status refuses other strategies too)"
    ]


def _observed(
    api: ApiClient, namespace: str, viewer: StatusViewer, name: str, deadline: float
) -> Obj | None:
    """The object once its controller has observed its latest generation (None: deadline)."""
    watch = kube.Watch(
        api,
        viewer.api_version,
        viewer.kind,
        namespace,
        deadline=deadline,
        field_selector=f"metadata.name={name}",
    )
    try:
        for event in watch:
            obj = event.obj
            if event.type in ("ADDED", "MODIFIED") and as_int(
                at(obj, "status", "observedGeneration")
            ) >= as_int(at(obj, "metadata", "generation")):
                return obj
    finally:
        watch.stop()
    return None


class _RevisionedViewer(_Viewer):
    """Kinds whose revisions are ControllerRevisions and whose pods carry the revision's hash in
    the `controller-revision-hash` label (StatefulSet, DaemonSet)."""

    kind: ClassVar[str]
    api_version: ClassVar[str] = "apps/v1"
    REVISION_HASH: ClassVar[str] = "controller-revision-hash"

    def problems(self, obj: Obj) -> list[str]:
        return _rolling_update_only(self.kind, obj)

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
        pods = _pods_with(api, namespace, self.pod_selector(obj))
        found = {}
        for p in pods:
            label = str(at(p, "metadata", "labels", self.REVISION_HASH))
            found[name_of(p)] = by_hash.get(label) or by_name.get(label) or "?"
        return self.history_rows(revisions), found


class StatefulSetViewer(_RevisionedViewer):
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
        for problem in _rolling_update_only(self.kind, obj):
            raise RolloutFailed(problem, reason="UpdateStrategy")
        update = at(obj, "status", "updateRevision")
        if revision is not None and revision.name is not None and update != revision.name:
            raise RolloutFailed(
                f"statefulset {name}: update revision changed from {revision.name} to {update} "
                "while the gate waited: another actor rolled it out",
                reason="RevisionChanged",
            )
        generation = as_int(at(obj, "metadata", "generation"))
        observed = as_int(at(obj, "status", "observedGeneration"))
        if observed == 0 or generation > observed:
            return RolloutStatus(
                False,
                f"waiting for the spec update to be observed (generation {generation}, "
                f"observed {observed})",
            )
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
        return _pods_with(
            api, namespace, self.pod_selector(obj, Revision(update, {self.REVISION_HASH: update}))
        )

    def after_restore(
        self, api: ApiClient, namespace: str, obj: Obj, *, deadline: float
    ) -> list[str]:
        """A StatefulSet does not replace a pod that never became ready with the restored
        template (the documented "forced rollback"): once the controller has seen the restored
        template, delete the pods of another revision that are not ready."""
        current = _observed(api, namespace, self, name_of(obj), deadline)
        if current is None:
            return [f"{ref(obj)}: restored template not observed before the deadline"]
        update = at(current, "status", "updateRevision")
        done = []
        for pod in _pods_with(api, namespace, self.pod_selector(current)):
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


class DaemonSetViewer(_RevisionedViewer):
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
        for problem in _rolling_update_only(self.kind, obj):
            raise RolloutFailed(problem, reason="UpdateStrategy")
        generation = as_int(at(obj, "metadata", "generation"))
        observed = as_int(at(obj, "status", "observedGeneration"))
        if generation > observed:
            return RolloutStatus(
                False,
                f"waiting for the spec update to be observed (generation {generation}, "
                f"observed {observed})",
            )
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
        return _pods_with(api, namespace, self.pod_selector(obj, revision))

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


# The kinds the gate waits for and checks; every other kind is applied and restored only.
VIEWERS: dict[str, StatusViewer] = {
    v.kind: v for v in (DeploymentViewer(), StatefulSetViewer(), DaemonSetViewer())
}

# Annotations the workload controllers own: a restore keeps their live values.
CONTROLLER_ANNOTATIONS = frozenset({DeploymentViewer.REVISION, DaemonSetViewer.TEMPLATE_GENERATION})


def viewer_for(obj: Obj) -> StatusViewer:
    """The status viewer of the object's kind (ConfigError for a kind the gate cannot wait on)."""
    kind = str(obj.get("kind"))
    viewer = VIEWERS.get(kind)
    if viewer is None:
        raise ConfigError(
            f"the gate cannot wait for a {kind} rollout; kinds it can: {', '.join(sorted(VIEWERS))}"
        )
    return viewer


def is_workload(obj: Obj) -> bool:
    return obj.get("kind") in VIEWERS


def workloads(objs: list[Obj]) -> list[Obj]:
    """The objects the gate waits for and checks (the kinds in ``VIEWERS``), in order."""
    return [o for o in objs if is_workload(o)]


def image_names(objs: list[Obj]) -> list[str]:
    """Names (no tag or digest) of every image the workloads' containers use, sorted: what
    ``--image-tag`` retags when no ``images`` are configured."""
    from rolloutgate.manifests import ImageRef

    return sorted(
        {ImageRef.parse(i).name for w in workloads(objs) for i in viewer_for(w).images(w).values()}
    )


def kinds_text() -> str:
    """The workload kinds, for messages ("Deployment", "Deployment or StatefulSet")."""
    return " or ".join(sorted(VIEWERS))
