"""The Lease lock on the real cluster: exclusion, takeover of an expired lease, release."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import LockHeld, LockLost
from rolloutgate.release import lock

from .conftest import CONTEXT, KUBECONFIG


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
    with lock.keep(api, lease, every_s=1) as keeper, pytest.raises(LockHeld):
        lock.acquire(
            api, namespace, "l", holder="other", duration_s=3, deadline=time.monotonic() + 4
        )
    assert keeper.lost == []
    after = kube.get(api, lock.API_VERSION, lock.KIND, "l", namespace)
    assert after is not None
    assert after["spec"]["renewTime"] > before["spec"]["renewTime"]


# A port where nothing listens: a client sent there meets "connection refused", as a gate cut
# off from the API server does (a restart, a network partition), while the real server goes on
# answering every other client.
NOWHERE = "https://127.0.0.1:9"


@pytest.fixture
def cut_off() -> ApiClient:
    """Function: a client of its own for the local cluster, to point at NOWHERE and back."""
    return kube.connect(str(KUBECONFIG), CONTEXT)


def _until(condition: Callable[[], object], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)


def test_a_lease_not_renewed_for_want_of_an_answer_is_kept_and_taken_back(
    cut_off: ApiClient, namespace: str
) -> None:
    """No answer for longer than the lease: nobody could take it, so it is still this gate's
    when the server answers again; the keeper renews it and says it had expired."""
    lease = lock.acquire(
        cut_off, namespace, "l", holder="me", duration_s=2, deadline=time.monotonic() + 5
    )
    server = cut_off.configuration.host
    with lock.keep(cut_off, lease, every_s=0.5) as keeper:
        cut_off.configuration.host = NOWHERE
        _until(lambda: keeper.unknown_since is not None, 5)
        time.sleep(3)  # past the lease's expiry
        assert keeper.lost == []
        cut_off.configuration.host = server
        _until(lambda: keeper.unknown_since is None, 10)
        assert keeper.lost == []
        news = keeper.take_news()
    assert any("not renewed" in n and "kept as far as this gate knows" in n for n in news), news
    assert any("taken by nobody: taken back (holder me)" in n for n in news), news
    live = kube.get(cut_off, lock.API_VERSION, lock.KIND, "l", namespace)
    assert live is not None
    assert live["spec"]["holderIdentity"] == "me"


def test_a_lease_another_gate_took_while_this_one_was_cut_off_is_lost(
    api: ApiClient, cut_off: ApiClient, namespace: str
) -> None:
    """The partition: another gate reached the server and took the expired lease. When this
    gate's renewals get through again, the Lease names the other holder: lost, and a change
    the main thread tries is refused before it is sent."""
    lease = lock.acquire(
        cut_off, namespace, "l", holder="me", duration_s=2, deadline=time.monotonic() + 5
    )
    server = cut_off.configuration.host
    with lock.keep(cut_off, lease, every_s=0.5) as keeper:
        cut_off.configuration.host = NOWHERE
        lock.acquire(
            api, namespace, "l", holder="other", duration_s=60, deadline=time.monotonic() + 10
        )
        assert keeper.lost == []
        cut_off.configuration.host = server
        _until(lambda: keeper.lost, 10)
        assert "now held by other" in keeper.lost[0]
        with pytest.raises(LockLost, match="now held by other"):
            keeper.confirm()


def test_a_change_is_refused_when_the_lease_was_taken_before_the_renewal_noticed(
    api: ApiClient, cut_off: ApiClient, namespace: str
) -> None:
    """Check-before-write: the renewal thread has not looked since the lease expired; the main
    thread's confirm reads the Lease itself and refuses."""
    lease = lock.acquire(
        cut_off, namespace, "l", holder="me", duration_s=2, deadline=time.monotonic() + 5
    )
    with lock.keep(cut_off, lease, every_s=60) as keeper:
        lock.acquire(
            api, namespace, "l", holder="other", duration_s=60, deadline=time.monotonic() + 10
        )
        with pytest.raises(LockLost, match="now held by other"):
            keeper.confirm()
        assert keeper.lost
