"""Golden cases for any HTTP JSON model server: a request, and expectations on its answer.

A golden file (docs/gate.md, "The golden file")::

    {"protocol": "plain",                       # v2 (default), v1 or plain: see protocols.py
     "model": "wine",                           # needed when a path has {model} (v2, v1)
     "health": {"ready": "/ready", "live": null},   # optional: change or drop preset checks
     "latency": {"requests": 20, "p50_ms": 250, "p95_ms": 500},   # optional
     "cases": [{"name": "class-0",
                "request": {"method": "POST", "path": "/predict",     # default: the preset's
                            "headers": {"X-Tenant": "a"},             # optional
                            "body": {"instances": [[...]]}},
                "expect": {"status": 200,                             # default 200
                           "values": [{"path": "predictions", "data": [0]},
                                      {"path": "probabilities[0]", "data": [0.9, 0.1, 0.0],
                                       "abs_tol": 0.05}]}}]}

A value's ``path`` is a JMESPath expression (the query language of the AWS CLI and Ansible's
``json_query``; the ``jmespath`` library) into the JSON answer. What it selects and ``data``
are compared element by element after flattening nested lists row-major: numbers within
``abs_tol``/``rel_tol`` (``math.isclose``), exactly without them (``true`` is not ``1``);
``max_flips`` tolerates that many differing elements (label flips of a classifier).

For the v2 preset the files written before presets existed keep their meaning: a ``request``
holding ``inputs`` is the V2 inference body, sent to ``POST /v2/models/{model}/infer``, and an
``expect`` list of ``{"name": OUTPUT, "data": [...]}`` names output tensors.

The request and the client that sends it (``Request``, ``HttpClient``, ``client_for``) are
in ``httpclient``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import jmespath
import jmespath.exceptions
import requests

from rolloutgate.checks import protocols
from rolloutgate.checks.client import EndpointUnreachable, describe

# The request and the client that sends it are httpclient's. The canary (canary/) still
# imports these three under this module's name; the `as` form says they are meant to be.
from rolloutgate.checks.httpclient import HttpClient as HttpClient
from rolloutgate.checks.httpclient import Request as Request
from rolloutgate.checks.httpclient import client_for as client_for
from rolloutgate.checks.latency import LatencyBudget, parse_budget
from rolloutgate.checks.protocols import Protocol
from rolloutgate.errors import ConfigError

GOLDEN_FORMAT = (
    '{"model": NAME (v2, v1, grpc), "protocol": "v2" | "v1" | "plain" | "grpc" (default v2), '
    '"health": {"live"|"ready"|"model_ready": PATH or null} (optional), '
    '"latency": {"requests": N, "p50_ms": MS, "p95_ms": MS} (optional), '
    '"cases": [{"name": NAME, "request": {"method": M, "path": PATH, "headers": {...}, '
    '"body": JSON} (v2 also: a V2 infer body), "expect": {"status": CODE, "values": '
    '[{"path": JMESPATH, "data": JSON, "abs_tol": X, "rel_tol": X, "max_flips": N}]} '
    '(v2 also: [{"name": OUTPUT, "data": [...]}])}]} (see docs/gate.md)'
)
REQUEST_KEYS = frozenset({"method", "path", "headers", "body"})
VALUE_KEYS = frozenset({"path", "name", "data", "abs_tol", "rel_tol", "max_flips"})
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Expectation:
    """A value picked from the answer by a JMESPath expression, and what it must be."""

    label: str
    path: str
    data: Any
    abs_tol: float | None = None
    rel_tol: float | None = None
    max_flips: int = 0
    compiled: Any = field(default=None, compare=False, repr=False)
    # The V2 output tensor's name when the file named one (``{"name": OUTPUT, ...}``).
    output: str | None = None

    @property
    def tolerance(self) -> str:
        if self.abs_tol is None and self.rel_tol is None:
            text = "exact"
        else:
            text = f"abs_tol={self.abs_tol or 0:g}, rel_tol={self.rel_tol or 0:g}"
        return text + (f", max_flips={self.max_flips}" if self.max_flips else "")

    def search(self, answer: object) -> Any:
        expression = self.compiled or jmespath.compile(self.path)
        return expression.search(answer)


@dataclass(frozen=True)
class Case:
    """A golden case: the request to send and what its answer must hold."""

    name: str
    request: Request
    status: int = 200
    expect: tuple[Expectation, ...] = ()


@dataclass(frozen=True)
class Golden:
    """A parsed golden file."""

    path: Path
    protocol: Protocol
    model: str
    cases: tuple[Case, ...]
    latency: LatencyBudget | None = None
    # The file's own health paths: name -> path, or None to drop a preset's check.
    health: Mapping[str, str | None] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The golden file.


def load(path: Path, *, requests_only: bool = False, protocol: str | None = None) -> Golden:
    """Parse and check a golden file. ConfigError names the file, the field and the format.

    ``requests_only``: cases may leave ``expect`` out (a file to record answers for).
    ``protocol``: the preset to speak instead of the file's (the ``protocol`` setting).
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"golden file {path} cannot be read: {e.strerror or e}") from e
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"golden file {path} is not valid JSON (line {e.lineno}, column {e.colno}: "
            f"{e.msg}); expected {GOLDEN_FORMAT}"
        ) from e
    if protocol is not None and isinstance(raw, dict):
        raw = {**raw, "protocol": protocol}
    return parse(raw, path, requests_only=requests_only)


def parse(raw: object, path: Path, *, requests_only: bool = False) -> Golden:
    """A golden file's JSON content, checked; ``path`` is for messages."""

    def bad(where: str, problem: str) -> ConfigError:
        return ConfigError(f"golden file {path}: {where} {problem}; expected {GOLDEN_FORMAT}")

    if not isinstance(raw, dict):
        raise bad("the top level", "must be an object")
    name = raw.get("protocol", protocols.DEFAULT.name)
    if not isinstance(name, str):
        raise bad('"protocol"', f"must be one of {', '.join(protocols.PRESETS)}")
    try:
        protocol = protocols.get(name)
    except ConfigError as e:
        raise bad('"protocol"', str(e)) from e
    model = raw.get("model", "")
    if not isinstance(model, str) or (protocol.needs_model and not model):
        raise bad('"model"', f"must be the model's name (a non-empty string) for {name}")
    health = _health(raw.get("health"), bad)
    cases_raw = raw.get("cases")
    if not isinstance(cases_raw, list) or not cases_raw:
        raise bad('"cases"', "must be a non-empty list")
    cases: list[Case] = []
    for i, c in enumerate(cases_raw):
        case = _case(c, i, protocol, bad, requests_only)
        if any(existing.name == case.name for existing in cases):
            raise bad(f"case {case.name!r}.name", "is used twice; case names must be unique")
        cases.append(case)
    latency = parse_budget(raw.get("latency"), bad)
    return Golden(path, protocol, model, tuple(cases), latency, health)


Bad = Callable[[str, str], ConfigError]


def _health(raw: object, bad: Bad) -> dict[str, str | None]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not set(raw) <= set(protocols.HEALTH_CHECKS):
        raise bad('"health"', f"must be an object with keys of {protocols.HEALTH_CHECKS}")
    for key, value in raw.items():
        if value is not None and not (isinstance(value, str) and value.startswith("/")):
            raise bad(f"health.{key}", "must be a path starting with '/' or null (no check)")
    return dict(raw)


def _case(raw: object, i: int, protocol: Protocol, bad: Bad, requests_only: bool) -> Case:
    where = f"cases[{i}]"
    if not isinstance(raw, dict):
        raise bad(where, "must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise bad(f"{where}.name", "must be a non-empty string")
    where = f"case {name!r}"
    request = parse_request(raw.get("request"), f"{where}.request", protocol, bad)
    status, values = 200, raw.get("expect")
    if requests_only and values is None:
        return Case(name=name, request=request)
    if isinstance(values, dict):
        extra = set(values) - {"status", "values"}
        if extra:
            raise bad(f"{where}.expect", f"has unknown keys {sorted(extra)}")
        status = values.get("status", 200)
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise bad(f"{where}.expect.status", "must be an HTTP status code")
        values = values.get("values", [])
        if not isinstance(values, list):
            raise bad(f"{where}.expect.values", "must be a list")
        if not values and status // 100 == 2:
            raise bad(f"{where}.expect.values", "must name at least one value of a 2xx answer")
    elif not isinstance(values, list) or not values:
        raise bad(f"{where}.expect", "must be a non-empty list of values or an object")
    expect = tuple(
        _expectation(v, f"{where}.expect[{j}]", protocol, bad) for j, v in enumerate(values)
    )
    return Case(name=name, request=request, status=status, expect=expect)


def parse_request(raw: object, where: str, protocol: Protocol, bad: Bad) -> Request:
    """A case's ``request`` in ``protocol``: what it leaves out comes from the preset. Also the
    canary's request sets' form; ``bad(where, problem)`` makes the ConfigError."""
    predict = Request(protocol.predict_method, protocol.predict_path)
    if not isinstance(raw, dict):
        raise bad(where, "must be an object")
    if protocol.v2_forms and "inputs" in raw and not REQUEST_KEYS & set(raw):
        # Today's (pre-preset) golden files: the request is the V2 inference body.
        return Request(predict.method, predict.path, (), raw)
    extra = set(raw) - REQUEST_KEYS
    if extra:
        hint = ' (a V2 infer body needs "inputs")' if protocol.v2_forms else ""
        raise bad(where, f"has unknown keys {sorted(extra)}; keys: {sorted(REQUEST_KEYS)}{hint}")
    body = raw.get("body")
    path = raw.get("path", predict.path)
    if not isinstance(path, str) or not path.startswith("/"):
        raise bad(f"{where}.path", "must be a path starting with '/'")
    method = raw.get("method", "POST" if body is not None else "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise bad(f"{where}.method", f"must be one of {sorted(METHODS)}")
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise bad(f"{where}.headers", "must be an object of strings")
    return Request(method.upper(), path, tuple(headers.items()), body)


def _expectation(raw: object, where: str, protocol: Protocol, bad: Bad) -> Expectation:
    if not isinstance(raw, dict):
        raise bad(where, "must be an object")
    extra = set(raw) - VALUE_KEYS
    if extra:
        raise bad(where, f"has unknown keys {sorted(extra)}")
    if "data" not in raw:
        raise bad(f"{where}.data", "is missing: the value the answer must hold")
    output: str | None = None
    if "path" in raw:
        path, label = raw["path"], None
        if not isinstance(path, str) or not path:
            raise bad(f"{where}.path", "must be a JMESPath expression")
    elif "name" in raw and protocol.v2_forms:
        output = raw["name"]
        if not isinstance(output, str) or not output:
            raise bad(f"{where}.name", "must be the output's name (a non-empty string)")
        if "name" in raw and not isinstance(raw["data"], list):
            raise bad(f"{where}.data", "must be a list")
        path, label = v2_output_path(output), f"output {output!r}"
    else:
        names = ' or "name" (a V2 output)' if protocol.v2_forms else ""
        raise bad(where, f'needs "path" (a JMESPath expression){names}')
    try:
        compiled = jmespath.compile(path)
    except jmespath.exceptions.JMESPathError as e:
        raise bad(f"{where}.path", f"is not a JMESPath expression ({e})") from e
    tolerances: dict[str, float | None] = {}
    for key in ("abs_tol", "rel_tol"):
        value = raw.get(key)
        if value is not None and not (_is_number(value) and value >= 0):
            raise bad(f"{where}.{key}", "must be a number >= 0")
        tolerances[key] = None if value is None else float(value)
    flips = raw.get("max_flips", 0)
    if not isinstance(flips, int) or isinstance(flips, bool) or flips < 0:
        raise bad(f"{where}.max_flips", "must be a whole number >= 0")
    return Expectation(
        label=label or path,
        path=path,
        data=raw["data"],
        max_flips=flips,
        compiled=compiled,
        output=output,
        **tolerances,
    )


def v2_output_path(output: str) -> str:
    """JMESPath of a V2 output tensor's ``data`` by the output's name."""
    literal = output.replace("\\", "\\\\").replace("'", "\\'")
    return f"outputs[?name=='{literal}'] | [0].data"


# ---------------------------------------------------------------------------------------------
# Comparison.


def check(case: Case, response: requests.Response) -> list[str]:
    """What is wrong with ``response`` as the answer to ``case`` ([] = nothing)."""
    if response.status_code != case.status:
        return [f"status {response.status_code}, expected {case.status}: {describe(response)}"]
    if not case.expect:
        return []
    try:
        answer = response.json()
    except ValueError:
        return [f"the answer is not JSON: {describe(response)}"]
    return [p for exp in case.expect for p in compare(exp, answer)]


def compare(exp: Expectation, answer: object) -> list[str]:
    """Mismatches of one expected value in a parsed JSON answer ([] if it matches).

    Numbers match within ``abs_tol``/``rel_tol`` (``math.isclose``: the larger bound); without
    either they must be equal; other values must be equal and of the same type (``true`` is
    not ``1``). Up to ``max_flips`` differing elements pass.
    """
    got_raw = exp.search(answer)
    if got_raw is None:
        shown = json.dumps(answer)[:300]
        return [f"{exp.label} missing: JMESPath {exp.path!r} selects nothing in {shown}"]
    want, got = list(flatten(exp.data)), list(flatten(got_raw))
    if len(got) != len(want):
        return [
            f"{exp.label}: expected {len(want)} values {want[:20]}, got {len(got)} values "
            f"{got[:20]}"
        ]
    wrong = [i for i, (w, g) in enumerate(zip(want, got, strict=True)) if not close(w, g, exp)]
    if len(wrong) <= exp.max_flips:
        return []
    shown = ", ".join(f"[{i}] expected {want[i]!r} got {got[i]!r}" for i in wrong[:5])
    more = f" (+{len(wrong) - 5} more)" if len(wrong) > 5 else ""
    counted = f"{len(wrong)} of {len(want)} differ, at most {exp.max_flips} may: " * (
        exp.max_flips > 0
    )
    return [f"{exp.label} ({exp.tolerance}): {counted}{shown}{more}"]


def close(want: Any, got: Any, exp: Expectation) -> bool:
    """One element: equal, or within the expectation's tolerances for numbers."""
    if _is_number(want) and _is_number(got):
        if exp.abs_tol is None and exp.rel_tol is None:
            return bool(want == got)
        return math.isclose(got, want, rel_tol=exp.rel_tol or 0.0, abs_tol=exp.abs_tol or 0.0)
    # bool is an int in Python: True must not equal 1 here.
    return type(want) is type(got) and bool(want == got)


def flatten(value: Any) -> Iterator[Any]:
    """Row-major elements of nested lists; a scalar (or an object) is one element."""
    if isinstance(value, list):
        for item in value:
            yield from flatten(item)
    else:
        yield value


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------------------
# A server checked against the golden cases.


def check_health(client: HttpClient) -> list[str]:
    """Every configured health check that did not answer 2xx ([] = healthy); raises
    EndpointUnreachable when one gets no answer at all."""
    problems: list[str] = []
    for name, path in client.health.items():
        response = client.get(path)
        if not response.ok:
            problems.append(f"health {name}: {describe(response)}")
    return problems


def verify(client: HttpClient, golden: Golden) -> list[str]:
    """Health checks, then every case, as one list of problems ([] = healthy); used after a
    rollback. The latency budget is not checked: a rolled-back release is judged on working."""
    problems: list[str] = []
    try:
        problems += check_health(client)
        if problems:
            return problems
        for case in golden.cases:
            problems += [f"case {case.name!r}: {p}" for p in check(case, client.send(case.request))]
    except EndpointUnreachable as e:
        problems.append(str(e))
    return problems
