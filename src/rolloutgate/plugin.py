"""pytest plugin of rolloutgate: options, hooks and fixture wiring; the steps live in ``gate``.

Fixtures, each one state change, ordered only by their dependencies::

    rolloutgate_config → rolloutgate_api → rolloutgate_namespace → rolloutgate_lock
      → rolloutgate_snapshot → rolloutgate_release → rolloutgate_rollout → rolloutgate_endpoint
      → rolloutgate_v2

``rolloutgate_release`` registers the rollback before it applies anything: at session end, if
any test failed or errored (setup errors of gate fixtures included) or the run was interrupted,
it restores the snapshot, waits for it and re-runs the health and golden checks against it.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, nullcontext
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from rolloutgate import apply, cases, gate, kube, lock, manifests, report, snapshot
from rolloutgate import config as cfgmod
from rolloutgate.cases import Case, Golden
from rolloutgate.config import GateConfig
from rolloutgate.errors import ConfigError, GateError
from rolloutgate.report import GateRun, TestOutcome
from rolloutgate.smoke import V2Client, wait_answering

if TYPE_CHECKING:
    from kubernetes.client import ApiClient
    from testinfra.host import Host  # type: ignore[import-untyped]

Obj = dict[str, Any]

# State lives under stash keys, never as attributes on pytest's objects.
CONFIG = pytest.StashKey[GateConfig]()
RUN = pytest.StashKey[GateRun]()
GOLDEN = pytest.StashKey[Golden]()
API = pytest.StashKey["ApiClient"]()
CONNECTION = pytest.StashKey[tuple[str | None, str | None]]()  # kubeconfig, context in use
MANIFESTS = pytest.StashKey[list[Obj]]()
PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()  # per item: when -> report
SIGTERM = pytest.StashKey[Any]()  # the handler we replaced

# Items that use any of these need a cluster (rolloutgate_config alone does not).
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
        "rolloutgate_pod_host",
        "rolloutgate_case",
    }
)
DIAGNOSTICS_PROPERTY = "rolloutgate_diagnostics"
INTERRUPTS = "rolloutgate-interrupts"  # name of the registered _InterruptRecorder

# Fixtures of the protocol-neutral HTTP checks (rolloutgate_http, rolloutgate_metrics).
pytest_plugins = ["rolloutgate.http_fixtures"]


# ---------------------------------------------------------------------------------------------
# Options.


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rolloutgate", "rolloutgate release gate")
    add = group.addoption
    add(
        "--cluster",
        dest="rolloutgate_cluster",
        metavar="NAME",
        type=cfgmod.name,
        help="Target: a profile [tool.rolloutgate.clusters.NAME] in pyproject.toml, else a "
        "kubeconfig context, else 'kind' (a throwaway kind cluster). Gate tests need it. "
        "Env ROLLOUTGATE_CLUSTER.",
    )
    add(
        "--image-tag",
        dest="rolloutgate_image_tag",
        metavar="TAG",
        type=cfgmod.image_tag,
        help="Image tag to deploy, set on the configured images (default: the tags in the "
        "manifests). Docker tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.",
    )
    add(
        "--manifests",
        dest="rolloutgate_manifests",
        metavar="DIR",
        type=cfgmod.path,
        help="Directory of Kubernetes manifests (*.yaml, *.yml, *.json) to deploy.",
    )
    add(
        "--namespace",
        dest="rolloutgate_namespace",
        metavar="NS",
        type=cfgmod.namespace,
        help="Namespace to deploy into; created if missing (default: default).",
    )
    add(
        "--golden",
        dest="rolloutgate_golden",
        metavar="FILE",
        type=cfgmod.path,
        help="Golden file of prediction cases and the latency budget (JSON).",
    )
    add(
        "--context",
        dest="rolloutgate_context",
        metavar="NAME",
        type=cfgmod.name,
        help="Kubeconfig context (overrides the profile's). The kubeconfig itself is "
        "--kubeconfig (an option shared with pytest-kind) or ROLLOUTGATE_KUBECONFIG.",
    )
    for phase, default, what in (
        ("rollout", cfgmod.Timeouts.rollout, "the new release to become ready"),
        ("endpoint", cfgmod.Timeouts.endpoint, "the endpoint to answer"),
        ("lock", cfgmod.Timeouts.lock, "another gate's lock on the target"),
        ("rollback", cfgmod.Timeouts.rollback, "the rollback to be restored and ready"),
    ):
        add(
            f"--{phase}-timeout",
            dest=f"rolloutgate_{phase}_timeout",
            metavar="SECONDS",
            type=cfgmod.seconds,
            help=f"Seconds to wait for {what} (default: {default:g}).",
        )
    add(
        "--max-restarts",
        dest="rolloutgate_max_restarts",
        metavar="N",
        type=cfgmod.count,
        help="Fail the rollout when a new pod's container restarted more than N times "
        "(default: 2).",
    )
    add(
        "--no-rollback",
        dest="rolloutgate_rollback",
        action="store_const",
        const=False,
        default=None,
        help="On failure leave the failed release in place for debugging.",
    )
    add(
        "--dry-run",
        dest="rolloutgate_dry_run",
        action="store_const",
        const=True,
        default=None,
        help="Validate every manifest with a server-side dry-run and print the diff against "
        "the live objects; apply nothing and skip the checks that need a release.",
    )
    add(
        "--gate-report",
        dest="rolloutgate_report",
        metavar="PATH",
        type=cfgmod.path,
        help="Where to write the JSON gate report (default: reports/gate.json).",
    )
    add(
        "--endpoint-url",
        dest="rolloutgate_endpoint_url",
        metavar="URL",
        type=cfgmod.url,
        help="Reach the release at this URL (e.g. a staging ingress) instead of a port-forward.",
    )
    add(
        "--canary",
        dest="rolloutgate_canary",
        action="store_true",
        default=False,
        help="Not yet supported: canary comparison against the stable release.",
    )


# ---------------------------------------------------------------------------------------------
# Configuration and the header.


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("rolloutgate_canary", False):
        raise pytest.UsageError(
            "--canary is not yet supported: the gate deploys and verifies one release. "
            "Run without --canary (see docs/gate.md)."
        )
    options = {k: v for k, v in vars(config.option).items() if k.startswith("rolloutgate_")}
    # --kubeconfig belongs to pytest-kind (a dependency); the gate reads the same option.
    options["kubeconfig"] = getattr(config.option, "kubeconfig", None)
    try:
        gate_config = cfgmod.resolve(
            options,
            env=cfgmod.environ(),
            tool=cfgmod.read_pyproject(config.rootpath),
            rootdir=config.rootpath,
            invocation_dir=config.invocation_params.dir,
            list_contexts=kube.contexts,
        )
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e
    config.stash[CONFIG] = gate_config
    if gate_config.enabled:
        run = GateRun(gate_config)
        config.stash[RUN] = run
        config.pluginmanager.register(_InterruptRecorder(run), INTERRUPTS)
        _install_sigterm(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.pluginmanager.get_plugin(INTERRUPTS)
    if recorder is not None:
        config.pluginmanager.unregister(recorder)
    if SIGTERM in config.stash and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, config.stash[SIGTERM])


def _install_sigterm(config: pytest.Config) -> None:
    """Turn SIGTERM (a cancelled CI job) into KeyboardInterrupt, so teardowns and rollback run."""
    if threading.current_thread() is not threading.main_thread():
        return

    def on_sigterm(signum: int, _frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt("SIGTERM")

    config.stash[SIGTERM] = signal.signal(signal.SIGTERM, on_sigterm)


def pytest_report_header(config: pytest.Config) -> list[str]:
    cfg = config.stash.get(CONFIG, None)
    if cfg is None or not cfg.enabled:
        return ["rolloutgate: no cluster given (gate tests need --cluster NAME)"]
    src = cfg.sources

    def show(value: object, key: str) -> str:
        return f"{value} ({src.get(key, 'default')})"

    root = cfg.rootdir

    context = "kind cluster" if cfg.kind else cfg.context or "(kubeconfig's current)"
    lines = [
        "rolloutgate: "
        + ", ".join(
            [
                f"cluster {show(cfg.cluster, 'cluster')}",
                f"context {show(context, 'context')}",
                f"namespace {show(cfg.namespace, 'namespace')}",
            ]
        ),
        "rolloutgate: "
        + ", ".join(
            [
                f"image tag {show(cfg.image_tag or 'as in the manifests', 'image_tag')}",
                f"manifests {show(gate.relative(cfg.manifests, root), 'manifests')}",
                f"golden {show(gate.relative(cfg.golden, root), 'golden')}",
            ]
        ),
    ]
    extras = []
    if cfg.kubeconfig is not None:
        extras.append(f"kubeconfig {show(gate.relative(cfg.kubeconfig, root), 'kubeconfig')}")
    if cfg.endpoint_url:
        extras.append(f"endpoint {show(cfg.endpoint_url, 'endpoint_url')}")
    if cfg.dry_run:
        extras.append("DRY RUN: nothing will be applied")
    if not cfg.rollback:
        extras.append(f"rollback DISABLED ({src.get('rollback')})")
    if extras:
        lines.append("rolloutgate: " + ", ".join(extras))
    return lines


# ---------------------------------------------------------------------------------------------
# Collection: golden cases, and gate items without a cluster.


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per golden case for tests that take ``rolloutgate_case``."""
    if "rolloutgate_case" not in metafunc.fixturenames:
        return
    cfg = metafunc.config.stash[CONFIG]
    try:
        golden = _golden(metafunc.config)
    except ConfigError as e:
        if cfg.enabled:
            raise pytest.Collector.CollectError(str(e)) from e
        # No gate in this run: collection goes on and pytest_collection_finish names the
        # missing --cluster, which matters more than the golden file.
        metafunc.parametrize("rolloutgate_case", [None], ids=["no-cluster"])
        return
    metafunc.parametrize("rolloutgate_case", golden.cases, ids=[c.name for c in golden.cases])


def _golden(config: pytest.Config) -> Golden:
    if GOLDEN not in config.stash:
        config.stash[GOLDEN] = cases.load(config.stash[CONFIG].golden)
    return config.stash[GOLDEN]


def pytest_collection_finish(session: pytest.Session) -> None:
    cfg = session.config.stash.get(CONFIG, None)
    if cfg is None or cfg.enabled or session.config.option.collectonly:
        return
    gate_items = [i for i in session.items if GATE_FIXTURES.intersection(_fixturenames(i))]
    if gate_items:
        raise pytest.UsageError(
            f"{len(gate_items)} collected test(s) deploy or check a release (e.g. "
            f"{gate_items[0].nodeid}) but no cluster was given. Pass --cluster NAME, where NAME "
            f"is a profile of [tool.rolloutgate.clusters] in pyproject.toml, a kubeconfig "
            f"context, or 'kind' (or set ROLLOUTGATE_CLUSTER); or deselect them."
        )


def _fixturenames(item: pytest.Item) -> list[str]:
    names = getattr(item, "fixturenames", [])
    return list(names) if isinstance(names, list | tuple) else []


# ---------------------------------------------------------------------------------------------
# Outcomes, diagnostics, interrupts, reports.


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    rep = yield
    item.stash.setdefault(PHASE_REPORTS, {})[rep.when] = rep
    run = item.config.stash.get(RUN, None)
    if run is None:
        return rep
    run.record(_outcome(rep))
    if rep.failed and run.applied:
        if run.diagnostics is None and API in item.config.stash:
            # Collected at the first failure: the failing pods are gone after a rollback.
            run.diagnostics = _diagnostics(item.config, item.config.stash[API])
        names = {name for name, _ in item.user_properties}
        if run.diagnostics and DIAGNOSTICS_PROPERTY not in names:
            # JUnit XML takes properties from the item (its teardown report), as record_property.
            item.user_properties.append((DIAGNOSTICS_PROPERTY, run.diagnostics))
    return rep


def _outcome(rep: pytest.TestReport) -> TestOutcome:
    if rep.failed:
        outcome: report.Outcome = "failed" if rep.when == "call" else "error"
    elif rep.skipped:
        outcome = "skipped"
    else:
        outcome = "passed"
    message = ""
    if rep.failed:
        crash = getattr(rep.longrepr, "reprcrash", None)
        message = getattr(crash, "message", None) or rep.longreprtext.strip().splitlines()[-1]
        message = message.removeprefix("Failed: ")  # pytest.fail's prefix says nothing here
    elif rep.skipped and isinstance(rep.longrepr, tuple):
        message = str(rep.longrepr[2])
    return TestOutcome(rep.nodeid, outcome, round(rep.duration, 3), message[:500])


def _diagnostics(config: pytest.Config, api: ApiClient) -> str:

    return gate.collect_diagnostics(api, config.stash[CONFIG], config.stash.get(MANIFESTS, []))


class _InterruptRecorder:
    """pytest_keyboard_interrupt gets no config: this object carries the run to it.

    pytest calls the hook before session teardown, so the rollback sees the interruption.
    """

    def __init__(self, run: GateRun) -> None:
        self.run = run

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        text = str(excinfo.value) or "Ctrl+C"
        self.run.interrupted = text if text == "SIGTERM" else f"{excinfo.typename}: {text}"


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After session teardown (rollback included): write the JSON report and step summary."""
    run = session.config.stash.get(RUN, None)
    if run is None:
        return
    run.finished = time.time()
    run.exit_status = int(session.exitstatus)
    try:
        report.write_json(run, run.config.report)
        report.append_step_summary(run)
    except OSError as e:
        run.notes.append(f"report not written: {e}")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = config.stash.get(RUN, None)
    if run is None:
        return
    tr = terminalreporter
    tr.section("rolloutgate")
    for line in run.summary_lines():
        tr.write_line(line)
    if run.failed and run.diagnostics:
        tr.section("rolloutgate diagnostics", sep="-")
        tr.write_line(run.diagnostics)
    if run.dry_run_diff is not None:
        tr.section("rolloutgate dry-run diff", sep="-")
        tr.write_line(run.dry_run_diff or "(no changes)")
    tr.write_line(f"gate report: {run.config.report}")


def _writer(config: pytest.Config) -> Callable[[str], None]:
    """Write a line to the terminal now, past output capturing (live progress)."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        if tr is None:
            return
        with capman.global_and_fixture_disabled() if capman else nullcontext():
            tr.write_line(line)

    return write


def _fail(e: GateError) -> NoReturn:
    """Fail a fixture with the domain error's message only: the traceback would be noise."""
    __tracebackhide__ = True
    failure = pytest.fail.Exception(f"{type(e).__name__}: {e}", pytrace=False)
    # The domain error is the whole story; pytest would otherwise print it twice.
    failure.__suppress_context__ = True
    raise failure


def _run(request: pytest.FixtureRequest) -> GateRun:
    run = request.config.stash.get(RUN, None)
    if run is None:
        raise pytest.UsageError(
            f"fixture {request.fixturename} needs a cluster: pass --cluster NAME"
        )
    return run


# ---------------------------------------------------------------------------------------------
# Fixtures.


@pytest.fixture(scope="session")
def rolloutgate_config(pytestconfig: pytest.Config) -> GateConfig:
    """Session. The resolved settings (``rolloutgate.config.GateConfig``); ``cluster`` is None
    when no cluster was given. Needs no cluster."""
    return pytestconfig.stash[CONFIG]


@pytest.fixture(scope="session")
def rolloutgate_golden(pytestconfig: pytest.Config) -> Golden:
    """Session. The parsed golden file (``rolloutgate.cases.Golden``)."""
    try:
        return _golden(pytestconfig)
    except ConfigError as e:
        _fail(e)


@pytest.fixture(scope="session")
def rolloutgate_manifests(
    rolloutgate_config: GateConfig, request: pytest.FixtureRequest
) -> list[Obj]:
    """Session. The manifests as they will be applied: loaded, image tag set. No cluster call,
    so bad input fails here before anything changes."""

    try:
        objs = gate.prepare(rolloutgate_config)
    except ConfigError as e:
        _fail(e)
    request.config.stash[MANIFESTS] = objs
    return objs


@pytest.fixture(scope="session")
def rolloutgate_api(
    request: pytest.FixtureRequest, rolloutgate_config: GateConfig
) -> Iterator[ApiClient]:
    """Session. A ``kubernetes.client.ApiClient`` for the target, checked with /version.
    ``--cluster=kind`` creates a throwaway cluster through pytest-kind's ``kind_cluster``."""

    run, cfg = _run(request), rolloutgate_config
    kubeconfig = str(cfg.kubeconfig) if cfg.kubeconfig else None
    context = cfg.context
    if cfg.kind:
        cluster = request.getfixturevalue("kind_cluster")
        kubeconfig, context = str(cluster.kubeconfig_path), None
    try:
        with run.phase("connect"):
            api = kube.connect(kubeconfig, context, timeout=cfg.request_timeout)
    except GateError as e:
        _fail(e)
    request.config.stash[API] = api
    request.config.stash[CONNECTION] = (kubeconfig, context)
    yield api
    api.close()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def rolloutgate_namespace(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_config: GateConfig,
    rolloutgate_manifests: list[Obj],
) -> str:
    """Session. The namespace name; created if missing (kept afterwards: deleting a namespace is
    slow and would block the next run). In a dry run nothing is created."""

    run, cfg = _run(request), rolloutgate_config
    try:
        with run.phase("namespace"):
            gate.check_kinds(rolloutgate_api, rolloutgate_manifests)
            run.created_namespace = gate.ensure_namespace(
                rolloutgate_api, cfg.namespace, create=not cfg.dry_run
            )
    except GateError as e:
        _fail(e)
    return cfg.namespace


@pytest.fixture(scope="session")
def rolloutgate_lock(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_namespace: str,
    rolloutgate_config: GateConfig,
    rolloutgate_manifests: list[Obj],
) -> Iterator[lock.Lease | None]:
    """Session. The target's ``coordination.k8s.io/v1`` Lease, held (and renewed) for the whole
    run and released at the end; None in a dry run, which changes nothing."""

    run, cfg = _run(request), rolloutgate_config
    if cfg.dry_run:
        yield None
        return
    name = gate.lock_name(cfg, rolloutgate_manifests)
    try:
        with run.phase("lock"):
            lease = lock.acquire(
                rolloutgate_api,
                rolloutgate_namespace,
                name,
                holder=lock.default_holder(),
                duration_s=int(cfg.timeouts.lease),
                deadline=time.monotonic() + cfg.timeouts.lock,
            )
    except GateError as e:
        _fail(e)
    with ExitStack() as stack:
        stack.callback(lock.release, rolloutgate_api, lease)
        lost = stack.enter_context(lock.keep(rolloutgate_api, lease))
        yield lease
    if lost:
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
    rolloutgate_lock: lock.Lease | None,
) -> snapshot.Snapshot:
    """Session. The live objects the manifests touch, read before anything is applied
    (``rolloutgate.snapshot.Snapshot``); what a rollback restores."""

    run = _run(request)
    try:
        with run.phase("snapshot"):
            snap = snapshot.take(rolloutgate_api, rolloutgate_namespace, rolloutgate_manifests)
    except GateError as e:
        _fail(e)
    run.previous_tag = snap.tag()
    run.first_deploy = snap.first_deploy
    return snap


@pytest.fixture(scope="session")
def rolloutgate_release(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_namespace: str,
    rolloutgate_manifests: list[Obj],
    rolloutgate_snapshot: snapshot.Snapshot,
    rolloutgate_config: GateConfig,
) -> list[Obj]:
    """Session. Validates every manifest (server-side dry-run), then applies them all and
    returns the applied objects. In a dry run: prints the diff and skips what depends on it.

    Teardown: if any test failed or errored, or the run was interrupted, restores the snapshot,
    waits for it and re-runs the health and golden checks; a failing rollback fails the session.
    """

    run, cfg, api = _run(request), rolloutgate_config, rolloutgate_api
    objs = rolloutgate_manifests
    write = _writer(request.config)
    try:
        with run.phase("validate"):
            apply.validate(api, rolloutgate_namespace, objs)
        if cfg.dry_run:
            with run.phase("diff"):
                run.dry_run_diff = apply.diff(api, rolloutgate_namespace, objs)
    except GateError as e:
        _fail(e)
    if cfg.dry_run:
        pytest.skip(
            f"dry run (--dry-run): {len(objs)} objects validated, nothing applied; "
            "the diff is in the terminal summary"
        )

    def finish() -> None:
        __tracebackhide__ = True
        _finish_release(request.config, api, rolloutgate_snapshot, objs, write)

    # Registered before the apply: a failed or interrupted apply is rolled back too.
    request.addfinalizer(finish)  # noqa: PT021 - yield would skip it when the apply fails
    run.applied = True
    try:
        with run.phase("apply"):
            holder = lock.default_holder()
            return apply.apply(
                api,
                rolloutgate_namespace,
                objs,
                change_cause=gate.change_cause(cfg, holder),
            )
    except GateError as e:
        _fail(e)


def _finish_release(
    config: pytest.Config,
    api: ApiClient,
    snap: snapshot.Snapshot,
    objs: list[Obj],
    write: Callable[[str], None],
) -> None:
    __tracebackhide__ = True

    run, cfg = config.stash[RUN], config.stash[CONFIG]
    rb = run.rollback
    if not run.failed:
        rb.outcome = "not needed"
        return
    rb.needed = True
    if run.diagnostics is None:
        run.diagnostics = _diagnostics(config, api)
    if not cfg.rollback:
        rb.enabled = False
        rb.outcome = (
            f"disabled ({cfg.sources.get('rollback')}): the failed release is left in place"
        )
        return
    try:
        golden: Golden | None = _golden(config)
    except ConfigError as e:
        golden = None
        run.notes.append(f"rollback checked without golden cases: {e}")
    with gate.signals_deferred(write):
        try:
            gate.roll_back(api, cfg, run, snap, objs, golden, write)
        except GateError as e:
            write(f"rolloutgate: {rb.outcome}")
            _fail(e)
    write(f"rolloutgate: {rb.outcome}")


@pytest.fixture(scope="session")
def rolloutgate_rollout(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_release: list[Obj],
    rolloutgate_config: GateConfig,
) -> list[Obj]:
    """Session. Waits until every applied Deployment has rolled out the revision this run
    created (``kubectl rollout status`` rules, fail-fast on broken pods); returns the final
    Deployments. Deadline: ``--rollout-timeout``."""

    run, cfg = _run(request), rolloutgate_config
    deadline = time.monotonic() + cfg.timeouts.rollout
    try:
        with run.phase("rollout"):
            return gate.wait_rollouts(
                rolloutgate_api,
                cfg,
                manifests.workloads(rolloutgate_release),
                deadline=deadline,
                write=_writer(request.config),
                pin=True,
            )
    except GateError as e:
        _fail(e)


@pytest.fixture(scope="session")
def rolloutgate_endpoint(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_rollout: list[Obj],
    rolloutgate_manifests: list[Obj],
    rolloutgate_config: GateConfig,
) -> Iterator[str]:
    """Session. Base URL of the new release (``str``): ``--endpoint-url`` / the profile's
    ``endpoint_url``, else a port-forward to a ready pod of the Service. Waits until it answers
    (``--endpoint-timeout``)."""

    run, cfg = _run(request), rolloutgate_config
    deadline = time.monotonic() + cfg.timeouts.endpoint
    with ExitStack() as stack:
        try:
            with run.phase("endpoint"):
                url = stack.enter_context(
                    gate.open_endpoint(
                        rolloutgate_api, cfg, rolloutgate_manifests, deadline=deadline
                    )
                )
                try:
                    golden: Golden | None = _golden(request.config)
                except ConfigError:
                    golden = None  # reported by the tests that use it
                with cases.client_for(url, golden, cfg) as probe:
                    wait_answering(probe, deadline=deadline)
        except GateError as e:
            _fail(e)
        yield url


@pytest.fixture(scope="session")
def rolloutgate_v2(
    rolloutgate_endpoint: str, rolloutgate_golden: Golden, rolloutgate_config: GateConfig
) -> Iterator[V2Client]:
    """Session. A V2 (Open Inference Protocol) client (``rolloutgate.smoke.V2Client``) for the
    golden file's model at the release's endpoint; per-request timeout ``timeouts.request``."""
    client = V2Client(
        rolloutgate_endpoint,
        rolloutgate_golden.model,
        timeout=rolloutgate_config.request_timeout,
        health=rolloutgate_config.health,
    )
    yield client
    client.session.close()


@pytest.fixture
def rolloutgate_pods(
    request: pytest.FixtureRequest,
    rolloutgate_api: ApiClient,
    rolloutgate_rollout: list[Obj],
    rolloutgate_config: GateConfig,
) -> list[Obj]:
    """Function. The pods of the new release (every rolled-out Deployment's current
    ReplicaSet), read fresh for each test."""

    try:
        return [
            pod
            for dep in rolloutgate_rollout
            for pod in gate.release_pods(rolloutgate_api, rolloutgate_config.namespace, dep)
        ]
    except GateError as e:
        _fail(e)


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
    kubeconfig, context = request.config.stash[CONNECTION]
    kwargs = {k: v for k, v in (("kubeconfig", kubeconfig), ("context", context)) if v}
    spec = (
        f"kubectl://{pod['metadata']['name']}?container={container}"
        f"&namespace={rolloutgate_config.namespace}"
    )
    return testinfra.get_host(spec, **kwargs)


@pytest.fixture
def rolloutgate_case(request: pytest.FixtureRequest) -> Case:
    """Function. One golden case (``rolloutgate.cases.Case``); tests taking it run once per case
    of the golden file (parametrized by the plugin, ids = case names)."""
    case = getattr(request, "param", None)
    if not isinstance(case, Case):
        raise pytest.UsageError(
            "rolloutgate_case is parametrized from the golden file: pass --cluster"
        )
    return case
