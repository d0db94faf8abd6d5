"""``--cluster=kind``: a throwaway kind cluster through pytest-kind, made with what is local.

pytest-kind downloads kind from the internet when it is given no binary, and kind pulls its
default node image. So before pytest-kind's ``kind_cluster`` fixture runs, :func:`resolve` fills
pytest-kind's ``--kind-bin`` and ``--kind-image`` options, in this order:

1. the options as given;
2. the kind binary and node image ``make kind-image`` built offline (recorded in
   ``$ROLLOUTGATE_CACHE/kind/node-image.json``), when that image is in Docker;
3. ``kind`` on PATH, with kind's own default node image (Docker pulls it: needs internet).

When none of these exists, one ``ConfigError`` says what to run; nothing is downloaded.

After the cluster exists, :func:`prepare` waits for its nodes to be Ready and copies the images
the manifests use into the node with ``kind load docker-image`` (the node reaches no registry).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from rolloutgate import manifests
from rolloutgate.errors import ClusterError, ConfigError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

Obj = dict[str, Any]

# Docker answers `image inspect` in well under a second; kind loads an image in seconds.
DOCKER_TIMEOUT = 30.0
POLL = 1.0

BUILD_HINT = (
    "offline: run `make kind-image` (builds kind and a node image from the Go module proxy and "
    "Debian packages, see docs/kind.md); with internet: install kind "
    "(https://kind.sigs.k8s.io) so `kind` is on PATH; or pass --kind-bin PATH [--kind-image IMAGE]"
)


@dataclass(frozen=True)
class KindTools:
    """The kind binary and node image a cluster is made with; ``image=None``: kind's default."""

    kind: str
    image: str | None
    source: str  # where they came from: "--kind-bin", "make kind-image", "kind on PATH"

    @property
    def offline(self) -> bool:
        """Made for machines without a registry: every image must come from local Docker."""
        return self.source == OFFLINE


OFFLINE = "make kind-image"


def marker_path(env: Mapping[str, str]) -> Path:
    """Where ``make kind-image`` records the kind binary and node image it built."""
    cache = env.get("ROLLOUTGATE_CACHE") or str(Path.home() / ".cache" / "rolloutgate")
    return Path(cache) / "kind" / "node-image.json"


def read_marker(path: Path) -> tuple[str, str] | None:
    """(kind binary, node image) recorded at `path`; None when absent or unreadable."""
    try:
        data = json.loads(path.read_text())
        return str(data["kind"]), str(data["image"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def docker_has_image(image: str) -> bool:
    """Whether the local Docker daemon has `image` (False as well when Docker does not answer)."""
    try:
        done = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", image],
            capture_output=True,
            timeout=DOCKER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def resolve(
    kind_bin: str | None,
    kind_image: str | None,
    *,
    env: Mapping[str, str],
    which: Callable[[str], str | None] = shutil.which,
    has_image: Callable[[str], bool] = docker_has_image,
) -> KindTools:
    """The kind binary and node image to use (see the module's docstring for the order).

    ConfigError when `kind_bin` does not exist, or when no kind binary is available at all.
    """
    if which("docker") is None:
        raise ConfigError(
            "--cluster=kind runs kind, which needs Docker: no `docker` on PATH. "
            "Install Docker (Debian: docker.io; `make docker-up` starts the project's dockerd)."
        )
    if kind_bin:
        if not os.access(kind_bin, os.X_OK):
            raise ConfigError(f"--kind-bin {kind_bin}: no executable there; {BUILD_HINT}")
        return KindTools(kind_bin, kind_image, "--kind-bin")
    built = read_marker(marker_path(env))
    if built is not None:
        kind, image = built
        if os.access(kind, os.X_OK) and (kind_image or has_image(image)):
            return KindTools(kind, kind_image or image, OFFLINE)
    on_path = which("kind")
    if on_path:
        # Stock kind: its default node image is pulled from its registry unless one is given.
        return KindTools(on_path, kind_image, "kind on PATH")
    if built is not None:
        kind, image = built
        missing = kind if not os.access(kind, os.X_OK) else f"Docker image {image}"
        raise ConfigError(
            f"--cluster=kind: `make kind-image` was run here but {missing} is gone; "
            "run `make kind-image` again (it reloads the saved image or rebuilds what is missing)"
        )
    raise ConfigError(f"--cluster=kind needs a kind binary and there is none here; {BUILD_HINT}")


def images_of(objs: list[Obj]) -> list[str]:
    """Every container image the objects use, in order of first use."""
    seen: dict[str, None] = {}
    for obj in objs:
        for spec in manifests.pod_specs(obj):
            for c in manifests.containers(spec):
                image = c.get("image")
                if isinstance(image, str) and image:
                    seen.setdefault(image, None)
    return list(seen)


def _not_ready(api: ApiClient) -> list[str]:
    """Nodes whose Ready condition is not True, each with its reason; ['(no node)'] for none."""
    nodes = client.CoreV1Api(api).list_node(_request_timeout=10).items
    if not nodes:
        return ["(no node registered yet)"]
    waiting = []
    for node in nodes:
        conditions = (node.status.conditions if node.status else None) or []
        ready = next((c for c in conditions if c.type == "Ready"), None)
        if ready is None or ready.status != "True":
            why = f"{ready.reason}: {ready.message}" if ready is not None else "no Ready condition"
            name = node.metadata.name if node.metadata else "?"
            waiting.append(f"{name} ({why})")
    return waiting


def wait_nodes_ready(api: ApiClient, deadline: float) -> None:
    """Return once every node is Ready; ClusterError naming the last state at `deadline`."""
    last = ["(not asked yet)"]
    while True:
        try:
            last = _not_ready(api)
        except ApiException as e:
            last = [f"listing nodes failed: {e.status} {e.reason}"]
        if not last:
            return
        if time.monotonic() >= deadline:
            raise ClusterError(
                f"kind cluster: node not Ready in time: {'; '.join(last)}. "
                "Inspect it with `docker logs <cluster>-control-plane` and "
                "`docker exec <cluster>-control-plane journalctl -u kubelet`"
            )
        time.sleep(POLL)


def load_images(
    kind: str,
    cluster: str,
    images: list[str],
    deadline: float,
    *,
    offline: bool,
    has_image: Callable[[str], bool],
) -> None:
    """Copy each image Docker has into the cluster's node (kind skips what the node already has).

    An image Docker lacks is left for the node to pull, except `offline` (the node image of
    `make kind-image`, on machines without a registry), where it is a ConfigError up front.
    """
    local = [i for i in images if has_image(i)]
    missing = [i for i in images if i not in local]
    if missing and offline:
        raise ConfigError(
            f"kind cluster: the manifests use {', '.join(missing)}, which Docker does not have; "
            "a kind node reaches no registry here: build the image first "
            "(the example's: `make images`)"
        )
    for image in local:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ClusterError(f"kind cluster: no time left to load {image} into {cluster}")
        try:
            done = subprocess.run(
                [kind, "load", "docker-image", "--name", cluster, image],
                capture_output=True,
                text=True,
                timeout=left,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise ClusterError(f"`kind load docker-image {image}` took over {left:.0f} s") from e
        if done.returncode != 0:
            raise ClusterError(
                f"`kind load docker-image --name {cluster} {image}` failed "
                f"(exit {done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}"
            )


def prepare(
    api: ApiClient,
    kind: str,
    cluster: str,
    objs: list[Obj],
    *,
    timeout: float,
    offline: bool,
    has_image: Callable[[str], bool] = docker_has_image,
) -> None:
    """Nodes Ready and the manifests' images in the node, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    wait_nodes_ready(api, deadline)
    load_images(kind, cluster, images_of(objs), deadline, offline=offline, has_image=has_image)
