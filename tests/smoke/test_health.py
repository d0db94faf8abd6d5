"""The new release answers the V2 health and metadata endpoints: health on every replica,
metadata through the endpoint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from rolloutgate.smoke import Golden, V2Client, describe, json_of


@pytest.mark.parametrize(
    "check", [V2Client.live, V2Client.ready, V2Client.model_ready], ids=lambda f: f.__name__
)
def test_every_replica_healthy(
    rolloutgate_replicas: dict[str, V2Client],
    check: Callable[[V2Client], requests.Response],
) -> None:
    assert rolloutgate_replicas, "no pod of the new release behind the Service"
    failing = [
        f"pod {pod}: {describe(response)}"
        for pod, client in rolloutgate_replicas.items()
        if (response := check(client)).status_code != 200
    ]
    assert not failing, f"{len(failing)} of {len(rolloutgate_replicas)} replicas: " + "; ".join(
        failing
    )


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
