"""Broken candidates end to end: each real broken image (crash, pull error, never ready, slow,
never answering) fails the canary with both arms removed and the live v1 untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from canaryrun import ONE_POD, assert_no_arm, metric, run_canary
from gaterun import deployment_state

pytestmark = pytest.mark.usefixtures("canary_images", "iris_canary_manifests")


@pytest.mark.parametrize(
    ("tag", "args", "reason"),
    [
        # Fail fast: the arm's crash or pull error is the verdict, not a deadline.
        ("crash", (), "canary arm: CrashLoopBackOff: "),
        ("missing", (), "canary arm: ErrImagePull: "),
        ("unready", ("--rollout-timeout=25",), "canary arm: Timeout: "),
        ("slow", ("--canary-requests=50",), "latency: canary much slower"),
        # Accepts every inference and never answers: 4 request timeouts in a row that the
        # baseline answered stop the traffic (a 3 s request timeout keeps the run short).
        ("hang", (), "errors: the canary stopped answering: 4 requests in a row failed"),
    ],
)
def test_broken_candidates_fail_with_both_arms_removed(
    live_v1: dict[str, Any],
    e2e_namespace: str,
    tmp_path: Path,
    tag: str,
    args: tuple[str, ...],
    reason: str,
) -> None:
    result = run_canary(
        e2e_namespace,
        tmp_path,
        f"--image-tag={tag}",
        *args,
        # One pod per arm: a broken candidate is broken on one pod (and the node's pod limit
        # was met by six once).
        env={
            "ROLLOUTGATE_CANARY_WARMUP": "2",
            # Not the default's 720: these end on an arm or a streak, not on latency power.
            "ROLLOUTGATE_CANARY_REQUESTS": "200",
            "ROLLOUTGATE_REQUEST_TIMEOUT": "3",
            **ONE_POD,
        },
    )
    assert result.returncode == 1, result.output[-5000:]
    assert result.report["verdict"] == "fail"
    assert reason in result.report["reason"], result.report["reason"]
    if tag == "hang":
        errors = metric(result, "errors")
        assert errors["critical"], errors
        assert "got no answer within 3 s" in errors["reason"]
        # Its timeouts are its own: in its latency samples, not filed as the path's.
        samples = result.report["evidence"]["samples"]
        canary = [s for s in samples if s["arm"] == "canary"]
        assert {s["outcome"] for s in canary} == {"timeout"}
        # Stopped on the streak (4 pairs in a row, warm-up included, and what was in flight),
        # not after 200 timeouts.
        assert len(canary) <= 12, len(canary)
    assert_no_arm(e2e_namespace)
    assert deployment_state(e2e_namespace) == live_v1
