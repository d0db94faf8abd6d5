"""The gate's hooks and the run's state, in one object that ``plugin.py`` registers.

``GateHooks`` holds what the hooks and fixtures share (the resolved settings, the run record,
the connection, the manifests) and implements the reporting hooks: the header, golden-case
parametrization, outcomes into the run record (the ``pytest_runtest_makereport`` stash recipe),
interrupts, and the reports at session end. Nothing here imports the cluster layer at import
time: a pytest run that uses no gate fixture pays for none of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from rolloutgate.config import GateConfig
from rolloutgate.errors import ConfigError, GateError
from rolloutgate.pytest import terminal

if TYPE_CHECKING:
    from rolloutgate.checks.cases import Golden
    from rolloutgate.release.engine import Release
    from rolloutgate.release.report import GateRun, Outcome, TestOutcome

# The registered GateHooks, for fixtures and conftest files: config.stash[STATE].
STATE = pytest.StashKey["GateHooks"]()
# --cluster=kind with the node image of `make kind-image`: every image must come from Docker.
KIND_OFFLINE = pytest.StashKey[bool]()
# Per item: when ("setup", "call", "teardown") -> its report.
PHASE_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
DIAGNOSTICS_PROPERTY = "rolloutgate_diagnostics"
# Set on a fixture's failure that every later check would repeat (``fail(..., ends_run=True)``).
ENDS_RUN = "rolloutgate_ends_run"


class GateHooks:
    """The run's state and the hooks that read and report it; one per pytest session."""

    def __init__(
        self, config: pytest.Config, cfg: GateConfig, gate_fixtures: frozenset[str]
    ) -> None:
        self.config = config
        self.cfg = cfg
        self.gate_fixtures = gate_fixtures
        self.run: GateRun | None = None
        if cfg.enabled:
            # Imported only for a gate run: a run that deploys nothing pays nothing for it.
            from rolloutgate.release.report import GateRun

            self.run = GateRun(cfg)
        self._release: Release | None = None
        self._golden: Golden | None = None
        self.signals = terminal.SigtermAsInterrupt()
        # Session fixtures (steps of the release) that failed: checks that need one are not run.
        self.failed_steps: dict[str, BaseException] = {}
        self.diagnostics_attached = False  # on a test of the JUnit XML
        # Set by the release fixture once a release may change the cluster: submits the
        # restore at once on an interrupt (the engine's restore_now).
        self.on_interrupt: Callable[[], None] | None = None
        # Whether the plugin's own in-pod checks were collected (pytest_collection_finish).
        self.in_pod_wanted = False

    # -- state the fixtures use ----------------------------------------------------------------

    def require_run(self) -> GateRun:
        """The run record; a UsageError when no cluster was given (the gate fixtures need one)."""
        if self.run is None:
            raise pytest.UsageError("the gate's fixtures need a cluster: pass --cluster NAME")
        return self.run

    def release(self) -> Release:
        """The session's release engine, made on first use (the cluster layer is imported
        then: a run that deploys nothing pays nothing for it)."""
        if self._release is None:
            import os

            from rolloutgate.release import handoff
            from rolloutgate.release.engine import Release

            self._release = Release(
                self.cfg,
                self.require_run(),
                say=self.writer(),
                golden=self.golden,
                checkpoint=self.save_report,
                # Set by the wave runner for the gates it starts (rolloutgate.waves).
                handoff=handoff.from_env(os.environ.get(handoff.ENV), self.cfg.cluster),
            )
        return self._release

    def golden(self) -> Golden:
        """The parsed golden file, read once (ConfigError when it is missing or malformed)."""
        if self._golden is None:
            from rolloutgate.checks import cases

            self._golden = cases.load(self.cfg.golden, protocol=self.cfg.protocol)
        return self._golden

    def writer(self) -> Callable[[str], None]:
        """Write a line to the terminal now, past output capturing (live progress)."""
        return terminal.writer(self.config)

    def save_report(self) -> None:
        """Write the JSON report now; it is rewritten at session end. A run killed in between
        (a cancelled CI job gets SIGKILL seconds after SIGTERM) still leaves one."""
        run = self.run
        if run is None:
            return
        from rolloutgate.release import report

        try:
            report.write_json(run, run.config.report)
        except OSError as e:
            run.notes.append(f"report not written: {e}")

    # -- signals -------------------------------------------------------------------------------

    def install_sigterm(self) -> None:
        """Turn SIGTERM (a cancelled CI job) into KeyboardInterrupt, so teardowns and the
        rollback run."""
        if self.run is not None:
            self.signals.install()

    def restore_sigterm(self) -> None:
        """Put back the handlers this run replaced (SIGTERM, and SIGINT after an interrupt)."""
        self.signals.restore()

    # -- hooks ---------------------------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        cfg = self.cfg
        if not cfg.enabled:
            return ["rolloutgate: no cluster given (gate tests need --cluster NAME)"]
        src = cfg.sources

        def show(value: object, key: str) -> str:
            return f"{value} ({src.get(key, 'default')})"

        root = cfg.rootdir
        context = "kind cluster" if cfg.kind else cfg.context or "(kubeconfig's current)"
        if not cfg.kind and cfg.context is None:
            from rolloutgate import kube  # a gate run imports it next anyway

            if kube.in_cluster(str(cfg.kubeconfig) if cfg.kubeconfig else None):
                context = "(none: in-cluster configuration, the pod's ServiceAccount)"
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
                    f"manifests {show(_relative(cfg.manifests, root), 'manifests')}",
                    f"golden {show(_relative(cfg.golden, root), 'golden')}",
                ]
            ),
        ]
        extras = []
        if cfg.kubeconfig is not None:
            extras.append(f"kubeconfig {show(_relative(cfg.kubeconfig, root), 'kubeconfig')}")
        if cfg.endpoint_url:
            from rolloutgate.redact import url  # the userinfo is a credential: never shown

            extras.append(f"endpoint {show(url(cfg.endpoint_url), 'endpoint_url')}")
        if cfg.headers:
            names = ", ".join(f"{h.name} ({h.origin})" for h in cfg.headers)
            extras.append(f"headers {names} ({src.get('headers')})")
        if cfg.dry_run:
            extras.append("DRY RUN: nothing will be applied")
        if cfg.verify:
            extras.append(
                "VERIFY ONLY: the live release is checked; nothing is applied or rolled back"
            )
        if not cfg.rollback:
            extras.append(f"rollback DISABLED ({src.get('rollback')})")
        if extras:
            lines.append("rolloutgate: " + ", ".join(extras))
        return lines

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """One test per golden case for tests that take ``rolloutgate_case``."""
        if "rolloutgate_case" not in metafunc.fixturenames:
            return
        try:
            golden = self.golden()
        except ConfigError as e:
            if self.cfg.enabled:
                raise pytest.Collector.CollectError(str(e)) from e
            # No gate in this run: collection goes on and pytest_collection_finish names the
            # missing --cluster, which matters more than the golden file.
            metafunc.parametrize("rolloutgate_case", [None], ids=["no-cluster"])
            return
        metafunc.parametrize("rolloutgate_case", golden.cases, ids=[c.name for c in golden.cases])

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.run is not None:
            self.run.collected = len(session.items)
        if session.config.option.collectonly:
            return
        if self.cfg.enabled:
            self._check_container(session)
            # The plugin's own in-pod checks will run: their way in is found beside the
            # replica checks (``Release.prefetch_in_pod``), not after them.
            self.in_pod_wanted = any(
                _default_fixture(i, "rolloutgate_in_pod")
                and _default_fixture(i, "rolloutgate_container")
                for i in session.items
            )
            return
        gate_items = [i for i in session.items if self.gate_fixtures.intersection(_fixturenames(i))]
        if gate_items:
            raise pytest.UsageError(
                f"{len(gate_items)} collected test(s) deploy or check a release (e.g. "
                f"{gate_items[0].nodeid}) but no cluster was given. Pass --cluster NAME, where "
                f"NAME is a profile of [tool.rolloutgate.clusters] in pyproject.toml, a "
                f"kubeconfig context, or 'kind' (or set ROLLOUTGATE_CLUSTER); or deselect them."
            )

    def _check_container(self, session: pytest.Session) -> None:
        """The in-pod checks' container, decided from the settings and the manifests before
        anything is deployed: a name the pods do not have, or a choice the settings leave
        open, is a usage error that lists the pods' containers. (A suite that overrides
        ``rolloutgate_container`` is checked by the fixture, against the pods.)"""
        if not any(_default_fixture(i, "rolloutgate_container") for i in session.items):
            return
        release = self.release()
        try:
            release.render()
        except GateError:
            return  # the manifests fixture reports it, once
        try:
            release.serving_container()
        except ConfigError as e:
            raise pytest.UsageError(str(e)) from e

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        rep = yield
        item.stash.setdefault(PHASE_REPORTS, {})[rep.when] = rep
        run = self.run
        if run is None:
            return rep
        run.record(_outcome(rep))
        release = self._release
        if run.diagnostics is None and release and release.connected and run.applied:
            if rep.failed and not run.interrupted:
                # Started at the first failure, in a thread: the failing pods are gone after a
                # rollback, and neither the checks nor the rollback wait for them.
                run.diagnostics = release.gather_diagnostics()
            elif release.gathering is not None:
                run.diagnostics = release.gathering.ready()
        if run.diagnostics and run.failed and not self.diagnostics_attached:
            # JUnit XML takes properties from the teardown report, as record_property does: on
            # the first failing test when they are there already, else on the test whose
            # teardown ended the run (the rollback, which waits for them).
            self.diagnostics_attached = True
            item.user_properties.append((DIAGNOSTICS_PROPERTY, run.diagnostics))
            if rep.when == "teardown":
                rep.user_properties.append((DIAGNOSTICS_PROPERTY, run.diagnostics))
        return rep

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        """Remember a step of the release that failed: every later check that needs it would
        fail again with the same words (pytest raises a session fixture's error once per test)."""
        try:
            return (yield)
        except BaseException as e:
            if getattr(e, ENDS_RUN, False) and self.run is not None:
                self.failed_steps.setdefault(fixturedef.argname, e)
            raise

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> bool | None:
        """Do not run a check that needs a step that already failed: its error was printed
        once, at the first check that needed the step; the summary counts the checks not run."""
        if self.run is not None and self.run.lock_lost is not None:
            # Lost between steps: no check runs on a target another gate owns now; the run
            # ends as failed (exit 1), its verdict the lost lease, not an interrupt.
            item.session.shouldfail = f"lease lost: {self.run.lock_lost}"
            self.run.not_run += 1
            return True
        needs = [name for name in _fixturenames(item) if name in self.failed_steps]
        if not needs or self.run is None:
            return None
        self.run.not_run += 1
        self.run.not_run_because.setdefault(needs[0], 0)
        self.run.not_run_because[needs[0]] += 1
        _tear_down_up_to(item, nextitem)
        return True  # handled: pytest runs nothing for it and reports nothing

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A module that cannot be collected (a golden file that does not parse) is the run's
        first failure: no check runs, and the summary says why rather than "interrupted"."""
        if report.failed and self.run is not None:
            from rolloutgate.release.report import TestOutcome

            lines = report.longreprtext.strip().splitlines()
            self.run.record(TestOutcome(report.nodeid, "error", 0.0, (lines or [""])[-1][:500]))

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Called before session teardown, so the rollback sees the interruption."""
        if self.run is None:
            return
        if isinstance(excinfo.value, pytest.Session.Interrupted) and self.run.failures:
            # pytest stops after collection errors ("N errors during collection"): nothing was
            # deployed and nothing interrupted; the failures say why.
            self.run.not_run = self.run.collected
            return
        text = str(excinfo.value) or "Ctrl+C"
        self.run.interrupted = text if text == "SIGTERM" else f"{excinfo.typename}: {text}"
        self.run.interrupted_at = time.monotonic()
        self.signals.note_later(
            self.writer(),
            "finishing the interrupted run; finishing the rollback and the reports first",
        )
        if self.on_interrupt is not None:
            # First of all: the restore (teardown comes after pytest's own interrupt report).
            try:
                self.on_interrupt()
            except Exception as e:  # an error here would be an INTERNALERROR
                self.run.notes.append(f"the restore on the interrupt failed: {e}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """After session teardown (rollback included): the JSON report and step summary."""
        run = self.run
        if run is None:
            return
        from rolloutgate.release import report

        run.finished = time.time()
        if run.aborted is not None and session.exitstatus == 0:
            # Passed here, rolled back with the other clusters of its waves: it did not stand.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        run.exit_status = int(session.exitstatus)
        try:
            report.write_json(run, run.config.report)
            report.append_step_summary(run)
        except OSError as e:
            run.notes.append(f"report not written: {e}")

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        run = self.run
        if run is None:
            return
        from rolloutgate.redact import urls_in  # a URL quoted in a message keeps no userinfo

        tr = terminalreporter
        tr.section("rolloutgate")
        for line in run.summary_lines():
            tr.write_line(urls_in(line))
        if run.failed and run.diagnostics:
            tr.section("rolloutgate diagnostics", sep="-")
            tr.write_line(urls_in(run.diagnostics))
        if run.dry_run_diff is not None:
            tr.section("rolloutgate dry-run diff", sep="-")
            tr.write_line(run.dry_run_diff or "(no changes)")
        tr.write_line(f"gate report: {run.config.report}")


def fail(e: GateError, *, ends_run: bool = False) -> NoReturn:
    """Fail a fixture with the domain error's message only: the traceback would be noise.
    ``ends_run``: no later check can run without this step (``GateHooks`` stops the run)."""
    __tracebackhide__ = True
    failure = pytest.fail.Exception(f"{type(e).__name__}: {e}", pytrace=False)
    # The domain error is the whole story; pytest would otherwise print it twice.
    failure.__suppress_context__ = True
    if ends_run:
        setattr(failure, ENDS_RUN, True)
    raise failure


def _outcome(rep: pytest.TestReport) -> TestOutcome:
    from rolloutgate.release.report import TestOutcome

    if rep.failed:
        outcome: Outcome = "failed" if rep.when == "call" else "error"
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
        message = str(rep.longrepr[2]).removeprefix("Skipped: ")
    return TestOutcome(rep.nodeid, outcome, round(rep.duration, 3), message[:500])


def _fixturenames(item: pytest.Item) -> list[str]:
    names = getattr(item, "fixturenames", [])
    return list(names) if isinstance(names, list | tuple) else []


def _default_fixture(item: pytest.Item, name: str) -> bool:
    """Whether ``item`` uses the plugin's own fixture ``name`` (not a conftest.py override)."""
    info = getattr(item, "_fixtureinfo", None)
    defs = getattr(info, "name2fixturedefs", {}).get(name) if info is not None else None
    if not defs:
        return False
    return getattr(defs[-1].func, "__module__", None) == "rolloutgate.pytest.fixtures"


def _relative(path: Path | None, root: Path) -> str:
    """``path`` relative to ``root`` when inside it (shorter header lines)."""
    if path is None:
        return "(default)"
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _tear_down_up_to(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Tear down what `nextitem` does not need, as the protocol of a check that ran would have:
    pytest tears a module down in the protocol of its last item, and a check not run has none,
    so the next check that runs (in another module) met the module still set up (`previous item
    was not torn down properly`). A teardown that fails is reported on this item, as pytest
    reports it on the item whose protocol ran it."""
    call = pytest.CallInfo.from_call(
        lambda: item.session._setupstate.teardown_exact(nextitem), when="teardown"
    )
    if call.excinfo is not None:
        report = item.ihook.pytest_runtest_makereport(item=item, call=call)
        item.ihook.pytest_runtest_logreport(report=report)
