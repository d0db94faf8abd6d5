"""What a team's manifests say about the service to gate: its Service, the port the checks go
through, the workload behind it, the container that serves (the one the Service's port
targets) and that container's image — what ``rolloutgate init`` writes into the profile."""

from __future__ import annotations

from dataclasses import dataclass

from rolloutgate.errors import ConfigError
from rolloutgate.manifests import ImageRef
from rolloutgate.objects import Obj, at, name_of, ref
from rolloutgate.workloads import workloads


@dataclass(frozen=True)
class Target:
    """The served model's place in the manifests."""

    service: str
    port: int | str  # the Service's port: its name, else its number
    workload: str  # Kind/name
    container: str
    image: str  # the image's name, without tag or digest: what --image-tag retags
    tag: str | None  # the tag written in the manifests
    namespace: str | None  # the workload's metadata.namespace, if the manifests set one


def _selects(selector: dict[str, str], workload: Obj) -> bool:
    labels = at(workload, "spec", "template", "metadata", "labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def find(objs: list[Obj], *, service: str | None = None, container: str | None = None) -> Target:
    """The Target in ``objs`` (rendered manifests); ConfigError says what is missing or
    ambiguous and which option decides (``--service``, ``--container``)."""
    services = [o for o in objs if o.get("kind") == "Service"]
    if service is not None:
        services = [s for s in services if name_of(s) == service]
    if len(services) != 1:
        names = ", ".join(name_of(o) for o in objs if o.get("kind") == "Service") or "none"
        raise ConfigError(
            f"the manifests have {len(services)} Service(s){f' named {service}' if service else ''}"
            f" (Services: {names}): the checks reach the model through one; name it with "
            "--service=NAME"
        )
    svc = services[0]
    selector = at(svc, "spec", "selector") or {}
    behind = [w for w in workloads(objs) if _selects(selector, w)]
    if len(behind) != 1:
        raise ConfigError(
            f"Service {name_of(svc)} selects {len(behind)} workloads of the manifests "
            f"({', '.join(ref(w) for w in behind) or 'none'}; selector {selector}): the gate "
            "needs the one serving the model behind it"
        )
    workload = behind[0]
    ports = at(svc, "spec", "ports") or []
    if not ports:
        raise ConfigError(f"Service {name_of(svc)} has no port")
    first = ports[0]
    target_port = first.get("targetPort", first.get("port"))
    containers = at(workload, "spec", "template", "spec", "containers") or []
    if container is None:
        serving = [
            c
            for c in containers
            for p in c.get("ports") or []
            if target_port in (p.get("name"), p.get("containerPort"))
        ]
        if not serving and len(containers) == 1:
            serving = containers
        if len(serving) != 1:
            raise ConfigError(
                f"cannot tell which container of {ref(workload)} serves Service "
                f"{name_of(svc)}'s port {target_port} (containers: "
                f"{', '.join(str(c.get('name')) for c in containers)}); name it with "
                "--container=NAME"
            )
        chosen = serving[0]
    else:
        chosen = next((c for c in containers if c.get("name") == container), {})
        if not chosen:
            raise ConfigError(
                f"{ref(workload)} has no container {container!r} (containers: "
                f"{', '.join(str(c.get('name')) for c in containers)})"
            )
    image = ImageRef.parse(str(chosen.get("image")))
    return Target(
        service=name_of(svc),
        port=first.get("name") or first["port"],
        workload=ref(workload),
        container=str(chosen.get("name")),
        image=image.name,
        tag=image.tag,
        namespace=at(workload, "metadata", "namespace"),
    )
