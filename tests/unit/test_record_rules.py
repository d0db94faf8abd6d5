"""The release record's pure rules, and the patience every API step runs under."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from rolloutgate import kube
from rolloutgate.errors import ApiError, ClusterError, ClusterUnreachable
from rolloutgate.release import process, record
from rolloutgate.release.target import MAX_OBJECTS_BYTES, stored, target_of, target_snapshot


def deployment(tag: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "iris",
            "namespace": "ns",
            "uid": "u",
            "resourceVersion": "7",
            "managedFields": [{"manager": "x"}],
            "labels": {"app": "iris"},
            "annotations": {"deployment.kubernetes.io/revision": "4", "team": "ml"},
        },
        "spec": {"template": {"spec": {"containers": [{"image": f"iris:{tag}"}]}}},
        "status": {"replicas": 1},
    }


def test_stored_keeps_what_a_restore_needs_and_nothing_the_server_owns() -> None:
    kept = stored(deployment("v1"))
    assert set(kept) == {"apiVersion", "kind", "metadata", "spec"}
    assert kept["metadata"] == {
        "name": "iris",
        "namespace": "ns",
        "labels": {"app": "iris"},
        "annotations": {"team": "ml"},
    }


def test_target_over_the_size_limit_says_why_it_has_no_objects() -> None:
    big = deployment("v1")
    big["spec"]["blob"] = "x" * (MAX_OBJECTS_BYTES + 1)
    target = target_of([big], tag="v1", verified=True, by="g", first_deploy=False)
    assert target["objects"] is None
    assert "1 MiB" in target["omitted"]
    with pytest.raises(ClusterError, match="1 MiB"):
        target_snapshot({"target": target}, "ns")


def test_unfinished_steps() -> None:
    assert not record.unfinished(None)
    for step in ("locked", "verified", "rolled-back"):
        assert not record.unfinished({"step": step})
    for step in ("applying", "rolling-out", "checking", "rolling-back", "rollback-failed"):
        assert record.unfinished({"step": step})


def test_target_snapshot_restores_the_target_and_deletes_what_it_lacked() -> None:
    target = target_of([deployment("v1")], tag="v1", verified=True, by="g", first_deploy=False)
    found = {
        "target": target,
        "applied": [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "iris"},
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "new"},
        ],
    }
    snap = target_snapshot(found, "ns")
    assert snap.tag() == "v1"
    assert [(m["kind"], live is None) for m, live in snap.objects] == [
        ("Deployment", False),
        ("ConfigMap", True),
    ]


def test_process_gone_only_when_certain() -> None:
    me = process.this_process()
    assert not process.process_gone(me)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = dict(me, pid=child.pid, start="1")
    assert process.process_gone(dead)
    # Another machine (or pid namespace) is never judged from here.
    assert not process.process_gone(dict(dead, host="elsewhere"))
    assert not process.process_gone(dict(dead, pid_ns="1"))
    # A reused pid: same pid, another start time.
    assert process.process_gone(dict(me, pid=os.getpid(), start="1"))


def test_patience_retries_transient_errors_until_the_deadline() -> None:
    calls: list[float] = []
    said: list[str] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ClusterUnreachable("get x: API server did not answer: refused")
        return "ok"

    with kube.patience(time.monotonic() + 10, said.append):
        assert kube.patient(flaky) == "ok"
    assert len(calls) == 3
    assert "retrying for up to" in said[0]
    assert said[-1].startswith("API server answered again after")


def test_without_patience_one_attempt_and_non_transient_errors_at_once() -> None:
    def refused() -> None:
        raise ClusterUnreachable("no")

    with pytest.raises(ClusterUnreachable):
        kube.patient(refused)
    calls = []

    def forbidden() -> None:
        calls.append(1)
        raise ApiError("get x: 422 bad", status=422)

    with kube.patience(time.monotonic() + 10), pytest.raises(ApiError):
        kube.patient(forbidden)
    assert calls == [1]


# --verify: which release is live, and whether a gate verified it.


def _finished(step: str, tag: str, *, verified: bool = True) -> dict[str, object]:
    return {
        "step": step,
        "tag": tag,
        "target": {"tag": tag, "verified": verified, "by": "ci@runner", "at": "2026-12-01"},
    }


def test_live_release_verified_by_a_gate() -> None:
    live = record.live_release(_finished("verified", "v2"), "v2", "rolloutgate-iris-release")
    assert live.verified
    assert live.text == "tag v2, verified by ci@runner at 2026-12-01 (record step 'verified')"


def test_live_release_changed_outside_the_gate() -> None:
    live = record.live_release(_finished("verified", "v2"), "v3", "rolloutgate-iris-release")
    assert not live.verified
    assert "tag v3, NOT the release a gate last verified (tag v2, verified by" in live.text


def test_live_release_without_a_record_or_half_done() -> None:
    none = record.live_release(None, "v2", "rolloutgate-iris-release")
    assert not none.verified
    assert "no release record (configmap rolloutgate-iris-release)" in none.text
    half = record.live_release(_finished("rolling-out", "v3"), "v3", "x")
    assert not half.verified
    assert half.record_step == "rolling-out"
    assert "unfinished" in half.text
    rolled_back = record.live_release(_finished("rolled-back", "v2"), "v2", "x")
    assert rolled_back.verified
    found_only = record.live_release(_finished("locked", "v2", verified=False), "v2", "x")
    assert not found_only.verified
