"""What the gate must never print: Secret values and credentials in URLs. Pure functions.

A gate's output travels far (terminal logs of CI jobs, ``gate.json`` uploaded as an artifact,
JUnit XML, the GitHub step summary), so whatever may hold a credential is masked where it is
made, before any report sees it:

- Secret ``data``/``stringData`` in diffs: kubectl diff's rule (its ``Masker``): keys stay,
  values become ``***``, or ``*** (before)`` / ``*** (after)`` where a value changed, so a diff
  still shows *that* a value changed but never *what* it is. The last-applied-configuration
  annotation of a Secret (``kubectl apply`` writes the whole manifest, values included, into
  it) is masked by the same rule.
- URLs: the userinfo (``user:password@``) is removed from every URL shown.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from rolloutgate.objects import Obj

MASK = "***"
MASK_BEFORE = "*** (before)"
MASK_AFTER = "*** (after)"
# kubectl apply stores the applied manifest here, Secret values and all.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Fields of a Secret whose values are secret; both are maps of key -> value.
SECRET_FIELDS = ("data", "stringData")

# scheme://userinfo@ inside any text (error messages quote URLs).
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/?#@\s]*)@")


def url(text: str) -> str:
    """`text` without the userinfo of its URL: ``https://u:p@host/x`` -> ``https://host/x``."""
    parts = urlsplit(text)
    if "@" not in parts.netloc:
        return text
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=host))


def urls_in(text: str) -> str:
    """Every ``scheme://userinfo@`` in free text reduced to ``scheme://``."""
    return _USERINFO.sub(lambda m: m.group("scheme"), text)


def userinfo(text: str) -> tuple[str, str] | None:
    """(user, password) of a URL's userinfo, percent-decoded; None without one."""
    parts = urlsplit(text)
    if "@" not in parts.netloc:
        return None
    user, _, password = parts.netloc.rsplit("@", 1)[0].partition(":")
    return unquote(user), unquote(password)


def is_secret(obj: Obj | None) -> bool:
    """A core/v1 Secret (the only kind kubectl diff masks)."""
    return obj is not None and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def _mask_maps(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """kubectl diff's masking of one pair of maps (keys kept, values masked)."""
    out_before: dict[str, str] = {}
    out_after: dict[str, str] = {}
    for key, value in before.items():
        if key in after and after[key] != value:
            out_before[key], out_after[key] = MASK_BEFORE, MASK_AFTER
        else:
            out_before[key] = MASK
            if key in after:
                out_after[key] = MASK
    for key in after:
        out_after.setdefault(key, MASK)
    return out_before, out_after


def secret_pair(before: Obj | None, after: Obj | None) -> tuple[Obj | None, Obj | None]:
    """Copies of two versions of an object to diff, with Secret values masked (kubectl diff's
    rule). Objects that are not Secrets come back unchanged (not copied)."""
    if not (is_secret(before) or is_secret(after)):
        return before, after
    b = copy.deepcopy(before) if before is not None else None
    a = copy.deepcopy(after) if after is not None else None
    for name in SECRET_FIELDS:
        b_map = (b or {}).get(name)
        a_map = (a or {}).get(name)
        masked_b, masked_a = _mask_maps(
            b_map if isinstance(b_map, dict) else {}, a_map if isinstance(a_map, dict) else {}
        )
        if b is not None and name in b:
            b[name] = masked_b if isinstance(b_map, dict) else MASK
        if a is not None and name in a:
            a[name] = masked_a if isinstance(a_map, dict) else MASK
    b_ann = ((b or {}).get("metadata") or {}).get("annotations") or {}
    a_ann = ((a or {}).get("metadata") or {}).get("annotations") or {}
    masked_b, masked_a = _mask_maps(
        {LAST_APPLIED: b_ann[LAST_APPLIED]} if LAST_APPLIED in b_ann else {},
        {LAST_APPLIED: a_ann[LAST_APPLIED]} if LAST_APPLIED in a_ann else {},
    )
    b_ann.update(masked_b)
    a_ann.update(masked_a)
    return b, a
