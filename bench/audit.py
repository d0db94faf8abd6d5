"""API requests per tool, from the API server's audit log (Metadata level, one line per stage).

Requests are attributed by namespace (each case has its own) and user agent. Requests without a
namespace (/version, discovery, namespace create/delete) cannot be told apart from other
engineers' runs of the same tool, so the audit counts cover namespaced requests only; the
client-side counts cover everything.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.cluster import USER_AGENT

AUDIT_LOG = Path(os.environ.get("ROLLOUTGATE_AUDIT_LOG", "/var/lib/rolloutgate/logs/audit.log"))


@dataclass(frozen=True)
class Mark:
    """Where the log was when the benchmark started: its inode and size."""

    inode: int
    offset: int
    at: float


def mark() -> Mark | None:
    try:
        st = AUDIT_LOG.stat()
    except OSError:
        return None
    return Mark(st.st_ino, st.st_size, st.st_mtime)


def tool_of(user_agent: str, resource: str) -> str:
    """Which tool sent a request. kubectl's agent is shared by `kubectl rollout status` (which
    only reads Deployments) and the gate's in-pod checks (testinfra runs `kubectl exec`)."""
    if user_agent.startswith(USER_AGENT):
        return "bench"
    if user_agent.startswith("kubectl/"):
        return "kubectl" if resource == "deployments" else "gate"
    if user_agent.startswith("Helm/"):
        return "helm"
    if user_agent.startswith("OpenAPI-Generator/"):  # the Python client's default: the gate
        return "gate"
    return "cluster"  # controllers, scheduler, kubelet


def _lines(start: Mark) -> Any:
    """Lines written since `start`, across one rotation (the backup keeps the older part)."""
    current = AUDIT_LOG.stat()
    rotated = sorted(
        p
        for p in AUDIT_LOG.parent.glob(f"{AUDIT_LOG.stem}-*{AUDIT_LOG.suffix}")
        if p.stat().st_mtime >= start.at
    )
    for path in rotated:
        with path.open("rb") as f:
            if path.stat().st_ino == start.inode:
                f.seek(start.offset)
            yield from f
    with AUDIT_LOG.open("rb") as f:
        if current.st_ino == start.inode:
            f.seek(start.offset)
        yield from f


def since_start(at: float) -> Mark:
    """A mark that reads the whole current log (and backups written after `at`): for counting
    again after a run; slower, and the same counts, since each case's namespace is unique."""
    return Mark(AUDIT_LOG.stat().st_ino, 0, at)


def _received(entry: dict[str, Any]) -> float:
    stamp = str(entry.get("requestReceivedTimestamp", "")).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return 0.0


def count(
    start: Mark, namespaces: set[str], splits: dict[str, float] | None = None
) -> dict[str, dict[str, Any]]:
    """Per namespace, per tool: requests (distinct audit IDs) and a `verb resource` breakdown.

    `splits`: namespace → a time after which requests count under `<tool>@after` (the good
    case runs a second gate, with `crash`, in the same namespace).
    """
    splits = splits or {}
    seen: dict[tuple[str, str], set[str]] = defaultdict(set)
    kinds: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for raw in _lines(start):
        if b'"namespace"' not in raw:  # cheap filter before parsing: most lines are other work
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            continue  # a line cut by rotation
        ref = entry.get("objectRef") or {}
        ns = ref.get("namespace")
        if ns not in namespaces:
            continue
        resource = ref.get("resource", "")
        if ref.get("subresource"):
            resource += "/" + ref["subresource"]
        tool = tool_of(entry.get("userAgent", ""), ref.get("resource", ""))
        split = splits.get(ns)
        if split is not None and _received(entry) >= split:
            tool += "@after"
        key = (ns, tool)
        if entry["auditID"] not in seen[key]:
            seen[key].add(entry["auditID"])
            kinds[key][f"{entry.get('verb')} {resource}"] += 1
    result: dict[str, dict[str, Any]] = defaultdict(dict)
    for (ns, tool), ids in seen.items():
        result[ns][tool] = {"requests": len(ids), "by_verb": dict(kinds[(ns, tool)])}
    return dict(result)
