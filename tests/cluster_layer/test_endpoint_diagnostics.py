"""port_forward and diagnostics on the real cluster."""

from __future__ import annotations

import time

import pytest
import requests
from kubernetes.client import ApiClient

from rolloutgate.errors import ClusterError, RolloutFailed
from rolloutgate.kube import portforward
from rolloutgate.release import apply, diagnostics

from .conftest import deployment, service, wait_deployment, workload_ref


def test_port_forward_serves_the_pods_page(api: ApiClient, namespace: str, test_image: str) -> None:
    apply.apply(api, namespace, [deployment("web", test_image), service("web")], change_cause="t")
    wait_deployment(api, namespace, "web", deadline=time.monotonic() + 90, max_restarts=0)
    with portforward.port_forward(
        api, namespace, "web", "http", deadline=time.monotonic() + 30
    ) as url:
        assert url.startswith("http://127.0.0.1:")
        # Several requests: each connection gets its own forward.
        for _ in range(3):
            response = requests.get(f"{url}/index.html", timeout=10)
            assert response.status_code == 200
            assert response.text == "hello from rolloutgate\n"
        assert requests.get(f"{url}/missing", timeout=10).status_code == 404
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/index.html", timeout=5)


def test_port_forward_without_ready_pods_fails_at_the_deadline(
    api: ApiClient, namespace: str, test_image: str
) -> None:
    unready = deployment("web", test_image, readiness_path="/nope")
    apply.apply(api, namespace, [unready, service("web")], change_cause="t")
    with (
        pytest.raises(ClusterError, match=r"no ready pod behind service .*/web"),
        portforward.port_forward(api, namespace, "web", 80, deadline=time.monotonic() + 5),
    ):
        pass


def test_diagnostics_of_a_crash_loop(api: ApiClient, namespace: str, test_image: str) -> None:
    crash = ["/bin/busybox", "sh", "-c", "echo model file missing; exit 3"]
    apply.apply(api, namespace, [deployment("web", test_image, command=crash)], change_cause="bad")
    with pytest.raises(RolloutFailed):
        wait_deployment(api, namespace, "web", deadline=time.monotonic() + 90, max_restarts=0)
    # The gate fails at the first crash; let the kubelet get to its back-off so the diagnostics
    # of a real crash loop (state, previous log, BackOff event) are what is checked.
    deadline = time.monotonic() + 90
    web = workload_ref("web")
    while "CrashLoopBackOff" not in diagnostics.render(diagnostics.collect(api, namespace, web)):
        assert time.monotonic() < deadline, "pod never reached CrashLoopBackOff"
        time.sleep(1)
    diag = diagnostics.collect(api, namespace, workload_ref("web"), log_lines=10)
    assert diag["errors"] == []
    assert diag["history"][0]["change_cause"] == "bad"
    assert diag["pods"][0]["revision"] == "1"
    text = diagnostics.render(diag)
    assert "CrashLoopBackOff" in text
    assert "model file missing" in text
    assert "BackOff" in text  # the kubelet's event
    assert "rev 1: rolloutgate/busybox:test" in text


def test_diagnostics_of_a_missing_deployment(api: ApiClient, namespace: str) -> None:
    diag = diagnostics.collect(api, namespace, workload_ref("nope"))
    assert diag["errors"] == [f"deployment {namespace}/nope does not exist"]
    assert "(!) deployment" in diagnostics.render(diag)
