"""A copy of the live objects the manifests touch, taken before the gate applies anything."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.manifests import ImageRef, image_of

Obj = dict[str, Any]


@dataclass
class Snapshot:
    """(manifest, live copy or None when the object did not exist) for each manifest object."""

    objects: list[tuple[Obj, Obj | None]] = field(default_factory=list)
    namespace: str = ""

    def tag(self) -> str | None:
        """Image tag of the first live Deployment's first container (None: nothing to restore)."""
        for _manifest, live in self.objects:
            if live is not None and live.get("kind") == "Deployment":
                image = image_of(live)
                return ImageRef.parse(image).tag if image else None
        return None

    def live(self, kind: str, name: str) -> Obj | None:
        """The snapshot's copy of one object."""
        for manifest, live in self.objects:
            if manifest.get("kind") == kind and manifest["metadata"]["name"] == name:
                return live
        return None

    @property
    def first_deploy(self) -> bool:
        """Nothing the manifests name existed: a rollback removes everything."""
        return all(live is None for _manifest, live in self.objects)


def take(api: ApiClient, namespace: str, objs: list[Obj]) -> Snapshot:
    """Read every object the manifests name from `namespace` (ClusterError if it cannot)."""
    snap = Snapshot(namespace=namespace)
    for obj in objs:
        name = str(obj["metadata"]["name"])
        with kube.cluster_errors(f"snapshot of {kube.ref(obj)} in {namespace}"):
            live = kube.get(api, str(obj["apiVersion"]), str(obj["kind"]), name, namespace)
        snap.objects.append((copy.deepcopy(obj), copy.deepcopy(live)))
    return snap
