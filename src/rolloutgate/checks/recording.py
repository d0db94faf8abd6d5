"""Record golden answers: send a golden file's requests to the live release, write its answers.

    python -m rolloutgate record --cluster=staging --out=fixtures/golden/recorded.json

A team starts from what production answers today instead of typing the answers in. The
requests come from the profile's golden file (``--golden`` for another; its cases may leave
``expect`` out). Nothing is deployed: the live Service is reached by a port-forward, or
``--endpoint-url``. Recording is refused when a health check fails or a case meant to succeed
does not: a broken release's answers must never become the expectation.

What is written, per case, in the file's own format:

- v2 cases written the pre-preset way (``expect`` by output name): every output of the answer
  by name;
- other cases: the status, and the value at each path the template expects (every top-level
  key of the answer when the template expects none);
- numbers that are not whole get a suggested tolerance (``abs_tol`` for values within [0, 1],
  typically scores; ``rel_tol`` otherwise); labels, strings and whole numbers are exact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rolloutgate.checks import cases, protocols
from rolloutgate.checks.cases import Case, Golden
from rolloutgate.checks.client import EndpointUnreachable, describe, json_of
from rolloutgate.checks.httpclient import HttpClient
from rolloutgate.errors import GateError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RecordingRefused(GateError):
    """The live release is not healthy, or a case meant to succeed failed: nothing written."""


@dataclass(frozen=True)
class Tolerances:
    """Suggested tolerances for recorded numbers that are not whole."""

    abs_tol: float = 0.05  # scores and probabilities in [0, 1]
    rel_tol: float = 0.01  # other real numbers (regression outputs, ...)


def record(
    client: HttpClient,
    golden: Golden,
    tolerances: Tolerances,
    *,
    source: str,
    tags: Collection[str] = (),
) -> dict[str, Any]:
    """The golden file as JSON: ``golden``'s requests with the answers of ``client``'s server.

    ``tags``: the image tags of the release answering. A value that is one of them
    (``"model_version": "v1"``) names the release, not its prediction: the next tag must
    change it, so it is not recorded as an expectation.

    RecordingRefused when a health check or a case meant to succeed fails.
    """
    try:
        unhealthy = cases.check_health(client)
        if unhealthy:
            raise RecordingRefused(
                "refusing to record from a release that fails its health checks: "
                + "; ".join(unhealthy)
            )
        recorded = [
            _record_case(client, case, golden, tolerances, frozenset(tags)) for case in golden.cases
        ]
    except EndpointUnreachable as e:
        raise RecordingRefused(f"refusing to record: {e}") from e
    out: dict[str, Any] = {}
    if golden.protocol is not protocols.DEFAULT:
        out["protocol"] = golden.protocol.name
    if golden.model:
        out["model"] = golden.model
    if golden.health:
        out["health"] = dict(golden.health)
    if golden.latency is not None:
        lat = golden.latency
        out["latency"] = {"requests": lat.requests, "p50_ms": lat.p50_ms, "p95_ms": lat.p95_ms}
    # Ignored by the gate; tells a reader where the answers came from.
    out["recorded"] = {
        "from": source,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "template": str(golden.path),
    }
    out["cases"] = recorded
    return out


def _record_case(
    client: HttpClient, case: Case, golden: Golden, tol: Tolerances, tags: frozenset[str]
) -> dict[str, Any]:
    response = client.send(case.request)
    if case.status // 100 == 2 and not response.ok:
        raise RecordingRefused(
            f"refusing to record: case {case.name!r} is meant to succeed (status {case.status}) "
            f"but the live release answered {describe(response)}"
        )
    request = _request_json(case, golden)
    if not response.ok:
        # A request meant to be refused: its status is the expectation.
        return {"name": case.name, "request": request, "expect": {"status": response.status_code}}
    try:
        answer = response.json() if response.content else None
    except ValueError as e:
        raise RecordingRefused(
            f"refusing to record: case {case.name!r} answered no JSON: {describe(response)}"
        ) from e
    legacy_v2 = golden.protocol.v2_forms and "inputs" in request
    body = json_of(response)
    if legacy_v2 and isinstance(body.get("outputs"), list):
        outputs = [o for o in body["outputs"] if isinstance(o, dict) and "name" in o]
        return {
            "name": case.name,
            "request": request,
            "expect": [
                {"name": o["name"], "data": _as_list(o.get("data")), **_suggest(o.get("data"), tol)}
                for o in outputs
            ],
        }
    if case.expect:
        paths = [e.path for e in case.expect]
    elif isinstance(answer, Mapping):
        paths = [_key_path(k) for k in answer]
    else:
        paths = ["@"]  # the whole answer
    values = []
    for path in paths:
        got = cases.Expectation(label=path, path=path, data=None).search(answer)
        values.append({"path": path, "data": got, **_suggest(got, tol)})
    predictions = [v for v in values if not (isinstance(v["data"], str) and v["data"] in tags)]
    values = predictions or values  # a 2xx case needs a value
    expect: dict[str, Any] = {"values": values}
    if response.status_code != 200:
        expect = {"status": response.status_code, **expect}
    return {"name": case.name, "request": request, "expect": expect}


def _request_json(case: Case, golden: Golden) -> Any:
    """The request as the template wrote it: a bare V2 body stays bare."""
    req = case.request
    protocol = golden.protocol
    if (
        protocol.v2_forms
        and isinstance(req.body, Mapping)
        and "inputs" in req.body
        and (req.method, req.path) == (protocol.predict_method, protocol.predict_path)
        and not req.headers
    ):
        return req.body
    out = req.as_json()
    if (req.method, req.path) == (protocol.predict_method, protocol.predict_path):
        out.pop("path")
        if req.body is not None:
            out.pop("method")
    return out


def _key_path(key: str) -> str:
    """A JMESPath selecting the top-level ``key``; quoted when it is not an identifier."""
    return key if _IDENTIFIER.fullmatch(key) else json.dumps(key)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _suggest(value: Any, tol: Tolerances) -> dict[str, float]:
    """A tolerance for values holding numbers that are not whole; {} for exact ones."""
    reals = [v for v in cases.flatten(value) if isinstance(v, float) and not v.is_integer()]
    if not reals:
        return {}
    if all(0.0 <= v <= 1.0 for v in reals):
        return {"abs_tol": tol.abs_tol}
    return {"rel_tol": tol.rel_tol}


def write(data: Mapping[str, Any], out: Path) -> None:
    """Write the recorded file (2-space JSON), creating its directory."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
