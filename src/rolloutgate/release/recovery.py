"""Recovery: put the target back to the last verified release, and prove it healthy.

Run when a gate finds a release record left unfinished by a gate that is gone (killed,
OOM-killed, lost its runner), and by ``--recover``. The restore target comes from the record,
never from what is live: a half-done release found on the cluster is not a release to go
back to.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.checks.cases import Golden
from rolloutgate.config import GateConfig
from rolloutgate.errors import ClusterError, ConfigError, RollbackFailed
from rolloutgate.objects import ref
from rolloutgate.release import record, rollback
from rolloutgate.release import steps as gate
from rolloutgate.release.report import GateRun, Rollback
from rolloutgate.release.snapshot import Snapshot


class RecoveryFailed(RollbackFailed):
    """The last verified release could not be restored or does not pass its checks."""


def recover(
    api: ApiClient,
    cfg: GateConfig,
    run: GateRun,
    tracker: record.Tracker,
    golden: Callable[[], Golden],
    write: Callable[[str], None],
) -> None:
    """Restore the record's target, wait for it, run the health and golden checks against it;
    the outcome goes in ``run.recovery``. ConfigError without a record; RecoveryFailed when the
    restore or its checks fail (the record then still says unfinished)."""
    found = tracker.current or tracker.found
    if not found or not found.get("target"):
        raise ConfigError(
            f"nothing to recover in {cfg.namespace}: no release record "
            f"(configmap {tracker.name}) with a restore target; a gate writes one before its "
            "first apply"
        )
    target = found["target"]
    what = record.describe_target(target)
    rec = run.recovery = Rollback(needed=True, attempted=True)
    try:
        cases: Golden | None = golden()
    except ConfigError as e:
        cases = None
        run.notes.append(f"recovery checked without golden cases: {e}")
    deadline = time.monotonic() + cfg.timeouts.rollback
    write(f"rolloutgate: recovery: restoring the last verified release: {what}")
    try:
        with run.phase("recovery"), kube.patience(deadline, lambda m: write(f"rolloutgate: {m}")):
            snap = record.target_snapshot(found, cfg.namespace)
            tracker.ensure_held()
            tracker.step("recovering")
            with gate.signals_deferred(write):
                rec.actions = rollback.restore(api, cfg.namespace, snap, deadline=deadline)
                restored = [live for _manifest, live in snap.objects if live is not None]
                if restored:
                    live = gate.wait_rollouts(
                        api, cfg, restored, deadline=deadline, write=write, pin=False
                    )
                    problems = gate.verify_endpoint(api, cfg, restored, live, cases, deadline)
                else:
                    problems = _still_present(api, cfg.namespace, snap)
                if problems:
                    raise RecoveryFailed("; ".join(problems))
                tracker.verified("verified", restored, target.get("tag"))
    except ClusterError as e:
        cause = str(e) if isinstance(e, RollbackFailed) else f"{type(e).__name__}: {e}"
        rec.outcome = f"recovery to {what} FAILED: {cause}"
        write(f"rolloutgate: recovery: {rec.outcome}")
        raise RecoveryFailed(rec.outcome) from e
    rec.verified = True
    checks = "health and golden checks" if cases and restored else "health checks"
    if not restored:
        checks = "its objects verified gone"
    rec.outcome = f"restored {what}; verified ({checks} passed)"
    write(f"rolloutgate: recovery: {rec.outcome}")


def _still_present(api: ApiClient, namespace: str, snap: Snapshot) -> list[str]:
    left = []
    for manifest, _live in snap.objects:
        name = manifest["metadata"]["name"]
        live = kube.get(api, manifest["apiVersion"], manifest["kind"], name, namespace)
        if live is not None and not live["metadata"].get("deletionTimestamp"):
            left.append(f"{ref(manifest)} still present")
    return left
