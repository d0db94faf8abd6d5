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
    """Send ``request`` ``n`` times to each pod's client, the pods side by side
    (``fanout.each``), each pod's requests one after another: pod → the latencies of the
    answers (failures apart; the checks after it judge the pod, not this)."""
    return fanout.each(clients, lambda client: measure_latency(lambda: client.send(request), n))


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
