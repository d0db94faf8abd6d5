"""Kubernetes objects as plain dicts: the one type alias, path access, and the names the gate
writes onto objects. Pure, the bottom layer: every other module imports its names from here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

# A Kubernetes object as the API returns it or YAML parses it.
Obj = dict[str, Any]

# The field manager of every write the gate makes (server-side apply, PUT, create, delete).
FIELD_MANAGER = "rolloutgate"
# The annotation `kubectl rollout history` shows; the gate writes it on what it applies.
CHANGE_CAUSE = "kubernetes.io/change-cause"
# The label on what the gate creates of its own (namespaces, leases, records).
MANAGED_BY = {"app.kubernetes.io/managed-by": "rolloutgate"}
# Docker's tag grammar (distribution/reference): at most 128 characters.
IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def at(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or None where a level is missing or not a mapping."""
    value: Any = obj
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def as_int(value: Any) -> int:
    """An API integer field, 0 when absent (the API omits zero counts)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def name_of(obj: Obj) -> str:
    return str(at(obj, "metadata", "name") or "?")


def ref(obj: Obj) -> str:
    """``Kind/name`` for messages."""
    return f"{obj.get('kind', '?')}/{name_of(obj)}"


def selector_string(selector: Obj) -> str:
    """A LabelSelector object as the query-string form the API takes."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def is_ready(pod: Obj) -> bool:
    """The pod's Ready condition is True."""
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in at(pod, "status", "conditions") or []
    )


def is_deleting(obj: Obj) -> bool:
    return bool(at(obj, "metadata", "deletionTimestamp"))


def owned_by(obj: Obj, owner: Obj) -> bool:
    """Whether ``owner`` is ``obj``'s controller."""
    uid = at(owner, "metadata", "uid")
    return any(
        o.get("uid") == uid and o.get("controller")
        for o in at(obj, "metadata", "ownerReferences") or []
    )


def parse_time(value: Any) -> datetime | None:
    """An API Time or MicroTime string as an aware instant; None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def event_time(event: Obj) -> str:
    """When an event last happened, as the API gave it."""
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or at(event, "metadata", "creationTimestamp")
        or ""
    )


def event_instant(event: Obj) -> datetime:
    """event_time as an instant: events carry Time ("...:46Z") or MicroTime ("...:46.712040Z"),
    which do not sort correctly as text."""
    return parse_time(event_time(event)) or datetime.min.replace(tzinfo=UTC)
