"""The shipped workflows survive a cancel as GitHub does it (issue 19).

GitHub's runner signals only the step's entry process, the `bash -e` running the step's
script: SIGINT, SIGTERM 7.5 s later, the process tree killed 2.5 s after that. A bash waiting
for pytest passes neither signal on, so unless the script `exec`s pytest, pytest is killed
without ever seeing a signal and nothing is rolled back. These tests run each workflow's own
step script (read from its YAML) under that sequence: with a stand-in pytest that only says
which signals reached it (every workflow, no cluster), and the release gate's step for real on
the local cluster.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import workflow
from gaterun import PENGUIN, REPO, kubectl

import rolloutgate
from rolloutgate.canary.config import RunDefaults, traffic_deadline

GATE = ("release-gate.yml", "gate", "Release gate")
CANARY = ("nightly-canary.yml", "canary", "Canary")

# A stand-in for pytest on PATH: says it started, then each signal it gets, and ends on SIGTERM.
# "started" is written beside and renamed into place: the test signals as soon as the file
# exists, and a signal's line appended while write_text was still writing was overwritten by it
# (seen once on a busy machine: only SIGTERM recorded).
STAND_IN = """#!{python}
import os, pathlib, signal, sys, time
out = pathlib.Path({out!r})
def said(signum, _frame):
    with out.open("a") as f:
        f.write(signal.Signals(signum).name + "\\n")
    if signum == signal.SIGTERM:
        sys.exit(2)
signal.signal(signal.SIGINT, said)
signal.signal(signal.SIGTERM, said)
out.with_name("starting").write_text("started " + " ".join(sys.argv[1:]) + "\\n")
os.replace(out.with_name("starting"), out)
time.sleep(60)
"""


@pytest.mark.parametrize("where", [GATE, CANARY], ids=["release-gate", "nightly-canary"])
def test_the_step_entry_process_signalled_alone_reaches_pytest(
    where: tuple[str, str, str], tmp_path: Path
) -> None:
    step = workflow.step(*where)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    out = tmp_path / "signals"
    stand_in = bin_dir / "pytest"
    stand_in.write_text(STAND_IN.format(python=sys.executable, out=str(out)))
    stand_in.chmod(0o755)
    env = {
        **os.environ,
        **step.env,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "GITHUB_REF_NAME": "v2",
        "CANDIDATE": "nightly-20261202",
        "PROMOTE": "true",
    }
    proc = workflow.start(step.script, tmp_path, env)
    try:
        deadline = time.monotonic() + 20
        while not out.exists():
            assert proc.poll() is None, workflow.output(tmp_path).read_text()
            assert time.monotonic() < deadline, "the step never started pytest"
            time.sleep(0.05)
        cancelled = workflow.cancel(proc)
        proc.wait(timeout=10)
        output = workflow.output(tmp_path).read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    said = out.read_text().splitlines()
    assert said[0].startswith("started --cluster=staging"), said
    # Both reached pytest, and it ended on SIGTERM: the tree was never killed.
    assert said[1:] == ["SIGINT", "SIGTERM"], (said, output)
    assert cancelled.sigterm_sent
    assert not cancelled.tree_killed
    assert proc.returncode == 2


def test_workflows_install_the_gate_keep_apart_and_outlast_its_timeouts() -> None:
    """What else a copied workflow must get right: it installs the gate (not the repository it
    runs in) with pip's cache; the release gate and the nightly canary are in different
    concurrency groups (a queued run cancels the pending one of its group); each job's limit is
    longer than the staging profile's worst case (a job cut at its limit is cancelled)."""
    gate, canary = (workflow.workflow(w) for w in ("release-gate.yml", "nightly-canary.yml"))
    assert gate["concurrency"]["group"] != canary["concurrency"]["group"]
    for flow, job in ((gate, "gate"), (canary, "canary")):
        assert flow["env"]["ROLLOUTGATE"] == f"rolloutgate=={rolloutgate.__version__}"
        steps = flow["jobs"][job]["steps"]
        setup = next(s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python"))
        assert setup["with"]["cache"] == "pip"
        install = next(s for s in steps if s.get("name") == "Install the gate")
        assert install["run"] == 'pip install "$ROLLOUTGATE"'
    # The staging profile (pyproject.toml): lock 120, rollout 600, endpoint 60, rollback 600;
    # the canary adds its arms' rollout, traffic (its default deadline: 370 s at 720 requests)
    # and clean-up (120).
    release_s = 120 + 600 + 60 + 600
    traffic_s = traffic_deadline(RunDefaults.requests, RunDefaults.warmup)
    canary_s = 120 + 600 + traffic_s + 120
    assert gate["jobs"]["gate"]["timeout-minutes"] * 60 > release_s
    assert canary["jobs"]["canary"]["timeout-minutes"] * 60 > canary_s + release_s


@pytest.fixture
def staging_project(e2e_namespace: str, tmp_path: Path) -> Path:
    """Function: a team's repository as the workflow checks it out: the gate suite, the
    penguin example's manifests and golden file, and a `staging` profile that points at the
    local cluster (a kubeconfig whose context is named staging)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("conftest.py",):
        (project / name).write_text((REPO / name).read_text())
    for suite in ("tests/deploy", "tests/smoke"):
        target = project / suite
        target.mkdir(parents=True)
        for f in (REPO / suite).glob("*.py"):
            (target / f.name).write_text(f.read_text())
    for sub in ("manifests", "golden"):
        target = project / "fixtures" / sub
        target.mkdir(parents=True)
        for f in (REPO / "fixtures" / "penguin" / sub).iterdir():
            (target / f.name).write_text(f.read_text())
    config = kubectl("config", "view", "--raw", "-o", "json")
    kubeconfig = json.loads(config)
    for ctx in kubeconfig["contexts"]:
        if ctx["name"] == "local":
            ctx["name"] = "staging"
    kubeconfig["current-context"] = "staging"
    (project / "kubeconfig").write_text(json.dumps(kubeconfig))
    (project / "pyproject.toml").write_text(
        f"""[tool.pytest.ini_options]
testpaths = ["tests/deploy", "tests/smoke"]

[tool.rolloutgate]
manifests = "fixtures/manifests"
golden = "fixtures/golden/penguin.json"
images = ["rolloutgate/penguin"]
model_file = "/opt/penguin/model/model.json"

[tool.rolloutgate.clusters.staging]
kubeconfig = "kubeconfig"
context = "staging"
namespace = "{e2e_namespace}"
"""
    )
    return project


def test_a_cancelled_release_gate_job_is_rolled_back(
    penguin_v1: dict, e2e_namespace: str, staging_project: Path
) -> None:
    """The release gate's own step, cancelled as GitHub cancels it while v2 is being checked:
    pytest gets the SIGINT and restores v1 before the SIGTERM; what SIGKILL cuts short,
    `--recover` finishes. Without `exec` in the step pytest never sees a signal, and v2 stays."""
    ns = e2e_namespace
    before = PENGUIN.state(ns)
    step = workflow.step(*GATE)
    env = {
        **os.environ,
        **step.env,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "GITHUB_REF_NAME": "v2",
    }
    # A check that holds the gate open, so the cancel lands while v2 is being checked: on a fast
    # machine the whole suite passes before the SIGINT would arrive (CI saw exactly that).
    holding = staging_project / "holding"
    (staging_project / "tests" / "smoke" / "test_zz_hold.py").write_text(
        "import time\nfrom pathlib import Path\n\n\n"
        "def test_hold(rolloutgate_rollout):\n"
        f"    Path({str(holding)!r}).write_text('')\n"
        "    time.sleep(120)\n"
    )
    proc = workflow.start(step.script, staging_project, env)
    try:
        deadline = time.monotonic() + 240
        while not (holding.exists() and PENGUIN.ready_with(ns, "v2")):
            assert proc.poll() is None, workflow.output(staging_project).read_text()[-4000:]
            assert time.monotonic() < deadline, "v2 never became the only live release"
            time.sleep(0.5)
        seen: dict[str, float] = {}
        sigint = time.monotonic()

        def poll() -> None:
            if "restored" not in seen and f"{PENGUIN.image}:v1" in kubectl(
                "get", "deployment", PENGUIN.name, "-o",
                "jsonpath={.spec.template.spec.containers[0].image}", namespace=ns,
            ):  # fmt: skip
                seen["restored"] = time.monotonic() - sigint

        cancelled = workflow.cancel(proc, each=poll)
        proc.wait(timeout=30)
        output = workflow.output(staging_project).read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    print(f"FIGURE SIGINT to the step's bash -> restore seen (s): {seen.get('restored')}")
    print(f"FIGURE tree killed by the cancel: {cancelled.tree_killed}")
    report = json.loads((staging_project / "reports" / "gate.json").read_text())
    assert "restoring the snapshot on the interrupt" in output, output[-4000:]
    assert seen.get("restored") is not None, output[-4000:]
    # The SIGINT itself restored v1, before the runner's SIGTERM (how fast is a benchmark's
    # figure: `python -m bench fault-tests`, not an assertion of a test on a busy machine).
    assert seen["restored"] < workflow.SIGTERM_AFTER_S, output[-4000:]
    assert report["interrupted"] != "SIGTERM", report["interrupted"]
    if cancelled.tree_killed:
        recovered = PENGUIN.run(ns, staging_project / "recover.json", "--recover")
        assert recovered.returncode == 0, recovered.output[-4000:]
    else:
        assert report["rollback"]["verified"] is True, report["rollback"]
        assert proc.returncode == 2, output[-4000:]
    assert PENGUIN.state(ns) == before
    assert PENGUIN.ready_with(ns, "v1")
