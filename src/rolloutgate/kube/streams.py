"""The kubelet's streams through the API server: a port-forward to one pod port, and logs.

Both are built on the ApiClient's own request serialization (``param_serialize``: host, path,
query, credentials), not on the generated ``CoreV1Api``: the first use of that class imports
its module, 1.4 s of CPU here (4 s of wall time on the busy node) that the first port-forward
of every run paid, the rollback's verification included.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any, TypeVar

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import ws_client
from websocket import WebSocketException

from rolloutgate.kube.retry import api_errors, patient

T = TypeVar("T")


class PortForwardStream:
    """One port-forward websocket to one pod port, relaying one connection (``relay``)."""

    def __init__(self, api: ApiClient, namespace: str, pod: str, port: int) -> None:
        self.port = port
        # The client's stream() swaps the ApiClient's `request` for a websocket one while it
        # connects: on the shared client, a request another thread makes meanwhile (the lock's
        # renewal, a watch's relist) would go to the websocket code and fail ("Missing required
        # parameter `ports`"). A client of its own per stream, sharing the configuration.
        self._client = ApiClient(configuration=api.configuration)
        try:
            # A websocket upgrade is a GET: RBAC checks `get` on pods/portforward (SPDY,
            # kubectl's fallback, is a POST: `create`).
            with api_errors("get", f"pods/portforward {namespace}/{pod}"):
                _method, url, headers = _serialize(
                    self._client, f"{_pod_path(namespace, pod)}/portforward", [("ports", port)]
                )
                self._pf = _port_forward(self._client, url, headers, port)
        except BaseException:
            self._client.close()  # type: ignore[no-untyped-call]
            raise

    def relay(self, conn: socket.socket, stopped: threading.Event) -> None:
        """Relay ``conn`` (a connection the gate's relay accepted) through this stream until
        either side closes it, or until ``stopped`` is set; ``conn`` is closed then. Once per
        stream, from one thread.

        The client's proxy thread reads and writes ``conn`` itself: no socket pair and no
        thread of ours between them, which every request crossed twice (issue 21)."""
        self._pf.attach(conn)
        while not self._pf.done.wait(STOPPED_POLL_S):
            if stopped.is_set():
                # The proxy sees the end of ``conn`` and closes the websocket.
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                self._pf.done.wait(STOPPED_POLL_S)
                return

    def error(self) -> str | None:
        """What the kubelet reported on the port's error channel, if anything."""
        err = self._pf.error(self.port)
        return str(err) if err else None

    def close(self) -> None:
        try:
            self._pf.close()
        finally:
            self._client.close()  # type: ignore[no-untyped-call]


# How often a relayed connection's waiter checks whether its relay is being closed.
STOPPED_POLL_S = 0.5


class _QuietPortForward(ws_client.PortForward):
    """The client's PortForward, whose relay thread ends quietly when the other side closes,
    and which relays a connection it is given (``attach``) instead of its socket pair.

    A stream to a port nothing listens on (a server still starting: what ready_grace's own
    question meets) is closed by the kubelet at once; the client's thread then raised
    SSLEOFError or BrokenPipeError sending the request, and pytest printed each as an
    unhandled thread exception under the verdict. A closed stream is an answer here (none).

    The client relays its socket pair's one end to the websocket in its proxy thread, and the
    gate's relay copied each connection it accepted to the pair's other end in a thread of its
    own: two more hand-offs (a select, a recv and a send each way) for every request, ~0.2 ms of
    the gate's CPU per request offline (issue 21). ``attach`` puts the accepted connection in
    the pair's place before the proxy thread starts relaying: the same relay loop (the client's,
    buffered both ways), one hop fewer. A stream closed before any connection came relays its
    pair as before, and ends as the client's does.
    """

    def __init__(self, websocket: Any, ports: list[int]) -> None:
        # Set before the base class starts the proxy thread, which waits for one of them.
        self._attached = threading.Event()
        self.done = threading.Event()  # the proxy thread has ended
        super().__init__(websocket, ports)  # type: ignore[no-untyped-call]

    def attach(self, conn: socket.socket) -> None:
        """Relay ``conn`` in place of the socket pair (closed here); at most once, before
        ``close``."""
        (port,) = self.local_ports.values()
        pair = (port.socket, port.python)
        port.python = conn
        for end in pair:
            end.close()
        self._attached.set()

    def close(self) -> None:
        if self._attached.is_set():  # attached: the proxy ends when it sees conn's end
            (port,) = self.local_ports.values()
            with contextlib.suppress(OSError):
                port.python.shutdown(socket.SHUT_RDWR)
            return
        self._attached.set()  # never attached: the pair's end closed below ends the proxy
        super().close()  # type: ignore[no-untyped-call]

    def _proxy(self) -> None:
        self._attached.wait()
        try:
            super()._proxy()  # type: ignore[no-untyped-call]
        except (OSError, WebSocketException):
            for port in self.local_ports.values():
                with contextlib.suppress(OSError):
                    port.python.close()
            with contextlib.suppress(Exception):
                self.websocket.close()
        finally:
            self.done.set()


def _port_forward(api: ApiClient, url: str, headers: Any, port: int) -> Any:
    """What the client's ``portforward_call`` does, with ``_QuietPortForward``; its errors
    as the client's (an ApiException)."""
    try:
        ws_url = ws_client.get_websocket_url(url)  # type: ignore[no-untyped-call]
        websocket = ws_client.create_websocket(  # type: ignore[no-untyped-call]
            api.configuration, ws_url, headers
        )
        return _QuietPortForward(websocket, [port])
    except (Exception, KeyboardInterrupt, SystemExit) as e:
        raise ApiException(status=0, reason=str(e)) from e


# A log request goes through the kubelet, which may hold it while it restarts the container.
LOG_TIMEOUT_S = 10.0


def pod_log(
    api: ApiClient,
    namespace: str,
    pod: str,
    container: str,
    *,
    previous: bool,
    lines: int,
    timeout: float = LOG_TIMEOUT_S,
) -> str:
    """The last `lines` of a container's log (ApiError when the kubelet has none; no answer
    within `timeout` seconds is ClusterUnreachable)."""
    which = "previous " if previous else ""

    query = [("container", container), ("previous", previous), ("tailLines", lines)]

    def call() -> str:
        with api_errors("get", f"pods/log {namespace}/{pod} ({which}container {container})"):
            method, url, headers = _serialize(api, f"{_pod_path(namespace, pod)}/log", query)
            response = api.call_api(method, url, header_params=headers, _request_timeout=timeout)
            response.read()  # type: ignore[no-untyped-call]
            text = api.response_deserialize(response, {"200": "str"}).data
        return str(text).rstrip()

    return patient(call)


def _pod_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods/{pod}"


def _serialize(api: ApiClient, path: str, query: list[tuple[str, Any]]) -> tuple[str, str, Any]:
    """(method, URL, headers) of a GET of `path` with the client's host and credentials."""
    method, url, headers, _body, _post = api.param_serialize(
        "GET", path, query_params=query, auth_settings=["BearerToken"]
    )
    return method, url, headers
