"""The release engine: one object owns the steps of a release, in order.

Helm's ``pkg/action`` is the model: an operation is an object built from one configuration
whose methods do the steps and own their deadlines, record and rollback; the CLI only parses
flags. Here the pytest fixtures play the CLI's part (each asks for one step's result), and the
canary, ``record`` and ``--recover`` drive the same object::

    render → connect → ensure_namespace → lock → snapshot (recovering first when needed)
      → validate → apply → rollout → endpoint / replicas / pods → finish

Every step runs under its own deadline (``settings.timeouts``), with a restarting API server
retried until then (``kube.patience``, said on the terminal), its time recorded in the run's
phases, and the release record (``record.Tracker``) updated where the step changes what a
gate that dies would leave behind. A step returns its result or raises a ``GateError`` naming
what failed; callers turn that into a test failure once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.checks import fanout, inpod, loadtime, warmup
from rolloutgate.checks.client import wait_answering
from rolloutgate.checks.httpclient import client_for
from rolloutgate.checks.inpod import InPod
from rolloutgate.checks.podhistory import Baseline
from rolloutgate.config import GateConfig
from rolloutgate.errors import (
    ClusterError,
    ConfigError,
    Forbidden,
    GateError,
    RolloutFailed,
)
from rolloutgate.kube import kindcluster
from rolloutgate.manifests import Rendered
from rolloutgate.objects import MANAGED_BY, Obj, ref
from rolloutgate.release import (
    change,
    ending,
    holding,
    plan,
    prepare,
    record,
    rollout,
)
from rolloutgate.release import diagnostics as diag
from rolloutgate.release import verify as checks
from rolloutgate.release.handoff import Handoff
from rolloutgate.release.lock import Lease
from rolloutgate.release.report import GateRun
from rolloutgate.release.shells import Shells
from rolloutgate.release.snapshot import Snapshot
from rolloutgate.workloads import viewer_for, workloads

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rolloutgate.checks.cases import Golden
    from rolloutgate.checks.httpclient import HttpClient, Request
    from rolloutgate.checks.latency import Latency


def _silent(_line: str) -> None:
    return None


class Release:
    """One release of ``cfg``'s manifests to ``cfg``'s target, recorded in ``run``.

    ``say`` writes a progress line; ``golden`` loads the golden cases (ConfigError when the
    file is bad: the checks that need it report that, a rollback is checked without it);
    ``checkpoint`` writes the report as it stands (before a restore, which a SIGKILL may cut).
    The steps that hold the lease are in ``holding``, those that change the target in
    ``change``, the end of a release (rollback, its verification, recovery) in ``ending``.
    """

    def __init__(
        self,
        cfg: GateConfig,
        run: GateRun,
        *,
        say: Callable[[str], None] = _silent,
        golden: Callable[[], Golden] | None = None,
        checkpoint: Callable[[], None] | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        self.cfg, self.run, self.say = cfg, run, say
        # One cluster of a release in waves: a passed release waits for the runner's word.
        self.handoff = handoff
        self._golden = golden
        self.checkpoint = checkpoint or (lambda: None)
        self.objects: list[Obj] = []  # the rendered manifests, as applied
        self._rendered: Rendered | None = None
        self._api: ApiClient | None = None
        self.connection: tuple[str | None, str | None] = (None, None)  # kubeconfig, context
        # False only in a dry run into a namespace that does not exist (nothing creates it).
        self.namespace_exists = True
        # The lease while held: its renewal, the record's tracker, the steps a loss interrupts.
        self.holding = holding.Holding(run, self.note)
        self.snap: Snapshot | None = None
        self.planned: plan.Plan | None = None
        self.applied: list[Obj] = []
        self.live: list[Obj] = []  # the workloads once rolled out
        self.found: Obj | None = None  # --verify: the release record as read (never written)
        # The in-pod checks' way into each (pod, container), or why there is none: found once.
        self.shells = Shells(self)
        # The diagnostics of a failure, gathered in a thread beside the rest (diagnostics.gather).
        self.gathering: diag.Gathering | None = None

    # -- what the steps share -----------------------------------------------------------------

    def use(
        self,
        *,
        objects: list[Obj] | None = None,
        api: ApiClient | None = None,
        snap: Snapshot | None = None,
        applied: list[Obj] | None = None,
        live: list[Obj] | None = None,
    ) -> Release:
        """Take the results of earlier steps as given: a suite may override any fixture of the
        chain (``conftest.py``), and what the fixture returned is what the next steps work on.
        """
        if objects is not None:
            self.objects = objects
        if api is not None:
            self._api = api
        if snap is not None:
            self.snap = snap
        if applied is not None:
            self.applied = applied
        if live is not None:
            self.live = live
        return self

    @property
    def connected(self) -> bool:
        return self._api is not None

    @property
    def api(self) -> ApiClient:
        if self._api is None:
            raise ConfigError("the release is not connected: connect() comes first")
        return self._api

    def golden(self) -> Golden | None:
        """The golden cases, or None when there are none to load (or the file is bad)."""
        if self._golden is None:
            return None
        try:
            return self._golden()
        except ConfigError:
            return None

    @property
    def tracker(self) -> record.Tracker | None:
        """The release record's tracker while the lease is held; None without one (a dry run,
        ``--verify``, before ``lock``)."""
        return self.holding.tracker

    @contextmanager
    def step(self, phase: str | None, seconds: float) -> Iterator[float]:
        """A step's block: timed as ``phase``, every API call retried until the step's deadline
        (yielded) while the server restarts, and said on the terminal; every change confirmed
        first against the lease when its renewals have not got through (``lock.Keeper``). A
        lease lost meanwhile ends the step with LockLost."""
        deadline = time.monotonic() + seconds
        timer = self.run.phase(phase) if phase else nullcontext()
        with (
            self.holding.running(),
            timer,
            kube.patience(deadline, self._retrying, guard=self.holding.confirm),
        ):
            yield deadline

    def _retrying(self, line: str) -> None:
        self.tell(line)
        self.holding.tell_news()

    def tell(self, line: str) -> None:
        """A progress line of the gate's own (``rolloutgate: ...``)."""
        self.say(f"rolloutgate: {line}")

    def note(self, line: str) -> None:
        """A line for the terminal and the report's notes."""
        self.tell(line)
        self.run.notes.append(line)

    def record_step(self, name: str) -> None:
        """The release record says the release got to step ``name`` (when there is one)."""
        if self.tracker is not None:
            with self.step(None, self.cfg.timeouts.api):
                self.tracker.step(name)

    # -- local --------------------------------------------------------------------------------

    def render(self) -> list[Obj]:
        """The manifests as they will be applied: rendered, tagged, checked. No cluster call."""
        if self._rendered is None:  # rendered once: a Helm chart or kustomize runs a tool
            self._rendered = prepare.render(self.cfg)
        rendered = self._rendered
        self.objects = rendered.objects
        self.run.manifest_source = rendered.source
        return self.objects

    # -- the cluster --------------------------------------------------------------------------

    def connect(self, kubeconfig: str | None = None, context: str | None = None) -> ApiClient:
        """A client for the target, checked with /version (one attempt: a wrong address fails
        at once). Without arguments: the configured kubeconfig and context."""
        if kubeconfig is None and context is None:
            kubeconfig = str(self.cfg.kubeconfig) if self.cfg.kubeconfig else None
            context = self.cfg.context
        with self.run.phase("connect"):
            self._api = kube.connect(kubeconfig, context, timeout=self.cfg.request_timeout)
        self.connection = (kubeconfig, context)
        return self._api

    def prepare_kind(self, kind_path: str, cluster: str, *, offline: bool) -> None:
        """A kind node Ready and holding the manifests' images (it reaches no registry)."""
        with self.run.phase("kind"):
            kindcluster.prepare(
                self.api,
                kind_path,
                cluster,
                self.objects,
                timeout=self.cfg.timeouts.rollout,
                offline=offline,
            )

    def close(self) -> None:
        if self._api is not None:
            self._api.close()  # type: ignore[no-untyped-call]

    def ensure_namespace(self) -> str:
        """Every kind served, and the namespace created if missing (kept afterwards: deleting
        one is slow and would block the next run); in a dry run nothing is created."""
        cfg, api = self.cfg, self.api
        with self.step("namespace", cfg.timeouts.api):
            for obj in self.objects:  # UnknownKind before anything is created
                kube.resource(api, str(obj.get("apiVersion")), str(obj.get("kind")))
            exists = _namespace_exists(api, cfg.namespace)
            if not exists and cfg.verify:
                raise ClusterError(
                    f"namespace {cfg.namespace} does not exist: there is no live release to "
                    "verify (--verify creates nothing); check --namespace and the profile"
                )
            if not exists and not cfg.dry_run:
                body: Obj = {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": cfg.namespace, "labels": dict(MANAGED_BY)},
                }
                kube.create(api, body, None)
                self.run.created_namespace = True
            self.namespace_exists = exists or not cfg.dry_run
        return cfg.namespace

    def lock(self) -> Lease | None:
        """The target's Lease, held and renewed until ``unlock``, and the release record read
        and started; None in a dry run (which changes nothing, and only reads the record).
        With ``--verify`` both are only read (``holding``)."""
        return holding.lock(self)

    def unlock(self) -> None:
        """Stop renewing and release the lease. LockLost when it was lost during the run and
        nothing said so yet (another gate may have deployed meanwhile)."""
        self.holding.close()

    def snapshot(self) -> Snapshot:
        """The live objects the manifests touch, read before anything is applied: what a
        rollback restores. A release left unfinished by a gate that is gone (or ``--recover``)
        is recovered first, so the snapshot is a verified release, never the half-done one."""
        return change.snapshot(self)

    def validate(self) -> plan.Plan:
        """The plan (paused workloads refused, HPA targets without replicas, configuration
        changes no rollout picks up) and a server-side dry-run of every object; then, in a
        real run, the release record says what is about to be applied."""
        return change.validate(self)

    def apply(self) -> list[Obj]:
        """Hand spec.replicas of HPA targets over, then apply every object (server-side apply,
        change-cause on workloads); returns the applied objects. From here on the release is
        the run's to finish (``finish``)."""
        return change.apply(self)

    def take_live(self) -> list[Obj]:
        """--verify: the live release in place of an applied one (nothing is validated,
        applied or rolled back), and what the record says of it: which release is live and
        whether a gate verified it. Only what happens to its pods from now on counts."""
        return change.take_live(self)

    def rollout(self) -> list[Obj]:
        """Wait until every applied workload has rolled out the revision this run created
        (``kubectl rollout status`` rules per kind, fail-fast on broken pods); returns the
        final workloads. Deadline: ``timeouts.rollout``. With ``--verify``: the live
        workloads' current revision, as ``kubectl rollout status`` reads it."""
        pin = not self.cfg.verify
        try:
            with self.step("rollout", self.cfg.timeouts.rollout) as deadline:
                self.live = self.wait(
                    self.applied, deadline=deadline, pin=pin, baseline=self.run.baseline
                )
        except RolloutFailed as e:
            # The verdict is in: the restore starts now, the diagnostics beside it.
            ending.fail_fast(self, e)
            raise
        self.record_step("checking")
        self.run.pod_starts = self.pod_starts()
        return self.live

    def pod_starts(self) -> list[loadtime.PodStart]:
        """Each new pod's start-to-ready time (the model's load time), for the report: one LIST
        of each rolled-out workload's pods."""
        try:
            with self.step(None, self.cfg.timeouts.api):
                pods = [
                    p
                    for w in self.live
                    for p in checks.release_pods(self.api, self.cfg.namespace, w)
                ]
        except GateError as e:  # a figure for the report; the release is judged without it
            self.run.notes.append(f"the new pods' load times are not known: {e}")
            return []
        return loadtime.new_pod_starts(pods, self.run.baseline)

    def wait(
        self, objs: list[Obj], *, deadline: float, pin: bool, baseline: Baseline | None = None
    ) -> list[Obj]:
        """Wait for every workload among ``objs`` at once; ``pin``: to the generation the apply
        returned; ``baseline``: the pods before the apply or restore (see ``rollout.wait``)."""
        cfg = self.cfg
        return rollout.wait(
            self.api,
            cfg.namespace,
            workloads(objs),
            deadline=deadline,
            max_restarts=cfg.max_restarts,
            on_progress=self.say,  # its lines already read `rollout KIND/NAME: 2/3 ready, ...`
            pinned=pin,
            baseline=baseline,
            ready_grace=cfg.ready_grace,
            unschedulable_grace=cfg.unschedulable_grace,
        )

    @contextmanager
    def endpoint(self) -> Iterator[str]:
        """The release's base URL, once routing has settled and it answers: the configured
        endpoint URL once the Service's endpoints hold only ready pods of the release, else a
        port-forward to the release's ready pods behind the Service. Deadline:
        ``timeouts.endpoint``."""
        with ExitStack() as stack:
            with self.step("endpoint", self.cfg.timeouts.endpoint) as deadline:
                url = stack.enter_context(
                    checks.open_endpoint(
                        self.api,
                        self.cfg,
                        self.objects,
                        self.live,
                        deadline=deadline,
                        say=self.tell,
                        note=self.note,
                    )
                )
                with client_for(url, self.golden(), self.cfg) as probe:
                    wait_answering(probe, deadline=deadline)
            yield url

    @contextmanager
    def replicas(self, golden: Golden | None) -> Iterator[dict[str, HttpClient]]:
        """A client per pod of the rolled-out release behind the Service, keyed by pod name,
        each through its own port-forward, each answering. Deadline: ``timeouts.endpoint``."""
        with ExitStack() as stack:
            with self.step(None, self.cfg.timeouts.endpoint) as deadline:
                urls = stack.enter_context(
                    checks.open_replicas(
                        self.api, self.cfg, self.objects, self.live, deadline=deadline
                    )
                )
                clients = {
                    pod: stack.enter_context(client_for(url, golden, self.cfg, forwarded=True))
                    for pod, url in urls.items()
                }
                fanout.each(clients, lambda client: wait_answering(client, deadline=deadline))
            yield clients

    def warm_up(self, replicas: Mapping[str, HttpClient], request: Request) -> dict[str, Latency]:
        """``warmup_requests`` of ``request`` to each replica, untimed by the latency budget
        (their latencies go into the report: the first is what a new pod's first user waits)."""
        n = self.cfg.warmup_requests
        found = warmup.warm_up(replicas, request, n) if n else {}
        self.run.warmup = found
        return found

    def pods(self) -> dict[str, list[Obj]]:
        """The pods of each rolled-out workload's current revision, by ``Kind/name``."""
        with self.step(None, self.cfg.timeouts.api):
            return {ref(w): checks.release_pods(self.api, self.cfg.namespace, w) for w in self.live}

    def serving_container(self) -> str:
        """The container the in-pod checks run in: the ``container`` setting, else the one
        whose image ``--image-tag`` sets (ConfigError names the candidates). No cluster call."""
        return inpod.serving_container(workloads(self.objects), self.cfg.images, self.cfg.container)

    def in_pod(self, pods: list[Obj], container: str | None = None) -> InPod:
        """A shell next to the serving process of a running pod of the release, for the in-pod
        checks (``shells.Shells.get``). Deadline: ``timeouts.endpoint``."""
        return self.shells.get(pods, container or self.serving_container())

    def prefetch_in_pod(self) -> None:
        """Find ``in_pod``'s way in, in a thread, beside the checks that ask every replica."""
        self.shells.prefetch()

    def pod_baseline(self, objs: list[Obj]) -> Baseline:
        """The workloads' pods (every revision) as they are now: taken just before the apply or
        the restore, so that only what happens afterwards is held against the release."""
        taken = datetime.now(UTC)
        found: dict[str, Obj] = {}
        for workload in workloads(objs):
            selector = viewer_for(workload).pod_selector(workload)
            listing = kube.list_objects(
                self.api, "v1", "Pod", self.cfg.namespace, label_selector=selector
            )
            for pod in listing.get("items") or []:
                found[str(pod.get("metadata", {}).get("uid"))] = pod
        return Baseline.of(found.values(), taken)

    # -- the end ------------------------------------------------------------------------------

    def finish(self) -> None:
        """The end of an applied release: roll back and verify when the run failed."""
        ending.finish(self)

    def restore_now(self) -> None:
        """On an interrupt: submit the restore at once (``finish`` waits and verifies)."""
        ending.restore_now(self)

    def recover(self) -> None:
        """Restore the last verified release from the record and prove it healthy."""
        ending.recover(self)

    def diagnostics(self) -> str:
        """Events, pod states, logs, rollout history of each workload, as text; never raises."""
        return diag.of_release(self)

    def gather_diagnostics(self) -> str | None:
        """Start gathering the diagnostics in a thread (once); their text if already there.
        Never waits: the run goes on, and ``finish`` puts them in the report."""
        return diag.gather(self).ready()


def _namespace_exists(api: ApiClient, name: str) -> bool:
    """Whether the namespace exists. Credentials bound only to a Role in it may not read
    Namespaces (cluster-scoped); a RoleBinding exists only inside an existing namespace, so being
    refused the read means it exists (a missing one fails the next call with 404 anyway)."""
    try:
        return kube.get(api, "v1", "Namespace", name, None) is not None
    except Forbidden:
        return True
