"""A StatefulSet's or DaemonSet's new pods refused by the API server (quota, admission): their
controllers set no condition, only FailedCreate events on the workload, judged here on recorded
events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rolloutgate import kube
from rolloutgate.checks.podjudge import PodJudge
from rolloutgate.errors import ClusterError, Forbidden, RolloutFailed
from rolloutgate.objects import Obj
from rolloutgate.release import refusals, rollout
from rolloutgate.workloads import viewer_for

STS: Obj = {
    "apiVersion": "apps/v1",
    "kind": "StatefulSet",
    "metadata": {
        "name": "penguin",
        "namespace": "ml",
        "generation": 2,
        "managedFields": [
            {"manager": "kube-controller-manager", "time": "2026-12-03T05:00:01Z"},
            {"manager": "rolloutgate", "operation": "Apply", "time": "2026-12-03T05:10:00Z"},
        ],
    },
    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "penguin"}}},
}
DS: Obj = {**STS, "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "ml"}}
# As the StatefulSet controller records it (kube-controller-manager 1.31).
QUOTA: Obj = {
    "metadata": {"name": "penguin.181d", "uid": "e1"},
    "involvedObject": {"kind": "StatefulSet", "name": "penguin", "namespace": "ml"},
    "reason": "FailedCreate",
    "type": "Warning",
    "source": {"component": "statefulset-controller"},
    "message": 'create Pod penguin-2 in StatefulSet penguin failed error: pods "penguin-2" is '
    "forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2",
    "firstTimestamp": "2026-12-03T05:10:01Z",
    "lastTimestamp": "2026-12-03T05:10:01Z",
    "count": 1,
}
# As the DaemonSet controller records it: the name is generated after admission.
WEBHOOK: Obj = {
    **QUOTA,
    "involvedObject": {"kind": "DaemonSet", "name": "agent", "namespace": "ml"},
    "message": 'Error creating: admission webhook "policy.example.com" denied the request: '
    "image tag latest is not allowed",
}


def _target(obj: Obj) -> refusals.Target:
    t = refusals.Target(viewer_for(obj), obj["metadata"]["name"], 2, since=refusals.applied_at(obj))
    t.obj = obj
    return t


def test_the_apply_time_is_the_latest_managed_fields_entry() -> None:
    assert refusals.applied_at(STS) == datetime(2026, 12, 3, 5, 10, tzinfo=UTC)
    assert refusals.applied_at(DS) is None
    assert viewer_for(STS).refusal_events()
    assert viewer_for(DS).refusal_events()


def test_an_admission_denial_is_the_verdict_at_once_with_the_events_message() -> None:
    t = _target(DS)
    with pytest.raises(RolloutFailed) as e:
        refusals.on_refusal(t, WEBHOOK, synced=True, now=10.0)
    assert e.value.reason == "FailedCreate"
    assert str(e.value).startswith(
        "daemonset agent: FailedCreate: the API server refuses its new pods: Error creating: "
        'admission webhook "policy.example.com" denied the request: image tag latest'
    )
    assert "An admission webhook refuses the pod template" in str(e.value)


def test_a_quota_refusal_is_the_verdict_once_it_stands_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube, "get", lambda *a, **k: None)  # penguin-2 was never created
    t = _target(STS)
    refusals.on_refusal(t, QUOTA, synced=False, now=10.0)
    assert t.refusal is not None
    assert t.refusal[0] == 10.0
    assert t.refused is not None
    assert "exceeded quota: pods" in t.refused
    refusals.on_refusal(t, {**QUOTA, "count": 2}, synced=True, now=10.4)  # a retry: same clock
    assert t.refusal[0] == 10.0
    with pytest.raises(RolloutFailed) as e:
        refusals.confirm_refusal(object(), "ml", t, deadline=1e12)  # type: ignore[arg-type]
    text = str(e.value)
    assert text.startswith("statefulset penguin: FailedCreate: the API server refuses its new pods")
    assert "used: pods=2, limited: pods=2" in text
    assert "kubectl describe resourcequota -n ml" in text


def test_a_quota_refusal_that_a_created_pod_follows_was_passing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The controller deleted penguin-2 and created it again before the quota had seen the old
    one go: refused once, then created. No verdict."""
    t = _target(STS)
    refusals.on_refusal(t, QUOTA, synced=True, now=10.0)
    old = {"metadata": {"name": "penguin-1", "creationTimestamp": "2026-12-03T05:09:40Z"}}
    refusals.on_new_pod(t, old)
    assert t.refusal is not None  # created before the refusal: says nothing
    created = {"metadata": {"name": "penguin-2", "creationTimestamp": "2026-12-03T05:10:01Z"}}
    refusals.on_new_pod(t, created)
    assert t.refusal is None
    # Its ADDED not here yet when the second is up: the pod the refusal names is asked for.
    refusals.on_refusal(t, QUOTA, synced=True, now=20.0)
    asked: list[str] = []

    def get(api: object, version: str, kind: str, name: str, ns: str | None) -> Obj:
        asked.append(f"{kind} {ns}/{name}")
        return created

    monkeypatch.setattr(kube, "get", get)
    refusals.confirm_refusal(object(), "ml", t, deadline=1e12)  # type: ignore[arg-type]
    assert (t.refusal, asked) == (None, ["Pod ml/penguin-2"])


def test_refusals_from_before_the_apply_are_not_held_against_it() -> None:
    t = _target(STS)
    stale = {**QUOTA, "lastTimestamp": "2026-12-03T05:09:59Z"}
    refusals.on_refusal(t, stale, synced=True, now=10.0)
    assert (t.refusal, t.refused) == (None, None)
    # No apply time known: only events that came after the first listing count.
    t = _target(DS)
    refusals.on_refusal(t, {**WEBHOOK, "message": QUOTA["message"]}, synced=False, now=10.0)
    assert t.refusal is None
    refusals.on_refusal(t, {**WEBHOOK, "message": QUOTA["message"]}, synced=True, now=10.0)
    assert t.refusal is not None


def test_a_refusal_waiting_cannot_be_sure_of_is_named_by_the_timeout_only() -> None:
    t = _target(STS)
    other = {**QUOTA, "message": 'create Pod penguin-2 in StatefulSet penguin failed error: '
             'etcdserver: request timed out'}  # fmt: skip
    refusals.on_refusal(t, other, synced=True, now=10.0)
    assert t.refusal is None
    assert t.refused is not None
    assert "etcdserver: request timed out" in t.refused
    # A Deployment's refusals come with its ReplicaFailure condition: no events are watched.
    assert not viewer_for({"kind": "Deployment", "apiVersion": "apps/v1"}).refusal_events()


def test_a_refusal_watch_the_api_refuses_is_a_warning_not_a_failed_rollout() -> None:
    t = _target(STS)
    judge = PodJudge(None, "ml", max_restarts=0)
    denied = Forbidden("list events in ml: 403 Forbidden", status=403)
    item = rollout._Event(t.key, "error", error=denied, origin="refusal")
    rollout._handle(object(), "ml", t, item, rollout._Feed(), judge, True, 1e12, None)  # type: ignore[arg-type]
    [warning] = judge.warnings
    assert warning.startswith("cannot watch StatefulSet/penguin's events (list events in ml: 403")
    assert "named only when the rollout times out" in warning
    # The workload's own watch failing is still the end of the wait.
    item = rollout._Event(t.key, "error", error=denied, origin="workload")
    with pytest.raises(ClusterError, match="watching StatefulSet/penguin in ml failed"):
        rollout._handle(object(), "ml", t, item, rollout._Feed(), judge, True, 1e12, None)  # type: ignore[arg-type]


def test_a_refusal_before_the_workload_itself_was_seen_names_its_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The events' watch may deliver the refusal before the workload's watch delivers the
    DaemonSet (seen in CI 2026-12-03): the fix-it command still names the namespace."""
    monkeypatch.setattr(kube, "get", lambda *a, **k: None)
    t = refusals.Target(viewer_for(DS), "agent", 2)  # nothing seen of it yet
    quota = {**WEBHOOK, "message": 'Error creating: pods "agent-57ntv" is forbidden: exceeded '
             "quota: e2e-pods, requested: pods=1, used: pods=0, limited: pods=0"}  # fmt: skip
    refusals.on_refusal(t, quota, synced=True, now=10.0)
    with pytest.raises(RolloutFailed) as e:
        refusals.confirm_refusal(object(), "ml", t, deadline=1e12)  # type: ignore[arg-type]
    assert "kubectl describe resourcequota -n ml`" in str(e.value)
