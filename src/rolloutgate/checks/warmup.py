"""Warm-up: requests sent to each new pod before the latency budget is measured, and not held
against it. A model server's first requests pay for what it does lazily (loading weights on
first use, JIT compilation, filling caches); a budget measured over them judges the start-up,
not the service. Their latencies are kept: the first one is what the first user of a new pod
waits.
"""

from __future__ import annotations

from collections.abc import Mapping

from rolloutgate.checks import fanout
from rolloutgate.checks.httpclient import HttpClient, Request
from rolloutgate.checks.latency import Latency, measure_latency


def warm_up(clients: Mapping[str, HttpClient], request: Request, n: int) -> dict[str, Latency]:
    """``n`` answers to ``request`` from each pod's client: its earlier answers to the same
    request count (``HttpClient.answered_ms``), the rest are sent now, the pods side by side
    (``fanout.each``), each pod's requests one after another. Pod → the latencies of the
    answers, earlier ones first (failures apart; the checks after it judge the pod, not
    this)."""

    def one(client: HttpClient) -> Latency:
        earlier = tuple(client.answered_ms(request)[:n])
        fresh = measure_latency(lambda: client.send(request), n - len(earlier))
        return Latency(samples_ms=earlier + fresh.samples_ms, errors=fresh.errors)

    return fanout.each(clients, one)


def summary(found: Mapping[str, Latency], n: int) -> str | None:
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
