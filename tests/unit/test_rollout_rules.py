"""kubectl rollout status rules, in kubectl's order, on recorded status shapes."""

from __future__ import annotations

import copy

import pytest

from rolloutgate.errors import RolloutFailed
from rolloutgate.objects import Obj, selector_string
from rolloutgate.workloads import DeploymentViewer, Revision
from rolloutgate.workloads import RolloutStatus as Verdict

from .k8s_objects import deployment

VIEWER = DeploymentViewer()
new_replicaset = VIEWER.new_replicaset


def deployment_status(dep: Obj, revision: str, *, progress_deadline: bool = True) -> Verdict:
    """The Deployment viewer's rules, pinned to `revision`."""
    return VIEWER.status(dep, Revision(revision), progress_deadline=progress_deadline)


DEADLINE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "message": 'ReplicaSet "iris-7c9f" has timed out progressing.',
}
PROGRESSING = {
    "type": "Progressing",
    "status": "True",
    "reason": "ReplicaSetUpdated",
    "message": 'ReplicaSet "iris-7c9f" is progressing.',
}


def test_complete_rollout_is_done() -> None:
    verdict = deployment_status(deployment(), "2")
    assert verdict == Verdict(True, "deployment iris rolled out: 3/3 available")


def test_unobserved_generation_waits_even_if_counts_look_done() -> None:
    # The counts belong to the previous spec until the controller observed the new one.
    verdict = deployment_status(deployment(generation=3, observed=2), "2")
    assert not verdict.done
    assert "generation 3, observed 2" in verdict.message


def test_unobserved_generation_is_checked_before_the_deadline_condition() -> None:
    dep = deployment(generation=3, observed=2, conditions=[DEADLINE])
    assert not deployment_status(dep, "2").done


def test_progress_deadline_exceeded_fails_with_its_reason() -> None:
    with pytest.raises(RolloutFailed) as info:
        deployment_status(deployment(updated=1, available=0, conditions=[DEADLINE]), "2")
    assert info.value.reason == "ProgressDeadlineExceeded"
    assert "600 s" in str(info.value)
    assert "has timed out progressing" in str(info.value)


def test_progress_deadline_is_ignored_when_asked() -> None:
    # A rollback's wait: the restored Deployment still carries the failed release's condition.
    dep = deployment(updated=3, total=4, available=3, conditions=[DEADLINE])
    verdict = deployment_status(dep, "2", progress_deadline=False)
    assert verdict == Verdict(False, "1 old replicas pending termination")
    assert deployment_status(deployment(conditions=[DEADLINE]), "2", progress_deadline=False).done


def test_progressing_condition_that_is_not_the_deadline_does_not_fail() -> None:
    assert not deployment_status(deployment(updated=1, conditions=[PROGRESSING]), "2").done


def test_fewer_updated_than_desired_waits() -> None:
    verdict = deployment_status(deployment(updated=1, total=4, available=3), "2")
    assert verdict == Verdict(False, "1/3 replicas updated")


def test_old_replicas_terminating_waits() -> None:
    verdict = deployment_status(deployment(updated=3, total=4, available=3), "2")
    assert verdict == Verdict(False, "1 old replicas pending termination")


def test_updated_but_not_available_waits() -> None:
    verdict = deployment_status(deployment(updated=3, total=3, available=2), "2")
    assert verdict == Verdict(False, "2/3 updated replicas available")


def test_missing_replicas_defaults_to_one() -> None:
    dep = deployment(replicas=None, updated=1, total=1, available=1)
    assert deployment_status(dep, "2").done
    dep = deployment(replicas=None, updated=0, total=1, available=1)
    assert deployment_status(dep, "2") == Verdict(False, "0/1 replicas updated")


def test_missing_status_fields_count_as_zero() -> None:
    dep = deployment()
    dep["status"] = {"observedGeneration": 2}
    assert deployment_status(dep, "2") == Verdict(False, "0/3 replicas updated")


def test_revision_changed_under_us_fails_before_anything_else() -> None:
    # Even a complete rollout is not ours when another actor bumped the revision.
    with pytest.raises(RolloutFailed) as info:
        deployment_status(deployment(revision="3"), "2")
    assert info.value.reason == "RevisionChanged"
    assert "from 2 to 3" in str(info.value)


def test_unpinned_revision_accepts_any() -> None:
    assert deployment_status(deployment(revision="7"), None).done


def test_recorded_sequence_of_a_rolling_update() -> None:
    """A v1 -> v2 rolling update of 3 replicas (maxSurge 1), as the watch delivers it."""
    sequence = [
        (deployment(generation=2, observed=1, updated=0, total=3, available=3), False),
        (deployment(updated=1, total=4, available=3), False),
        (deployment(updated=2, total=4, available=3), False),
        (deployment(updated=3, total=4, available=3), False),
        (deployment(updated=3, total=3, available=2), False),
        (deployment(updated=3, total=3, available=3), True),
    ]
    assert [deployment_status(dep, "2").done for dep, _ in sequence] == [d for _, d in sequence]


def test_selector_string_covers_labels_and_expressions() -> None:
    selector = {
        "matchLabels": {"app": "iris", "tier": "model"},
        "matchExpressions": [
            {"key": "track", "operator": "In", "values": ["stable", "canary"]},
            {"key": "legacy", "operator": "DoesNotExist"},
            {"key": "team", "operator": "Exists"},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
        ],
    }
    assert selector_string(selector) == (
        "app=iris,tier=model,track in (stable,canary),!legacy,team,env notin (dev)"
    )


def owned_rs(name: str, template: dict, *, uid: str = "dep-uid", hash_: str = "h1") -> dict:  # type: ignore[type-arg]
    labelled = copy.deepcopy(template)
    labelled.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = hash_
    return {
        "metadata": {
            "name": name,
            "labels": {"app": "iris", "pod-template-hash": hash_},
            "ownerReferences": [{"uid": uid, "controller": True, "kind": "Deployment"}],
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        },
        "spec": {"template": labelled},
    }


def test_new_replicaset_matches_the_template_ignoring_the_hash_label() -> None:
    v1 = {"metadata": {"labels": {"app": "iris"}}, "spec": {"containers": [{"image": "iris:v1"}]}}
    v2 = copy.deepcopy(v1)
    v2["spec"]["containers"][0]["image"] = "iris:v2"
    dep = deployment()
    dep["metadata"]["uid"] = "dep-uid"
    dep["spec"]["template"] = v2
    old, new = owned_rs("iris-1", v1, hash_="h1"), owned_rs("iris-2", v2, hash_="h2")
    foreign = owned_rs("other", v2, uid="someone-else", hash_="h3")
    assert new_replicaset(dep, [foreign, old, new]) is new
    assert new_replicaset(dep, [foreign, old]) is None  # not created yet: keep waiting


QUOTA = {
    "type": "ReplicaFailure",
    "status": "True",
    "reason": "FailedCreate",
    "message": 'pods "iris-7c9f-x2x4z" is forbidden: exceeded quota: pods, requested: pods=1, '
    "used: pods=3, limited: pods=3",
}
WEBHOOK = {
    **QUOTA,
    "message": 'admission webhook "policy.example.com" denied the request: images must be signed',
}


def _surging(dep: Obj, unavailable: object = 0, surge: object = 1) -> Obj:
    dep["spec"]["strategy"] = {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": unavailable, "maxSurge": surge},
    }
    return dep


def test_a_quota_without_room_for_the_surge_pod_fails_naming_quota_and_fix() -> None:
    dep = _surging(deployment(updated=0, available=3, conditions=[QUOTA]))
    with pytest.raises(RolloutFailed) as e:
        deployment_status(dep, "2")
    assert e.value.reason == "FailedCreate"
    text = str(e.value)
    assert "exceeded quota: pods, requested: pods=1" in text
    assert "kubectl describe resourcequota -n ml" in text
    assert "maxSurge: 0 with maxUnavailable: 1" in text
    assert "rollout timeout" not in text


def test_a_quota_refusal_the_update_can_make_room_for_waits_and_says_why() -> None:
    # maxUnavailable 25% of 4 = 1: the controller takes an old pod down, and its retry may fit.
    dep = _surging(deployment(replicas=4, updated=0, conditions=[QUOTA]), "25%", "25%")
    verdict = deployment_status(dep, "2")
    assert not verdict.done
    assert verdict.refused is not None
    assert "exceeded quota" in verdict.refused


def test_an_admission_webhook_denial_fails_whatever_the_strategy() -> None:
    dep = _surging(deployment(updated=0, conditions=[WEBHOOK]), "50%", "50%")
    with pytest.raises(RolloutFailed, match="An admission webhook refuses the pod template"):
        deployment_status(dep, "2")


def test_a_refusal_is_not_held_against_a_rollbacks_wait() -> None:
    # The failed release's condition may still be on the Deployment when the rollback starts.
    dep = _surging(deployment(updated=0, conditions=[QUOTA]))
    assert not deployment_status(dep, "2", progress_deadline=False).done


@pytest.mark.parametrize(
    ("strategy", "replicas", "expected"),
    [
        ({}, 4, 1),  # 25% rounded down
        ({}, 3, 0),
        ({"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}, 3, 1),
        ({"rollingUpdate": {"maxUnavailable": "50%", "maxSurge": 1}}, 3, 1),
        ({"type": "Recreate"}, 3, 3),
    ],
)
def test_max_unavailable_resolves_as_the_controller_does(
    strategy: Obj, replicas: int, expected: int
) -> None:
    dep = deployment(replicas=replicas)
    dep["spec"]["strategy"] = strategy
    assert VIEWER.max_unavailable(dep) == expected
