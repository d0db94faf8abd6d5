"""Handwritten Kubernetes objects (as the API returns them) for the pure rules."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from rolloutgate.config import GateConfig, resolve

Obj = dict[str, Any]


def deployment(
    *,
    replicas: int | None = 3,
    generation: int = 2,
    observed: int = 2,
    updated: int = 3,
    total: int = 3,
    available: int = 3,
    revision: str = "2",
    conditions: list[Obj] | None = None,
) -> Obj:
    spec: Obj = {"selector": {"matchLabels": {"app": "iris"}}, "progressDeadlineSeconds": 600}
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "iris",
            "namespace": "ml",
            "generation": generation,
            "annotations": {"deployment.kubernetes.io/revision": revision},
        },
        "spec": spec,
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "readyReplicas": available,
            "conditions": conditions or [],
        },
    }


def pod(*, container_statuses: list[Obj] | None = None, **status: Any) -> Obj:
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "iris-7c9f-abcde", "labels": {"pod-template-hash": "7c9f"}},
        "status": {"phase": "Pending", **status},
    }
    if container_statuses is not None:
        body["status"]["containerStatuses"] = container_statuses
    return body


def container(name: str = "model", restarts: int = 0, *, ready: bool = False, **state: Obj) -> Obj:
    return {
        "name": name,
        "ready": ready,
        "restartCount": restarts,
        "image": "rolloutgate/iris:v2",
        "state": state.get("state", {"waiting": {"reason": "ContainerCreating"}}),
        "lastState": state.get("lastState", {}),
    }


def clone(obj: Obj) -> Obj:
    return copy.deepcopy(obj)


def gate_config(**changes: object) -> GateConfig:
    """A resolved configuration for pure tests: every setting at its default (from the one
    settings table), as the local profile would give it; `changes` override fields."""
    cfg = resolve(
        {"rolloutgate_cluster": "local", "rolloutgate_image_tag": "v2"},
        env={},
        tool={"clusters": {"local": {"context": "local", "namespace": "ns"}}},
        rootdir=Path("."),
        invocation_dir=Path("."),
        list_contexts=lambda _kubeconfig: ["local"],
    )
    return dataclasses.replace(cfg, **changes)  # type: ignore[arg-type]
