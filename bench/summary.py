"""From the runs' raw results to figures (median, min, max over runs) and the printed table."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Callable
from typing import Any

Sample = tuple[float, bool]  # (value, capped: the value is a lower bound)


def stat(samples: list[Sample]) -> dict[str, Any]:
    """Median, min and max; a capped sample counts as +inf with its lower bound kept."""
    if not samples:
        return {"n": 0}
    ordered = sorted(math.inf if capped else value for value, capped in samples)
    bound = min((v for v, capped in samples if capped), default=None)
    median = statistics.median_low(ordered)
    return {
        "n": len(samples),
        "median": None if math.isinf(median) else round(median, 3),
        "min": None if math.isinf(ordered[0]) else round(ordered[0], 3),
        "max": None if math.isinf(ordered[-1]) else round(ordered[-1], 3),
        "capped": sum(1 for _, c in samples if c),
        "lower_bound": None if bound is None else round(bound, 1),
    }


def fmt(s: dict[str, Any], unit: str = "s") -> str:
    """`median [min..max] n=runs, max M`: the worst run is what a user waits for at times, so
    it is repeated beside the median."""
    if not s.get("n"):
        return "n/a"

    def one(key: str) -> str:
        v = s.get(key)
        if v is None:
            return f">{s['lower_bound']:.0f}"
        return f"{v:.2f}" if unit == "s" else f"{v:.0f}"

    return f"{one('median')} [{one('min')}..{one('max')}] n={s['n']}, max {one('max')}"


class Figures:
    """Named series of samples, filled from the results of every run."""

    def __init__(self) -> None:
        self.series: dict[str, list[Sample]] = defaultdict(list)

    def add(self, key: str, value: float | None, capped: bool = False) -> None:
        if value is not None:
            self.series[key].append((float(value), capped))

    def stats(self) -> dict[str, dict[str, Any]]:
        return {k: stat(v) for k, v in sorted(self.series.items())}


def _tool(fig: Figures, prefix: str, tool: dict[str, Any] | None) -> None:
    if not tool:
        return
    fig.add(f"{prefix}", tool.get("latency_s"), bool(tool.get("capped")))


def audit_splits(results: list[dict[str, Any]]) -> dict[str, float]:
    """Where the good case's second gate run (crash) starts, per namespace."""
    return {
        r["namespace"]: r["crash_after"]["gate"]["started"]
        for r in results
        if r.get("case") == "good" and r.get("crash_after", {}).get("gate")
    }


def collect(results: list[dict[str, Any]], audit: dict[str, dict[str, Any]]) -> Figures:
    fig = Figures()
    for r in results:
        if "error" in r:
            continue
        if r["case"] == "good":
            _good(fig, r, audit)
        else:
            _failure(fig, r, audit)
    return fig


def _good(fig: Figures, r: dict[str, Any], audit: dict[str, dict[str, Any]]) -> None:
    n, gate = r["replicas"], r["gate"]
    p = f"verdict/good/{n} replicas"
    _tool(fig, f"{p}/gate (rollout verdict)", gate)
    fig.add(f"{p}/gate (process exit, after its checks)", gate.get("exit_latency_s"))
    fig.add(f"{p}/gate, from the Ready condition's time (1 s)", gate.get("latency_api_s"))
    _tool(fig, f"{p}/kubectl rollout status", r.get("kubectl"))
    fig.add(
        f"{p}/kubectl, from the Ready condition's time (1 s)", r["kubectl"].get("latency_api_s")
    )
    _tool(fig, f"{p}/helm upgrade --wait", r.get("helm"))
    counts = audit.get(r["namespace"], {})
    q = f"requests/good/{n} replicas"
    fig.add(f"{q}/gate, client (all)", gate.get("client_requests"))
    fig.add(f"{q}/gate, client (rollout phase)", gate.get("client_requests_rollout"))
    fig.add(f"{q}/gate, audit (namespaced)", counts.get("gate", {}).get("requests"))
    fig.add(f"{q}/kubectl rollout status, client", r["kubectl"].get("client_requests"))
    fig.add(f"{q}/kubectl rollout status, audit", counts.get("kubectl", {}).get("requests"))
    fig.add(f"{q}/helm upgrade --wait, audit", counts.get("helm", {}).get("requests"))
    fig.add(f"memory/gate VmHWM MiB/{n} replicas", _mib(gate.get("vm_hwm_kib")))
    crash = r.get("crash_after")
    if crash:
        _tool(fig, f"detect/crash after v2, gate only/{n} replicas", crash["gate"])
        fig.add(
            f"detect/crash after v2, gate only/{n} replicas, from the API's exit time (1 s)",
            crash["gate"].get("latency_api_s"),
            bool(crash["gate"].get("capped")),
        )
        fig.add(f"rollback/crash after v2/{n} replicas", crash["gate"].get("rollback_s"))
        _verdict_first(fig, f"crash after v2, {n} replicas", crash["gate"])
        q = f"requests/crash after v2, gate only/{n} replicas"
        fig.add(f"{q}/gate, client (all)", crash["gate"].get("client_requests"))
        fig.add(f"{q}/gate, audit (namespaced)", counts.get("gate@after", {}).get("requests"))


def _failure(fig: Figures, r: dict[str, Any], audit: dict[str, dict[str, Any]]) -> None:
    p = f"detect/{r['tag']}/deadline {r['deadline_s']} s"
    _tool(fig, f"{p}/gate", r.get("gate"))
    # From the API's own time for the failure (a container's finishedAt, an event's
    # firstTimestamp; 1 s, truncated): what "detected within N s of the API having it" means.
    fig.add(
        f"{p}/gate, from the API's failure time (1 s)",
        (r.get("gate") or {}).get("latency_api_s"),
        bool((r.get("gate") or {}).get("capped")),
    )
    _tool(fig, f"{p}/kubectl rollout status", r.get("kubectl"))
    _tool(fig, f"{p}/helm upgrade --wait", r.get("helm"))
    gate = r.get("gate") or {}
    fig.add(f"rollback/{r['tag']}, deadline {r['deadline_s']} s", gate.get("rollback_s"))
    _verdict_first(fig, f"{r['tag']}, deadline {r['deadline_s']} s", gate)
    counts = audit.get(r["namespaces"]["gate"], {})
    base = audit.get(r["namespaces"]["base"], {})
    q = f"requests/{r['tag']} {r['deadline_s']} s"
    fig.add(f"{q}/gate, client (all)", gate.get("client_requests"))
    fig.add(f"{q}/gate, audit (namespaced)", counts.get("gate", {}).get("requests"))
    fig.add(f"{q}/kubectl rollout status, audit", base.get("kubectl", {}).get("requests"))
    fig.add(f"{q}/helm upgrade --wait, audit", base.get("helm", {}).get("requests"))


def _verdict_first(fig: Figures, case: str, gate: dict[str, Any]) -> None:
    """The rollback's start and end against the verdict, and the verification's own time."""
    fig.add(f"rollback/verdict → restore submitted/{case}", gate.get("verdict_to_restore_s"))
    fig.add(f"rollback/verdict → restored and verified/{case}", gate.get("verdict_to_verified_s"))
    fig.add(f"rollback/restored pods Ready → verified/{case}", gate.get("restored_to_verified_s"))


def _mib(kib: int | None) -> float | None:
    return round(kib / 1024, 1) if kib else None


def _unit(key: str) -> str:
    return "s" if key.split("/")[0] in ("verdict", "detect", "rollback", "startup") else "n"


def table(
    stats: dict[str, dict[str, Any]], unit: Callable[[str], str] = _unit, width: int = 58
) -> str:
    """One line per figure, grouped by section: `median [min..max] n=runs`; `>N`: capped.
    `unit(key)` is "s" for a figure in seconds, "n" for a count."""
    lines: list[str] = []
    section = None
    for key, s in stats.items():
        head, _, name = key.rpartition("/")
        if head != section:
            section = head
            lines.append(f"\n{head}")
        lines.append(f"  {name:<{width}} {fmt(s, unit(key))}")
    return "\n".join(lines)
