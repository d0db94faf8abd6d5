"""The end of a release: nothing when the run passed; else the snapshot restored, waited for
and proven healthy with the same checks; and recovery, which puts back the last verified
release a gate that died left behind (``--recover``, or found by the next gate).

Functions over the engine (``engine.Release``), which calls them from ``finish``,
``restore_now``, ``recover`` and ``diagnostics``. Nothing here asserts: the rollback's own
verification runs after the tests are over, and its outcome goes in ``run.rollback``.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from rolloutgate.errors import (
    ClusterError,
    ClusterUnreachable,
    ConfigError,
    GateError,
    LockLost,
    RollbackFailed,
)
from rolloutgate.objects import ref
from rolloutgate.release import diagnostics as diag
from rolloutgate.release import prepare, record, rollback
from rolloutgate.release import verify as checks
from rolloutgate.release.report import Rollback
from rolloutgate.release.snapshot import Snapshot
from rolloutgate.release.target import describe_target, target_snapshot
from rolloutgate.workloads import is_workload, viewer_for, workloads

if TYPE_CHECKING:
    from rolloutgate.checks.cases import Golden
    from rolloutgate.release.engine import Release

# How long a cluster's passed release waits for the wave runner's word (later waves release
# meanwhile; a runner that dies is noticed at once, see handoff).
HANDOFF_WAIT_S = 3600.0


class RecoveryFailed(RollbackFailed):
    """The last verified release could not be restored or does not pass its checks."""


def finish(rel: Release) -> None:
    """The end of an applied release: nothing to do when the run passed (the release is the
    record's verified one now); else roll back (unless disabled) and verify.

    An interrupted run restores first (a cancelled CI job may be killed seconds later); a
    failed run has its diagnostics collected before the failing pods are replaced. A lost
    lease skips the restore (LockLost: another gate owns the target). RollbackFailed when the
    restore or its checks fail.
    """
    cfg, run, tracker, rb = rel.cfg, rel.run, rel.tracker, rel.run.rollback
    if not run.failed and rel.handoff is not None:
        # One cluster of a release across several: it stands only when every cluster's does.
        rel.say(f"rolloutgate: passed; waiting for the wave runner's word ({rel.handoff.cluster})")
        rel.handoff.ready(run.cause)
        run.aborted = rel.handoff.wait(time.monotonic() + HANDOFF_WAIT_S)
        if run.aborted is not None:
            rel.say(f"rolloutgate: rolling back: {run.aborted}")
    if tracker is not None:
        tracker.interrupt_on_loss = False
    if not run.failed:
        rb.outcome = "not needed"
        if tracker is not None:
            with rel.step(None, cfg.timeouts.api):
                tracker.verified("verified", rel.objects, cfg.image_tag)
        return
    rb.needed = True
    if tracker is not None and tracker.lost:
        _lock_lost(rel)
    if run.early_restore is None and run.interrupted is None and run.aborted is None:
        # Before the failing pods are replaced: gathered since the first failure, in a thread.
        diag.done(rel)
    if not cfg.rollback:
        rb.enabled = False
        rb.outcome = (
            f"disabled ({cfg.sources.get('rollback')}): the failed release is left in place"
        )
        rel.record_step("left-failed")
        return
    golden = _golden_or_note(rel, "rollback")
    with signals_deferred(rel.say), rel.step(None, cfg.timeouts.rollback):
        try:
            if run.early_restore is None:  # else restore_now did these steps
                if tracker is not None:
                    try:
                        tracker.ensure_held()  # read fresh: never restore over another gate
                    except LockLost:
                        _lock_lost(rel)
                    tracker.step("rolling-back")
                rb.outcome = (
                    f"in progress: restoring the snapshot (previous tag {_snap(rel).tag()})"
                )
                rel.checkpoint()
            try:
                roll_back(rel, golden)
            except RollbackFailed as e:
                if not isinstance(e.__cause__, ClusterUnreachable) and tracker is not None:
                    tracker.step("rollback-failed")
                    # The record is unfinished: say what puts the last verified release back
                    # (an outage longer than the rollback's deadline ends here too).
                    rb.outcome = f"{rb.outcome}. {restores(rel)}"
                    raise RollbackFailed(rb.outcome) from e.__cause__
                raise
            if tracker is not None:
                restored = [live for _manifest, live in _snap(rel).objects if live is not None]
                tracker.verified("rolled-back", restored, _snap(rel).tag())
        except ClusterUnreachable as e:
            _unfinished(rel, e)
        except RollbackFailed as e:
            if isinstance(e.__cause__, ClusterUnreachable):
                _unfinished(rel, e.__cause__)
            raise
        finally:
            rel.say(f"rolloutgate: {rb.outcome}")
            if run.interrupted is None and run.aborted is None:
                diag.done(rel)  # gathered beside the restore: done by now, mostly


def fail_fast(rel: Release, error: GateError) -> None:
    """A failed rollout: the diagnostics started, then the restore submitted at once, beside
    them (``finish`` waits for it and verifies). The verdict needs nothing more than the status
    the watch saw; the failing pods' logs and events are read while the old release comes back.
    A failure to submit is only noted: ``finish`` restores again and reports its own failure."""
    diag.gather(rel, getattr(error, "pod", None), getattr(error, "container", None))
    why = f"at the rollout's verdict ({getattr(error, 'reason', type(error).__name__)})"
    try:
        _restore_early(rel, why)
    except Exception as e:  # the verdict must not be replaced by an error of the early restore
        rel.run.notes.append(f"the restore {why} failed ({type(e).__name__}: {e}); tried again")


def restore_now(rel: Release) -> None:
    """The restore of an interrupted run, submitted at once.

    Called from the interrupt hook: before pytest formats the interrupt's traceback (with every
    frame's arguments) and tears the fixtures down, which together took ~2 s here, a good part
    of what a cancelled CI job has before SIGKILL. Writes the record's step and the report
    (rollback in progress) first. The wait and the verification stay with ``finish``, which
    skips the restore it finds done (``run.early_restore``). A failure here is only noted:
    ``finish`` restores again, and reports its own failure.
    """
    _restore_early(rel, "on the interrupt")


def _restore_early(rel: Release, why: str) -> None:
    """Submit the restore now (``restore_now``, ``fail_fast``); ``finish`` waits and verifies."""
    cfg, run, tracker, rb = rel.cfg, rel.run, rel.tracker, rel.run.rollback
    if not cfg.rollback or cfg.verify or run.early_restore is not None or rel.snap is None:
        return
    if tracker is not None:
        tracker.interrupt_on_loss = False
        if tracker.lost:
            return  # finish says why nothing is restored
    previous = rel.snap.tag()
    try:
        with rel.step(None, cfg.timeouts.rollback) as deadline:
            if tracker is not None:
                tracker.ensure_held()
                tracker.step("rolling-back")
            rb.needed = True
            rb.outcome = f"in progress: restoring the snapshot (previous tag {previous})"
            rel.checkpoint()
            rel.say(f"rollback: restoring the snapshot {why} (previous tag {previous})")
            with run.phase("rollback"):
                baseline = rel.pod_baseline(rel.objects)
                rb.actions = rollback.restore(rel.api, cfg.namespace, rel.snap, deadline=deadline)
    except GateError as e:
        run.notes.append(f"the restore {why} failed ({e}); tried again at teardown")
        return
    run.early_restore = baseline
    rb.restored_at = time.time()
    if run.interrupted_at is not None:
        rb.restored_after_interrupt_s = round(time.monotonic() - run.interrupted_at, 3)


def roll_back(rel: Release, golden: Golden | None) -> None:
    """Restore the snapshot, wait for it, and prove it healthy; the outcome goes in
    ``run.rollback``.

    Per object: what existed is restored, what this release created is deleted (and must be
    gone). The wait is on exactly the workloads that exist after the restore; with none (no
    workload existed before), there is nothing to serve and the deletions are the proof. The
    endpoint is checked when what serves it existed before (``prepare.endpoint_restored``).
    RollbackFailed when the restore, its rollout or its checks fail.
    """
    cfg, run, snap, rb = rel.cfg, rel.run, _snap(rel), rel.run.rollback
    api, namespace = rel.api, cfg.namespace
    rb.attempted = True
    deadline = time.monotonic() + cfg.timeouts.rollback
    previous = snap.tag()
    rel.say(f"rollback: restoring the snapshot taken before apply (previous tag {previous})")
    done = "nothing to check"
    try:
        with run.phase("rollback"):
            # The restored release is judged on what happens after the restore only.
            if run.early_restore is not None:  # submitted by restore_now on the interrupt
                baseline = run.early_restore
            else:
                baseline = rel.pod_baseline(rel.objects)
                rb.actions = rollback.restore(api, namespace, snap, deadline=deadline)
                rb.restored_at = time.time()
                if run.interrupted_at is not None:
                    since = time.monotonic() - run.interrupted_at
                    rb.restored_after_interrupt_s = round(since, 3)
            for _manifest, before in snap.objects:
                if before is not None and is_workload(before):
                    rb.actions += viewer_for(before).after_restore(
                        api, namespace, before, deadline=deadline
                    )
            left = rollback.still_present(api, namespace, snap.created())
        if left:
            raise RollbackFailed(f"objects this release created are still present: {left}")
        restored = workloads(snap.existing())
        problems: list[str] = []
        if restored:
            with run.phase("rollback_rollout"):
                live = rel.wait(restored, deadline=deadline, pin=False, baseline=baseline)
            done = "rollout of " + ", ".join(ref(w) for w in restored)
            missing = prepare.endpoint_restored(cfg, rel.objects, snap)
            if missing is None:
                with run.phase("rollback_verify"):
                    problems = checks.problems(
                        api,
                        cfg,
                        rel.objects,
                        live,
                        golden,
                        deadline,
                        say=rel.tell,
                        note=rel.note,
                    )
                done = "health and golden checks" if golden else "health checks"
            else:
                run.notes.append(f"rollback: endpoint not checked: {missing}")
    except RollbackFailed as e:
        rb.outcome = f"rollback to {previous} FAILED: {e}"
        raise
    except Exception as e:  # whatever broke, the outcome must be recorded
        rb.outcome = f"rollback to {previous} FAILED: {type(e).__name__}: {e}"
        raise RollbackFailed(rb.outcome) from e
    if problems:
        rb.outcome = f"rolled back to {previous}, but it FAILS its checks: " + "; ".join(problems)
        raise RollbackFailed(rb.outcome)
    rb.verified = True
    rb.verified_at = time.time()
    created = len(snap.created())
    removed = f"removed the {created} object(s) it created, verified gone" if created else ""
    if not restored:
        rb.outcome = f"no workload existed before the release: {removed or 'nothing to remove'}"
        return
    rb.outcome = f"rolled back to {previous}, verified ({done} passed)" + (
        f"; {removed}" if removed else ""
    )


def recover(rel: Release) -> None:
    """Restore the record's target, wait for it, run the health and golden checks against it;
    the outcome goes in ``run.recovery``. The target comes from the record, never from what is
    live: a half-done release found on the cluster is not one to go back to. ConfigError
    without a record; RecoveryFailed when the restore or its checks fail (the record then
    still says unfinished)."""
    cfg, run, tracker = rel.cfg, rel.run, rel.tracker
    found = (tracker.current or tracker.found) if tracker is not None else None
    if tracker is None or not found or not found.get("target"):
        name = tracker.name if tracker is not None else "(none: a dry run reads only)"
        raise ConfigError(
            f"nothing to recover in {cfg.namespace}: no release record (configmap {name}) "
            "with a restore target; a gate writes one before its first apply"
        )
    target = found["target"]
    what = describe_target(target)
    rec = run.recovery = Rollback(needed=True, attempted=True)
    golden = _golden_or_note(rel, "recovery")
    rel.say(f"rolloutgate: recovery: restoring the last verified release: {what}")
    interrupts: list[str] = []
    try:
        with run.phase("recovery"), rel.step(None, cfg.timeouts.rollback) as deadline:
            snap = target_snapshot(found, cfg.namespace)
            tracker.ensure_held()
            tracker.step("recovering")
            with signals_deferred(rel.say, "recovery") as interrupts:
                rec.actions = rollback.restore(rel.api, cfg.namespace, snap, deadline=deadline)
                restored = [live for _manifest, live in snap.objects if live is not None]
                if restored:
                    live = rel.wait(restored, deadline=deadline, pin=False)
                    problems = checks.problems(
                        rel.api,
                        cfg,
                        restored,
                        live,
                        golden,
                        deadline,
                        say=rel.tell,
                        note=rel.note,
                    )
                else:
                    left = rollback.still_present(
                        rel.api, cfg.namespace, [m for m, _live in snap.objects]
                    )
                    problems = [f"{obj} still present" for obj in left]
                if problems:
                    raise RecoveryFailed("; ".join(problems))
                tracker.verified("verified", restored, target.get("tag"))
    except ClusterError as e:
        cause = str(e) if isinstance(e, RollbackFailed) else f"{type(e).__name__}: {e}"
        rec.outcome = f"recovery to {what} FAILED: {cause}. {restores(rel)}"
        rel.say(f"rolloutgate: recovery: {rec.outcome}")
        raise RecoveryFailed(rec.outcome) from e
    rec.verified = True
    done = "health and golden checks" if golden and restored else "health checks"
    if not restored:
        done = "its objects verified gone"
    rec.outcome = f"restored {what}; verified ({done} passed)"
    rel.say(f"rolloutgate: recovery: {rec.outcome}")
    _obey_deferred(rel, interrupts)


@contextmanager
def signals_deferred(write: Callable[[str], None], doing: str = "rollback") -> Iterator[list[str]]:
    """Keep Ctrl+C and SIGTERM from cutting a rollback, a recovery or a clean-up short; say so
    when one arrives. A half-done rollback is the worst state to leave a service in; SIGKILL
    still ends the run. Yields the names of the signals that arrived: a caller with more to do
    afterwards obeys them once done (``recover``). Signal handlers can only be set from the main
    thread; elsewhere this does nothing.
    """
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def note(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        received.append(name)
        write(
            f"rolloutgate: {name} received during {doing}; finishing the {doing} first "
            "(SIGKILL aborts it)"
        )

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _obey_deferred(rel: Release, received: list[str]) -> None:
    """The interrupt a recovery deferred, raised once it is done: the recovery runs before the
    release, and a cancelled job must stop there, not go on to apply the new release (a SIGTERM
    that met the recovery's rollout was noted, then forgotten: the gate released anyway)."""
    if not received:
        return
    rel.say(
        f"rolloutgate: stopping for the {received[0]} received during the recovery; "
        "nothing of this release was applied"
    )
    # As the interrupt hook reads them: "SIGTERM", or a Ctrl+C's bare KeyboardInterrupt.
    raise KeyboardInterrupt("SIGTERM" if received[0] == "SIGTERM" else "")


def _golden_or_note(rel: Release, what: str) -> Golden | None:
    """The golden cases for a rollback's or recovery's checks; a bad file is noted and the
    release is checked without them."""
    if rel._golden is None:
        return None
    try:
        return rel._golden()
    except ConfigError as e:
        rel.run.notes.append(f"{what} checked without golden cases: {e}")
        return None


def _snap(rel: Release) -> Snapshot:
    if rel.snap is None:
        raise RollbackFailed("no snapshot was taken: nothing to restore")
    return rel.snap


def _unfinished(rel: Release, e: ClusterUnreachable) -> NoReturn:
    """The API server did not answer within the rollback's deadline: the rollback could not be
    done, and the release record still says the release is unfinished. Said in one line, with
    what restores the last verified release."""
    rb = rel.run.rollback
    rb.outcome = (
        f"NOT DONE: the API server did not answer within the rollback timeout "
        f"({rel.cfg.timeouts.rollback:g} s; {e}). {restores(rel)}"
    )
    raise RollbackFailed(rb.outcome) from None


def restores(rel: Release) -> str:
    """What puts the last verified release back after a rollback or recovery that could not
    finish, as the release record says it (one sentence)."""
    tracker = rel.tracker
    found = (tracker.current or tracker.found or {}) if tracker is not None else {}
    step, target = found.get("step"), found.get("target")
    how = f"the next gate, or `pytest --cluster={rel.cfg.cluster} --recover`,"
    if record.unfinished(found):
        return (
            f"The release record still says step {step!r} (unfinished): {how} restores the "
            f"last verified release ({describe_target(target)})"
        )
    return (
        f"The release record says step {step!r} (finished): the last verified release is "
        f"{describe_target(target)}; `pytest --cluster={rel.cfg.cluster} --recover` restores it "
        "if need be"
    )


def _lock_lost(rel: Release) -> NoReturn:
    rb, tracker = rel.run.rollback, rel.tracker
    assert tracker is not None
    rb.outcome = (
        f"skipped: {tracker.lost_reason}. Another gate owns the target now: restoring this "
        "gate's snapshot would overwrite its release"
    )
    rel.say(f"rolloutgate: rollback {rb.outcome}")
    raise LockLost(f"lease lost: {tracker.lost_reason}; rollback skipped, target left as it is")
