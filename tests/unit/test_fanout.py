"""Every replica asked at once, never more than the bound at a time."""

from __future__ import annotations

import threading
import time

import pytest

from rolloutgate.checks.fanout import each


class Replica:
    """A client whose answers take `seconds`; counts how many are asked at the same time."""

    in_flight = 0
    most = 0
    lock = threading.Lock()

    def __init__(self, name: str, seconds: float = 0.05, fails: bool = False) -> None:
        self.name, self.seconds, self.fails = name, seconds, fails

    def ask(self) -> str:
        with Replica.lock:
            Replica.in_flight += 1
            Replica.most = max(Replica.most, Replica.in_flight)
        try:
            time.sleep(self.seconds)
            if self.fails:
                raise ConnectionError(f"{self.name} refused")
            return f"{self.name} ok"
        finally:
            with Replica.lock:
                Replica.in_flight -= 1


@pytest.fixture(autouse=True)
def _counts() -> None:
    Replica.in_flight = Replica.most = 0


def test_every_replica_is_asked_side_by_side_within_the_bound() -> None:
    replicas = {f"pod-{i}": Replica(f"pod-{i}") for i in range(40)}
    answers = each(replicas, Replica.ask, limit=8)
    assert answers == {name: f"{name} ok" for name in replicas}  # every one, in their order
    assert list(answers) == list(replicas)
    assert Replica.most == 8


def test_the_first_error_in_order_is_raised_after_every_call_finished() -> None:
    replicas = {
        "pod-0": Replica("pod-0", 0.2),
        "pod-1": Replica("pod-1", fails=True),
        "pod-2": Replica("pod-2", fails=True),
        "pod-3": Replica("pod-3", 0.2),
    }
    with pytest.raises(ConnectionError, match="pod-1 refused"):
        each(replicas, Replica.ask, limit=4)
    assert Replica.in_flight == 0  # nothing left running behind the caller


def test_one_replica_is_asked_in_the_callers_thread() -> None:
    seen: list[str] = []
    each({"pod-0": 1}, lambda _c: seen.append(threading.current_thread().name))
    assert seen == [threading.main_thread().name]
