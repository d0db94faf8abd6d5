"""The HTTP request of a golden case and the client that sends it to one model server.

Every request has a timeout and goes through the run's one session (the configured headers and
the endpoint URL's credentials, never shown); through the Service, a request that met no pod is
sent again for a while (``retry_unrouted``). ``client_for`` picks the client of the golden
file's protocol: this one, or for ``grpc`` one that makes each request its route's gRPC call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from rolloutgate.checks import credentials, protocols
from rolloutgate.checks.client import no_answer, resend_if_stale, retry_unrouted
from rolloutgate.checks.loopback import LoopbackSender

if TYPE_CHECKING:
    from rolloutgate.checks.cases import Golden
    from rolloutgate.config import GateConfig


@dataclass(frozen=True)
class Request:
    """An HTTP request of a case; ``body`` None sends no body. ``{model}`` in ``path`` is the
    golden file's model."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None

    def as_json(self) -> dict[str, Any]:
        """The request in the golden file's full form."""
        out: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.headers:
            out["headers"] = dict(self.headers)
        if self.body is not None:
            out["body"] = self.body
        return out


# Answers a client keeps (request, latency): the warm-up needs the first few; a client that
# sends thousands (the canary's) must not keep them all.
KEPT_ANSWERS = 64


class HttpClient:
    """Sends cases and health checks to one base URL; every request has a timeout.

    ``health`` maps check names (``protocols.HEALTH_CHECKS``) to paths; ``{model}`` in a path
    is replaced by ``model``. ``forwarded``: ``base_url`` is the gate's own port-forward on
    127.0.0.1 (plain HTTP), asked through ``loopback.LoopbackSender``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        timeout: float,
        health: Mapping[str, str],
        session: requests.Session | None = None,
        unrouted_retry_s: float = 0.0,
        forwarded: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.health = dict(health)
        self.session = session or requests.Session()
        # The gate's own forward: straight through urllib3, without the session's per-request
        # merging (``loopback``); the same answers and errors.
        self._loopback = LoopbackSender(self.base_url, self.session, timeout) if forwarded else None
        # Through the Service: a request that met no pod is retried for this long.
        self.unrouted_retry_s = unrouted_retry_s
        # Whether a connection may be waiting in the session's pool (an answer came before).
        self._answered = False
        # The first answered (2xx) requests and their latencies: the warm-up counts what the
        # checks before it already sent to this pod (the golden cases ask every replica).
        self._answers: list[tuple[Request, float]] = []
        # The latest answer to each health path and when it came (``health_check(max_age_s=)``).
        self._health_answers: dict[str, tuple[float, requests.Response]] = {}

    def url(self, path: str) -> str:
        return self.base_url + path.replace("{model}", self.model)

    def send(self, request: Request) -> requests.Response:
        start = time.perf_counter()
        response = retry_unrouted(lambda: self._send(request), self.unrouted_retry_s)
        if response.ok and len(self._answers) < KEPT_ANSWERS:
            self._answers.append((request, (time.perf_counter() - start) * 1000))
        return response

    def answered_ms(self, request: Request) -> list[float]:
        """Latencies (ms, in order) of this client's earlier 2xx answers to ``request``,
        among its first ``KEPT_ANSWERS`` answers."""
        return [ms for sent, ms in self._answers if sent == request]

    def _send(self, request: Request) -> requests.Response:
        url = self.url(request.path)

        def send() -> requests.Response:
            if self._loopback is not None:
                return self._loopback.request(
                    request.method, url, headers=dict(request.headers), json=request.body
                )
            return self.session.request(
                request.method,
                url,
                headers=dict(request.headers),
                json=request.body,
                timeout=self.timeout,
            )

        try:
            response = resend_if_stale(send, pooled=self._answered)
        except requests.RequestException as e:
            # from None: pytest would print the chained transport error's frames with their
            # arguments, the request's headers (credentials) among them.
            raise no_answer(request.method, url, e, self.timeout) from None
        self._answered = True
        return response

    def get(self, path: str) -> requests.Response:
        return self.send(Request("GET", path))

    def health_check(self, name: str, *, max_age_s: float = 0.0) -> requests.Response | None:
        """The answer of one configured health check; None when it is not configured.
        ``max_age_s``: a 200 this client got for the same path at most that long ago stands for
        the answer, and nothing is sent (opening the replicas asked each pod's live check
        already: 100 requests at 100 replicas, issue 21); any other answer is asked again."""
        path = self.health.get(name)
        if path is None:
            return None
        answered, kept = self._health_answers.get(path, (-math.inf, None))
        recent = time.monotonic() - answered <= max_age_s
        if recent and kept is not None and kept.status_code == 200:
            return kept
        return self._health_get(path)

    def live(self) -> requests.Response:
        """The first configured health check, else ``GET /``: does the server answer at all."""
        return self._health_get(next(iter(self.health.values()), "/"))

    def _health_get(self, path: str) -> requests.Response:
        response = self.get(path)
        self._health_answers[path] = (time.monotonic(), response)
        return response

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def client_for(
    base_url: str,
    golden: Golden | None,
    cfg: GateConfig,
    *,
    unrouted_retry_s: float = 0.0,
    forwarded: bool = False,
) -> HttpClient:
    """A client for the release at ``base_url``, health paths resolved as ``health_paths``;
    for the ``grpc`` protocol, one that makes each request the gRPC call of its route.
    ``unrouted_retry_s``: how long a request that met no pod is sent again (``retry_unrouted``),
    for the clients that go through the Service. ``forwarded``: ``base_url`` is the gate's own
    port-forward on 127.0.0.1, which the environment's proxy and netrc settings never concern."""
    if golden is not None and golden.protocol.transport == "grpc":
        from rolloutgate.checks.grpc import GrpcClient  # grpcio only when a gate speaks gRPC

        return GrpcClient(
            base_url,
            model=golden.model,
            timeout=cfg.request_timeout,
            health=health_paths(golden, cfg),
            metadata=credentials.metadata(cfg),
        )
    # The configured headers and the endpoint URL's credentials, never shown.
    session = credentials.session(cfg)
    # To the gate's own forward the environment's proxies and netrc do not apply: an
    # HTTP_PROXY without a NO_PROXY for 127.0.0.1 would send loopback requests to the proxy
    # (and a redirect, which the session follows, must not go there either). Its requests go
    # straight through urllib3 (``loopback``): ~1500 in a row at 100 replicas x 10 golden
    # cases, CPU-bound in the gate (issue 21).
    session.trust_env = not forwarded
    return HttpClient(
        base_url,
        model=golden.model if golden else "",
        timeout=cfg.request_timeout,
        health=health_paths(golden, cfg),
        session=session,
        unrouted_retry_s=unrouted_retry_s,
        forwarded=forwarded,
    )


def health_paths(golden: Golden | None, cfg: GateConfig) -> dict[str, str]:
    """Health checks of the run: the ``health.*`` settings a user set (env, profile,
    ``[tool.rolloutgate]``), else the golden file's ``health``, else its protocol's preset."""
    configured = {
        check: getattr(cfg.health, check)
        for check in protocols.HEALTH_CHECKS
        if cfg.sources.get(f"health.{check}", "default") != "default"
    }
    if golden is None:
        return protocols.health_paths(protocols.DEFAULT, {}, configured)
    return protocols.health_paths(golden.protocol, golden.health, configured)
