"""What a canary run does side by side rather than one after the other: both arms' deletions,
and the statistics' import while the arms start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rolloutgate import kube
from rolloutgate.canary import config as canary_config
from rolloutgate.canary.arms import remove_arms
from rolloutgate.canary.run import CanaryRun
from rolloutgate.errors import GateError

from .k8s_objects import gate_config

ARMS = {"baseline": "iris-baseline", "canary": "iris-canary"}


def _run(tmp_path: Path) -> CanaryRun:
    ccfg = canary_config.resolve(
        {}, env={}, tool={}, cluster=None, rootdir=tmp_path, invocation_dir=tmp_path
    )
    run = CanaryRun(gate_config(), ccfg)
    run.arms = dict(ARMS)  # type: ignore[arg-type]
    return run


class Cluster:
    """The two calls ``remove_arms`` makes, in the order it makes them."""

    def __init__(self, refuse_delete: tuple[str, ...] = (), gone: bool = True) -> None:
        self.calls: list[tuple[str, str]] = []
        self.refuse_delete = refuse_delete
        self.gone = gone

    def delete(self, api: Any, version: str, kind: str, name: str, ns: str, **kw: Any) -> bool:
        self.calls.append(("delete", name))
        if name in self.refuse_delete:
            raise GateError(f"deployment {name}: forbidden")
        return True

    def wait_gone(
        self, api: Any, version: str, kind: str, name: str, ns: str, deadline: float
    ) -> bool:
        self.calls.append(("wait", name))
        return self.gone


def test_both_arms_are_deleted_before_either_is_waited_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cluster = Cluster()
    monkeypatch.setattr(kube, "delete", cluster.delete)
    monkeypatch.setattr(kube, "wait_gone", cluster.wait_gone)
    run = _run(tmp_path)
    remove_arms(None, "ns", run, deadline=0.0)  # type: ignore[arg-type]
    assert cluster.calls == [
        ("delete", "iris-baseline"),
        ("delete", "iris-canary"),
        ("wait", "iris-baseline"),
        ("wait", "iris-canary"),
    ]
    assert run.cleanup == ["deployment iris-baseline deleted", "deployment iris-canary deleted"]


def test_an_arm_that_cannot_be_deleted_is_reported_and_the_other_still_goes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cluster = Cluster(refuse_delete=("iris-baseline",), gone=False)
    monkeypatch.setattr(kube, "delete", cluster.delete)
    monkeypatch.setattr(kube, "wait_gone", cluster.wait_gone)
    run = _run(tmp_path)
    remove_arms(None, "ns", run, deadline=0.0)  # type: ignore[arg-type]
    assert ("wait", "iris-baseline") not in cluster.calls
    # In the arms' order, whichever step failed.
    assert run.cleanup == [
        "deployment iris-baseline: NOT deleted: deployment iris-baseline: forbidden",
        "deployment iris-canary: still terminating",
    ]


def test_the_statistics_are_imported_in_the_background_not_by_importing_the_canary() -> None:
    # A fresh interpreter: importing the canary's run costs no numpy or scipy; the background
    # import loads both, off the calling thread.
    code = (
        "import sys, threading\n"
        "from rolloutgate.canary import run, stats\n"
        "before = [m for m in stats.NUMERICAL if m in sys.modules]\n"
        "t = stats.import_in_background()\n"
        "assert t.daemon and t is not threading.current_thread()\n"
        "t.join(120)\n"
        "print(before, [m for m in stats.NUMERICAL if m in sys.modules])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=150, check=True
    )
    assert proc.stdout.strip() == "[] ['numpy', 'scipy.stats']"


def test_both_arms_are_applied_before_one_wait_for_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their pods start side by side: the arm started first served 3-12 % slower through the
    traffic (docs/canary.md, "Which arm starts first")."""
    from rolloutgate.canary import arms

    calls: list[Any] = []

    def apply(api: object, ns: str, objs: list[dict[str, Any]], **kw: object) -> list[Any]:
        calls.append(("apply", objs[0]["metadata"]["name"]))
        return objs

    def wait(api: object, ns: str, objs: list[dict[str, Any]], **kw: object) -> list[Any]:
        calls.append(("wait", [o["metadata"]["name"] for o in objs]))
        return [{**o, "status": "ready"} for o in objs]

    monkeypatch.setattr(arms.apply, "apply", apply)
    monkeypatch.setattr(arms.rollout, "wait", wait)
    run = _run(tmp_path)
    bodies = {arm: {"metadata": {"name": name}} for arm, name in ARMS.items()}
    finals = arms.start_arms(object(), run.cfg, bodies, lambda _: None, run)  # type: ignore[arg-type]
    assert {c[1] for c in calls[:2]} == set(ARMS.values())
    assert calls[2] == ("wait", ["iris-baseline", "iris-canary"])
    assert finals == {arm: {"metadata": {"name": n}, "status": "ready"} for arm, n in ARMS.items()}
    assert set(run.phases) == {"apply", "rollout"}


def test_a_failure_of_the_wait_for_both_is_put_on_its_arm() -> None:
    from rolloutgate.canary.arms import failed_arm
    from rolloutgate.errors import RolloutFailed, RolloutTimeout

    crash = RolloutFailed("pod iris-baseline-5d-x2: CrashLoopBackOff", reason="CrashLoop",
                          pod="iris-baseline-5d-x2")  # fmt: skip
    assert failed_arm(crash, ARMS) == "baseline"  # type: ignore[arg-type]
    crash.pod = "iris-canary-7f-k9"
    assert failed_arm(crash, ARMS) == "canary"  # type: ignore[arg-type]
    late = RolloutTimeout("deployment iris-baseline: 2/3 ready", reason="Timeout")
    assert failed_arm(late, ARMS) == "baseline"  # type: ignore[arg-type]
    both = RolloutTimeout("deployment iris-baseline: 2/3; deployment iris-canary: 1/3",
                          reason="Timeout")  # fmt: skip
    assert failed_arm(both, ARMS) == "canary"  # type: ignore[arg-type]
