"""Fail-fast rules on the new ReplicaSet's pods."""

from __future__ import annotations

import pytest

from rolloutgate.checks.pods import not_ready_reason, pod_failure, unschedulable
from rolloutgate.objects import is_ready

from .k8s_objects import container, pod


@pytest.mark.parametrize(
    "reason",
    [
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
    ],
)
def test_waiting_reasons_that_fail(reason: str) -> None:
    message = f"kubelet says {reason}"
    p = pod(
        container_statuses=[container(state={"waiting": {"reason": reason, "message": message}})]
    )
    assert pod_failure(p, max_restarts=0) == (reason, f"container model: {message}")


@pytest.mark.parametrize(
    "reason", ["ImagePullBackOff", "ErrImageNeverPull", "CreateContainerConfigError"]
)
def test_waiting_reasons_where_nothing_ran_fail_whatever_the_restarts_allowed(reason: str) -> None:
    p = pod(container_statuses=[container(state={"waiting": {"reason": reason}})])
    assert (pod_failure(p, max_restarts=5) or ("",))[0] == reason


def test_crash_loop_back_off_within_the_allowed_exits_waits_for_the_next_start() -> None:
    # Two exits so far (restartCount 1 + the instance backing off); 2 allowed.
    p = pod(
        container_statuses=[
            container(
                restarts=1,
                state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
                lastState={"terminated": {"reason": "Error", "exitCode": 1}},
            )
        ]
    )
    assert pod_failure(p, max_restarts=2) is None
    assert (pod_failure(p, max_restarts=1) or ("",))[0] == "CrashLoopBackOff"


@pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing"])
def test_waiting_reasons_that_are_progress(reason: str) -> None:
    p = pod(container_statuses=[container(state={"waiting": {"reason": reason}})])
    assert pod_failure(p, max_restarts=3) is None


def test_running_pod_is_not_a_failure() -> None:
    p = pod(phase="Running", container_statuses=[container(state={"running": {}})])
    assert pod_failure(p, max_restarts=3) is None


def test_pod_without_statuses_is_not_a_failure() -> None:
    assert pod_failure(pod(), max_restarts=0) is None


def test_oom_killed_now() -> None:
    state = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    p = pod(container_statuses=[container(state=state)])
    reason, message = pod_failure(p, max_restarts=3) or ("", "")
    assert reason == "OOMKilled"
    assert "exit code 137" in message


def test_oom_killed_before_a_crash_loop_names_the_oom() -> None:
    p = pod(
        container_statuses=[
            container(
                restarts=1,
                state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
                lastState={"terminated": {"reason": "OOMKilled", "exitCode": 137}},
            )
        ]
    )
    assert (pod_failure(p, max_restarts=3) or ("",))[0] == "OOMKilled"


def test_error_exit_before_ready_fails_at_once_when_no_restart_is_allowed() -> None:
    # Waiting for CrashLoopBackOff would cost a second start-up and the kubelet's back-off.
    state = {"terminated": {"reason": "Error", "exitCode": 1}}
    p = pod(container_statuses=[container(state=state)])
    reason, message = pod_failure(p, max_restarts=0) or ("", "")
    assert reason == "CrashLoopBackOff"
    assert "exited with code 1 (Error) and is not ready" in message
    assert "1 exits since the release was applied, --max-restarts 0" in message


@pytest.mark.parametrize(("code", "signal"), [(137, "SIGKILL"), (143, "SIGTERM")])
def test_a_kill_before_ready_is_named_as_a_kill_with_the_probe_that_may_have_sent_it(
    code: int, signal: str
) -> None:
    # Seen at load average 20: MLServer took longer to start than its liveness probe allowed,
    # and the kubelet's kill (exit 137) failed a good release as a crash.
    state = {"terminated": {"reason": "Error", "exitCode": code}}
    p = pod(container_statuses=[container(state=state)])
    reason, message = pod_failure(p, max_restarts=0) or ("", "")
    assert reason == "CrashLoopBackOff"
    assert f"code {code} is a kill ({signal}), not an exit of its own" in message
    assert "wants a startupProbe" in message
    crashed = pod(container_statuses=[container(state={"terminated": {"exitCode": 1}})])
    assert "is a kill" not in (pod_failure(crashed, max_restarts=0) or ("", ""))[1]


def test_one_exit_while_loading_passes_under_max_restarts_1() -> None:
    # --max-restarts means what it says for a container that was never ready too.
    p = pod(
        container_statuses=[container(state={"terminated": {"reason": "Error", "exitCode": 1}})]
    )
    assert pod_failure(p, max_restarts=1) is None
    restarted = pod(
        container_statuses=[
            container(
                restarts=1,
                state={"running": {}},
                lastState={"terminated": {"reason": "Error", "exitCode": 1}},
            )
        ]
    )
    assert pod_failure(restarted, max_restarts=1) is None
    again = pod(
        container_statuses=[
            container(
                restarts=1,
                state={"terminated": {"reason": "Error", "exitCode": 1}},
                lastState={"terminated": {"reason": "Error", "exitCode": 1}},
            )
        ]
    )
    assert (pod_failure(again, max_restarts=1) or ("",))[0] == "CrashLoopBackOff"


def test_error_exit_seen_as_last_state_of_a_restarted_container_fails() -> None:
    last = {"terminated": {"reason": "Error", "exitCode": 3}}
    p = pod(container_statuses=[container(restarts=1, state={"running": {}}, lastState=last)])
    assert (pod_failure(p, max_restarts=0) or ("",))[0] == "CrashLoopBackOff"


def test_clean_exit_before_ready_is_not_a_crash() -> None:
    state = {"terminated": {"reason": "Completed", "exitCode": 0}}
    p = pod(container_statuses=[container(state=state)])
    assert pod_failure(p, max_restarts=3) is None


def test_earlier_error_exit_of_a_ready_container_is_left_to_the_restart_threshold() -> None:
    last = {"terminated": {"reason": "Error", "exitCode": 1}}
    p = pod(
        container_statuses=[
            container(restarts=1, ready=True, state={"running": {}}, lastState=last)
        ]
    )
    assert pod_failure(p, max_restarts=3) is None


def test_restarts_over_the_threshold() -> None:
    p = pod(
        container_statuses=[
            container(
                restarts=4,
                ready=True,
                state={"running": {}},
                lastState={"terminated": {"reason": "Error", "exitCode": 2}},
            )
        ]
    )
    reason, message = pod_failure(p, max_restarts=3) or ("", "")
    assert reason == "TooManyRestarts"
    assert "exited 4 times since the release was applied (more than --max-restarts 3)" in message
    assert "Error, code 2" in message


def test_restarts_at_the_threshold_pass() -> None:
    p = pod(container_statuses=[container(restarts=3, state={"running": {}})])
    assert pod_failure(p, max_restarts=3) is None


def test_init_container_failure_counts() -> None:
    p = pod()
    p["status"]["initContainerStatuses"] = [
        container("fetch-model", state={"waiting": {"reason": "ErrImageNeverPull", "message": "x"}})
    ]
    assert pod_failure(p, max_restarts=3) == ("ErrImageNeverPull", "container fetch-model: x")


def test_unschedulable_is_left_to_the_scheduling_rules() -> None:
    cond = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Insufficient memory.",
    }
    # An autoscaler may be adding a node for it: no verdict from the pod alone.
    assert pod_failure(pod(conditions=[cond]), max_restarts=3) is None
    assert unschedulable(pod(conditions=[cond])) == cond["message"]


def test_not_yet_scheduled_without_unschedulable_reason_waits() -> None:
    cond = {"type": "PodScheduled", "status": "False", "reason": "SchedulerError"}
    assert pod_failure(pod(conditions=[cond]), max_restarts=3) is None
    assert unschedulable(pod(conditions=[cond])) is None


def test_failed_phase_names_its_reason() -> None:
    p = pod(phase="Failed", reason="Evicted", message="The node was low on resource: memory.")
    assert pod_failure(p, max_restarts=3) == (
        "Evicted",
        "pod failed: The node was low on resource: memory.",
    )


def test_not_ready_reason_names_the_failing_probe() -> None:
    p = pod(phase="Running", container_statuses=[container(state={"running": {}})])
    text = not_ready_reason(p, "Readiness probe failed: HTTP probe failed with statuscode: 503")
    assert text == (
        "pod iris-7c9f-abcde: container model not ready (readiness probe failing: "
        "Readiness probe failed: HTTP probe failed with statuscode: 503)"
    )
    assert not is_ready(p)


def test_a_pod_no_scheduler_judged_names_the_scheduler() -> None:
    # kube-scheduler stopped: the new pod stays Pending with no PodScheduled condition at all.
    text = not_ready_reason(pod())
    assert text.startswith("pod iris-7c9f-abcde: Pending, never scheduled: no scheduler judged it")
    assert "default-scheduler, kube-scheduler" in text


def test_a_pod_the_scheduler_placed_is_not_said_unscheduled() -> None:
    placed = pod(conditions=[{"type": "PodScheduled", "status": "True"}])
    assert "never scheduled" not in not_ready_reason(placed)


def test_ready_condition() -> None:
    p = pod(phase="Running", conditions=[{"type": "Ready", "status": "True"}])
    assert is_ready(p)


def test_pod_being_deleted_is_no_verdict() -> None:
    # A scaled-down pod whose process exited non-zero on SIGTERM.
    p = pod(phase="Failed", reason="Failed", message="Failed")
    p["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert pod_failure(p, max_restarts=0) is None
    del p["metadata"]["deletionTimestamp"]
    assert pod_failure(p, max_restarts=0) is not None
