"""A SIGTERM (a cancelled CI job) or Ctrl+C that arrives while a gate recovers the release a dead
gate left unfinished is deferred until the recovery is done, then obeyed: the gate stops before
its own release. Seen in tests/e2e/test_secrets.py on a busy cluster: the SIGTERM met the
recovery's rollout, was noted, and the gate went on to apply and roll out the new release for
240 s; its report said it was never interrupted."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from rolloutgate.release import ending
from rolloutgate.release.report import Rollback

TARGET = {"tag": "v2", "verified": True, "by": "ci@runner/pid-1/ab", "at": "2026-12-03T06:17:00Z"}


class Tracker:
    """The record a gate that died left: step 'rolling-back', target v2 verified."""

    name = "rolloutgate-penguin-release"

    def __init__(self) -> None:
        self.current: dict[str, Any] = {"step": "rolling-back", "target": TARGET}
        self.found = None
        self.steps: list[str] = []

    def ensure_held(self) -> None:
        return None

    def step(self, name: str) -> None:
        self.steps.append(name)

    def verified(self, step: str, *_args: object) -> None:
        self.steps.append(step)


def _release() -> SimpleNamespace:
    @contextmanager
    def step(_phase: object, _seconds: float) -> Iterator[float]:
        yield 0.0

    @contextmanager
    def phase(_name: str) -> Iterator[None]:
        yield

    lines: list[str] = []
    return SimpleNamespace(
        cfg=SimpleNamespace(
            namespace="e2e", cluster="local", timeouts=SimpleNamespace(rollback=300.0)
        ),
        run=SimpleNamespace(recovery=None, phase=phase, notes=[]),
        tracker=Tracker(),
        api=None,
        _golden=None,
        step=step,
        wait=lambda objs, **_kw: objs,
        say=lines.append,
        tell=lines.append,
        note=lines.append,
        lines=lines,
    )


@pytest.fixture
def restore_signalled(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The recovery's restore, which sends this process the signals put in the list."""
    signals: list[int] = []
    snap = SimpleNamespace(objects=[({"kind": "Deployment"}, {"kind": "Deployment"})])

    def restore(*_args: object, **_kw: object) -> list[str]:
        for signum in signals:
            os.kill(os.getpid(), signum)
        return ["deployment penguin restored"]

    monkeypatch.setattr(ending, "target_snapshot", lambda found, namespace: snap)
    monkeypatch.setattr(ending.rollback, "restore", restore)
    monkeypatch.setattr(ending.checks, "problems", lambda *_a, **_kw: [])
    return signals


@pytest.fixture(autouse=True)
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raised as KeyboardInterrupt("SIGTERM"), as the gate's plugin installs it."""

    def on_sigterm(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    yield
    signal.signal(signal.SIGTERM, previous)


def test_a_sigterm_during_recovery_finishes_it_then_stops_the_gate(
    restore_signalled: list[int],
) -> None:
    restore_signalled.append(signal.SIGTERM)
    rel = _release()

    with pytest.raises(KeyboardInterrupt, match=r"^SIGTERM$"):
        ending.recover(rel)  # type: ignore[arg-type]

    # The recovery was not cut short: restored, checked, recorded verified.
    assert rel.tracker.steps == ["recovering", "verified"]
    assert isinstance(rel.run.recovery, Rollback)
    assert rel.run.recovery.verified is True
    assert rel.lines[-1] == (
        "rolloutgate: stopping for the SIGTERM received during the recovery; "
        "nothing of this release was applied"
    )
    assert any("SIGTERM received during recovery; finishing the recovery" in x for x in rel.lines)
    # The gate's own handler is back (a later SIGTERM interrupts at once).
    with pytest.raises(KeyboardInterrupt, match=r"^SIGTERM$"):
        os.kill(os.getpid(), signal.SIGTERM)


def test_a_ctrl_c_during_recovery_stops_the_gate_as_ctrl_c(
    restore_signalled: list[int],
) -> None:
    restore_signalled.append(signal.SIGINT)
    rel = _release()

    with pytest.raises(KeyboardInterrupt, match=r"^$"):
        ending.recover(rel)  # type: ignore[arg-type]

    assert rel.run.recovery.verified is True


def test_a_recovery_nothing_interrupted_lets_the_release_go_on(
    restore_signalled: list[int],
) -> None:
    rel = _release()

    ending.recover(rel)  # type: ignore[arg-type]

    assert rel.run.recovery.verified is True
    assert rel.lines[-1].startswith("rolloutgate: recovery: restored tag v2")
