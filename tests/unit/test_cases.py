"""Golden files for any protocol: parsing, presets, comparison (no HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rolloutgate.checks import cases, protocols
from rolloutgate.checks.cases import Expectation, compare
from rolloutgate.checks.httpclient import Request, health_paths
from rolloutgate.checks.latency import LatencyBudget
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

# A case in the V2 form of the files written before presets: the request is the V2 inference
# body, the expectations name output tensors.
V2_CASE = {
    "name": "setosa",
    "request": {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]},
    "expect": [{"name": "predict", "data": [0]}],
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


def test_v2_form_names_outputs_with_tolerances_and_a_latency_budget(tmp_path: Path) -> None:
    nested = {
        **V2_CASE,
        "name": "nested",
        "expect": [{"name": "p", "data": [[1, 2]], "rel_tol": 0.1}],
    }
    golden = load(
        tmp_path,
        {
            "model": "iris",
            "latency": {"requests": 5, "p50_ms": 100, "p95_ms": 200.5},
            "cases": [V2_CASE, nested],
        },
    )
    assert [c.name for c in golden.cases] == ["setosa", "nested"]
    assert golden.cases[0].request.body == V2_CASE["request"]
    exp = golden.cases[1].expect[0]
    assert (exp.output, exp.label, exp.data) == ("p", "output 'p'", [[1, 2]])
    assert (exp.abs_tol, exp.rel_tol) == (None, 0.1)
    assert exp.path == cases.v2_output_path("p")
    assert golden.latency == LatencyBudget(requests=5, p50_ms=100.0, p95_ms=200.5)


def test_missing_or_broken_golden_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"golden file .*missing.json cannot be read"):
        cases.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match=r"broken.json is not valid JSON \(line 1, column 2"):
        cases.load(broken)


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
        ({**PLAIN, "protocol": "soap"}, "unknown protocol 'soap'; known presets: v2"),
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
        ([], "the top level must be an object"),
        ({"cases": [V2_CASE]}, '"model" must be'),
        ({"model": "iris", "cases": []}, '"cases" must be a non-empty list'),
        ({"model": "iris", "cases": [{**V2_CASE, "name": ""}]}, "cases[0].name must be"),
        ({"model": "iris", "cases": [{**V2_CASE, "expect": []}]}, "case 'setosa'.expect must be"),
        (
            {"model": "iris", "cases": [{**V2_CASE, "expect": [{"name": "p", "data": 0}]}]},
            "case 'setosa'.expect[0].data must be a list",
        ),
        (
            {
                "model": "iris",
                "cases": [{**V2_CASE, "expect": [{"name": "p", "data": [0], "abs_tol": -1}]}],
            },
            "case 'setosa'.expect[0].abs_tol must be a number >= 0",
        ),
        (
            {
                "model": "iris",
                "cases": [V2_CASE],
                "latency": {"requests": 0, "p50_ms": 1, "p95_ms": 1},
            },
            "latency.requests must be a whole number >= 1",
        ),
        (
            {"model": "iris", "cases": [V2_CASE], "latency": {"requests": 3, "p50_ms": 1}},
            "latency.p95_ms must be a number of milliseconds > 0",
        ),
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


def v2_exp(output: str, data: list[Any], **kw: Any) -> Expectation:
    path = cases.v2_output_path(output)
    return Expectation(label=f"output {output!r}", path=path, data=data, output=output, **kw)


def v2_answer(*outputs: tuple[str, list[Any]]) -> dict[str, Any]:
    return {
        "outputs": [
            {"name": n, "datatype": "FP64", "shape": [len(d)], "data": d} for n, d in outputs
        ]
    }


def test_v2_outputs_are_compared_by_name() -> None:
    exact = v2_exp("predict", [0, 1])
    assert compare(exact, v2_answer(("predict", [0, 1]))) == []
    assert compare(exact, v2_answer(("predict", [[0], [1]]))) == []  # V2 allows both layouts
    assert compare(exact, v2_answer(("predict", [0, 2]))) == [
        "output 'predict' (exact): [1] expected 1 got 2"
    ]
    assert compare(exact, v2_answer(("predict", [0.0, 1.0000001]))) != []
    absolute = v2_exp("p", [1.0, 0.0], abs_tol=0.05)
    assert compare(absolute, v2_answer(("p", [0.96, 0.04]))) == []
    assert compare(absolute, v2_answer(("p", [0.94, 0.0]))) == [
        "output 'p' (abs_tol=0.05, rel_tol=0): [0] expected 1.0 got 0.94"
    ]
    relative = v2_exp("p", [100.0], rel_tol=0.01)
    assert compare(relative, v2_answer(("p", [100.9]))) == []
    assert compare(relative, v2_answer(("p", [102.0]))) != []


def test_v2_missing_outputs_and_length_mismatches_are_named() -> None:
    assert compare(v2_exp("proba", [1]), v2_answer(("predict", [0])))[0].startswith(
        "output 'proba' missing: JMESPath \"outputs[?name=='proba'] | [0].data\" selects nothing"
    )
    assert compare(v2_exp("p", [1]), {"error": "boom"})[0].startswith("output 'p' missing")
    assert compare(v2_exp("p", [1, 2]), v2_answer(("p", [1]))) == [
        "output 'p': expected 2 values [1, 2], got 1 values [1]"
    ]
    # Booleans are not numbers here: True must not pass for 1.
    assert compare(v2_exp("p", [1]), v2_answer(("p", [True]))) != []


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
    assert health_paths(golden, cfg) == {"live": "/healthz", "ready": "/ready-now"}
