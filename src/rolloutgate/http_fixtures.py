"""Fixtures of the protocol-neutral HTTP checks; loaded by ``rolloutgate.plugin``.

``rolloutgate_http`` sends golden cases and health checks to the new release, whatever protocol
its golden file names (``rolloutgate.protocols``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rolloutgate.cases import Golden, HttpClient, client_for
from rolloutgate.config import GateConfig


@pytest.fixture(scope="session")
def rolloutgate_http(
    rolloutgate_endpoint: str, rolloutgate_golden: Golden, rolloutgate_config: GateConfig
) -> Iterator[HttpClient]:
    """Session. A ``rolloutgate.cases.HttpClient`` at the release's endpoint: ``send(case
    .request)``, ``health_check(name)``; health paths from the ``health.*`` settings, else the
    golden file, else its protocol's preset. Per-request timeout ``timeouts.request``."""
    with client_for(rolloutgate_endpoint, rolloutgate_golden, rolloutgate_config) as client:
        yield client
