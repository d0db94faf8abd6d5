"""The release's lifecycle with the cluster layer replaced by a recording fake.

What is under test is the plugin's orchestration: which failures trigger a rollback (test
failures, setup errors of gate fixtures, interrupts, SIGTERM), that --no-rollback and --dry-run
are honoured, that a failing rollback fails the session, and what the reports say. The cluster
layer itself is tested against a real cluster elsewhere (tests/cluster_layer, e2e).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest

# The inner project's conftest: gate fixtures up to the snapshot are replaced, and the cluster
# calls the release, rollout and rollback make are patched to log to calls.log. FAKE_* env
# variables choose failures.
FAKE_CONFTEST = """
import os
from pathlib import Path

import pytest

from rolloutgate.release import apply, diagnostics, ending, plan, rollback
from rolloutgate.release.engine import Release
from rolloutgate.errors import ClusterError, RollbackFailed, RolloutFailed
from rolloutgate.pytest.hooks import PHASE_REPORTS, STATE
from rolloutgate.release.snapshot import Snapshot

LOG = Path(__file__).parent / "calls.log"


def log(what):
    with LOG.open("a") as f:
        f.write(what + "\\n")


def fake_apply(api, namespace, objs, *, change_cause):
    log("apply")
    if os.environ.get("FAKE_APPLY") == "fail":
        raise ClusterError("server-side apply of Deployment/iris: 500 boom")
    return [dict(o, metadata=dict(o["metadata"], generation=2)) for o in objs]


def fake_wait(release, deployments, *, deadline, pin, baseline=None):
    log(f"wait pin={pin}")
    release.say("rollout Deployment/iris: 1/1 ready, 0 s")
    if os.environ.get("FAKE_ROLLOUT") == "fail":
        raise RolloutFailed(
            "pod iris-abc: CrashLoopBackOff: back-off restarting failed container",
            reason="CrashLoopBackOff",
            pod="iris-abc",
        )
    return deployments


def fake_roll_back(release, golden):
    log("rollback")
    run = release.run
    run.rollback.attempted = True
    if os.environ.get("FAKE_ROLLBACK") == "fail":
        run.rollback.outcome = "rollback to v1 FAILED: health: 503"
        raise RollbackFailed(run.rollback.outcome)
    run.rollback.verified = True
    run.rollback.outcome = "rolled back to v1, verified"


@pytest.fixture(scope="session")
def _fake_cluster():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(apply, "validate", lambda api, ns, objs: log("validate"))
        mp.setattr(apply, "apply", fake_apply)
        mp.setattr(apply, "diff", lambda api, ns, objs: log("diff") or "-image: v1\\n+image: v2")
        mp.setattr(Release, "wait", fake_wait)
        mp.setattr(Release, "pod_baseline", lambda release, objs: log("baseline"))
        mp.setattr(Release, "pod_starts", lambda release: [])
        # No HPA, nothing paused, no configuration change: the objects as they are.
        mp.setattr(plan, "make", lambda api, ns, objs, *a, **k: plan.Plan(objs))
        mp.setattr(ending, "roll_back", fake_roll_back)
        mp.setattr(rollback, "restore", lambda api, ns, snap, *, deadline: log("restore") or [])
        mp.setattr(diagnostics, "of_release", lambda release: "EVENTS: pod iris-abc crashed")
        yield


@pytest.fixture(scope="session")
def rolloutgate_api(_fake_cluster, request):
    return object()  # the engine works on what the fixture returned


@pytest.fixture(scope="session")
def rolloutgate_namespace(rolloutgate_config):
    return rolloutgate_config.namespace


@pytest.fixture(scope="session")
def rolloutgate_lock():
    return None


@pytest.fixture(scope="session")
def rolloutgate_snapshot(rolloutgate_manifests):
    live = [dict(o) for o in rolloutgate_manifests]
    return Snapshot(objects=list(zip(rolloutgate_manifests, live)), namespace="iris")


def pytest_runtest_teardown(item):
    reports = item.stash.get(PHASE_REPORTS, {})
    with (Path(__file__).parent / "stash.log").open("a") as f:
        f.write(item.name + " " + ",".join(f"{w}={r.outcome}" for w, r in reports.items()) + "\\n")
"""

GATE_TESTS = """
import os


def test_rolled_out(rolloutgate_rollout):
    assert rolloutgate_rollout[0]["metadata"]["name"] == "iris"


def test_check(rolloutgate_release):
    assert os.environ.get("FAKE_CHECK", "pass") == "pass", "case 'setosa': expected [0] got [1]"
"""


@pytest.fixture
def gate(project: pytest.Pytester) -> pytest.Pytester:
    """Function. The inner project with the fake cluster conftest and two gate tests."""
    project.makeconftest(FAKE_CONFTEST)
    project.makepyfile(test_gate=GATE_TESTS)
    return project


def calls(p: pytest.Pytester) -> list[str]:
    log = p.path / "calls.log"
    return log.read_text().split("\n")[:-1] if log.exists() else []


def gate_report(p: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((p.path / "reports" / "gate.json").read_text())
    return data


def test_passing_gate_applies_once_and_does_not_roll_back(gate: pytest.Pytester) -> None:
    result = gate.runpytest("--cluster=staging", "--image-tag=v2")
    result.assert_outcomes(passed=2)
    assert calls(gate) == ["validate", "baseline", "apply", "wait pin=True"]
    report = gate_report(gate)
    assert report["verdict"] == "pass"
    assert report["rollback"]["outcome"] == "not needed"
    assert report["image_tag"] == "v2"
    assert set(report["phases_s"]) >= {"validate", "apply"}
    result.stdout.fnmatch_lines(["*rollout Deployment/iris: 1/1 ready, 0 s*", "verdict: PASS*"])


def test_failing_check_rolls_back_and_reports_it(
    gate: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CHECK", "fail")
    summary = gate.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = gate.runpytest("--cluster=staging", "--image-tag=v2", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert calls(gate)[-1] == "rollback"
    report = gate_report(gate)
    assert report["verdict"] == "rolled-back"
    assert report["cause"].startswith("test_gate.py::test_check: AssertionError: case 'setosa'")
    assert report["rollback"]["outcome"] == "rolled back to v1, verified"
    assert report["diagnostics"] == "EVENTS: pod iris-abc crashed"
    result.stdout.fnmatch_lines(
        [
            "verdict: ROLLED-BACK*",
            "rollback: rolled back to v1, verified",
            "*rolloutgate diagnostics*",
        ]
    )
    assert "## rolloutgate: ↩️ rolled-back" in summary.read_text()
    # The failing test carries the diagnostics in the JUnit XML.
    case = ET.parse(gate.path / "junit.xml").find(".//testcase[@name='test_check']")
    assert case is not None
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props.get("rolloutgate_diagnostics") == "EVENTS: pod iris-abc crashed"


def test_rollout_setup_error_rolls_back(
    gate: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_ROLLOUT", "fail")
    result = gate.runpytest("--cluster=staging", "--image-tag=crash")
    result.assert_outcomes(errors=1, passed=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_rolled_out*",
            "RolloutFailed: pod iris-abc: CrashLoopBackOff: back-off restarting failed container",
            "*= rolloutgate =*",
        ]
    )
    # The restore is submitted at the verdict (a baseline of the pods first); the teardown's
    # rollback then waits for it and verifies.
    assert calls(gate) == [
        "validate", "baseline", "apply", "wait pin=True", "baseline", "restore", "rollback"
    ]  # fmt: skip
    report = gate_report(gate)
    assert report["verdict"] == "rolled-back"
    assert report["tests"]["error"] == 1
    assert report["cause"] == (
        "test_gate.py::test_rolled_out: RolloutFailed: pod iris-abc: CrashLoopBackOff: "
        "back-off restarting failed container"
    )
    assert "During handling" not in result.stdout.str()


def test_failed_apply_is_rolled_back_too(
    gate: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_APPLY", "fail")
    result = gate.runpytest("--cluster=staging", "--image-tag=v2")
    # The second test needs the release too: its error would be the first one again.
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["not run: 1 check(s) that need rolloutgate_release, which failed (above)"]
    )
    assert calls(gate) == ["validate", "baseline", "apply", "rollback"]
    assert gate_report(gate)["tests"]["not_run"] == 1


def test_no_rollback_leaves_the_release(
    gate: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CHECK", "fail")
    result = gate.runpytest("--cluster=staging", "--image-tag=v2", "--no-rollback")
    result.assert_outcomes(passed=1, failed=1)
    assert "rollback" not in calls(gate)
    report = gate_report(gate)
    assert report["verdict"] == "fail"
    assert report["rollback"]["outcome"].startswith("disabled (--no-rollback)")


def test_failing_rollback_fails_the_session(
    gate: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CHECK", "fail")
    monkeypatch.setenv("FAKE_ROLLBACK", "fail")
    result = gate.runpytest("--cluster=staging", "--image-tag=v2")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_check*", "*RollbackFailed: rollback to v1 FAILED*"]
    )
    assert gate_report(gate)["verdict"] == "fail"


def test_dry_run_validates_diffs_and_skips(gate: pytest.Pytester) -> None:
    result = gate.runpytest("--cluster=staging", "--image-tag=v2", "--dry-run", "-rs")
    result.assert_outcomes(skipped=2)
    assert calls(gate) == ["validate", "diff"]
    result.stdout.fnmatch_lines(
        [
            "*- rolloutgate dry-run diff -*",
            "+image: v2",
            "*dry run (--dry-run): 2 objects validated, nothing applied*",
        ]
    )
    report = gate_report(gate)
    assert report["verdict"] == "pass"
    assert report["applied"] is False


def test_verify_checks_the_live_release_and_changes_nothing(gate: pytest.Pytester) -> None:
    gate.makepyfile(
        test_fail="""
def test_golden(rolloutgate_rollout):
    assert False, "case 'setosa': expected [0] got [1]"
"""
    )
    result = gate.runpytest("--cluster=staging", "--verify")
    result.assert_outcomes(passed=2, failed=1)
    # The live workloads waited for unpinned; no validate, apply, restore or rollback.
    assert calls(gate) == ["baseline", "wait pin=False"]
    report = gate_report(gate)
    assert report["verdict"] == "fail"
    assert report["verify"] is True
    assert report["applied"] is False
    assert report["rollback"]["attempted"] is False
    assert "none: --verify applies nothing" in report["rollback"]["outcome"]
    assert report["live_release"]["verified"] is False
    result.stdout.fnmatch_lines(
        ["*VERIFY ONLY*", "verdict: FAIL - *setosa*", "live release: tag *no release record*"]
    )


def test_interrupt_rolls_back(gate: pytest.Pytester) -> None:
    gate.makepyfile(
        test_gate="""
        def test_interrupted(rolloutgate_rollout):
            raise KeyboardInterrupt
        """
    )
    # A subprocess: an in-process KeyboardInterrupt would reach the outer run's terminal.
    result = gate.runpytest_subprocess("--cluster=staging", "--image-tag=v2")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert calls(gate)[-1] == "rollback"
    report = gate_report(gate)
    assert report["interrupted"] == "KeyboardInterrupt: Ctrl+C"
    assert report["verdict"] == "rolled-back"


def test_sigterm_rolls_back(gate: pytest.Pytester) -> None:
    gate.makepyfile(
        test_gate="""
        import time
        from pathlib import Path

        def test_slow(rolloutgate_rollout):
            Path("started").touch()
            time.sleep(60)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cluster=staging"],
        cwd=gate.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (gate.path / "started").exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the inner test never started"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert calls(gate)[-1] == "rollback", output
    assert gate_report(gate)["interrupted"] == "SIGTERM"


def test_makereport_records_every_phase_in_the_item_stash(gate: pytest.Pytester) -> None:
    gate.makepyfile(
        test_plain="""
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("setup")

        def test_ok():
            pass

        def test_fails():
            assert False

        def test_setup_error(broken):
            pass
        """
    )
    gate.runpytest("test_plain.py")  # no cluster: the stash is kept all the same
    lines = (gate.path / "stash.log").read_text().splitlines()
    # Teardown has not been reported yet when the teardown hook runs.
    assert lines == [
        "test_ok setup=passed,call=passed",
        "test_fails setup=passed,call=failed",
        "test_setup_error setup=failed",
    ]
