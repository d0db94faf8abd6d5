"""StatefulSet and DaemonSet rollout rules (kubectl's, per kind) on recorded-shape objects."""

from __future__ import annotations

from typing import Any

import pytest

from rolloutgate.errors import ConfigError, RolloutFailed
from rolloutgate.workloads import (
    DaemonSetViewer,
    Revision,
    StatefulSetViewer,
    viewer_for,
    workloads,
)

STS = StatefulSetViewer()
DS = DaemonSetViewer()


def sts(**status: Any) -> dict[str, Any]:
    base = {
        "observedGeneration": 2,
        "replicas": 2,
        "readyReplicas": 2,
        "updatedReplicas": 2,
        "currentRevision": "web-new",
        "updateRevision": "web-new",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "generation": 2},
        "spec": {"replicas": 2, "updateStrategy": {"type": "RollingUpdate"}},
        "status": base | status,
    }


def ds(**status: Any) -> dict[str, Any]:
    base = {
        "observedGeneration": 2,
        "desiredNumberScheduled": 1,
        "updatedNumberScheduled": 1,
        "numberAvailable": 1,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "generation": 2},
        "spec": {"updateStrategy": {"type": "RollingUpdate"}},
        "status": base | status,
    }


def test_statefulset_done_when_every_pod_is_ready_at_the_update_revision() -> None:
    assert STS.status(sts(), Revision("web-new")).done


def test_statefulset_waits_for_the_spec_to_be_observed() -> None:
    verdict = STS.status(sts(observedGeneration=1), None)
    assert not verdict.done
    assert "observed" in verdict.message


def test_only_a_statefulset_waits_while_no_generation_was_observed_at_all() -> None:
    # kubectl's StatefulSet rule also waits on observedGeneration 0 (a status the controller
    # has not written yet); the other kinds compare generations only.
    unwritten = sts(observedGeneration=0)
    unwritten["metadata"]["generation"] = 0
    assert not STS.status(unwritten, None).done
    daemonset = ds(observedGeneration=0)
    daemonset["metadata"]["generation"] = 0
    assert DS.status(daemonset, None).done


def test_statefulset_waits_for_ready_pods_then_for_the_rolling_update() -> None:
    assert STS.status(sts(readyReplicas=1), None).message == "1/2 pods ready"
    rolling = STS.status(sts(currentRevision="web-old", updatedReplicas=1), None)
    assert not rolling.done
    assert "1/2 pods at revision web-new" in rolling.message


def test_statefulset_partition_is_done_when_the_partitioned_pods_are_updated() -> None:
    obj = sts(currentRevision="web-old", updatedReplicas=1)
    obj["spec"]["updateStrategy"]["rollingUpdate"] = {"partition": 1}
    assert STS.status(obj, None).done
    obj["status"]["updatedReplicas"] = 0
    assert not STS.status(obj, None).done


def test_statefulset_revision_change_is_another_actor() -> None:
    with pytest.raises(RolloutFailed) as info:
        STS.status(sts(updateRevision="web-other"), Revision("web-new"))
    assert info.value.reason == "RevisionChanged"


@pytest.mark.parametrize("viewer", [STS, DS])
def test_on_delete_is_refused_naming_the_strategy(viewer: Any) -> None:
    obj = sts() if viewer is STS else ds()
    obj["spec"]["updateStrategy"] = {"type": "OnDelete"}
    problems = viewer.problems(obj)
    assert problems
    assert "updateStrategy OnDelete" in problems[0]
    with pytest.raises(RolloutFailed):
        viewer.status(obj, None)


def test_daemonset_rules_in_kubectl_order() -> None:
    assert DS.status(ds(), None).done
    assert DS.status(ds(observedGeneration=1), None).message.startswith("waiting for the spec")
    assert DS.status(ds(updatedNumberScheduled=0), None).message == "0 of 1 new pods updated"
    assert DS.status(ds(numberAvailable=0), None).message == "0 of 1 updated pods available"
    assert DS.replicas(ds()) == 1


def test_statefulset_pin_uses_the_update_revision_label() -> None:
    revision, _ = STS.pin(None, sts(), 2)  # type: ignore[arg-type]  # no API call
    assert revision == Revision("web-new", {"controller-revision-hash": "web-new"})
    waiting, why = STS.pin(None, sts(observedGeneration=1), 2)  # type: ignore[arg-type]
    assert waiting is None
    assert "observed" in why


def test_paused_deployment_is_refused() -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "iris"}}
    dep["spec"] = {"paused": True}
    assert "paused" in viewer_for(dep).problems(dep)[0]


def test_other_kinds_are_not_workloads() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"}}
    assert workloads([job, sts(), ds()]) == [sts(), ds()]
    with pytest.raises(ConfigError, match="cannot wait for a Job"):
        viewer_for(job)
