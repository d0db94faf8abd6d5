"""Golden files for any protocol: parsing, presets, comparison (no HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rolloutgate.checks import cases, protocols
from rolloutgate.checks.cases import Expectation, Request, compare
from rolloutgate.config import HealthPaths
from rolloutgate.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]

PLAIN = {
    "protocol": "plain",
    "cases": [
        {
            "name": "one",
            "request": {"body": {"instances": [[1.0, 2.0]]}},
            "expect": {"values": [{"path": "predictions", "data": [0]}]},
        }
    ],
}


def load(tmp_path: Path, content: object) -> cases.Golden:
    path = tmp_path / "golden.json"
    path.write_text(json.dumps(content))
    return cases.load(path)


def test_todays_iris_golden_file_is_the_v2_preset() -> None:
    golden = cases.load(REPO / "fixtures/golden/iris.json")
    assert golden.protocol is protocols.V2
    assert golden.model == "iris"
    assert [c.name for c in golden.cases][:3] == ["setosa", "versicolor", "virginica"]
    first = golden.cases[0]
    assert first.request.method == "POST"
    assert first.request.path == "/v2/models/{model}/infer"
    assert first.request.body["inputs"][0]["data"] == [5.1, 3.5, 1.4, 0.2]
    assert first.status == 200
    assert first.expect[0].label == "output 'predict'"
    assert golden.latency is not None
    assert golden.latency.requests == 20


def test_plain_preset_fills_method_and_path(tmp_path: Path) -> None:
    golden = load(tmp_path, PLAIN)
    assert golden.protocol is protocols.PLAIN
    assert golden.model == ""  # plain paths have no {model}
    assert golden.cases[0].request == Request("POST", "/predict", (), {"instances": [[1.0, 2.0]]})
    assert golden.cases[0].expect[0].path == "predictions"


def test_v1_preset_and_full_requests(tmp_path: Path) -> None:
    golden = load(
        tmp_path,
        {
            "protocol": "v1",
            "model": "wine",
            "cases": [
                {
                    "name": "predict",
                    "request": {"body": {"instances": [[1]]}},
                    "expect": [{"path": "predictions[0]", "data": 1}],
                },
                {
                    "name": "status",
                    "request": {
                        "method": "get",
                        "path": "/v1/models/{model}",
                        "headers": {"X-A": "b"},
                    },
                    "expect": {
                        "status": 200,
                        "values": [{"path": "model_version_status[0].state", "data": "AVAILABLE"}],
                    },
                },
                {
                    "name": "bad-input-is-refused",
                    "request": {"body": {"instances": "nonsense"}},
                    "expect": {"status": 400},
                },
            ],
        },
    )
    predict, status, refused = golden.cases
    assert predict.request.path == "/v1/models/{model}:predict"
    assert status.request == Request("GET", "/v1/models/{model}", (("X-A", "b"),), None)
    assert refused.status == 400
    assert refused.expect == ()


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ({**PLAIN, "protocol": "grpc"}, "unknown protocol 'grpc'; known presets: v2"),
        ({"protocol": "v1", "cases": PLAIN["cases"]}, '"model" must be'),
        ({**PLAIN, "health": {"alive": "/x"}}, '"health" must be an object with keys'),
        ({**PLAIN, "health": {"live": "x"}}, "health.live must be a path"),
        (
            {**PLAIN, "cases": [{**PLAIN["cases"][0], "request": {"inputs": []}}]},
            "case 'one'.request has unknown keys ['inputs']",
        ),
        (
            {**PLAIN, "cases": [{**PLAIN["cases"][0], "request": {"path": "predict"}}]},
            "case 'one'.request.path must be a path",
        ),
        (
            {**PLAIN, "cases": [{**PLAIN["cases"][0], "request": {"method": "FETCH"}}]},
            "case 'one'.request.method must be one of",
        ),
        (
            {**PLAIN, "cases": [{**PLAIN["cases"][0], "expect": {"status": 200}}]},
            "case 'one'.expect.values must name at least one value",
        ),
        (
            {**PLAIN, "cases": [{**PLAIN["cases"][0], "expect": [{"name": "p", "data": [0]}]}]},
            "case 'one'.expect[0] needs \"path\"",
        ),
        (
            {**PLAIN, "cases": [{**PLAIN["cases"][0], "expect": [{"path": "a[", "data": 0}]}]},
            "case 'one'.expect[0].path is not a JMESPath expression",
        ),
        (
            {**PLAIN, "cases": [{**PLAIN["cases"][0], "expect": [{"path": "a"}]}]},
            "case 'one'.expect[0].data is missing",
        ),
        (
            {
                **PLAIN,
                "cases": [
                    {**PLAIN["cases"][0], "expect": [{"path": "a", "data": 0, "max_flips": -1}]}
                ],
            },
            "case 'one'.expect[0].max_flips must be a whole number >= 0",
        ),
        ({**PLAIN, "cases": [PLAIN["cases"][0]] * 2}, "case 'one'.name is used twice"),
    ],
)
def test_bad_golden_file_names_file_field_and_format(
    tmp_path: Path, content: object, names: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, content)
    message = str(info.value)
    assert str(tmp_path / "golden.json") in message
    assert names in message
    assert '"protocol": "v2" | "v1" | "plain"' in message


def exp(path: str, data: Any, **kw: Any) -> Expectation:
    return Expectation(label=path, path=path, data=data, **kw)


def test_values_picked_by_jmespath_and_flattened() -> None:
    answer = {"predictions": [0, 2], "probabilities": [[0.9, 0.1], [0.2, 0.8]]}
    assert compare(exp("predictions", [0, 2]), answer) == []
    assert compare(exp("predictions[1]", 2), answer) == []
    assert compare(exp("probabilities", [[0.9, 0.1], [0.2, 0.8]]), answer) == []
    assert compare(exp("probabilities[1]", [0.25, 0.75], abs_tol=0.06), answer) == []
    assert compare(exp("probabilities[1]", [0.25, 0.75], abs_tol=0.01), answer) == [
        "probabilities[1] (abs_tol=0.01, rel_tol=0): [0] expected 0.25 got 0.2, "
        "[1] expected 0.75 got 0.8"
    ]
    assert compare(exp("predictions", [0, 2, 1]), answer) == [
        "predictions: expected 3 values [0, 2, 1], got 2 values [0, 2]"
    ]
    assert compare(exp("labels", [0]), answer)[0].startswith(
        "labels missing: JMESPath 'labels' selects nothing in {\"predictions\""
    )


def test_label_flips_within_max_flips_pass() -> None:
    answer = {"predictions": [0, 1, 1, 2]}
    assert compare(exp("predictions", [0, 1, 2, 2], max_flips=1), answer) == []
    assert compare(exp("predictions", [1, 1, 2, 2], max_flips=1), answer) == [
        "predictions (exact, max_flips=1): 2 of 4 differ, at most 1 may: "
        "[0] expected 1 got 0, [2] expected 2 got 1"
    ]


def test_exact_values_keep_their_types() -> None:
    assert compare(exp("a", 1), {"a": True}) != []
    assert compare(exp("a", 1), {"a": 1.0}) == []  # JSON numbers: 1 and 1.0 are one number
    assert compare(exp("a", "setosa"), {"a": "setosa"}) == []
    assert compare(exp("a", {"k": 1}), {"a": {"k": 1}}) == []


def test_v2_output_names_are_quoted_in_jmespath() -> None:
    path = cases.v2_output_path("it's")
    answer = {"outputs": [{"name": "it's", "data": [1]}]}
    assert compare(exp(path, [1]), answer) == []


def test_health_paths_settings_then_golden_then_preset() -> None:
    preset = protocols.PLAIN
    assert protocols.health_paths(preset, {}, {}) == {"live": "/healthz", "ready": "/readyz"}
    assert protocols.health_paths(preset, {"live": None, "model_ready": "/m"}, {}) == {
        "ready": "/readyz",
        "model_ready": "/m",
    }
    assert protocols.health_paths(preset, {"ready": "/r"}, {"ready": "/set"}) == {
        "live": "/healthz",
        "ready": "/set",
    }
    assert protocols.health_paths(protocols.V1, {}, {}) == {"model_ready": "/v1/models/{model}"}
    assert list(protocols.health_paths(protocols.V2, {}, {})) == ["live", "ready", "model_ready"]


def test_client_health_uses_only_settings_a_user_set(tmp_path: Path) -> None:
    from rolloutgate.config import resolve

    golden = load(tmp_path, PLAIN)
    (tmp_path / "pyproject.toml").write_text("")
    cfg = resolve(
        {},
        env={"ROLLOUTGATE_HEALTH_READY": "/ready-now"},
        tool={},
        rootdir=tmp_path,
        invocation_dir=tmp_path,
        list_contexts=lambda _k: [],
    )
    assert cfg.health == HealthPaths(ready="/ready-now")  # live, model_ready: V2 defaults
    assert cases.health_paths(golden, cfg) == {"live": "/healthz", "ready": "/ready-now"}
