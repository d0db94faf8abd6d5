"""The wine model behind a plain HTTP JSON API: FastAPI on uvicorn, Prometheus metrics.

    POST /predict                 {"instances": [[13 numbers], ...]}
                                  -> {"predictions": [0|1|2, ...],
                                      "probabilities": [[p0, p1, p2], ...],
                                      "model_version": "v1"}
    POST /v1/models/wine:predict  the same request, TF-Serving's answer {"predictions": [...]}
    GET  /v1/models/wine          TF-Serving's model status (200 once the model is ready)
    GET  /healthz                 200 while the process serves
    GET  /readyz                  200 once the model is loaded and passed its self-check,
                                  else 503 {"ready": false, "reason": ...}
    GET  /metrics                 Prometheus text format

The model is loaded before the server binds its port: a model that cannot be loaded ends
the process with exit code 1 (a crash loop in Kubernetes), never a server without a model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel

log = logging.getLogger("wine")

MODEL_DIR = Path(os.environ.get("WINE_MODEL_DIR", "/opt/wine/model"))
# Not WINE_PORT: Kubernetes sets <SERVICE>_PORT=tcp://IP:PORT in every pod of a namespace
# with a Service of that name (service links), and the Service is called wine. The first
# deploy of this image read that as its port and crashed; the gate failed it in seconds.
PORT = int(os.environ.get("WINE_HTTP_PORT", "8080"))

REQUESTS = Counter(
    "wine_prediction_requests",
    "Prediction requests answered, by endpoint and outcome",
    ["endpoint", "outcome"],
)
ROWS = Counter("wine_predicted_rows", "Rows (wines) predicted")
LATENCY = Histogram("wine_prediction_seconds", "Time to answer a prediction request")


class Instances(BaseModel):
    instances: list[list[float]]


class Model:
    """The loaded pipeline and whether it passed its self-check."""

    def __init__(self, folder: Path) -> None:
        self.metadata: dict[str, Any] = json.loads((folder / "metadata.json").read_text())
        self.version = str(self.metadata["version"])
        self.pipeline = joblib.load(folder / "model.joblib")
        self.not_ready = self._self_check()

    def _self_check(self) -> str | None:
        """Why the model may not serve (None: it may). One prediction of the expected shape."""
        expected = int(self.metadata["expected_features"])
        n_features = int(getattr(self.pipeline, "n_features_in_", -1))
        if n_features != expected:
            return f"model takes {n_features} features, the self-check expects {expected}"
        proba = self.pipeline.predict_proba(np.zeros((1, n_features)))
        if proba.shape != (1, len(self.metadata["classes"])):
            return f"model answers {proba.shape[1]} scores for {len(self.metadata['classes'])}"
        return None

    def predict(self, rows: list[list[float]]) -> tuple[list[int], list[list[float]]]:
        features = int(self.metadata["features"])
        if not rows or any(len(r) != features for r in rows):
            raise HTTPException(
                status_code=400,
                detail=f"instances must be a non-empty list of rows of {features} numbers",
            )
        X = np.asarray(rows, dtype=float)
        labels = [int(c) for c in self.pipeline.predict(X)]
        proba = [[float(p) for p in row] for row in self.pipeline.predict_proba(X)]
        ROWS.inc(len(rows))
        return labels, proba


def create_app(model: Model) -> FastAPI:
    app = FastAPI(title="wine", version=model.version, docs_url=None, redoc_url=None)

    if model.metadata.get("hang"):
        # The `hang` tag: a prediction is accepted and never answered. Awaited in the event loop,
        # so health and metrics (and the worker threads) stay free.
        @app.middleware("http")
        async def never_answer(request: Request, call_next: Any) -> Any:
            if request.method == "POST":
                await asyncio.Event().wait()
            return await call_next(request)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/metrics")
    def metrics() -> Response:
        # A plain route, not prometheus_client's mounted app: that one redirects /metrics to
        # /metrics/, which some scrapers do not follow.
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        if model.not_ready:
            return JSONResponse({"ready": False, "reason": model.not_ready}, status_code=503)
        return JSONResponse({"ready": True, "model_version": model.version})

    def answer(endpoint: str, body: Instances) -> tuple[list[int], list[list[float]]]:
        start = time.perf_counter()
        try:
            if model.not_ready:
                raise HTTPException(status_code=503, detail=model.not_ready)
            result = model.predict(body.instances)
        except HTTPException:
            REQUESTS.labels(endpoint, "error").inc()
            raise
        REQUESTS.labels(endpoint, "ok").inc()
        LATENCY.observe(time.perf_counter() - start)
        return result

    @app.post("/predict")
    def predict(body: Instances) -> dict[str, Any]:
        labels, proba = answer("/predict", body)
        return {"predictions": labels, "probabilities": proba, "model_version": model.version}

    @app.post("/v1/models/wine:predict")
    def predict_v1(body: Instances) -> dict[str, Any]:
        labels, _ = answer("/v1/models/wine:predict", body)
        return {"predictions": labels}

    @app.get("/v1/models/wine")
    def status_v1() -> JSONResponse:
        state = "AVAILABLE" if not model.not_ready else "LOADING"
        body = {
            "model_version_status": [
                {
                    "version": model.version,
                    "state": state,
                    "status": {"error_code": "OK", "error_message": model.not_ready or ""},
                }
            ]
        }
        return JSONResponse(body, status_code=200 if not model.not_ready else 503)

    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        model = Model(MODEL_DIR)
    except Exception as e:  # whatever broke the load, the process must not serve
        log.error("cannot load the model from %s: %s: %s", MODEL_DIR, type(e).__name__, e)
        sys.exit(1)
    if model.not_ready:
        log.warning("model %s loaded but not ready: %s", model.version, model.not_ready)
    log.info("serving wine model %s on port %d", model.version, PORT)
    uvicorn.run(create_app(model), host="0.0.0.0", port=PORT, access_log=False)


if __name__ == "__main__":
    main()
