"""A gate interrupted mid-rollout still rolls back and verifies; a second gate meanwhile is
refused by the first one's lock with a message naming the holder."""

from __future__ import annotations

from pathlib import Path

from gaterun import RunningGate, deployment_state, live_pods_ready_with, namespace_objects, run_gate


def test_sigterm_mid_rollout_rolls_back_and_a_second_gate_is_locked_out(
    v1_release: dict, e2e_namespace: str, tmp_path: Path
) -> None:
    before = deployment_state(e2e_namespace)
    first = RunningGate(
        e2e_namespace, tmp_path / "first.json", "--image-tag=unready", "--rollout-timeout=240"
    )
    try:
        # The unready release never becomes ready: the first gate sits in its rollout wait.
        first.wait_for_line("rollout Deployment/iris:", timeout=120)

        objects = namespace_objects(e2e_namespace)
        second = run_gate(
            e2e_namespace,
            tmp_path / "second.json",
            "--image-tag=v2",
            "--lock-timeout=3",
            timeout=120,
        )
        assert second.returncode != 0
        assert "held by" in second.output or "holder" in second.output, second.output[-3000:]
        # The locked-out gate changed nothing (the first gate's own lease renewals aside).
        after = {
            k: v for k, v in namespace_objects(e2e_namespace).items() if not k.startswith("Lease/")
        }
        assert after == {k: v for k, v in objects.items() if not k.startswith("Lease/")}
    finally:
        result = first.terminate_and_wait(timeout=400)

    # For docs/reliability.md (`-s` shows it).
    rb = result.report.get("rollback", {})
    print(f"FIGURE second gate: exit {second.returncode}, lock phase {second.report['phases_s']}")
    print(
        f"FIGURE first gate: {rb.get('outcome')}; restore acknowledged "
        f"{rb.get('restored_after_interrupt_s')} s after SIGTERM; "
        f"phases {result.report['phases_s']}"
    )
    assert result.returncode == 2, result.output[-4000:]
    assert result.report["interrupted"] == "SIGTERM"
    assert result.report["rollback"]["verified"] is True, result.report["rollback"]
    assert "rolled back to v1, verified" in result.output
    assert deployment_state(e2e_namespace) == before
    assert live_pods_ready_with(e2e_namespace, "v1")
