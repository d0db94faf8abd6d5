"""The Lease lock on the real cluster: exclusion, takeover of an expired lease, release."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import LockHeld
from rolloutgate.release import lock


def test_second_gate_waits_then_fails_naming_the_holder(api: ApiClient, namespace: str) -> None:
    first = lock.acquire(
        api, namespace, "rolloutgate-web", holder="a@h/pid-1/x", duration_s=60,
        deadline=time.monotonic() + 5,
    )  # fmt: skip
    started = time.monotonic()
    with pytest.raises(LockHeld, match=r"held by a@h/pid-1/x since .*expires .*\(in \d+ s\)"):
        lock.acquire(
            api, namespace, "rolloutgate-web", holder="b@h/pid-2/y", duration_s=60,
            deadline=time.monotonic() + 2,
        )  # fmt: skip
    assert 2 <= time.monotonic() - started < 10
    lock.release(api, first)
    assert kube.get(api, lock.API_VERSION, lock.KIND, "rolloutgate-web", namespace) is None


def test_waiting_gate_gets_the_lease_when_it_is_released(api: ApiClient, namespace: str) -> None:
    first = lock.acquire(
        api, namespace, "l", holder="a", duration_s=60, deadline=time.monotonic() + 5
    )
    releaser = threading.Timer(2, lock.release, args=(api, first))
    releaser.start()
    started = time.monotonic()
    second = lock.acquire(api, namespace, "l", holder="b", duration_s=60, deadline=started + 30)
    releaser.join()
    assert second.holder == "b"
    assert time.monotonic() - started < 15  # woken by the watch, not by the deadline
    live = kube.get(api, lock.API_VERSION, lock.KIND, "l", namespace)
    assert live is not None
    assert live["spec"]["holderIdentity"] == "b"


def test_expired_lease_of_a_crashed_gate_is_taken_over(api: ApiClient, namespace: str) -> None:
    lock.acquire(api, namespace, "l", holder="crashed", duration_s=2, deadline=time.monotonic() + 5)
    taken = lock.acquire(
        api, namespace, "l", holder="next", duration_s=60, deadline=time.monotonic() + 20
    )
    assert taken.holder == "next"


def test_release_leaves_another_holders_lease_alone(api: ApiClient, namespace: str) -> None:
    mine = lock.acquire(
        api, namespace, "l", holder="me", duration_s=1, deadline=time.monotonic() + 5
    )
    theirs = lock.acquire(
        api, namespace, "l", holder="them", duration_s=60, deadline=time.monotonic() + 20
    )
    lock.release(api, mine)
    live = kube.get(api, lock.API_VERSION, lock.KIND, "l", namespace)
    assert live is not None
    assert live["spec"]["holderIdentity"] == theirs.holder
    with pytest.raises(LockHeld, match="was lost"):
        lock.renew(api, mine)


def test_keep_renews_in_the_background(api: ApiClient, namespace: str) -> None:
    lease = lock.acquire(
        api, namespace, "l", holder="me", duration_s=3, deadline=time.monotonic() + 5
    )
    before = kube.get(api, lock.API_VERSION, lock.KIND, "l", namespace)
    assert before is not None
    # Longer than the duration: without renewals another gate could take it meanwhile.
    with lock.keep(api, lease, every_s=1) as errors, pytest.raises(LockHeld):
        lock.acquire(
            api, namespace, "l", holder="other", duration_s=3, deadline=time.monotonic() + 4
        )
    assert errors == []
    after = kube.get(api, lock.API_VERSION, lock.KIND, "l", namespace)
    assert after is not None
    assert after["spec"]["renewTime"] > before["spec"]["renewTime"]
