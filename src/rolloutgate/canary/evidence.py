"""What a canary run saw, as JSON and back, so that its verdict can be recomputed by anyone.

The report's ``evidence`` holds every input (a golden case with its expectations, a request-set
line with its labels) and every sample (plan index, time, item, arm, pod, outcome, latency,
status, answer), plus what happened to the arms. ``observations`` rebuilds ``Observations``
from it; ``rejudge`` judges them again with the report's own thresholds:

    python -m rolloutgate canary-verdict reports/canary.json

Pure: nothing here talks to a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any

import jmespath

from rolloutgate.canary.judge import Judgement, judge
from rolloutgate.canary.observations import (
    ARMS,
    Item,
    Observations,
    PodTiming,
    Sample,
    ServerRead,
)
from rolloutgate.canary.thresholds import Thresholds
from rolloutgate.checks.cases import Case, Expectation, Request
from rolloutgate.errors import ConfigError

# Bumped when the evidence's shape changes in a way an older reader would misread.
SCHEMA = 1
_EXPECTATION_KEYS = ("label", "path", "data", "abs_tol", "rel_tol", "max_flips", "output")


def to_json(obs: Observations) -> dict[str, Any]:
    """The evidence of a run: each sample's ``t`` is its epoch time (``at`` after the traffic
    started), when the traffic ran."""
    plain = {
        f.name: getattr(obs, f.name)
        for f in fields(Observations)
        if f.name not in ("items", "samples", "server", "server_reads")
    }
    started = obs.traffic_started
    base = started or 0.0
    return {
        "schema": SCHEMA,
        **plain,
        "server": {arm: [asdict(p) for p in pods] for arm, pods in obs.server.items()},
        "server_reads": [asdict(r) for r in obs.server_reads],
        "items": [_item(i) for i in obs.items.values()],
        "samples": [
            {**asdict(s), "t": round(base + s.at, 6) if started else None} for s in obs.samples
        ],
    }


def _item(item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {"id": item.id, "request": item.request.as_json()}
    if item.labels is not None:
        out["labels"] = list(item.labels)
    if item.case is not None:
        out["case"] = {
            "name": item.case.name,
            "status": item.case.status,
            "expect": [{k: getattr(e, k) for k in _EXPECTATION_KEYS} for e in item.case.expect],
        }
    return out


def observations(evidence: Mapping[str, Any]) -> Observations:
    """``Observations`` from a report's ``evidence``; ConfigError when it is not one."""
    if not isinstance(evidence, Mapping) or evidence.get("schema") != SCHEMA:
        raise ConfigError(
            f"not the evidence of a canary report of schema {SCHEMA} (a report written by a "
            "canary run with this version's --canary-report)"
        )
    try:
        obs = Observations()
        for f in fields(Observations):
            if f.name not in ("items", "samples", "server", "server_reads") and f.name in evidence:
                setattr(obs, f.name, evidence[f.name])
        server = evidence.get("server") or {}
        obs.server = {arm: [PodTiming(**p) for p in server.get(arm, [])] for arm in ARMS}
        # A report from before the windowed reads has none: judged on its per-pod totals.
        obs.server_reads = [ServerRead(**r) for r in evidence.get("server_reads") or []]
        obs.items = {raw["id"]: _read_item(raw) for raw in evidence["items"]}
        names = {f.name for f in fields(Sample)}
        obs.samples = [
            Sample(**{k: v for k, v in s.items() if k in names}) for s in evidence["samples"]
        ]
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"the report's evidence is incomplete: {type(e).__name__}: {e}") from e
    return obs


def _read_item(raw: Mapping[str, Any]) -> Item:
    r = raw["request"]
    headers = tuple((r.get("headers") or {}).items())
    request = Request(r["method"], r["path"], headers, r.get("body"))
    case = None
    if "case" in raw:
        c = raw["case"]
        expect = tuple(Expectation(**e, compiled=jmespath.compile(e["path"])) for e in c["expect"])
        case = Case(c["name"], request, c["status"], expect)
    labels = tuple(raw["labels"]) if "labels" in raw else None
    return Item(raw["id"], request, case=case, labels=labels)


def thresholds(report: Mapping[str, Any]) -> Thresholds:
    """The thresholds a report was judged with."""
    return Thresholds(**report["thresholds"])


def rejudge(report: Mapping[str, Any]) -> Judgement:
    """The verdict of a report's evidence, judged again with its own thresholds."""
    return judge(observations(report.get("evidence") or {}), thresholds(report))
