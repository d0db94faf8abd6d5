"""Latency: the percentile every report uses, the golden file's budget, sequential measurement.

The golden file's optional budget (docs/gate.md)::

    "latency": {"requests": 20, "p50_ms": 250, "p95_ms": 500}

``percentile`` is the one percentile of the package (nearest rank): the gate's budget, the
canary's p95/p99 budgets and its reports of numeric differences all use it, so a p95 means the
same wherever it is printed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import requests

from rolloutgate.checks.client import EndpointUnreachable, describe
from rolloutgate.errors import ConfigError


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least p% of samples <= it."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} outside (0, 100]")
    ordered = sorted(samples)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LatencyBudget:
    """p50 and p95 budgets (milliseconds) over ``requests`` sequential requests."""

    requests: int
    p50_ms: float
    p95_ms: float


def parse_budget(raw: object, bad: Callable[[str, str], ConfigError]) -> LatencyBudget | None:
    """The golden file's optional ``latency`` object (None when absent); ``bad(field,
    problem)`` makes the ConfigError that names the file."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad('"latency"', "must be an object")
    n = raw.get("requests")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise bad("latency.requests", "must be a whole number >= 1")
    budgets: list[float] = []
    for key in ("p50_ms", "p95_ms"):
        value = raw.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise bad(f"latency.{key}", "must be a number of milliseconds > 0")
        budgets.append(float(value))
    return LatencyBudget(requests=n, p50_ms=budgets[0], p95_ms=budgets[1])


@dataclass(frozen=True)
class Latency:
    """Wall-clock latencies of ``len(samples_ms)`` sequential requests; failed requests apart."""

    samples_ms: tuple[float, ...]
    errors: tuple[str, ...]

    @property
    def p50_ms(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p95_ms(self) -> float:
        return percentile(self.samples_ms, 95)

    def summary(self) -> str:
        if not self.samples_ms:
            return f"no successful request of {len(self.errors)}"
        return (
            f"p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms over {len(self.samples_ms)} "
            f"requests (min {min(self.samples_ms):.0f}, max {max(self.samples_ms):.0f})"
        )


def measure_latency(send: Callable[[], requests.Response], n: int) -> Latency:
    """Send ``n`` requests one after another; time each that answered 2xx."""
    samples: list[float] = []
    errors: list[str] = []
    for _ in range(n):
        start = time.perf_counter()
        try:
            response = send()
        except EndpointUnreachable as e:
            errors.append(str(e))
            continue
        elapsed_ms = (time.perf_counter() - start) * 1000
        if response.ok:
            samples.append(elapsed_ms)
        else:
            errors.append(describe(response))
    return Latency(samples_ms=tuple(samples), errors=tuple(errors))
