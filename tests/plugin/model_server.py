"""A loopback model server speaking the three presets (v2, v1, plain) for tests of the HTTP
checks and of recording. Bound to 127.0.0.1 only."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar


class _Handler(BaseHTTPRequestHandler):
    """Speaks the three presets for one model, ``wine``: class = round(first feature) % 3."""

    state: ClassVar[dict[str, Any]] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _classes(self, rows: list[list[float]]) -> list[int]:
        shift = 1 if self.state.get("wrong") else 0
        self.state["predicted"] = self.state.get("predicted", 0) + len(rows)
        return [(round(r[0]) + shift) % 3 for r in rows]

    def do_GET(self) -> None:
        ready = self.state.get("ready", True)
        if self.path == "/healthz":
            self._send(200, {"status": "alive"})
        elif self.path == "/readyz":
            self._send(200 if ready else 503, {"ready": ready})
        elif self.path == "/v1/models/wine":
            state = "AVAILABLE" if ready else "LOADING"
            self._send(200 if ready else 503, {"model_version_status": [{"state": state}]})
        elif self.path in ("/v2/health/live", "/v2/health/ready", "/v2/models/wine/ready"):
            self._send(200 if ready or self.path.endswith("live") else 400, {})
        elif self.path == "/moved":
            # A redirect, as a server's trailing-slash rule answers: clients follow it.
            self.send_response(307)
            self.send_header("Location", "/healthz")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/v2" and self.state.get("v2"):
            self._send(200, {"name": "stub", "version": "1.0", "extensions": []})
        elif self.path == "/v2/models/wine" and self.state.get("v2"):
            tensor = {"name": "predict", "datatype": "FP64", "shape": [-1, 4]}
            self._send(200, {"name": "wine", "platform": "stub", "inputs": [tensor]})
        else:
            self._send(404, {"error": f"no route {self.path}"})

    def do_POST(self) -> None:
        self.state.setdefault("headers", []).append(dict(self.headers))
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.state.get("hang"):
            # Accepted, never answered (until the server closes): the examples' `hang` tags.
            self.state["closing"].wait(timeout=60)
            self.close_connection = True
            return
        if self.state.get("reset"):
            # The connection is closed without an answer.
            self.close_connection = True
            return
        if self.path in ("/predict", "/v1/models/wine:predict"):
            rows = body.get("instances")
            if not isinstance(rows, list):
                self._send(400, {"error": "instances must be a list of rows"})
                return
            classes = self._classes(rows)
            if self.path == "/predict":
                proba = [[0.9 if c == k else 0.05 for k in range(3)] for c in classes]
                scores = [1.5 + c for c in classes]  # a real number beyond [0, 1]
                self._send(200, {"predictions": classes, "probabilities": proba, "scores": scores})
            else:
                self._send(200, {"predictions": classes})
        elif self.path == "/v2/repository/index" and self.state.get("v2"):
            self._send(
                200, [{"name": "wine", "state": "READY"}, {"name": "old", "state": "UNAVAILABLE"}]
            )
        elif self.path == "/v2/models/wine/infer":
            data = body["inputs"][0]["data"]
            self._send(200, {"outputs": [{"name": "predict", "data": self._classes([data])}]})
        else:
            self._send(404, {"error": f"no route {self.path}"})


@contextmanager
def serve() -> Iterator[tuple[str, dict[str, Any]]]:
    """(base URL, state) of a server on 127.0.0.1; ``state`` switches failures: ``wrong``
    (labels rotated), ``ready`` (False: health checks fail), ``hang`` (a POST is never
    answered), ``reset`` (a POST's connection is closed unanswered); and ``v2`` (True: the V2
    server and model metadata and repository index answer, as a V2 server's do). ``GET
    /moved`` redirects to ``/healthz``."""
    state: dict[str, Any] = {"closing": threading.Event()}
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", state
    finally:
        state["closing"].set()
        httpd.shutdown()
        httpd.server_close()
