"""Requests to the gate's own port-forwards on 127.0.0.1, without requests' per-request work.

The checks ask every replica every golden case through its own forward: ~1500 requests in a
row at 100 replicas x 10 golden cases, CPU-bound in the gate process (issue 21). Of the ~2 ms of
CPU a request cost through ``Session.request``, ~0.7 ms went to what a loopback forward never
needs: merging the session's and the environment's settings, its cookie jar and hooks into
every request, and finding the pool per URL. ``LoopbackSender`` sends straight through urllib3
(the pool requests' own adapter keeps for the URL) and builds the answer with that adapter's
``build_response``: a ``requests.Response`` as before (``status_code``, ``headers``, ``json()``,
``text``, ``elapsed``, ``request``), its errors the same ``requests`` exceptions, a redirect
followed by the session as ``Session.request`` follows it. Its connections write a request's
head and body in one ``send`` (``OneWrite``): through a forward, one websocket frame.

Left out on purpose: cookies a server sets are not kept for later requests (the forwards'
servers are model servers; the session's jar is still sent on a redirect), and the session's
hooks do not run (the gate sets none).
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)


class OneWrite(HTTPConnection):
    """urllib3's connection, sending a request's head and its body in one write.

    urllib3 writes the head (request line and headers) and then the body, two ``send``s. Through
    the gate's port-forward each write the relay reads becomes a websocket frame of its own,
    which the client's proxy thread masks and sends and the API server and kubelet relay one by
    one (on the same two cores as the pods at 100 replicas): a POST of a golden case cost 1.4-1.7
    frames up instead of one (issue 21). The bytes on the wire are the same.
    """

    _holding = False  # within request(): the head waits for the write that follows it
    _head = b""

    def __str__(self) -> str:
        # As urllib3's (its errors name the connection so): the same messages as before.
        return f"HTTPConnection(host={self.host!r}, port={self.port!r})"

    def request(self, *args: Any, **kwargs: Any) -> None:
        self._holding = True
        try:
            super().request(*args, **kwargs)
            if self._head:  # no body followed
                self.send(b"")
        finally:
            self._holding, self._head = False, b""

    def send(self, data: Any) -> None:
        if self._holding and not self._head and isinstance(data, bytes):
            self._head = data  # the head, from endheaders()
            return
        if self._head:
            head, self._head, self._holding = self._head, b"", False
            if isinstance(data, bytes):
                data = head + data  # the head and the body (or its first chunk) in one write
            else:
                super().send(head)
        super().send(data)


class LoopbackSender:
    """Sends requests to one ``http://`` base URL through the session's own adapter and pool,
    with the session's headers and auth; every request has ``timeout`` (connect and read)."""

    def __init__(self, base_url: str, session: requests.Session, timeout: float) -> None:
        adapter = session.get_adapter(base_url)
        if not base_url.startswith("http://") or not isinstance(adapter, HTTPAdapter):
            # TLS settings (verify, cert) are applied per request by requests; a forward is
            # plain HTTP on 127.0.0.1, so nothing here applies them.
            raise ValueError(f"not a plain HTTP URL with requests' own adapter: {base_url}")
        self.session = session
        self._adapter = adapter
        # The pool requests would use for this URL, so a redirect the session follows and
        # ``session.close()`` share and close its connections.
        self._pool = adapter.poolmanager.connection_from_url(base_url)
        # Its new connections send a request's head and body in one write (``OneWrite``).
        self._pool.ConnectionCls = OneWrite
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)

    def request(
        self, method: str, url: str, *, headers: dict[str, str], json: Any = None
    ) -> requests.Response:
        """The answer to one request (``json`` None sends no body), its content read; the
        ``requests`` exception ``Session.request`` raises when there is none."""
        prepared = requests.PreparedRequest()
        # The session's headers under the request's, as ``Session.request`` merges them
        # (a header the request sets to None is dropped there; cases never do).
        merged = CaseInsensitiveDict(self.session.headers)
        merged.update(headers)
        prepared.prepare(method=method, url=url, headers=merged, json=json, auth=self.session.auth)
        start = time.perf_counter()
        try:
            raw = self._pool.urlopen(
                method=method,
                url=prepared.path_url,
                body=prepared.body,
                headers=prepared.headers,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                retries=self._adapter.max_retries,
                timeout=self._timeout,
                chunked=False,
            )
        except urllib3.exceptions.HTTPError as e:
            raise as_requests_error(e, prepared) from e
        except OSError as e:
            raise requests.ConnectionError(e, request=prepared) from e
        response = self._adapter.build_response(prepared, raw)
        # As ``Session.send``: the time to the answer's headers, before the body is read.
        response.elapsed = timedelta(seconds=time.perf_counter() - start)
        if response.is_redirect:
            response = self._redirected(response, prepared)
        _ = response.content  # read now, as requests does unless asked to stream
        return response

    def _redirected(
        self, response: requests.Response, prepared: requests.PreparedRequest
    ) -> requests.Response:
        """The end of the redirects from ``response``, followed by the session with the
        history ``Session.request`` gives (each hop through its full machinery: rare)."""
        hops = list(
            self.session.resolve_redirects(response, prepared, timeout=self._timeout, proxies={})
        )
        if not hops:
            return response
        last: requests.Response = hops.pop()
        last.history = [response, *hops]
        return last


def as_requests_error(
    e: urllib3.exceptions.HTTPError, prepared: requests.PreparedRequest
) -> requests.RequestException:
    """The ``requests`` exception its adapter raises for urllib3's ``e`` on a plain HTTP
    request without proxy, so ``no_answer`` and ``resend_if_stale`` read it as before: a
    read timeout is ``ReadTimeout``, a connect timeout ``ConnectTimeout``, a refused or
    reset connection ``ConnectionError`` (with urllib3's ``ProtocolError`` in its args when
    an open connection was dropped)."""
    if isinstance(e, ReadTimeoutError):
        return requests.ReadTimeout(e, request=prepared)
    if isinstance(e, MaxRetryError):
        # urllib3 counts a refused connection as a connect timeout's kind: not a timeout here.
        reason = e.reason
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return requests.ConnectTimeout(e, request=prepared)
        return requests.ConnectionError(e, request=prepared)
    if isinstance(e, (ProtocolError, ClosedPoolError)):
        return requests.ConnectionError(e, request=prepared)
    return requests.RequestException(e, request=prepared)
