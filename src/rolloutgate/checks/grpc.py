"""The Open Inference Protocol over gRPC: golden cases and health checks written for V2 REST,
sent as the calls of KServe v2's ``inference.GRPCInferenceService`` (MLServer serves it on
8081, Triton on 8001) and answered as the REST protocol would answer.

The service's messages and stub are the ones ``tritonclient[grpc]`` ships (NVIDIA's client,
generated from the protocol's ``grpc_service.proto`` when that package is built), so the gate
compiles nothing and commits no generated code; its ``InferResult`` decodes output tensors,
raw or typed. The request is built here, field by field from the case's JSON, rather than with
tritonclient's ``InferInput`` (which checks data against shape on the client): a case meant to
be refused must reach the server as written, so the verdict is the server's.

A REST route maps to one call (``ROUTES``); the answer becomes a ``requests.Response`` holding
the REST JSON of the call's result (``{"model_name", "id", "outputs": [{"name", "datatype",
"shape", "data"}]}`` for ``ModelInfer``), so the golden comparison, recording, the latency
budget and the canary read gRPC answers as they read HTTP ones. A gRPC error becomes the HTTP
status of the gRPC-gateway mapping (``INVALID_ARGUMENT`` 400, ``NOT_FOUND`` 404, ...) with
``{"error": details}``; no answer at all (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``) is
``EndpointUnreachable``, as for HTTP. A ``false`` from ``ServerLive``, ``ServerReady`` or
``ModelReady`` is 503.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from rolloutgate.checks.cases import flatten
from rolloutgate.checks.client import AnswerTimedOut, EndpointUnreachable, V2Client
from rolloutgate.checks.httpclient import HttpClient, Request
from rolloutgate.config import HealthPaths
from rolloutgate.errors import ConfigError

SERVICE = "inference.GRPCInferenceService"
# Where a REST route goes: (method, path pattern) -> the service's call.
ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), call)
    for method, pattern, call in (
        ("GET", r"/v2/health/live", "ServerLive"),
        ("GET", r"/v2/health/ready", "ServerReady"),
        ("GET", r"/v2", "ServerMetadata"),
        ("GET", r"/v2/models/(?P<model>[^/]+)(/versions/(?P<version>[^/]+))?/ready", "ModelReady"),
        ("GET", r"/v2/models/(?P<model>[^/]+)(/versions/(?P<version>[^/]+))?", "ModelMetadata"),
        ("POST", r"/v2/models/(?P<model>[^/]+)(/versions/(?P<version>[^/]+))?/infer", "ModelInfer"),
    )
)
# gRPC status -> HTTP status (grpc-gateway's mapping, which KServe's REST and gRPC servers share).
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNIMPLEMENTED": 501,
}
# No answer from a server: the endpoint is unreachable, not wrong.
NO_ANSWER = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
# The typed field of InferTensorContents for each datatype; FP16 and BF16 have none and go raw.
CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


class GrpcClient(HttpClient):
    """An ``HttpClient`` whose requests are gRPC calls to ``base_url``'s host and port
    (``https``: TLS). Headers (the configured ones, a case's own, Basic auth) go as metadata.
    One channel for the client's life; every call has the client's timeout."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        timeout: float,
        health: Mapping[str, str],
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_url, model=model, timeout=timeout, health=health)
        import grpc  # type: ignore[import-untyped]
        from tritonclient.grpc import service_pb2, service_pb2_grpc  # type: ignore[import-untyped]

        split = urlsplit(self.base_url)
        self.target = split.netloc.rpartition("@")[2]  # userinfo goes as metadata, never here
        self._pb: Any = service_pb2
        self._grpc: Any = grpc
        if split.scheme == "https":
            self._channel = grpc.secure_channel(self.target, grpc.ssl_channel_credentials())
        else:
            self._channel = grpc.insecure_channel(self.target)
        self._stub: Any = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)
        self.metadata = {k.lower(): v for k, v in (metadata or {}).items()}

    def send(self, request: Request) -> requests.Response:
        path = request.path.replace("{model}", self.model)
        route = _route(request.method, path)
        if route is None:
            known = ", ".join(f"{m} {p.pattern}" for m, p, _ in ROUTES)
            return self._answer(
                "(none)",
                request.method,
                404,
                {"error": f"no call of {SERVICE} for {request.method} {path}; routes: {known}"},
            )
        call, match = route
        metadata = [*self.metadata.items(), *((k.lower(), v) for k, v in request.headers)]
        try:
            message = self._message(call, match, request.body)
        except (ValueError, TypeError) as e:
            raise ConfigError(
                f"{request.method} {path} cannot be sent as {SERVICE}/{call}: {e}"
            ) from None
        try:
            reply = getattr(self._stub, call)(message, timeout=self.timeout, metadata=metadata)
        except self._grpc.RpcError as e:
            code = e.code().name if e.code() is not None else "UNKNOWN"
            where = f"{call} at grpc://{self.target}"
            if code in NO_ANSWER:
                if code == "DEADLINE_EXCEEDED":
                    raise AnswerTimedOut(
                        f"{where} got no answer within {self.timeout:g} s"
                    ) from None
                raise EndpointUnreachable(f"{where} got no answer: {e.details()}") from None
            status = HTTP_STATUS.get(code, 500)
            return self._answer(call, request.method, status, {"error": f"{code}: {e.details()}"})
        status, body = _rest_answer(call, reply, match)
        return self._answer(call, request.method, status, body)

    def _message(self, call: str, match: re.Match[str], body: Any) -> Any:
        pb = self._pb
        model, version = match.groupdict().get("model"), match.groupdict().get("version") or ""
        if call == "ModelInfer":
            return infer_request(pb, model or self.model, version, body)
        if call in ("ModelReady", "ModelMetadata"):
            return getattr(pb, f"{call}Request")(name=model, version=version)
        return getattr(pb, f"{call}Request")()

    def _answer(self, call: str, method: str, status: int, body: Any) -> requests.Response:
        """The call's result as the HTTP answer of its REST route (``describe`` shows it as
        ``POST grpc://HOST:PORT/inference.GRPCInferenceService/ModelInfer -> 200: ...``)."""
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = f"grpc://{self.target}/{SERVICE}/{call}"
        response.request = requests.Request(method, response.url).prepare()
        response.reason = "OK" if status == 200 else "gRPC error"
        return response

    def close(self) -> None:
        self._channel.close()
        super().close()


def _route(method: str, path: str) -> tuple[str, re.Match[str]] | None:
    for m, pattern, call in ROUTES:
        match = pattern.fullmatch(path)
        if m == method and match is not None:
            return call, match
    return None


def infer_request(pb: Any, model: str, version: str, body: Any) -> Any:
    """A ``ModelInferRequest`` from a V2 REST infer body. Data go typed (``contents``), as
    written: nothing is checked against the shape here, the server judges the request.
    ValueError for a body that is no infer body at all."""
    if not isinstance(body, Mapping) or not isinstance(body.get("inputs"), list):
        raise ValueError('an infer body needs "inputs" (a list of tensors)')
    request = pb.ModelInferRequest(model_name=model, model_version=version)
    if body.get("id") is not None:
        request.id = str(body["id"])
    _set_parameters(request.parameters, body.get("parameters"))
    raw = any(str(t.get("datatype")) not in CONTENTS for t in body["inputs"])
    for tensor in body["inputs"]:
        if not isinstance(tensor, Mapping):
            raise ValueError("every input must be an object with name, shape, datatype, data")
        datatype = str(tensor.get("datatype", ""))
        item = request.inputs.add(
            name=str(tensor.get("name", "")),
            datatype=datatype,
            shape=[int(n) for n in tensor.get("shape") or []],
        )
        _set_parameters(item.parameters, tensor.get("parameters"))
        data = list(flatten(tensor.get("data", [])))
        if raw:  # the protocol allows raw for all inputs or none
            request.raw_input_contents.append(_raw(datatype, data))
        elif datatype == "BYTES":
            item.contents.bytes_contents.extend(_bytes(d) for d in data)
        else:
            getattr(item.contents, CONTENTS[datatype]).extend(data)
    for output in body.get("outputs") or []:
        if isinstance(output, Mapping):
            requested = request.outputs.add(name=str(output.get("name", "")))
            _set_parameters(requested.parameters, output.get("parameters"))
    return request


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


def _raw(datatype: str, data: list[Any]) -> bytes:
    if datatype == "BYTES":  # each element length-prefixed (4 bytes, little-endian)
        return b"".join(len(b).to_bytes(4, "little") + b for b in map(_bytes, data))
    import numpy as np
    from tritonclient.utils import triton_to_np_dtype  # type: ignore[import-untyped]

    dtype = triton_to_np_dtype(datatype)
    if dtype is None:
        raise ValueError(f"unknown datatype {datatype!r}")
    return bytes(np.array(data, dtype=dtype).tobytes())


def _set_parameters(target: Any, parameters: Any) -> None:
    """A REST ``parameters`` object into a protobuf map of ``InferParameter``."""
    for key, value in (parameters or {}).items() if isinstance(parameters, Mapping) else ():
        if isinstance(value, bool):
            target[key].bool_param = value
        elif isinstance(value, int):
            target[key].int64_param = value
        elif isinstance(value, float):
            target[key].double_param = value
        else:
            target[key].string_param = str(value)


def _parameters(source: Any) -> dict[str, Any]:
    """A protobuf map of ``InferParameter`` as the REST ``parameters`` object."""
    return {key: getattr(p, p.WhichOneof("parameter_choice") or "string_param") for key, p in
            source.items()}  # fmt: skip


def _tensor_meta(tensor: Any) -> dict[str, Any]:
    return {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}


def _rest_answer(call: str, reply: Any, match: re.Match[str]) -> tuple[int, Any]:
    """(status, JSON) of a call's reply as its REST route answers."""
    answers: dict[str, Callable[[], tuple[int, Any]]] = {
        "ServerLive": lambda: (200 if reply.live else 503, {"live": reply.live}),
        "ServerReady": lambda: (200 if reply.ready else 503, {"ready": reply.ready}),
        "ModelReady": lambda: (
            200 if reply.ready else 503,
            {"name": match.group("model"), "ready": reply.ready},
        ),
        "ServerMetadata": lambda: (
            200,
            {"name": reply.name, "version": reply.version, "extensions": list(reply.extensions)},
        ),
        "ModelMetadata": lambda: (
            200,
            {
                "name": reply.name,
                "versions": list(reply.versions),
                "platform": reply.platform,
                "inputs": [_tensor_meta(t) for t in reply.inputs],
                "outputs": [_tensor_meta(t) for t in reply.outputs],
            },
        ),
        "ModelInfer": lambda: (200, infer_answer(reply)),
    }
    return answers[call]()


def infer_answer(reply: Any) -> dict[str, Any]:
    """A ``ModelInferResponse`` as the REST answer: outputs' data flat, row-major, BYTES as
    text. Raw contents (Triton; MLServer when asked in raw) are decoded by tritonclient's
    ``InferResult``; typed ones (MLServer answering a typed request) are read from their
    field, which that client does not do."""
    from tritonclient.grpc import InferResult

    result = InferResult(reply)
    raw = len(reply.raw_output_contents)
    outputs = []
    for index, tensor in enumerate(reply.outputs):
        if index < raw:
            array = result.as_numpy(tensor.name)
            data = [] if array is None else array.flatten().tolist()
        else:
            data = list(getattr(tensor.contents, CONTENTS.get(tensor.datatype, "bytes_contents")))
        if tensor.datatype == "BYTES":
            data = [d.decode("utf-8", "replace") if isinstance(d, bytes) else d for d in data]
        out = {**_tensor_meta(tensor), "data": data}
        if tensor.parameters:
            out["parameters"] = _parameters(tensor.parameters)
        outputs.append(out)
    answer: dict[str, Any] = {"model_name": reply.model_name, "outputs": outputs}
    if reply.model_version:
        answer["model_version"] = reply.model_version
    if reply.id:
        answer["id"] = reply.id
    if reply.parameters:
        answer["parameters"] = _parameters(reply.parameters)
    return answer


class GrpcV2Client(V2Client):
    """The V2 client of the metadata checks (``rolloutgate_v2``), its calls made over gRPC."""

    def __init__(self, client: GrpcClient, health: HealthPaths | None = None) -> None:
        super().__init__(client.base_url, client.model, timeout=client.timeout, health=health)
        self.grpc = client

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> requests.Response:
        return self.grpc.send(Request(method, path.format(model=self.model), (), body))

    def close(self) -> None:
        self.grpc.close()
        super().close()
