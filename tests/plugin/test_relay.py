"""The gate's port-forward relay (``kube.portforward``) against a stand-in for the API server's
port-forward websocket (``v4.channel.k8s.io`` over plain ``ws://``, relaying channel 0 to the
loopback model server): answers on kept connections, one stream per connection, the kubelet's
error channel reported, and every relayed connection ended by the relay's close."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from kubernetes.client import ApiClient, Configuration
from model_server import serve

from rolloutgate.kube.portforward import _Relay

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """An unmasked (server) frame."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x80 | opcode, n) + payload
    return struct.pack("!BBH", 0x80 | opcode, 126, n) + payload


def read_exact(f: Any, n: int) -> bytes:
    data: bytes = f.read(n)
    if len(data) < n:
        raise EOFError
    return data


class ApiServer:
    """Accepts port-forward websockets; ``error`` set: the kubelet's answer on the error
    channel instead of relaying. ``streams``: how many were opened."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.error: str | None = None
        self.streams = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.streams += 1
            threading.Thread(target=self._stream, args=(conn,), daemon=True).start()

    def _stream(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as f:
            key = b""
            for line in iter(f.readline, b"\r\n"):
                if line.lower().startswith(b"sec-websocket-key:"):
                    key = line.split(b":", 1)[1].strip()
            accept = base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID).digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Protocol: v4.channel.k8s.io\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            port = struct.pack("<H", self.target)
            conn.sendall(frame(b"\x00" + port) + frame(b"\x01" + port))
            if self.error is not None:
                read_exact(f, 2)  # the first frame of the request: then the kubelet's answer
                conn.sendall(frame(b"\x01" + self.error.encode()))
                return
            with socket.create_connection(("127.0.0.1", self.target)) as pod:
                threading.Thread(target=self._down, args=(pod, conn), daemon=True).start()
                with contextlib.suppress(EOFError, OSError):
                    self._up(f, pod)

    def _up(self, f: Any, pod: socket.socket) -> None:
        while True:
            first, second = read_exact(f, 2)
            n = second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", read_exact(f, 2))
            mask = read_exact(f, 4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(read_exact(f, n)))
            if first & 0x0F == 0x8:  # close
                return
            pod.sendall(data[1:])

    def _down(self, pod: socket.socket, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := pod.recv(65536):
                conn.sendall(frame(b"\x00" + data))
            conn.sendall(frame(b"", opcode=0x8))

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def relay() -> Iterator[tuple[_Relay, ApiServer]]:
    """Function. A started relay to the model server's port, through the stand-in."""
    with serve() as (url, _state):
        api_server = ApiServer(int(url.rsplit(":", 1)[1]))
        config = Configuration()
        config.host = f"http://127.0.0.1:{api_server.port}"
        relay = _Relay(ApiClient(configuration=config), "ns", [("pod-1", api_server.target)])
        try:
            yield relay, api_server
        finally:
            relay.close()
            api_server.close()


def test_each_connection_is_relayed_through_its_own_stream(
    relay: tuple[_Relay, ApiServer],
) -> None:
    forward, api_server = relay
    forward.start()  # the probe's stream is the first connection's
    url = f"http://127.0.0.1:{forward.local_port}"
    with requests.Session() as session:
        answers = [session.get(f"{url}/healthz", timeout=5).json() for _ in range(3)]
        predicted = session.post(f"{url}/predict", json={"instances": [[5.1, 3.5]]}, timeout=5)
    assert answers == [{"status": "alive"}] * 3
    assert predicted.json()["predictions"] == [2]
    # The model server closes each connection after its answer (HTTP/1.0): four connections,
    # a stream each, the probe's the first one's.
    assert api_server.streams == 4
    assert forward.errors == []


def test_the_kubelets_error_is_reported_and_the_connection_ends(
    relay: tuple[_Relay, ApiServer],
) -> None:
    forward, api_server = relay
    api_server.error = "error forwarding port 8000: connection refused"
    forward.start(probe=False)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{forward.local_port}/healthz", timeout=5)
    deadline = time.monotonic() + 5  # the connection's thread notes it as its stream ends
    while not forward.errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert forward.errors == [f"pod pod-1:{api_server.target}: {api_server.error}"]


def test_closing_the_relay_ends_its_open_connections(relay: tuple[_Relay, ApiServer]) -> None:
    forward, api_server = relay
    forward.start(probe=False)
    with socket.create_connection(("127.0.0.1", forward.local_port), timeout=5) as conn:
        conn.sendall(b"GET /healthz HTTP/1.0\r\n")  # a request not yet complete: no answer
        deadline = time.monotonic() + 5
        while api_server.streams == 0 and time.monotonic() < deadline:  # its stream opened
            time.sleep(0.01)
        forward.close()
        # The relay ends the connection: the client reads its end (a hang: the timeout raises).
        assert conn.recv(65536) == b""
