"""Releases made of more than one Deployment and Service: a Namespace in the manifests and a
release whose objects partly existed roll back object by object; two Deployments are waited on
at once; a dry run into a namespace that does not exist validates what the server can."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from gaterun import PENGUIN, kubectl
from manifestkit import edit_deployment, exists, fresh_namespace, get, manifests

HAND_MADE_SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: penguin
  labels: {app.kubernetes.io/name: penguin, made-by: hand}
spec:
  selector: {app.kubernetes.io/name: penguin}
  ports: [{name: http, port: 80, targetPort: 8000, protocol: TCP}]
"""


def _namespaces(ns: str, extra: str) -> str:
    return f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
  labels: {{team: ml}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: {extra}
"""


def _service_state(ns: str) -> dict[str, Any]:
    svc = get("service", "penguin", ns)
    return {"labels": svc["metadata"].get("labels"), "ports": svc["spec"]["ports"]}


def _terminating_or_gone(kind: str, name: str, ns: str | None = None) -> bool:
    if not exists(kind, name, ns):
        return True
    return bool(get(kind, name, ns)["metadata"].get("deletionTimestamp"))


def test_namespace_manifest_and_partly_preexisting_release_roll_back_cleanly(
    e2e_cluster: None, tmp_path: Path
) -> None:
    with fresh_namespace("e2e-objs") as ns:
        extra = f"{ns}-extra"
        try:
            # The namespace and the Service exist (made by hand); the Deployment and a second
            # Namespace do not.
            kubectl("create", "namespace", ns)
            (tmp_path / "svc.yaml").write_text(HAND_MADE_SERVICE)
            kubectl("create", "-f", str(tmp_path / "svc.yaml"), namespace=ns)
            service_before = _service_state(ns)
            labels_before = get("namespace", ns)["metadata"].get("labels")
            target = manifests(tmp_path / "m", replicas=1, namespaces=_namespaces(ns, extra))
            source = f"--manifests={target}"

            crash = PENGUIN.run(ns, tmp_path / "c1.json", "--image-tag=crash", source)

            assert crash.returncode == 1, crash.output[-4000:]
            rb = crash.report["rollback"]
            assert rb["verified"] is True, rb
            assert rb["outcome"].startswith("no workload existed before the release"), rb
            actions = rb["actions"]
            assert f"Namespace/{ns}: restored spec, labels and annotations" in actions[0], actions
            assert any(a.startswith("Service/penguin: restored") for a in actions), actions
            deleted = [a.split(":")[0] for a in actions if "did not exist before" in a]
            # Reverse apply order: the Deployment first, the Namespace last.
            assert deleted == ["Deployment/penguin", f"Namespace/{extra}"], actions
            assert not exists("deployment", "penguin", ns)
            assert _terminating_or_gone("namespace", extra)
            assert _service_state(ns) == service_before
            assert get("namespace", ns)["metadata"].get("labels") == labels_before

            # With a release that passed, a failed one rolls back to it and verifies it, the
            # Namespace manifest included.
            good = PENGUIN.run(ns, tmp_path / "v1.json", "--image-tag=v1", source)
            assert good.returncode == 0, good.output[-4000:]
            assert get("namespace", ns)["metadata"]["labels"]["team"] == "ml"
            again = PENGUIN.run(ns, tmp_path / "c2.json", "--image-tag=crash", source)
            assert again.returncode == 1, again.output[-4000:]
            outcome = again.report["rollback"]["outcome"]
            assert again.report["rollback"]["verified"] is True, outcome
            assert outcome.startswith("rolled back to v1, verified (health and golden"), outcome
        finally:
            kubectl("delete", "namespace", extra, "--ignore-not-found", "--wait=false")


def _second(target: Path) -> None:
    """A second Deployment, `penguin-b`, made from the first (same probes and resources) but
    with the `crash` image: the fail-fast rules see both alike."""
    obj = yaml.safe_load((target / "deployment.yaml").read_text())
    obj["metadata"]["name"] = "penguin-b"
    labels = {"app.kubernetes.io/name": "penguin-b"}
    obj["metadata"]["labels"] = labels
    obj["spec"]["selector"]["matchLabels"] = labels
    obj["spec"]["template"]["metadata"]["labels"] = labels
    obj["spec"]["template"]["spec"]["containers"][0]["image"] = "rolloutgate/penguin:crash"
    (target / "second.yaml").write_text(yaml.safe_dump(obj, sort_keys=False))


def test_two_deployments_fail_within_seconds_when_the_second_crashes(
    e2e_cluster: None, tmp_path: Path
) -> None:
    # One Deployment that crashes, then the same crash as the second of two Deployments whose
    # first one never becomes ready (the `unready` image: its server answers 503 on readiness):
    # waited on one after the other, the crash would be seen only at the rollout timeout.
    with fresh_namespace("e2e-one") as ns:
        alone = manifests(tmp_path / "one", replicas=1)
        one = PENGUIN.run(ns, tmp_path / "one.json", "--image-tag=crash", f"--manifests={alone}",
                       "--rollout-timeout=120")  # fmt: skip
    with fresh_namespace("e2e-two") as ns:
        both = manifests(tmp_path / "two", replicas=1)
        _second(both)
        edit_deployment(both, _unready)
        # Tags as written: penguin is unready, penguin-b is crash.
        two = PENGUIN.run(ns, tmp_path / "two.json", f"--manifests={both}", "--rollout-timeout=120")

    for result in (one, two):
        assert result.returncode == 1, result.output[-4000:]
        assert result.report["verdict"] == "rolled-back", result.report.get("cause")
    assert "penguin-b" in two.report["cause"], two.report["cause"]
    alone_s, both_s = one.report["phases_s"]["rollout"], two.report["phases_s"]["rollout"]
    print(f"rollout phase to the crash verdict: one Deployment {alone_s:.1f} s, two {both_s:.1f} s")
    assert both_s < alone_s + 10, (alone_s, both_s)
    assert both_s < 60, both_s


def test_dry_run_into_a_namespace_that_does_not_exist(e2e_cluster: None, tmp_path: Path) -> None:
    with fresh_namespace("e2e-dry") as ns:
        target = manifests(tmp_path / "m", replicas=1)
        started = time.monotonic()
        dry = PENGUIN.run(ns, tmp_path / "dry.json", "--image-tag=v2", f"--manifests={target}",
                       "--dry-run")  # fmt: skip
        took = time.monotonic() - started
        assert dry.returncode == 0, dry.output[-4000:]
        assert f"namespace {ns} does not exist: the gate would create it" in dry.output
        assert "2 namespaced object(s) validated against the schema only" in dry.output
        assert "failed the server-side dry-run" not in dry.output
        assert "+++ new/Deployment/penguin" in dry.output
        assert "rolloutgate/penguin:v2" in dry.report["dry_run_diff"]
        assert not exists("namespace", ns), "a dry run created the namespace"
        print(f"dry run into a new namespace: {took:.1f} s")

        # A real schema error is still found, and only that one.
        edit_deployment(target, _bogus_field)
        bad = PENGUIN.run(ns, tmp_path / "bad.json", "--image-tag=v2", f"--manifests={target}",
                       "--dry-run")  # fmt: skip
        assert bad.returncode != 0, bad.output[-4000:]
        assert "1 of 2 manifests failed the server-side dry-run" in bad.output, bad.output[-3000:]
        assert "bogusField" in bad.output
        assert not exists("namespace", ns)


def _unready(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["image"] = "rolloutgate/penguin:unready"


def _bogus_field(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["bogusField"] = 1
