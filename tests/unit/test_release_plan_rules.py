"""The pure rules of a release's plan: HPA targets and the replicas handover, paused workloads,
configuration a workload reads and whether it changed, the restart annotation, apply order,
and the temporary names of a dry-run into a missing namespace."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from rolloutgate.manifests import apply_order
from rolloutgate.release import autoscale, dryrun, plan, prepare
from rolloutgate.release.snapshot import Snapshot

from .k8s_objects import Obj, clone, deployment


def hpa(target_kind: str = "Deployment", target: str = "iris", name: str = "iris-hpa") -> Obj:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target},
            "minReplicas": 2,
            "maxReplicas": 5,
        },
    }


def config_map(name: str = "settings", **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def secret(name: str = "creds", *, data: dict[str, str] | None = None, **string_data: str) -> Obj:
    body: Obj = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}}
    if data is not None:
        body["data"] = data
    if string_data:
        body["stringData"] = string_data
    return body


def snap(*pairs: tuple[Obj, Obj | None]) -> Snapshot:
    return Snapshot(objects=list(pairs), namespace="ml")


# -- HPA -----------------------------------------------------------------------------------------


def test_hpa_targets_by_kind_and_name_in_any_version() -> None:
    v1 = hpa(target="other", name="old")
    v1["apiVersion"] = "autoscaling/v1"
    found = autoscale.targets([hpa(), v1, config_map()])
    assert found == {("Deployment", "iris"): "iris-hpa", ("Deployment", "other"): "old"}


def test_without_replicas_leaves_the_manifest_alone() -> None:
    dep = deployment(replicas=3)
    stripped = autoscale.without_replicas(dep)
    assert "replicas" not in stripped["spec"]
    assert dep["spec"]["replicas"] == 3


def test_owns_replicas_reads_the_apply_entries_of_our_field_manager() -> None:
    live = deployment()
    live["metadata"]["managedFields"] = [
        {"manager": "kube-controller-manager", "operation": "Update",
         "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        {"manager": "rolloutgate", "operation": "Apply",
         "fieldsV1": {"f:spec": {"f:template": {}}}},
    ]  # fmt: skip
    assert not autoscale.owns_replicas(live)
    live["metadata"]["managedFields"][1]["fieldsV1"]["f:spec"]["f:replicas"] = {}
    assert autoscale.owns_replicas(live)


def test_plan_strips_replicas_of_hpa_targets_only() -> None:
    other = deployment()
    other["metadata"]["name"] = "sidecar"
    objs = [deployment(replicas=1), other, hpa()]
    made = plan.make(None, "ml", objs, snap(), restart_on_config_change=False,  # type: ignore[arg-type]
                     namespace_exists=False)  # fmt: skip
    assert made.autoscaled == {"Deployment/iris": "iris-hpa"}
    assert "replicas" not in made.objects[0]["spec"]
    assert made.objects[1]["spec"]["replicas"] == 3


def test_plan_says_when_it_may_not_read_the_live_hpas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autoscale, "live_hpas", lambda api, ns: None)  # Forbidden
    made = plan.make(None, "ml", [deployment(), hpa()], snap(),  # type: ignore[arg-type]
                     restart_on_config_change=False)  # fmt: skip
    assert made.autoscaled == {"Deployment/iris": "iris-hpa"}  # the manifests' HPA still counts
    assert any("HorizontalPodAutoscalers in ml not read" in n for n in made.notes), made.notes


# -- configuration -------------------------------------------------------------------------------


def with_pod_spec(spec: Obj) -> Obj:
    dep = deployment()
    dep["spec"]["template"] = {"spec": spec}
    return dep


def test_config_refs_cover_env_env_from_volumes_and_projections() -> None:
    dep = with_pod_spec(
        {
            "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "s-init"}}]}],
            "containers": [
                {
                    "name": "m",
                    "env": [
                        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c-env"}}},
                        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s-env"}}},
                        {"name": "C", "value": "plain"},
                    ],
                    "envFrom": [{"configMapRef": {"name": "c-from"}}],
                }
            ],
            "volumes": [
                {"name": "v1", "configMap": {"name": "c-vol"}},
                {"name": "v2", "secret": {"secretName": "s-vol"}},
                {"name": "v3", "projected": {"sources": [
                    {"configMap": {"name": "c-proj"}}, {"secret": {"name": "s-proj"}}]}},
            ],
        }
    )  # fmt: skip
    assert plan.config_refs(dep) == {
        ("ConfigMap", "c-env"), ("ConfigMap", "c-from"), ("ConfigMap", "c-vol"),
        ("ConfigMap", "c-proj"), ("Secret", "s-init"), ("Secret", "s-env"),
        ("Secret", "s-vol"), ("Secret", "s-proj"),
    }  # fmt: skip


def test_secret_content_compares_string_data_with_live_data() -> None:
    live = secret(data={"token": base64.b64encode(b"abc").decode()})
    assert plan.config_content(secret(token="abc")) == plan.config_content(live)
    assert plan.config_content(secret(token="abd")) != plan.config_content(live)


def test_changed_config_is_only_what_existed_with_other_content() -> None:
    same, changed, new = config_map("same", a="1"), config_map("changed", a="2"), config_map("new")
    snapshot = snap(
        (same, config_map("same", a="1")), (changed, config_map("changed", a="1")), (new, None)
    )
    assert plan.changed_config([same, changed, new], snapshot) == [("ConfigMap", "changed")]


def test_restart_annotation_as_kubectl_rollout_restart_writes_it() -> None:
    dep = deployment()
    out = plan.restarted(dep, datetime(2026, 11, 27, 15, 4, 5, tzinfo=UTC))
    annotations = out["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"kubectl.kubernetes.io/restartedAt": "2026-11-27T15:04:05Z"}
    assert "template" not in dep["spec"]


# -- order and names -----------------------------------------------------------------------------


def test_namespaces_are_applied_first_the_rest_in_file_order() -> None:
    ns: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}}
    dep, cm = deployment(), config_map()
    assert apply_order([dep, ns, cm]) == [ns, dep, cm]


@pytest.mark.parametrize("name", ["iris", "a", "a" * 56, "a" * 57, "a" * 63, "b" * 80])
def test_temporary_names_keep_the_start_and_validity(name: str) -> None:
    first, second = dryrun.temporary_name(name), dryrun.temporary_name(name)
    assert first != second
    assert first[0] == name[0]
    assert (len(first) <= 63) == (len(name) <= 63)
    if len(name) > 56:
        assert len(first) == len(name)


def test_snapshot_splits_existing_and_created() -> None:
    dep, cm = deployment(), config_map()
    snapshot = snap((dep, clone(dep)), (cm, None))
    assert snapshot.existing() == [dep]
    assert snapshot.created() == [cm]
    assert not snapshot.first_deploy
    assert snap((dep, None), (cm, clone(cm))).first_deploy  # no workload existed


# -- the rollback's endpoint check ---------------------------------------------------------------


def _cfg(**overrides: object) -> Any:
    base = {"endpoint_url": None, "service": None, "port": None, "manifests": "manifests"}
    return SimpleNamespace(**{**base, **overrides})


def service(name: str = "iris") -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"name": "http", "port": 80}]}}  # fmt: skip


def test_rollback_endpoint_is_checked_when_its_service_existed_before() -> None:
    objs = [deployment(), service()]
    assert prepare.endpoint_restored(_cfg(), objs, snap((objs[1], clone(objs[1])))) is None


def test_rollback_endpoint_is_not_checked_when_the_release_created_its_service() -> None:
    objs = [deployment(), service()]
    why = prepare.endpoint_restored(_cfg(), objs, snap((objs[0], clone(objs[0])), (objs[1], None)))
    assert why == "Service iris did not exist before this release, so the restore removed it"


def test_rollback_endpoint_url_or_a_service_outside_the_manifests_is_always_checked() -> None:
    objs = [deployment(), service()]
    created = snap((objs[1], None))
    assert prepare.endpoint_restored(_cfg(endpoint_url="http://x"), objs, created) is None
    assert prepare.endpoint_restored(_cfg(service="elsewhere"), objs, created) is None
