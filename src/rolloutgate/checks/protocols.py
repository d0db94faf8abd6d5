"""Built-in presets for the HTTP protocols model servers speak: where to predict, where health is.

A golden file names its protocol (``"protocol": "v2"`` when it says nothing, as files written
before presets existed). The preset supplies what a case leaves out: the method and path of
the prediction request, and the health checks the gate runs before any case. Nothing here
sends a request; ``cases`` does.

=========  ==========================================  ===========================================
preset     prediction                                  health checks (in order)
=========  ==========================================  ===========================================
``v2``     ``POST /v2/models/{model}/infer``           live ``/v2/health/live``, ready
           (Open Inference Protocol; MLServer,          ``/v2/health/ready``, model_ready
           Triton, KServe V2)                           ``/v2/models/{model}/ready``
``v1``     ``POST /v1/models/{model}:predict``         model_ready ``/v1/models/{model}``
           (TF-Serving REST, KServe V1)                 (TF-Serving's model status; KServe V1's
                                                        model readiness: both 200 once loaded)
``plain``  ``POST /predict`` (FastAPI, Flask, ...)     live ``/healthz``, ready ``/readyz``
``grpc``   ``ModelInfer`` (Open Inference Protocol      ``ServerLive``, ``ServerReady``,
           over gRPC: MLServer :8081, Triton :8001)     ``ModelReady``
=========  ==========================================  ===========================================

``grpc`` is the V2 protocol on another transport: its cases and health checks are written as
the REST ones (the same golden file, paths naming the REST routes), and ``checks.grpc`` sends
each as the gRPC call of that route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rolloutgate.errors import ConfigError

# The health checks the gate knows, in the order it runs them. A preset (or the settings) may
# leave any of them out; ``{model}`` in a path is the golden file's model.
HEALTH_CHECKS = ("live", "ready", "model_ready")


@dataclass(frozen=True)
class Protocol:
    """One preset: defaults for the prediction request and the health checks."""

    name: str
    title: str
    predict_method: str
    predict_path: str
    health: Mapping[str, str] = field(default_factory=dict)
    # The V2 model metadata endpoint: the suite checks it names the model (V2 only).
    metadata_path: str | None = None
    # The Open Inference Protocol's forms: a request holding "inputs" is an infer body, an
    # expected value may name an output tensor ({"name": OUTPUT, "data": [...]}).
    v2_forms: bool = False
    # "http", or "grpc": the REST routes sent as the gRPC service's calls (checks.grpc).
    transport: str = "http"

    @property
    def needs_model(self) -> bool:
        """Whether a path of the preset contains ``{model}``, so the golden file must name it."""
        paths = [self.predict_path, *self.health.values(), self.metadata_path or ""]
        return any("{model}" in p for p in paths)


V2 = Protocol(
    name="v2",
    title="Open Inference Protocol (V2)",
    predict_method="POST",
    predict_path="/v2/models/{model}/infer",
    health={
        "live": "/v2/health/live",
        "ready": "/v2/health/ready",
        "model_ready": "/v2/models/{model}/ready",
    },
    metadata_path="/v2/models/{model}",
    v2_forms=True,
)
GRPC = Protocol(
    name="grpc",
    title="Open Inference Protocol (V2) over gRPC",
    predict_method=V2.predict_method,
    predict_path=V2.predict_path,
    health=V2.health,
    metadata_path=V2.metadata_path,
    v2_forms=True,
    transport="grpc",
)
V1 = Protocol(
    name="v1",
    title="TF-Serving REST / KServe V1",
    predict_method="POST",
    predict_path="/v1/models/{model}:predict",
    # TF-Serving has no liveness path of its own; its model status answers 200 once the model
    # is loaded, as KServe V1's model readiness does (503 before).
    health={"model_ready": "/v1/models/{model}"},
)
PLAIN = Protocol(
    name="plain",
    title="plain HTTP JSON (POST /predict)",
    predict_method="POST",
    predict_path="/predict",
    health={"live": "/healthz", "ready": "/readyz"},
)

PRESETS: Mapping[str, Protocol] = {p.name: p for p in (V2, V1, PLAIN, GRPC)}
DEFAULT = V2


def get(name: str) -> Protocol:
    """The preset called ``name``; ConfigError lists the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(f"{p.name} ({p.title})" for p in PRESETS.values())
        raise ConfigError(f"unknown protocol {name!r}; known presets: {known}") from None


def health_paths(
    protocol: Protocol,
    overrides: Mapping[str, str | None],
    configured: Mapping[str, str],
) -> dict[str, str]:
    """The health checks to run: name -> path, in ``HEALTH_CHECKS`` order.

    First found wins: ``configured`` (the ``health.*`` settings a user set explicitly: env,
    profile or ``[tool.rolloutgate]``), then the golden file's ``health`` object
    (``overrides``; a ``null`` there drops the check), then the preset.
    """
    paths: dict[str, str] = {}
    for check in HEALTH_CHECKS:
        if check in configured:
            paths[check] = configured[check]
        elif check in overrides:
            value = overrides[check]
            if value is not None:
                paths[check] = value
        elif check in protocol.health:
            paths[check] = protocol.health[check]
    return paths
