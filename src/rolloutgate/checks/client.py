"""What the gate checks over HTTP: V2 health, golden predictions, latency.

The golden file (format in docs/example-model.md, reference in docs/gate.md)::

    {"model": "iris",
     "latency": {"requests": 20, "p50_ms": 250, "p95_ms": 500},
     "cases": [{"name": "setosa",
                "request": {<a V2 inference request body, sent verbatim>},
                "expect": [{"name": "predict", "data": [0], "abs_tol": 0.0, "rel_tol": 0.0}]}]}

``latency`` is optional; ``abs_tol``/``rel_tol`` are optional and without them values must be
equal. Nothing here knows Kubernetes: the endpoint is a base URL.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeGuard

import requests

from rolloutgate.config import HealthPaths
from rolloutgate.errors import ConfigError, GateError

GOLDEN_FORMAT = (
    '{"model": NAME, "latency": {"requests": N, "p50_ms": MS, "p95_ms": MS} (optional), '
    '"cases": [{"name": NAME, "request": {V2 infer body}, "expect": [{"name": OUTPUT, '
    '"data": [...], "abs_tol": X (optional), "rel_tol": X (optional)}]}]} '
    "(see docs/example-model.md)"
)


class EndpointUnreachable(GateError):
    """An HTTP request to the model service got no answer (connection refused, timeout)."""


@dataclass(frozen=True)
class Expected:
    """One expected output tensor of a golden case."""

    name: str
    data: tuple[Any, ...]
    abs_tol: float | None = None
    rel_tol: float | None = None

    @property
    def tolerance(self) -> str:
        if self.abs_tol is None and self.rel_tol is None:
            return "exact"
        return f"abs_tol={self.abs_tol or 0:g}, rel_tol={self.rel_tol or 0:g}"


@dataclass(frozen=True)
class Case:
    """A golden case: a request sent verbatim and the outputs it must produce."""

    name: str
    request: Mapping[str, Any]
    expect: tuple[Expected, ...]


@dataclass(frozen=True)
class LatencyBudget:
    """p50 and p95 budgets (milliseconds) over ``requests`` sequential requests."""

    requests: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class Golden:
    path: Path
    model: str
    cases: tuple[Case, ...]
    latency: LatencyBudget | None = None


# ---------------------------------------------------------------------------------------------
# Golden file.


def load_golden(path: Path) -> Golden:
    """Parse and check a golden file. ConfigError names the file, the field and the format."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"golden file {path} cannot be read: {e.strerror or e}") from e
    except json.JSONDecodeError as e:
        raise ConfigError(
            f"golden file {path} is not valid JSON (line {e.lineno}, column {e.colno}: "
            f"{e.msg}); expected {GOLDEN_FORMAT}"
        ) from e

    def bad(field: str, problem: str) -> ConfigError:
        return ConfigError(f"golden file {path}: {field} {problem}; expected {GOLDEN_FORMAT}")

    if not isinstance(raw, dict):
        raise bad("the top level", "must be an object")
    model = raw.get("model")
    if not isinstance(model, str) or not model:
        raise bad('"model"', "must be the model's name (a non-empty string)")
    cases_raw = raw.get("cases")
    if not isinstance(cases_raw, list) or not cases_raw:
        raise bad('"cases"', "must be a non-empty list")

    cases: list[Case] = []
    for i, c in enumerate(cases_raw):
        where = f"cases[{i}]"
        if not isinstance(c, dict):
            raise bad(where, "must be an object")
        case_name = c.get("name")
        if not isinstance(case_name, str) or not case_name:
            raise bad(f"{where}.name", "must be a non-empty string")
        where = f"case {case_name!r}"
        if any(existing.name == case_name for existing in cases):
            raise bad(f"{where}.name", "is used twice; case names must be unique")
        request = c.get("request")
        if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
            raise bad(f"{where}.request", 'must be a V2 inference request with "inputs": [...]')
        expect_raw = c.get("expect")
        if not isinstance(expect_raw, list) or not expect_raw:
            raise bad(f"{where}.expect", "must be a non-empty list of expected outputs")
        expect = [_expected(e, f"{where}.expect[{j}]", bad) for j, e in enumerate(expect_raw)]
        cases.append(Case(name=case_name, request=request, expect=tuple(expect)))

    latency = parse_latency(raw.get("latency"), bad)
    return Golden(path=path, model=model, cases=tuple(cases), latency=latency)


def parse_latency(lat: object, bad: Callable[[str, str], ConfigError]) -> LatencyBudget | None:
    """The golden file's optional ``latency`` object (None when absent)."""
    if lat is None:
        return None
    if not isinstance(lat, dict):
        raise bad('"latency"', "must be an object")
    n = lat.get("requests")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise bad("latency.requests", "must be a whole number >= 1")
    budgets: list[float] = []
    for key in ("p50_ms", "p95_ms"):
        value = lat.get(key)
        if not (_is_number(value) and value > 0):
            raise bad(f"latency.{key}", "must be a number of milliseconds > 0")
        budgets.append(float(value))
    return LatencyBudget(requests=n, p50_ms=budgets[0], p95_ms=budgets[1])


def _expected(raw: object, where: str, bad: Callable[[str, str], ConfigError]) -> Expected:
    if not isinstance(raw, dict):
        raise bad(where, "must be an object")
    out_name = raw.get("name")
    if not isinstance(out_name, str) or not out_name:
        raise bad(f"{where}.name", "must be the output's name (a non-empty string)")
    data = raw.get("data")
    if not isinstance(data, list):
        raise bad(f"{where}.data", "must be a list")
    tolerances: dict[str, float | None] = {}
    for key in ("abs_tol", "rel_tol"):
        value = raw.get(key)
        if value is None:
            tolerances[key] = None
        elif _is_number(value) and value >= 0:
            tolerances[key] = float(value)
        else:
            raise bad(f"{where}.{key}", "must be a number >= 0")
    return Expected(name=out_name, data=tuple(_flatten(data)), **tolerances)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _flatten(data: Sequence[Any]) -> Iterator[Any]:
    """Row-major elements of possibly nested lists (V2 allows both layouts)."""
    for item in data:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


# ---------------------------------------------------------------------------------------------
# Comparison.


def compare(expect: Sequence[Expected], response: Mapping[str, Any]) -> list[str]:
    """Mismatches between the expected outputs and a V2 inference response ([] if it matches).

    Numbers match within ``abs_tol``/``rel_tol`` (``math.isclose`` semantics: the larger of the
    two bounds); without either they must be equal. Other values (strings, booleans) must be
    equal. Outputs the case does not name are ignored.
    """
    outputs = response.get("outputs")
    if not isinstance(outputs, list):
        return [f'response has no "outputs" list: {json.dumps(response)[:300]}']
    by_name = {o.get("name"): o for o in outputs if isinstance(o, dict)}
    problems: list[str] = []
    for exp in expect:
        out = by_name.get(exp.name)
        if out is None:
            problems.append(
                f"output {exp.name!r} missing; outputs: {sorted(map(str, by_name)) or 'none'}"
            )
            continue
        got = list(_flatten(out.get("data") or []))
        if len(got) != len(exp.data):
            problems.append(
                f"output {exp.name!r}: expected {len(exp.data)} values {list(exp.data)}, "
                f"got {len(got)} values {got}"
            )
            continue
        wrong = [
            i for i, (e, g) in enumerate(zip(exp.data, got, strict=True)) if not _close(e, g, exp)
        ]
        if wrong:
            shown = ", ".join(f"[{i}] expected {exp.data[i]!r} got {got[i]!r}" for i in wrong[:5])
            more = f" (+{len(wrong) - 5} more)" if len(wrong) > 5 else ""
            problems.append(f"output {exp.name!r} ({exp.tolerance}): {shown}{more}")
    return problems


def _close(expected: Any, got: Any, exp: Expected) -> bool:
    if _is_number(expected) and _is_number(got):
        if exp.abs_tol is None and exp.rel_tol is None:
            return bool(expected == got)
        return math.isclose(got, expected, rel_tol=exp.rel_tol or 0.0, abs_tol=exp.abs_tol or 0.0)
    # bool is an int in Python: True must not equal 1 here.
    return type(expected) is type(got) and bool(expected == got)


# ---------------------------------------------------------------------------------------------
# Latency.


def percentile(samples: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least p% of samples <= it."""
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} outside (0, 100]")
    ordered = sorted(samples)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Latency:
    """Wall-clock latencies of ``len(samples_ms)`` sequential requests; failed requests apart."""

    samples_ms: tuple[float, ...]
    errors: tuple[str, ...]

    @property
    def p50_ms(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p95_ms(self) -> float:
        return percentile(self.samples_ms, 95)

    def summary(self) -> str:
        if not self.samples_ms:
            return f"no successful request of {len(self.errors)}"
        return (
            f"p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms over {len(self.samples_ms)} "
            f"requests (min {min(self.samples_ms):.0f}, max {max(self.samples_ms):.0f})"
        )


def measure_latency(send: Callable[[], requests.Response], n: int) -> Latency:
    """Send ``n`` requests one after another; time each that answered 2xx."""
    samples: list[float] = []
    errors: list[str] = []
    for _ in range(n):
        start = time.perf_counter()
        try:
            response = send()
        except EndpointUnreachable as e:
            errors.append(str(e))
            continue
        elapsed_ms = (time.perf_counter() - start) * 1000
        if response.ok:
            samples.append(elapsed_ms)
        else:
            errors.append(describe(response))
    return Latency(samples_ms=tuple(samples), errors=tuple(errors))


# ---------------------------------------------------------------------------------------------
# V2 client.


def describe(response: requests.Response) -> str:
    """``GET URL -> 503: body`` for assertion messages."""
    body = response.text.strip().replace("\n", " ")
    if len(body) > 300:
        body = body[:300] + "..."
    return (
        f"{response.request.method} {response.url} -> {response.status_code}: {body or '(empty)'}"
    )


def json_of(response: requests.Response) -> dict[str, Any]:
    """The response's JSON object, or ``{"error": <why not>}`` for a body that is not one."""
    try:
        body = response.json()
    except ValueError:
        return {"error": f"not JSON: {describe(response)}"}
    return body if isinstance(body, dict) else {"error": f"not an object: {describe(response)}"}


class V2Client:
    """A small Open Inference Protocol (V2) REST client; every request has a timeout.

    Health paths come from ``HealthPaths`` (configurable for servers that do not speak V2);
    ``{model}`` in them is replaced by the model's name.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        timeout: float,
        health: HealthPaths | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.health = health or HealthPaths()
        self.session = session or requests.Session()

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> requests.Response:
        url = self.base_url + path.format(model=self.model)
        try:
            return self.session.request(method, url, json=body, timeout=self.timeout)
        except requests.RequestException as e:
            # from None: pytest would print the chained transport error's frames with their
            # arguments, the request's headers (credentials) among them.
            raise EndpointUnreachable(
                f"{method} {url} got no answer within {self.timeout:g} s: {e}"
            ) from None

    def live(self) -> requests.Response:
        return self.request("GET", self.health.live)

    def ready(self) -> requests.Response:
        return self.request("GET", self.health.ready)

    def model_ready(self) -> requests.Response:
        return self.request("GET", self.health.model_ready)

    def server_metadata(self) -> requests.Response:
        return self.request("GET", "/v2")

    def model_metadata(self) -> requests.Response:
        return self.request("GET", "/v2/models/{model}")

    def infer(self, body: Mapping[str, Any]) -> requests.Response:
        return self.request("POST", "/v2/models/{model}/infer", body)


class Answering(Protocol):
    """A client with a base URL and a cheap request that shows the server answers."""

    base_url: str

    def live(self) -> requests.Response: ...


def wait_answering(client: Answering, *, deadline: float) -> requests.Response:
    """Poll the live path until the server answers at all (any status), before ``deadline``.

    A fresh port-forward or a just-updated ingress may refuse the first connections; the
    status itself is the health test's business, not this wait's.
    """
    last = "no attempt"
    while True:
        try:
            return client.live()
        except EndpointUnreachable as e:
            last = str(e)
        if time.monotonic() >= deadline:
            raise EndpointUnreachable(
                f"{client.base_url} did not answer before the deadline: {last}"
            )
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))


def verify(client: V2Client, golden: Golden) -> list[str]:
    """Health and golden checks as one list of problems ([] = healthy); used after a rollback.

    The same checks the suite's tests make, minus the latency budget (a rolled-back release is
    judged on working, not on speed).
    """
    problems: list[str] = []
    try:
        for check in (client.live, client.ready, client.model_ready):
            response = check()
            if not response.ok:
                problems.append(f"health: {describe(response)}")
        if problems:
            return problems
        for case in golden.cases:
            response = client.infer(case.request)
            if not response.ok:
                problems.append(f"case {case.name!r}: {describe(response)}")
                continue
            problems += [
                f"case {case.name!r}: {p}" for p in compare(case.expect, json_of(response))
            ]
    except EndpointUnreachable as e:
        problems.append(str(e))
    return problems
