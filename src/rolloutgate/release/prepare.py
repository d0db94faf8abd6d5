"""A release's plan before it touches the cluster: the manifests rendered and tagged, and what
the manifests name (the Service, the lease, the change cause). Local only: bad input fails
here, before any API call."""

from __future__ import annotations

from rolloutgate import manifests
from rolloutgate.checks import credentials
from rolloutgate.config import GateConfig
from rolloutgate.errors import ConfigError
from rolloutgate.objects import Obj, name_of, ref
from rolloutgate.release import lock
from rolloutgate.release.snapshot import Snapshot
from rolloutgate.workloads import image_names, is_workload, kinds_text, viewer_for, workloads


def render(cfg: GateConfig) -> manifests.Rendered:
    """The manifests rendered from their source (plain files, kustomize, Helm), in apply order,
    with the image tag set."""
    if not cfg.manifests.is_dir():
        raise ConfigError(
            f"manifest directory {cfg.manifests} does not exist "
            f"({cfg.sources.get('manifests')}); set --manifests DIR or [tool.rolloutgate] manifests"
        )
    rendered = manifests.render(
        cfg.manifests,
        values=cfg.values,
        release=cfg.helm_release,
        namespace=cfg.namespace,
        kubectl=cfg.kubectl,
        helm=cfg.helm,
    )
    objs = manifests.apply_order(rendered.objects)
    found = workloads(objs)
    if not found:
        raise ConfigError(
            f"no {kinds_text()} in {cfg.manifests}: the gate deploys and verifies those kinds"
        )
    problems = [p for w in found for p in viewer_for(w).problems(w)]
    if problems:
        raise ConfigError("; ".join(problems) + "; nothing was applied")
    if cfg.image_tag is not None:
        # Without configured names, every image the workloads' containers use gets the tag,
        # on the workloads only: a migration Job that shares the image keeps its own tag (its
        # template is immutable). Configured names retag every kind that uses them.
        if cfg.images:
            objs = manifests.set_image_tag(objs, cfg.image_tag, cfg.images)
        else:
            objs = manifests.set_image_tag(
                objs, cfg.image_tag, image_names(objs), kinds={str(w["kind"]) for w in found}
            )
    credentials.check(cfg)  # a missing token fails here, before anything changes
    return manifests.Rendered(objs, rendered.source)


def check_live(snap: Snapshot) -> None:
    """ConfigError when a live workload cannot be rolled out as it is (e.g. paused), before
    anything is applied."""
    problems = [
        p
        for _manifest, live in snap.objects
        if live is not None and is_workload(live)
        for p in viewer_for(live).problems(live)
    ]
    if problems:
        raise ConfigError("live: " + "; ".join(problems) + "; nothing was applied")


def not_waited(objs: list[Obj]) -> list[str]:
    """The objects the gate applies but does not wait for (not a workload kind it knows)."""
    return [ref(o) for o in objs if not is_workload(o)]


def lock_name(cfg: GateConfig, objs: list[Obj]) -> str:
    """One lease per target: ``rolloutgate-<first workload>`` unless configured."""
    if cfg.lock_name:
        return cfg.lock_name
    return lock.lease_name(name_of(workloads(objs)[0]))


def change_cause(cfg: GateConfig, holder: str) -> str:
    tag = cfg.image_tag or "as in the manifests"
    return f"rolloutgate: image tag {tag} ({holder})"


def service_and_port(cfg: GateConfig, objs: list[Obj]) -> tuple[str, int | str]:
    """The Service the endpoint goes through: configured, else the manifests' only one."""
    services = [o for o in objs if o.get("kind") == "Service"]
    name = cfg.service
    if name is None:
        if len(services) != 1:
            found = ", ".join(s["metadata"]["name"] for s in services) or "none"
            raise ConfigError(
                f"cannot tell which Service serves the model (Services in {cfg.manifests}: "
                f"{found}); set [tool.rolloutgate] service = NAME, or --endpoint-url"
            )
        name = services[0]["metadata"]["name"]
    if cfg.port is not None:
        return name, cfg.port
    svc = next((s for s in services if s["metadata"]["name"] == name), None)
    ports = ((svc or {}).get("spec") or {}).get("ports") or []
    if not ports:
        raise ConfigError(
            f"Service {name} has no port in {cfg.manifests}; set [tool.rolloutgate] port"
        )
    return name, ports[0].get("name") or ports[0]["port"]


def endpoint_restored(cfg: GateConfig, objs: list[Obj], snap: Snapshot) -> str | None:
    """None when a rollback's endpoint can be checked; else why not: the Service it goes
    through is one of the manifests' and did not exist before the release (so the restore
    deleted it)."""
    if cfg.endpoint_url is not None:
        return None
    name = cfg.service
    if name is None:
        services = [name_of(o) for o in objs if o.get("kind") == "Service"]
        if len(services) != 1:
            return None  # the verification names what is ambiguous
        name = services[0]
    in_manifests = any(o.get("kind") == "Service" and name_of(o) == name for o in objs)
    if in_manifests and snap.live("Service", name) is None:
        return f"Service {name} did not exist before this release, so the restore removed it"
    return None
