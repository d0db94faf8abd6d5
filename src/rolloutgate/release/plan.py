"""What the release will do to each workload, decided before anything is validated or applied.

- A workload an HPA scales (``autoscale``) is applied without ``spec.replicas``.
- A ConfigMap or Secret the manifests change, used by a workload the release does not change
  (env, envFrom, volumes, projected volumes), is a release the pods will not see: they keep
  the configuration they started with. That is said loudly, or, with
  ``restart_on_config_change``, the workload is restarted as ``kubectl rollout restart`` does
  (annotation ``kubectl.kubernetes.io/restartedAt`` on its pod template), in the same apply.

Whether a workload changes is the server's answer, not a guess: a server-side dry-run of its
manifest, compared with the live pod template.
"""

from __future__ import annotations

import base64
import binascii
import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.errors import ApiError
from rolloutgate.manifests import containers, pod_specs
from rolloutgate.objects import Obj, at, name_of, ref
from rolloutgate.release import autoscale
from rolloutgate.release.snapshot import Snapshot
from rolloutgate.workloads import is_workload

# What `kubectl rollout restart` writes on the pod template to roll every pod.
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
CONFIG_KINDS = ("ConfigMap", "Secret")


@dataclass
class Plan:
    """The objects to validate and apply, and what the plan found on the way."""

    objects: list[Obj]
    autoscaled: dict[str, str] = field(default_factory=dict)  # workload ref -> HPA name
    restarted: list[str] = field(default_factory=list)  # workload refs
    notes: list[str] = field(default_factory=list)


def make(
    api: ApiClient,
    namespace: str,
    objs: list[Obj],
    snap: Snapshot,
    *,
    restart_on_config_change: bool,
    namespace_exists: bool = True,
) -> Plan:
    """The plan for `objs` against the snapshot (paused workloads were refused before, by
    their viewers' ``problems``: ``gate.prepare`` and ``gate.check_live``)."""
    plan = Plan(objects=[])
    hpas = [o for o in objs if o.get("kind") == autoscale.HPA_KIND]
    if namespace_exists:
        live = autoscale.live_hpas(api, namespace)
        if live is None:
            plan.notes.append(
                f"HorizontalPodAutoscalers in {namespace} not read (no `list` right on "
                "horizontalpodautoscalers.autoscaling): only HPAs in the manifests keep the "
                "replica count; deploy/rbac/role.yaml has the rule"
            )
        hpas += live or []
    scaled = autoscale.targets(hpas)
    for obj in objs:
        key = (str(obj.get("kind")), name_of(obj))
        if is_workload(obj) and key in scaled:
            plan.autoscaled[ref(obj)] = scaled[key]
            obj = autoscale.without_replicas(obj)
        plan.objects.append(obj)
    changed = changed_config(objs, snap)
    if changed:
        _config_only(api, namespace, plan, snap, changed, restart_on_config_change)
    return plan


def config_refs(obj: Obj) -> set[tuple[str, str]]:
    """(kind, name) of every ConfigMap and Secret a workload's pods read. Pure."""
    found: set[tuple[str, str]] = set()
    for spec in pod_specs(obj):
        for c in containers(spec):
            for env in c.get("env") or []:
                source = env.get("valueFrom") or {}
                _add(found, "ConfigMap", at(source, "configMapKeyRef", "name"))
                _add(found, "Secret", at(source, "secretKeyRef", "name"))
            for env_from in c.get("envFrom") or []:
                _add(found, "ConfigMap", at(env_from, "configMapRef", "name"))
                _add(found, "Secret", at(env_from, "secretRef", "name"))
        for volume in spec.get("volumes") or []:
            _add(found, "ConfigMap", at(volume, "configMap", "name"))
            _add(found, "Secret", at(volume, "secret", "secretName"))
            for source in at(volume, "projected", "sources") or []:
                _add(found, "ConfigMap", at(source, "configMap", "name"))
                _add(found, "Secret", at(source, "secret", "name"))
    return found


def _add(found: set[tuple[str, str]], kind: str, name: object) -> None:
    if isinstance(name, str) and name:
        found.add((kind, name))


def config_content(obj: Obj) -> dict[str, bytes]:
    """A ConfigMap's or Secret's content as key → bytes, however it is written. Pure.

    ConfigMap ``data`` is text, ``binaryData`` base64; Secret ``data`` is base64 and
    ``stringData`` text that the server merges into ``data``.
    """
    content: dict[str, bytes] = {}
    encoded = "binaryData" if obj.get("kind") == "ConfigMap" else "data"
    plain = "data" if obj.get("kind") == "ConfigMap" else "stringData"
    for key, value in (obj.get(encoded) or {}).items():
        try:
            content[key] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            content[key] = str(value).encode()  # the dry-run will name the bad value
    for key, value in (obj.get(plain) or {}).items():
        content[key] = str(value).encode()
    return content


def changed_config(objs: list[Obj], snap: Snapshot) -> list[tuple[str, str]]:
    """(kind, name) of the ConfigMaps and Secrets that exist and whose content the manifests
    change. Pure."""
    changed = []
    for obj in objs:
        if obj.get("kind") not in CONFIG_KINDS:
            continue
        live = snap.live(str(obj["kind"]), name_of(obj))
        if live is not None and config_content(live) != config_content(obj):
            changed.append((str(obj["kind"]), name_of(obj)))
    return changed


def _config_only(
    api: ApiClient,
    namespace: str,
    plan: Plan,
    snap: Snapshot,
    changed: list[tuple[str, str]],
    restart: bool,
) -> None:
    """Find the workloads that read changed configuration and will not roll; restart them
    (``restart``) or say that their pods keep the old configuration."""
    for i, obj in enumerate(plan.objects):
        if not is_workload(obj):
            continue
        uses = sorted(config_refs(obj).intersection(changed))
        live = snap.live(str(obj["kind"]), name_of(obj))
        if not uses or live is None or _rolls(api, namespace, obj, live):
            continue
        what = ", ".join(f"{kind}/{name}" for kind, name in uses)
        if restart:
            plan.objects[i] = restarted(obj, datetime.now(UTC))
            plan.restarted.append(ref(obj))
            plan.notes.append(
                f"{what} changes and {ref(obj)} does not: restarting {ref(obj)} as "
                "`kubectl rollout restart` does (restart_on_config_change)"
            )
        else:
            plan.notes.append(
                f"WARNING: {what} changes but {ref(obj)} does not: its running pods keep the "
                f"old configuration (environment variables are read at start). Restart it "
                f"(`kubectl rollout restart {str(obj['kind']).lower()}/{name_of(obj)}`), or "
                "let the gate do it: --restart-on-config-change (restart_on_config_change = "
                "true)"
            )


def _rolls(api: ApiClient, namespace: str, obj: Obj, live: Obj) -> bool:
    """Whether applying `obj` changes the live pod template (the server's dry-run says)."""
    placed = copy.deepcopy(obj)
    placed.setdefault("metadata", {})["namespace"] = namespace
    try:
        after = kube.server_side_apply(api, placed, namespace, dry_run=True)
    except ApiError:
        return True  # the validation that follows names the error; no claim made here
    return bool(at(after, "spec", "template") != at(live, "spec", "template"))


def restarted(obj: Obj, when: datetime) -> Obj:
    """A copy of the workload whose pod template carries ``RESTARTED_AT`` = `when`. Pure."""
    out = copy.deepcopy(obj)
    template = out.setdefault("spec", {}).setdefault("template", {})
    annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[RESTARTED_AT] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return out
