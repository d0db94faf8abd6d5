"""Latency: the one nearest-rank percentile, and the summary of a measurement."""

from __future__ import annotations

import pytest

from rolloutgate.checks.latency import Latency, percentile


@pytest.mark.parametrize(
    ("samples", "p", "expected"),
    [
        ([5.0], 50, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),  # rank ceil(0.5*4)=2
        ([4.0, 3.0, 2.0, 1.0, 5.0], 50, 3.0),  # unsorted input; rank 3
        (list(map(float, range(1, 21))), 95, 19.0),  # rank ceil(0.95*20)=19
        (list(map(float, range(1, 21))), 100, 20.0),
        (list(map(float, range(1, 101))), 95, 95.0),
        (list(map(float, range(1, 101))), 99, 99.0),
    ],
)
def test_nearest_rank_percentile(samples: list[float], p: float, expected: float) -> None:
    assert percentile(samples, p) == expected


def test_percentile_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="no samples"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], 0)


def test_summary_names_percentiles_and_failures() -> None:
    latency = Latency(samples_ms=(10.0, 20.0, 30.0, 40.0), errors=("GET / -> 503",))
    assert (latency.p50_ms, latency.p95_ms) == (20.0, 40.0)
    assert latency.summary() == "p50 20 ms, p95 40 ms over 4 requests (min 10, max 40)"
    assert Latency((), ("a", "b")).summary() == "no successful request of 2"
