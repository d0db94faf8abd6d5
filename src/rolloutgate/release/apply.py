"""Server-side dry-run, apply and diff of manifests.

Bad input changes nothing: `validate` dry-runs every object before the caller applies any, and
reports every failure at once.
"""

from __future__ import annotations

import copy
import difflib

import yaml
from kubernetes.client import ApiClient

from rolloutgate import kube, redact
from rolloutgate.errors import ApiError, ConfigError
from rolloutgate.objects import CHANGE_CAUSE, Obj, ref
from rolloutgate.workloads import is_workload

# Statuses of a dry-run that mean "this manifest is wrong" rather than "the cluster is".
_INPUT_ERRORS = {400, 404, 409, 422}


def is_input_error(e: ApiError) -> bool:
    """Whether a failed dry-run blames the manifest rather than the cluster."""
    return e.status in _INPUT_ERRORS or e.untyped_patch


def server_message(e: ApiError) -> str:
    """The API server's own words from an ApiError's message (after the status code)."""
    cause = e.__cause__
    return kube.message_of(cause) if cause is not None else str(e)


def _placed(api: ApiClient, namespace: str, obj: Obj) -> Obj:
    """A copy of `obj` placed in `namespace` when its kind is namespaced.

    ConfigError when the manifest names another namespace: the gate deploys to one target.
    """
    out = copy.deepcopy(obj)
    res = kube.resource(api, str(obj["apiVersion"]), str(obj["kind"]))
    meta = out.setdefault("metadata", {})
    if res.namespaced:
        declared = meta.get("namespace")
        if declared not in (None, namespace):
            raise ConfigError(
                f"{ref(obj)} declares namespace {declared!r} but the gate targets "
                f"{namespace!r}; remove metadata.namespace from the manifest"
            )
        meta["namespace"] = namespace
    return out


def validate(api: ApiClient, namespace: str, objs: list[Obj]) -> None:
    """Server-side dry-run (server-side apply, dryRun=All) of every object.

    ConfigError naming each object that failed and the API server's message (unknown kind,
    schema errors, a namespace that does not exist...). Nothing is changed on the cluster.
    """
    problems: list[str] = []
    for obj in objs:
        try:
            placed = _placed(api, namespace, obj)
            kube.server_side_apply(api, placed, namespace, dry_run=True)
        except ConfigError as e:
            problems.append(f"{ref(obj)} ({obj.get('apiVersion')}): {e}")
        except ApiError as e:
            if not is_input_error(e):
                raise
            problems.append(f"{ref(obj)}: {server_message(e)}")
    if problems:
        raise ConfigError(
            f"{len(problems)} of {len(objs)} manifests failed the server-side dry-run in "
            f"namespace {namespace}; nothing was applied:\n  - " + "\n  - ".join(problems)
        )


def apply(
    api: ApiClient,
    namespace: str,
    objs: list[Obj],
    *,
    change_cause: str,
) -> list[Obj]:
    """Server-side apply of every object (force: the gate owns the fields it sets).

    Workloads get annotation kubernetes.io/change-cause = `change_cause`, which the
    controller copies to the ReplicaSet and `kubectl rollout history` shows. Returns the objects
    as the server stored them (a workload's metadata.generation pins the rollout to wait for).
    """
    applied: list[Obj] = []
    for obj in objs:
        placed = _placed(api, namespace, obj)
        if is_workload(placed):
            placed["metadata"].setdefault("annotations", {})[CHANGE_CAUSE] = change_cause
        applied.append(kube.server_side_apply(api, placed, namespace))
    return applied


# Fields the server owns or that change on every write: noise in a diff.
_NOISE_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")


def _for_diff(obj: Obj | None) -> list[str]:
    if obj is None:
        return []
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata") or {}
    for key in _NOISE_METADATA:
        meta.pop(key, None)
    return yaml.safe_dump(out, sort_keys=True).splitlines(keepends=True)


def diff(api: ApiClient, namespace: str, objs: list[Obj]) -> str:
    """Unified diff, per object, of the live object against the server's dry-run result;
    Secret values masked (``redact.secret_pair``).

    Run `validate` first: this assumes every object dry-runs cleanly.
    """
    chunks: list[str] = []
    for obj in objs:
        placed = _placed(api, namespace, obj)
        name = str(placed["metadata"]["name"])
        live = kube.get(api, str(obj["apiVersion"]), str(obj["kind"]), name, namespace)
        after = kube.server_side_apply(api, placed, namespace, dry_run=True)
        # Secret values never reach the diff: keys stay, values masked (kubectl diff's rule).
        shown_live, shown_after = redact.secret_pair(live, after)
        lines = list(
            difflib.unified_diff(
                _for_diff(shown_live),
                _for_diff(shown_after),
                fromfile=f"live/{ref(obj)}" if live else "/dev/null",
                tofile=f"new/{ref(obj)}",
            )
        )
        chunks.append("".join(lines) if lines else f"# {ref(obj)}: no change\n")
    return "".join(chunks)
