"""The new release rolled out as applied: pinned revision, requested images, no restarts."""

from __future__ import annotations

from typing import Any

from rolloutgate import GateConfig, Restarts, ref, viewer_for, workloads_in

Obj = dict[str, Any]


def _applied(release: list[Obj], name: str) -> Obj:
    return next(d for d in workloads_in(release) if d["metadata"]["name"] == name)


def test_rollout_complete_at_applied_generation(
    rolloutgate_rollout: list[Obj], rolloutgate_release: list[Obj]
) -> None:
    """Complete at the generation the gate applied, or at a later one that only scaled it
    (an HorizontalPodAutoscaler owns the replica count of the workloads it targets)."""
    for live in rolloutgate_rollout:
        name = live["metadata"]["name"]
        applied = _applied(rolloutgate_release, name)
        generation = applied["metadata"]["generation"]
        meta, spec, status = live["metadata"], live["spec"], live.get("status") or {}
        if meta["generation"] != generation:
            # Another writer between apply and now would leave us checking someone else's
            # release; a scale is not another release.
            changed = [
                key
                for key in sorted(set(spec) | set(applied["spec"]))
                if key != "replicas" and spec.get(key) != applied["spec"].get(key)
            ]
            assert not changed, (
                f"{ref(live)}: generation {meta['generation']}, applied {generation}: "
                f"spec.{', spec.'.join(changed)} changed by someone else during the gate"
            )
        assert status.get("observedGeneration") == meta["generation"], (
            f"{ref(live)}: controller observed generation "
            f"{status.get('observedGeneration')}, current {meta['generation']}"
        )
        # The kind's own rollout rules (kubectl rollout status), on the last state seen.
        verdict = viewer_for(live).status(live, None)
        assert verdict.done, f"{ref(live)}: {verdict.message}"


def test_every_container_runs_the_requested_image(
    rolloutgate_workload_pods: dict[str, list[Obj]], rolloutgate_release: list[Obj]
) -> None:
    """Per workload: its pods run the images its applied template asks for, container by
    container (two workloads may name their containers alike)."""
    for applied in workloads_in(rolloutgate_release):
        wanted = viewer_for(applied).images(applied)
        pods = rolloutgate_workload_pods.get(ref(applied)) or []
        assert pods, f"{ref(applied)}: no pod of the new release found"
        for pod in pods:
            where = f"{ref(applied)} pod {pod['metadata']['name']}"
            for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
                assert c["image"] == wanted.get(c["name"]), (
                    f"{where} container {c['name']}: image {c['image']}, "
                    f"requested {wanted.get(c['name'])}"
                )
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                # The runtime reports the normalised reference (docker.io/...): compare the tail.
                assert cs.get("image", "").endswith(wanted.get(cs["name"], "")), (
                    f"{where} container {cs['name']} runs {cs.get('image')}, "
                    f"requested {wanted.get(cs['name'])}"
                )


def test_workloads_ask_for_the_manifests_images(
    rolloutgate_rollout: list[Obj], rolloutgate_manifests: list[Obj]
) -> None:
    """The live workloads ask for the images the manifests name (with ``--image-tag``): after
    the gate's own apply, and with ``--verify`` after someone else's (a GitOps sync, kubectl),
    where a difference is drift from what the manifests say."""
    wanted = {ref(w): viewer_for(w).images(w) for w in workloads_in(rolloutgate_manifests)}
    for live in rolloutgate_rollout:
        images = viewer_for(live).images(live)
        assert images == wanted.get(ref(live)), (
            f"{ref(live)} asks for {images}, the manifests for {wanted.get(ref(live))}"
        )


def test_no_restarts_in_new_pods(
    rolloutgate_restarts: list[Restarts], rolloutgate_config: GateConfig
) -> None:
    """Counted since the apply: restarts a pod collected before (a node reboot, an old OOM kill)
    are not this release's. Up to ``--max-restarts`` exits per container are allowed (0 by
    default: none)."""
    allowed = rolloutgate_config.max_restarts
    restarted = [r.describe() for r in rolloutgate_restarts if r.exits > allowed]
    assert not restarted, (
        f"containers of the new release exited since the apply (more than --max-restarts "
        f"{allowed}): " + "; ".join(restarted)
    )
