"""A release in waves with the cluster layer faked (test_release.py's fake, in each member's
gate process): the runner starts a gate per cluster, a wave at a time; passed gates wait for
its word; a failure anywhere rolls back every released cluster; one JSON report and a JUnit row
per cluster."""

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
from test_release import FAKE_CONFTEST

WAVES = """
[tool.rolloutgate.clusters.a]
context = "staging"
namespace = "a"

[tool.rolloutgate.clusters.b]
context = "staging"
namespace = "b"

[tool.rolloutgate.clusters.c]
context = "staging"
namespace = "c"

[tool.rolloutgate.clusters.all]
waves = [["a"], ["b", "c"]]
"""

# A check that fails on the cluster FAKE_FAIL_CLUSTER names, and stays on FAKE_SLOW_CLUSTER.
CHECKS = """
import os
import time
from pathlib import Path


def test_check(rolloutgate_rollout, rolloutgate_config):
    if rolloutgate_config.cluster == os.environ.get("FAKE_SLOW_CLUSTER"):
        Path(f"{rolloutgate_config.cluster}.checking").touch()
        time.sleep(60)
    assert rolloutgate_config.cluster != os.environ.get("FAKE_FAIL_CLUSTER"), "case 'setosa': wrong"
"""


@pytest.fixture
def waves(project: pytest.Pytester) -> pytest.Pytester:
    """Function. The inner project with three cluster profiles in two waves, the fake cluster."""
    pyproject = project.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + WAVES)
    project.makeconftest(FAKE_CONFTEST)
    project.makepyfile(test_gate=CHECKS)
    return project


def run(p: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any], ET.Element]:
    result = p.runpytest("--cluster=all", "--image-tag=v2", "--junitxml=junit.xml", *args)
    report = json.loads((p.path / "reports" / "gate.json").read_text())
    return result, report, ET.parse(p.path / "junit.xml").getroot()


def test_every_wave_passes_and_every_gate_keeps_its_release(waves: pytest.Pytester) -> None:
    result, report, junit = run(waves)
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert report["verdict"] == "pass"
    assert report["waves"] == [["a"], ["b", "c"]]
    rows = report["clusters"]
    assert [(r["cluster"], r["wave"], r["verdict"], r["told"]) for r in rows] == [
        ("a", 1, "pass", "keep"),
        ("b", 2, "pass", "keep"),
        ("c", 2, "pass", "keep"),
    ]
    assert {"wave 1", "wave 2", "end"} <= set(report["phases_s"])
    names = [tc.get("name") for tc in junit.iter("testcase")]
    assert names == ["a", "b", "c"]
    # Each cluster's own gate report, with its own target.
    a = json.loads((waves.path / "reports" / "gate-waves" / "a.json").read_text())
    assert a["target"]["namespace"] == "a"
    result.stdout.fnmatch_lines(["*[[]a[]] rolloutgate: passed; waiting for the wave runner*"])


def test_a_failure_in_the_second_wave_rolls_back_every_released_cluster(
    waves: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAIL_CLUSTER", "b")
    result, report, junit = run(waves)
    assert result.ret == 1
    assert report["verdict"] == "rolled-back", report
    assert report["cause"].startswith("cluster b: test_gate.py::test_check: AssertionError: case")
    rows = {r["cluster"]: r for r in report["clusters"]}
    assert rows["b"]["verdict"] == "rolled-back"
    assert rows["b"]["told"] is None  # it failed: its own gate rolled back
    for passed in ("a", "c"):  # passed, waited, told to roll back
        assert rows[passed]["told"].startswith("cluster b: "), rows[passed]
        assert rows[passed]["verdict"] == "rolled-back"
        assert rows[passed]["cause"].startswith("passed here, rolled back with the other clusters")
    failures = {tc.get("name"): tc.find("failure") for tc in junit.iter("testcase")}
    assert all(f is not None for f in failures.values()), failures
    result.stdout.fnmatch_lines(["verdict: ROLLED-BACK - cluster b: *"])


def test_a_failing_first_wave_releases_nothing_more(
    waves: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAIL_CLUSTER", "a")
    result, report, junit = run(waves)
    assert result.ret == 1
    rows = {r["cluster"]: r for r in report["clusters"]}
    assert rows["a"]["verdict"] == "rolled-back"
    assert not rows["b"]["released"]
    assert not rows["c"]["released"]
    skipped = [tc.get("name") for tc in junit.iter("testcase") if tc.find("skipped") is not None]
    assert skipped == ["b", "c"]


def test_waves_must_name_profiles_of_single_clusters(waves: pytest.Pytester) -> None:
    pyproject = waves.path / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[tool.rolloutgate.clusters.bad]\nwaves = [["a"], ["nowhere"]]\n'
    )
    result = waves.runpytest("--cluster=bad")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*waves (profile bad) name 'nowhere', which is not a profile*"])
    result = waves.runpytest("--cluster=all", "--verify")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*--verify with a profile of waves (all): run it per cluster*"])


def test_dry_run_covers_every_cluster(waves: pytest.Pytester) -> None:
    result, report, _junit = run(waves, "--dry-run")
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert report["dry_run"] is True
    for cluster in ("a", "b", "c"):
        own = json.loads((waves.path / "reports" / "gate-waves" / f"{cluster}.json").read_text())
        assert (own["dry_run"], own["applied"]) == (True, False), cluster
    assert all(r["told"] is None for r in report["clusters"])  # nothing applied: nothing held


def test_sigterm_rolls_back_every_released_cluster(waves: pytest.Pytester) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["FAKE_SLOW_CLUSTER"] = "c"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cluster=all",
         "--image-tag=v2"],
        cwd=waves.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        b_log = waves.path / "reports" / "gate-waves" / "b.log"
        while not (waves.path / "c.checking").exists() or "waiting for the wave runner" not in (
            b_log.read_text() if b_log.exists() else ""
        ):
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "wave 2 never got there"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    report = json.loads((waves.path / "reports" / "gate.json").read_text())
    assert report["interrupted"] == "SIGTERM"
    rows = {r["cluster"]: r for r in report["clusters"]}
    # a and b had passed and waited: told to roll back; c was interrupted: its own rollback.
    assert rows["a"]["told"].startswith("interrupted (SIGTERM)"), rows["a"]
    assert [rows[c]["verdict"] for c in "abc"] == ["rolled-back"] * 3, output[-3000:]
    assert rows["c"]["cause"] == "interrupted (SIGTERM)"
