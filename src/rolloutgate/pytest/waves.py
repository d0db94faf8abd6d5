"""pytest wiring of a release in waves (a ``--cluster`` profile naming ``waves``): one test item
per cluster, the reports, the exit status.

The gate suite's items are replaced (and reported as deselected) by ``waves::<cluster>`` items,
so ``--junitxml`` carries one test case per cluster, with its verdict, cause and rollback. The
first item runs every wave (``rolloutgate.waves.WaveRun``); every item then reports its
cluster. One JSON report (``--gate-report``) holds the run and a section per cluster; each
cluster's own gate report, JUnit file and log are beside it (``<report>-waves/``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rolloutgate import redact
from rolloutgate.config import GateConfig
from rolloutgate.errors import ConfigError
from rolloutgate.pytest import terminal
from rolloutgate.pytest.takeover import TakeoverPlugin
from rolloutgate.waves import Member, WaveRun


class WaveItem(pytest.Item):
    """One cluster of the release."""

    def __init__(self, *, plugin: WavesPlugin, member: Member, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plugin = plugin
        self.member = member

    def runtest(self) -> None:
        __tracebackhide__ = True
        run = self.plugin.ensure_run()
        m = self.member
        if not m.released:
            pytest.skip(f"not released: {run.failure}")
        s = m.summary()
        self.user_properties += [
            (k, v) for k, v in s.items() if isinstance(v, str | int | float) and v is not None
        ]
        if m.passed and run.failure is None:
            return
        what = f"{s['verdict'] or 'no verdict'} (exit {s['exit_status']}): {s['cause']}"
        if s["rollback"] not in (None, "not needed"):
            what += f"; rollback: {s['rollback']}"
        pytest.fail(what, pytrace=False)

    def reportinfo(self) -> tuple[str, int | None, str]:
        return "waves", None, f"wave {self.member.wave}: {self.member.cluster}"


class WavesPlugin(TakeoverPlugin):
    """Registered by the gate's plugin when the ``--cluster`` profile names waves; a SIGTERM
    rolls every cluster back as Ctrl+C does."""

    def __init__(self, config: pytest.Config, cfg: GateConfig) -> None:
        super().__init__()
        self.config, self.cfg = config, cfg
        report = cfg.report
        # The terminal reporter is registered after this plugin: looked up at each line.
        self.run = WaveRun(
            cfg,
            lambda line: terminal.writer(config)(line),
            report.with_name(f"{report.stem}-waves"),
        )
        self._done = False

    def items(self, session: pytest.Session) -> list[pytest.Item]:
        """An item per cluster, in wave order."""
        return [
            WaveItem.from_parent(
                session,
                name=m.cluster,
                nodeid=f"waves::wave{m.wave}::{m.cluster}",
                plugin=self,
                member=m,
            )
            for m in self.run.members
        ]

    def pytest_report_header(self) -> list[str]:
        waves = " -> ".join("[" + ", ".join(w) + "]" for w in self.cfg.waves or ())
        tag = self.cfg.image_tag or "as in the manifests"
        return [f"rolloutgate waves: {waves} ({self.cfg.sources.get('waves')}), image tag {tag}"]

    def ensure_run(self) -> WaveRun:
        """Run every wave once (from the first item); later items read the result."""
        if not self._done:
            self._done = True
            # An interrupt is the runner's to handle (every cluster rolls back, verified).
            self.run.execute()
        return self.run

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self._done:
            return
        data = self.run.to_json()
        if int(exitstatus) not in (3, 4):
            session.exitstatus = 0 if data["verdict"] == "pass" else 1
            if self.run.interrupted is not None:
                session.exitstatus = 2
        data["exit_status"] = int(session.exitstatus)
        path = self.cfg.report
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(redact.urls_in(json.dumps(data, indent=2)) + "\n", encoding="utf-8")
        except OSError as e:
            self.run.write(f"rolloutgate waves: report not written: {e}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self._done:
            return
        tr = terminalreporter
        tr.section("rolloutgate waves")
        for line in self.run.summary_lines():
            tr.write_line(redact.urls_in(line))
        tr.write_line(f"gate report: {self.cfg.report} (each cluster's in {self.run.directory})")


def check_options(cfg: GateConfig) -> None:
    """ConfigError for what a release in waves cannot do (yet)."""
    for flag, given in (("--recover", cfg.recover), ("--verify", cfg.verify)):
        if given:
            raise ConfigError(
                f"{flag} with a profile of waves ({cfg.cluster}): run it per cluster "
                f"(--cluster=NAME for each of {', '.join(c for w in cfg.waves or () for c in w)})"
            )
