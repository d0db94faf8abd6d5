"""A gate interrupted mid-rollout still rolls back and verifies; a second gate meanwhile is
refused by the first one's lock with a message naming the holder (on the penguin example)."""

from __future__ import annotations

from pathlib import Path

from gaterun import PENGUIN, namespace_objects


def test_sigterm_mid_rollout_rolls_back_and_a_second_gate_is_locked_out(
    penguin_v1: dict, e2e_namespace: str, tmp_path: Path
) -> None:
    before = PENGUIN.state(e2e_namespace)
    first = PENGUIN.start(
        e2e_namespace, tmp_path / "first.json", "--image-tag=unready", "--rollout-timeout=240"
    )
    try:
        # The unready release never becomes ready: the first gate sits in its rollout wait.
        first.wait_for_line(PENGUIN.rollout_line, timeout=120)

        objects = namespace_objects(e2e_namespace)
        second = PENGUIN.run(
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
    assert PENGUIN.state(e2e_namespace) == before
    assert PENGUIN.ready_with(e2e_namespace, "v1")
