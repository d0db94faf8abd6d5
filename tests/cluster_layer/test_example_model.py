"""The cluster layer end to end on an example model server (rolloutgate/penguin: its own paths,
a container named `server`, ready about a second after it starts), at one replica.

v1 → crash fails fast on CrashLoopBackOff, the snapshot is restored exactly and v1 answers
again through the port-forward; an unready release times out naming the failing probe.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes.client import ApiClient

from rolloutgate import kube, manifests
from rolloutgate.errors import RolloutFailed, RolloutTimeout
from rolloutgate.kube import portforward
from rolloutgate.release import apply, rollback, snapshot
from rolloutgate.workloads import workloads

from .conftest import REPO, missing, wait_deployment

MANIFESTS = REPO / "fixtures" / "penguin" / "manifests"
IMAGE = "rolloutgate/penguin"
NAME = "penguin"  # its Deployment and Service


@pytest.fixture(scope="module")
def penguin_tags(api: ApiClient) -> set[str]:
    nodes = kube.list_objects(api, "v1", "Node", None)["items"]
    names = {
        n
        for node in nodes
        for i in node["status"].get("images") or []
        for n in i.get("names") or []
    }
    tags = {n.rsplit(":", 1)[1] for n in names if n.startswith(f"docker.io/{IMAGE}:")}
    if not {"v1", "crash", "unready"} <= tags or not Path(MANIFESTS).is_dir():
        missing("example images not loaded in the cluster: run `make load-images`")
    return tags


def release(tag: str) -> list[dict[str, Any]]:
    objs = manifests.set_image_tag(manifests.load(MANIFESTS), tag, [IMAGE])
    for dep in workloads(objs):
        dep["spec"]["replicas"] = 1
    return objs


def deploy(api: ApiClient, namespace: str, tag: str) -> int:
    objs = release(tag)
    apply.validate(api, namespace, objs)
    applied = apply.apply(api, namespace, objs, change_cause=f"gate {tag}")
    return int(workloads(applied)[0]["metadata"]["generation"])


def test_crash_fails_fast_and_the_restored_v1_answers(
    api: ApiClient, namespace: str, penguin_tags: set[str]
) -> None:
    generation = deploy(api, namespace, "v1")
    wait_deployment(
        api, namespace, NAME, deadline=time.monotonic() + 180, max_restarts=2,
        generation=generation,
    )  # fmt: skip
    snap = snapshot.take(api, namespace, release("crash"))
    assert snap.tag() == "v1"

    generation = deploy(api, namespace, "crash")
    started = time.monotonic()
    with pytest.raises(RolloutFailed) as info:
        wait_deployment(
            api, namespace, NAME, deadline=started + 300, max_restarts=0,
            generation=generation,
        )  # fmt: skip
    assert info.value.reason == "CrashLoopBackOff"
    assert time.monotonic() - started < 120  # not the 600 s progress deadline

    rollback.restore(api, namespace, snap, deadline=time.monotonic() + 60)
    live = wait_deployment(api, namespace, NAME, deadline=time.monotonic() + 180, max_restarts=2)
    before = snap.live("Deployment", NAME)
    assert before is not None
    assert live["spec"]["template"] == before["spec"]["template"]
    assert live["spec"]["replicas"] == before["spec"]["replicas"]
    assert live["metadata"]["annotations"]["kubernetes.io/change-cause"] == "gate v1"
    with portforward.port_forward(
        api, namespace, NAME, "http", deadline=time.monotonic() + 30
    ) as url:
        assert requests.get(f"{url}/readyz", timeout=10).status_code == 200


def test_unready_times_out_naming_the_probe(
    api: ApiClient, namespace: str, penguin_tags: set[str]
) -> None:
    generation = deploy(api, namespace, "unready")
    with pytest.raises(RolloutTimeout) as info:
        wait_deployment(
            api, namespace, NAME, deadline=time.monotonic() + 20, max_restarts=2,
            generation=generation,
        )  # fmt: skip
    text = str(info.value)
    assert "0/1 new pods ready" in text
    assert "container server not ready (readiness probe failing: Readiness probe failed" in text
