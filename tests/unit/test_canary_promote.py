"""The canary's promotion: the child gate's command line (every setting of the canary run, none
of its own options), the lease handed to it, refusal when the live release changed, and the
deadline's SIGTERM waited for (a real child process that rolls back on SIGTERM)."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from rolloutgate.canary import promote
from rolloutgate.canary.promote import Promotion, gate_args
from rolloutgate.config import resolve
from rolloutgate.release import lock
from rolloutgate.release.lock import HANDOFF_ENV, Lease

LEASE = Lease("rolloutgate-iris", "iris", "ci@host/pid-1/abcd", 60)


def test_the_child_gets_every_option_and_test_path_but_the_canarys_own() -> None:
    args = [
        "--cluster=staging",
        "--canary",
        "--image-tag",
        "v3",
        "--promote",
        "--keep-arms",
        "--canary-requests=50",
        "--request-set",
        "set.jsonl",
        "--canary-report=out/c.json",
        "--junitxml",
        "junit.xml",
        "--gate-report=r.json",
        "--ready-grace=45",
        "--endpoint-url",
        "http://ingress.example",
        "-p",
        "no:cacheprovider",
        "tests/deploy",
        "tests/smoke/test_health.py",
    ]
    assert gate_args(args) == [
        "--cluster=staging",
        "--ready-grace=45",
        "--endpoint-url",
        "http://ingress.example",
        "-p",
        "no:cacheprovider",
        "tests/deploy",
        "tests/smoke/test_health.py",
    ]
    argv = Promotion(tuple(args), Path("/repo")).argv("v3", Path("g.json"), Path("g.xml"))
    assert argv[:3] == [sys.executable, "-m", "pytest"]
    assert argv[-3:] == ["--image-tag=v3", "--gate-report=g.json", "--junitxml=g.xml"]
    assert "--canary" not in argv
    assert "tests/deploy" in argv


def test_the_child_takes_the_lease_only_for_the_lease_handed_to_it() -> None:
    env = {HANDOFF_ENV: "iris/rolloutgate-iris=ci@host/pid-1/abcd"}
    assert lock.holder_for("iris", "rolloutgate-iris", env) == "ci@host/pid-1/abcd"
    # Another lease, another namespace, nothing handed: a new identity of its own.
    for namespace, name, environ in [
        ("iris", "rolloutgate-wine", env),
        ("other", "rolloutgate-iris", env),
        ("iris", "rolloutgate-iris", {}),
    ]:
        holder = lock.holder_for(namespace, name, environ)
        assert holder != "ci@host/pid-1/abcd"
        assert "/pid-" in holder


def test_a_changed_live_release_refuses_naming_both_tags() -> None:
    refusal = promote.refused("v3", "v1", "v2")
    assert refusal["exit_status"] == 7
    assert "it ran v1 when the canary started and runs v2" in refusal["refused"]
    assert "v3 was judged against v1, so it is not promoted" in refusal["refused"]
    assert "and is gone" in promote.refused("v3", "v1", None)["refused"]


CHILD = """
import json, os, signal, sys, time
report = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--gate-report="))
def rolled_back(signum, frame):
    time.sleep(0.5)  # the rollback takes a while
    json.dump({"verdict": "fail", "cause": "SIGTERM", "rollback": {"outcome": "rolled back"},
               "handoff": os.environ.get("ROLLOUTGATE_LEASE_HANDOFF")}, open(report, "w"))
    sys.exit(1)
signal.signal(signal.SIGTERM, rolled_back)
open(report + ".started", "w").close()
time.sleep(60)
"""


def test_a_promotion_past_its_deadline_gets_sigterm_and_its_rollback_is_waited_for(
    tmp_path: Path,
) -> None:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    cfg = resolve(
        {},
        env={},
        tool={"timeouts": {"rollback": 5, "endpoint": 1}},
        rootdir=tmp_path,
        invocation_dir=tmp_path,
        list_contexts=lambda _k: [],
    )
    how = Promotion(("--cluster=staging", "--canary"), tmp_path, (sys.executable, str(script)))
    lines: list[str] = []
    report = tmp_path / "gate.json"
    result = promote.promote(how, cfg, "v3", LEASE, report, lines.append, timeout=1.5)
    assert result["interrupted"] == "promotion timed out after 1.5 s"
    # SIGTERM, not SIGKILL: the child rolled back and said so.
    assert result["exit_status"] == 1
    assert result["rollback"] == "rolled back"
    assert result["args"][:1] == ["--cluster=staging"]
    assert json.loads(report.read_text())["handoff"] == "iris/rolloutgate-iris=ci@host/pid-1/abcd"
    assert any("SIGTERM to the release gate, waiting for its rollback" in line for line in lines)


def test_a_child_that_ignores_sigterm_is_killed_after_the_rollbacks_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "child.py"
    script.write_text(
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n"
    )
    cfg = resolve(
        {},
        env={},
        tool={"timeouts": {"rollback": 1, "endpoint": 1}},
        rootdir=tmp_path,
        invocation_dir=tmp_path,
        list_contexts=lambda _k: [],
    )
    # The grace after SIGTERM: the rollback's and the endpoint's deadlines and 60 s of slack;
    # shortened here so the test does not wait a minute.
    monkeypatch.setattr(promote, "GRACE_SLACK_S", 0.5)
    how = Promotion((), tmp_path, (sys.executable, str(script)))
    result = promote.promote(how, cfg, "v3", LEASE, tmp_path / "g.json", print, timeout=0.5)
    assert result["exit_status"] == -9
    assert result["verdict"] is None
