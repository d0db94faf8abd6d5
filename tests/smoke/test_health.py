"""The new release answers its health checks (the golden file's protocol decides which)."""

from __future__ import annotations

import pytest

from rolloutgate.cases import Golden, HttpClient
from rolloutgate.smoke import V2Client, describe, json_of


@pytest.mark.parametrize("check", ["live", "ready", "model_ready"])
def test_health(rolloutgate_http: HttpClient, check: str) -> None:
    response = rolloutgate_http.health_check(check)
    if response is None:
        pytest.skip(f"no {check} check for this server (protocol preset and health settings)")
    assert response.status_code == 200, describe(response)


def test_model_metadata(rolloutgate_v2: V2Client, rolloutgate_golden: Golden) -> None:
    if rolloutgate_golden.protocol.metadata_path is None:
        pytest.skip(f"protocol {rolloutgate_golden.protocol.name} has no model metadata")
    response = rolloutgate_v2.model_metadata()
    assert response.status_code == 200, describe(response)
    body = json_of(response)
    assert body.get("name") == rolloutgate_golden.model, (
        f"model metadata names {body.get('name')!r}, golden file {rolloutgate_golden.path} "
        f"expects {rolloutgate_golden.model!r}: {describe(response)}"
    )


def test_server_metadata(rolloutgate_v2: V2Client, rolloutgate_golden: Golden) -> None:
    if rolloutgate_golden.protocol.metadata_path is None:
        pytest.skip(f"protocol {rolloutgate_golden.protocol.name} has no server metadata")
    response = rolloutgate_v2.server_metadata()
    assert response.status_code == 200, describe(response)
    body = json_of(response)
    missing = [k for k in ("name", "version", "extensions") if k not in body]
    assert not missing, f"server metadata lacks {missing}: {describe(response)}"
