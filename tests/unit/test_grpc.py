"""The grpc preset against an Open Inference Protocol gRPC server on 127.0.0.1 (tritonclient's
servicer, answering as MLServer does: raw output contents), no cluster: routes, the REST form
of the answers, gRPC errors as HTTP statuses, metadata, an unreachable server."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from concurrent import futures
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc  # type: ignore[import-untyped]

from rolloutgate.checks import cases, httpclient
from rolloutgate.checks.client import EndpointUnreachable, wait_answering
from rolloutgate.checks.grpc import GrpcClient, GrpcV2Client
from rolloutgate.checks.protocols import GRPC

GOLDEN = {
    "protocol": "grpc",
    "model": "iris",
    "cases": [
        {
            "name": "setosa",
            "request": {
                "inputs": [
                    {"name": "predict", "shape": [1, 4], "datatype": "FP64",
                     "data": [5.1, 3.5, 1.4, 0.2]}
                ],
                "outputs": [{"name": "predict_proba"}],
            },
            "expect": [{"name": "predict_proba", "data": [1.0, 0.0, 0.0], "abs_tol": 0.05}],
        },
        {
            "name": "short-row-is-refused",
            "request": {"inputs": [{"name": "predict", "shape": [1, 4], "datatype": "FP64",
                                    "data": [5.1]}]},
            "expect": {"status": 400},
        },
    ],
}  # fmt: skip


class Iris(service_pb2_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    """MLServer's answers, small: model `iris` ready unless `ready` is False; predict_proba
    in raw contents (Triton's way), predict in typed contents (MLServer's, for a typed request).
    """

    def __init__(self) -> None:
        self.ready = True
        self.metadata: list[tuple[str, str]] = []

    def ServerLive(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerLiveResponse(live=True)

    def ServerReady(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerReadyResponse(ready=self.ready)

    def ModelReady(self, request: Any, context: Any) -> Any:
        if request.name != "iris":
            context.abort(grpc.StatusCode.NOT_FOUND, f"Model {request.name} not found")
        return service_pb2.ModelReadyResponse(ready=self.ready)

    def ServerMetadata(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerMetadataResponse(name="mlserver", version="1.7.1")

    def ModelMetadata(self, request: Any, context: Any) -> Any:
        tensor = service_pb2.ModelMetadataResponse.TensorMetadata
        return service_pb2.ModelMetadataResponse(
            name="iris",
            platform="sklearn",
            inputs=[tensor(name="predict", datatype="FP64", shape=[-1, 4])],
        )

    def ModelInfer(self, request: Any, context: Any) -> Any:
        self.metadata = list(context.invocation_metadata())
        tensor = request.inputs[0]
        data = list(tensor.contents.fp64_contents)
        if len(data) != tensor.shape[0] * tensor.shape[1]:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "cannot reshape array of size 1")
        out = service_pb2.ModelInferResponse(model_name="iris", id=request.id or "generated")
        if request.outputs and request.outputs[0].name == "predict_proba":
            out.outputs.add(name="predict_proba", datatype="FP64", shape=[1, 3])
            out.raw_output_contents.append(struct.pack("<3d", 0.98, 0.02, 0.0))
        else:  # typed, as MLServer answers a typed request
            predict = out.outputs.add(name="predict", datatype="INT64", shape=[1, 1])
            predict.contents.int64_contents.append(0)
        return out


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, Iris]]:
    """Module. (base URL, servicer) of a gRPC server on a free port of 127.0.0.1."""
    servicer = Iris()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    yield f"http://127.0.0.1:{port}", servicer
    srv.stop(grace=None)


@pytest.fixture
def golden(tmp_path: Path) -> cases.Golden:
    return cases.parse(GOLDEN, tmp_path / "iris-grpc.json")


def client(url: str, golden: cases.Golden, **metadata: str) -> GrpcClient:
    health = {k: v for k, v in GRPC.health.items()}
    return GrpcClient(url, model=golden.model, timeout=5, health=health, metadata=metadata)


def test_golden_cases_pass_over_grpc_and_answers_read_as_rest(
    server: tuple[str, Iris], golden: cases.Golden
) -> None:
    url, _ = server
    with client(url, golden) as c:
        wait_answering(c, deadline=0)
        assert cases.verify(c, golden) == []
        answer = c.send(golden.cases[0].request)
        typed = c.send(httpclient.Request("POST", "/v2/models/iris/infer", (), {"inputs": [
            {"name": "predict", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}
        ]}))  # fmt: skip
    assert answer.json() == {
        "model_name": "iris",
        "id": "generated",
        "outputs": [
            {"name": "predict_proba", "datatype": "FP64", "shape": [1, 3],
             "data": [0.98, 0.02, 0.0]}
        ],
    }  # fmt: skip
    assert answer.url.endswith("/inference.GRPCInferenceService/ModelInfer")
    assert typed.json()["outputs"][0]["data"] == [0]


def test_refusal_is_the_servers_and_a_wrong_answer_is_named(
    server: tuple[str, Iris], golden: cases.Golden
) -> None:
    url, _ = server
    with client(url, golden) as c:
        refused = c.send(golden.cases[1].request)
        assert refused.status_code == 400
        assert "INVALID_ARGUMENT: cannot reshape" in refused.json()["error"]
        want = replace(golden.cases[0].expect[0], data=[0.0, 1.0, 0.0])
        wrong = cases.Case("s", golden.cases[0].request, 200, (want,))
        problems = cases.check(wrong, c.send(wrong.request))
    assert problems == [
        "output 'predict_proba' (abs_tol=0.05, rel_tol=0): [0] expected 0.0 got 0.98, "
        "[1] expected 1.0 got 0.02"
    ]


def test_health_metadata_and_not_found(server: tuple[str, Iris], golden: cases.Golden) -> None:
    url, servicer = server
    with client(url, golden) as c:
        assert cases.check_health(c) == []
        servicer.ready = False
        try:
            problems = cases.check_health(c)
        finally:
            servicer.ready = True
        assert [p.split(":")[0] for p in problems] == ["health ready", "health model_ready"]
        assert c.get("/v2/models/other/ready").status_code == 404
        assert c.get("/v2/nowhere").status_code == 404
        v2 = GrpcV2Client(c)
        meta = v2.model_metadata().json()
        assert meta["inputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1, 4]}]
        assert v2.server_metadata().json()["name"] == "mlserver"


def test_headers_go_as_metadata(server: tuple[str, Iris], golden: cases.Golden) -> None:
    url, servicer = server
    with client(url, golden, Authorization="Bearer t0ken") as c:
        c.send(golden.cases[0].request)
    assert ("authorization", "Bearer t0ken") in servicer.metadata


def test_no_server_is_unreachable_not_wrong(golden: cases.Golden) -> None:
    with (
        client("http://127.0.0.1:9", golden) as c,
        pytest.raises(EndpointUnreachable, match=r"ServerLive at grpc://127.0.0.1:9 got no"),
    ):
        c.live()


def test_recording_over_grpc_gives_a_golden_file_the_gate_accepts(
    server: tuple[str, Iris], golden: cases.Golden, tmp_path: Path
) -> None:
    from rolloutgate.checks import recording

    url, _ = server
    with client(url, golden) as c:
        data = recording.record(c, golden, recording.Tolerances(), source=url)
    assert data["protocol"] == "grpc"
    assert data["cases"][0]["expect"] == [
        {"name": "predict_proba", "data": [0.98, 0.02, 0.0], "abs_tol": 0.05}
    ]
    assert data["cases"][1]["expect"] == {"status": 400}
    again = cases.parse(data, tmp_path / "recorded.json")
    with client(url, again) as c:
        assert cases.verify(c, again) == []
