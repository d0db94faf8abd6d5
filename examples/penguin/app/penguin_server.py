"""The penguin model behind its own small HTTP JSON API, on the Python standard library alone.

    POST /api/score   {"penguins": [{"bill_length_mm": 39.1, "bill_depth_mm": 18.7,
                                     "flipper_length_mm": 181, "body_mass_g": 3750}, ...]}
                      -> {"species": ["Adelie", ...], "scores": [[p, p, p], ...],
                          "model_version": "v1"}
                      400 {"error": ...} when the body is not that
    GET  /healthz     200 while the process serves
    GET  /readyz      200 once the model passed its start-up self-check,
                      else 503 {"ready": false, "reason": ...}
    GET  /metrics     Prometheus text: penguin_score_requests_total{outcome="ok"|"error"}

A model file that cannot be read ends the process with exit code 1 before the port is bound.
It starts in well under a second: the gate's own tests use it wherever the model server is
not what they are about.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODEL_FILE = Path(os.environ.get("PENGUIN_MODEL", "/opt/penguin/model/model.json"))
# Not PENGUIN_PORT: Kubernetes sets <SERVICE>_PORT=tcp://IP:PORT in pods of a namespace with a
# Service of that name (service links), and the Service is called penguin.
PORT = int(os.environ.get("PENGUIN_HTTP_PORT", "8000"))


class Model:
    """The species centres and spreads, and why the model may not serve (None: it may)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.version = str(data["version"])
        self.species: list[str] = list(data["species"])
        self.features: list[str] = list(data["features"])
        self.centres: list[list[float]] = data["centres"]
        self.spread: list[float] = data["spread"]
        self.delay_s: float | None = data["delay_s"]
        expected = int(data["expected_features"])
        self.not_ready = (
            None
            if expected == len(self.features)
            else f"model takes {len(self.features)} features, the self-check expects {expected}"
        )

    def score(self, penguin: dict[str, Any]) -> list[float]:
        """Probability of each species: a Gaussian per species, equal priors."""
        x = [float(penguin[f]) for f in self.features]
        logits = [
            -0.5 * sum(((xi - ci) / si) ** 2 for xi, ci, si in zip(x, c, self.spread, strict=True))
            for c in self.centres
        ]
        top = max(logits)
        weights = [math.exp(v - top) for v in logits]
        return [w / sum(weights) for w in weights]


class Counter:
    """A Prometheus counter with one label, safe across the server's threads."""

    def __init__(self, name: str, help_text: str, label: str) -> None:
        self.name, self.help, self.label = name, help_text, label
        self.values: dict[str, int] = {}
        self.lock = threading.Lock()

    def inc(self, value: str) -> None:
        with self.lock:
            self.values[value] = self.values.get(value, 0) + 1

    def text(self) -> str:
        with self.lock:
            samples = sorted(self.values.items())
        # Text format 0.0.4 names a counter's family with its _total suffix.
        name = f"{self.name}_total"
        lines = [f"# HELP {name} {self.help}", f"# TYPE {name} counter"]
        lines += [f'{name}{{{self.label}="{v}"}} {n}' for v, n in samples]
        return "\n".join(lines) + "\n"


REQUESTS = Counter("penguin_score_requests", "Score requests answered, by outcome.", "outcome")


class BadRequest(ValueError):
    pass


def parse(body: bytes, features: list[str]) -> list[dict[str, Any]]:
    try:
        data = json.loads(body)
    except ValueError as e:
        raise BadRequest(f"body is not JSON: {e}") from None
    penguins = data.get("penguins") if isinstance(data, dict) else None
    if not isinstance(penguins, list) or not penguins:
        raise BadRequest('expected {"penguins": [{feature: number, ...}, ...]}')
    for i, p in enumerate(penguins):
        missing = [f for f in features if not isinstance((p or {}).get(f), int | float)]
        if missing:
            raise BadRequest(f"penguin {i}: no number for {', '.join(missing)}")
    return penguins


class Handler(BaseHTTPRequestHandler):
    model: Model
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as servers made for serving set it: an answer goes out in two writes (the
    # headers, then the body), and with Nagle's algorithm the body waited for the client's
    # delayed ACK of the headers, ~40 ms an answer on a keep-alive connection (issue 21: about
    # 4 s of the checks at 100 replicas; 44 -> 2.3 ms a local GET).
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass  # no access log

    def send(self, status: int, body: object, ctype: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self.send(200, {"status": "alive"})
        elif self.path == "/readyz":
            if self.model.not_ready:
                self.send(503, {"ready": False, "reason": self.model.not_ready})
            else:
                self.send(200, {"ready": True, "model_version": self.model.version})
        elif self.path == "/metrics":
            self.send(200, REQUESTS.text(), "text/plain; version=0.0.4")
        else:
            self.send(404, {"error": f"no route GET {self.path}"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/api/score":
            self.send(404, {"error": f"no route POST {self.path}"})
            return
        if self.model.delay_s is None:
            threading.Event().wait()  # the `hang` tag: read, never answered
        time.sleep(self.model.delay_s)
        try:
            if self.model.not_ready:
                raise BadRequest(f"not ready: {self.model.not_ready}")
            penguins = parse(body, self.model.features)
        except BadRequest as e:
            REQUESTS.inc("error")
            self.send(503 if self.model.not_ready else 400, {"error": str(e)})
            return
        scores = [self.model.score(p) for p in penguins]
        species = [self.model.species[s.index(max(s))] for s in scores]
        REQUESTS.inc("ok")
        self.send(200, {"species": species, "scores": scores, "model_version": self.model.version})


def main() -> None:
    try:
        model = Model(json.loads(MODEL_FILE.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"cannot load the model from {MODEL_FILE}: {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
    Handler.model = model
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True
    # As PID 1 of a container the process gets no default action for SIGTERM: exit on it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if model.not_ready:
        print(f"model {model.version} loaded but not ready: {model.not_ready}", flush=True)
    print(f"serving penguin model {model.version} on port {PORT}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
