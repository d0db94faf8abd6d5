"""The HTTP client basics every check shares, and the V2 client.

``EndpointUnreachable`` (no HTTP answer at all), ``describe`` (a response in one line for
messages), ``json_of`` and ``wait_answering`` serve every protocol; ``V2Client`` is the Open
Inference Protocol client behind the ``rolloutgate_v2`` fixture (metadata checks). Golden cases,
their requests and their comparison, for every protocol, are ``cases``'; latency is
``latency``'s. Nothing here knows Kubernetes: the endpoint is a base URL.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

import requests

from rolloutgate.config import HealthPaths
from rolloutgate.errors import GateError


class EndpointUnreachable(GateError):
    """An HTTP request to the model service got no answer (connection refused, timeout)."""


class AnswerTimedOut(EndpointUnreachable):
    """The request was sent and no answer came within the timeout: the server's doing (a
    refused or broken connection may be the path's), so the canary files it against the arm."""


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.health = health or HealthPaths()
        self.session = session or requests.Session()

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> requests.Response:
        url = self.base_url + path.format(model=self.model)
        try:
            return self.session.request(method, url, json=body, timeout=self.timeout)
        except requests.ReadTimeout as e:
            # from None: pytest would print the chained transport error's frames with their
            # arguments, the request's headers (credentials) among them.
            raise AnswerTimedOut(
                f"{method} {url} got no answer within {self.timeout:g} s: {e}"
            ) from None
        except requests.RequestException as e:
            raise EndpointUnreachable(
                f"{method} {url} got no answer within {self.timeout:g} s: {e}"
            ) from None

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
