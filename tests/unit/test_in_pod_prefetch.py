"""The in-pod checks' way in is found in a thread beside the replica checks: the check that
needs it then takes what was found, without a second ``kubectl exec``."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from rolloutgate.checks import inpod
from rolloutgate.checks.inpod import InPod
from rolloutgate.objects import Obj
from rolloutgate.release import engine
from rolloutgate.release import verify as checks
from rolloutgate.release.report import GateRun

from .k8s_objects import container, gate_config, pod

DEPLOYMENT: Obj = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "iris"},
    "spec": {"template": {"spec": {"containers": [{"name": "model", "image": "x/iris:v2"}]}}},
}


def _pod(name: str) -> Obj:
    p = pod(
        phase="Running",
        container_statuses=[container(state={"running": {"startedAt": "2026-12-03T09:00:00Z"}})],
    )
    p["metadata"]["name"] = name
    p["spec"] = {"containers": [{"name": "model", "image": "x/iris:v2"}]}
    return p


class _Host:
    """testinfra's Host: its first ``file`` runs the system detection (three execs)."""

    detected_in: str | None = None

    @property
    def file(self) -> object:
        self.detected_in = threading.current_thread().name
        return object()


def test_in_pod_takes_what_the_prefetch_found(monkeypatch: pytest.MonkeyPatch) -> None:
    pods = [_pod("iris-b"), _pod("iris-a")]
    opened: list[tuple[str, str, str]] = []
    release_gate = threading.Event()

    def open_in_pod(api: Any, kubectl: Any, target: Obj, name: str, **_: Any) -> InPod:
        release_gate.wait(5)  # the exec takes a while: in_pod must wait for it, not redo it
        opened.append((threading.current_thread().name, target["metadata"]["name"], name))
        return InPod(target["metadata"]["name"], name, name, host=_Host())

    monkeypatch.setattr(inpod, "open_in_pod", open_in_pod)
    monkeypatch.setattr(checks, "release_pods", lambda api, namespace, workload: pods)
    release = engine.Release(gate_config(), GateRun(gate_config()))
    release._api = object()  # type: ignore[assignment]
    release.use(objects=[DEPLOYMENT], live=[DEPLOYMENT])
    release.prefetch_in_pod()
    release_gate.set()
    found = release.in_pod(pods, "model")
    assert (found.pod, found.container) == ("iris-a", "model")  # the first running, by name
    assert opened == [("rolloutgate-in-pod", "iris-a", "model")]  # once, in the thread
    assert found.host.detected_in == "rolloutgate-in-pod"  # testinfra's detection too
