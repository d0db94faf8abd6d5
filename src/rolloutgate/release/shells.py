"""The in-pod checks' ways into a release's pods: a shell next to the serving process (``kubectl
exec``, or an ephemeral debug container when the image has none), found once per pod and
container, and one found ahead in a thread while the replicas are asked (``prefetch``).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from rolloutgate.checks import inpod
from rolloutgate.checks.inpod import InPod, InPodUnavailable
from rolloutgate.errors import GateError
from rolloutgate.objects import Obj, name_of
from rolloutgate.release import verify as checks

if TYPE_CHECKING:
    from rolloutgate.release.engine import Release


class Shells:
    """One release's shells; ``get`` is ``Release.in_pod``."""

    def __init__(self, rel: Release) -> None:
        self._rel = rel
        self._found: dict[tuple[str, str], InPod | InPodUnavailable] = {}
        self._ahead: threading.Thread | None = None  # prefetch's, until get joins it

    def get(self, pods: list[Obj], name: str) -> InPod:
        """A shell next to the serving process of a running pod of the release, for the in-pod
        checks: in container ``name`` (the serving one, ``Release.serving_container``), else, when
        its image has no shell, in an ephemeral container of ``debug_image`` sharing its process
        namespace. InPodUnavailable says why the checks cannot run here (a property of the
        set-up, never of the release). Found once per pod and container (``prefetch`` may
        have found it already). Deadline: ``timeouts.endpoint``."""
        rel = self._rel
        cfg = rel.cfg
        inpod.check_container(pods, name)
        pod = inpod.running_pod(pods, name)
        if pod is None:
            raise GateError(
                f"no pod of the new release in {cfg.namespace} has container {name} running "
                f"(pods: {', '.join(name_of(p) for p in pods)})"
            )
        if self._ahead is not None:
            self._ahead.join(timeout=cfg.timeouts.endpoint)
            self._ahead = None
        key = (name_of(pod), name)
        if key not in self._found:
            with rel.step(None, cfg.timeouts.endpoint) as deadline:
                self._found[key] = self._open(pod, name, deadline)
        found = self._found[key]
        if isinstance(found, InPodUnavailable):
            raise found
        return found

    def prefetch(self) -> None:
        """Find the in-pod checks' way in (``get``'s, for the serving container of the pod
        it would pick) in a thread, beside the checks that ask every replica: it is a
        ``kubectl exec`` or more, and testinfra's system detection three more, 0.6-3.8 s that
        waited for nothing else (issue 21). For a suite whose in-pod checks will run; any error
        is left for ``get`` to meet again."""
        rel = self._rel

        def find() -> None:
            try:
                # Not rel.pods(): a step's lease guard belongs to the main thread's steps.
                pods = [
                    p for w in rel.live for p in checks.release_pods(rel.api, rel.cfg.namespace, w)
                ]
                name = rel.serving_container()
                inpod.check_container(pods, name)
                pod = inpod.running_pod(pods, name)
                if pod is None:
                    return
                deadline = time.monotonic() + rel.cfg.timeouts.endpoint
                found = self._open(pod, name, deadline)
                if isinstance(found, InPod):
                    # testinfra learns the system on its first file check: `uname -s`, `cat
                    # /etc/os-release`, `uname -m`, three more execs the first check paid.
                    _ = found.host.file
                self._found[(name_of(pod), name)] = found
            except Exception:  # a head start must never break the run:
                return  # get finds it again and says what went wrong where a check needs it

        if self._ahead is None:
            self._ahead = threading.Thread(target=find, name="rolloutgate-in-pod", daemon=True)
            self._ahead.start()

    def _open(self, pod: Obj, name: str, deadline: float) -> InPod | InPodUnavailable:
        rel = self._rel
        kubectl = inpod.Kubectl(*rel.connection, rel.cfg.namespace)
        try:
            return inpod.open_in_pod(
                rel.api,
                kubectl,
                pod,
                name,
                debug_image=rel.cfg.debug_image,
                deadline=deadline,
                timeout_s=rel.cfg.timeouts.endpoint,
                say=rel.tell,
            )
        except InPodUnavailable as e:
            return e
