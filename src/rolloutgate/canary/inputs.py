"""What a canary run reads before it touches a cluster, checked: the golden file, the request
set, the manifests' one workload and the port to reach it, the value judged as the label.

Every problem is a ``ConfigError`` naming the file, the line or key, and what is accepted; the
plugin turns it into a usage error (exit status 4) before a connection is opened, so bad input
never creates an arm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rolloutgate.canary.config import CanaryConfig
from rolloutgate.canary.observations import Item
from rolloutgate.canary.predictions import values_of
from rolloutgate.canary.traffic import items_of, load_request_set
from rolloutgate.checks import cases
from rolloutgate.checks.cases import Golden
from rolloutgate.config import GateConfig
from rolloutgate.errors import ConfigError, GateError
from rolloutgate.kube import portforward
from rolloutgate.release import prepare
from rolloutgate.workloads import workloads

Obj = dict[str, Any]


@dataclass(frozen=True)
class Inputs:
    """A canary run's checked inputs."""

    golden: Golden
    items: Mapping[str, Item]  # golden cases (``golden:<name>``) and request-set lines
    objects: list[Obj]  # the rendered manifests
    deployment: Obj  # the one workload the arms copy
    port: int | str  # the container port (number or name) the release's Service targets


def read(cfg: GateConfig, ccfg: CanaryConfig) -> Inputs:
    """Read and check everything local; ConfigError says what is wrong and what is accepted."""
    golden = cases.load(cfg.golden, protocol=cfg.protocol)
    request_set = load_request_set(ccfg.request_set, golden.protocol) if ccfg.request_set else []
    items = items_of(golden, request_set)
    values = values_of(items)
    if ccfg.label_output is not None and not any(
        ccfg.label_output in (name, exp.path) for name, exp in values.items()
    ):
        raise ConfigError(
            f"canary.label_output {ccfg.label_output!r} ({ccfg.sources.get('canary.label_output')})"
            f" is none of the values the golden cases of {cfg.golden} pick; expected one of: "
            + (", ".join(repr(v) for v in values) or "none (no case expects a value)")
        )
    if not values and any(i.labels is not None for i in request_set):
        raise ConfigError(
            f"request set {ccfg.request_set} has labels, but no golden case of {cfg.golden} "
            'expects a value to compare them with; add an expected value ({"path": JMESPATH, '
            '"data": ...}) to a case'
        )
    objects = prepare.render(cfg).objects
    found = workloads(objects)
    if len(found) != 1 or found[0].get("kind") != "Deployment":
        names = ", ".join(f"{o.get('kind')}/{o['metadata']['name']}" for o in found) or "none"
        raise ConfigError(
            f"the canary compares one Deployment; {cfg.manifests} has: {names}. Point "
            "--manifests at the manifests of one Deployment and its Service"
        )
    return Inputs(golden, items, objects, found[0], _target_port(cfg, objects))


def _target_port(cfg: GateConfig, objs: list[Obj]) -> int | str:
    """The container port the release's Service sends traffic to (number or name)."""
    service, port = prepare.service_and_port(cfg, objs)
    manifest = next(
        (o for o in objs if o.get("kind") == "Service" and o["metadata"]["name"] == service), None
    )
    if manifest is None:
        # The Service is not in the manifests: the configured port is taken as the pod's.
        return port
    try:
        return portforward.service_port(manifest, port)
    except GateError as e:
        raise ConfigError(str(e)) from e
