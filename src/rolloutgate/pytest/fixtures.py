"""The gate's fixtures: each one state change, ordered only by their dependencies.

The chain (tests/plugin/test_chain.py checks it against the fixtures' real dependencies and
against docs/gate.md)::

    rolloutgate_config → rolloutgate_manifests → rolloutgate_api → rolloutgate_namespace
      → rolloutgate_lock → rolloutgate_snapshot → rolloutgate_release → rolloutgate_rollout
      → rolloutgate_endpoint → rolloutgate_replicas

Each fixture is a doorway to one step of the release engine (``rolloutgate.release.engine
.Release``, one per session, made on first use): it asks for the step's result and turns a
domain error into its failure through ``step``. ``rolloutgate_v2`` is the endpoint's client
(no change of its own), ``rolloutgate_replicas`` a client per replica, ``rolloutgate_warmup``
their first requests, untimed. ``rolloutgate_release``
registers the end of the release before it applies anything: at session end, if any test
failed or errored (setup errors of gate fixtures included) or the run was interrupted, the
engine's ``finish`` restores the snapshot, waits for it and re-runs the health and golden
checks against it.

The cluster layer is imported by the engine, on first use: installing rolloutgate costs a
pytest run that uses none of these fixtures nothing but this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from rolloutgate.config import GateConfig
from rolloutgate.errors import GateError
from rolloutgate.objects import Obj
from rolloutgate.pytest.hooks import KIND_OFFLINE, STATE, GateHooks, fail

if TYPE_CHECKING:
    from kubernetes.client import ApiClient
    from testinfra.host import Host  # type: ignore[import-untyped]

    from rolloutgate.checks.cases import Case, Golden
    from rolloutgate.checks.client import V2Client
    from rolloutgate.checks.httpclient import HttpClient
    from rolloutgate.checks.inpod import InPod
    from rolloutgate.checks.latency import Latency
    from rolloutgate.checks.podhistory import Restarts
    from rolloutgate.release.engine import Release
    from rolloutgate.release.lock import Lease
    from rolloutgate.release.snapshot import Snapshot

T = TypeVar("T")

# Fixtures whose tests need a cluster (rolloutgate_config, _golden, _manifests, _container and
# _model_file do not).
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
        "rolloutgate_in_pod",
        "rolloutgate_warmup",
        "rolloutgate_case",
    }
)


def _state(request: pytest.FixtureRequest) -> GateHooks:
    return request.config.stash[STATE]


def _release(request: pytest.FixtureRequest, **given: Any) -> Release:
    """The session's release engine, given the values of the fixtures this one depends on (an
    overridden fixture's value is what the next steps work on)."""
    return _state(request).release().use(**given)


def step(do: Callable[[], T], *, ends_run: bool = True) -> T:
    """One step of the release engine; its domain error becomes this fixture's failure, once,
    without a traceback (the error names what failed and what to try).

    ``ends_run``: the step is a session fixture's, whose failure pytest would raise again for
    every later test that needs it (an unreachable cluster, 18 times): the run stops at the
    first, and the summary says how many checks were not run. Function fixtures pass False.
    """
    __tracebackhide__ = True
    try:
        return do()
    except GateError as e:
        fail(e, ends_run=ends_run)


@pytest.fixture(scope="session")
def rolloutgate_config(pytestconfig: pytest.Config) -> GateConfig:
    """Session. The resolved settings (``rolloutgate.config.GateConfig``); ``cluster`` is None
    when no cluster was given. Needs no cluster."""
    return pytestconfig.stash[STATE].cfg


@pytest.fixture(scope="session")
def rolloutgate_golden(pytestconfig: pytest.Config) -> Golden:
    """Session. The parsed golden file (``rolloutgate.checks.cases.Golden``)."""
    return step(pytestconfig.stash[STATE].golden)


@pytest.fixture(scope="session")
def rolloutgate_manifests(
    rolloutgate_config: GateConfig, request: pytest.FixtureRequest
) -> list[Obj]:
    """Session. The manifests as they will be applied: loaded, image tag set. No cluster call,
    so bad input fails here before anything changes."""
    return step(_release(request).render)


@pytest.fixture(scope="session")
def rolloutgate_api(
    request: pytest.FixtureRequest,
    rolloutgate_config: GateConfig,
    rolloutgate_manifests: list[Obj],
) -> Iterator[ApiClient]:
    """Session. A ``kubernetes.client.ApiClient`` for the target, checked with /version.
    ``--cluster=kind`` creates a throwaway cluster through pytest-kind's ``kind_cluster``."""
    release = _release(request, objects=rolloutgate_manifests)
    if rolloutgate_config.kind:
        cluster = _kind_cluster(request)
        api = step(lambda: release.connect(str(cluster.kubeconfig_path), None))
        offline = request.config.stash.get(KIND_OFFLINE, False)
        step(lambda: release.prepare_kind(str(cluster.kind_path), cluster.name, offline=offline))
    else:
        api = step(release.connect)
    yield api
    release.close()


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
    release = _release(request, objects=rolloutgate_manifests, api=rolloutgate_api)
    return step(release.ensure_namespace)


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
    release = _release(request, objects=rolloutgate_manifests, api=rolloutgate_api)
    lease = step(release.lock)
    yield lease
    step(release.unlock)


@pytest.fixture(scope="session")
def rolloutgate_snapshot(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_namespace: str,
    rolloutgate_manifests: list[Obj],
    rolloutgate_lock: Lease | None,
) -> Snapshot:
    """Session. The live objects the manifests touch, read before anything is applied
    (``rolloutgate.release.snapshot.Snapshot``); what a rollback restores. A release left
    unfinished by a gate that is gone (or ``--recover``) is recovered and verified first."""
    release = _release(request, objects=rolloutgate_manifests, api=rolloutgate_api)
    return step(release.snapshot)


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
    With ``--verify``: the live objects, nothing applied (the checks judge the live release).

    Teardown (the engine's ``finish``): if any test failed or errored, or the run was
    interrupted, restores the snapshot, waits for it and re-runs the health and golden checks;
    a failing rollback fails the session.
    """
    cfg, state = rolloutgate_config, _state(request)
    release = state.release().use(
        objects=rolloutgate_manifests, api=rolloutgate_api, snap=rolloutgate_snapshot
    )
    if cfg.recover:
        pytest.skip(
            "recovery run (--recover): the last verified release was restored and verified; "
            "nothing new is deployed"
        )
    if cfg.verify:
        # Nothing is applied, so there is nothing to finish or roll back.
        return step(release.take_live)
    step(release.validate)
    if cfg.dry_run:
        pytest.skip(
            f"dry run (--dry-run): {len(rolloutgate_manifests)} objects validated, nothing "
            "applied"
            + ("" if release.namespace_exists else f"; namespace {cfg.namespace} would be created")
            + "; the diff is in the terminal summary"
        )

    def finish() -> None:
        __tracebackhide__ = True
        try:
            release.finish()
        except GateError as e:
            if release.run.interrupted is not None or release.run.lock_lost is not None:
                # An interrupted session, or one stopped by a lost lease (its remaining checks
                # not run), tears down inside pytest_sessionfinish, where a failure is an
                # INTERNALERROR that loses the reports; the verdict (fail, with the rollback's
                # outcome or the lost lease) already says it.
                release.say(f"rolloutgate: {type(e).__name__}: {e}")
                return
            fail(e)

    # Registered before the apply: a failed or interrupted apply is rolled back too.
    request.addfinalizer(finish)  # noqa: PT021 - yield would skip it when the apply fails
    state.on_interrupt = release.restore_now
    return step(release.apply)


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
    release = _release(request, api=rolloutgate_api, applied=rolloutgate_release)
    return step(release.rollout)


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
    with ExitStack() as stack:
        release = _release(request, objects=rolloutgate_manifests, api=rolloutgate_api)
        yield step(lambda: stack.enter_context(release.endpoint()))


@pytest.fixture(scope="session")
def rolloutgate_v2(
    rolloutgate_endpoint: str, rolloutgate_golden: Golden, rolloutgate_config: GateConfig
) -> Iterator[V2Client]:
    """Session. A V2 (Open Inference Protocol) client (``rolloutgate.checks.client.V2Client``)
    for the golden file's model at the release's endpoint; per-request timeout
    ``timeouts.request``; its session carries the configured headers and the endpoint URL's
    credentials."""
    from rolloutgate.release.verify import v2_client

    client = v2_client(rolloutgate_config, rolloutgate_endpoint, rolloutgate_golden)
    yield client
    client.close()


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
    """Session. A ``rolloutgate.checks.httpclient.HttpClient`` per pod of the new release behind the
    model's Service, keyed by pod name, each through its own port-forward straight to that pod:
    health and golden checks ask every replica, not the one the Service happens to pick. Health
    paths as ``rolloutgate_http``'s (the golden file's protocol)."""
    with ExitStack() as stack:
        release = _release(
            request, objects=rolloutgate_manifests, api=rolloutgate_api, live=rolloutgate_rollout
        )
        replicas = release.replicas(rolloutgate_golden)
        clients = step(lambda: stack.enter_context(replicas))
        if _state(request).in_pod_wanted:
            release.prefetch_in_pod()
        yield clients


@pytest.fixture(scope="session")
def rolloutgate_warmup(
    request: pytest.FixtureRequest,
    rolloutgate_replicas: dict[str, HttpClient],
    rolloutgate_golden: Golden,
) -> dict[str, Latency]:
    """Session. ``warmup_requests`` (default 3) requests of the first golden case sent to each
    pod of the new release, straight to it, before the latency budget is measured, and not
    held against it (lazy loading, JIT, cold caches); pod name → ``rolloutgate.Latency``
    (``samples_ms``, ``errors``), also in the report."""
    release = _release(request)
    return release.warm_up(rolloutgate_replicas, rolloutgate_golden.cases[0].request)


@pytest.fixture
def rolloutgate_workload_pods(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_rollout: list[Obj],
    rolloutgate_config: GateConfig,
) -> dict[str, list[Obj]]:
    """Function. The pods of each rolled-out workload's current revision, keyed by
    ``Kind/name``, read fresh for each test."""
    release = _release(request, api=rolloutgate_api, live=rolloutgate_rollout)
    return step(release.pods, ends_run=False)


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

    baseline = _release(request).run.baseline or Baseline.empty()
    return restarts_since(rolloutgate_pods, baseline)


@pytest.fixture
def rolloutgate_container(request: pytest.FixtureRequest, rolloutgate_manifests: list[Obj]) -> str:
    """Function. The container the in-pod checks run in: the ``container`` setting, else the
    one whose image ``--image-tag`` sets. Needs no cluster; override it in conftest.py to
    choose otherwise."""
    return step(_release(request, objects=rolloutgate_manifests).serving_container, ends_run=False)


@pytest.fixture
def rolloutgate_model_file(rolloutgate_config: GateConfig) -> str:
    """Function. The model file's path in the serving container (the ``model_file`` setting);
    the test is skipped as "not configured" without it."""
    if rolloutgate_config.model_file is None:
        pytest.skip(
            "not configured: set `model_file` (the model's path in the serving container, "
            "docs/gate.md) to check it is there"
        )
    return rolloutgate_config.model_file


@pytest.fixture
def rolloutgate_in_pod(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_pods: list[Obj],
    rolloutgate_container: str | None,
) -> InPod:
    """Function. A ``rolloutgate.InPod``: a testinfra ``Host`` (kubectl backend) next to the
    serving process of a running pod of the new release — in ``rolloutgate_container``, or,
    when its image has no shell, in an ephemeral container of ``debug_image`` sharing its
    process namespace. ``file(path)`` reads the serving container's files either way. Skipped
    with the reason when that is not possible (no kubectl on PATH, no ``pods/exec`` right, no
    debug container)."""
    from rolloutgate.checks.inpod import InPodUnavailable

    release = _release(request, api=rolloutgate_api)

    def open_in_pod() -> InPod:
        try:
            return release.in_pod(rolloutgate_pods, rolloutgate_container)
        except InPodUnavailable as e:
            pytest.skip(f"not possible: {e}")

    return step(open_in_pod, ends_run=False)


@pytest.fixture
def rolloutgate_pod_host(rolloutgate_in_pod: InPod) -> Host:
    """Function. ``rolloutgate_in_pod``'s testinfra ``Host``. In an ephemeral debug container
    the serving container's files are under ``/proc/1/root``: ``rolloutgate_in_pod.file(path)``
    maps paths for you."""
    return rolloutgate_in_pod.host


@pytest.fixture
def rolloutgate_case(request: pytest.FixtureRequest) -> Case:
    """Function. One golden case (``rolloutgate.checks.cases.Case``); tests taking it run once
    per case of the golden file (parametrized by the plugin, ids = case names)."""
    from rolloutgate.checks.cases import Case

    case = getattr(request, "param", None)
    if not isinstance(case, Case):
        raise pytest.UsageError(
            "rolloutgate_case is parametrized from the golden file: pass --cluster"
        )
    return case
