"""The HTTP client basics every check shares, and the V2 client.

``EndpointUnreachable`` (no HTTP answer at all), ``describe`` (a response in one line for
messages), ``json_of`` and ``wait_answering`` serve every protocol; ``V2Client`` is the Open
Inference Protocol client behind the ``rolloutgate_v2`` fixture (metadata checks). Golden cases,
their requests and their comparison, for every protocol, are ``cases``'; latency is
``latency``'s. Nothing here knows Kubernetes: the endpoint is a base URL.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import requests
import urllib3

from rolloutgate.config import HealthPaths
from rolloutgate.errors import GateError


class EndpointUnreachable(GateError):
    """An HTTP request to the model service got no answer (connection refused, timeout)."""


class AnswerTimedOut(EndpointUnreachable):
    """The request was sent and no answer came within the timeout: the server's doing (a
    refused or broken connection may be the path's), so the canary files it against the arm."""


class EndpointRefused(EndpointUnreachable):
    """The connection was refused or reset: nothing listened where the request was routed."""


# A request through the Service that met no pod (refused or reset, or a proxy's "bad gateway"
# or "gateway timeout") is sent again for this long before it is judged: right after a rollout
# a node's proxy may still route to a pod of the release before, shutting down, for a few
# seconds after the endpoints say it is gone (docs/gate.md, "Routing that has settled").
UNROUTED_RETRY_S = 10.0
UNROUTED_STATUSES = frozenset({502, 504})


def retry_unrouted(send: Callable[[], requests.Response], seconds: float) -> requests.Response:
    """``send()``, sent again with backoff for up to ``seconds`` while it meets no pod; the last
    answer (or EndpointRefused) is the verdict. A timeout is not retried: a slow model must not
    take three times its time to be judged."""
    deadline = time.monotonic() + seconds
    delay = 0.2
    while True:
        try:
            response = send()
            if response.status_code not in UNROUTED_STATUSES or time.monotonic() >= deadline:
                return response
        except EndpointRefused:
            if time.monotonic() >= deadline:
                raise
        time.sleep(min(delay * random.uniform(0.8, 1.2), max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 1.0)


def no_answer(method: str, url: str, e: requests.RequestException, timeout: float) -> GateError:
    """The EndpointUnreachable of a request that got no answer: EndpointRefused when nothing
    listened, so a caller can retry that (``retry_unrouted``) and nothing else."""
    if isinstance(e, requests.ReadTimeout):
        # Sent, and no answer in time: the server's doing (the canary files it against the arm).
        return AnswerTimedOut(f"{method} {url} got no answer within {timeout:g} s: {e}")
    if isinstance(e, requests.Timeout):  # no connection in time
        return EndpointUnreachable(f"{method} {url} got no answer within {timeout:g} s: {e}")
    if isinstance(e, requests.ConnectionError):
        return EndpointRefused(f"{method} {url} got no answer: {e}")
    return EndpointUnreachable(f"{method} {url} got no answer: {e}")


def resend_if_stale(send: Callable[[], requests.Response], *, pooled: bool) -> requests.Response:
    """``send()``, once more when it met a connection closed before any answer and a pooled
    keep-alive connection may have carried it (``pooled``): a stale connection, not the server.

    Keep-alive connections are reused however long idle: a new one through a port-forward is a
    websocket through the API server and the kubelet, the cost that dominated the checks of 90
    replicas (issue 21). A server closes an idle connection, and through a port-forward that
    close reaches the client up to a second late (uvicorn closes after 5 s; the client saw it
    after 6): a request sent meanwhile meets a closed connection and gets no answer. A second
    failure, or a timeout, is the verdict as it comes.
    """
    try:
        return send()
    except requests.ConnectionError as e:
        if not (pooled and dropped_before_answer(e)):
            raise
    return send()  # the pool dropped the broken connection: this one is new


def dropped_before_answer(e: requests.RequestException) -> bool:
    """Whether the request's connection was open and then closed or reset before any answer
    came: requests raises urllib3's ProtocolError only once a connection exists, so a refused
    connect or a timeout is not one."""
    return isinstance(e, requests.ConnectionError) and any(
        isinstance(arg, urllib3.exceptions.ProtocolError) for arg in e.args
    )


def describe(response: requests.Response) -> str:
    """``GET URL -> 503: body`` for assertion messages."""
    body = response.text.strip().replace("\n", " ")
    if len(body) > 300:
        body = body[:300] + "..."
    return (
        f"{response.request.method} {response.url} -> {response.status_code}: {body or '(empty)'}"
    )


def json_of(response: requests.Response) -> dict[str, Any]:
    """The response's JSON object, or ``{"error": <why not>}`` for a body that is not one."""
    try:
        body = response.json()
    except ValueError:
        return {"error": f"not JSON: {describe(response)}"}
    return body if isinstance(body, dict) else {"error": f"not an object: {describe(response)}"}


class V2Client:
    """A small Open Inference Protocol (V2) REST client; every request has a timeout.

    Health paths come from ``HealthPaths`` (configurable for servers that do not speak V2);
    ``{model}`` in them is replaced by the model's name.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        timeout: float,
        health: HealthPaths | None = None,
        session: requests.Session | None = None,
        unrouted_retry_s: float = 0.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.health = health or HealthPaths()
        self.session = session or requests.Session()
        # Through the Service: a request that met no pod is retried for this long.
        self.unrouted_retry_s = unrouted_retry_s

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> requests.Response:
        url = self.base_url + path.format(model=self.model)

        def send() -> requests.Response:
            try:
                return self.session.request(method, url, json=body, timeout=self.timeout)
            except requests.RequestException as e:
                # from None: pytest would print the chained transport error's frames with their
                # arguments, the request's headers (credentials) among them.
                raise no_answer(method, url, e, self.timeout) from None

        return retry_unrouted(send, self.unrouted_retry_s)

    def live(self) -> requests.Response:
        return self.request("GET", self.health.live)

    def ready(self) -> requests.Response:
        return self.request("GET", self.health.ready)

    def model_ready(self) -> requests.Response:
        return self.request("GET", self.health.model_ready)

    def server_metadata(self) -> requests.Response:
        return self.request("GET", "/v2")

    def model_metadata(self) -> requests.Response:
        return self.request("GET", "/v2/models/{model}")

    def infer(self, body: Mapping[str, Any]) -> requests.Response:
        return self.request("POST", "/v2/models/{model}/infer", body)

    def close(self) -> None:
        self.session.close()


class Answering(Protocol):
    """A client with a base URL and a cheap request that shows the server answers."""

    base_url: str

    def live(self) -> requests.Response: ...


def wait_answering(client: Answering, *, deadline: float) -> requests.Response:
    """Poll the live path until the server answers at all (any status), before ``deadline``.

    A fresh port-forward or a just-updated ingress may refuse the first connections; the
    status itself is the health test's business, not this wait's.
    """
    last = "no attempt"
    while True:
        try:
            return client.live()
        except EndpointUnreachable as e:
            last = str(e)
        if time.monotonic() >= deadline:
            raise EndpointUnreachable(
                f"{client.base_url} did not answer before the deadline: {last}"
            )
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
