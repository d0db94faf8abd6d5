"""A copy of the live objects the manifests touch, taken before the gate applies anything."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.manifests import ImageRef
from rolloutgate.objects import Obj
from rolloutgate.workloads import is_workload, viewer_for


@dataclass
class Snapshot:
    """(manifest, live copy or None when the object did not exist) for each manifest object."""

    objects: list[tuple[Obj, Obj | None]] = field(default_factory=list)
    namespace: str = ""

    def tag(self) -> str | None:
        """Image tag of the first live workload's first container (None: nothing to restore)."""
        for _manifest, live in self.objects:
            if live is not None and is_workload(live):
                images = list(viewer_for(live).images(live).values())
                return ImageRef.parse(images[0]).tag if images else None
        return None

    def live(self, kind: str, name: str) -> Obj | None:
        """The snapshot's copy of one object."""
        for manifest, live in self.objects:
            if manifest.get("kind") == kind and manifest["metadata"]["name"] == name:
                return live
        return None

    def existing(self) -> list[Obj]:
        """Live copies of the objects that existed: what a rollback restores."""
        return [live for _manifest, live in self.objects if live is not None]

    def created(self) -> list[Obj]:
        """Manifests of the objects that did not exist: what a rollback deletes."""
        return [manifest for manifest, live in self.objects if live is None]

    @property
    def first_deploy(self) -> bool:
        """No workload of the manifests existed (other objects may have: a Namespace, a
        Service made by hand): a rollback leaves no workload to wait for."""
        return not any(is_workload(live) for live in self.existing())


def take(api: ApiClient, namespace: str, objs: list[Obj]) -> Snapshot:
    """Read every object the manifests name from `namespace` (ClusterError if it cannot)."""
    snap = Snapshot(namespace=namespace)
    for obj in objs:
        name = str(obj["metadata"]["name"])
        live = kube.get(api, str(obj["apiVersion"]), str(obj["kind"]), name, namespace)
        snap.objects.append((copy.deepcopy(obj), copy.deepcopy(live)))
    return snap
