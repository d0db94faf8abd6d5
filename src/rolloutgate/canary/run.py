"""A canary run: two fresh arms beside the live release, the same traffic to both, a judgement.

    read the live tag → the release's own lease (rolloutgate-<name>) → arms <name>-baseline
    (live tag) and <name>-canary (candidate), dry-run then applied → rollout waits (the gate's
    fail-fast rules, canary first) → health on every pod of both, a port-forward to each →
    traffic → judgement → both arms deleted (always, unless kept) → on a Pass with
    ``--promote``: the live tag read again, the release gate under the same lease → lease
    released

The arms are built from the same manifests as the release: same pod spec and resources; only
the name, the labels (so that no Service selects them: checked against the namespace's
Services before anything is created), the replica count and the image tag differ. The live
Deployment and its Service are only read, never written.

``--promote`` (on a Pass only) is ``promote``'s: the normal release gate, as a child process
that continues under the canary's lease; refused when the live tag changed during the run.
"""

from __future__ import annotations

import copy
import random
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from typing import Any

import requests
from kubernetes.client import ApiClient

from rolloutgate import kube, manifests
from rolloutgate.canary import promote
from rolloutgate.canary.config import CanaryConfig
from rolloutgate.canary.inputs import Inputs
from rolloutgate.canary.judge import Judgement, judge
from rolloutgate.canary.latency import sample_size
from rolloutgate.canary.metrics import METRICS, Metric
from rolloutgate.canary.observations import ARMS, Arm, Observations, PodTiming
from rolloutgate.canary.promote import Promotion
from rolloutgate.canary.traffic import Traffic, plan
from rolloutgate.checks import cases
from rolloutgate.checks.cases import Golden
from rolloutgate.checks.client import EndpointUnreachable, wait_answering
from rolloutgate.checks.metrics import duration_totals
from rolloutgate.config import GateConfig
from rolloutgate.errors import ConfigError, GateError, RolloutFailed
from rolloutgate.kube import portforward
from rolloutgate.objects import is_deleting, is_ready, name_of
from rolloutgate.phases import timed
from rolloutgate.release import apply, lock, prepare, rollout, verify
from rolloutgate.release.ending import signals_deferred
from rolloutgate.workloads import image_names, template_images

Obj = dict[str, Any]

OF_LABEL = "rolloutgate.io/canary-of"  # the Deployment an arm is a copy of
ARM_LABEL = "rolloutgate.io/canary-arm"  # baseline | canary
RUN_LABEL = "rolloutgate.io/canary-run"  # this run's id (not in the selector: immutable)
CANDIDATE_ANNOTATION = "rolloutgate.io/canary-tag"
# Exits per container an arm's rollout forgives: on a busy node a model server's start can miss
# its liveness probe's minute and be killed once (exit 137; seen on both arms of A/A runs at
# load average 13-18, three canaries starting at once). A crashing candidate still fails on its
# second exit, ~10 s later (the kubelet's first back-off); restarts during the traffic still
# fail the run (stability).
ARM_START_RESTARTS = 1
# Rollout failures that are the cluster's, not the candidate's: both arms ask for the same
# resources, so a full node says nothing about the candidate (inconclusive, not fail).
ENVIRONMENT_REASONS = frozenset({"Unschedulable"})


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


# ---------------------------------------------------------------------------------------------
# Pure parts: the arms' objects, who selects them, the live tag.


def arm_labels(name: str, arm: Arm) -> dict[str, str]:
    """The selector of an arm: stable across runs (a Deployment's selector is immutable)."""
    return {OF_LABEL: name, ARM_LABEL: arm}


def arm_deployment(
    dep: Obj, arm: Arm, *, tag: str, images: tuple[str, ...] | None, replicas: int, run_id: str
) -> Obj:
    """A copy of Deployment ``dep`` as an arm: ``<name>-<arm>``, own labels only (so no
    Service selecting the release selects it), ``replicas``, image tag ``tag``."""
    name = dep["metadata"]["name"]
    body = manifests.set_image_tag([copy.deepcopy(dep)], tag, images or image_names([dep]))[0]
    labels = arm_labels(name, arm)
    meta = body.setdefault("metadata", {})
    meta["name"] = f"{name}-{arm}"
    meta["labels"] = {**labels, RUN_LABEL: run_id}
    meta.setdefault("annotations", {})[CANDIDATE_ANNOTATION] = tag
    meta.pop("namespace", None)
    spec = body.setdefault("spec", {})
    spec["replicas"] = replicas
    spec["selector"] = {"matchLabels": dict(labels)}
    template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
    template_meta["labels"] = {**labels, RUN_LABEL: run_id}
    return body


def live_tag(live: Obj, images: tuple[str, ...] | None) -> str | None:
    """The tag of the live Deployment's first container whose image is one the gate tags."""
    for spec in manifests.pod_specs(live):
        for c in manifests.containers(spec):
            ref = manifests.ImageRef.parse(str(c.get("image") or ""))
            if images is None or ref.name in {manifests.ImageRef.parse(i).name for i in images}:
                return ref.tag
    return None


def pod_restarts(pods: list[Obj]) -> int:
    return sum(
        int(cs.get("restartCount") or 0)
        for p in pods
        for cs in (p.get("status") or {}).get("containerStatuses") or []
    )


def error_judgement(reason: str) -> Judgement:
    """An infrastructure failure says nothing about the candidate: inconclusive."""
    metrics = [Metric(name, "nodata", reason) for name in METRICS]
    return Judgement("inconclusive", 0.0, reason, metrics, [reason])


# ---------------------------------------------------------------------------------------------
# The run.


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
            _remove_arms(api, ns, run, deadline=time.monotonic() + ccfg.cleanup_timeout)
        # Leftovers of an earlier run (killed, or --keep-arms) are noted, not this run's cleanup.
        leftovers = [c for c in run.cleanup if "deleted" in c or "terminating" in c]
        if leftovers:
            run.notes.append("removed arms left by an earlier run: " + "; ".join(leftovers))
        run.cleanup.clear()
        write(
            f"canary: arms {run.arms['baseline']} ({tags['baseline']}) and "
            f"{run.arms['canary']} ({tags['canary']}), {ccfg.replicas} replica(s) each"
        )
        finals = _start_arms(api, cfg, bodies, write, run)
        if finals is not None:
            _measure(api, cfg, ccfg, inputs, finals, write, run)
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
                _remove_arms(api, ns, run, deadline=time.monotonic() + ccfg.cleanup_timeout)
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


def _start_arms(
    api: ApiClient,
    cfg: GateConfig,
    bodies: dict[Arm, Obj],
    write: Callable[[str], None],
    run: CanaryRun,
) -> dict[Arm, Obj] | None:
    """Apply and wait for one arm after the other, canary first (a broken candidate fails in
    seconds, and no baseline is started for it). One at a time: a model server's start takes
    CPU, and six starting at once on a busy 2-core node did not open their port within the
    liveness probe's minute — the kubelet killed them (exit 137) and an A/A run failed on it."""
    deadline = time.monotonic() + cfg.timeouts.rollout
    finals: dict[Arm, Obj] = {}
    for arm in ("canary", "baseline"):
        with run.phase("apply"):
            (applied,) = apply.apply(
                api,
                cfg.namespace,
                [bodies[arm]],
                change_cause=f"rolloutgate canary run {run.run_id}",
            )
        with run.phase("rollout"):
            try:
                (finals[arm],) = rollout.wait(
                    api,
                    cfg.namespace,
                    [applied],
                    deadline=deadline,
                    max_restarts=max(cfg.max_restarts, ARM_START_RESTARTS),
                    on_progress=write,
                )
            except RolloutFailed as e:
                if e.reason in ENVIRONMENT_REASONS:
                    run.obs.environment.append(f"the {arm} arm could not be scheduled: {e}")
                else:
                    run.obs.arm_failure[arm] = f"{e.reason}: {e}"
                return None
    return finals


def _measure(
    api: ApiClient,
    cfg: GateConfig,
    ccfg: CanaryConfig,
    inputs: Inputs,
    finals: dict[Arm, Obj],
    write: Callable[[str], None],
    run: CanaryRun,
) -> None:
    """Health on every pod of both arms, then the traffic, spread over all of them through a
    port-forward to each; the servers' own duration metric read per pod before and after."""
    ns = cfg.namespace
    port, golden = inputs.port, inputs.golden
    with ExitStack() as stack:
        urls: dict[Arm, dict[str, str]] = {}
        pods: dict[Arm, list[Obj]] = {}
        deadline = time.monotonic() + cfg.timeouts.endpoint
        with run.phase("health"):
            for arm in ("canary", "baseline"):
                pods[arm] = verify.release_pods(api, ns, finals[arm])
                ready = [p for p in pods[arm] if is_ready(p) and not is_deleting(p)]
                if not ready:
                    run.obs.arm_failure[arm] = f"no ready pod of {run.arms[arm]}"
                    return
                urls[arm] = {}
                for pod in ready:
                    number = portforward.container_port(pod, port)
                    url = stack.enter_context(portforward.pod_forward(api, ns, pod, number))
                    problem = _health(url, golden, cfg, deadline)
                    if problem:
                        run.obs.arm_failure[arm] = f"health of pod {name_of(pod)}: {problem}"
                        return
                    urls[arm][name_of(pod)] = url
        server = _ServerMetrics.open(api, cfg, ccfg, ready_pods=pods, urls=urls, stack=stack)
        before = {arm: pod_restarts(pods[arm]) for arm in ARMS}
        rng = random.Random(ccfg.seed)
        schedule = plan(run.obs.items, requests=ccfg.requests, warmup=ccfg.warmup, rng=rng)
        write(
            f"canary traffic: {ccfg.warmup} warm-up + {ccfg.requests} measured requests per "
            f"arm over {', '.join(f'{len(urls[a])} {a}' for a in ARMS)} pod(s), "
            f"{len(run.obs.items)} distinct inputs, concurrency {ccfg.concurrency}, over at "
            f"least {ccfg.min_duration:g} s"
        )

        def traffic(min_duration: float, path_every: int) -> Traffic:
            return Traffic(
                lambda arm, pod: cases.client_for(urls[arm][pod], golden, cfg),
                run.obs,
                pods={arm: list(urls[arm]) for arm in ARMS},
                path_every=path_every,
                concurrency=ccfg.concurrency,
                request_timeout=cfg.request_timeout,
                max_consecutive_errors=ccfg.thresholds.max_consecutive_errors,
                canary_failing_streak=ccfg.thresholds.failing_streak,
                seed=ccfg.seed,
                min_duration=min_duration,
                progress=write,
            )

        end = time.monotonic() + ccfg.traffic_timeout
        with run.phase("traffic"):
            # The warm-up first, unspread: it is discarded, and it sizes what follows.
            traffic(0.0, 0).run([e for e in schedule if e[1]], deadline=end)
            size = sample_size(
                run.obs, ccfg.thresholds, min(map(len, urls.values())), ccfg.requests
            )
            write(f"canary {size}")
            run.notes.append(size)
            first = server.read(write) if server else None
            # A canary that failed the warm-up's streak has failed: nothing more to measure.
            if not run.obs.stopped and run.obs.canary_failing is None:
                traffic(ccfg.min_duration, PATH_EVERY).run(
                    [e for e in schedule if not e[1]], deadline=end
                )
            last = server.read(write) if server and first else None
            if server and first and last:
                run.obs.server_metric = server.metric
                run.obs.server = {
                    arm: [
                        PodTiming(pod, last[arm][pod][0] - c0, last[arm][pod][1] - s0)
                        for pod, (c0, s0) in first[arm].items()
                        if pod in last[arm]
                    ]
                    for arm in ARMS
                }
        if run.obs.late:
            run.notes.append(f"{run.obs.late} answers came after the traffic had ended: not judged")
        for arm in ARMS:
            now = verify.release_pods(api, ns, finals[arm])
            run.obs.restarts[arm] = max(0, pod_restarts(now) - before[arm])


# Every 4th measured request is followed by a request that does no model work on the same pods:
# enough to tell the path's share each run (50 per 200), little extra load.
PATH_EVERY = 4


@dataclass
class _ServerMetrics:
    """The servers' own duration metric (``canary.latency_metric``) on every pod of both arms,
    read where the gate's ``metrics`` setting says (its path, port and labels)."""

    metric: str
    path: str
    labels: tuple[tuple[str, str], ...]
    urls: dict[Arm, dict[str, str]]
    timeout: float

    @classmethod
    def open(
        cls,
        api: ApiClient,
        cfg: GateConfig,
        ccfg: CanaryConfig,
        *,
        ready_pods: dict[Arm, list[Obj]],
        urls: dict[Arm, dict[str, str]],
        stack: ExitStack,
    ) -> _ServerMetrics | None:
        if not ccfg.latency_metric:
            return None
        check = cfg.metrics
        metric_urls: dict[Arm, dict[str, str]] = {arm: {} for arm in ARMS}
        for arm in ARMS:
            for pod in ready_pods[arm]:
                name = name_of(pod)
                if name not in urls[arm]:
                    continue
                if check is None or check.port is None:
                    metric_urls[arm][name] = urls[arm][name]  # the serving port itself
                else:
                    number = portforward.container_port(pod, check.port)
                    metric_urls[arm][name] = stack.enter_context(
                        portforward.pod_forward(api, cfg.namespace, pod, number)
                    )
        return cls(
            ccfg.latency_metric,
            check.path if check else "/metrics",
            check.labels if check else (),
            metric_urls,
            cfg.request_timeout,
        )

    def read(
        self, write: Callable[[str], None]
    ) -> dict[Arm, dict[str, tuple[float, float]]] | None:
        """(count, sum) per pod per arm; None (said why) when a pod does not export it: the
        latency is then judged client-side."""
        found: dict[Arm, dict[str, tuple[float, float]]] = {arm: {} for arm in ARMS}
        for arm, by_pod in self.urls.items():
            for pod, url in by_pod.items():
                try:
                    response = requests.get(url + self.path, timeout=self.timeout)
                    totals = (
                        duration_totals(response.text, self.metric, self.labels)
                        if response.ok
                        else None
                    )
                except (requests.RequestException, ValueError) as e:
                    write(f"canary: {self.metric} of pod {pod} not read ({e}); judged client-side")
                    return None
                if totals is None:
                    write(
                        f"canary: pod {pod} exports no summary or histogram {self.metric} at "
                        f"{self.path} (HTTP {response.status_code}); latency judged client-side"
                    )
                    return None
                found[arm][pod] = totals
        return found


def _health(url: str, golden: Golden, cfg: GateConfig, deadline: float) -> str | None:
    """What is wrong with the health of the arm at ``url`` (None: healthy): the gate's health
    checks (settings, then the golden file's, then its protocol's), with its credentials."""
    with cases.client_for(url, golden, cfg) as client:
        try:
            wait_answering(client, deadline=deadline)
            problems = cases.check_health(client)
        except EndpointUnreachable as e:
            return str(e)
    return "; ".join(problems) or None


def _remove_arms(api: ApiClient, namespace: str, run: CanaryRun, *, deadline: float) -> None:
    """Delete both arms (whatever run created them) and watch until they are gone."""
    for arm in ARMS:
        name = run.arms[arm]
        try:
            existed = kube.delete(
                api, "apps/v1", "Deployment", name, namespace, propagation="Foreground"
            )
            if not existed:
                continue
            gone = kube.wait_gone(api, "apps/v1", "Deployment", name, namespace, deadline)
        except GateError as e:
            # The other arm must still be deleted; the failure is reported, not swallowed.
            run.cleanup.append(f"deployment {name}: NOT deleted: {e}")
            continue
        run.cleanup.append(
            f"deployment {name} deleted" if gone else f"deployment {name}: still terminating"
        )
    if not run.cleanup:
        run.cleanup.append("no arm to delete")
