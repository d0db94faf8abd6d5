"""The canary's traffic engine on fake clients (no network): worker threads, pairs, timeouts and
broken connections filed against the arm that gave them, the stop rules, and samples that come
back after the traffic ended. The same engine against real loopback servers is
tests/plugin/test_canary_traffic.py."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from rolloutgate.canary.judge import judge
from rolloutgate.canary.observations import ARMS, Arm, Item, Observations, latencies
from rolloutgate.canary.thresholds import Thresholds
from rolloutgate.canary.traffic import Traffic, plan
from rolloutgate.checks.client import AnswerTimedOut, EndpointUnreachable
from rolloutgate.checks.httpclient import Request

REQUEST = Request("POST", "/predict", (), {"instances": [[1.0]]})


class Response:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self._body = status, body
        self.text = str(body)

    def json(self) -> Any:
        return self._body


# What a fake arm does with the n-th request it gets (n counts from 0 over all its workers):
# a Response, or an exception to raise.
Behaviour = Callable[[int], Any]


def answers(n: int) -> Response:
    time.sleep(0.001)  # a server takes a while: the workers take turns
    return Response(200, {"predictions": [1]})


def times_out(n: int) -> Any:
    return AnswerTimedOut("POST http://arm/predict got no answer within 0.05 s")


def breaks(n: int) -> Any:
    return EndpointUnreachable("POST http://arm/predict got no answer: connection reset")


class Arms:
    """Fake clients for both arms; counts requests and the threads that sent them."""

    def __init__(self, **behaviour: Behaviour) -> None:
        self.behaviour: dict[str, Behaviour] = {"baseline": answers, "canary": answers}
        self.behaviour.update(behaviour)
        self.count: Counter[str] = Counter()
        self.threads: set[str] = set()
        self.closed = 0
        self._lock = threading.Lock()

    def connect(self, arm: Arm, pod: str) -> Any:
        fake = self

        class Client:
            def send(self, request: Request) -> Any:
                with fake._lock:
                    n = fake.count[arm]
                    fake.count[arm] += 1
                    fake.threads.add(threading.current_thread().name)
                what = fake.behaviour[arm](n)
                if isinstance(what, BaseException):
                    raise what
                return what

            def close(self) -> None:
                with fake._lock:
                    fake.closed += 1

        return Client()


def observations(n_items: int = 10) -> Observations:
    obs = Observations()
    obs.items = {f"set:{k}": Item(f"set:{k}", REQUEST, labels=(1,)) for k in range(n_items)}
    return obs


def send(
    arms: Arms,
    obs: Observations,
    *,
    requests: int = 60,
    warmup: int = 0,
    concurrency: int = 2,
    deadline_s: float = 30.0,
    request_timeout: float = 0.05,
    thresholds: Thresholds | None = None,
) -> Traffic:
    t = thresholds or Thresholds()
    traffic = Traffic(
        arms.connect,
        obs,
        concurrency=concurrency,
        request_timeout=request_timeout,
        max_consecutive_errors=t.max_consecutive_errors,
        canary_failing_streak=t.failing_streak,
        seed=7,
    )
    schedule = plan(obs.items, requests=requests, warmup=warmup, rng=random.Random(3))
    traffic.run(schedule, deadline=time.monotonic() + deadline_s)
    return traffic


def test_every_planned_request_goes_to_both_arms_once_from_every_worker() -> None:
    arms, obs = Arms(), observations()
    send(arms, obs, requests=60, warmup=5, concurrency=3)
    for arm in ARMS:
        indexes = sorted(s.index for s in obs.samples if s.arm == arm)
        assert indexes == list(range(65))  # warm-up 0-4, then the 60 measured
        assert len(obs.measured(arm)) == 60
    assert arms.threads == {f"rolloutgate-canary-{k}" for k in range(3)}
    assert arms.closed == 6  # each worker's client of each arm
    # A pair is the same input on both arms.
    by_index = {(s.arm, s.index): s.item for s in obs.samples}
    assert all(by_index[("baseline", i)] == by_index[("canary", i)] for i in range(65))
    assert obs.stopped == []
    assert obs.canary_failing is None
    # Times are the traffic's own clock, from 0, in sending order within a worker.
    assert all(0 <= s.at < 30 for s in obs.samples)


def test_a_canary_that_never_answers_is_stopped_and_fails_on_errors() -> None:
    arms, obs = Arms(canary=times_out), observations()
    send(arms, obs, requests=200, warmup=20)
    t = Thresholds()
    # Stopped after the streak, not after 220 timeouts; warm-up requests count for it.
    assert t.failing_streak <= arms.count["canary"] < t.failing_streak + 2
    assert obs.canary_failing is not None
    assert "4 requests in a row failed on the canary" in obs.canary_failing
    assert {s.outcome for s in obs.samples if s.arm == "canary"} == {"timeout"}
    result = judge(obs, t)
    errors = result.metric("errors")
    assert (errors.verdict, errors.critical) == ("fail", True)
    assert "the canary stopped answering" in errors.reason
    assert "p of 4 failures against none = 0.0143" in errors.reason
    assert result.verdict == "fail"


def test_a_timeout_is_not_sent_again_and_ranks_slower_than_every_answer() -> None:
    def slow_then_timeout(n: int) -> Any:
        if n % 10 == 3:
            # Waited far beyond an answer's 1 ms: at load average 13 an answer took 60 ms
            # once, as long as a 0.06 s wait here (the ranking then depended on the machine).
            time.sleep(0.3)
            return times_out(n)
        return answers(n)

    arms, obs = Arms(canary=slow_then_timeout), observations()
    send(arms, obs, requests=40, concurrency=1)
    canary = [s for s in obs.samples if s.arm == "canary"]
    assert len(canary) == 40  # one sample per request: a timeout is not retried
    timeouts = [s for s in canary if s.outcome == "timeout"]
    assert len(timeouts) == 4
    answered = [s.latency_ms for s in canary if s.ok]
    # In the canary's latencies, with their elapsed time: above every answer.
    assert sorted(latencies(obs, "canary"))[-4:] == sorted(s.latency_ms for s in timeouts)
    assert min(s.latency_ms for s in timeouts) > max(answered)
    errors = judge(obs, Thresholds(min_samples=20)).metric("errors")
    assert errors.figures["canary_errors"] == 4
    assert errors.figures["canary_error_kinds"] == {"timeout": 4}


def test_a_broken_connection_is_sent_again_and_counts_against_the_arm_when_it_breaks_twice() -> (
    None
):
    # Request 0 breaks once (the path's: sent again, answered); request 1 breaks twice.
    def flaky(n: int) -> Any:
        return breaks(n) if n in (0, 2, 3) else answers(n)

    arms, obs = Arms(canary=flaky), observations()
    send(arms, obs, requests=10, concurrency=1)
    canary = [s for s in obs.samples if s.arm == "canary"]
    assert [s.outcome for s in canary[:5]] == ["transport", "ok", "transport", "reset", "ok"]
    assert [s.index for s in canary[:5]] == [0, 0, 1, 1, 2]
    assert len(obs.measured("canary")) == 12
    errors = judge(obs, Thresholds(min_samples=5)).metric("errors")
    # The transport failures are not judged; the second break is the canary's.
    assert (errors.figures["canary_errors"], errors.figures["canary_requests"]) == (1, 10)


def test_a_canary_that_answers_500_to_everything_is_stopped_too() -> None:
    arms, obs = Arms(canary=lambda n: Response(500, {"error": "boom"})), observations()
    send(arms, obs, requests=100)
    assert obs.canary_failing is not None
    assert "(last: HTTP 500: boom)" in obs.canary_failing
    assert arms.count["canary"] < 10


def test_when_neither_arm_answers_the_path_is_broken_and_the_run_inconclusive() -> None:
    arms, obs = Arms(baseline=breaks, canary=breaks), observations()
    send(arms, obs, requests=100)
    assert obs.canary_failing is None
    assert len(obs.stopped) == 1
    assert "got no answer from either arm" in obs.stopped[0]
    assert arms.count["canary"] < 16  # 4 pairs, each sent twice, and what was in flight
    result = judge(obs)
    assert result.verdict == "inconclusive"
    assert result.metric("errors").verdict != "fail"


def test_a_baseline_that_stops_answering_makes_the_run_inconclusive_not_failed() -> None:
    arms, obs = Arms(baseline=times_out), observations()
    send(arms, obs, requests=100)
    assert obs.canary_failing is None
    assert "failed on the baseline and were answered by the canary" in obs.stopped[0]
    assert judge(obs).verdict == "inconclusive"


def test_streaks_are_of_pairs_in_a_row() -> None:
    # The canary fails every other request: never 4 in a row; the run is judged in full.
    arms, obs = Arms(canary=lambda n: times_out(n) if n % 2 else answers(n)), observations()
    send(arms, obs, requests=60, concurrency=1)
    assert obs.canary_failing is None
    assert obs.stopped == []
    assert len(obs.measured("canary")) == 60
    errors = judge(obs).metric("errors")
    assert (errors.verdict, errors.critical, errors.figures["canary_errors"]) == ("fail", False, 30)


def test_the_deadline_stops_the_traffic_and_says_how_far_it_got() -> None:
    def slow(n: int) -> Response:
        time.sleep(0.01)
        return answers(n)

    arms, obs = Arms(baseline=slow, canary=slow), observations()
    start = time.monotonic()
    send(arms, obs, requests=10_000, deadline_s=0.3)
    assert time.monotonic() - start < 2
    assert len(obs.stopped) == 1
    assert obs.stopped[0].startswith("traffic deadline reached after ")
    # Every request sent was sent to both arms.
    counts = Counter(s.arm for s in obs.samples)
    assert counts["baseline"] == counts["canary"] > 0


def test_a_stop_from_outside_ends_the_traffic_within_a_request() -> None:
    arms, obs = Arms(), observations()
    traffic = Traffic(
        arms.connect,
        obs,
        concurrency=2,
        request_timeout=0.05,
        max_consecutive_errors=4,
        seed=1,
        min_duration=60.0,  # spread: the workers wait between requests
    )
    threading.Timer(0.3, traffic.stop.set).start()
    start = time.monotonic()
    schedule = plan(obs.items, requests=200, warmup=0, rng=random.Random(1))
    traffic.run(schedule, deadline=time.monotonic() + 60)
    assert time.monotonic() - start < 2
    assert 0 < len(obs.samples) < 20


def test_an_answer_that_comes_after_the_traffic_ended_is_counted_not_judged() -> None:
    release = threading.Event()

    def stuck(n: int) -> Response:
        # Past its timeout (a server trickling bytes keeps a read timeout from firing).
        release.wait(timeout=10)
        return answers(n)

    arms, obs = Arms(canary=stuck), observations()
    start = time.monotonic()
    send(arms, obs, requests=1, concurrency=1, request_timeout=0.05, deadline_s=0.2)
    # The deadline, then the worker waited for two request timeouts and a second, no longer.
    assert time.monotonic() - start < 2
    assert obs.stopped == ["traffic deadline reached after 1 of 1 requests per arm"]
    assert not any(s.arm == "canary" for s in obs.samples)
    release.set()
    for t in threading.enumerate():
        if t.name == "rolloutgate-canary-0":
            t.join(timeout=5)
    # The canary's answer (and the baseline's when it was sent second) came too late.
    assert obs.late == 2 - len(obs.samples) >= 1
    assert not any(s.arm == "canary" for s in obs.samples)


@pytest.mark.parametrize(
    ("confidence", "max_errors", "streak"), [(0.98, 4, 4), (0.99, 4, 5), (0.98, 6, 6)]
)
def test_the_failing_streak_is_long_enough_to_be_significant(
    confidence: float, max_errors: int, streak: int
) -> None:
    from scipy.stats import fisher_exact

    t = Thresholds(confidence=confidence, max_consecutive_errors=max_errors)
    assert t.failing_streak == streak
    n = t.failing_streak
    assert fisher_exact([[n, 0], [0, n]], alternative="greater").pvalue < t.alpha
    if n > max_errors:  # one pair fewer would not be
        assert fisher_exact([[n - 1, 0], [0, n - 1]], alternative="greater").pvalue >= t.alpha


def test_a_streak_begun_in_the_warm_up_goes_on_in_the_measured_traffic() -> None:
    arms, obs = Arms(canary=times_out), observations()
    # The warm-up (2 pairs, both failing on the canary), then the measured requests, as the
    # run sends them: two Traffic runs on one Observations.
    schedule = plan(obs.items, requests=50, warmup=2, rng=random.Random(3))
    for part in ([e for e in schedule if e[1]], [e for e in schedule if not e[1]]):
        traffic = Traffic(
            arms.connect,
            obs,
            concurrency=1,
            request_timeout=0.05,
            max_consecutive_errors=4,
            canary_failing_streak=4,
            seed=1,
        )
        traffic.run(part, deadline=time.monotonic() + 30)
    assert obs.canary_failing is not None
    assert len([s for s in obs.samples if s.arm == "canary"]) == 4  # 2 warm-up + 2 measured
