"""The gate's steps, as the plugin's fixtures call them, and the end of a release.

Each function here is one step over the cluster layer (``kube``, ``apply``, ``lock``,
``snapshot``, ``rollback``, ``rollout``, ``endpoint``, ``diagnostics``); the fixtures in
``fixtures.py`` only wire them to pytest. Nothing here asserts: checks are the suite's tests,
except the rollback's own verification, which must run after the tests are over
(``finish_release``: roll back when the run failed, and prove the restored release healthy).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import NoReturn

from kubernetes.client import ApiClient

from rolloutgate import kube, manifests
from rolloutgate.checks import cases, credentials
from rolloutgate.checks.cases import Golden, HttpClient
from rolloutgate.checks.client import EndpointUnreachable, V2Client, describe, wait_answering
from rolloutgate.checks.podhistory import Baseline
from rolloutgate.config import GateConfig
from rolloutgate.errors import ConfigError, Forbidden, GateError, LockLost, RollbackFailed
from rolloutgate.kube import portforward
from rolloutgate.objects import MANAGED_BY, Obj, name_of, ref
from rolloutgate.release import (
    apply,
    autoscale,
    diagnostics,
    dryrun,
    lock,
    plan,
    record,
    rollback,
    rollout,
    snapshot,
)
from rolloutgate.release.report import GateRun, Rollback
from rolloutgate.workloads import image_names, is_workload, kinds_text, viewer_for, workloads


def prepare(cfg: GateConfig) -> manifests.Rendered:
    """The manifests rendered from their source, with the image tag set. Local only: bad
    input fails before any API call."""
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


def check_live(snap: snapshot.Snapshot) -> None:
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


def check_kinds(api: ApiClient, objs: list[Obj]) -> None:
    """UnknownKind for a kind the server does not serve, before anything is created."""
    for obj in objs:
        kube.resource(api, str(obj.get("apiVersion")), str(obj.get("kind")))


def ensure_namespace(api: ApiClient, name: str, *, create: bool) -> bool:
    """Create the namespace if it is missing (and ``create``); True if this call created it."""
    if namespace_exists(api, name):
        return False
    if not create:
        return False
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
    }
    kube.create(api, body, None)
    return True


def namespace_exists(api: ApiClient, name: str) -> bool:
    """Whether the namespace exists. Credentials bound only to a Role in it may not read
    Namespaces (cluster-scoped); a RoleBinding exists only inside an existing namespace, so being
    refused the read means it exists (a missing one fails the next call with 404 anyway)."""
    try:
        return kube.get(api, "v1", "Namespace", name, None) is not None
    except Forbidden:
        return True


def plan_release(
    api: ApiClient,
    cfg: GateConfig,
    objs: list[Obj],
    snap: snapshot.Snapshot,
    write: Callable[[str], None],
    *,
    namespace_exists: bool = True,
) -> plan.Plan:
    """What to validate and apply (``plan.make``): ConfigError for a paused workload; HPA
    targets without replicas; configuration changes no rollout picks up, said in the progress
    and the plan's notes (the caller puts them in the report)."""
    planned = plan.make(
        api,
        cfg.namespace,
        objs,
        snap,
        restart_on_config_change=cfg.restart_on_config_change,
        namespace_exists=namespace_exists,
    )
    for workload, hpa in planned.autoscaled.items():
        planned.notes.insert(
            0,
            f"{workload}: replicas left to {autoscale.HPA_KIND}/{hpa} "
            "(applied without spec.replicas)",
        )
    for note in planned.notes:
        write(f"rolloutgate: {note}")
    return planned


def validate_release(
    api: ApiClient, cfg: GateConfig, objs: list[Obj], *, namespace_exists: bool, diff: bool
) -> tuple[list[str], str | None]:
    """Server-side dry-run of every object (ConfigError naming each failure); with ``diff`` the
    diff against the live objects too. Returns notes for the report, and the diff.

    Into a namespace that does not exist (only in a dry run: a real run creates it first) as
    far as the server allows, see ``dryrun``.
    """
    if not namespace_exists:
        found = dryrun.validate(api, cfg.namespace, objs)
        return found.notes, (found.diff if diff else None)
    apply.validate(api, cfg.namespace, objs)
    return [], (apply.diff(api, cfg.namespace, objs) if diff else None)


def apply_release(api: ApiClient, cfg: GateConfig, planned: plan.Plan, holder: str) -> list[Obj]:
    """Hand spec.replicas of HPA targets over first (``autoscale.handover``), then apply."""
    for obj in workloads(planned.objects):
        if ref(obj) in planned.autoscaled:
            autoscale.handover(api, cfg.namespace, obj)
    return apply.apply(api, cfg.namespace, planned.objects, change_cause=change_cause(cfg, holder))


def lock_name(cfg: GateConfig, objs: list[Obj]) -> str:
    """One lease per target: ``rolloutgate-<first workload>`` unless configured."""
    if cfg.lock_name:
        return cfg.lock_name
    return lock.lease_name(name_of(workloads(objs)[0]))


def change_cause(cfg: GateConfig, holder: str) -> str:
    tag = cfg.image_tag or "as in the manifests"
    return f"rolloutgate: image tag {tag} ({holder})"


def wait_rollouts(
    api: ApiClient,
    cfg: GateConfig,
    objs: list[Obj],
    *,
    deadline: float,
    write: Callable[[str], None],
    pin: bool,
    baseline: Baseline | None = None,
) -> list[Obj]:
    """Wait for every workload among `objs` at once; ``pin``: to the generation the apply
    returned; ``baseline``: the pods before the apply or restore (see ``rollout.wait``)."""
    return rollout.wait(
        api,
        cfg.namespace,
        workloads(objs),
        deadline=deadline,
        max_restarts=cfg.max_restarts,
        on_progress=write,  # its lines already read `rollout KIND/NAME: 2/3 ready, ...`
        pinned=pin,
        baseline=baseline,
        ready_grace=cfg.ready_grace,
        unschedulable_grace=cfg.unschedulable_grace,
    )


def pod_baseline(api: ApiClient, namespace: str, objs: list[Obj]) -> Baseline:
    """The workloads' pods (every revision) as they are now: taken just before the apply or
    the restore, so that only what happens afterwards is held against the release."""
    taken = datetime.now(UTC)
    found: dict[str, Obj] = {}
    for workload in workloads(objs):
        selector = viewer_for(workload).pod_selector(workload)
        listing = kube.list_objects(api, "v1", "Pod", namespace, label_selector=selector)
        for pod in listing.get("items") or []:
            found[str(pod.get("metadata", {}).get("uid"))] = pod
    return Baseline.of(found.values(), taken)


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


@contextmanager
def open_endpoint(
    api: ApiClient, cfg: GateConfig, objs: list[Obj], *, deadline: float
) -> Iterator[str]:
    """The base URL of the release: the configured endpoint URL, else a port-forward."""
    url = credentials.endpoint_url(cfg)
    if url is not None:
        yield url  # without its userinfo: the session (``v2_client``) carries the credentials
        return
    service, port = service_and_port(cfg, objs)
    with portforward.port_forward(api, cfg.namespace, service, port, deadline=deadline) as url:
        yield url


@contextmanager
def open_replicas(
    api: ApiClient, cfg: GateConfig, objs: list[Obj], live: list[Obj], *, deadline: float
) -> Iterator[dict[str, str]]:
    """A base URL per pod of the release's current revision behind the model's Service: a
    port-forward straight to each pod, so every replica is checked, not only the one a
    connection happens to reach."""
    service, port = service_and_port(cfg, objs)
    pods = [p for w in live for p in release_pods(api, cfg.namespace, w)]
    with portforward.pod_forwards(
        api, cfg.namespace, service, port, pods, deadline=deadline
    ) as urls:
        yield urls


def release_pods(api: ApiClient, namespace: str, workload: Obj) -> list[Obj]:
    """The pods of the workload's current revision."""
    return viewer_for(workload).release_pods(api, namespace, workload)


def collect_diagnostics(api: ApiClient, cfg: GateConfig, objs: list[Obj]) -> str:
    """Events, pod states, logs, rollout history of each workload, as text.

    Never raises: diagnostics accompany a failure and must not replace it. A restarting API
    server is waited for DIAGNOSTICS_PATIENCE_S at most: the rollback comes next.
    """
    parts = []
    with kube.patience(time.monotonic() + DIAGNOSTICS_PATIENCE_S):
        for workload in workloads(objs):
            parts.append(_diagnostics_of(api, cfg, workload))
    return "\n".join(parts)


# How long the diagnostics of a failure wait for a restarting API server, all calls together.
DIAGNOSTICS_PATIENCE_S = 20.0


def _diagnostics_of(api: ApiClient, cfg: GateConfig, workload: Obj) -> str:
    try:
        return diagnostics.render(diagnostics.collect(api, cfg.namespace, workload))
    except Exception as e:  # a hook calls this: an error here would be an INTERNALERROR
        return (
            f"diagnostics of {ref(workload)} in {cfg.namespace} unavailable: "
            f"{type(e).__name__}: {e}"
        )


def finish_release(
    api: ApiClient,
    cfg: GateConfig,
    run: GateRun,
    snap: snapshot.Snapshot,
    objs: list[Obj],
    golden: Callable[[], Golden],
    write: Callable[[str], None],
    *,
    tracker: record.Tracker | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> None:
    """The end of an applied release: nothing to do when the run passed; else roll back
    (unless disabled) and verify, recording the outcome in ``run.rollback``.

    An interrupted run restores first (a cancelled CI job may be killed seconds later);
    a failed run has its diagnostics collected before the failing pods are replaced.
    ``golden`` loads the golden cases (ConfigError: the rollback is checked without them).
    ``tracker``: the release record, updated at each step; a lost lease skips the restore
    (LockLost: another gate owns the target). ``checkpoint`` writes the report as it is
    (rollback in progress) before the restore. RollbackFailed when the restore or its checks
    fail.
    """
    rb = run.rollback
    if tracker is not None:
        tracker.interrupt_on_loss = False
    if not run.failed:
        rb.outcome = "not needed"
        if tracker is not None:
            with kube.patience(time.monotonic() + cfg.timeouts.api):
                tracker.verified("verified", objs, cfg.image_tag)
        return
    rb.needed = True
    if tracker is not None and tracker.lost:
        _lock_lost(rb, tracker, write)
    if run.diagnostics is None and run.interrupted is None:
        run.diagnostics = collect_diagnostics(api, cfg, objs)
    if not cfg.rollback:
        rb.enabled = False
        rb.outcome = (
            f"disabled ({cfg.sources.get('rollback')}): the failed release is left in place"
        )
        if tracker is not None:
            with kube.patience(time.monotonic() + cfg.timeouts.api):
                tracker.step("left-failed")
        return
    try:
        checks: Golden | None = golden()
    except ConfigError as e:
        checks = None
        run.notes.append(f"rollback checked without golden cases: {e}")
    with signals_deferred(write):
        deadline = time.monotonic() + cfg.timeouts.rollback
        try:
            with kube.patience(deadline, lambda m: write(f"rolloutgate: {m}")):
                if run.early_restore is None:  # else restore_now did these steps
                    if tracker is not None:
                        try:
                            tracker.ensure_held()  # read fresh: never restore over another gate
                        except LockLost:
                            _lock_lost(rb, tracker, write)
                        tracker.step("rolling-back")
                    rb.outcome = f"in progress: restoring the snapshot (previous tag {snap.tag()})"
                    if checkpoint is not None:
                        checkpoint()
                try:
                    roll_back(api, cfg, run, snap, objs, checks, write)
                except RollbackFailed:
                    if tracker is not None:
                        tracker.step("rollback-failed")
                    raise
                if tracker is not None:
                    restored = [live for _manifest, live in snap.objects if live is not None]
                    tracker.verified("rolled-back", restored, snap.tag())
        finally:
            write(f"rolloutgate: {rb.outcome}")


def restore_now(
    api: ApiClient,
    cfg: GateConfig,
    run: GateRun,
    snap: snapshot.Snapshot,
    objs: list[Obj],
    write: Callable[[str], None],
    *,
    tracker: record.Tracker | None = None,
    checkpoint: Callable[[], None] | None = None,
) -> None:
    """The restore of an interrupted run, submitted at once.

    Called from the interrupt hook: before pytest formats the interrupt's traceback (with every
    frame's arguments) and tears the fixtures down, which together took ~2 s here, a good part
    of what a cancelled CI job has before SIGKILL. Writes the record's step and the report
    (rollback in progress) first. The wait and the verification stay with ``finish_release``
    at teardown, which skips the restore it finds done (``run.early_restore``). A failure here
    is only noted: ``finish_release`` restores again, and reports its own failure.
    """
    rb = run.rollback
    if not cfg.rollback or run.early_restore is not None:
        return
    if tracker is not None:
        tracker.interrupt_on_loss = False
        if tracker.lost:
            return  # finish_release says why nothing is restored
    deadline = time.monotonic() + cfg.timeouts.rollback
    previous = snap.tag()
    try:
        with kube.patience(deadline, lambda m: write(f"rolloutgate: {m}")):
            if tracker is not None:
                tracker.ensure_held()
                tracker.step("rolling-back")
            rb.needed = True
            rb.outcome = f"in progress: restoring the snapshot (previous tag {previous})"
            if checkpoint is not None:
                checkpoint()
            write(f"rollback: restoring the snapshot on the interrupt (previous tag {previous})")
            with run.phase("rollback"):
                baseline = pod_baseline(api, cfg.namespace, objs)
                rb.actions = rollback.restore(api, cfg.namespace, snap, deadline=deadline)
    except GateError as e:
        run.notes.append(f"the restore on the interrupt failed ({e}); tried again at teardown")
        return
    run.early_restore = baseline
    if run.interrupted_at is not None:
        rb.restored_after_interrupt_s = round(time.monotonic() - run.interrupted_at, 3)


def _lock_lost(rb: Rollback, tracker: record.Tracker, write: Callable[[str], None]) -> NoReturn:
    rb.outcome = (
        f"skipped: {tracker.lost_reason}. Another gate owns the target now: restoring this "
        "gate's snapshot would overwrite its release"
    )
    write(f"rolloutgate: rollback {rb.outcome}")
    raise LockLost(f"lease lost: {tracker.lost_reason}; rollback skipped, target left as it is")


def roll_back(
    api: ApiClient,
    cfg: GateConfig,
    run: GateRun,
    snap: snapshot.Snapshot,
    objs: list[Obj],
    golden: Golden | None,
    write: Callable[[str], None],
) -> None:
    """Restore the snapshot, wait for it, and prove it healthy; the outcome goes in ``run``.

    Per object: what existed is restored, what this release created is deleted (and must be
    gone). The wait is on exactly the workloads that exist after the restore; with none (no
    workload existed before), there is nothing to serve and the deletions are the proof. The
    endpoint is checked when what serves it existed before (see ``_endpoint_restored``).
    RollbackFailed when the restore, its rollout or its checks fail.
    """
    rb = run.rollback
    rb.attempted = True
    deadline = time.monotonic() + cfg.timeouts.rollback
    previous = snap.tag()
    write(f"rollback: restoring the snapshot taken before apply (previous tag {previous})")
    checks = "nothing to check"
    try:
        with run.phase("rollback"):
            # The restored release is judged on what happens after the restore only.
            if run.early_restore is not None:  # submitted by restore_now on the interrupt
                baseline = run.early_restore
            else:
                baseline = pod_baseline(api, cfg.namespace, objs)
                rb.actions = rollback.restore(api, cfg.namespace, snap, deadline=deadline)
                if run.interrupted_at is not None:
                    rb.restored_after_interrupt_s = round(time.monotonic() - run.interrupted_at, 3)
            for _manifest, before in snap.objects:
                if before is not None and is_workload(before):
                    rb.actions += viewer_for(before).after_restore(
                        api, cfg.namespace, before, deadline=deadline
                    )
            left = _still_present(api, cfg.namespace, snap.created())
        if left:
            raise RollbackFailed(f"objects this release created are still present: {left}")
        restored = workloads(snap.existing())
        problems: list[str] = []
        if restored:
            with run.phase("rollback_rollout"):
                live = wait_rollouts(
                    api, cfg, restored, deadline=deadline, write=write, pin=False, baseline=baseline
                )
            checks = "rollout of " + ", ".join(ref(w) for w in restored)
            missing = _endpoint_restored(cfg, objs, snap)
            if missing is None:
                with run.phase("rollback_verify"):
                    problems = verify_endpoint(api, cfg, objs, live, golden, deadline)
                checks = "health and golden checks" if golden else "health checks"
            else:
                run.notes.append(f"rollback: endpoint not checked: {missing}")
    except RollbackFailed as e:
        rb.outcome = f"rollback to {previous} FAILED: {e}"
        raise
    except Exception as e:  # whatever broke, the outcome must be recorded
        rb.outcome = f"rollback to {previous} FAILED: {type(e).__name__}: {e}"
        raise RollbackFailed(rb.outcome) from e
    if problems:
        rb.outcome = f"rolled back to {previous}, but it FAILS its checks: " + "; ".join(problems)
        raise RollbackFailed(rb.outcome)
    rb.verified = True
    created = len(snap.created())
    removed = f"removed the {created} object(s) it created, verified gone" if created else ""
    if not restored:
        rb.outcome = f"no workload existed before the release: {removed or 'nothing to remove'}"
        return
    rb.outcome = f"rolled back to {previous}, verified ({checks} passed)" + (
        f"; {removed}" if removed else ""
    )


def _endpoint_restored(cfg: GateConfig, objs: list[Obj], snap: snapshot.Snapshot) -> str | None:
    """None when the rollback's endpoint can be checked; else why not: the Service it goes
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


def v2_client(cfg: GateConfig, url: str, model: str) -> V2Client:
    """The V2 client of the checks, the endpoint wait and the rollback's verification alike:
    one session with the configured headers and the endpoint URL's credentials."""
    return V2Client(
        url,
        model,
        timeout=cfg.request_timeout,
        health=cfg.health,
        session=credentials.session(cfg),
    )


def verify_endpoint(
    api: ApiClient,
    cfg: GateConfig,
    objs: list[Obj],
    live: list[Obj],
    golden: Golden | None,
    deadline: float,
) -> list[str]:
    """The restored release's problems ([] = healthy): the endpoint answers its health checks,
    and every replica passes health and golden checks on its own."""
    problems: list[str] = []
    with (
        open_endpoint(api, cfg, objs, deadline=deadline) as url,
        cases.client_for(url, golden, cfg) as client,
    ):
        settle = min(deadline, time.monotonic() + cfg.timeouts.endpoint)
        problems += [f"endpoint {p}" for p in _settled_health(client, settle)]
    with open_replicas(api, cfg, objs, live, deadline=deadline) as urls:
        if not urls:
            problems.append("no pod of the restored release behind the Service")
        for pod, pod_url in urls.items():
            with cases.client_for(pod_url, golden, cfg) as client:
                wait_answering(client, deadline=deadline)
                found = cases.verify(client, golden) if golden is not None else _health(client)
            problems += [f"pod {pod}: {p}" for p in found]
    return problems


def _settled_health(client: HttpClient, deadline: float) -> list[str]:
    """The endpoint's health problems once its routing has settled ([] = healthy).

    Right after a rollout a Service or an ingress may still send a request to a pod that is
    shutting down (endpoints and proxies converge asynchronously, within seconds): found
    through an endpoint URL as 502s or refused connections. Failures are asked again until
    `deadline`; the last ones are the verdict.
    """
    wait_answering(client, deadline=deadline)
    while True:
        try:
            problems = _health(client)
        except EndpointUnreachable as e:
            problems = [str(e)]
        if not problems or time.monotonic() >= deadline:
            return problems
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _health(client: HttpClient) -> list[str]:
    """The server-wide checks (live, ready): without a golden file there is no model name."""
    problems = []
    for name in ("live", "ready"):
        response = client.health_check(name)
        if response is not None and not response.ok:
            problems.append(f"health {name}: {describe(response)}")
    return problems


def _still_present(api: ApiClient, namespace: str, objs: list[Obj]) -> list[str]:
    """Objects of the manifests that exist and are not being deleted."""
    left = []
    for obj in objs:
        live = kube.get(api, obj["apiVersion"], obj["kind"], name_of(obj), namespace)
        if live is not None and not live["metadata"].get("deletionTimestamp"):
            left.append(ref(obj))
    return left


@contextmanager
def signals_deferred(write: Callable[[str], None]) -> Iterator[None]:
    """Keep Ctrl+C and SIGTERM from cutting a rollback short; say so when one arrives.

    A half-done rollback is the worst state to leave a service in. SIGKILL still ends the run.
    Signal handlers can only be set from the main thread; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, _frame: FrameType | None) -> None:
        write(
            f"rolloutgate: {signal.Signals(signum).name} received during rollback; "
            "finishing the rollback first (SIGKILL aborts it)"
        )

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
