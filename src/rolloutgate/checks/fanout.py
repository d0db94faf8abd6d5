"""Asking every replica at once, within bounds.

A release's checks ask each of its pods the same things (health, every golden case, the
warm-up). One after another they took a port-forward round trip per pod and request: linear in
the replicas (issue 21). ``each`` asks them side by side, at most ``limit`` at a time, so the
number of requests in flight (and of port-forward streams open for them) stays bounded whatever
the replica count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

C = TypeVar("C")
T = TypeVar("T")

# Requests in flight at once to a release's pods: each is one relayed connection (one
# port-forward stream through the API server and the kubelet). Enough to hide a round trip
# per pod; few enough that 100 replicas do not open 100 streams at once on a small API server.
MAX_IN_FLIGHT = 16


def each(
    replicas: Mapping[str, C], ask: Callable[[C], T], *, limit: int = MAX_IN_FLIGHT
) -> dict[str, T]:
    """``ask(client)`` for every replica, at most ``limit`` at a time; pod → answer, in the
    replicas' order. When any raised, the first one's error (in that order) is raised, after
    every other call has finished (none is left running behind the caller's back)."""
    if len(replicas) <= 1 or limit <= 1:
        return {pod: ask(client) for pod, client in replicas.items()}
    with ThreadPoolExecutor(
        max_workers=min(limit, len(replicas)), thread_name_prefix="rolloutgate-ask"
    ) as pool:
        futures = {pod: pool.submit(ask, client) for pod, client in replicas.items()}
    return {pod: future.result() for pod, future in futures.items()}
