"""Rules about one pod: why it cannot become ready, why it is not ready yet, its log.

``pod_failure`` and ``not_ready_reason`` are pure functions of a Pod as a dict, tested on
recorded objects; ``log_tail`` and ``probe_message`` read from the API server. Kind-agnostic:
every workload's pods are judged by these rules.
"""

from __future__ import annotations

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import ClusterError
from rolloutgate.objects import Obj, as_int, event_instant, is_deleting
from rolloutgate.objects import at as _get

# Waiting reasons that do not cure themselves within a rollout: each is a verdict at once.
WAITING_FAILURES = frozenset(
    {
        "ImagePullBackOff",
        "ErrImagePull",
        "ErrImageNeverPull",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "InvalidImageName",
    }
)

# Failures where no container process ever ran, so no log exists.
NEVER_STARTED = frozenset(
    {"ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName", "Unschedulable"}
)

# log_tail's answer when there is no log, so callers can tell it from a log.
NO_LOG = "(no log: "


def statuses(pod: Obj) -> list[Obj]:
    """Init container and container statuses, in that order."""
    return list(_get(pod, "status", "initContainerStatuses") or []) + list(
        _get(pod, "status", "containerStatuses") or []
    )


def pod_failure(pod: Obj, *, max_restarts: int) -> tuple[str, str] | None:
    """(reason, message) when a pod of the new release cannot become ready, else None.

    A pod being deleted is no verdict: scaled-down pods end Failed when their process exits on
    SIGTERM, and a rollback to an older template reuses the ReplicaSet such pods belong to.
    """
    if is_deleting(pod):
        return None
    for cs in statuses(pod):
        found = _container_failure(cs, max_restarts)
        if found:
            return found
    for cond in _get(pod, "status", "conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return "Unschedulable", f"pod cannot be scheduled: {cond.get('message', '')}"
    if _get(pod, "status", "phase") == "Failed":
        reason = _get(pod, "status", "reason") or "Failed"
        return str(reason), f"pod failed: {_get(pod, 'status', 'message') or reason}"
    return None


def _container_failure(cs: Obj, max_restarts: int) -> tuple[str, str] | None:
    name = cs.get("name", "?")
    # OOMKilled first: a container killed for memory then shows CrashLoopBackOff, which hides why.
    for state_key in ("state", "lastState"):
        terminated = _get(cs, state_key, "terminated")
        if isinstance(terminated, dict) and terminated.get("reason") == "OOMKilled":
            return "OOMKilled", (
                f"container {name} was killed for exceeding its memory limit "
                f"(exit code {terminated.get('exitCode')})"
            )
    waiting = _get(cs, "state", "waiting")
    if isinstance(waiting, dict) and waiting.get("reason") in WAITING_FAILURES:
        reason = str(waiting["reason"])
        return reason, f"container {name}: {waiting.get('message') or reason}"
    restarts = as_int(cs.get("restartCount"))
    if restarts > max_restarts:
        last = _get(cs, "lastState", "terminated") or {}
        why = f"; last exit: {last.get('reason')} (code {last.get('exitCode')})" if last else ""
        return "TooManyRestarts", (
            f"container {name} restarted {restarts} times (more than {max_restarts}){why}"
        )
    # A new pod's container that exited non-zero and is not ready is crashing now: waiting for
    # the kubelet's CrashLoopBackOff costs a second start-up and back-off for no new information.
    if not cs.get("ready"):
        for state_key in ("state", "lastState"):
            terminated = _get(cs, state_key, "terminated")
            if isinstance(terminated, dict) and as_int(terminated.get("exitCode")) != 0:
                return "CrashLoopBackOff", (
                    f"container {name} exited with code {terminated.get('exitCode')} "
                    f"({terminated.get('reason') or 'Error'}) and is not ready; the kubelet "
                    "restarts it into CrashLoopBackOff"
                )
    return None


def not_ready_reason(pod: Obj, probe_message: str | None = None) -> str:
    """Why a pod that is not failing is still not ready, for timeout messages."""
    name = _get(pod, "metadata", "name") or "?"
    phase = _get(pod, "status", "phase") or "Unknown"
    for cs in _get(pod, "status", "containerStatuses") or []:
        if cs.get("ready"):
            continue
        cname = cs.get("name", "?")
        waiting = _get(cs, "state", "waiting")
        if isinstance(waiting, dict):
            return f"pod {name}: container {cname} waiting ({waiting.get('reason')})"
        if _get(cs, "state", "running") is not None:
            probe = (
                f"readiness probe failing: {probe_message}" if probe_message else "no probe event"
            )
            return f"pod {name}: container {cname} not ready ({probe})"
        return f"pod {name}: container {cname} not ready"
    return f"pod {name}: {phase}, not ready"


def log_tail(
    api: ApiClient, namespace: str, pod: str, container: str, *, previous: bool, lines: int = 20
) -> str:
    """The last `lines` of a container's log, or a note saying why there is none."""
    try:
        return kube.pod_log(api, namespace, pod, container, previous=previous, lines=lines)
    except ClusterError as e:
        return f"{NO_LOG}{e})"


def probe_message(api: ApiClient, namespace: str, pod: str) -> str | None:
    """The message of the pod's latest Unhealthy event (a failing probe), if any."""
    events = kube.list_objects(
        api,
        "v1",
        "Event",
        namespace,
        field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod},reason=Unhealthy",
    )
    items = sorted(events.get("items") or [], key=event_instant)
    return str(items[-1].get("message", "")).strip() if items else None
