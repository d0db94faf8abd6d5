"""Each rolloutgate/iris tag behaves as docs/example-model.md says, under docker."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from iris_harness import (
    IMAGE,
    START_DEADLINE_S,
    Container,
    docker,
    golden_failures,
    http_status,
    image_exists,
    latency_ms,
    load_golden,
    request,
    wait_for_status,
)

pytestmark = pytest.mark.docker

Start = Callable[[str], Container]
GOOD = ["v1", "v2"]


@pytest.mark.parametrize("tag", GOOD)
def test_good_release_answers_every_v2_endpoint(iris_ready: Start, tag: str) -> None:
    c = iris_ready(tag)
    base = f"{c.url}/v2"
    assert http_status(f"{base}/health/live") == 200
    assert http_status(f"{base}/health/ready") == 200
    assert http_status(f"{base}/models/iris/ready") == 200
    assert http_status(f"{base}/models/iris/versions/{tag}/ready") == 200

    server = request(base).body
    assert server["name"] == "mlserver"
    assert server["version"] == "1.7.1"

    meta = request(f"{base}/models/iris")
    assert meta.status == 200
    assert meta.body["name"] == "iris"
    assert meta.body["versions"] == [tag]
    assert meta.body["platform"] == "sklearn"
    assert meta.body["inputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1, 4]}]
    assert {o["name"] for o in meta.body["outputs"]} == {"predict", "predict_proba"}

    body = {"id": "t-1", "inputs": load_golden()["cases"][0]["request"]["inputs"]}
    infer = request(f"{base}/models/iris/infer", body)
    assert infer.status == 200
    assert infer.body["model_name"] == "iris"
    assert infer.body["model_version"] == tag
    assert infer.body["id"] == "t-1"
    assert infer.body["outputs"][0]["name"] == "predict"
    assert infer.body["outputs"][0]["datatype"] == "INT64"

    # Errors are 4xx with an "error" message, as the protocol says.
    missing = request(f"{base}/models/no-such-model/infer", body)
    assert missing.status == 404
    assert "error" in missing.body
    bad = request(f"{base}/models/iris/infer", {**body, "outputs": [{"name": "bogus"}]})
    assert 400 <= bad.status < 500
    assert "error" in bad.body


@pytest.mark.parametrize("tag", GOOD)
def test_good_release_passes_golden_cases_and_latency(iris_ready: Start, tag: str) -> None:
    c = iris_ready(tag)
    golden = load_golden()
    assert golden_failures(c.url, golden) == []
    budget = golden["latency"]
    p50, p95 = latency_ms(c.url, golden, budget["requests"])
    assert p50 <= budget["p50_ms"], f"p50 {p50:.0f} ms"
    assert p95 <= budget["p95_ms"], f"p95 {p95:.0f} ms"


def test_v1_with_tritonclient(iris_ready: Start) -> None:
    """A V2 client the project did not write agrees the endpoints follow the protocol."""
    np = pytest.importorskip("numpy")
    httpclient = pytest.importorskip("tritonclient.http", reason="pip install 'tritonclient[http]'")
    c = iris_ready("v1")
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{c.port}", network_timeout=10.0)
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("iris")
        meta = client.get_model_metadata("iris")
        assert meta["name"] == "iris"
        assert meta["versions"] == ["v1"]

        rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5]])
        features = httpclient.InferInput("predict", list(rows.shape), "FP64")
        features.set_data_from_numpy(rows, binary_data=False)
        wanted = [
            httpclient.InferRequestedOutput("predict", binary_data=False),
            httpclient.InferRequestedOutput("predict_proba", binary_data=False),
        ]
        result = client.infer("iris", [features], outputs=wanted)
        assert result.as_numpy("predict").ravel().tolist() == [0, 1, 2]
        proba = result.as_numpy("predict_proba")
        assert proba.shape == (3, 3)
        assert np.allclose(proba.sum(axis=1), 1.0)
        assert result.get_response()["model_version"] == "v1"
    finally:
        client.close()


def test_crash_exits_non_zero(iris_start: Start) -> None:
    c = iris_start("crash")
    code = int(docker("wait", c.cid, timeout=START_DEADLINE_S))
    assert code != 0, f"crash exited 0; logs:\n{c.logs()}"
    assert "http_port" in c.logs()  # the bad setting is named in the error


def test_unready_is_live_but_never_ready(iris_start: Start) -> None:
    c = iris_start("unready")
    wait_for_status(c, "/v2/health/live", 200, START_DEADLINE_S)
    # Live now; give a healthy model several times what v1 needs to load, checking all along.
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        assert http_status(f"{c.url}/v2/health/live") == 200
        assert http_status(f"{c.url}/v2/health/ready") == 400
        assert http_status(f"{c.url}/v2/models/iris/ready") == 400
        time.sleep(0.5)
    assert c.state()["Running"]
    assert "settings expect 4" in c.logs()


def test_wrong_is_ready_but_fails_golden_cases(iris_ready: Start) -> None:
    c = iris_ready("wrong")
    assert http_status(f"{c.url}/v2/models/iris/ready") == 200
    failures = golden_failures(c.url, load_golden())
    assert failures, "the wrong model passed every golden case"
    assert any(f.startswith("setosa:") for f in failures)


def test_slow_is_correct_but_over_latency_budget(iris_ready: Start) -> None:
    c = iris_ready("slow")
    golden = load_golden()
    assert golden_failures(c.url, golden) == []
    # A few calls show it: every one sleeps 1.5 s, three times the p95 budget.
    p50, _ = latency_ms(c.url, golden, requests=3)
    assert p50 > golden["latency"]["p95_ms"], f"slow answered in {p50:.0f} ms"


def test_hang_is_ready_and_never_answers_an_inference(iris_ready: Start) -> None:
    c = iris_ready("hang")
    golden = load_golden()
    infer = f"{c.url}/v2/models/{golden['model']}/infer"
    with pytest.raises(TimeoutError):
        request(infer, golden["cases"][0]["request"], timeout=3.0)
    assert http_status(c.url + "/v2/health/ready") == 200  # health still answers


def test_missing_tag_is_never_built(iris_image: Callable[[str], str]) -> None:
    # Stands for a release whose image is not there: the cluster cannot pull it.
    assert not image_exists("missing"), f"{IMAGE}:missing exists; it must never be built"


def test_image_runs_as_numeric_non_root_user(iris_image: Callable[[str], str]) -> None:
    user = docker("image", "inspect", "-f", "{{.Config.User}}", iris_image("v1"))
    uid = user.split(":")[0]
    assert uid.isdigit(), f"USER {user!r} is not numeric; runAsNonRoot needs a numeric uid"
    assert int(uid) != 0
    entry = docker("image", "inspect", "-f", "{{json .Config.Cmd}}", iris_image("v1"))
    assert "mlserver" in entry
