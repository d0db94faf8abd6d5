"""pytest wiring of ``--canary``: one test item per metric, reports, the exit status.

With ``--canary`` the gate suite's items are replaced (and reported as deselected) by
``canary::<metric>`` items, so ``--junitxml`` carries one test case per metric with its reason
(failure message, skip reason) and its figures (properties). The first item runs the whole
canary (``canary.execute``: arms, traffic, judgement, cleanup, and the promotion on a Pass);
every item then reports its metric. The session's exit status is the verdict's
(``canary.judge.EXIT_STATUS``), or the promotion gate's own when it ran.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from rolloutgate import kube
from rolloutgate.canary import promote
from rolloutgate.canary import report as canary_report
from rolloutgate.canary import run as canary
from rolloutgate.canary.config import CanaryConfig
from rolloutgate.canary.inputs import Inputs
from rolloutgate.canary.metrics import METRICS
from rolloutgate.canary.run import CanaryRun
from rolloutgate.config import GateConfig
from rolloutgate.errors import ConfigError, GateError
from rolloutgate.pytest import terminal
from rolloutgate.pytest.takeover import TakeoverPlugin

NAME = "rolloutgate-canary"
# Figures of a metric that become JUnit properties (scalars only: lists would be noise there).
_SCALARS = (int, float, str, bool)


class CanaryItem(pytest.Item):
    """One metric of the canary's judgement (``verdict`` and ``promotion`` are items too)."""

    def __init__(self, *, plugin: CanaryPlugin, metric: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plugin = plugin
        self.metric = metric

    def runtest(self) -> None:
        __tracebackhide__ = True
        run = self.plugin.ensure_run()
        judgement = run.judgement
        if judgement is None:  # not reached: an interrupt ends the session before this
            pytest.skip("no judgement")
        if self.metric == "verdict" and run.usage_error is not None:
            pytest.fail(f"usage error (no arm was created): {run.usage_error}", pytrace=False)
        if self.metric == "verdict":
            self.user_properties += [("verdict", run.verdict), ("score", judgement.score)]
            if judgement.verdict == "pass":
                return
            if judgement.verdict == "inconclusive":
                pytest.skip(f"inconclusive: {judgement.reason}")
            pytest.fail(
                f"{judgement.verdict} (score {judgement.score:g}): {judgement.reason}",
                pytrace=False,
            )
        if self.metric == "promotion":
            p = run.promotion
            if p is None:
                pytest.skip(f"not promoted: the verdict is {judgement.verdict}, not pass")
            self.user_properties += [(k, v) for k, v in p.items() if isinstance(v, _SCALARS)]
            if p.get("refused"):
                pytest.fail(f"promotion refused: {p['refused']}", pytrace=False)
            if p["exit_status"] != 0:
                pytest.fail(
                    f"release gate for {p['tag']} exited {p['exit_status']} ({p['verdict']}): "
                    f"{p['cause']}; rollback: {p['rollback']}",
                    pytrace=False,
                )
            return
        m = judgement.metric(self.metric)
        self.user_properties += [
            (k, v) for k, v in m.figures.items() if isinstance(v, _SCALARS) and v is not None
        ]
        if m.verdict == "fail":
            crit = "critical: " if m.critical else ""
            pytest.fail(f"{crit}{m.reason}", pytrace=False)
        if m.verdict == "nodata":
            pytest.skip(m.reason)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "canary", None, f"canary: {self.metric}"


class CanaryPlugin(TakeoverPlugin):
    """Registered by the gate's plugin when ``--canary`` is given; a SIGTERM deletes the
    arms as Ctrl+C does."""

    def __init__(
        self, config: pytest.Config, cfg: GateConfig, ccfg: CanaryConfig, inputs: Inputs
    ) -> None:
        super().__init__()
        self.config, self.cfg, self.ccfg, self.inputs = config, cfg, ccfg, inputs
        self.run = CanaryRun(cfg, ccfg)
        self._done = False
        self._error: BaseException | None = None
        self.data: dict[str, Any] | None = None

    # -- collection ------------------------------------------------------------------------

    def items(self, session: pytest.Session) -> list[pytest.Item]:
        """An item per metric, the verdict's, and the promotion's when it may promote."""
        names = [*METRICS, "verdict"] + (["promotion"] if self.ccfg.promote else [])
        return [
            CanaryItem.from_parent(
                session, name=name, nodeid=f"canary::{name}", plugin=self, metric=name
            )
            for name in names
        ]

    def pytest_report_header(self) -> list[str]:
        c = self.ccfg
        src = c.sources
        return [
            f"rolloutgate canary: candidate {self.cfg.image_tag} against the live release; "
            f"{c.requests} measured requests per arm ({src.get('canary.requests')}), "
            f"request set {c.request_set or 'none (golden cases only)'} "
            f"({src.get('canary.request_set')}), "
            + ("promote on pass" if c.promote else "no promotion")
            + (", arms kept" if c.keep_arms else "")
        ]

    # -- the run ---------------------------------------------------------------------------

    def ensure_run(self) -> CanaryRun:
        """Run the canary once (from the first item); later items read the result."""
        __tracebackhide__ = True
        if self._error is not None:
            raise self._error
        if self._done:
            return self.run
        self._done = True
        write = terminal.writer(self.config)
        try:
            kubeconfig = str(self.cfg.kubeconfig) if self.cfg.kubeconfig else None
            with self.run.phase("connect"):
                api = kube.connect(kubeconfig, self.cfg.context, timeout=self.cfg.request_timeout)
        except GateError as e:
            self.run.judgement = canary.error_judgement(f"{type(e).__name__}: {e}")
            self.run.finished = time.time()
            return self.run
        try:
            # The promotion's gate is started as this run was: same arguments, same place.
            how = promote.Promotion(
                tuple(self.config.invocation_params.args), self.config.invocation_params.dir
            )
            canary.execute(
                api,
                self.cfg,
                self.ccfg,
                self.inputs,
                write,
                self.run,
                how if self.ccfg.promote else None,
            )
        except BaseException as e:
            self._error = e
            raise
        finally:
            api.close()  # type: ignore[no-untyped-call]
        return self.run

    # -- the end ---------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        run = self.run
        if not self._done:
            return  # collection only, or nothing ran
        if run.finished is None:
            run.finished = time.time()
        data = canary_report.to_json(run)
        self.data = data
        if int(exitstatus) not in (2, 3, 4):
            session.exitstatus = data["exit_status"]
        try:
            canary_report.write_json(data, self.ccfg.report)
            if run.interrupted is None:
                canary_report.append_history(data, self.ccfg.history)
            history = canary_report.read_history(self.ccfg.history)
            canary_report.write_html(data, self.ccfg.html, history)
            canary_report.append_step_summary(data)
        except OSError as e:
            run.notes.append(f"report not written: {e}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.data is None:
            return
        tr = terminalreporter
        tr.section("rolloutgate canary")
        for line in canary_report.summary_lines(self.data):
            tr.write_line(line)
        tr.write_line(
            f"canary report: {self.ccfg.report} (HTML {self.ccfg.html}, history "
            f"{self.ccfg.history})"
        )


def check_options(cfg: GateConfig) -> None:
    """ConfigError for combinations a canary cannot run with."""
    if cfg.cluster is None:
        raise ConfigError(
            "--canary needs a cluster: pass --cluster NAME (a profile, a kubeconfig context)"
        )
    if cfg.kind:
        raise ConfigError(
            "--canary compares against a live release; a throwaway kind cluster has none. "
            "Pass --cluster NAME of a cluster where the release runs"
        )
    if cfg.image_tag is None:
        raise ConfigError("--canary needs the candidate: pass --image-tag TAG")
    if cfg.dry_run:
        raise ConfigError("--canary and --dry-run cannot be combined: a canary deploys arms")
    if cfg.waves is not None:
        raise ConfigError(
            f"--canary judges one live release; {cfg.cluster} names waves of clusters: pass "
            "--cluster=NAME of one of them"
        )
    if cfg.verify:
        raise ConfigError(
            "--canary and --verify cannot be combined: a canary deploys arms, --verify only "
            "checks the live release"
        )
