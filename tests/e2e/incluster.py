"""Running the gate from a pod of the local cluster, as a CI runner in Kubernetes would
(Tekton, GitLab's Kubernetes executor, Argo Workflows): no kubeconfig, only the pod's
ServiceAccount, bound to the shipped Role (deploy/rbac/, applied by ``rbac_kubeconfig``).

The cheapest honest way on this single-node cluster: the example image already has Python 3.11
(bookworm's) and nothing else we need; the gate's dependencies are installed once with pip into
a cache directory (``pip install --target``, pinned to the versions of this environment) and,
with the gate's source, the suite and kubectl, mounted into the pod through hostPath volumes
(the node is this machine). Nothing is built into an image.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from gaterun import KUBECTL, REPO
from rbac_kubeconfig import SERVICE_ACCOUNT

CACHE = Path(os.environ.get("ROLLOUTGATE_CACHE", Path.home() / ".cache" / "rolloutgate"))


def runtime() -> list[str]:
    """The gate's runtime dependencies from pyproject.toml [project], each a name with its
    extras (``tritonclient[grpc]``): without the extras, pip's install of the checkout asks for
    packages (grpcio) that no pinned download brought."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [re.split(r"[<>=!~; ]", spec, maxsplit=1)[0] for spec in project["dependencies"]]


def pinned() -> list[str]:
    """Each dependency at this environment's version, extras kept."""
    return [f"{spec}=={importlib.metadata.version(spec.split('[')[0])}" for spec in runtime()]


def dependencies() -> Path:
    """A directory holding the gate's dependencies for Python 3.11, built once per pin set."""
    pins = pinned()
    key = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:12]
    target = CACHE / "incluster-deps" / key
    if (target / ".complete").is_file():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target",
         str(partial), "--python-version", "3.11", "--only-binary=:all:", *pins],
        check=True,
        timeout=600,
    )  # fmt: skip
    (partial / ".complete").write_text("\n".join(pins) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def suite(target: Path, namespace: str, manifests: Path) -> Path:
    """The gate suite a team copies (conftest.py, tests/deploy, tests/smoke, the golden file,
    `manifests`), with a pyproject.toml whose profile `incluster` names no kubeconfig and no
    context: inside a pod the gate then uses the in-cluster configuration."""
    shutil.copy(REPO / "conftest.py", target / "conftest.py")
    for part in ("tests/deploy", "tests/smoke"):
        shutil.copytree(REPO / part, target / part)
    shutil.copytree(REPO / "fixtures" / "golden", target / "golden")
    shutil.copytree(manifests, target / "manifests")
    shutil.copytree(REPO / "fixtures" / "requests", target / "requests")
    (target / "pyproject.toml").write_text(
        f"""\
[tool.pytest.ini_options]
testpaths = ["tests/deploy", "tests/smoke"]

[tool.rolloutgate]
manifests = "manifests"
golden = "golden/iris.json"
images = ["rolloutgate/iris"]

[tool.rolloutgate.canary]
request_set = "requests/iris.jsonl"

[tool.rolloutgate.clusters.incluster]
namespace = "{namespace}"
"""
    )
    return target


def runner_pod(
    namespace: str,
    deps: Path,
    project: Path,
    out: Path,
    *args: str,
    name: str = "gate",
    env: dict[str, str] | None = None,
) -> str:
    """The pod that runs the gate in `namespace` as the shipped ServiceAccount (whose token it
    mounts: the ServiceAccount itself does not automount it): the example image's Python, the
    mounted dependencies, source and suite, kubectl for the in-pod checks; no kubeconfig."""
    command = (
        "python3", "-m", "pytest", "-p", "rolloutgate.pytest.plugin", "-p", "no:cacheprovider",
        "--cluster=incluster", "--gate-report=/out/gate.json", *args,
    )  # fmt: skip
    argv = ", ".join(f'"{a}"' for a in command)
    extra = "".join(f'    - {{name: {k}, value: "{v}"}}\n' for k, v in (env or {}).items())
    return f"""\
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}, labels: {{app.kubernetes.io/name: gate}}}}
spec:
  serviceAccountName: {SERVICE_ACCOUNT}
  automountServiceAccountToken: true
  restartPolicy: Never
  containers:
  - name: gate
    image: rolloutgate/iris:v1
    imagePullPolicy: IfNotPresent
    command: [{argv}]
    workingDir: /project
    env:
    - {{name: PYTHONPATH, value: /opt/rolloutgate/src:/opt/deps}}
    - {{name: PYTHONDONTWRITEBYTECODE, value: "1"}}
    # Plugins are named on the command line (-p rolloutgate.pytest.plugin): an editable install's
    # egg-info in the mounted src/ would register the same plugin again through its entry point.
    - {{name: PYTEST_DISABLE_PLUGIN_AUTOLOAD, value: "1"}}
    - {{name: PATH, value: "/opt/tools:/opt/iris/venv/bin:/usr/bin:/bin"}}
    - {{name: HOME, value: /tmp}}
{extra}    resources: {{requests: {{cpu: 25m, memory: 128Mi}}, limits: {{memory: 512Mi}}}}
    volumeMounts:
    - {{name: deps, mountPath: /opt/deps, readOnly: true}}
    - {{name: src, mountPath: /opt/rolloutgate/src, readOnly: true}}
    - {{name: project, mountPath: /project, readOnly: true}}
    - {{name: kubectl, mountPath: /opt/tools/kubectl, readOnly: true}}
    - {{name: out, mountPath: /out}}
  volumes:
  - {{name: deps, hostPath: {{path: {deps}, type: Directory}}}}
  - {{name: src, hostPath: {{path: {REPO / "src"}, type: Directory}}}}
  - {{name: project, hostPath: {{path: {project}, type: Directory}}}}
  - {{name: kubectl, hostPath: {{path: {KUBECTL}, type: File}}}}
  - {{name: out, hostPath: {{path: {out}, type: Directory}}}}
"""
