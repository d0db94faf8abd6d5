"""ready_grace: a server that answers its readiness probe with an HTTP status for too long."""

from __future__ import annotations

from rolloutgate.checks.podjudge import PodJudge
from rolloutgate.checks.readiness import NeverReady, definite
from rolloutgate.errors import Forbidden
from rolloutgate.objects import Obj

from .k8s_objects import container, pod

STARTED = "2026-11-27T10:00:00Z"
REFUSED = (
    'Readiness probe failed: Get "http://10.0.0.7:8080/v2/health/ready": dial tcp '
    "10.0.0.7:8080: connect: connection refused"
)
STATUS_400 = "Readiness probe failed: HTTP probe failed with statuscode: 400"


def _running(started: str = STARTED) -> Obj:
    p = pod(
        phase="Running",
        container_statuses=[container(state={"running": {"startedAt": started}})],
    )
    p["metadata"]["uid"] = "p1"
    return p


def _unhealthy(message: str, first: str, last: str, uid: str = "e1") -> Obj:
    return {
        "metadata": {"uid": uid},
        "involvedObject": {"kind": "Pod", "name": "iris-7c9f-abcde", "uid": "p1"},
        "reason": "Unhealthy",
        "message": message,
        "firstTimestamp": first,
        "lastTimestamp": last,
        "count": 3,
    }


def test_only_an_http_status_is_definite() -> None:
    assert definite(STATUS_400)
    assert definite("Readiness probe failed: HTTP probe failed with statuscode: 503")
    assert not definite(REFUSED)
    assert not definite(
        'Readiness probe failed: Get "http://10.0.0.7:8080/v2/health/ready": context deadline '
        "exceeded (Client.Timeout exceeded while awaiting headers)"
    )


def test_refused_connections_start_no_clock() -> None:
    nr = NeverReady(30)
    nr.observe(_running(), [_unhealthy(REFUSED, STARTED, "2026-11-27T10:00:08Z")], now=0)
    assert not nr.pending()


def test_definite_not_ready_past_the_grace_from_the_start_names_the_probe() -> None:
    nr = NeverReady(30)
    p = _running()
    events = [
        _unhealthy(REFUSED, "2026-11-27T10:00:01Z", "2026-11-27T10:00:03Z", uid="e0"),
        _unhealthy(STATUS_400, "2026-11-27T10:00:05Z", "2026-11-27T10:00:05Z"),
    ]
    # Seen at 1000 s, 5 s after the container started by the kubelet's clock: the grace runs
    # from the start (995 s), not from the first definite answer.
    nr.observe(p, events, now=1000.0)
    assert nr.pending()
    assert nr.overdue(p, 1024.0) is None
    text = nr.overdue(p, 1025.5) or ""
    assert text.endswith(STATUS_400)
    assert "30 s after its container started (ready_grace 30 s)" in text


def test_a_late_first_answer_on_a_busy_node_is_decided_at_once_past_the_grace() -> None:
    # The server answered nothing for 40 s (refused), then 400: the grace (30 s) counted from
    # the container's start is over, so the first definite answer is the verdict.
    nr = NeverReady(30)
    p = _running()
    nr.observe(p, [_unhealthy(REFUSED, STARTED, "2026-11-27T10:00:39Z", uid="e0")], now=100.0)
    assert not nr.pending()
    assert nr.overdue(p, 140.0) is None  # no definite answer yet: still starting
    events = [
        _unhealthy(REFUSED, STARTED, "2026-11-27T10:00:39Z", uid="e0"),
        _unhealthy(STATUS_400, "2026-11-27T10:00:41Z", "2026-11-27T10:00:41Z"),
    ]
    nr.observe(p, events, now=141.0)
    assert nr.overdue(p, 141.0) is not None


def test_the_gates_first_sight_of_the_running_pod_bounds_the_start() -> None:
    # No event tells the age: the clock starts when the gate first sees the instance running.
    nr = NeverReady(30)
    p = _running()
    nr.observe(p, [], now=10.0)
    nr.observe(p, [_unhealthy(STATUS_400, STARTED, STARTED)], now=20.0)
    assert nr.overdue(p, 39.0) is None
    assert nr.overdue(p, 40.0) is not None


def test_a_series_seen_late_counts_its_age_by_the_kubelets_clock() -> None:
    nr = NeverReady(30)
    p = _running()
    nr.observe(p, [_unhealthy(STATUS_400, "2026-11-27T10:00:05Z", "2026-11-27T10:00:25Z")], 500.0)
    assert nr.overdue(p, 504.0) is None
    assert nr.overdue(p, 505.0) is not None


def test_a_ready_answer_after_not_ready_stops_the_verdict() -> None:
    nr = NeverReady(30)
    p = _running()
    nr.observe(p, [_unhealthy(STATUS_400, STARTED, "2026-11-27T10:00:05Z")], now=5.0)
    nr.observe(
        p,
        [
            _unhealthy(STATUS_400, STARTED, "2026-11-27T10:00:05Z"),
            _unhealthy(REFUSED, "2026-11-27T10:00:07Z", "2026-11-27T10:00:07Z", uid="e2"),
        ],
        now=7.0,
    )
    assert nr.overdue(p, 100.0) is None


def test_events_of_an_earlier_instance_and_a_restart_reset_the_clock() -> None:
    nr = NeverReady(30)
    old = [_unhealthy(STATUS_400, "2026-11-27T09:00:00Z", "2026-11-27T09:30:00Z")]
    p = _running()
    nr.observe(p, old, now=0)
    assert not nr.pending()
    nr.observe(p, [_unhealthy(STATUS_400, STARTED, "2026-11-27T10:00:04Z")], now=10)
    assert nr.pending()
    restarted = _running("2026-11-27T10:01:00Z")
    nr.observe(restarted, [_unhealthy(STATUS_400, STARTED, "2026-11-27T10:00:58Z")], now=70)
    assert not nr.pending()
    nr.observe(restarted, [_unhealthy(STATUS_400, STARTED, "2026-11-27T10:01:02Z")], now=72)
    assert nr.overdue(restarted, 99.0) is None  # 29 s after the restart
    assert nr.overdue(restarted, 100.0) is not None


def test_judge_fails_a_never_ready_pod_and_leaves_a_ready_one() -> None:
    now = [0.0]
    judge = PodJudge(None, "ml", max_restarts=0, ready_grace=20, clock=lambda: now[0])
    assert judge.wants_events
    p = _running()
    judge.on_event(_unhealthy(STATUS_400, "2026-11-27T10:00:02Z", "2026-11-27T10:00:02Z"))
    assert judge.judge(p) is None
    now[0] = 21.0
    reason, message = judge.judge(p) or ("", "")
    assert reason == "NeverReady"
    assert message.endswith(STATUS_400)
    ready = _running()
    ready["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    assert judge.judge(ready) is None
    assert not judge.pending()


def test_off_unless_set() -> None:
    judge = PodJudge(None, "ml", max_restarts=0, clock=lambda: 1e9)
    assert not judge.wants_events
    judge.on_event(_unhealthy(STATUS_400, "2026-11-27T09:00:00Z", "2026-11-27T10:00:02Z"))
    assert judge.judge(_running()) is None


def test_without_rights_on_events_ready_grace_is_off_and_the_progress_says_so() -> None:
    judge = PodJudge(None, "ml", max_restarts=0, ready_grace=20, clock=lambda: 1e9)
    judge.events_refused(Forbidden("watch events ml: 403 forbidden", status=403))
    assert not judge.wants_events
    assert "grant list and watch on events" in judge.warnings[0]
    judge.on_event(_unhealthy(STATUS_400, "2026-11-27T09:00:00Z", "2026-11-27T10:00:02Z"))
    assert judge.judge(_running()) is None


# The kubelet's events stop after about 25 per pod (client-go's spam filter): on a busy node a
# server that refused connections for ~40 s used them up, and its "400"s were never reported.
# Past the grace without a definite answer, the gate asks the server itself.
OWN_400 = (
    "Readiness probe failed: HTTP probe failed with statuscode: 400 (asked by the gate: GET "
    "/v2/health/ready on port 8080 of container model; ...)"
)


def test_past_the_grace_with_only_refusals_reported_the_gate_asks_and_decides() -> None:
    nr = NeverReady(30)
    p = _running()
    refused = [_unhealthy(REFUSED, STARTED, "2026-11-27T10:00:20Z", uid="e0")]
    nr.observe(p, refused, now=20.0)  # seen 20 s after the start by the kubelet's clock: t0 = 0
    assert not nr.ask_due(p, 29.0, every_s=2)  # within the grace: the server may be starting
    assert nr.near_grace(26.0, lead_s=5)
    assert not nr.near_grace(24.0, lead_s=5)
    assert nr.ask_due(p, 30.0, every_s=2)
    nr.asked(p, 30.0, None)  # no answer yet (refused): asked again 2 s later, not before
    assert not nr.ask_due(p, 31.0, every_s=2)
    assert nr.overdue(p, 31.0) is None
    assert nr.ask_due(p, 32.0, every_s=2)
    nr.asked(p, 32.0, OWN_400)
    assert nr.pending()
    nr.observe(p, refused, now=32.5)  # the same old event: the gate's answer stands
    text = nr.overdue(p, 32.5) or ""
    assert text.endswith(OWN_400)
    assert "32 s after its container started (ready_grace 30 s)" in text


def test_a_probe_reported_after_the_gates_question_is_the_kubelets_word_again() -> None:
    nr = NeverReady(30)
    p = _running()
    nr.observe(p, [_unhealthy(REFUSED, STARTED, "2026-11-27T10:00:20Z", uid="e0")], now=20.0)
    nr.asked(p, 30.0, OWN_400)
    later = [_unhealthy(REFUSED, STARTED, "2026-11-27T10:00:31Z", uid="e0")]
    nr.observe(p, later, now=31.0)  # a newer refusal (a restarting server): no verdict
    assert nr.overdue(p, 31.0) is None


def test_judge_asks_the_server_itself_once_the_grace_is_over() -> None:
    now = [20.0]
    asked: list[str] = []

    def ask(p: Obj) -> str | None:
        asked.append(str(p["metadata"]["uid"]))
        return OWN_400

    judge = PodJudge(
        None, "ml", max_restarts=0, ready_grace=30, clock=lambda: now[0], ask_ready=ask
    )
    p = _running()
    judge.on_event(_unhealthy(REFUSED, STARTED, "2026-11-27T10:00:20Z"))
    assert judge.judge(p) is None
    assert not asked
    assert not judge.pending()
    now[0] = 26.0
    assert judge.pending()  # within 5 s of the end: the wait ticks, so the question is on time
    assert judge.judge(p) is None
    assert not asked
    now[0] = 30.0
    reason, message = judge.judge(p) or ("", "")
    assert (reason, asked) == ("NeverReady", ["p1"])
    assert message.endswith(OWN_400)


def test_judge_without_a_cluster_asks_nobody() -> None:
    judge = PodJudge(None, "ml", max_restarts=0, ready_grace=30, clock=lambda: 100.0)
    assert judge.ask_ready is None
    judge.on_event(_unhealthy(REFUSED, STARTED, "2026-11-27T10:00:20Z"))
    assert judge.judge(_running()) is None
    assert not judge.pending()
