"""A canary run: two fresh arms beside the live release, the same traffic to both, a judgement.

    read the live tag → the release's own lease (rolloutgate-<name>) → arms <name>-baseline
    (live tag) and <name>-canary (candidate), dry-run then applied → rollout waits (the gate's
    fail-fast rules, canary first) → health on every pod of both, a port-forward to each →
    traffic → judgement → both arms deleted (always, unless kept) → on a Pass with
    ``--promote``: the live tag read again, the release gate under the same lease → lease
    released

The arms (``arms``) are built from the same manifests as the release: same pod spec and
resources; only the name, the labels (so that no Service selects them: checked against the
namespace's Services before anything is created), the replica count and the image tag differ.
The live Deployment and its Service are only read, never written. What is measured on the
running arms (health, traffic, the servers' own metric) is ``measure``'s.

``--promote`` (on a Pass only) is ``promote``'s: the normal release gate, as a child process
that continues under the canary's lease; refused when the live tag changed during the run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.canary import promote, stats
from rolloutgate.canary.arms import arm_deployment, live_tag, remove_arms, start_arms
from rolloutgate.canary.config import CanaryConfig
from rolloutgate.canary.inputs import Inputs
from rolloutgate.canary.judge import Judgement, judge
from rolloutgate.canary.measure import measure
from rolloutgate.canary.metrics import METRICS, Metric
from rolloutgate.canary.observations import ARMS, Arm, Observations
from rolloutgate.canary.promote import Promotion
from rolloutgate.config import GateConfig
from rolloutgate.errors import ConfigError, GateError
from rolloutgate.kube import portforward
from rolloutgate.objects import name_of
from rolloutgate.phases import timed
from rolloutgate.release import apply, lock, prepare
from rolloutgate.release.ending import signals_deferred
from rolloutgate.workloads import template_images


@dataclass
class CanaryRun:
    """The record of one canary run; the reports are made from it."""

    cfg: GateConfig
    ccfg: CanaryConfig
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    started: float = field(default_factory=time.time)
    finished: float | None = None
    candidate_tag: str | None = None
    release: str | None = None  # the live Deployment's name
    baseline_tag: str | None = None
    arms: dict[Arm, str] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    obs: Observations = field(default_factory=Observations)
    judgement: Judgement | None = None
    seconds_to_verdict: float | None = None
    cleanup: list[str] = field(default_factory=list)
    interrupted: str | None = None
    notes: list[str] = field(default_factory=list)
    promotion: dict[str, Any] | None = None
    reach: str | None = None  # how the arms' pods were reached: "pod-ip" or "port-forward"
    # A ConfigError met on the cluster before any arm was created: exit status 4.
    usage_error: str | None = None
    _t0: float = field(default_factory=time.monotonic)

    def phase(self, name: str) -> AbstractContextManager[None]:
        """Time a phase; the time is recorded even when the phase fails."""
        return timed(self.phases, name)

    @property
    def verdict(self) -> str:
        if self.interrupted is not None:
            return "interrupted"
        if self.usage_error is not None:
            return "usage-error"
        return self.judgement.verdict if self.judgement else "inconclusive"


def error_judgement(reason: str) -> Judgement:
    """An infrastructure failure says nothing about the candidate: inconclusive."""
    metrics = [Metric(name, "nodata", reason) for name in METRICS]
    return Judgement("inconclusive", 0.0, reason, metrics, [reason])


def execute(
    api: ApiClient,
    cfg: GateConfig,
    ccfg: CanaryConfig,
    inputs: Inputs,
    write: Callable[[str], None],
    run: CanaryRun,
    promotion: Promotion | None = None,
) -> CanaryRun:
    """Run the whole canary on checked ``inputs``, and on a Pass the ``promotion`` when given;
    the outcome is in ``run``. A ConfigError
    found on the cluster (a Service that would select an arm, a live image without a tag) is
    ``run.usage_error``, raised before any arm is created. KeyboardInterrupt (Ctrl+C, SIGTERM)
    is re-raised after both arms are deleted."""
    ns = cfg.namespace
    try:
        dep = inputs.deployment
        name = dep["metadata"]["name"]
        run.candidate_tag, run.release = cfg.image_tag, name
        with run.phase("live"):
            live = kube.get(api, "apps/v1", "Deployment", name, ns)
        if live is None:
            run.obs.arm_failure["baseline"] = (
                f"no live release: deployment {ns}/{name} does not exist; deploy one with the "
                "gate first (the canary compares against what is live)"
            )
            run.judgement = judge(run.obs, ccfg.thresholds)
            return run
        run.baseline_tag = live_tag(live, cfg.images)
        if run.baseline_tag is None:
            raise ConfigError(
                f"the live deployment {ns}/{name} runs {template_images(live)}: no tag to "
                "start a baseline arm from (images pinned by digest are not supported)"
            )
        run.obs.same_model = (
            ccfg.same_model if ccfg.same_model is not None else run.baseline_tag == cfg.image_tag
        )
        run.obs.label_output = ccfg.label_output
        run.obs.items = dict(inputs.items)
        # The release's own lease, from before the first arm to the end of the promotion: no
        # release can change the baseline mid-run or slip in before the promotion.
        lease_name = prepare.lock_name(cfg, inputs.objects)
        with run.phase("lock"):
            lease = lock.acquire(
                api,
                ns,
                lease_name,
                holder=lock.default_holder(),
                duration_s=int(cfg.timeouts.lease),
                deadline=time.monotonic() + cfg.timeouts.lock,
                on_wait=write,
            )
        try:
            with lock.keep(api, lease) as keeper:
                _with_arms(api, cfg, ccfg, inputs, write, run)
                lost_before = list(keeper.lost)
                if promotion is not None and run.judgement and run.judgement.verdict == "pass":
                    with run.phase("promotion"):
                        run.promotion = _promote(api, cfg, ccfg, promotion, lease, write, run)
            if lost_before:
                run.notes.append(f"lease {lease_name} was lost during the run: {lost_before[0]}")
        finally:
            # After a promotion the gate has released it already (it is no longer ours).
            lock.release(api, lease)
    except KeyboardInterrupt as e:
        run.interrupted = str(e) or "Ctrl+C"
        raise
    except ConfigError as e:
        run.usage_error = str(e)
        run.judgement = error_judgement(f"usage error: {e}")
    except GateError as e:
        run.judgement = error_judgement(f"{type(e).__name__}: {e}")
    except Exception as e:
        # A bug or an unexpected client error: the run is inconclusive and says why; the
        # traceback still reaches the test report.
        run.judgement = error_judgement(f"internal error: {type(e).__name__}: {e}")
        raise
    finally:
        run.finished = time.time()
    return run


def _with_arms(
    api: ApiClient,
    cfg: GateConfig,
    ccfg: CanaryConfig,
    inputs: Inputs,
    write: Callable[[str], None],
    run: CanaryRun,
) -> None:
    ns = cfg.namespace
    dep = inputs.deployment
    tags: dict[Arm, str] = {"baseline": str(run.baseline_tag), "canary": str(cfg.image_tag)}
    bodies = {
        arm: arm_deployment(
            dep,
            arm,
            tag=tags[arm],
            images=cfg.images,
            replicas=ccfg.replicas,
            run_id=run.run_id,
        )
        for arm in ARMS
    }
    run.arms = {arm: bodies[arm]["metadata"]["name"] for arm in ARMS}
    services = kube.list_objects(api, "v1", "Service", ns).get("items") or []
    for arm, body in bodies.items():
        pod_labels = body["spec"]["template"]["metadata"]["labels"]
        pod = {"metadata": {"labels": pod_labels}}
        hits = [name_of(s) for s in services if portforward.selects(s, pod)]
        if hits:
            raise ConfigError(
                f"service(s) {', '.join(hits)} in {ns} would select the {arm} arm's pods "
                f"(labels {pod_labels}); nothing was created"
            )
    with run.phase("validate"):
        apply.validate(api, ns, list(bodies.values()))
    try:
        with run.phase("leftovers"):
            remove_arms(api, ns, run, deadline=time.monotonic() + ccfg.cleanup_timeout)
        # Leftovers of an earlier run (killed, or --keep-arms) are noted, not this run's cleanup.
        leftovers = [c for c in run.cleanup if "deleted" in c or "terminating" in c]
        if leftovers:
            run.notes.append("removed arms left by an earlier run: " + "; ".join(leftovers))
        run.cleanup.clear()
        write(
            f"canary: arms {run.arms['baseline']} ({tags['baseline']}) and "
            f"{run.arms['canary']} ({tags['canary']}), {ccfg.replicas} replica(s) each"
        )
        stats.import_in_background()  # while the arms start
        finals = start_arms(api, cfg, bodies, write, run)
        if finals is not None:
            measure(api, cfg, ccfg, inputs, finals, write, run)
        if run.judgement is None:
            with run.phase("judge"):
                run.judgement = judge(run.obs, ccfg.thresholds)
        run.seconds_to_verdict = round(time.monotonic() - run._t0, 3)
        write(
            f"canary verdict: {run.judgement.verdict.upper()} (score {run.judgement.score:g}) "
            f"after {run.seconds_to_verdict:.1f} s"
        )
    finally:
        if ccfg.keep_arms:
            run.cleanup.append(
                f"kept (--keep-arms): deployments {', '.join(run.arms.values())} in {ns}"
            )
        else:
            with signals_deferred(write), run.phase("cleanup"):
                remove_arms(api, ns, run, deadline=time.monotonic() + ccfg.cleanup_timeout)
            write("canary: " + "; ".join(run.cleanup))


def _promote(
    api: ApiClient,
    cfg: GateConfig,
    ccfg: CanaryConfig,
    how: Promotion,
    lease: lock.Lease,
    write: Callable[[str], None],
    run: CanaryRun,
) -> dict[str, Any]:
    """The release gate for the candidate, unless the live release changed since the canary
    started (its verdict was against what is no longer live)."""
    tag = str(cfg.image_tag)
    live = kube.get(api, "apps/v1", "Deployment", str(run.release), cfg.namespace)
    now = live_tag(live, cfg.images) if live is not None else None
    if now != run.baseline_tag:
        result = promote.refused(tag, run.baseline_tag, now)
        write(f"canary: promotion refused: {result['refused']}")
        return result
    return promote.promote(
        how,
        cfg,
        tag,
        lease,
        ccfg.report.with_name("promotion-gate.json"),
        write,
        timeout=promote.deadline_s(cfg),
    )
