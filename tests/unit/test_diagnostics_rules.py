"""History, events and rendering of diagnostics (pure parts)."""

from __future__ import annotations

from rolloutgate.release.diagnostics import events_for, pod_summary, render
from rolloutgate.workloads import DeploymentViewer

from .k8s_objects import container, pod

history = DeploymentViewer().history_rows


def rs(name: str, revision: str, image: str, cause: str | None = None) -> dict:  # type: ignore[type-arg]
    annotations = {"deployment.kubernetes.io/revision": revision}
    if cause:
        annotations["kubernetes.io/change-cause"] = cause
    return {
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"image": image}]}}},
        "status": {"readyReplicas": 0},
    }


def test_history_is_sorted_by_numeric_revision() -> None:
    rows = history([rs("b", "10", "iris:v3"), rs("a", "9", "iris:v2", "gate v2")])
    assert [(r["revision"], r["images"], r["change_cause"]) for r in rows] == [
        (9, ["iris:v2"], "gate v2"),
        (10, ["iris:v3"], None),
    ]


def event(name: str, t: str, reason: str) -> dict:  # type: ignore[type-arg]
    return {
        "involvedObject": {"kind": "Pod", "name": name},
        "lastTimestamp": t,
        "type": "Warning",
        "reason": reason,
        "message": f"{reason} happened ",
        "count": 3,
    }


def test_events_are_filtered_sorted_and_limited() -> None:
    evs = [
        event("web-1", "2024-01-01T00:00:03Z", "BackOff"),
        event("other", "2024-01-01T00:00:01Z", "Pulled"),
        event("web-1", "2024-01-01T00:00:02.500000Z", "Started"),
        event("web-1", "2024-01-01T00:00:02Z", "Created"),
    ]
    # Time and MicroTime mixed: 00:00:02 comes before 00:00:02.5 (as text it would not).
    assert [e["reason"] for e in events_for(evs, {"web-1"}, limit=3)] == [
        "Created",
        "Started",
        "BackOff",
    ]
    picked = events_for(evs, {"web-1"}, limit=2)
    assert [e["reason"] for e in picked] == ["Started", "BackOff"]
    assert picked[1]["message"] == "BackOff happened"
    assert picked[1]["object"] == "Pod/web-1"


def test_render_shows_states_logs_history_and_events() -> None:
    crashing = pod(
        container_statuses=[
            container(
                restarts=2,
                state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
                lastState={"terminated": {"reason": "Error", "exitCode": 3}},
            )
        ]
    )
    summary = pod_summary(crashing) | {
        "revision": "2",
        "logs": {"model": {"previous": "loading\nboom"}},
    }
    text = render(
        {
            "namespace": "ml",
            "workload": {"kind": "Deployment", "name": "iris", "revision": "2", "conditions": []},
            "history": history([rs("iris-a", "2", "iris:v2", "gate v2")]),
            "pods": [summary],
            "events": events_for(
                [event("iris-7c9f-abcde", "2024-01-01T00:00:01Z", "BackOff")], {"iris-7c9f-abcde"}
            ),
            "errors": ["could not read events: forbidden"],
        }
    )
    assert "deployment ml/iris" in text
    assert "rev 2: iris:v2" in text
    assert "cause: gate v2" in text
    assert "waiting: CrashLoopBackOff (back-off 20s); last terminated: Error exit 3" in text
    assert "    | boom" in text
    assert "Warning BackOff Pod/iris-7c9f-abcde x3" in text
    assert "(!) could not read events: forbidden" in text
