"""The new release rolled out as applied: pinned revision, requested images, no restarts."""

from __future__ import annotations

from typing import Any

from rolloutgate.objects import ref
from rolloutgate.workloads import viewer_for, workloads

Obj = dict[str, Any]


def _applied(release: list[Obj], name: str) -> Obj:
    return next(d for d in workloads(release) if d["metadata"]["name"] == name)


def test_rollout_complete_at_applied_generation(
    rolloutgate_rollout: list[Obj], rolloutgate_release: list[Obj]
) -> None:
    for live in rolloutgate_rollout:
        name = live["metadata"]["name"]
        applied = _applied(rolloutgate_release, name)["metadata"]["generation"]
        meta, status = live["metadata"], live.get("status") or {}
        # Another writer between apply and now would leave us checking someone else's release.
        assert meta["generation"] == applied, (
            f"{ref(live)}: generation {meta['generation']}, applied {applied}: "
            "changed by someone else during the gate"
        )
        assert status.get("observedGeneration") == applied, (
            f"{ref(live)}: controller observed generation "
            f"{status.get('observedGeneration')}, applied {applied}"
        )
        # The kind's own rollout rules (kubectl rollout status), on the last state seen.
        verdict = viewer_for(live).status(live, None)
        assert verdict.done, f"{ref(live)}: {verdict.message}"


def test_every_container_runs_the_requested_image(
    rolloutgate_workload_pods: dict[str, list[Obj]], rolloutgate_release: list[Obj]
) -> None:
    """Per workload: its pods run the images its applied template asks for, container by
    container (two workloads may name their containers alike)."""
    for applied in workloads(rolloutgate_release):
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


def test_no_restarts_in_new_pods(rolloutgate_pods: list[Obj]) -> None:
    restarted = [
        f"{pod['metadata']['name']}/{cs['name']}: {cs['restartCount']} restarts "
        f"(last: {cs.get('lastState') or 'unknown'})"
        for pod in rolloutgate_pods
        for cs in (pod.get("status") or {}).get("containerStatuses") or []
        if cs.get("restartCount", 0) > 0
    ]
    assert not restarted, "containers of the new release restarted: " + "; ".join(restarted)
