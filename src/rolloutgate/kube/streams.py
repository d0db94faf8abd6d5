"""The kubelet's streams through the API server: a port-forward to one pod port, and logs."""

from __future__ import annotations

import socket
from typing import TypeVar

from kubernetes import client
from kubernetes.client import ApiClient
from kubernetes.stream import portforward

from rolloutgate.kube.retry import api_errors, patient

T = TypeVar("T")


class PortForwardStream:
    """One port-forward websocket to one pod port, seen as a socket (the client's own relay)."""

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
                self._pf = portforward(
                    client.CoreV1Api(self._client).connect_get_namespaced_pod_portforward,
                    pod,
                    namespace,
                    ports=str(port),
                )
        except BaseException:
            self._client.close()  # type: ignore[no-untyped-call]
            raise

    def socket(self) -> socket.socket:
        """The local end (an AF_UNIX socket pair end wrapped by the client)."""
        sock: socket.socket = self._pf.socket(self.port)
        return sock

    def error(self) -> str | None:
        """What the kubelet reported on the port's error channel, if anything."""
        err = self._pf.error(self.port)
        return str(err) if err else None

    def close(self) -> None:
        try:
            self._pf.close()
        finally:
            self._client.close()  # type: ignore[no-untyped-call]


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

    def call() -> str:
        with api_errors("get", f"pods/log {namespace}/{pod} ({which}container {container})"):
            text = client.CoreV1Api(api).read_namespaced_pod_log(
                pod,
                namespace,
                container=container,
                previous=previous,
                tail_lines=lines,
                _request_timeout=timeout,
            )
        return str(text).rstrip()

    return patient(call)
