"""snapshot.take + rollback.restore on the real cluster: the live objects equal the snapshot."""

from __future__ import annotations

import time

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.release import apply, rollback, snapshot
from rolloutgate.workloads import DeploymentViewer

from .conftest import deployment, service, wait_deployment


def ready(api: ApiClient, namespace: str, name: str) -> dict:  # type: ignore[type-arg]
    return wait_deployment(api, namespace, name, deadline=time.monotonic() + 90, max_restarts=3)


def test_restore_puts_back_template_replicas_annotations_and_config(
    api: ApiClient, namespace: str, test_image: str
) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}
    v1 = [config | {"data": {"model": "v1"}}, deployment("web", test_image, replicas=2)]
    apply.apply(api, namespace, v1, change_cause="release v1")
    ready(api, namespace, "web")
    snap = snapshot.take(api, namespace, v1)
    assert snap.tag() == "test"
    assert not snap.first_deploy

    candidate = deployment("web", test_image, replicas=3, env={"MODEL": "v2"})
    candidate["metadata"]["annotations"] = {"added-by": "candidate"}  # type: ignore[index]
    v2 = [config | {"data": {"model": "v2", "extra": "x"}}, candidate]
    apply.apply(api, namespace, v2, change_cause="release v2")
    ready(api, namespace, "web")

    lines = rollback.restore(api, namespace, snap, deadline=time.monotonic() + 60)
    assert lines == [
        "ConfigMap/cfg: restored spec, labels and annotations from the snapshot",
        "Deployment/web: restored spec, labels and annotations from the snapshot",
    ]
    dep = ready(api, namespace, "web")
    before = snap.live("Deployment", "web")
    assert before is not None
    assert dep["spec"]["template"] == before["spec"]["template"]
    assert dep["spec"]["replicas"] == before["spec"]["replicas"] == 2
    annotations = dep["metadata"]["annotations"]
    assert "added-by" not in annotations
    assert annotations["kubernetes.io/change-cause"] == "release v1"
    assert annotations[DeploymentViewer.REVISION] == "3"  # the restored template is a new revision
    cfg = kube.get(api, "v1", "ConfigMap", "cfg", namespace)
    assert cfg is not None
    assert cfg["data"] == {"model": "v1"}


def test_restore_of_an_unchanged_object_does_nothing(
    api: ApiClient, namespace: str, test_image: str
) -> None:
    objs = [deployment("web", test_image)]
    apply.apply(api, namespace, objs, change_cause="v1")
    snap = snapshot.take(api, namespace, objs)
    lines = rollback.restore(api, namespace, snap, deadline=time.monotonic() + 30)
    assert lines == ["Deployment/web: unchanged, already as in the snapshot"]


def test_first_deploy_is_removed(api: ApiClient, namespace: str, test_image: str) -> None:
    objs = [deployment("web", test_image), service("web")]
    snap = snapshot.take(api, namespace, objs)
    assert snap.first_deploy
    assert snap.tag() is None
    apply.apply(api, namespace, objs, change_cause="first")
    ready(api, namespace, "web")
    lines = rollback.restore(api, namespace, snap, deadline=time.monotonic() + 60)
    assert lines == [
        "Service/web: deleted (it did not exist before the gate)",
        "Deployment/web: deleted (it did not exist before the gate)",
    ]
    assert kube.get(api, "apps/v1", "Deployment", "web", namespace) is None
    pods = kube.list_objects(api, "v1", "Pod", namespace, label_selector="app=web")["items"]
    assert pods == []  # foreground deletion: the pods went first
