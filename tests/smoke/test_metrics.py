"""The server counts what it answers: its request counter grows by the golden requests.

Runs when the profile (or [tool.rolloutgate]) names a metrics endpoint: ``metrics.path`` and
``metrics.counter`` (docs/gate.md).
"""

from __future__ import annotations

import pytest

from rolloutgate import Golden, HttpClient, PodMetrics, judge_metrics


def test_server_counts_the_golden_requests(
    rolloutgate_metrics: PodMetrics | None,
    rolloutgate_http: HttpClient,
    rolloutgate_golden: Golden,
) -> None:
    if rolloutgate_metrics is None:
        pytest.skip("not configured: set metrics.path and metrics.counter (docs/gate.md)")
    before = rolloutgate_metrics.read()
    answered = 0
    for case in rolloutgate_golden.cases:
        response = rolloutgate_http.send(case.request)
        # A prediction carries a body; a GET case (model status, metadata) is not one.
        answered += case.request.body is not None and case.status // 100 == 2 and response.ok
    after = rolloutgate_metrics.read()
    problems = judge_metrics(rolloutgate_metrics.check, before, after, expected=answered)
    assert not problems, "; ".join(problems)
