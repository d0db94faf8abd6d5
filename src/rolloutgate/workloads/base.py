"""What every viewer shares: the ``StatusViewer`` protocol, its results, pod selection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.objects import (
    Obj,
    as_int,
    at,
    is_deleting,
    name_of,
    selector_string,
)


@dataclass(frozen=True)
class RolloutStatus:
    """One evaluation of a kind's readiness rules: done, or what is still missing; ``refused``:
    why the API server refuses the new pods, when it does and waiting may still cure it."""

    done: bool
    message: str
    refused: str | None = None


@dataclass(frozen=True)
class Refusal:
    """A verdict on the API server's refusal of new pods; ``confirm``: only once the refusal
    still stands that long (a quota's usage may still count a pod just deleted)."""

    message: str
    confirm: bool = False


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

    def refusal_events(self) -> bool:
        """Whether the API server's refusals of the kind's new pods (quota, admission) show only
        as its controller's FailedCreate events (no status condition carries them)."""
        ...

    def event_refusal(self, obj: Obj, message: str) -> Refusal | None:
        """The verdict on a FailedCreate event of the object's controller (``refusal_events``),
        or None when waiting may cure it."""
        ...

    def makes_room(self, obj: Obj) -> bool:
        """Whether the update takes old pods down before its new ones are ready (what a new
        pod that fits nowhere may be waiting for); False: only the new pods' readiness frees
        any, so without an autoscaler an unschedulable new pod is a verdict at once."""
        ...

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


class Viewer:
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

    def makes_room(self, obj: Obj) -> bool:
        # StatefulSets and DaemonSets replace a pod by deleting it first.
        return True

    def refusal_events(self) -> bool:
        return False

    def event_refusal(self, obj: Obj, message: str) -> Refusal | None:
        return None


def admission_verdict(head: str, message: str) -> str | None:
    """The verdict on a pod creation an admission webhook or Pod Security refused (final: the
    template is what they refuse), else None. `head` names the workload and the refusal. Pure."""
    if "admission webhook" in message and "denied the request" in message:
        return f"{head}. An admission webhook refuses the pod template: change what it names"
    if "violates PodSecurity" in message:
        return (
            f"{head}. The namespace's Pod Security level refuses the pod template: change its "
            "securityContext as named"
        )
    return None


def pods_with(api: ApiClient, namespace: str, selector: str) -> list[Obj]:
    pods = kube.list_objects(api, "v1", "Pod", namespace, label_selector=selector)
    return [p for p in pods.get("items") or [] if not is_deleting(p)]


def rolling_update_only(kind: str, obj: Obj) -> list[str]:
    strategy = at(obj, "spec", "updateStrategy", "type") or "RollingUpdate"
    if strategy == "RollingUpdate":
        return []
    return [
        f"{kind.lower()} {name_of(obj)} uses updateStrategy {strategy}: its pods are replaced only "
        "when someone deletes them, so a rollout never finishes by itself. The gate needs "
        "RollingUpdate (kubectl rollout status refuses other strategies too)"
    ]


def unobserved(obj: Obj, *, unset: bool = False) -> RolloutStatus | None:
    """kubectl's first rule of every kind: not rolled out while the controller has not observed
    the latest spec (generation past observedGeneration); ``unset``: also while no generation
    was observed yet (kubectl's StatefulSet rule). None once observed."""
    generation = as_int(at(obj, "metadata", "generation"))
    seen = as_int(at(obj, "status", "observedGeneration"))
    if generation > seen or (unset and seen == 0):
        return RolloutStatus(
            False,
            f"waiting for the spec update to be observed (generation {generation}, "
            f"observed {seen})",
        )
    return None


def observed(
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
