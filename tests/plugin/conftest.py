"""Helpers for the plugin's own tests: a small project for pytester to run the gate in.

The inner project has a pyproject.toml with profiles, a kubeconfig whose contexts point at a
closed port (nothing here contacts a cluster), manifests and a golden file.
"""

from __future__ import annotations

import json
import os

import pytest

pytest_plugins = ["pytester"]

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: closed
  cluster: {server: "https://127.0.0.1:9"}
users:
- name: nobody
  user: {token: "x"}
contexts:
- name: staging
  context: {cluster: closed, user: nobody}
- name: dev
  context: {cluster: closed, user: nobody}
current-context: dev
"""

PYPROJECT = """\
[tool.rolloutgate]
manifests = "manifests"
golden = "golden.json"
kubeconfig = "kubeconfig"

[tool.rolloutgate.clusters.staging]
context = "staging"
namespace = "iris"
timeouts = { rollout = 42 }
"""

GOLDEN = {
    "model": "iris",
    "latency": {"requests": 3, "p50_ms": 250, "p95_ms": 500},
    "cases": [
        {
            "name": "setosa",
            "request": {
                "inputs": [
                    {"name": "predict", "shape": [1, 4], "datatype": "FP64", "data": [5, 3, 1, 0]}
                ]
            },
            "expect": [{"name": "predict", "data": [0]}],
        },
        {
            "name": "virginica",
            "request": {
                "inputs": [
                    {"name": "predict", "shape": [1, 4], "datatype": "FP64", "data": [6, 3, 6, 2]}
                ]
            },
            "expect": [{"name": "predict", "data": [2]}],
        },
    ],
}

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: iris}
spec:
  replicas: 1
  selector: {matchLabels: {app: iris}}
  template:
    metadata: {labels: {app: iris}}
    spec:
      containers:
      - name: model
        image: rolloutgate/iris:v1
---
apiVersion: v1
kind: Service
metadata: {name: iris}
spec:
  selector: {app: iris}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outer environment must not steer the inner runs."""
    for name in list(os.environ):
        if name.startswith("ROLLOUTGATE_") or name in ("KUBECONFIG", "GITHUB_STEP_SUMMARY"):
            monkeypatch.delenv(name)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """Function. ``pytester`` with the inner project's files written (see module docstring)."""
    pytester.makefile(".toml", pyproject=PYPROJECT)
    (pytester.path / "kubeconfig").write_text(KUBECONFIG)
    (pytester.path / "golden.json").write_text(json.dumps(GOLDEN))
    (pytester.path / "manifests").mkdir()
    (pytester.path / "manifests" / "iris.yaml").write_text(DEPLOYMENT)
    return pytester
