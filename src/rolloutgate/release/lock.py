"""One gate per target: a coordination.k8s.io/v1 Lease in the target namespace.

The Lease records who holds it (user@host/pid-N/random) and until when (renewTime +
leaseDurationSeconds). An expired lease may be taken over, so a crashed gate blocks the next one
for at most the duration. Writes are optimistic: every update carries the resourceVersion that
was read, and a 409 means another gate won the race.

The holder must either renew the lease (`renew`, or the `keep` background thread) or choose a
duration longer than the gate's whole run.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import ApiError, ClusterError, LockHeld, LockLost
from rolloutgate.objects import MANAGED_BY, Obj, parse_time

API_VERSION = "coordination.k8s.io/v1"
KIND = "Lease"
# How often a renewal that got no answer is tried again: the server's return is noticed soon.
RETRY_S = 2.0


@dataclass(frozen=True)
class Lease:
    """A lease this process holds."""

    name: str
    namespace: str
    holder: str
    duration_s: int


def lease_name(deployment: str) -> str:
    """The lease guarding a Deployment: `rolloutgate-<deployment>`."""
    return f"rolloutgate-{deployment}"


def default_holder() -> str:
    """user@host/pid-N/random: who holds it, and unique even for two gates in one process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some CI containers
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}/pid-{os.getpid()}/{secrets.token_hex(4)}"


# A release gate started by a canary's promotion continues under the lease the canary holds:
# "<namespace>/<name>=<holder>" (an internal variable, not a setting).
HANDOFF_ENV = "ROLLOUTGATE_LEASE_HANDOFF"


def holder_for(namespace: str, name: str, environ: Mapping[str, str] = os.environ) -> str:
    """Who this process takes lease ``namespace/name`` as: the holder handed to it for that very
    lease (``HANDOFF_ENV``), else a new identity (``default_holder``)."""
    handed = environ.get(HANDOFF_ENV, "")
    lease, _, holder = handed.partition("=")
    if holder and lease == f"{namespace}/{name}":
        return holder
    return default_holder()


def _now() -> datetime:
    return datetime.now(UTC)


def _micro_time(t: datetime) -> str:
    """The API's MicroTime format."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expiry(lease: Obj) -> datetime | None:
    """When the holder's claim ends: renewTime (else acquireTime) + leaseDurationSeconds."""
    spec = lease.get("spec") or {}
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds")
    if renewed is None or not isinstance(duration, int):
        return None
    return renewed + timedelta(seconds=duration)


def describe(lease: Obj, now: datetime | None = None) -> str:
    """'held by X since T, expires at E (in N s)' for messages."""
    spec = lease.get("spec") or {}
    ends = expiry(lease)
    now = now or _now()
    when = "no expiry recorded"
    if ends is not None:
        left = (ends - now).total_seconds()
        when = (
            f"expires {_micro_time(ends)} (in {left:.0f} s)"
            if left > 0
            else f"expired {_micro_time(ends)} ({-left:.0f} s ago)"
        )
    return (
        f"held by {spec.get('holderIdentity') or '(nobody)'} since "
        f"{spec.get('acquireTime') or '?'}, renewed {spec.get('renewTime') or '?'}, {when}"
    )


def is_free(lease: Obj, now: datetime) -> bool:
    """Nobody holds it, or the holder's claim has expired."""
    holder = (lease.get("spec") or {}).get("holderIdentity")
    ends = expiry(lease)
    return not holder or ends is None or ends <= now


def _body(name: str, namespace: str, holder: str, duration_s: int, rv: str | None) -> Obj:
    now = _micro_time(_now())
    metadata: Obj = {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)}
    if rv is not None:
        metadata["resourceVersion"] = rv
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration_s,
            "acquireTime": now,
            "renewTime": now,
        },
    }


def acquire(
    api: ApiClient,
    namespace: str,
    name: str,
    *,
    holder: str,
    duration_s: int,
    deadline: float,
    gone: Callable[[Obj], str | None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Lease:
    """Take the lease, waiting (a watch on it) until it is free or expired, up to `deadline`.

    LockHeld names the holder and when its claim expires. Expiry is judged on both the recorded
    renewTime and this process's own observation (a lease not renewed for `duration_s` since we
    first saw it), so clock skew between gates cannot extend a dead gate's claim for ever.
    ``gone(lease)`` may say why its holder is certainly gone (then the lease is taken at once);
    ``on_wait`` hears, once per holder, why this gate waits and for how long at most.
    """
    seen_rv: str | None = None
    seen_at = time.monotonic()
    told: str | None = None
    while True:
        live = kube.retry(
            lambda: kube.get(api, API_VERSION, KIND, name, namespace), deadline=deadline
        )
        if live is None:
            if _try_write(api, namespace, name, holder, duration_s, None):
                return Lease(name, namespace, holder, duration_s)
            continue
        rv = str(live["metadata"]["resourceVersion"])
        if rv != seen_rv:
            seen_rv, seen_at = rv, time.monotonic()
        unchanged_for = time.monotonic() - seen_at
        lease_duration = (live.get("spec") or {}).get("leaseDurationSeconds") or duration_s
        current = (live.get("spec") or {}).get("holderIdentity")
        ours = current == holder
        dead = None if ours or is_free(live, _now()) or gone is None else gone(live)
        if dead and on_wait is not None:
            on_wait(f"lease {namespace}/{name}: {dead}; taking it over now")
        if ours or dead or is_free(live, _now()) or unchanged_for >= lease_duration:
            if _try_write(api, namespace, name, holder, duration_s, rv):
                return Lease(name, namespace, holder, duration_s)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LockHeld(
                f"lease {namespace}/{name} is {describe(live)}. Another gate is deploying this "
                "target: wait for it, or if it is gone, let the lease expire or delete it "
                f"(kubectl -n {namespace} delete lease {name})"
            )
        if on_wait is not None and told != current:
            told = current
            on_wait(
                f"lease {namespace}/{name} is {describe(live)}: waiting for it to be released "
                f"or to expire (at most {min(remaining, lease_duration - unchanged_for):.0f} s)"
            )
        waits = [remaining, lease_duration - unchanged_for]
        ends = expiry(live)
        if ends is not None:
            waits.append((ends - _now()).total_seconds())
        _wait_for_change(api, namespace, name, rv, min(waits))


def _try_write(
    api: ApiClient, namespace: str, name: str, holder: str, duration_s: int, rv: str | None
) -> bool:
    """Create (rv None) or take over (replace at rv) the lease; False if another gate won."""
    body = _body(name, namespace, holder, duration_s, rv)
    try:
        if rv is None:
            kube.create(api, body, namespace)
        else:
            kube.replace(api, body, namespace)
    except ApiError as e:
        if e.status == 409:
            return False
        raise
    return True


def _wait_for_change(api: ApiClient, namespace: str, name: str, rv: str, seconds: float) -> None:
    """Block until the lease changes or `seconds` pass (returns early on any event)."""
    watch = kube.Watch(
        api,
        API_VERSION,
        KIND,
        namespace,
        deadline=time.monotonic() + seconds,
        field_selector=f"metadata.name={name}",
    )
    try:
        for event in watch:
            if event.type == kube.SYNCED:
                continue
            if str(event.obj.get("metadata", {}).get("resourceVersion")) != rv:
                return
    finally:
        watch.stop()


def holder(api: ApiClient, lease: Lease) -> str | None:
    """Who holds the lease now (None: nobody, or it was deleted)."""
    live = kube.get(api, API_VERSION, KIND, lease.name, lease.namespace)
    found = ((live or {}).get("spec") or {}).get("holderIdentity")
    return str(found) if found else None


def current_holder(api: ApiClient, namespace: str, name: str) -> str | None:
    """Who holds the lease `name` now, described (None: nobody, expired, or no lease). A read
    only: for runs that take no lease (``--verify``)."""
    live = kube.get(api, API_VERSION, KIND, name, namespace)
    if live is None or is_free(live, _now()):
        return None
    return describe(live)


def renew(api: ApiClient, lease: Lease) -> str:
    """Push the lease's renewTime to now; LockLost if another gate took it meanwhile, or it was
    deleted. Returns how it was found: ``held`` (by this gate, unexpired) or ``expired`` (this
    gate's still, past its expiry and taken by nobody: taken back)."""
    where = f"lease {lease.namespace}/{lease.name}"
    with kube.unguarded():  # it checks the holder itself
        for _attempt in range(5):
            live = kube.get(api, API_VERSION, KIND, lease.name, lease.namespace)
            holder = ((live or {}).get("spec") or {}).get("holderIdentity")
            if live is None or holder != lease.holder:
                raise LockLost(
                    f"{where} was lost: now {describe(live) if live else 'deleted'} (this gate "
                    f"is {lease.holder})"
                )
            ends = expiry(live)
            found = "expired" if ends is not None and ends <= _now() else "held"
            live["spec"]["renewTime"] = _micro_time(_now())
            try:
                kube.replace(api, live, lease.namespace)
            except ApiError as e:
                if e.status != 409:
                    raise
                # Changed since we read it: read again; only another holder means it is lost
                # (a retried renewal that had landed also ends here).
                continue
            return found
    raise LockLost(f"{where} changed under every renewal attempt; another writer is at work")


def release(api: ApiClient, lease: Lease) -> None:
    """Delete the lease if it is still ours; leave another gate's lease alone."""
    live = kube.get(api, API_VERSION, KIND, lease.name, lease.namespace)
    if live is None or (live.get("spec") or {}).get("holderIdentity") != lease.holder:
        return
    try:
        with kube.unguarded():  # conditional on what was read: it checks the holder itself
            kube.delete(
                api,
                API_VERSION,
                KIND,
                lease.name,
                lease.namespace,
                propagation="Background",
                resource_version=str(live["metadata"]["resourceVersion"]),
            )
    except ApiError as e:
        if e.status != 409:  # 409: changed hands since we read it, so no longer ours
            raise


class Keeper:
    """Keeps a held lease: renewed from a background thread, confirmed by the main thread
    before it changes anything while the renewals are not getting through.

    An API server that does not answer is not a lost lease. Nobody can take the lease without
    reaching that same server, and while it answers nobody, nobody does; so the keeper keeps
    trying and the lease counts as this gate's as far as it knows (``unknown_since``). When
    the server answers again the Lease is read: still this gate's holder identity (whatever its
    renewTime says: expired and taken by nobody included) → renewed, and the gate goes on;
    another holder, or deleted → lost, as when it is seen at any other time. The one case where
    another gate did reach the server while this one could not — a network partition — is
    exactly the one where that gate's identity is in the Lease, and the read sees it.

    The main thread must not write on the strength of a lease it has not confirmed since the
    server last went silent: ``confirm`` (the steps' guard, run before every change) reads it
    first whenever the last renewal that got through is older than half the duration or one
    failed since. ``lost`` collects why the lease was lost; ``on_lost`` hears it at once,
    from the renewal thread. What the main thread should say (the server answered again, and
    which case it was) waits in ``news`` for it to take (``take_news``).
    """

    def __init__(
        self,
        api: ApiClient,
        lease: Lease,
        *,
        every_s: float | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.api, self.lease, self.on_lost = api, lease, on_lost
        self.interval = every_s if every_s is not None else max(1.0, lease.duration_s / 3)
        self.lost: list[str] = []
        self.unknown_since: float | None = None
        self.confirmed_at = time.monotonic()
        self._news: list[str] = []
        self._news_lock = threading.Lock()
        self._renewing = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name=f"rolloutgate-lease-{lease.name}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=kube.REQUEST_TIMEOUT_S)

    def take_news(self) -> list[str]:
        with self._news_lock:
            news, self._news = self._news, []
        return news

    def _tell(self, line: str) -> None:
        with self._news_lock:
            self._news.append(line)

    def _loop(self) -> None:
        delay = self.interval
        # Event.wait is the timer: it returns at once when the block ends.
        while not self._stop.wait(delay):
            try:
                self._renew()
                delay = self.interval
            except LockLost as e:
                self._lose(str(e))
                return
            except ClusterError as e:
                if not kube.transient(e):
                    self._lose(f"lease {self.lease.namespace}/{self.lease.name}: {e}")
                    return
                # Not an answer: keep trying, more often, to know as soon as it answers again.
                self._silent(str(e))
                delay = min(self.interval, RETRY_S)
            except Exception as e:  # a renewal thread that dies unheard would lose the lease
                self._lose(
                    f"lease {self.lease.namespace}/{self.lease.name}: the renewal failed: "
                    f"{type(e).__name__}: {e}"
                )
                return

    def _silent(self, error: str) -> None:
        if self.unknown_since is None:
            self.unknown_since = time.monotonic()
            self._tell(
                f"lease {self.lease.namespace}/{self.lease.name}: not renewed ({error}); "
                "kept as far as this gate knows (nobody can take it from a server that answers "
                "nobody) and confirmed before any further change"
            )

    def _renew(self) -> None:
        # One attempt (a new thread has no step's patience): the loop is the retry.
        with self._renewing:
            self._renewed(renew(self.api, self.lease))

    def _renewed(self, found: str) -> None:
        since, self.unknown_since = self.unknown_since, None
        self.confirmed_at = time.monotonic()
        where = f"lease {self.lease.namespace}/{self.lease.name}"
        if found == "expired":
            self._tell(
                f"{where}: expired while the API server did not answer and taken by nobody: "
                f"taken back (holder {self.lease.holder})"
            )
        elif since is not None:
            self._tell(
                f"{where}: the API server answered again after "
                f"{time.monotonic() - since:.0f} s; still held by this gate "
                f"({self.lease.holder}): renewed"
            )

    def _lose(self, reason: str) -> None:
        if self._stop.is_set():
            return
        self.lost.append(reason)
        if self.on_lost is not None:
            self.on_lost(reason)

    def confirm(self) -> None:
        """Before a change: LockLost when the lease is known lost; when its last renewal that
        got through is not recent, read and renew it first (under the running step's patience:
        a server still silent is waited for as any request is)."""
        if self.lost:
            raise LockLost(self.lost[0])
        # Renewed every third of the duration: a confirmation older than half of it means
        # renewals did not get through, and the lease may have expired by now.
        fresh = time.monotonic() - self.confirmed_at < self.lease.duration_s / 2
        if fresh and self.unknown_since is None:
            return
        with self._renewing:
            if self.unknown_since is None and time.monotonic() - self.confirmed_at < 1.0:
                return  # the renewal thread has just confirmed it
            try:
                found = renew(self.api, self.lease)
            except LockLost as e:
                self._lose(str(e))
                raise
            self._renewed(found)


@contextmanager
def keep(
    api: ApiClient,
    lease: Lease,
    *,
    every_s: float | None = None,
    on_lost: Callable[[str], None] | None = None,
) -> Iterator[Keeper]:
    """Renew the lease from a background thread (every third of the duration by default) while
    the block runs; see ``Keeper``."""
    keeper = Keeper(api, lease, every_s=every_s, on_lost=on_lost)
    keeper.start()
    try:
        yield keeper
    finally:
        keeper.stop()
