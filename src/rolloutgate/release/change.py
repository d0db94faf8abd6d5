"""What a release changes: the live objects read first (recovering an unfinished release before
that), the plan and its server-side dry-run, the record of what is about to change, and the
apply; with ``--verify``, the live release taken in place of an applied one.

Functions over the engine (``engine.Release``), which calls them from its methods of the same
names, each under its step's deadline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rolloutgate.errors import ClusterError, ConfigError
from rolloutgate.objects import Obj, ref
from rolloutgate.release import apply as applying
from rolloutgate.release import autoscale, dryrun, lock, plan, prepare, record
from rolloutgate.release.snapshot import Snapshot, take
from rolloutgate.workloads import workloads

if TYPE_CHECKING:
    from rolloutgate.release.engine import Release


def snapshot(rel: Release) -> Snapshot:
    """The live objects the manifests touch, read before anything is applied: what a
    rollback restores. A release left unfinished by a gate that is gone (or ``--recover``)
    is recovered first, so the snapshot is a verified release, never the half-done one."""
    cfg, tracker = rel.cfg, rel.tracker
    if tracker is not None and (cfg.recover or record.unfinished(tracker.found)):
        rel.recover()
    elif cfg.recover:
        raise ConfigError("--recover needs the release record, and a dry run reads only")
    with rel.step("snapshot", cfg.timeouts.api):
        snap = take(rel.api, cfg.namespace, rel.objects)
    prepare.check_live(snap)
    rel.run.previous_tag = snap.tag()
    rel.run.first_deploy = snap.first_deploy
    rel.snap = snap
    return snap


def validate(rel: Release) -> plan.Plan:
    """The plan (paused workloads refused, HPA targets without replicas, configuration
    changes no rollout picks up) and a server-side dry-run of every object; then, in a
    real run, the release record says what is about to be applied."""
    cfg, api, run, snap = rel.cfg, rel.api, rel.run, _taken(rel)
    with rel.step("plan", cfg.timeouts.api):
        planned = plan.make(
            api,
            cfg.namespace,
            rel.objects,
            snap,
            restart_on_config_change=cfg.restart_on_config_change,
            namespace_exists=rel.namespace_exists,
        )
    for workload, hpa in planned.autoscaled.items():
        planned.notes.insert(
            0,
            f"{workload}: replicas left to {autoscale.HPA_KIND}/{hpa} "
            "(applied without spec.replicas)",
        )
    for note in planned.notes:
        rel.say(f"rolloutgate: {note}")
    run.notes.extend(planned.notes)
    with rel.step("validate", cfg.timeouts.api):
        if rel.namespace_exists:
            applying.validate(api, cfg.namespace, planned.objects)
            if cfg.dry_run:
                run.dry_run_diff = applying.diff(api, cfg.namespace, planned.objects)
        else:  # only in a dry run: a real run has created the namespace
            found = dryrun.validate(api, cfg.namespace, planned.objects)
            run.notes.extend(found.notes)
            run.dry_run_diff = found.diff
    if rel.tracker is not None and not cfg.dry_run:
        # Written before anything changes: a gate killed from here on leaves a record the
        # next gate recovers from.
        with rel.step(None, cfg.timeouts.api):
            rel.tracker.ensure_held()
            rel.tracker.begin(cfg.image_tag, snap, planned.objects)
        rel.tracker.interrupt_on_loss = True
    rel.planned = planned
    return planned


def apply(rel: Release) -> list[Obj]:
    """Hand spec.replicas of HPA targets over, then apply every object (server-side apply,
    change-cause on workloads); returns the applied objects. From here on the release is
    the run's to finish (``finish``)."""
    cfg, api, run = rel.cfg, rel.api, rel.run
    planned = rel.planned
    if planned is None:
        raise ConfigError("the release is not validated: validate() comes before apply()")
    run.applied = True
    if not_waited := prepare.not_waited(rel.objects):
        run.notes.append("applied, not waited for (not a workload kind): " + ", ".join(not_waited))
    with rel.step("apply", cfg.timeouts.api):
        # Only what happens to the pods from here on is held against the release.
        run.baseline = rel.pod_baseline(planned.objects)
        for obj in workloads(planned.objects):
            if ref(obj) in planned.autoscaled:
                autoscale.handover(api, cfg.namespace, obj)
        holder = rel.tracker.lease.holder if rel.tracker else lock.default_holder()
        applied = applying.apply(
            api,
            cfg.namespace,
            planned.objects,
            change_cause=prepare.change_cause(cfg, holder),
        )
    rel.record_step("rolling-out")
    rel.applied = applied
    return applied


def take_live(rel: Release) -> list[Obj]:
    """--verify: the live release in place of an applied one (nothing is validated,
    applied or rolled back), and what the record says of it: which release is live and
    whether a gate verified it. Only what happens to its pods from now on counts."""
    cfg, run, snap = rel.cfg, rel.run, _taken(rel)
    if snap.first_deploy:
        raise ClusterError(
            f"no workload of the manifests is live in {cfg.namespace} "
            f"({', '.join(ref(w) for w in workloads(rel.objects))}): nothing to verify"
        )
    name = record.record_name(prepare.lock_name(cfg, rel.objects))
    run.live_release = record.live_release(rel.found, snap.tag(), name)
    run.rollback.enabled = False
    run.rollback.outcome = "none: --verify applies nothing and rolls back nothing"
    rel.say(f"rolloutgate: verify-only: live release {run.live_release.text}")
    with rel.step(None, cfg.timeouts.api):
        run.baseline = rel.pod_baseline(snap.existing())
    rel.applied = snap.existing()
    return rel.applied


def _taken(rel: Release) -> Snapshot:
    if rel.snap is None:
        raise ConfigError("no snapshot: snapshot() comes before validate()")
    return rel.snap
