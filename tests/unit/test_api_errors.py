"""The client's errors become domain errors naming verb and resource; a refused websocket
handshake (port-forward, exec) is the API server's answer, not an unreachable server."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes.client.exceptions import ApiException

from rolloutgate import kube
from rolloutgate.errors import ClusterUnreachable, Forbidden

DENIED = (
    'pods "iris-1" is forbidden: User "system:serviceaccount:ns:rolloutgate" cannot get '
    'resource "pods/portforward" in API group "" in the namespace "ns"'
)


def handshake_refused(status: str = "403 Forbidden") -> ApiException:
    body = json.dumps({"kind": "Status", "message": DENIED, "code": 403})
    return ApiException(
        status=0, reason=f"Handshake status {status} -+-+- {{'audit-id': 'x'}} -+-+- {body}"
    )


def test_a_refused_websocket_handshake_is_forbidden_naming_verb_resource_and_namespace() -> None:
    with pytest.raises(Forbidden) as e, kube.api_errors("get", "pods/portforward ns/iris-1"):
        raise handshake_refused()
    assert e.value.status == 403
    assert not e.value.transient
    message = str(e.value)
    assert message.startswith(f"get pods/portforward ns/iris-1: 403 {DENIED}")
    assert "grant `get`" in message
    assert "audit-id" not in message


def test_no_answer_at_all_stays_unreachable() -> None:
    with pytest.raises(ClusterUnreachable), kube.api_errors("get", "pods ns/x"):
        raise ApiException(status=0, reason="Connection refused")


def test_the_advice_names_the_rbac_verb() -> None:
    refused = ApiException(status=403, reason="Forbidden")
    with pytest.raises(Forbidden) as e, kube.api_errors("patch (server-side apply)", "x ns/y"):
        raise refused
    assert "grant `patch` on it" in str(e.value)


UNTYPED = (
    "patch (server-side apply dry-run) deployments.apps default/penguin-d959ce: 500 failed to "
    "create typed patch object (default/penguin-d959ce; apps/v1, Kind=Deployment): .spec.template"
    '.spec.containers[name="server"].bogusField: field not declared in schema'
)


def test_an_undeclared_field_is_the_manifests_fault_and_not_retried() -> None:
    # Recorded from the API server (1.34): a typo'd field was retried for the API patience
    # (120 s) before the dry-run reported it.
    from rolloutgate.errors import ApiError

    calls = []

    def apply() -> None:
        calls.append(1)
        raise ApiError(UNTYPED, status=500)

    with pytest.raises(ApiError) as e:
        kube.retry(apply, deadline=time.monotonic() + 3)
    assert calls == [1]
    assert not e.value.transient
    assert e.value.untyped_patch
    assert ApiError("get pods: 503 unavailable", status=503).transient
