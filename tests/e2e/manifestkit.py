"""Variants of the example manifests for end-to-end tests, written to a temporary directory,
and a fresh namespace per test that is deleted afterwards."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from gaterun import REPO, kubectl

MANIFESTS = REPO / "fixtures" / "manifests"


def manifests(target: Path, *, replicas: int | None = None, cpu: str = "25m", **extra: str) -> Path:
    """The example manifests in `target`, the Deployment at `replicas`, plus `extra` files
    (file name without .yaml → text). Writing again to the same `target` replaces them.

    The CPU request is lowered (`cpu`) and the liveness probe given minutes: the shared 2-core
    node is often full of other tests' pods, where a start can take longer than the example's
    minute, and what these tests check is the gate, not the scheduler or the start-up time.
    """
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(MANIFESTS, target)
    deployment = target / "deployment.yaml"
    text = deployment.read_text()
    for expected in ("replicas: 3", "cpu: 50m", "failureThreshold: 6"):
        assert expected in text, f"{expected!r} not in {deployment}"
    if replicas is not None:
        text = text.replace("replicas: 3", f"replicas: {replicas}")
    text = text.replace("failureThreshold: 6", "failureThreshold: 30")
    deployment.write_text(text.replace("cpu: 50m", f"cpu: {cpu}"))
    for name, extra_text in extra.items():
        (target / f"{name}.yaml").write_text(extra_text)
    return target


def edit_deployment(target: Path, edit: Any) -> None:
    """Apply `edit(obj)` to the parsed Deployment manifest and write it back."""
    path = target / "deployment.yaml"
    obj = yaml.safe_load(path.read_text())
    edit(obj)
    path.write_text(yaml.safe_dump(obj, sort_keys=False))


def get(kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    return json.loads(kubectl("get", kind, name, "-o", "json", namespace=namespace))


def exists(kind: str, name: str, namespace: str | None = None) -> bool:
    out = kubectl("get", kind, "--ignore-not-found", "-o", "name", namespace=namespace)
    return any(line.split("/", 1)[-1] == name for line in out.splitlines())


@contextmanager
def fresh_namespace(prefix: str) -> Iterator[str]:
    """A namespace name nobody uses; deleted (without waiting) afterwards, the gate creates it."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")
