"""What a human needs to see when a rollout fails: events, pod states, logs, rollout history.

`collect` gathers plain data (JSON-ready, for the gate report); `render` turns it into text for
the terminal and the JUnit XML. Collecting never raises for what it cannot read: the failure is
recorded in `errors`, since diagnostics run while something is already going wrong.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.checks import pods
from rolloutgate.checks.pods import log_tail, statuses
from rolloutgate.errors import ClusterError
from rolloutgate.objects import Obj, event_instant, event_time, name_of, ref
from rolloutgate.objects import at as _g
from rolloutgate.workloads import viewer_for, workloads

if TYPE_CHECKING:
    from rolloutgate.release.engine import Release

MAX_EVENTS = 30


def collect(api: ApiClient, namespace: str, workload: Obj, *, log_lines: int = 50) -> Obj:
    """Diagnostics of one workload (a manifest or live object): a JSON-ready dict (see
    `render`)."""
    viewer = viewer_for(workload)
    name = name_of(workload)
    diag: Obj = {
        "namespace": namespace,
        "workload": {"kind": viewer.kind, "name": name},
        "history": [],
        "pods": [],
        "events": [],
        "errors": [],
    }
    errors: list[str] = diag["errors"]
    live = _try(
        errors, viewer.kind, lambda: kube.get(api, viewer.api_version, viewer.kind, name, namespace)
    )
    if live is None:
        errors.append(f"{viewer.kind.lower()} {namespace}/{name} does not exist")
        return diag
    diag["workload"] = viewer.summary(live)
    found = _try(errors, "rollout history", lambda: viewer.history(api, namespace, live))
    rows, revisions = found if found is not None else ([], {})
    diag["history"] = rows
    pod_list = _try(
        errors,
        "pods",
        lambda: kube.list_objects(
            api, "v1", "Pod", namespace, label_selector=viewer.pod_selector(live)
        ),
    )
    pods = (pod_list or {}).get("items") or []
    for pod in pods:
        summary = pod_summary(pod)
        summary["revision"] = revisions.get(name_of(pod))
        if _failing(pod):
            summary["logs"] = _logs(api, namespace, pod, log_lines)
        diag["pods"].append(summary)
    names = {name} | {row["replicaset"] for row in rows} | {name_of(p) for p in pods}
    event_list = _try(errors, "events", lambda: kube.list_objects(api, "v1", "Event", namespace))
    diag["events"] = events_for((event_list or {}).get("items") or [], names)
    return diag


def _try(errors: list[str], what: str, read: Any) -> Any:
    try:
        return read()
    except ClusterError as e:
        errors.append(f"could not read {what}: {e}")
        return None


def pod_summary(pod: Obj) -> Obj:
    """Phase, conditions and container states of a pod. Pure."""
    status = pod.get("status") or {}
    return {
        "name": _g(pod, "metadata", "name"),
        "phase": status.get("phase"),
        "node": _g(pod, "spec", "nodeName"),
        "conditions": [
            {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k)}
            for c in status.get("conditions") or []
        ],
        "containers": [
            {
                "name": cs.get("name"),
                "image": cs.get("image"),
                "ready": bool(cs.get("ready")),
                "restarts": cs.get("restartCount", 0),
                "state": _state(cs.get("state")),
                "last_state": _state(cs.get("lastState")),
            }
            for cs in (status.get("initContainerStatuses") or [])
            + (status.get("containerStatuses") or [])
        ],
    }


def _state(state: Any) -> str | None:
    """'waiting: CrashLoopBackOff (back-off 10s ...)' from a container state."""
    if not isinstance(state, dict):
        return None
    for key in ("waiting", "terminated", "running"):
        detail = state.get(key)
        if isinstance(detail, dict):
            reason = detail.get("reason") or ""
            if key == "terminated":
                reason = f"{reason} exit {detail.get('exitCode')}".strip()
            message = f" ({detail['message'].strip()})" if detail.get("message") else ""
            return f"{key}: {reason}{message}".rstrip(": ") if reason or message else key
    return None


def _failing(pod: Obj) -> bool:
    found = statuses(pod)
    return not found or any(not cs.get("ready") or cs.get("restartCount", 0) > 0 for cs in found)


def _logs(api: ApiClient, namespace: str, pod: Obj, lines: int) -> Obj:
    name = name_of(pod)
    out: Obj = {}
    for cs in statuses(pod):
        container = str(cs.get("name"))
        entry = {"current": log_tail(api, namespace, name, container, previous=False, lines=lines)}
        # An exit the status shows may already be the "previous" instance by the time the
        # kubelet answers: ask for it too, not only once a restart was counted.
        terminated = any(isinstance(_g(cs, k, "terminated"), dict) for k in ("state", "lastState"))
        if cs.get("restartCount", 0) > 0 or terminated:
            entry["previous"] = log_tail(
                api, namespace, name, container, previous=True, lines=lines
            )
        out[container] = entry
    return out


def events_for(events: list[Obj], names: set[Any], limit: int = MAX_EVENTS) -> list[Obj]:
    """The last `limit` events about the named objects, oldest first. Pure."""
    picked = [e for e in events if _g(e, "involvedObject", "name") in names]
    picked.sort(key=event_instant)
    return [
        {
            "time": event_time(e),
            "type": e.get("type"),
            "reason": e.get("reason"),
            "object": f"{_g(e, 'involvedObject', 'kind')}/{_g(e, 'involvedObject', 'name')}",
            "message": str(e.get("message") or "").strip(),
            "count": e.get("count") or 1,
        }
        for e in picked[-limit:]
    ]


def render(diag: Obj) -> str:
    """Readable text of `collect`'s result."""
    workload = diag.get("workload") or {}
    kind = str(workload.get("kind") or "workload").lower()
    out = [f"== diagnostics: {kind} {diag.get('namespace')}/{workload.get('name')} =="]
    out += _render_workload(workload)
    out += _render_history(diag.get("history") or [])
    out += _render_pods(diag.get("pods") or [])
    out += _render_events(diag.get("events") or [])
    out += [f"(!) {err}" for err in diag.get("errors") or []]
    return "\n".join(out)


def _condition(c: Obj) -> str:
    return f"{c.get('type')}={c.get('status')} {c.get('reason') or ''}: {c.get('message') or ''}"


def _render_workload(dep: Obj) -> list[str]:
    if "revision" not in dep:
        return []
    out = [
        f"revision {dep.get('revision')}, generation {dep.get('generation')} "
        f"(observed {dep.get('observedGeneration')}), replicas {dep.get('replicas')}: "
        f"{dep.get('updatedReplicas')} updated, {dep.get('readyReplicas')} ready, "
        f"{dep.get('availableReplicas')} available"
    ]
    out += [f"  condition {_condition(c)}" for c in dep.get("conditions") or []]
    return out


def _render_history(rows: list[Obj]) -> list[str]:
    if not rows:
        return []
    out = ["-- rollout history --"]
    for h in rows:
        cause = f"  cause: {h['change_cause']}" if h.get("change_cause") else ""
        out.append(
            f"  rev {h['revision']}: {', '.join(str(i) for i in h['images'])} "
            f"replicas {h['replicas']} ready {h['ready']} ({h['replicaset']}){cause}"
        )
    return out


def _render_pods(pods: list[Obj]) -> list[str]:
    if not pods:
        return []
    out = ["-- pods --"]
    for p in pods:
        out.append(
            f"  pod {p['name']} (revision {p.get('revision')}): {p['phase']} on {p.get('node')}"
        )
        out += [
            f"    {_condition(c)}" for c in p.get("conditions") or [] if c.get("status") != "True"
        ]
        for c in p.get("containers") or []:
            last = f"; last {c['last_state']}" if c.get("last_state") else ""
            out.append(
                f"    container {c['name']} ({c['image']}): ready={c['ready']} "
                f"restarts={c['restarts']} {c['state']}{last}"
            )
        for container, logs in (p.get("logs") or {}).items():
            for which, text in logs.items():
                out.append(f"    -- log {container} ({which}) --")
                out.extend(f"    | {line}" for line in (text or "(empty)").splitlines())
    return out


def _render_events(events: list[Obj]) -> list[str]:
    if not events:
        return []
    out = ["-- events (oldest first) --"]
    for e in events:
        count = f" x{e['count']}" if e.get("count", 1) > 1 else ""
        out.append(f"  {e['time']} {e['type']} {e['reason']} {e['object']}{count}: {e['message']}")
    return out


# How long the diagnostics of a failure wait for a restarting API server, all calls together.
DIAGNOSTICS_PATIENCE_S = 20.0
# How long the end of a failed run waits for the diagnostics gathered beside it (their own
# requests are bounded by DIAGNOSTICS_PATIENCE_S and the log timeout).
DIAGNOSTICS_WAIT_S = DIAGNOSTICS_PATIENCE_S + 10.0
# Lines of the failing container's log in the diagnostics.
LOG_LINES = 50


def done(rel: Release) -> None:
    """The diagnostics gathered beside the run, into the report (waited for, bounded)."""
    if rel.run.diagnostics is None:
        rel.run.diagnostics = gather(rel).result(DIAGNOSTICS_WAIT_S)


class Gathering:
    """The diagnostics of a failure, collected in threads of their own (``diagnostics``): the
    verdict and the rollback never wait for a log the kubelet holds.

    ``pod``/``container``: the container the verdict names. Its log is asked for first, both
    instances at once, before the restore is submitted: the restore deletes the failing pod,
    and with it the log (a diagnostics pass that lists the pods first came too late for it).
    """

    def __init__(self, rel: Release, pod: str | None = None, container: str | None = None) -> None:
        self.text: str | None = None
        self._done = threading.Event()
        self._logs: dict[bool, str] = {}  # previous? → tail
        readers = []
        if pod and container:
            for previous in (False, True):
                readers.append(
                    threading.Thread(
                        target=self._read_log,
                        args=(rel, pod, container, previous),
                        name="rolloutgate-log",
                        daemon=True,
                    )
                )
        for reader in readers:
            reader.start()
        threading.Thread(
            target=self._run,
            args=(rel, pod, container, readers),
            name="rolloutgate-diagnostics",
            daemon=True,
        ).start()

    def _read_log(self, rel: Release, pod: str, container: str, previous: bool) -> None:
        self._logs[previous] = pods.log_tail(
            rel.api, rel.cfg.namespace, pod, container, previous=previous, lines=LOG_LINES
        )

    def _run(
        self, rel: Release, pod: str | None, container: str | None, readers: list[threading.Thread]
    ) -> None:
        try:
            text = of_release(rel)
            for reader in readers:  # each bounded by the log request's own timeout
                reader.join(timeout=kube.LOG_TIMEOUT_S + 1)
            found = [
                f"-- log of container {container} of pod {pod}, read at the verdict "
                f"({'previous' if previous else 'current'} instance) --\n"
                + "\n".join(f"| {line}" for line in tail.splitlines())
                for previous, tail in sorted(self._logs.items())
                if pods.is_log(tail)
            ]
            self.text = "\n".join([text, *found]) if found else text
        finally:
            self._done.set()

    def ready(self) -> str | None:
        """The text if gathered already; never waits."""
        return self.text if self._done.is_set() else None

    def result(self, timeout: float) -> str:
        if not self._done.wait(timeout):
            return f"(diagnostics still being gathered after {timeout:.0f} s: left out)"
        return self.text or ""


def gather(rel: Release, pod: str | None = None, container: str | None = None) -> Gathering:
    """Start gathering the diagnostics (once per release) and return the gathering."""
    if rel.gathering is None:
        rel.gathering = Gathering(rel, pod, container)
    return rel.gathering


def of_release(rel: Release) -> str:
    """Events, pod states, logs, rollout history of each workload, as text.

    Never raises: diagnostics accompany a failure and must not replace it. A restarting API
    server is waited for DIAGNOSTICS_PATIENCE_S at most: the rollback comes next.
    """
    parts = []
    with kube.patience(time.monotonic() + DIAGNOSTICS_PATIENCE_S):
        for workload in workloads(rel.objects):
            try:
                parts.append(render(collect(rel.api, rel.cfg.namespace, workload)))
            except Exception as e:  # a hook calls this: an error here would be an INTERNALERROR
                parts.append(
                    f"diagnostics of {ref(workload)} in {rel.cfg.namespace} unavailable: "
                    f"{type(e).__name__}: {e}"
                )
    return "\n".join(parts)
