"""Variants of the penguin example's manifests for end-to-end tests, written to a temporary
directory, and a fresh namespace per test that is deleted afterwards."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from gaterun import PENGUIN, kubectl


def manifests(target: Path, *, replicas: int | None = None, **extra: str) -> Path:
    """The penguin example's manifests in `target`, the Deployment at `replicas` (None: its one
    replica), plus `extra` files (file name without .yaml → text). Writing again to the same
    `target` replaces them."""
    files = {f"{name}.yaml": text for name, text in extra.items()}
    return PENGUIN.copy(target, replicas=replicas, extra=files)


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
