"""Rules about one pod: why it cannot become ready, why it is not ready yet, its log.

``pod_failure`` and ``not_ready_reason`` are pure functions of a Pod as a dict, tested on
recorded objects; ``log_tail`` and ``probe_message`` read from the API server. Kind-agnostic:
every workload's pods are judged by these rules.
"""

from __future__ import annotations

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.checks.podhistory import Baseline, latest_termination
from rolloutgate.checks.podhistory import statuses as statuses  # re-exported for the callers
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


def pod_failure(
    pod: Obj, *, max_restarts: int, baseline: Baseline | None = None
) -> tuple[str, str] | None:
    """(reason, message) when a pod of the new release cannot become ready, else None.

    Only what happened since ``baseline`` (taken just before the apply or the restore) counts:
    a pod that existed then is judged on its containers' exits since, never on its history.
    Without a baseline the pod's whole life counts.

    ``max_restarts`` = N: a container may exit N times since the baseline, ready or not; the
    exit after those fails at once (N = 0: the first exit, without waiting for the kubelet's
    CrashLoopBackOff). A CrashLoopBackOff within N exits is a back-off before the next start,
    which is then judged. An OOM kill since the baseline fails at once.

    A pod being deleted is no verdict: scaled-down pods end Failed when their process exits on
    SIGTERM, and a rollback to an older template reuses the ReplicaSet such pods belong to.
    Unschedulable pods are judged by ``scheduling`` (it needs events and nodes).
    """
    if is_deleting(pod):
        return None
    since = baseline or Baseline.empty()
    for cs in statuses(pod):
        found = _container_failure(cs, max_restarts, since.exits_since(pod, cs))
        if found:
            return found
    if since.failed_since(pod):
        reason = _get(pod, "status", "reason") or "Failed"
        return str(reason), f"pod failed: {_get(pod, 'status', 'message') or reason}"
    return None


def _container_failure(cs: Obj, max_restarts: int, exits: int) -> tuple[str, str] | None:
    """`exits`: the container's exits since the baseline."""
    name = cs.get("name", "?")
    last = latest_termination(cs)
    # OOMKilled first: a container killed for memory then shows CrashLoopBackOff, which hides why.
    if exits and last is not None and last.get("reason") == "OOMKilled":
        return "OOMKilled", (
            f"container {name} was killed for exceeding its memory limit "
            f"(exit code {last.get('exitCode')})"
        )
    waiting = _get(cs, "state", "waiting")
    if isinstance(waiting, dict) and waiting.get("reason") in WAITING_FAILURES:
        reason = str(waiting["reason"])
        # A back-off within the allowed exits ends in another start, judged when it comes; a
        # back-off left from before the baseline is history until the container exits again.
        if reason != "CrashLoopBackOff" or exits > max_restarts:
            return reason, f"container {name}: {waiting.get('message') or reason}"
    if exits <= max_restarts:
        return None
    code = as_int((last or {}).get("exitCode"))
    how = f"{(last or {}).get('reason') or 'Error'}, code {code}" if last else "unknown"
    allowed = f"--max-restarts {max_restarts}"
    # A not-ready container that exits non-zero is crashing now: waiting for the kubelet's
    # CrashLoopBackOff costs a second start-up and back-off for no new information.
    if not cs.get("ready") and code != 0:
        return "CrashLoopBackOff", (
            f"container {name} exited with code {code} ({how.split(',')[0]}) and is not ready "
            f"({exits} exits since the release was applied, {allowed}); the kubelet restarts "
            f"it into CrashLoopBackOff{_killed_hint(code)}"
        )
    return "TooManyRestarts", (
        f"container {name} exited {exits} times since the release was applied (more than "
        f"{allowed}); last exit: {how}"
    )


# Exit codes of a process ended by a signal (128 + its number). The kubelet sends SIGTERM, then
# SIGKILL after the grace period, to a container whose liveness or startup probe keeps failing:
# a server still starting on a busy node reads as a crash unless the hint says so.
_KILLED_BY = {137: "SIGKILL", 143: "SIGTERM"}


def _killed_hint(code: int | None) -> str:
    signal = _KILLED_BY.get(code or 0)
    if signal is None:
        return ""
    return (
        f"; code {code} is a kill ({signal}), not an exit of its own: the kubelet kills a "
        "container whose liveness or startup probe keeps failing (the pod's events say "
        "'Liveness probe failed'); a server slower to start than its liveness probe allows "
        "wants a startupProbe"
    )


def unschedulable(pod: Obj) -> str | None:
    """The scheduler's message when it found no node for the pod, else None."""
    if is_deleting(pod) or _get(pod, "spec", "nodeName"):
        return None
    for cond in _get(pod, "status", "conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == "Unschedulable"
        ):
            return str(cond.get("message") or "no node fits the pod")
    return None


def not_ready_reason(pod: Obj, probe_message: str | None = None) -> str:
    """Why a pod that is not failing is still not ready, for timeout messages."""
    name = _get(pod, "metadata", "name") or "?"
    phase = _get(pod, "status", "phase") or "Unknown"
    conditions = _get(pod, "status", "conditions") or []
    if (
        phase == "Pending"
        and not _get(pod, "spec", "nodeName")
        and not any(c.get("type") == "PodScheduled" for c in conditions)
    ):
        # A scheduler that judged it, placed or not, sets PodScheduled; an unschedulable pod
        # fails the rollout by itself (podjudge). None at all: no scheduler looked at it.
        scheduler = _get(pod, "spec", "schedulerName") or "default-scheduler"
        return (
            f"pod {name}: {phase}, never scheduled: no scheduler judged it (no PodScheduled "
            f"condition); its scheduler ({scheduler}, kube-scheduler for default-scheduler) is "
            "likely not running or cut off from the API server"
        )
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
    api: ApiClient,
    namespace: str,
    pod: str,
    container: str,
    *,
    previous: bool,
    lines: int = 20,
    timeout: float = kube.LOG_TIMEOUT_S,
) -> str:
    """The last `lines` of a container's log, or a note saying why there is none."""
    try:
        return kube.pod_log(
            api, namespace, pod, container, previous=previous, lines=lines, timeout=timeout
        )
    except ClusterError as e:
        return f"{NO_LOG}{e})"


def is_log(tail: str) -> bool:
    """Whether `log_tail` gave a log (not a note, not the kubelet's 200 for an instance it
    already removed)."""
    return bool(tail.strip()) and not tail.startswith((NO_LOG, "unable to retrieve container logs"))


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
