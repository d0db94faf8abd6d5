"""The benchmark's own access to the cluster: namespaces, manifests, applies and waits.

Everything here goes through one API client with its own user agent, so the audit log tells the
benchmark's requests from the gate's (the Python client's default agent) and kubectl's.
"""

from __future__ import annotations

import copy
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

REPO = Path(__file__).resolve().parent.parent
KUBECONFIG = REPO / ".cluster" / "kubeconfig"
CONTEXT = "local"
KUBECTL = Path("~/.cache/rolloutgate/k8s/v1.34.4/bin/kubectl").expanduser()
MANIFESTS = REPO / "fixtures" / "manifests"
IMAGE = "rolloutgate/iris"
USER_AGENT = "rolloutgate-bench"
FIELD_MANAGER = "rolloutgate-bench"
DEPLOYMENT = "iris"
# A single request that takes longer than this is a hung server, not a slow one.
REQUEST_TIMEOUT_S = 30

Obj = dict[str, Any]


def connect() -> ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(KUBECONFIG), context=CONTEXT, client_configuration=cfg
    )
    api = ApiClient(configuration=cfg)
    api.user_agent = USER_AGENT
    return api


def new_namespace(api: ApiClient, label: str) -> str:
    """Create `bench-<random>`; the label says which case it serves."""
    name = f"bench-{secrets.token_hex(4)}"
    body = client.V1Namespace(
        metadata=client.V1ObjectMeta(name=name, labels={"rolloutgate-bench/case": label})
    )
    client.CoreV1Api(api).create_namespace(body, _request_timeout=REQUEST_TIMEOUT_S)
    return name


def delete_namespace(api: ApiClient, name: str) -> None:
    """Start the deletion; `wait_namespaces_gone` waits for it at the end of the benchmark."""
    try:
        client.CoreV1Api(api).delete_namespace(name, _request_timeout=REQUEST_TIMEOUT_S)
    except ApiException as e:
        if e.status != 404:
            raise


def wait_namespaces_gone(api: ApiClient, names: list[str], timeout_s: float) -> list[str]:
    """Names still present when `timeout_s` has passed (empty when all are gone)."""
    deadline = time.monotonic() + timeout_s
    left = list(names)
    while left and time.monotonic() < deadline:
        live = {
            ns.metadata.name if ns.metadata else ""
            for ns in client.CoreV1Api(api).list_namespace(_request_timeout=REQUEST_TIMEOUT_S).items
        }
        left = [n for n in left if n in live]
        if left:
            # A namespace's finalizers give no event to wait on cheaply: poll, under the deadline.
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
    return left


@dataclass(frozen=True)
class Variant:
    """How the example manifests are changed for one case."""

    replicas: int
    progress_deadline_s: int


def render(variant: Variant, tag: str) -> list[Obj]:
    """The example manifests with replicas, progress deadline and image tag set."""
    objs = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                objs.append(_vary(doc, variant, tag))
    return objs


def _vary(doc: Obj, variant: Variant, tag: str) -> Obj:
    doc = copy.deepcopy(doc)
    if doc.get("kind") != "Deployment":
        return doc
    doc["spec"]["replicas"] = variant.replicas
    doc["spec"]["progressDeadlineSeconds"] = variant.progress_deadline_s
    for container in doc["spec"]["template"]["spec"]["containers"]:
        if str(container.get("image", "")).startswith(IMAGE + ":"):
            container["image"] = f"{IMAGE}:{tag}"
    return doc


def write_manifests(objs: list[Obj], directory: Path) -> Path:
    """The manifests as the gate's `--manifests DIR` takes them."""
    directory.mkdir(parents=True, exist_ok=True)
    for obj in objs:
        (directory / f"{obj['kind'].lower()}.yaml").write_text(yaml.safe_dump(obj))
    return directory


def apply(api: ApiClient, namespace: str, objs: list[Obj]) -> None:
    """Server-side apply as the benchmark's own field manager (force: a setup owns what it sets)."""
    dyn = DynamicClient(api)  # type: ignore[no-untyped-call]
    for obj in objs:
        res = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        dyn.server_side_apply(  # type: ignore[no-untyped-call]
            res,
            body=obj,
            namespace=namespace,
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
            _request_timeout=REQUEST_TIMEOUT_S,
        )


def deployment(api: ApiClient, namespace: str) -> Obj:
    dep = client.AppsV1Api(api).read_namespaced_deployment(
        DEPLOYMENT, namespace, _request_timeout=REQUEST_TIMEOUT_S
    )
    result: Obj = api.sanitize_for_serialization(dep)  # type: ignore[no-untyped-call]
    return result


def rolled_out(dep: Obj) -> bool:
    """kubectl rollout status's success condition, for setup waits."""
    spec, status = dep.get("spec", {}), dep.get("status", {})
    replicas = spec.get("replicas", 1)
    return bool(
        dep["metadata"].get("generation", 0) <= status.get("observedGeneration", 0)
        and status.get("updatedReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
    )


def wait_rolled_out(api: ApiClient, namespace: str, timeout_s: float) -> float:
    """Wait for the Deployment's rollout to finish (setup only); seconds it took.

    Setup is not measured, so a short poll is simpler than a watch and costs nothing that
    matters. TimeoutError names what was missing.
    """
    start = time.monotonic()
    deadline = start + timeout_s
    dep: Obj = {}
    while time.monotonic() < deadline:
        try:
            dep = deployment(api, namespace)
        except ApiException as e:
            if e.status != 404:
                raise
        else:
            if rolled_out(dep):
                return time.monotonic() - start
        time.sleep(1.0)
    raise TimeoutError(
        f"setup: deployment {namespace}/{DEPLOYMENT} not rolled out after {timeout_s:.0f} s: "
        f"status {dep.get('status')}"
    )
