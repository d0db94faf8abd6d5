"""The arms of a canary run: their objects (copies of the release's Deployment with their own
name, labels, replicas and tag), the live tag they start from, their start side by side under
the gate's rollout rules, and their deletion.

The arms are built from the same manifests as the release: same pod spec and resources; only
the name, the labels (so that no Service selects them), the replica count and the image tag
differ.
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kubernetes.client import ApiClient

from rolloutgate import kube, manifests
from rolloutgate.canary.observations import ARMS, Arm
from rolloutgate.config import GateConfig
from rolloutgate.errors import GateError, RolloutFailed
from rolloutgate.release import apply, rollout
from rolloutgate.workloads import image_names

if TYPE_CHECKING:
    from rolloutgate.canary.run import CanaryRun

Obj = dict[str, Any]

OF_LABEL = "rolloutgate.io/canary-of"  # the Deployment an arm is a copy of
ARM_LABEL = "rolloutgate.io/canary-arm"  # baseline | canary
RUN_LABEL = "rolloutgate.io/canary-run"  # this run's id (not in the selector: immutable)
CANDIDATE_ANNOTATION = "rolloutgate.io/canary-tag"
# Exits per container an arm's rollout forgives: on a busy node a model server's start can miss
# its liveness probe's minute and be killed once (exit 137; seen on both arms of A/A runs at
# load average 13-18, three canaries starting at once; both arms' six start at once since
# 2026-12-03). A crashing candidate still fails on its second exit, ~10 s later (the kubelet's
# first back-off); restarts during the traffic still fail the run (stability).
ARM_START_RESTARTS = 1
# Rollout failures that are the cluster's, not the candidate's: both arms ask for the same
# resources, so a full node says nothing about the candidate (inconclusive, not fail).
ENVIRONMENT_REASONS = frozenset({"Unschedulable"})


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


def start_arms(
    api: ApiClient,
    cfg: GateConfig,
    bodies: dict[Arm, Obj],
    write: Callable[[str], None],
    run: CanaryRun,
) -> dict[Arm, Obj] | None:
    """Apply both arms, in a random order, and wait for both at once: their pods start side by
    side. One arm after the other made the arms differ: on our node the arm started first
    served 3-12 % slower through the whole traffic, whichever arm it was (A/A runs at load
    8-11: canary first, ratio 1.038 mean over 11 runs, 2 false alarms; baseline first, 0.937
    over 8; both at once, 0.981 over 8; docs/canary.md, "Which arm starts first"). A broken
    candidate still fails in seconds: the wait ends at the first arm that cannot come up."""
    deadline = time.monotonic() + cfg.timeouts.rollout
    order: list[Arm] = list(ARMS)
    random.Random(run.ccfg.seed).shuffle(order)
    applied: dict[Arm, Obj] = {}
    with run.phase("apply"):
        for arm in order:
            (applied[arm],) = apply.apply(
                api,
                cfg.namespace,
                [bodies[arm]],
                change_cause=f"rolloutgate canary run {run.run_id}",
            )
    with run.phase("rollout"):
        try:
            waited = rollout.wait(
                api,
                cfg.namespace,
                [applied[arm] for arm in ARMS],
                deadline=deadline,
                max_restarts=max(cfg.max_restarts, ARM_START_RESTARTS),
                on_progress=write,
            )
        except RolloutFailed as e:
            arm = failed_arm(e, run.arms)
            if e.reason in ENVIRONMENT_REASONS:
                run.obs.environment.append(f"the {arm} arm could not be scheduled: {e}")
            else:
                run.obs.arm_failure[arm] = f"{e.reason}: {e}"
            return None
    return dict(zip(ARMS, waited, strict=True))


def failed_arm(e: RolloutFailed, names: dict[Arm, str]) -> Arm:
    """The arm a failure of the wait for both arms is about: the one whose pod failed, else the
    baseline only when the message names it and not the canary (a timeout names every arm not
    ready; with both, the candidate is what the run is about). Pure."""
    for arm in ARMS:
        if e.pod is not None and e.pod.startswith(f"{names[arm]}-"):
            return arm
    text = str(e)
    return "baseline" if names["baseline"] in text and names["canary"] not in text else "canary"


def remove_arms(api: ApiClient, namespace: str, run: CanaryRun, *, deadline: float) -> None:
    """Delete both arms (whatever run created them), then watch until they are gone. Both
    deletes are sent before either wait: the arms' pods stop side by side (a model server's
    graceful stop took 4-12 s a pod on a loaded node, one arm after the other before)."""
    outcome: dict[Arm, str] = {}
    deleting: list[Arm] = []
    for arm in ARMS:
        name = run.arms[arm]
        try:
            if kube.delete(api, "apps/v1", "Deployment", name, namespace, propagation="Foreground"):
                deleting.append(arm)
        except GateError as e:
            # The other arm must still be deleted; the failure is reported, not swallowed.
            outcome[arm] = f"deployment {name}: NOT deleted: {e}"
    for arm in deleting:
        name = run.arms[arm]
        try:
            gone = kube.wait_gone(api, "apps/v1", "Deployment", name, namespace, deadline)
        except GateError as e:
            outcome[arm] = f"deployment {name}: NOT deleted: {e}"
            continue
        outcome[arm] = (
            f"deployment {name} deleted" if gone else f"deployment {name}: still terminating"
        )
    run.cleanup += [outcome[arm] for arm in ARMS if arm in outcome]
    if not run.cleanup:
        run.cleanup.append("no arm to delete")
