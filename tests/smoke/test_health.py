"""The new release answers the V2 health and metadata endpoints."""

from __future__ import annotations

from rolloutgate.smoke import Golden, V2Client, describe, json_of


def test_server_live(rolloutgate_v2: V2Client) -> None:
    response = rolloutgate_v2.live()
    assert response.status_code == 200, describe(response)


def test_server_ready(rolloutgate_v2: V2Client) -> None:
    response = rolloutgate_v2.ready()
    assert response.status_code == 200, describe(response)


def test_model_ready(rolloutgate_v2: V2Client) -> None:
    response = rolloutgate_v2.model_ready()
    assert response.status_code == 200, describe(response)


def test_model_metadata(rolloutgate_v2: V2Client, rolloutgate_golden: Golden) -> None:
    response = rolloutgate_v2.model_metadata()
    assert response.status_code == 200, describe(response)
    body = json_of(response)
    assert body.get("name") == rolloutgate_golden.model, (
        f"model metadata names {body.get('name')!r}, golden file {rolloutgate_golden.path} "
        f"expects {rolloutgate_golden.model!r}: {describe(response)}"
    )


def test_server_metadata(rolloutgate_v2: V2Client) -> None:
    response = rolloutgate_v2.server_metadata()
    assert response.status_code == 200, describe(response)
    body = json_of(response)
    missing = [k for k in ("name", "version", "extensions") if k not in body]
    assert not missing, f"server metadata lacks {missing}: {describe(response)}"
