"""``--dry-run`` into a namespace that does not exist yet.

A server-side dry-run of a namespaced object into a missing namespace fails with NotFound
(the NamespaceLifecycle admission plugin), whatever the object: asked naively, every manifest
"fails validation". What the server can still tell:

- the namespace itself: a dry-run of its creation (the manifests' Namespace if they hold one,
  else the one the gate would create) validates its name, labels and the admission policies for
  namespaces;
- cluster-scoped objects: dry-run as usual (they live in no namespace);
- namespaced objects: a dry-run in a namespace that exists in every cluster (``PROBE_NAMESPACE``)
  under a temporary name of the same length, so no live object there is touched or merged.
  That checks the schema, defaulting and unknown fields. It cannot check what depends on the
  target namespace (its ResourceQuota, LimitRange, Pod Security labels, objects the manifests
  refer to): the report says "validated against the schema only".

The diff shows every object as new (there is nothing live to compare with).
"""

from __future__ import annotations

import copy
import secrets
from dataclasses import dataclass, field

import yaml
from kubernetes.client import ApiClient

from rolloutgate import kube, redact
from rolloutgate.errors import ApiError, ConfigError, Forbidden
from rolloutgate.objects import MANAGED_BY, Obj, name_of, ref
from rolloutgate.release import apply

# Exists in every cluster and cannot be deleted.
PROBE_NAMESPACE = "default"
# Server-filled metadata that only makes a diff noisy.
_NOISE = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")


@dataclass
class DryRun:
    """What a dry-run into a missing namespace found."""

    notes: list[str] = field(default_factory=list)
    diff: str = ""
    schema_only: list[str] = field(default_factory=list)  # refs checked in PROBE_NAMESPACE


def temporary_name(name: str) -> str:
    """A name no live object has, as valid or invalid as `name`. Random but for that.

    The original's start is kept and a random suffix added (``-`` and 6 hex digits end it with
    a letter or digit); near the 63-character limit of a label the suffix replaces the end, so
    the length the server checks is the original's.
    """
    suffix = "-" + secrets.token_hex(3)
    if len(name) + len(suffix) <= 63:
        return name + suffix
    return name[: len(name) - len(suffix)] + suffix


def validate(api: ApiClient, namespace: str, objs: list[Obj]) -> DryRun:
    """Validate `objs` as far as the server allows without `namespace`; ConfigError naming every
    object that failed. Nothing is changed on the cluster."""
    result = DryRun()
    problems: list[str] = []
    rendered: list[tuple[Obj, Obj]] = []
    ns_manifest = next(
        (o for o in objs if o.get("kind") == "Namespace" and name_of(o) == namespace), None
    )
    if ns_manifest is None:
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": dict(MANAGED_BY)},
        }
        try:
            kube.server_side_apply(api, body, None, dry_run=True)
        except ApiError as e:
            problems.append(f"Namespace/{namespace} (created by the gate): {e}")
    result.notes.append(
        f"namespace {namespace} does not exist: the gate would create it"
        + (" (from the manifests)" if ns_manifest is not None else "")
    )
    probe_forbidden: str | None = None
    for obj in objs:
        try:
            res = kube.resource(api, str(obj["apiVersion"]), str(obj["kind"]))
            if not res.namespaced:
                rendered.append((obj, kube.server_side_apply(api, obj, None, dry_run=True)))
                continue
            if probe_forbidden is not None:
                continue
            declared = (obj.get("metadata") or {}).get("namespace")
            if declared not in (None, namespace):
                raise ConfigError(
                    f"declares namespace {declared!r} but the gate targets {namespace!r}; "
                    "remove metadata.namespace from the manifest"
                )
            probe = copy.deepcopy(obj)
            probe["metadata"]["name"] = temporary_name(name_of(obj))
            probe["metadata"]["namespace"] = PROBE_NAMESPACE
            after = kube.server_side_apply(api, probe, PROBE_NAMESPACE, dry_run=True)
            after["metadata"]["name"], after["metadata"]["namespace"] = name_of(obj), namespace
            rendered.append((obj, after))
            result.schema_only.append(ref(obj))
        except Forbidden as e:
            probe_forbidden = str(e)
        except ConfigError as e:
            problems.append(f"{ref(obj)}: {e}")
        except ApiError as e:
            if not apply.is_input_error(e):
                raise
            problems.append(f"{ref(obj)}: {apply.server_message(e)}")
    if problems:
        raise ConfigError(
            f"{len(problems)} of {len(objs)} manifests failed the server-side dry-run for the "
            f"new namespace {namespace}; nothing was applied:\n  - " + "\n  - ".join(problems)
        )
    if result.schema_only:
        result.notes.append(
            f"{len(result.schema_only)} namespaced object(s) validated against the schema only "
            f"(a dry-run in namespace {PROBE_NAMESPACE} under temporary names): the target "
            "namespace's quotas, limits and policies are checked on the real run"
        )
    if probe_forbidden is not None:
        result.notes.append(
            f"namespaced objects not validated by the server: no right to dry-run them in "
            f"namespace {PROBE_NAMESPACE} ({probe_forbidden})"
        )
    result.diff = "".join(_as_new(obj, after) for obj, after in rendered)
    return result


def _as_new(manifest: Obj, after: Obj) -> str:
    # Secret values never reach the diff: keys stay, values masked (kubectl diff's rule).
    _, shown = redact.secret_pair(None, after)
    out = copy.deepcopy(shown or after)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _NOISE:
        meta.pop(key, None)
    lines = yaml.safe_dump(out, sort_keys=True).splitlines()
    return f"--- /dev/null\n+++ new/{ref(manifest)}\n" + "".join(f"+{line}\n" for line in lines)
