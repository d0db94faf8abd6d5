"""The new release answers its health checks on every replica (the golden file's protocol
decides which checks), and, for V2, the metadata endpoints through the endpoint."""

from __future__ import annotations

import pytest

from rolloutgate import Golden, HttpClient, V2Client, describe, each_replica, json_of

# A 200 a replica gave this recently stands for its answer: opening the replicas asked each
# pod's first health check (live) a few seconds before; asking again cost 100 requests at 100
# replicas. Any other answer, or an older one, is asked again.
ANSWERED_WITHIN_S = 10.0


@pytest.mark.parametrize("check", ["live", "ready", "model_ready"])
def test_every_replica_healthy(rolloutgate_replicas: dict[str, HttpClient], check: str) -> None:
    assert rolloutgate_replicas, "no pod of the new release behind the Service"
    if all(check not in client.health for client in rolloutgate_replicas.values()):
        pytest.skip(
            f"not configured: no {check} check for this server (protocol preset and health.*)"
        )
    answers = each_replica(
        rolloutgate_replicas,
        lambda client: client.health_check(check, max_age_s=ANSWERED_WITHIN_S),
    )
    failing = [
        f"pod {pod}: {describe(response)}"
        for pod, response in answers.items()
        if response is not None and response.status_code != 200
    ]
    assert not failing, f"{len(failing)} of {len(rolloutgate_replicas)} replicas: " + "; ".join(
        failing
    )


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
