"""Manifest sources: the penguin example as a kustomize overlay and as a Helm chart, each gated
end to end (first deploy, an upgrade, a bad release rolled back), with the `images` tag override
applied to the rendered objects and the overlay's / values file's changes (2 replicas, where
the example has 1) live."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from gaterun import KUBECTL, PENGUIN, REPO, kubectl

HELM_VERSION = next(
    line.split("=", 1)[1].strip()
    for line in (REPO / "devcluster" / "versions.env").read_text().splitlines()
    if line.startswith("HELM_VERSION=")
)
HELM = Path(os.environ.get("ROLLOUTGATE_CACHE", Path.home() / ".cache" / "rolloutgate"))
HELM = HELM / "helm" / HELM_VERSION / "bin" / "helm"


@pytest.fixture
def namespace(e2e_cluster: None) -> Iterator[str]:
    name = f"e2e-src-{uuid.uuid4().hex[:6]}"
    yield name
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false")


def overlay(root: Path) -> Path:
    """base/ = the example's manifests; overlays/two/ runs 2 replicas instead of 1."""
    base = PENGUIN.copy(root / "base")
    files = sorted(p.name for p in base.glob("*.yaml"))
    (base / "kustomization.yaml").write_text(yaml.safe_dump({"resources": files}))
    two = root / "overlays" / "two"
    two.mkdir(parents=True)
    (two / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {"resources": ["../../base"], "replicas": [{"name": PENGUIN.name, "count": 2}]}
        )
    )
    return two


def chart(root: Path) -> tuple[Path, Path]:
    """A chart whose templates are the example's manifests with replicas from values, and a
    values file for one environment (2 replicas)."""
    path = root / PENGUIN.name
    templates = PENGUIN.copy(path / "templates")
    deployment = templates / "deployment.yaml"
    text = deployment.read_text()
    assert "replicas: 1\n" in text
    deployment.write_text(text.replace("replicas: 1\n", "replicas: {{ .Values.replicas }}\n"))
    (path / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": PENGUIN.name, "version": "0.1.0"})
    )
    (path / "values.yaml").write_text(yaml.safe_dump({"replicas": 1}))
    staging = root / "values-two.yaml"
    staging.write_text(yaml.safe_dump({"replicas": 2}))
    return path, staging


def replicas(namespace: str) -> int:
    dep = json.loads(kubectl("get", "deployment", PENGUIN.name, "-o", "json", namespace=namespace))
    return int(dep["spec"]["replicas"])


def gate_three_releases(namespace: str, tmp_path: Path, env: dict[str, str], *args: str) -> None:
    """v1 (first deploy) and v2 pass; `wrong` fails and rolls back to v2, verified."""
    first = PENGUIN.run(namespace, tmp_path / "v1.json", "--image-tag=v1", *args, env=env)
    assert first.returncode == 0, first.output[-4000:]
    up = PENGUIN.run(namespace, tmp_path / "v2.json", "--image-tag=v2", *args, env=env)
    assert up.returncode == 0, up.output[-4000:]
    assert PENGUIN.ready_with(namespace, "v2")
    assert replicas(namespace) == 2
    bad = PENGUIN.run(namespace, tmp_path / "wrong.json", "--image-tag=wrong", *args, env=env)
    assert bad.returncode == 1, bad.output[-4000:]
    assert bad.report["verdict"] == "rolled-back", bad.report["rollback"]
    assert PENGUIN.ready_with(namespace, "v2")
    assert replicas(namespace) == 2


def test_kustomize_overlay(namespace: str, tmp_path: Path) -> None:
    source = overlay(tmp_path / "kustomize")
    # The gate renders with `kubectl kustomize`: the project's own kubectl.
    env = {"ROLLOUTGATE_KUBECTL": str(KUBECTL)}
    args = (f"--manifests={source}",)
    dry = PENGUIN.run(
        namespace, tmp_path / "dry.json", "--image-tag=v1", "--dry-run", *args, env=env
    )
    assert dry.returncode == 0, dry.output[-3000:]
    assert dry.report["manifest_source"] == f"kustomize {source}"
    assert "manifests: kustomize" in dry.output
    gate_three_releases(namespace, tmp_path, env, *args)


def test_helm_chart_with_a_values_file(namespace: str, tmp_path: Path) -> None:
    if not HELM.is_file():
        if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
            pytest.fail(f"helm {HELM_VERSION} not built: run `make helm`")
        pytest.skip(f"helm {HELM_VERSION} not built: run `make helm`")
    path, values = chart(tmp_path / "chart")
    # `values` is what a profile sets for its environment; here through its env variable.
    env = {"ROLLOUTGATE_HELM": str(HELM), "ROLLOUTGATE_VALUES": str(values)}
    gate_three_releases(namespace, tmp_path, env, f"--manifests={path}")
