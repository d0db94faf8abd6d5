"""The metrics check: the server's own counter must count the golden requests it answered.

A model server that answers but does not count (metrics broken, or scraped from the wrong
place) leaves operations blind after the release; the gate catches it before. The check reads
a counter from every pod of the new release, sends the golden cases, reads again, and wants
the sum to have grown by at least the number of prediction cases (those with a body) answered
2xx. Summing over the pods makes it independent of which pod served each request (a
port-forward picks one, an ingress balances). Prometheus text is parsed by
``prometheus_client``'s parser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import requests
from prometheus_client.parser import text_string_to_metric_families

from rolloutgate.checks import fanout
from rolloutgate.checks.client import EndpointUnreachable
from rolloutgate.config import MetricsCheck
from rolloutgate.errors import GateError
from rolloutgate.kube import portforward

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


class MetricsUnavailable(GateError):
    """A pod's metrics endpoint did not answer, or not in the Prometheus text format."""


@dataclass(frozen=True)
class Reading:
    """The counter's value on each pod (None: the pod does not expose it, or not yet)."""

    values: Mapping[str, float | None]
    families: tuple[str, ...]  # every family seen, for the message when the counter is absent

    @property
    def total(self) -> float:
        return sum(v for v in self.values.values() if v is not None)

    @property
    def exposed(self) -> bool:
        return any(v is not None for v in self.values.values())


def counter_value(text: str, counter: str, labels: Iterable[tuple[str, str]]) -> float | None:
    """Sum of the counter's samples whose labels match; None when the family is absent.

    ``counter`` may be given with or without ``_total`` (the parser names the family without
    it). ``_created`` samples and other suffixes are not counted.
    """
    wanted = dict(labels)
    family_name = counter.removesuffix("_total")
    found: float | None = None
    for family in text_string_to_metric_families(text):
        if family.name != family_name:
            continue
        for sample in family.samples:
            if sample.name not in (family_name, family_name + "_total"):
                continue
            if all(sample.labels.get(k) == v for k, v in wanted.items()):
                found = (found or 0.0) + float(sample.value)
        found = found if found is not None else 0.0
    return found


def duration_totals(
    text: str, name: str, labels: Iterable[tuple[str, str]]
) -> tuple[float, float] | None:
    """(count, sum) of a summary's or histogram's samples whose labels match, summed over its
    label sets; None when the family is absent. What a server says it spent on the requests
    it answered: the difference of two readings is the time spent in between. A wanted label
    the family does not carry does not filter (the gate's ``metrics.labels`` are its counter's:
    MLServer's duration has its ``model`` label, the wine example's none of ``outcome``)."""
    wanted = dict(labels)
    for family in text_string_to_metric_families(text):
        if family.name != name or family.type not in ("summary", "histogram"):
            continue
        count = total = 0.0
        for sample in family.samples:
            if all(sample.labels.get(k, v) == v for k, v in wanted.items()):
                if sample.name == name + "_count":
                    count += float(sample.value)
                elif sample.name == name + "_sum":
                    total += float(sample.value)
        return count, total
    return None


def families(text: str) -> list[str]:
    return [f.name for f in text_string_to_metric_families(text)]


def read(check: MetricsCheck, fetch_each: Mapping[str, Callable[[], requests.Response]]) -> Reading:
    """Read the counter on every pod: ``fetch_each`` maps pod names to a GET of its metrics."""
    values: dict[str, float | None] = {}
    seen: set[str] = set()

    def fetched(fetch: Callable[[], requests.Response]) -> requests.Response | Exception:
        try:
            return fetch()
        except (requests.RequestException, EndpointUnreachable) as e:
            return e

    # Every pod at once (bounded): one after another cost a round trip per replica.
    for pod, response in fanout.each(fetch_each, fetched).items():
        if isinstance(response, Exception):
            # from None: the chained transport error's traceback would show the request's headers.
            raise MetricsUnavailable(
                f"pod {pod}: GET {check.path} got no answer: {response}"
            ) from None
        if not response.ok:
            raise MetricsUnavailable(
                f"pod {pod}: GET {check.path} -> {response.status_code}: {response.text[:200]}"
            )
        try:
            values[pod] = counter_value(response.text, check.counter, check.labels)
            seen.update(families(response.text))
        except ValueError as e:
            raise MetricsUnavailable(
                f"pod {pod}: GET {check.path} is not Prometheus text format: {e}"
            ) from e
    return Reading(values, tuple(sorted(seen)))


def judge(check: MetricsCheck, before: Reading, after: Reading, expected: int) -> list[str]:
    """Problems with the counter's growth ([] = it counted at least ``expected`` requests)."""
    labels = ",".join(f'{k}="{v}"' for k, v in check.labels)
    name = f"{check.counter}{{{labels}}}" if labels else check.counter
    if not after.exposed:
        shown = ", ".join(after.families[:30]) or "none"
        return [
            f"counter {name} is not exposed at {check.path} by any pod of the release "
            f"({', '.join(after.values) or 'no pods'}); metric families seen: {shown}"
        ]
    grown = after.total - before.total
    if grown < expected:
        per_pod = ", ".join(
            f"{pod} {before.values.get(pod)} -> {value}" for pod, value in after.values.items()
        )
        return [
            f"counter {name} grew by {grown:g} while the gate sent {expected} golden "
            f"prediction request(s) answered 2xx; per pod: {per_pod}"
        ]
    return []


def same_port(pods: Iterable[dict[str, Any]], a: int | str, b: int | str) -> bool:
    """Whether ports ``a`` and ``b`` (numbers or container port names) are one port on every
    pod; False when a name is not a port of some pod. Pure."""
    try:
        return all(
            portforward.container_port(p, a) == portforward.container_port(p, b) for p in pods
        )
    except GateError:
        return False


class Getter(Protocol):
    """A client of one pod that GETs a path (``HttpClient``); EndpointUnreachable when
    no answer came."""

    def get(self, path: str) -> requests.Response: ...


@dataclass(frozen=True)
class PodMetrics:
    """Reads the counter on each given pod: through ``clients[pod]`` when given (a client of
    that pod at ``port`` already open, e.g. the replicas' of the other checks), else through
    a port-forward of its own."""

    api: ApiClient
    namespace: str
    pods: tuple[dict[str, Any], ...]
    check: MetricsCheck
    port: int | str  # container port number or name
    timeout: float
    clients: Mapping[str, Getter] = field(default_factory=dict)

    def read(self) -> Reading:
        first = self.pods[0]["metadata"]["name"] if self.pods else None

        def fetch(pod: dict[str, Any]) -> requests.Response:
            client = self.clients.get(pod["metadata"]["name"])
            if client is not None:
                # Its kept connection: a port-forward of its own per pod and read cost 188
                # streams, a third of the checks' time, at 94 replicas.
                return client.get(self.check.path)
            # Each pod's port-forward lives for its one GET, inside the bounded fan-out: at
            # most fanout.MAX_IN_FLIGHT at once. Kept for every pod, they would hold six file
            # descriptors each beside the replicas' own, and the client's port-forward waits
            # with select(), which fails on a descriptor past 1023 (at 94 replicas the read
            # was reset: "filedescriptor out of range in select()"). The first one proves the
            # right to port-forward, for the namespace (a refusal named, not a reset).
            name = pod["metadata"]["name"]
            with portforward.pod_forward(
                self.api, self.namespace, pod, self.port, probe=name == first
            ) as url:
                return requests.get(url + self.check.path, timeout=self.timeout)

        return read(self.check, {p["metadata"]["name"]: partial(fetch, p) for p in self.pods})
