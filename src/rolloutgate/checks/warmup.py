"""Warm-up: requests sent to each new pod before the latency budget is measured, and not held
against it. A model server's first requests pay for what it does lazily (loading weights on
first use, JIT compilation, filling caches); a budget measured over them judges the start-up,
not the service. Their latencies are kept: the first one is what the first user of a new pod
waits.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from rolloutgate.checks.cases import HttpClient, Request
from rolloutgate.checks.client import EndpointUnreachable, describe


@dataclass(frozen=True)
class WarmUp:
    """One pod's warm-up: the latency of each request that answered 2xx, in order, and what
    went wrong with the others (the checks after it judge the pod; the warm-up does not)."""

    samples_ms: tuple[float, ...]
    errors: tuple[str, ...] = ()


def warm_up(clients: Mapping[str, HttpClient], request: Request, n: int) -> dict[str, WarmUp]:
    """Send ``request`` ``n`` times to each pod's client, one after another; pod → WarmUp."""
    found: dict[str, WarmUp] = {}
    for pod, client in clients.items():
        samples: list[float] = []
        errors: list[str] = []
        for _ in range(n):
            start = time.perf_counter()
            try:
                response = client.send(request)
            except EndpointUnreachable as e:
                errors.append(str(e))
                continue
            if response.ok:
                samples.append(round((time.perf_counter() - start) * 1000, 1))
            else:
                errors.append(describe(response))
        found[pod] = WarmUp(tuple(samples), tuple(errors))
    return found


def summary(found: Mapping[str, WarmUp], n: int) -> str | None:
    """One line for the terminal: the slowest first request and the rest; None without any."""
    firsts = {pod: w.samples_ms[0] for pod, w in found.items() if w.samples_ms}
    if not firsts:
        return None
    slowest = max(firsts, key=lambda pod: firsts[pod])
    later = [ms for w in found.values() for ms in w.samples_ms[1:]]
    rest = f", later ones up to {max(later):.0f} ms" if later else ""
    failed = sum(len(w.errors) for w in found.values())
    errors = f", {failed} failed" if failed else ""
    return (
        f"warm-up: {n} request(s) per pod, not timed by the latency budget: first request up "
        f"to {firsts[slowest]:.0f} ms (pod {slowest}){rest}{errors}"
    )
