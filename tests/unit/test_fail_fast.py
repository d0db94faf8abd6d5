"""The rollout's verdict on a broken pod comes from the status the watch delivered alone: no
log request (the kubelet holds those for seconds after a crash), no other API call."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from rolloutgate.checks import pods
from rolloutgate.checks.podjudge import PodJudge
from rolloutgate.errors import RolloutFailed
from rolloutgate.kube import WatchEvent
from rolloutgate.release import diagnostics, ending, refusals, rollout
from rolloutgate.workloads import DeploymentViewer, Revision

from .k8s_objects import container, deployment, pod


def _crashed() -> dict:
    crashed = pod(
        phase="Running",
        container_statuses=[
            container(
                state={"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "x"}},
            )
        ],
    )
    crashed["metadata"]["uid"] = "u1"
    return crashed


def test_a_crash_is_judged_on_its_status_without_asking_the_kubelet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_log(*args: object, **kwargs: object) -> str:
        raise AssertionError("the verdict asked for a log")

    monkeypatch.setattr(pods, "log_tail", no_log)
    target = refusals.Target(DeploymentViewer(), "iris", 2, obj=deployment())
    target.revision = Revision("2", {"pod-template-hash": "7c9f"})
    judge = PodJudge(None, "ml", max_restarts=0)
    item = rollout._Event(target.key, "pod", WatchEvent("MODIFIED", _crashed()))

    with pytest.raises(RolloutFailed) as e:
        # api None: any request to the cluster would fail with an AttributeError instead.
        rollout._handle(None, "ml", target, item, rollout._Feed(), judge, True, 0.0, None)  # type: ignore[arg-type]

    assert e.value.reason == "CrashLoopBackOff"
    assert e.value.pod == "iris-7c9f-abcde"
    assert "exited with code 1 (Error) and is not ready" in str(e.value)


def test_the_failing_containers_log_is_asked_before_the_restore_and_joins_the_diagnostics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order: list[str] = []
    asked = threading.Event()

    def log_tail(api: object, ns: str, pod: str, container: str, **kw: object) -> str:
        order.append(f"log {pod}/{container} previous={kw['previous']}")
        asked.set()
        # The kubelet's 200 for an instance it already replaced is no log.
        return "boom: bad weights" if kw["previous"] else "unable to retrieve container logs"

    def restore(rel: object, why: str) -> None:
        asked.wait(5)  # a log asked only after the restore would leave this waiting
        order.append("restore")

    monkeypatch.setattr(pods, "log_tail", log_tail)
    monkeypatch.setattr(
        diagnostics, "of_release", lambda rel: "== diagnostics: deployment ml/iris =="
    )
    monkeypatch.setattr(ending, "_restore_early", restore)
    rel = SimpleNamespace(
        gathering=None, api=None, cfg=SimpleNamespace(namespace="ml"), run=SimpleNamespace(notes=[])
    )
    error = RolloutFailed("crashed", reason="CrashLoopBackOff", pod="iris-x", container="model")

    ending.fail_fast(rel, error)  # type: ignore[arg-type]
    text = rel.gathering.result(5)

    assert order[0].startswith("log iris-x/model")
    assert "restore" in order
    assert text.startswith("== diagnostics: deployment ml/iris ==")
    assert "log of container model of pod iris-x, read at the verdict (previous instance)" in text
    assert "| boom: bad weights" in text
    assert "unable to retrieve" not in text
