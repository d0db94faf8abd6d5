"""Unschedulable pods against recorded autoscaler events and nodes."""

from __future__ import annotations

import pytest

from rolloutgate import kube
from rolloutgate.checks.podjudge import PodJudge
from rolloutgate.checks.scheduling import (
    LEFT_SETTLE_S,
    contention,
    decide,
    freed_by_leaving,
    leaving,
    no_autoscaler,
    nodes_down,
    pod_requests,
    too_big,
)
from rolloutgate.errors import ClusterUnreachable, Forbidden
from rolloutgate.objects import Obj

from .k8s_objects import pod

SCHEDULER = (
    "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod."
)

# As Cluster Autoscaler (and GKE) records them on the pod.
TRIGGERED: Obj = {
    "metadata": {"uid": "e1", "name": "iris-x.1"},
    "involvedObject": {"kind": "Pod", "name": "iris-7c9f-abcde", "uid": "p1"},
    "reason": "TriggeredScaleUp",
    "message": "pod triggered scale-up: [{https://www.googleapis.com/compute/v1/projects/p/"
    "zones/europe-west1-b/instanceGroups/gke-staging-pool-1 1->2 (max: 5)}]",
    "source": {"component": "cluster-autoscaler"},
    "type": "Normal",
    "firstTimestamp": "2026-11-27T10:00:12Z",
    "lastTimestamp": "2026-11-27T10:00:12Z",
}
NOT_TRIGGERED: Obj = {
    "metadata": {"uid": "e2", "name": "iris-x.2"},
    "involvedObject": {"kind": "Pod", "name": "iris-7c9f-abcde", "uid": "p1"},
    "reason": "NotTriggerScaleUp",
    "message": "pod didn't trigger scale-up: 1 max node group size reached, "
    "1 Insufficient nvidia.com/gpu",
    "source": {"component": "cluster-autoscaler"},
    "type": "Normal",
    "firstTimestamp": "2026-11-27T10:00:22Z",
    "lastTimestamp": "2026-11-27T10:00:22Z",
}
# Karpenter: a node claim is being launched for the pod.
NOMINATED: Obj = {
    "metadata": {"uid": "e3", "name": "iris-x.3"},
    "involvedObject": {"kind": "Pod", "name": "iris-7c9f-abcde", "uid": "p1"},
    "reason": "Nominated",
    "message": "Pod should schedule on: nodeclaim/default-x7k2p",
    "source": {"component": "karpenter"},
    "type": "Normal",
    "eventTime": "2026-11-27T10:00:03.120000Z",
}
NODE: Obj = {
    "metadata": {"name": "vm"},
    "status": {"allocatable": {"cpu": "2", "memory": "24000Mi", "pods": "110"}},
}


@pytest.fixture(autouse=True)
def _autoscaler_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Function, autouse: a judge with an API client cannot tell whether an autoscaler runs
    (kube-system unreadable), as with a Role in the namespace only; tests below change it."""

    def refused(*args: object, **kwargs: object) -> Obj:
        raise Forbidden("get configmaps kube-system/cluster-autoscaler-status: 403", status=403)

    monkeypatch.setattr(kube, "served_groups", lambda api: {"apps", "batch"})
    monkeypatch.setattr(kube, "get", refused)


def _pending(cpu: str = "500m", memory: str = "192Mi") -> Obj:
    p = pod(
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": SCHEDULER,
            }
        ]
    )
    p["metadata"]["uid"] = "p1"
    p["spec"] = {
        "containers": [
            {"name": "model", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
        ],
        "initContainers": [{"name": "fetch", "resources": {"requests": {"cpu": "1"}}}],
    }
    return p


def test_requests_sum_containers_and_take_the_largest_init_container() -> None:
    assert pod_requests(_pending("250m")) == {
        "cpu": 1,  # the init container's 1 CPU beats the container's 250m
        "memory": 192 * 1024 * 1024,
    }


def test_a_pod_larger_than_every_node() -> None:
    assert too_big(_pending("500m"), [NODE]) is None
    text = too_big(_pending("64"), [NODE]) or ""
    assert "vm (cpu 64 > 2)" in text
    assert too_big(_pending("64"), []) is None  # nodes unknown: no claim


def test_triggered_scale_up_waits_and_says_so_past_the_grace() -> None:
    d = decide(_pending(), SCHEDULER, [TRIGGERED], [NODE], unschedulable_for_s=300, grace_s=30)
    assert not d.failed
    assert d.message.startswith("waiting for a new node (TriggeredScaleUp: pod triggered")


def test_karpenter_nomination_waits() -> None:
    d = decide(_pending(), SCHEDULER, [NOMINATED], None, unschedulable_for_s=90, grace_s=30)
    assert (d.failed, d.message.split(" (")[0]) == (False, "waiting for a new node")


def test_not_trigger_scale_up_fails_naming_both_reasons() -> None:
    d = decide(
        _pending(), SCHEDULER, [TRIGGERED, NOT_TRIGGERED], [NODE], unschedulable_for_s=1, grace_s=30
    )
    assert d.failed
    assert "0/1 nodes are available: 1 Insufficient cpu" in d.message
    assert "will not add a node: pod didn't trigger scale-up: 1 max node group size" in d.message


def test_no_autoscaler_fails_after_the_grace_only() -> None:
    early = decide(_pending(), SCHEDULER, [], [NODE], unschedulable_for_s=5, grace_s=30)
    assert not early.failed
    assert "waiting up to 30 s for an autoscaler" in early.message
    late = decide(_pending(), SCHEDULER, [], [NODE], unschedulable_for_s=30, grace_s=30)
    assert late.failed
    assert "Insufficient cpu" in late.message
    assert "no autoscaler announced a scale-up within 30 s" in late.message


def test_too_big_fails_at_once_without_a_scale_up() -> None:
    d = decide(_pending("64"), SCHEDULER, [], [NODE], unschedulable_for_s=0, grace_s=30)
    assert d.failed
    assert "Insufficient cpu" in d.message
    assert "cpu 64 > 2" in d.message


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_judge_waits_for_the_autoscaler_event_then_past_the_grace() -> None:
    clock = _Clock()
    judge = PodJudge(None, "ml", max_restarts=0, nodes=[NODE], unschedulable_grace=30, clock=clock)
    p = _pending()
    assert judge.judge(p) is None
    assert judge.wants_events
    assert judge.pending()
    clock.now += 12
    assert judge.on_event(TRIGGERED) == "iris-7c9f-abcde"
    clock.now += 600
    assert judge.judge(p) is None
    assert judge.notes["iris-7c9f-abcde"].startswith("waiting for a new node (TriggeredScaleUp")
    judge.on_event(NOT_TRIGGERED)
    reason, message = judge.judge(p) or ("", "")
    assert reason == "Unschedulable"
    assert "didn't trigger scale-up" in message


def test_judge_without_autoscaler_fails_once_the_grace_is_over() -> None:
    clock = _Clock()
    judge = PodJudge(None, "ml", max_restarts=0, nodes=None, unschedulable_grace=15, clock=clock)
    p = _pending()
    assert judge.judge(p) is None
    clock.now += 14.9
    assert judge.judge(p) is None
    clock.now += 0.2
    assert (judge.judge(p) or ("",))[0] == "Unschedulable"


def test_judge_forgets_a_pod_once_scheduled() -> None:
    clock = _Clock()
    judge = PodJudge(None, "ml", max_restarts=0, nodes=[NODE], clock=clock)
    p = _pending()
    judge.judge(p)
    p["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"}]
    p["spec"]["nodeName"] = "vm"
    assert judge.judge(p) is None
    assert not judge.pending()


def test_nodes_that_cannot_be_listed_skip_the_size_check_and_say_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(*args: object, **kwargs: object) -> Obj:
        raise Forbidden("list nodes (cluster-wide): 403 forbidden", status=403)

    monkeypatch.setattr(kube, "list_objects", refused)
    clock = _Clock()
    judge = PodJudge(object(), "ml", max_restarts=0, unschedulable_grace=30, clock=clock)  # type: ignore[arg-type]
    assert judge.judge(_pending("64")) is None  # too big, but nobody can tell: the grace decides
    assert "cannot list Nodes" in judge.warnings[0]
    clock.now += 30
    assert (judge.judge(_pending("64")) or ("",))[0] == "Unschedulable"


def test_nodes_are_asked_again_after_no_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[Obj | Exception] = [ClusterUnreachable("no answer"), {"items": [NODE]}]

    def list_objects(*args: object, **kwargs: object) -> Obj:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(kube, "list_objects", list_objects)
    judge = PodJudge(object(), "ml", max_restarts=0, clock=_Clock())  # type: ignore[arg-type]
    assert judge.judge(_pending("64")) is None
    assert (judge.judge(_pending("64")) or ("",))[0] == "Unschedulable"


# A release blocked by its own old pods: every GPU of the node is theirs.

GPU = "nvidia.com/gpu"
GPU_SCHEDULER = (
    f"0/1 nodes are available: 1 Insufficient {GPU}. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod."
)
GPU_NODE: Obj = {
    "metadata": {"name": "gpu-1"},
    "status": {"allocatable": {"cpu": "8", "memory": "64Gi", GPU: "2"}},
}


def _gpu_pod(name: str, revision: str, *, node: str | None = None) -> Obj:
    p = pod()
    p["metadata"].update(name=name, uid=name, labels={"app": "llm", "pod-template-hash": revision})
    p["spec"] = {"containers": [{"name": "model", "resources": {"requests": {GPU: "1"}}}]}
    if node:
        p["spec"]["nodeName"] = node
        p["status"]["phase"] = "Running"
    else:
        p["status"]["conditions"] = [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": GPU_SCHEDULER}
        ]  # fmt: skip
    return p


NEW = _gpu_pod("llm-new-x", "new")
OLD = [_gpu_pod("llm-old-a", "old", node="gpu-1"), _gpu_pod("llm-old-b", "old", node="gpu-1")]


def test_contention_names_the_resource_the_counts_and_the_fix() -> None:
    found = contention(NEW, GPU_SCHEDULER, [NEW, *OLD], [GPU_NODE, NODE])
    assert found is not None
    assert (found.resource, found.wanted, found.held, found.allocatable) == (GPU, 1, 2, 2)
    assert found.text() == (
        f"it asks for 1 {GPU}, the nodes have 2 (gpu-1 (2)), and the release's own 2 old pod(s) "
        "hold 2 (llm-old-a (1), llm-old-b (1)), freed only after the new pods are ready. Fix: "
        "strategy.rollingUpdate maxSurge: 0 with maxUnavailable: 1 (one pod replaced at a time), "
        f"or strategy.type: Recreate; or more {GPU}"
    )


def test_no_contention_when_others_hold_the_units_or_the_pod_asks_for_none() -> None:
    # Three GPUs, two held by the old pods: the third is someone else's, not the release's.
    bigger = {"metadata": {"name": "gpu-1"}, "status": {"allocatable": {GPU: "3"}}}
    assert contention(NEW, GPU_SCHEDULER, [NEW, *OLD], [bigger]) is None
    assert contention(NEW, GPU_SCHEDULER, [NEW], [GPU_NODE]) is None  # no old pod holds any
    assert contention(NEW, SCHEDULER, [NEW, *OLD], [GPU_NODE]) is None  # cpu is short, not GPUs
    # Nodes unreadable: the scheduler's word and the holders decide.
    assert contention(NEW, GPU_SCHEDULER, [NEW, *OLD], None) is not None


def test_blocked_pod_fails_within_the_contention_wait_unless_a_node_comes() -> None:
    blocked = contention(NEW, GPU_SCHEDULER, [NEW, *OLD], [GPU_NODE])
    early = decide(
        NEW, GPU_SCHEDULER, [], [GPU_NODE], unschedulable_for_s=19, grace_s=30, blocked=blocked
    )
    assert not early.failed
    assert f"{GPU} held by the release's old pods; waiting up to 20 s" in early.message
    late = decide(
        NEW, GPU_SCHEDULER, [], [GPU_NODE], unschedulable_for_s=20, grace_s=30, blocked=blocked
    )
    assert late.failed
    assert late.message.startswith(f"pod llm-new-x cannot be scheduled: it asks for 1 {GPU}")
    assert f"(the scheduler: 0/1 nodes are available: 1 Insufficient {GPU}." in late.message
    assert late.message.endswith("no autoscaler announced a scale-up within 20 s")
    # An autoscaler adding a (GPU) node: wait, as for any unschedulable pod.
    waiting = decide(
        NEW, GPU_SCHEDULER, [TRIGGERED], [GPU_NODE], unschedulable_for_s=300, grace_s=30,
        blocked=blocked,
    )  # fmt: skip
    assert not waiting.failed


def test_judge_lists_the_workloads_pods_once_for_a_blocked_pod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[object] = []

    def list_objects(api: object, version: str, kind: str, ns: str | None, **kw: object) -> Obj:
        asked.append(kw.get("label_selector"))
        return {"items": [NEW, *OLD]}

    monkeypatch.setattr(kube, "list_objects", list_objects)
    clock = _Clock()
    judge = PodJudge(object(), "ml", max_restarts=0, nodes=[GPU_NODE], clock=clock)  # type: ignore[arg-type]
    assert judge.judge(NEW, "app=llm") is None
    clock.now += 20
    reason, message = judge.judge(NEW, "app=llm") or ("", "")
    assert reason == "Unschedulable"
    assert "the release's own 2 old pod(s) hold 2" in message
    # One listing per judgement at most a second apart (are any of them leaving?); the
    # contention is looked for in the first only.
    assert asked == ["app=llm", "app=llm"]


def test_no_autoscaler_only_when_neither_karpenter_nor_cluster_autoscaler_shows() -> None:
    assert no_autoscaler({"apps"}, ca_status=True) is None
    assert no_autoscaler({"apps", "karpenter.sh"}, ca_status=False) is None
    assert no_autoscaler({"apps"}, ca_status=None) is None  # unreadable: nobody can tell
    text = no_autoscaler({"apps"}, ca_status=False) or ""
    assert "no ConfigMap kube-system/cluster-autoscaler-status" in text
    assert "no node will be added" in text


def test_without_an_autoscaler_an_unschedulable_pod_fails_at_once() -> None:
    absent = no_autoscaler(set(), ca_status=False)
    d = decide(_pending(), SCHEDULER, [], [NODE], unschedulable_for_s=0, grace_s=30, absent=absent)
    assert d.failed
    assert "1 Insufficient cpu" in d.message
    assert "no autoscaler runs on this cluster" in d.message
    # An autoscaler's own word still wins: it runs after all.
    d = decide(
        _pending(), SCHEDULER, [TRIGGERED], [NODE], unschedulable_for_s=0, grace_s=30,
        absent=absent,
    )  # fmt: skip
    assert not d.failed


def test_judge_asks_once_whether_an_autoscaler_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def get(api: object, version: str, kind: str, name: str, ns: str | None) -> Obj | None:
        asked.append(f"{kind} {ns}/{name}")
        return None  # 404: Cluster Autoscaler writes no status here

    monkeypatch.setattr(kube, "get", get)
    judge = PodJudge(object(), "ml", max_restarts=0, nodes=[NODE], clock=_Clock())  # type: ignore[arg-type]
    # An update that takes old pods down first may make room: the grace decides, as before.
    assert judge.judge(_pending(), makes_room=True) is None
    assert asked == []
    reason, message = judge.judge(_pending(), makes_room=False) or ("", "")
    assert reason == "Unschedulable"
    assert "no autoscaler runs on this cluster" in message
    judge.judge(_pending(), makes_room=False)
    assert asked == ["ConfigMap kube-system/cluster-autoscaler-status"]


def test_judge_with_a_blocked_pod_and_no_autoscaler_fails_at_once_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kube, "get", lambda *a, **k: None)
    monkeypatch.setattr(kube, "list_objects", lambda *a, **k: {"items": [NEW, *OLD]})
    judge = PodJudge(object(), "ml", max_restarts=0, nodes=[GPU_NODE], clock=_Clock())  # type: ignore[arg-type]
    reason, message = judge.judge(NEW, "app=llm", makes_room=False) or ("", "")
    assert reason == "Unschedulable"
    assert "maxSurge: 0 with maxUnavailable: 1" in message
    assert "no autoscaler runs on this cluster" in message


TAINTED = (
    "0/1 nodes are available: 1 node(s) had untolerated taint(s). no new claims to deallocate, "
    "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
)


def _tainted(key: str, effect: str = "NoSchedule") -> Obj:
    return {**NODE, "spec": {"taints": [{"key": key, "effect": effect}]}}


def test_a_node_whose_kubelet_has_not_reported_is_waited_for_not_judged() -> None:
    """After a 90 s API server outage the node controller taints the node unreachable until its
    kubelet reports again: the new pod waits (here the verdict was a false Unschedulable, and
    the rollback's new pod failed the same way)."""
    absent = no_autoscaler(set(), ca_status=False)
    down = _tainted("node.kubernetes.io/unreachable")
    assert nodes_down([down, NODE]) == ["vm (node.kubernetes.io/unreachable)"]
    d = decide(_pending(), TAINTED, [], [down], unschedulable_for_s=60, grace_s=30, absent=absent)
    assert not d.failed
    assert "vm (node.kubernetes.io/unreachable)" in d.message
    assert "kubelet has not reported" in d.message
    # A taint of the team's own (no toleration in the pod) is no passing state: judged.
    own = _tainted("dedicated")
    assert nodes_down([own]) == []
    d = decide(_pending(), TAINTED, [], [own], unschedulable_for_s=0, grace_s=30, absent=absent)
    assert d.failed
    # A node down does not explain a pod the scheduler refused for another reason.
    d = decide(_pending(), SCHEDULER, [], [down], unschedulable_for_s=0, grace_s=30, absent=absent)
    assert d.failed


# A release that makes its own room: at 97 replicas on a node of 110 pods, new pods were refused
# ("Too many pods") while the release's old pods were still terminating, and judged Unschedulable.

FULL = (
    "0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: "
    "1 No preemption victims found for incoming pod."
)


def _penguin(name: str, revision: str, *, node: str | None = "vm", deleting: bool = False) -> Obj:
    p = pod()
    p["metadata"].update(
        name=name, uid=name, labels={"app": "penguin", "pod-template-hash": revision}
    )
    p["spec"] = {"containers": [{"name": "model", "resources": {"requests": {"cpu": "10m"}}}]}
    if node:
        p["spec"]["nodeName"] = node
        p["status"]["phase"] = "Running"
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-12-03T00:20:11Z"
    return p


def _refused(name: str = "penguin-new-a", message: str = FULL) -> Obj:
    p = _penguin(name, "new", node=None)
    p["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    ]
    return p


TERMINATING = [_penguin(f"penguin-old-{i}", "old", deleting=True) for i in range(5)]


def test_leaving_names_the_workloads_terminating_pods_that_free_the_room() -> None:
    new = _refused()
    others = [new, _penguin("penguin-old-x", "old"), _penguin("penguin-old-y", "old", node=None,
              deleting=True)]  # fmt: skip
    assert leaving(new, FULL, [*others, *TERMINATING]) == tuple(
        f"penguin-old-{i}" for i in range(5)
    )
    # Running old pods and a deleted one that never had a node free nothing now.
    assert leaving(new, FULL, others) == ()
    # Memory short: only a leaving pod that holds memory gives some back (these ask for cpu).
    short_memory = "0/1 nodes are available: 1 Insufficient memory."
    assert leaving(new, short_memory, TERMINATING) == ()
    assert len(leaving(new, SCHEDULER, TERMINATING)) == 5  # Insufficient cpu
    # A taint is not cured by a pod leaving.
    assert not freed_by_leaving(TAINTED)
    assert leaving(new, TAINTED, TERMINATING) == ()


def test_no_verdict_while_the_workloads_pods_terminate_nor_just_after() -> None:
    absent = no_autoscaler(set(), ca_status=False)
    names = leaving(_refused(), FULL, TERMINATING)
    d = decide(_refused(), FULL, [], [NODE], unschedulable_for_s=90, grace_s=30, absent=absent,
               leaving=names)  # fmt: skip
    assert not d.failed
    assert "waiting for 5 terminating pod(s) of the workload to free their room" in d.message
    assert "(penguin-old-0, penguin-old-1, penguin-old-2 and 2 more)" in d.message
    d = decide(_refused(), FULL, [], [NODE], unschedulable_for_s=90, grace_s=30, absent=absent,
               left_for_s=LEFT_SETTLE_S - 0.1)  # fmt: skip
    assert (d.failed, d.message.endswith("waiting for the scheduler to try again")) == (False, True)
    # Gone for longer and still refused: judged as any unschedulable pod.
    d = decide(_refused(), FULL, [], [NODE], unschedulable_for_s=90, grace_s=30, absent=absent,
               left_for_s=LEFT_SETTLE_S)  # fmt: skip
    assert d.failed
    assert "Too many pods" in d.message
    # Too big for any node even empty: nothing leaving helps.
    big = _refused()
    big["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "64"
    assert decide(big, FULL, [], [NODE], unschedulable_for_s=0, grace_s=30, leaving=names).failed


def test_judge_waits_while_old_pods_terminate_and_counts_the_grace_from_when_they_are_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workload: list[Obj] = [_refused(), *TERMINATING]
    asked: list[object] = []

    def list_objects(api: object, version: str, kind: str, ns: str | None, **kw: object) -> Obj:
        asked.append(kw.get("label_selector"))
        return {"items": list(workload)}

    monkeypatch.setattr(kube, "list_objects", list_objects)
    clock = _Clock()
    judge = PodJudge(object(), "ml", max_restarts=0, nodes=[NODE], unschedulable_grace=30,  # type: ignore[arg-type]
                     clock=clock)  # fmt: skip
    new = _refused()
    for _ in range(120):  # a minute of old pods terminating: longer than the grace
        assert judge.judge(new, "app=penguin") is None
        clock.now += 0.5
    # Listed only when the verdict was due (the grace out, at 30 s): they were leaving, so
    # the grace started again.
    assert asked == ["app=penguin"]
    del workload[1:]  # the old pods are gone
    clock.now += 1  # 31 s since the grace started again: the verdict is due, the LIST says gone
    assert judge.judge(new, "app=penguin") is None
    assert judge.notes["penguin-new-a"].endswith("waiting for the scheduler to try again")
    assert len(asked) == 2
    # Still refused well after they went: the grace counts from when they were seen gone.
    clock.now += 29
    assert judge.judge(new, "app=penguin") is None
    clock.now += 1
    reason, message = judge.judge(new, "app=penguin") or ("", "")
    assert reason == "Unschedulable"
    assert "no autoscaler announced a scale-up within 30 s" in message


def test_judge_without_autoscaler_waits_for_terminating_pods_then_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An update that does not make room itself (maxUnavailable 0) fails an unschedulable pod at
    once when no autoscaler runs, but not while pods of its own are still leaving the node, nor
    before LEFT_SETTLE_S after they were seen gone."""
    workload: list[Obj] = [_refused(), *TERMINATING[:1]]
    monkeypatch.setattr(kube, "get", lambda *a, **k: None)
    monkeypatch.setattr(kube, "list_objects", lambda *a, **k: {"items": list(workload)})
    clock = _Clock()
    judge = PodJudge(object(), "ml", max_restarts=0, nodes=[NODE], clock=clock)  # type: ignore[arg-type]
    new = _refused()
    assert judge.judge(new, "app=penguin", makes_room=False) is None
    assert "waiting for 1 terminating pod(s)" in judge.notes["penguin-new-a"]
    last_seen_leaving = clock.now
    workload[1:] = []
    verdict = None
    while verdict is None and clock.now < last_seen_leaving + 60:
        clock.now += 0.5
        verdict = judge.judge(new, "app=penguin", makes_room=False)
    reason, message = verdict or ("", "")
    assert reason == "Unschedulable"
    assert "no autoscaler runs on this cluster" in message
    took = clock.now - last_seen_leaving
    assert LEFT_SETTLE_S <= took <= 2 * LEFT_SETTLE_S + 1, took
