"""A kubeconfig for a ServiceAccount bound only to the gate's Role (deploy/rbac/): what a least
privileged CI job would hold. The token comes from the TokenRequest API (what `kubectl create
token` calls); server and CA are the local cluster's, from .cluster/kubeconfig."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from gaterun import KUBECONFIG, REPO, kubectl

RBAC = REPO / "deploy" / "rbac"
SERVICE_ACCOUNT = "rolloutgate"


def role_rules() -> list[dict[str, Any]]:
    """The shipped Role's rules."""
    role = yaml.safe_load((RBAC / "role.yaml").read_text())
    assert role["kind"] == "Role"
    return list(role["rules"])


def apply_rbac(namespace: str, rules: list[dict[str, Any]] | None = None) -> None:
    """The shipped ServiceAccount, RoleBinding and Role (with `rules` instead of the shipped
    ones, to take a right away) in `namespace`, applied as the cluster admin."""
    role = yaml.safe_load((RBAC / "role.yaml").read_text())
    if rules is not None:
        role["rules"] = copy.deepcopy(rules)
    docs = [role, *yaml.safe_load_all((RBAC / "serviceaccount.yaml").read_text())]
    kubectl("apply", "-f", "-", namespace=namespace, stdin=yaml.safe_dump_all(docs))


def mint_token(namespace: str, seconds: int = 3600) -> str:
    """A bound token of the ServiceAccount, from the TokenRequest API (as the admin)."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(KUBECONFIG))
    try:
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
        )
        answer = client.CoreV1Api(api).create_namespaced_service_account_token(
            SERVICE_ACCOUNT, namespace, request
        )
    finally:
        api.close()
    return str(answer.status.token)


def write_kubeconfig(namespace: str, path: Path) -> Path:
    """A kubeconfig whose one context `local` (the profile's context name) is the
    ServiceAccount: the local cluster's server and CA, the minted token."""
    admin = yaml.safe_load(KUBECONFIG.read_text())
    cluster = next(c for c in admin["clusters"] if c["name"] == "local")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "gate", "user": {"token": mint_token(namespace)}}],
        "contexts": [{"name": "local", "context": {"cluster": cluster["name"], "user": "gate"}}],
        "current-context": "local",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
