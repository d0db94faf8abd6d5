"""The release record (a ConfigMap, readable by the `view` role) never holds Secret values: they
go to a companion Secret, and come back when the record is read."""

from __future__ import annotations

import json

from rolloutgate.release import record
from rolloutgate.release.target import target_of

VALUE = "aHVudGVyMg=="  # base64 of a planted value
PLAIN = "plain-planted-value"


def a_record() -> dict:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "creds",
            "labels": {"app": "iris"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                    {"stringData": {"token": PLAIN}}
                ),
                "team": "ml",
            },
        },
        "data": {"token": VALUE},
    }
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "iris"}}
    target = target_of([deployment, secret], tag="v1", verified=True, by="gate", first_deploy=False)
    return {"step": "verified", "tag": "v1", "target": target}


def test_secret_values_leave_the_record_and_come_back() -> None:
    full = a_record()
    public, hidden = record.split_secrets(full, "rolloutgate-iris-release")
    text = json.dumps(public)
    assert VALUE not in text
    assert PLAIN not in text
    kept = public["target"]["objects"][1]
    assert kept[record.CONTENT_IN] == "rolloutgate-iris-release"
    assert kept["metadata"]["annotations"] == {"team": "ml"}
    assert kept["type"] == "Opaque"
    assert VALUE in json.dumps(hidden)
    assert record.merge_secrets(public, hidden) == full


def test_a_record_without_secrets_needs_no_companion() -> None:
    full = a_record()
    full["target"]["objects"] = full["target"]["objects"][:1]
    public, hidden = record.split_secrets(full, "x")
    assert hidden == {}
    assert public == full
