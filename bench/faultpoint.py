"""A pause at a named step of the gate, so that a fault meets exactly that step.

Loaded into the gate's pytest by the fault benchmark and the fault tests (`-p bench.faultpoint`),
never by users. ROLLOUTGATE_FAULTPOINT names the step: one of the gate's fixtures (its setup:
``rolloutgate_release`` is the dry-run and the apply, ``rolloutgate_rollout`` the rollout wait,
``rolloutgate_endpoint`` the endpoint and the checks after it, ``rolloutgate_snapshot`` a
recovery), or ``teardown`` (the session's end, where a failed release is rolled back). When the
gate gets there it writes ROLLOUTGATE_FAULTPOINT_DIR/reached and waits for .../go (10 minutes at
most), which the harness writes once the fault is in place.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

POINT_ENV = "ROLLOUTGATE_FAULTPOINT"
DIR_ENV = "ROLLOUTGATE_FAULTPOINT_DIR"
WAIT_S = 600.0


def _pause(where: str) -> None:
    directory = os.environ.get(DIR_ENV)
    if not directory:
        return
    (Path(directory) / "reached").write_text(f"{where}\n")
    deadline = time.monotonic() + WAIT_S
    while not (Path(directory) / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any]) -> Generator[None, Any, Any]:
    if fixturedef.argname == os.environ.get(POINT_ENV):
        _pause(fixturedef.argname)
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    # The last item's teardown finalizes the session's fixtures: the release's end is there.
    if nextitem is None and os.environ.get(POINT_ENV) == "teardown":
        _pause("teardown")
