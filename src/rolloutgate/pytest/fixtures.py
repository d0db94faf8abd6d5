"""The gate's fixtures: each one state change, ordered only by their dependencies.

The chain (tests/plugin/test_chain.py checks it against the fixtures' real dependencies and
against docs/gate.md)::

    rolloutgate_config → rolloutgate_manifests → rolloutgate_api → rolloutgate_namespace
      → rolloutgate_lock → rolloutgate_snapshot → rolloutgate_release → rolloutgate_rollout
      → rolloutgate_endpoint → rolloutgate_replicas

``rolloutgate_v2`` is the endpoint's client (no change of its own), ``rolloutgate_replicas`` a
client per replica. ``rolloutgate_release`` registers the end of the release before it applies
anything: at session end, if any test failed or errored (setup errors of gate fixtures
included) or the run was interrupted, ``gate.finish_release`` restores the snapshot, waits
for it and re-runs the health and golden checks against it.

The cluster layer is imported inside the fixtures, not here: installing rolloutgate costs a
pytest run that uses none of them nothing but this module.
"""

from __future__ import annotations

import _thread
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

from rolloutgate.config import GateConfig
from rolloutgate.errors import ConfigError, GateError
from rolloutgate.objects import Obj
from rolloutgate.pytest.hooks import KIND_OFFLINE, STATE, GateHooks, fail

if TYPE_CHECKING:
    from kubernetes.client import ApiClient
    from testinfra.host import Host  # type: ignore[import-untyped]

    from rolloutgate.checks.cases import Case, Golden, HttpClient
    from rolloutgate.checks.client import V2Client
    from rolloutgate.checks.podhistory import Restarts
    from rolloutgate.release.lock import Lease
    from rolloutgate.release.record import Tracker
    from rolloutgate.release.snapshot import Snapshot

# The release record of this run (rolloutgate.release.record.Tracker), set once the lease is held.
TRACKER = pytest.StashKey["Tracker"]()

# Fixtures whose tests need a cluster (rolloutgate_config, _golden, _manifests and _container
# do not).
GATE_FIXTURES = frozenset(
    {
        "rolloutgate_api",
        "rolloutgate_namespace",
        "rolloutgate_lock",
        "rolloutgate_snapshot",
        "rolloutgate_release",
        "rolloutgate_rollout",
        "rolloutgate_endpoint",
        "rolloutgate_v2",
        "rolloutgate_pods",
        "rolloutgate_replicas",
        "rolloutgate_workload_pods",
        "rolloutgate_restarts",
        "rolloutgate_pod_host",
        "rolloutgate_case",
    }
)


def _state(request: pytest.FixtureRequest) -> GateHooks:
    return request.config.stash[STATE]


def _patience(request: pytest.FixtureRequest, seconds: float) -> Any:
    """Retry a restarting API server for up to `seconds` in the block (kube.patience), saying
    so on the terminal."""
    from rolloutgate import kube

    write = _state(request).writer()
    return kube.patience(time.monotonic() + seconds, lambda m: write(f"rolloutgate: {m}"))


def _tracker(request: pytest.FixtureRequest) -> Tracker | None:
    return request.config.stash.get(TRACKER, None)


@pytest.fixture(scope="session")
def rolloutgate_config(pytestconfig: pytest.Config) -> GateConfig:
    """Session. The resolved settings (``rolloutgate.config.GateConfig``); ``cluster`` is None
    when no cluster was given. Needs no cluster."""
    return pytestconfig.stash[STATE].cfg


@pytest.fixture(scope="session")
def rolloutgate_golden(pytestconfig: pytest.Config) -> Golden:
    """Session. The parsed golden file (``rolloutgate.checks.cases.Golden``)."""
    try:
        return pytestconfig.stash[STATE].golden()
    except ConfigError as e:
        fail(e)


@pytest.fixture(scope="session")
def rolloutgate_manifests(
    rolloutgate_config: GateConfig, request: pytest.FixtureRequest
) -> list[Obj]:
    """Session. The manifests as they will be applied: loaded, image tag set. No cluster call,
    so bad input fails here before anything changes."""
    from rolloutgate.release import steps as gate

    try:
        rendered = gate.prepare(rolloutgate_config)
    except ConfigError as e:
        fail(e)
    state = _state(request)
    state.manifests = rendered.objects
    if state.run is not None:
        state.run.manifest_source = rendered.source
    return rendered.objects


@pytest.fixture(scope="session")
def rolloutgate_api(
    request: pytest.FixtureRequest,
    rolloutgate_config: GateConfig,
    rolloutgate_manifests: list[Obj],
) -> Iterator[ApiClient]:
    """Session. A ``kubernetes.client.ApiClient`` for the target, checked with /version.
    ``--cluster=kind`` creates a throwaway cluster through pytest-kind's ``kind_cluster``."""
    from rolloutgate import kube

    state, cfg = _state(request), rolloutgate_config
    run = state.require_run()
    kubeconfig = str(cfg.kubeconfig) if cfg.kubeconfig else None
    context = cfg.context
    if cfg.kind:
        cluster = _kind_cluster(request)
        kubeconfig, context = str(cluster.kubeconfig_path), None
    try:
        with run.phase("connect"):
            api = kube.connect(kubeconfig, context, timeout=cfg.request_timeout)
        if cfg.kind:
            from rolloutgate.kube import kindcluster

            # The node must be Ready and hold the manifests' images: it reaches no registry.
            with run.phase("kind"):
                kindcluster.prepare(
                    api,
                    str(cluster.kind_path),
                    cluster.name,
                    rolloutgate_manifests,
                    timeout=cfg.timeouts.rollout,
                    offline=request.config.stash.get(KIND_OFFLINE, False),
                )
    except GateError as e:
        fail(e)
    state.api, state.connection = api, (kubeconfig, context)
    yield api
    api.close()  # type: ignore[no-untyped-call]


def _kind_cluster(request: pytest.FixtureRequest) -> Any:
    """pytest-kind's cluster (created, or reused when one of that name runs); a failed
    `kind create cluster` is a ClusterError with kind's exit code, not a traceback."""
    import subprocess

    from rolloutgate.errors import ClusterError

    try:
        return request.getfixturevalue("kind_cluster")
    except subprocess.CalledProcessError as e:
        fail(
            ClusterError(
                f"`{' '.join(map(str, e.cmd))}` exited {e.returncode} (its output is above); "
                "if the node container exited, `docker logs <name>-control-plane` says why"
            )
        )


@pytest.fixture(scope="session")
def rolloutgate_namespace(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_config: GateConfig,
    rolloutgate_manifests: list[Obj],
) -> str:
    """Session. The namespace name; created if missing (kept afterwards: deleting a namespace is
    slow and would block the next run). In a dry run nothing is created."""
    from rolloutgate.release import steps as gate

    run, cfg = _state(request).require_run(), rolloutgate_config
    try:
        with run.phase("namespace"), _patience(request, cfg.timeouts.api):
            gate.check_kinds(rolloutgate_api, rolloutgate_manifests)
            run.created_namespace = gate.ensure_namespace(
                rolloutgate_api, cfg.namespace, create=not cfg.dry_run
            )
            if cfg.dry_run:
                state = _state(request)
                state.namespace_exists = gate.namespace_exists(rolloutgate_api, cfg.namespace)
    except GateError as e:
        fail(e)
    return cfg.namespace


@pytest.fixture(scope="session")
def rolloutgate_lock(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_namespace: str,
    rolloutgate_config: GateConfig,
    rolloutgate_manifests: list[Obj],
) -> Iterator[Lease | None]:
    """Session. The target's ``coordination.k8s.io/v1`` Lease, held (and renewed) for the whole
    run and released at the end; None in a dry run, which changes nothing."""
    from rolloutgate.release import lock, record
    from rolloutgate.release import steps as gate

    state = _state(request)
    run, cfg, api = state.require_run(), rolloutgate_config, rolloutgate_api
    write = state.writer()
    name = gate.lock_name(cfg, rolloutgate_manifests)
    if cfg.dry_run:
        try:
            with _patience(request, cfg.timeouts.api):
                found = record.read(api, rolloutgate_namespace, record.record_name(name))
        except GateError as e:
            fail(e)
        if record.unfinished(found):
            assert found is not None
            run.notes.append(f"unfinished {record.describe(found)}: a real run recovers it first")
        yield None
        return
    try:
        with run.phase("lock"), _patience(request, cfg.timeouts.lock):
            lease = lock.acquire(
                api,
                rolloutgate_namespace,
                name,
                holder=lock.default_holder(),
                duration_s=int(cfg.timeouts.lease),
                deadline=time.monotonic() + cfg.timeouts.lock,
                gone=lambda live: record.holder_gone(api, rolloutgate_namespace, name, live),
                on_wait=lambda m: write(f"rolloutgate: {m}"),
            )
        tracker = record.Tracker(api, rolloutgate_namespace, lease, api_timeout=cfg.timeouts.api)
        with run.phase("record"), _patience(request, cfg.timeouts.api):
            found = tracker.load()
            if record.unfinished(found):
                assert found is not None
                text = (
                    f"found an unfinished {record.describe(found)}; that gate is gone or lost its "
                    f"lease (this gate holds it now). Restore target: the last verified release: "
                    f"{record.describe_target(found.get('target'))}"
                )
                write(f"rolloutgate: {text}")
                run.notes.append(text)
            tracker.start(cfg.image_tag)
    except GateError as e:
        fail(e)

    def on_lost(reason: str) -> None:
        # From the renewal thread: stop the release where it is (a change made now would land
        # on another gate's target); the rollback is skipped for the same reason.
        # Not written to the terminal from here: the terminal belongs to the main thread.
        run.lock_lost = reason
        if tracker.interrupt_on_loss:
            _thread.interrupt_main()

    tracker.on_lost = on_lost
    request.config.stash[TRACKER] = tracker

    def release_lease() -> None:
        with _patience(request, cfg.timeouts.api):
            lock.release(api, lease)

    with ExitStack() as stack:
        stack.callback(release_lease)
        lost = stack.enter_context(lock.keep(api, lease, on_lost=tracker.lose))
        yield lease
    if lost and run.lock_lost is None:
        run.notes.append(f"lease {name} was lost during the run: {lost[0]}")
        pytest.fail(
            f"lease {rolloutgate_namespace}/{name} was lost during the run, another gate may "
            f"have deployed meanwhile: {lost[0]}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def rolloutgate_snapshot(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_namespace: str,
    rolloutgate_manifests: list[Obj],
    rolloutgate_lock: Lease | None,
) -> Snapshot:
    """Session. The live objects the manifests touch, read before anything is applied
    (``rolloutgate.release.snapshot.Snapshot``); what a rollback restores."""
    from rolloutgate.release import record, recovery, snapshot
    from rolloutgate.release import steps as gate

    state = _state(request)
    run, cfg = state.require_run(), state.cfg
    tracker = _tracker(request)
    try:
        if tracker is not None and (cfg.recover or record.unfinished(tracker.found)):
            # A gate that died left its release unfinished (or --recover): restore the last
            # verified release and prove it, before this run's snapshot, so the snapshot is
            # a verified release, never the half-done one.
            recovery.recover(rolloutgate_api, cfg, run, tracker, state.golden, state.writer())
        elif cfg.recover:
            raise ConfigError("--recover needs the release record, and a dry run reads only")
        with run.phase("snapshot"), _patience(request, cfg.timeouts.api):
            snap = snapshot.take(rolloutgate_api, rolloutgate_namespace, rolloutgate_manifests)
        gate.check_live(snap)
    except GateError as e:
        fail(e)
    run.previous_tag = snap.tag()
    run.first_deploy = snap.first_deploy
    return snap


@pytest.fixture(scope="session")
def rolloutgate_release(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_namespace: str,
    rolloutgate_manifests: list[Obj],
    rolloutgate_snapshot: Snapshot,
    rolloutgate_config: GateConfig,
) -> list[Obj]:
    """Session. Validates every manifest (server-side dry-run), then applies them all and
    returns the applied objects. In a dry run: prints the diff and skips what depends on it.

    Teardown (``gate.finish_release``): if any test failed or errored, or the run was
    interrupted, restores the snapshot, waits for it and re-runs the health and golden checks;
    a failing rollback fails the session.
    """
    from rolloutgate.release import lock
    from rolloutgate.release import steps as gate

    state = _state(request)
    run, cfg, api = state.require_run(), rolloutgate_config, rolloutgate_api
    objs = rolloutgate_manifests
    write = state.writer()
    tracker = _tracker(request)
    if cfg.recover:
        pytest.skip(
            "recovery run (--recover): the last verified release was restored and verified; "
            "nothing new is deployed"
        )
    exists = state.namespace_exists
    try:
        with run.phase("plan"), _patience(request, cfg.timeouts.api):
            planned = gate.plan_release(
                api, cfg, objs, rolloutgate_snapshot, write, namespace_exists=exists
            )
        run.notes.extend(planned.notes)
        with run.phase("validate"), _patience(request, cfg.timeouts.api):
            notes, run.dry_run_diff = gate.validate_release(
                api, cfg, planned.objects, namespace_exists=exists, diff=cfg.dry_run
            )
        run.notes.extend(notes)
        if tracker is not None and not cfg.dry_run:
            # Written before anything changes: a gate killed from here on leaves a record the
            # next gate recovers from.
            with _patience(request, cfg.timeouts.api):
                tracker.ensure_held()
                tracker.begin(cfg.image_tag, rolloutgate_snapshot, planned.objects)
            tracker.interrupt_on_loss = True
    except GateError as e:
        fail(e)
    if cfg.dry_run:
        pytest.skip(
            f"dry run (--dry-run): {len(objs)} objects validated, nothing applied"
            + ("" if exists else f"; namespace {cfg.namespace} would be created")
            + "; the diff is in the terminal summary"
        )

    def finish() -> None:
        __tracebackhide__ = True
        try:
            gate.finish_release(
                api,
                cfg,
                run,
                rolloutgate_snapshot,
                objs,
                state.golden,
                write,
                tracker=tracker,
                checkpoint=state.save_report,
            )
        except GateError as e:
            if run.interrupted is not None:
                # An interrupted session tears down inside pytest_sessionfinish, where a
                # failure is an INTERNALERROR that loses the reports; the verdict (fail, with
                # the rollback's outcome or the lost lease) already says it.
                write(f"rolloutgate: {type(e).__name__}: {e}")
                return
            fail(e)

    # Registered before the apply: a failed or interrupted apply is rolled back too.
    request.addfinalizer(finish)  # noqa: PT021 - yield would skip it when the apply fails
    state.on_interrupt = lambda: gate.restore_now(
        api,
        cfg,
        run,
        rolloutgate_snapshot,
        objs,
        write,
        tracker=tracker,
        checkpoint=state.save_report,
    )
    run.applied = True
    if not_waited := gate.not_waited(objs):
        run.notes.append("applied, not waited for (not a workload kind): " + ", ".join(not_waited))
    try:
        with run.phase("apply"), _patience(request, cfg.timeouts.api):
            # Only what happens to the pods from here on is held against the release.
            run.baseline = gate.pod_baseline(api, rolloutgate_namespace, planned.objects)
            holder = tracker.lease.holder if tracker is not None else lock.default_holder()
            applied = gate.apply_release(api, cfg, planned, holder)
            if tracker is not None:
                tracker.step("rolling-out")
            return applied
    except GateError as e:
        fail(e)


@pytest.fixture(scope="session")
def rolloutgate_rollout(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_release: list[Obj],
    rolloutgate_config: GateConfig,
) -> list[Obj]:
    """Session. Waits until every applied workload has rolled out the revision this run
    created (``kubectl rollout status`` rules per kind, fail-fast on broken pods); returns the
    final workloads. Deadline: ``--rollout-timeout``."""
    from rolloutgate.release import steps as gate

    state = _state(request)
    run, cfg = state.require_run(), rolloutgate_config
    deadline = time.monotonic() + cfg.timeouts.rollout
    try:
        with run.phase("rollout"), _patience(request, cfg.timeouts.rollout):
            done = gate.wait_rollouts(
                rolloutgate_api,
                cfg,
                rolloutgate_release,
                deadline=deadline,
                write=state.writer(),
                pin=True,
                baseline=run.baseline,
            )
        tracker = _tracker(request)
        if tracker is not None:
            with _patience(request, cfg.timeouts.api):
                tracker.step("checking")
        return done
    except GateError as e:
        fail(e)


@pytest.fixture(scope="session")
def rolloutgate_endpoint(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_rollout: list[Obj],
    rolloutgate_manifests: list[Obj],
    rolloutgate_config: GateConfig,
) -> Iterator[str]:
    """Session. Base URL of the new release (``str``): ``--endpoint-url`` / the profile's
    ``endpoint_url`` (without its userinfo: ``rolloutgate_v2``'s session carries credentials),
    else a port-forward to a ready pod of the Service. Waits until it answers
    (``--endpoint-timeout``)."""
    from rolloutgate.checks import cases
    from rolloutgate.checks.client import wait_answering
    from rolloutgate.release import steps as gate

    run, cfg = _state(request).require_run(), rolloutgate_config
    deadline = time.monotonic() + cfg.timeouts.endpoint
    with ExitStack() as stack:
        try:
            with run.phase("endpoint"), _patience(request, cfg.timeouts.endpoint):
                url = stack.enter_context(
                    gate.open_endpoint(
                        rolloutgate_api, cfg, rolloutgate_manifests, deadline=deadline
                    )
                )
                try:
                    golden: Golden | None = _state(request).golden()
                except ConfigError:
                    golden = None  # reported by the tests that use it
                with cases.client_for(url, golden, cfg) as probe:
                    wait_answering(probe, deadline=deadline)
        except GateError as e:
            fail(e)
        yield url


@pytest.fixture(scope="session")
def rolloutgate_v2(
    rolloutgate_endpoint: str, rolloutgate_golden: Golden, rolloutgate_config: GateConfig
) -> Iterator[V2Client]:
    """Session. A V2 (Open Inference Protocol) client (``rolloutgate.checks.client.V2Client``) for the
    golden file's model at the release's endpoint; per-request timeout ``timeouts.request``;
    its session carries the configured headers and the endpoint URL's credentials."""
    from rolloutgate.release import steps as gate

    client = gate.v2_client(rolloutgate_config, rolloutgate_endpoint, rolloutgate_golden.model)
    yield client
    client.session.close()


@pytest.fixture(scope="session")
def rolloutgate_replicas(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_rollout: list[Obj],
    rolloutgate_endpoint: str,
    rolloutgate_manifests: list[Obj],
    rolloutgate_golden: Golden,
    rolloutgate_config: GateConfig,
) -> Iterator[dict[str, HttpClient]]:
    """Session. A ``rolloutgate.checks.cases.HttpClient`` per pod of the new release behind the
    model's Service, keyed by pod name, each through its own port-forward straight to that pod:
    health and golden checks ask every replica, not the one the Service happens to pick. Health
    paths as ``rolloutgate_http``'s (the golden file's protocol)."""
    from rolloutgate.checks import cases
    from rolloutgate.checks.client import wait_answering
    from rolloutgate.release import steps as gate

    cfg = rolloutgate_config
    deadline = time.monotonic() + cfg.timeouts.endpoint
    with ExitStack() as stack:
        try:
            urls = stack.enter_context(
                gate.open_replicas(
                    rolloutgate_api, cfg, rolloutgate_manifests, rolloutgate_rollout,
                    deadline=deadline,
                )
            )  # fmt: skip
            clients = {
                pod: stack.enter_context(cases.client_for(url, rolloutgate_golden, cfg))
                for pod, url in urls.items()
            }
            for client in clients.values():
                wait_answering(client, deadline=deadline)
        except GateError as e:
            fail(e)
        yield clients


@pytest.fixture
def rolloutgate_workload_pods(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_rollout: list[Obj],
    rolloutgate_config: GateConfig,
) -> dict[str, list[Obj]]:
    """Function. The pods of each rolled-out workload's current revision, keyed by
    ``Kind/name``, read fresh for each test."""
    from rolloutgate.objects import ref
    from rolloutgate.release import steps as gate

    try:
        with _patience(request, rolloutgate_config.timeouts.api):
            return {
                ref(workload): gate.release_pods(
                    rolloutgate_api, rolloutgate_config.namespace, workload
                )
                for workload in rolloutgate_rollout
            }
    except GateError as e:
        fail(e)


@pytest.fixture
def rolloutgate_pods(rolloutgate_workload_pods: dict[str, list[Obj]]) -> list[Obj]:
    """Function. The pods of the new release (every rolled-out workload's current revision),
    read fresh for each test."""
    return [pod for pods in rolloutgate_workload_pods.values() for pod in pods]


@pytest.fixture
def rolloutgate_restarts(
    request: pytest.FixtureRequest, rolloutgate_pods: list[Obj]
) -> list[Restarts]:
    """Function. The new release's containers that exited since the apply
    (``rolloutgate.checks.podhistory.Restarts``: pod, container, exits, last termination); exits
    from before the apply (pods that existed already) are not counted."""
    from rolloutgate.checks.podhistory import Baseline, restarts_since

    baseline = _state(request).require_run().baseline or Baseline.empty()
    return restarts_since(rolloutgate_pods, baseline)


@pytest.fixture
def rolloutgate_container() -> str | None:
    """Function. Container the in-pod checks run in; None (default): the pod's first container.
    Override it in conftest.py."""
    return None


@pytest.fixture
def rolloutgate_pod_host(
    request: pytest.FixtureRequest,
    rolloutgate_pods: list[Obj],
    rolloutgate_container: str | None,
    rolloutgate_config: GateConfig,
) -> Host:
    """Function. A testinfra ``Host`` (kubectl backend) on one running pod of the new release.
    Needs ``kubectl`` on PATH; uses the gate's kubeconfig and context."""
    import testinfra  # type: ignore[import-untyped]

    if shutil.which("kubectl") is None:
        pytest.fail("testinfra's kubectl backend needs kubectl on PATH", pytrace=False)
    running = [p for p in rolloutgate_pods if (p.get("status") or {}).get("phase") == "Running"]
    if not running:
        pytest.fail(
            f"no running pod of the new release in {rolloutgate_config.namespace} "
            f"(pods: {[p['metadata']['name'] for p in rolloutgate_pods] or 'none'})",
            pytrace=False,
        )
    pod = running[0]
    container = rolloutgate_container or pod["spec"]["containers"][0]["name"]
    kubeconfig, context = _state(request).connection
    kwargs = {k: v for k, v in (("kubeconfig", kubeconfig), ("context", context)) if v}
    spec = (
        f"kubectl://{pod['metadata']['name']}?container={container}"
        f"&namespace={rolloutgate_config.namespace}"
    )
    return testinfra.get_host(spec, **kwargs)


@pytest.fixture
def rolloutgate_case(request: pytest.FixtureRequest) -> Case:
    """Function. One golden case (``rolloutgate.checks.cases.Case``); tests taking it run once per case
    of the golden file (parametrized by the plugin, ids = case names)."""
    from rolloutgate.checks.cases import Case

    case = getattr(request, "param", None)
    if not isinstance(case, Case):
        raise pytest.UsageError(
            "rolloutgate_case is parametrized from the golden file: pass --cluster"
        )
    return case
