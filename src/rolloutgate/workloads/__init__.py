"""One status viewer per workload kind (kubectl's ``StatusViewerFor``): the only module that
knows what a Deployment is.

A viewer says, for one kind: when a rollout is done (kubectl ``rollout status`` rules), which
revision an apply started and which pods belong to it, which images its containers want, and
its rollout history. The rules are pure functions of API objects as dicts, tested on recorded
objects; ``pin``, ``release_pods`` and ``history`` read from the API server. Adding a kind is
adding one class to ``VIEWERS``.

    base        the ``StatusViewer`` protocol, ``RolloutStatus``, ``Revision``, shared pod rules
    deployment  ``DeploymentViewer``
    revisioned  ``StatefulSetViewer``, ``DaemonSetViewer`` (ControllerRevisions)

May import: ``rolloutgate.kube``, ``rolloutgate.manifests``, ``rolloutgate.objects``,
``rolloutgate.errors``.
"""

from __future__ import annotations

from rolloutgate.errors import ConfigError
from rolloutgate.objects import Obj
from rolloutgate.workloads.base import (
    Revision,
    RolloutStatus,
    StatusViewer,
    template_images,
)
from rolloutgate.workloads.deployment import DeploymentViewer
from rolloutgate.workloads.revisioned import DaemonSetViewer, StatefulSetViewer

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


__all__ = [
    "CONTROLLER_ANNOTATIONS",
    "VIEWERS",
    "DaemonSetViewer",
    "DeploymentViewer",
    "Revision",
    "RolloutStatus",
    "StatefulSetViewer",
    "StatusViewer",
    "image_names",
    "is_workload",
    "kinds_text",
    "template_images",
    "viewer_for",
    "workloads",
]
