"""The in-pod checks' way into a pod of the release: which container serves the model, whether
its image has a shell, and an ephemeral debug container when it has none.

testinfra's kubectl backend runs every command as ``kubectl exec POD -c CONTAINER -- /bin/sh -c
...``. That needs a shell in the container, ``kubectl`` on PATH and the right to exec
(``pods/exec``). An image without a shell (distroless, a static binary) gets an ephemeral
container (``kubectl debug --target`` does the same) of ``debug_image`` that shares the serving
container's process namespace: the serving process is PID 1 there too, and its files are
under ``/proc/1/root``. When none of this is possible the checks are skipped with the reason
(``InPodUnavailable``): a property of the set-up, never of the release.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rolloutgate import kube
from rolloutgate.errors import ApiError, ConfigError, GateError
from rolloutgate.manifests import ImageRef, pod_specs
from rolloutgate.objects import Obj, at, name_of, ref

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

# What the container runtime says when an exec finds no shell (containerd and CRI-O, via kubectl).
_NO_SHELL = re.compile(
    r'"?/bin/sh"?: (?:stat /bin/sh: )?no such file or directory|executable file not found',
    re.IGNORECASE,
)
# How long an ephemeral debug container stays up; the checks need it for seconds. It cannot be
# removed from the pod afterwards (the API has no such operation); it ends by itself.
DEBUG_TTL_S = 600
# Waiting reasons of a container that will not start without a change (the debug image).
_STUCK = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


class InPodUnavailable(GateError):
    """The in-pod checks cannot run on this set-up (no shell and no debug container, no
    kubectl, no right to exec); the message says why and what would make them possible."""


@dataclass(frozen=True)
class InPod:
    """A shell next to the serving process of one pod of the release.

    ``host`` is a testinfra ``Host`` (kubectl backend) in ``exec_container``: the serving
    container itself, or an ephemeral debug container sharing its process namespace, where
    the serving container's files are under ``root`` (``/proc/1/root``).
    """

    pod: str
    container: str
    exec_container: str
    host: Any
    root: str = ""

    @property
    def debug(self) -> bool:
        """Whether the checks run from an ephemeral debug container."""
        return self.exec_container != self.container

    def path(self, path: str) -> str:
        """``path`` of the serving container as the host sees it. ``/proc`` is the shared
        process namespace's, the same from either container."""
        if not self.root or path == "/proc" or path.startswith("/proc/"):
            return path
        return self.root + path

    def file(self, path: str) -> Any:
        """testinfra's ``File`` for ``path`` in the serving container."""
        return self.host.file(self.path(path))

    @property
    def where(self) -> str:
        via = f" (from ephemeral container {self.exec_container})" if self.debug else ""
        return f"pod {self.pod} container {self.container}{via}"


# ---------------------------------------------------------------------------------------------
# Which container.


def serving_container(
    workloads: Sequence[Obj], images: Sequence[str] | None, named: str | None
) -> str:
    """The container the in-pod checks run in: ``named`` (the ``container`` setting) when given,
    else the one whose image ``--image-tag`` sets (``images``, else every workload image).

    ConfigError when ``named`` is no container of the workloads (listing theirs), or when the
    image tag sets the image of several containers (naming them and the settings that decide).
    """
    found = {
        ref(w): [c for spec in pod_specs(w) for c in spec.get("containers") or []]
        for w in workloads
    }
    listing = "; ".join(
        f"{w} has {', '.join(str(c.get('name')) for c in cs) or 'none'}" for w, cs in found.items()
    )
    if named is not None:
        if not any(c.get("name") == named for cs in found.values() for c in cs):
            raise ConfigError(
                f"container {named!r} (setting `container`) is not a container of the release's "
                f"pods: {listing}. Set `container` to one of them"
            )
        return named
    wanted = {ImageRef.parse(i).name for i in images} if images else None
    tagged = sorted(
        {
            str(c.get("name"))
            for cs in found.values()
            for c in cs
            if wanted is None or ImageRef.parse(str(c.get("image"))).name in wanted
        }
    )
    if len(tagged) == 1:
        return tagged[0]
    if not tagged:
        raise ConfigError(
            f"no container of the release's pods runs an image of `images` "
            f"({', '.join(images or ())}): {listing}. Set `container` for the in-pod checks"
        )
    raise ConfigError(
        f"the in-pod checks cannot tell which container serves the model: --image-tag sets the "
        f"image of containers {', '.join(tagged)} ({listing}). Set `container` to the serving "
        "one, or `images` to the model's image only (then sidecars keep their tags too)"
    )


def check_container(pods: Sequence[Obj], name: str) -> None:
    """ConfigError unless ``name`` is a container of the release's pods (naming theirs)."""
    if any(c.get("name") == name for p in pods for c in p["spec"].get("containers", [])):
        return
    listing = "; ".join(
        f"pod {name_of(p)} has "
        + ", ".join(str(c.get("name")) for c in p["spec"].get("containers", []))
        for p in pods
    )
    raise ConfigError(
        f"container {name!r} is not a container of the new release's pods: "
        f"{listing or 'no pods'}. Set `container` (or the rolloutgate_container fixture) "
        "to one of them"
    )


def running_pod(pods: Sequence[Obj], container: str) -> Obj | None:
    """A pod of the release whose ``container`` is running (the first by name)."""
    for pod in sorted(pods, key=name_of):
        for status in at(pod, "status", "containerStatuses") or []:
            if status.get("name") == container and (status.get("state") or {}).get("running"):
                return pod
    return None


# ---------------------------------------------------------------------------------------------
# Exec.


@dataclass(frozen=True)
class Kubectl:
    """How to run kubectl against the gate's target (the gate's kubeconfig and context)."""

    kubeconfig: str | None
    context: str | None
    namespace: str

    def argv(self, *args: str) -> list[str]:
        found = shutil.which("kubectl")
        if found is None:
            raise InPodUnavailable(
                "kubectl is not on PATH: testinfra's kubectl backend runs the in-pod checks "
                "through it (install kubectl where the gate runs)"
            )
        head = [found]
        if self.kubeconfig:
            head.append(f"--kubeconfig={self.kubeconfig}")
        if self.context:
            head.append(f"--context={self.context}")
        return [*head, f"--namespace={self.namespace}", *args]

    def host(self, pod: str, container: str) -> Any:
        """testinfra's Host on ``container`` of ``pod``."""
        import testinfra  # type: ignore[import-untyped]

        kwargs = {
            k: v for k, v in (("kubeconfig", self.kubeconfig), ("context", self.context)) if v
        }
        spec = f"kubectl://{pod}?container={container}&namespace={self.namespace}"
        return testinfra.get_host(spec, **kwargs)


def has_shell(kubectl: Kubectl, pod: str, container: str, *, timeout: float) -> bool:
    """Whether ``/bin/sh`` runs in the container: True, False (the image has none), or
    InPodUnavailable (exec is refused) / GateError (anything else, with kubectl's words)."""
    argv = kubectl.argv("exec", pod, "-c", container, "--", "/bin/sh", "-c", "exit 0")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired as e:
        raise GateError(
            f"`kubectl exec` into pod {pod} container {container} did not end within "
            f"{max(timeout, 1.0):.0f} s"
        ) from e
    if done.returncode == 0:
        return True
    said = (done.stderr or done.stdout).strip()
    if _NO_SHELL.search(said):
        return False
    if "forbidden" in said.lower():
        raise InPodUnavailable(
            f"the gate's credentials may not exec into pod {pod} (`create` on pods/exec, "
            f"docs/rbac.md): {said.splitlines()[-1] if said else 'forbidden'}"
        )
    raise GateError(
        f"`kubectl exec` into pod {pod} container {container} exited {done.returncode}: "
        f"{said[-500:] or '(no output)'}"
    )


def readable_root(kubectl: Kubectl, pod: str, container: str, *, timeout: float) -> str | None:
    """None when the serving process's files (``/proc/1/root``) can be read from ``container``;
    else what was seen (the kernel allows it to the same user with the same capabilities)."""
    argv = kubectl.argv(
        "exec", pod, "-c", container, "--", "/bin/sh", "-c", "ls /proc/1/root/ >/dev/null"
    )
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired:
        return f"`ls /proc/1/root/` did not end within {max(timeout, 1.0):.0f} s"
    if done.returncode == 0:
        return None
    return (done.stderr or done.stdout).strip()[-300:] or f"exit {done.returncode}"


# ---------------------------------------------------------------------------------------------
# The ephemeral debug container.


def debug_container(target: Obj, image: str) -> Obj:
    """An ephemeral container of ``image`` that shares ``target``'s process namespace and runs
    as ``target`` does: the same securityContext (user, capabilities), so the kernel lets it
    read the serving process's files, and a namespace's Pod Security level admits it as it
    admitted the target."""
    container: Obj = {
        "name": f"rolloutgate-debug-{uuid.uuid4().hex[:6]}",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", str(DEBUG_TTL_S)],
        "targetContainerName": str(target.get("name")),
        "stdin": False,
        "tty": False,
    }
    if target.get("securityContext"):
        container["securityContext"] = target["securityContext"]
    return container


def debug_state(pod: Obj, name: str) -> tuple[bool, str | None]:
    """(running, why it never will: None while it may still start) of the ephemeral
    container ``name`` in ``pod``."""
    for status in at(pod, "status", "ephemeralContainerStatuses") or []:
        if status.get("name") != name:
            continue
        state = status.get("state") or {}
        if state.get("running"):
            return True, None
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in _STUCK:
            return False, f"{waiting.get('reason')}: {waiting.get('message') or ''}".strip(": ")
        terminated = state.get("terminated")
        if terminated:
            return False, (
                f"exited {terminated.get('exitCode')} ({terminated.get('reason') or 'no reason'}): "
                f"{terminated.get('message') or ''}"
            ).strip(": ")
    return False, None


def target_spec(pod: Obj, container: str) -> Obj:
    """The pod spec's entry of ``container``."""
    for c in at(pod, "spec", "containers") or []:
        if c.get("name") == container:
            return dict(c)
    names = ", ".join(str(c.get("name")) for c in at(pod, "spec", "containers") or [])
    raise ConfigError(f"pod {name_of(pod)} has no container {container!r}; its containers: {names}")


def open_in_pod(
    api: ApiClient,
    kubectl: Kubectl,
    pod: Obj,
    name: str,
    *,
    debug_image: str | None,
    deadline: float,
    timeout_s: float,
    say: Callable[[str], None],
) -> InPod:
    """The way into container ``name`` of ``pod``: the container itself when its image has a
    shell, else an ephemeral container of ``debug_image`` added to the pod and waited for
    until ``deadline`` (``timeout_s``: that deadline's length, for the message).
    InPodUnavailable says why neither works."""
    pod_name = name_of(pod)

    def left() -> float:
        return deadline - time.monotonic()

    if has_shell(kubectl, pod_name, name, timeout=left()):
        return InPod(pod_name, name, name, kubectl.host(pod_name, name))
    target = target_spec(pod, name)
    why = f"image {target.get('image')} of container {name} has no shell (/bin/sh)"
    if debug_image is None:
        raise InPodUnavailable(
            f"{why} and debug_image is off: set debug_image to an image with a shell "
            "that the cluster can pull, to run them from an ephemeral container"
        )
    debug = debug_container(target, debug_image)
    try:
        kube.add_ephemeral_container(api, kubectl.namespace, pod_name, debug)
    except ApiError as e:  # 403 (pods/ephemeralcontainers), 404 (API too old), 422
        raise InPodUnavailable(f"{why}, and no ephemeral container could be added: {e}") from e
    debug_name = str(debug["name"])
    say(
        f"{why}: in-pod checks from ephemeral container {debug_name} "
        f"({debug_image}) in pod {pod_name}"
    )
    _wait_debug(api, kubectl.namespace, pod_name, debug_name, debug_image, deadline, timeout_s, why)
    if not has_shell(kubectl, pod_name, debug_name, timeout=left()):
        raise InPodUnavailable(f"{why}, and neither has debug_image {debug_image}")
    denied = readable_root(kubectl, pod_name, debug_name, timeout=left())
    if denied is not None:
        raise InPodUnavailable(
            f"{why}; ephemeral container {debug_name} cannot read the serving process's "
            f"files ({denied}): the kernel allows it to the same user, so give the "
            "serving container a runAsUser (the debug container copies its "
            "securityContext)"
        )
    return InPod(pod_name, name, debug_name, kubectl.host(pod_name, debug_name), "/proc/1/root")


def _wait_debug(
    api: ApiClient,
    namespace: str,
    pod: str,
    name: str,
    image: str,
    deadline: float,
    timeout_s: float,
    why: str,
) -> None:
    """Until the ephemeral container runs; InPodUnavailable when it will not start (its
    image cannot be pulled, ...) or by the deadline."""
    last = "not started"
    watch = kube.Watch(
        api, "v1", "Pod", namespace, deadline=deadline, field_selector=f"metadata.name={pod}"
    )
    for event in watch:
        if event.type == kube.SYNCED:
            continue
        running, stuck = debug_state(event.obj, name)
        if running:
            watch.stop()
            return
        if stuck is not None:
            watch.stop()
            raise InPodUnavailable(
                f"{why}, and ephemeral container {name} ({image}) will not "
                f"start: {stuck}. Set debug_image to an image with a shell that the cluster "
                "can pull"
            )
        last = str(
            ((event.obj.get("status") or {}).get("ephemeralContainerStatuses") or [{}])[-1].get(
                "state"
            )
            or last
        )
    raise InPodUnavailable(
        f"{why}, and ephemeral container {name} was not running within the endpoint timeout "
        f"({timeout_s:g} s; last state: {last})"
    )
