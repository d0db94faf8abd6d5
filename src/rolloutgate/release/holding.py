"""The target's lease as a release holds it.

``lock`` takes the lease (waiting for another gate under ``timeouts.lock``), reads and starts
the release record, and keeps the lease renewed in the background until ``unlock``; with
``--verify`` it only reads the lease and the record, in a dry run only the record.

While the lease is held, ``Holding`` guards the release's steps: a change is confirmed against
the lease first when its renewals have not got through lately, and a loss that the renewal
thread notices interrupts the step running then, which ends with LockLost.

``lock`` and ``unlock`` are functions over the engine (``engine.Release``), which calls them
from its methods of the same names.
"""

from __future__ import annotations

import _thread
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from kubernetes.client import ApiClient

from rolloutgate.errors import ClusterError, LockLost
from rolloutgate.release import lock as leases
from rolloutgate.release import prepare, record
from rolloutgate.release.lock import Lease
from rolloutgate.release.target import describe_target

if TYPE_CHECKING:
    from rolloutgate.release.engine import Release
    from rolloutgate.release.report import GateRun


class Holding:
    """The lease a release holds while its steps run: its renewal, the record's tracker, and
    which steps are running (only those are interrupted when the lease is lost).

    ``note`` writes a line for the terminal and the report's notes.
    """

    def __init__(self, run: GateRun, note: Callable[[str], None]) -> None:
        self.run, self._note = run, note
        self.tracker: record.Tracker | None = None
        self._held = ExitStack()  # the lease's renewal and release
        self._keeper: leases.Keeper | None = None
        # Set by the renewal thread when it interrupts the main thread because the lease was
        # lost: the step that gets the KeyboardInterrupt turns it into LockLost.
        self._lost_interrupt = threading.Event()
        self._steps = 0  # steps running now (nested); the renewal thread interrupts only these
        self._steps_lock = threading.Lock()

    def keep(self, api: ApiClient, lease: Lease, tracker: record.Tracker) -> None:
        """Renew ``lease`` in the background until ``close``; its loss stops ``tracker``."""
        tracker.on_lost = self._on_lost
        self.tracker = tracker
        self._keeper = self._held.enter_context(leases.keep(api, lease, on_lost=tracker.lose))

    def release_on_close(self, release: Callable[[], None]) -> None:
        """What ``close`` does once the renewal has stopped: give the lease back."""
        self._held.callback(release)

    @contextmanager
    def running(self) -> Iterator[None]:
        """A step's span: the one place a lost lease may interrupt the main thread, turned
        into LockLost here (one line, exit 1; never pytest's KeyboardInterrupt banner)."""
        with self._steps_lock:
            self._steps += 1
        try:
            yield
        except KeyboardInterrupt:
            if not self._lost_interrupt.is_set():
                raise
            self._lost_interrupt.clear()
            raise LockLost(f"lease lost ({self.run.lock_lost})") from None
        finally:
            with self._steps_lock:
                self._steps -= 1
            self.tell_news()

    def confirm(self) -> None:
        """The guard of every change: the lease confirmed first when its renewals did not get
        through lately (LockLost when it is another gate's)."""
        if self._keeper is None:
            return
        try:
            self._keeper.confirm()
        finally:
            self.tell_news()

    def tell_news(self) -> None:
        """What the renewal thread found (renewals failing, then getting through again): said
        from the main thread, which owns the terminal."""
        if self._keeper is not None:
            for line in self._keeper.take_news():
                self._note(line)

    def _on_lost(self, reason: str) -> None:
        # From the renewal thread: stop the release where it is (a change made now would land
        # on another gate's target); the rollback is skipped for the same reason. Only a step
        # is interrupted (``running``); between steps the next change's guard refuses.
        # Nothing is written to the terminal from here: it belongs to the main thread.
        self.run.lock_lost = reason
        if self.tracker is None or not self.tracker.interrupt_on_loss:
            return
        if threading.current_thread() is threading.main_thread():
            return  # found by the main thread itself (a change refused): it raises LockLost
        with self._steps_lock:
            if self._steps:
                self._lost_interrupt.set()
                _thread.interrupt_main()

    def close(self) -> None:
        """Stop renewing and release the lease. LockLost when it was lost during the run and
        nothing said so yet (another gate may have deployed meanwhile)."""
        self._held.close()
        keeper, self._keeper = self._keeper, None
        lost = keeper.lost if keeper is not None else []
        if lost and self.run.lock_lost is None and self.tracker is not None:
            lease = self.tracker.lease
            self.run.notes.append(f"lease {lease.name} was lost during the run: {lost[0]}")
            raise LockLost(
                f"lease {lease.namespace}/{lease.name} was lost during the run, another gate "
                f"may have deployed meanwhile: {lost[0]}"
            )


def lock(rel: Release) -> Lease | None:
    """The target's Lease, held and renewed until ``unlock``, and the release record read and
    started; None in a dry run (which changes nothing, and only reads the record)."""
    cfg, api, run = rel.cfg, rel.api, rel.run
    name = prepare.lock_name(cfg, rel.objects)
    if cfg.verify:
        _read_only(rel, name)
        return None
    if cfg.dry_run:
        with rel.step(None, cfg.timeouts.api):
            found = record.read(api, cfg.namespace, record.record_name(name))
        if record.unfinished(found):
            assert found is not None
            run.notes.append(f"unfinished {record.describe(found)}: a real run recovers it first")
        return None
    with rel.step("lock", cfg.timeouts.lock) as deadline:
        lease = leases.acquire(
            api,
            cfg.namespace,
            name,
            # A canary's promotion continues under the lease the canary holds.
            holder=leases.holder_for(cfg.namespace, name),
            duration_s=int(cfg.timeouts.lease),
            deadline=deadline,
            gone=lambda live: record.holder_gone(api, cfg.namespace, name, live),
            on_wait=lambda m: rel.say(f"rolloutgate: {m}"),
        )
    rel.holding.release_on_close(lambda: _release(rel, lease))
    try:
        tracker = record.Tracker(api, cfg.namespace, lease, api_timeout=cfg.timeouts.api)
        with rel.step("record", cfg.timeouts.api):
            found = tracker.load()
            if record.unfinished(found):
                assert found is not None
                text = (
                    f"found an unfinished {record.describe(found)}; that gate is gone or "
                    "lost its lease (this gate holds it now). Restore target: the last "
                    f"verified release: {describe_target(found.get('target'))}"
                )
                rel.say(f"rolloutgate: {text}")
                run.notes.append(text)
            tracker.start(cfg.image_tag)
        rel.holding.keep(api, lease, tracker)
    except BaseException:
        # The fixture's teardown runs only after a setup that succeeded: release it here.
        rel.unlock()
        raise
    return lease


def _read_only(rel: Release, name: str) -> None:
    """--verify: the lease and the record read, never written. A gate holding the lease
    is releasing right now: the checks see whatever is live, and a note says so."""
    cfg, api = rel.cfg, rel.api
    with rel.step("record", cfg.timeouts.api):
        rel.found = record.read_public(api, cfg.namespace, record.record_name(name))
        holder = leases.current_holder(api, cfg.namespace, name)
    if holder is not None:
        text = (
            f"lease {cfg.namespace}/{name} is held by {holder}: a gate is releasing now, "
            "and the checks see whatever is live meanwhile"
        )
        rel.say(f"rolloutgate: {text}")
        rel.run.notes.append(text)


def _release(rel: Release, lease: Lease) -> None:
    try:
        with rel.step(None, rel.cfg.timeouts.api):
            leases.release(rel.api, lease)
    except LockLost:
        return  # another gate's now: nothing of ours to release
    except ClusterError as e:
        # A teardown must not end in the client's tracebacks; the lease expires by itself.
        line = (
            f"lease {lease.namespace}/{lease.name} not released ({e}); it expires "
            f"{lease.duration_s} s after its last renewal, and the next gate takes it then"
        )
        rel.note(line)
