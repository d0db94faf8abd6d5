"""Golden predictions (one test per case of the golden file, asked of every replica) and the
latency budget (through the endpoint, as users reach the model)."""

from __future__ import annotations

import pytest

from rolloutgate import Case, Golden, HttpClient, Latency, check, each_replica, measure_latency


def test_golden_case(rolloutgate_replicas: dict[str, HttpClient], rolloutgate_case: Case) -> None:
    assert rolloutgate_replicas, "no pod of the new release behind the Service"
    case = rolloutgate_case
    answers = each_replica(
        rolloutgate_replicas, lambda client: check(case, client.send(case.request))
    )
    wrong = [f"pod {pod}: " + "; ".join(problems) for pod, problems in answers.items() if problems]
    assert not wrong, (
        f"case {rolloutgate_case.name!r}: {len(wrong)} of {len(rolloutgate_replicas)} "
        "replicas answered wrong: " + " | ".join(wrong)
    )


def test_latency_budget(
    rolloutgate_golden: Golden,
    rolloutgate_warmup: dict[str, Latency],  # each pod answered a few requests first, untimed
    rolloutgate_http: HttpClient,
) -> None:
    budget = rolloutgate_golden.latency
    if budget is None:
        pytest.skip(f"not configured: no latency budget in {rolloutgate_golden.path}")
    request = rolloutgate_golden.cases[0].request
    latency = measure_latency(lambda: rolloutgate_http.send(request), budget.requests)
    assert not latency.errors, (
        f"{len(latency.errors)} of {budget.requests} requests failed: {latency.errors[0]}"
    )
    verdict = (
        f"latency {latency.summary()}; budget p50 {budget.p50_ms:g} ms, p95 {budget.p95_ms:g} ms"
    )
    assert latency.p50_ms <= budget.p50_ms, verdict
    assert latency.p95_ms <= budget.p95_ms, verdict
