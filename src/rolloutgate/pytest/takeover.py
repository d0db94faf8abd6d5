"""A plugin that takes the session over: its own items in place of the gate suite's.

``--canary`` and a profile of waves each run something other than the suite's tests, and
report it as test items (one per metric, one per cluster), so that ``--junitxml`` carries their
verdicts. Both deselect every collected item, put their own in its place, and turn SIGTERM (a
cancelled CI job) into KeyboardInterrupt while they run, so that their clean-up runs as for
Ctrl+C (the canary's arms deleted, every cluster of the waves rolled back).
"""

from __future__ import annotations

import pytest

from rolloutgate.pytest import terminal


class TakeoverPlugin:
    """The base of such a plugin: ``items`` says what replaces the suite's items."""

    def __init__(self) -> None:
        self.signals = terminal.SigtermAsInterrupt()

    def items(self, session: pytest.Session) -> list[pytest.Item]:
        raise NotImplementedError

    def install_sigterm(self) -> None:
        """SIGTERM as KeyboardInterrupt until pytest unconfigures."""
        self.signals.install()

    def pytest_unconfigure(self) -> None:
        self.signals.restore()

    # trylast: other plugins' changes to the suite's items do not matter, all are deselected.
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if items:
            config.hook.pytest_deselected(items=list(items))
        items[:] = self.items(session)
