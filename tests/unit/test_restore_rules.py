"""What a restore PUTs, and when it is needed (pure parts of rollback)."""

from __future__ import annotations

from rolloutgate.release.rollback import differs, restored_body

from .k8s_objects import clone, deployment

REVISION = "deployment.kubernetes.io/revision"


def snapshot_and_current() -> tuple[dict, dict]:  # type: ignore[type-arg]
    snap = deployment(revision="1")
    snap["metadata"]["labels"] = {"app": "iris"}
    snap["metadata"]["annotations"]["kubernetes.io/change-cause"] = "v1"
    snap["metadata"]["resourceVersion"] = "100"
    snap["spec"]["template"] = {"spec": {"containers": [{"name": "m", "image": "iris:v1"}]}}
    current = clone(snap)
    current["metadata"]["resourceVersion"] = "250"
    current["metadata"]["managedFields"] = [{"manager": "rolloutgate"}]
    current["metadata"]["annotations"] = {REVISION: "2", "kubernetes.io/change-cause": "v2"}
    current["metadata"]["annotations"]["added-by-apply"] = "x"
    current["metadata"]["labels"]["track"] = "candidate"
    current["spec"]["replicas"] = 5
    current["spec"]["template"]["spec"]["containers"][0]["image"] = "iris:v2"
    current["spec"]["paused"] = True
    return snap, current


def test_body_takes_spec_labels_and_annotations_from_the_snapshot() -> None:
    snap, current = snapshot_and_current()
    body = restored_body(snap, current)
    assert body["spec"] == snap["spec"]
    assert "paused" not in body["spec"]  # a field our apply added is removed
    assert body["metadata"]["labels"] == {"app": "iris"}
    assert body["metadata"]["annotations"] == {
        "kubernetes.io/change-cause": "v1",
        REVISION: "2",  # the controller's, kept as live
    }


def test_body_is_written_onto_the_current_resource_version() -> None:
    snap, current = snapshot_and_current()
    body = restored_body(snap, current)
    assert body["metadata"]["resourceVersion"] == "250"
    assert "managedFields" not in body["metadata"]
    assert "status" not in body


def test_keys_the_snapshot_lacks_are_dropped() -> None:
    snap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    current = clone(snap)
    current["binaryData"] = {"b": "AA=="}
    current["data"]["extra"] = "2"
    body = restored_body(snap, current)
    assert body["data"] == {"a": "1"}
    assert "binaryData" not in body
    assert differs(snap, current)


def test_differs() -> None:
    snap, current = snapshot_and_current()
    assert differs(snap, current)
    assert not differs(snap, restored_body(snap, current) | {"status": {"replicas": 9}})


def test_differs_ignores_only_the_controller_revision() -> None:
    snap, _ = snapshot_and_current()
    current = clone(snap)
    current["metadata"]["annotations"][REVISION] = "7"
    assert not differs(snap, current)
    current["metadata"]["annotations"]["note"] = "new"
    assert differs(snap, current)
