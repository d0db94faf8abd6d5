"""When a Service's routing has settled on a release (EndpointSlices, recorded shapes), and
how a request that met no pod is sent again."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from rolloutgate.checks import client
from rolloutgate.checks.client import EndpointRefused, EndpointUnreachable, retry_unrouted
from rolloutgate.release.routing import unsettled


def endpoint(pod: str, *, ready: bool | None = True, terminating: bool | None = None) -> Any:
    conditions: dict[str, bool] = {}
    if ready is not None:
        conditions["ready"] = ready
        conditions["serving"] = ready
    if terminating is not None:
        conditions["terminating"] = terminating
    return {
        "addresses": ["10.88.0.7"],
        "conditions": conditions,
        "targetRef": {"kind": "Pod", "name": pod, "namespace": "iris"},
    }


def slice_of(*endpoints: Any) -> Any:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "iris-x7k2p", "labels": {"kubernetes.io/service-name": "iris"}},
        "addressType": "IPv4",
        "endpoints": list(endpoints),
    }


NEW = {"iris-v2-aaaa", "iris-v2-bbbb"}


def test_only_ready_pods_of_the_release_is_settled() -> None:
    assert unsettled([slice_of(endpoint("iris-v2-aaaa"), endpoint("iris-v2-bbbb"))], NEW) == []


def test_an_unset_ready_condition_means_ready() -> None:
    assert unsettled([slice_of(endpoint("iris-v2-aaaa", ready=None))], NEW) == []


def test_a_terminating_pod_of_the_release_before_is_not_settled() -> None:
    # Right after the rollout: the v1 pod shuts down, the endpoints controller marked it.
    old = endpoint("iris-v1-cccc", ready=False, terminating=True)
    found = unsettled([slice_of(endpoint("iris-v2-aaaa"), old)], NEW)
    assert found == ["pod iris-v1-cccc terminating"]


def test_a_not_ready_pod_outside_the_release_is_not_settled() -> None:
    found = unsettled([slice_of(endpoint("iris-v2-aaaa"), endpoint("iris-v1-c", ready=False))], NEW)
    assert found == ["pod iris-v1-c (not of this release) not ready"]


def test_a_slice_not_yet_holding_the_release_is_not_settled() -> None:
    assert unsettled([slice_of(endpoint("iris-v1-cccc"))], NEW) == [
        "no ready pod of this release yet"
    ]
    assert unsettled([], NEW) == ["no ready pod of this release yet"]


def test_another_workloads_ready_pod_the_service_selects_is_left_alone() -> None:
    # A finished rollout leaves no pod of the release before running: a ready pod outside the
    # release that is not terminating belongs to something else the Service selects.
    assert unsettled([slice_of(endpoint("iris-v2-aaaa"), endpoint("other-1"))], NEW) == []


def test_endpoints_across_several_slices_count_together() -> None:
    old = endpoint("iris-v1-cccc", ready=False, terminating=True)
    found = unsettled([slice_of(endpoint("iris-v2-aaaa")), slice_of(old)], NEW)
    assert found == ["pod iris-v1-cccc terminating"]


def answer(status: int) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    return response


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client.time, "sleep", lambda _s: None)


def test_a_refused_request_is_sent_again_until_it_reaches_a_pod(fast: None) -> None:
    answers: list[Any] = [EndpointRefused("refused"), answer(502), answer(504), answer(200)]

    def send() -> requests.Response:
        got = answers.pop(0)
        if isinstance(got, Exception):
            raise got
        return got

    assert retry_unrouted(send, 10.0).status_code == 200
    assert answers == []


def test_a_model_error_is_judged_at_once(fast: None) -> None:
    calls = []

    def send() -> requests.Response:
        calls.append(1)
        return answer(503)

    assert retry_unrouted(send, 10.0).status_code == 503
    assert len(calls) == 1


def test_a_timeout_is_judged_at_once(fast: None) -> None:
    calls = []

    def send() -> requests.Response:
        calls.append(1)
        raise EndpointUnreachable("timed out")

    with pytest.raises(EndpointUnreachable, match="timed out"):
        retry_unrouted(send, 10.0)
    assert len(calls) == 1


def test_the_last_unrouted_answer_is_the_verdict_after_the_retry_time() -> None:
    calls = []

    def send() -> requests.Response:
        calls.append(1)
        return answer(502)

    assert retry_unrouted(send, 0.3).status_code == 502
    assert len(calls) >= 2
    assert retry_unrouted(send, 0.0).status_code == 502
