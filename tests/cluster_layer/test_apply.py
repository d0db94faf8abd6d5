"""validate / apply / diff on the real cluster: bad input changes nothing."""

from __future__ import annotations

import pytest
from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import ConfigError
from rolloutgate.release import apply

from .conftest import deployment, service


def names(api: ApiClient, namespace: str, api_version: str, kind: str) -> list[str]:
    items = kube.list_objects(api, api_version, kind, namespace)["items"]
    return [o["metadata"]["name"] for o in items]


def test_validate_creates_nothing(api: ApiClient, namespace: str, test_image: str) -> None:
    apply.validate(api, namespace, [deployment("web", test_image), service("web")])
    assert names(api, namespace, "apps/v1", "Deployment") == []
    assert names(api, namespace, "v1", "Service") == []


def test_unknown_kind_is_reported_with_every_other_failure_and_nothing_applied(
    api: ApiClient, namespace: str, test_image: str
) -> None:
    bad_kind = {"apiVersion": "apps/v1", "kind": "Deploymnt", "metadata": {"name": "typo"}}
    bad_field = deployment("web2", test_image)
    bad_field["spec"]["replicas"] = "three"  # type: ignore[index]
    objs = [deployment("web", test_image), bad_kind, bad_field]
    with pytest.raises(ConfigError) as info:
        apply.validate(api, namespace, objs)
    text = str(info.value)
    assert "2 of 3 manifests failed" in text
    assert "Deploymnt/typo" in text
    assert "kinds it serves in apps/v1:" in text
    assert "Deployment" in text
    assert "Deployment/web2" in text
    assert names(api, namespace, "apps/v1", "Deployment") == []


def test_foreign_namespace_in_a_manifest_is_rejected(api: ApiClient, namespace: str) -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "kube-system"},
        "data": {"a": "1"},
    }
    with pytest.raises(ConfigError, match="declares namespace 'kube-system'"):
        apply.validate(api, namespace, [obj])


def test_apply_sets_change_cause_and_field_manager(
    api: ApiClient, namespace: str, test_image: str
) -> None:
    applied = apply.apply(
        api, namespace, [deployment("web", test_image), service("web")], change_cause="gate v1"
    )
    dep = applied[0]
    assert dep["metadata"]["annotations"]["kubernetes.io/change-cause"] == "gate v1"
    managers = {f["manager"] for f in dep["metadata"]["managedFields"]}
    assert "rolloutgate" in managers
    assert names(api, namespace, "v1", "Service") == ["web"]


def test_diff_shows_the_change_and_applies_nothing(
    api: ApiClient, namespace: str, test_image: str
) -> None:
    apply.apply(api, namespace, [deployment("web", test_image)], change_cause="v1")
    changed = deployment("web", test_image, replicas=3)
    text = apply.diff(api, namespace, [changed, service("web")])
    assert "-  replicas: 1" in text
    assert "+  replicas: 3" in text
    assert "--- /dev/null" in text  # the Service is new
    live = kube.get(api, "apps/v1", "Deployment", "web", namespace)
    assert live is not None
    assert live["spec"]["replicas"] == 1
    assert names(api, namespace, "v1", "Service") == []
