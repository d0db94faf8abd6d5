"""Only what happened since the apply (or a rollback's restore) is held against a release."""

from __future__ import annotations

from rolloutgate.checks.podhistory import Baseline, exits, restarts_since
from rolloutgate.checks.pods import pod_failure
from rolloutgate.objects import Obj

from .k8s_objects import clone, container, pod

OLD_KILL = {
    "terminated": {"reason": "Error", "exitCode": 137, "finishedAt": "2026-11-20T08:00:00Z"}
}
OLD_OOM = {
    "terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2026-11-20T08:00:00Z"}
}


def _live(restarts: int, last: Obj, *, ready: bool = True, uid: str = "u1") -> Obj:
    p = pod(
        phase="Running",
        container_statuses=[
            container(restarts=restarts, ready=ready, state={"running": {}}, lastState=last)
        ],
    )
    p["metadata"]["uid"] = uid
    return p


def test_exits_count_the_instance_that_has_not_been_replaced_yet() -> None:
    running = container(restarts=2, state={"running": {}})
    dead = container(restarts=2, state={"terminated": {"exitCode": 1}})
    backing_off = container(
        restarts=2,
        state={"waiting": {"reason": "CrashLoopBackOff"}},
        lastState={"terminated": {"exitCode": 1}},
    )
    assert (exits(running), exits(dead), exits(backing_off)) == (2, 3, 3)
    assert exits(container()) == 0


def test_a_pod_killed_from_outside_before_the_apply_passes_a_rerun_of_the_same_release() -> None:
    # The reproduction: v1 live, its container killed once, the gate run again with v1.
    p = _live(1, OLD_KILL)
    baseline = Baseline.of([p])
    assert pod_failure(p, max_restarts=0) is not None  # judged on its whole life: a false verdict
    assert pod_failure(p, max_restarts=0, baseline=baseline) is None
    assert restarts_since([p], baseline) == []


def test_an_old_oom_kill_of_a_ready_container_is_history() -> None:
    p = _live(3, OLD_OOM)
    assert pod_failure(p, max_restarts=0, baseline=Baseline.of([p])) is None


def test_an_exit_after_the_apply_counts_from_the_baseline() -> None:
    before = _live(5, OLD_KILL)
    baseline = Baseline.of([before])
    after = clone(before)
    cs = after["status"]["containerStatuses"][0]
    cs["restartCount"] = 6
    cs["lastState"] = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    assert (pod_failure(after, max_restarts=2, baseline=baseline) or ("",))[0] == "OOMKilled"
    [counted] = restarts_since([after], baseline)
    assert (counted.exits, counted.last) == (1, cs["lastState"]["terminated"])
    assert "1 exits (last: OOMKilled, exit code 137)" in counted.describe()


def test_restarts_since_the_apply_are_judged_against_max_restarts() -> None:
    before = _live(4, OLD_KILL)
    baseline = Baseline.of([before])
    after = clone(before)
    after["status"]["containerStatuses"][0]["restartCount"] = 6
    assert pod_failure(after, max_restarts=2, baseline=baseline) is None
    after["status"]["containerStatuses"][0]["restartCount"] = 7
    reason, message = pod_failure(after, max_restarts=2, baseline=baseline) or ("", "")
    assert reason == "TooManyRestarts"
    assert "exited 3 times since the release was applied" in message


def test_a_crash_loop_left_from_before_the_restore_waits_for_the_next_start() -> None:
    # A rollback onto a release whose pod was crash-looping before: its back-off is history;
    # the next start decides.
    looping = pod(
        container_statuses=[
            container(
                restarts=7,
                state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
                lastState=OLD_KILL,
            )
        ]
    )
    looping["metadata"]["uid"] = "u2"
    baseline = Baseline.of([looping])
    assert pod_failure(looping, max_restarts=0, baseline=baseline) is None
    started = clone(looping)
    cs = started["status"]["containerStatuses"][0]
    cs["restartCount"], cs["state"] = 8, {"running": {}}
    assert pod_failure(started, max_restarts=0, baseline=baseline) is None
    cs["state"] = {"terminated": {"reason": "Error", "exitCode": 1}}
    assert (pod_failure(started, max_restarts=0, baseline=baseline) or ("",))[0] == (
        "CrashLoopBackOff"
    )


def test_a_pod_failed_before_the_apply_is_history_a_new_failure_is_not() -> None:
    evicted = pod(phase="Failed", reason="Evicted", message="The node was low on memory.")
    evicted["metadata"]["uid"] = "u3"
    baseline = Baseline.of([evicted])
    assert pod_failure(evicted, max_restarts=0, baseline=baseline) is None
    fresh = clone(evicted)
    fresh["metadata"]["uid"] = "u4"
    assert (pod_failure(fresh, max_restarts=0, baseline=baseline) or ("",))[0] == "Evicted"


def test_a_pod_created_after_the_baseline_counts_its_whole_life() -> None:
    baseline = Baseline.of([_live(1, OLD_KILL, uid="old")])
    new = _live(1, {"terminated": {"reason": "Error", "exitCode": 1}}, ready=False, uid="new")
    assert not baseline.knows(new)
    assert (pod_failure(new, max_restarts=0, baseline=baseline) or ("",))[0] == "CrashLoopBackOff"
    assert pod_failure(new, max_restarts=1, baseline=baseline) is None


def test_a_completed_init_container_is_no_exit() -> None:
    completed = {
        "name": "fetch-model",
        "restartCount": 0,
        "state": {"terminated": {"reason": "Completed", "exitCode": 0}},
    }
    assert exits(completed) == 0
    failed = completed | {"state": {"terminated": {"reason": "Error", "exitCode": 1}}}
    assert exits(failed) == 1
