"""The iris example gated over gRPC (profile local-grpc): MLServer's Open Inference Protocol
service on port 8081, the same golden cases as over REST sent as ModelInfer calls, to every
replica through its own port-forward. v2 passes; `wrong` answers its cases wrong over gRPC,
fails, is rolled back to v2, and the rollback is verified over gRPC too."""

from __future__ import annotations

from pathlib import Path

from gaterun import IRIS, deployment_state, live_pods_ready_with, run_gate
from manifestkit import fresh_namespace

GRPC = "local-grpc"


def test_grpc_release_passes_and_a_wrong_one_rolls_back_verified(
    e2e_cluster: None, tmp_path: Path
) -> None:
    m = IRIS.copy(tmp_path / "m", replicas=2)
    with fresh_namespace("e2e-grpc") as target:
        args = (f"--manifests={m}",)
        # Every check goes to the Service's port 8081, where MLServer answers gRPC only: a
        # check passing there was made over gRPC.
        good = run_gate(target, tmp_path / "v2.json", *args, "--image-tag=v2", cluster=GRPC)
        assert good.returncode == 0, good.output[-4000:]
        assert good.report["verdict"] == "pass"
        passed = {t["nodeid"] for t in good.report["tests"]["items"] if t["outcome"] == "passed"}
        # Every check the REST gate runs, over gRPC: health, metadata, cases, the budget.
        for test in (
            "tests/smoke/test_health.py::test_every_replica_healthy[model_ready]",
            "tests/smoke/test_health.py::test_model_metadata",
            "tests/smoke/test_predictions.py::test_golden_case[setosa-proba]",
            "tests/smoke/test_predictions.py::test_latency_budget",
        ):
            assert test in passed, good.output[-4000:]
        before = deployment_state(target)

        bad = run_gate(target, tmp_path / "wrong.json", *args, "--image-tag=wrong", cluster=GRPC)
        assert bad.returncode == 1, bad.output[-4000:]
        report = bad.report
        assert report["verdict"] == "rolled-back", report["cause"]
        assert "test_golden_case" in report["cause"], report["cause"]
        failing = [t["message"] for t in report["tests"]["items"] if t["outcome"] == "failed"]
        assert any("2 of 2 replicas answered wrong" in m for m in failing), failing
        assert report["rollback"]["verified"] is True, report["rollback"]
        assert "health and golden checks passed" in report["rollback"]["outcome"]
        assert deployment_state(target) == before
        assert live_pods_ready_with(target, "v2")
