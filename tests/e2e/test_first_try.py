"""A team's own model service on the first try, the way a team meets the gate: a fresh
directory with its manifests and a running release, a fresh virtualenv, `pip install` of this
checkout, `rolloutgate init`, then the gate on v1 and v2, a wrong tag rolled back and verified,
and a canary of the wrong tag judged Fail.

The service is one the gate's own suite knows nothing about: the penguin server (its own
prediction path `POST /api/score`, `/healthz` and `/readyz`, a container named `server`, a
non-root user, two replicas), deployed by `kubectl apply` as the team had it before.

The virtualenv gets the gate's dependencies from a wheelhouse built once per set of versions
(this environment's, downloaded by pip) under the project's cache: every run is a real
`pip install` of the checkout into a new environment, without fetching ~300 MB each time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gaterun import KUBECONFIG, KUBECTL, PENGUIN, REPO, kubectl, loaded_tags
from incluster import CACHE, pinned
from manifestkit import fresh_namespace

ADELIE = {
    "penguins": [
        {
            "bill_length_mm": 39.1,
            "bill_depth_mm": 18.7,
            "flipper_length_mm": 181,
            "body_mass_g": 3750,
        }
    ]
}


def _missing(message: str) -> None:
    if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def wheelhouse() -> Path:
    """Wheels of the gate's dependencies at this environment's versions, and of setuptools
    (the checkout's build backend), downloaded once per pin set."""
    pins = [*pinned(), "setuptools>=69"]
    key = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:12]
    target = CACHE / "first-try-wheels" / key
    if (target / ".complete").is_file():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(partial),
         "--only-binary=:all:", *pins],
        check=True,
        timeout=900,
    )  # fmt: skip
    (partial / ".complete").write_text("\n".join(pins) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


@dataclass
class Team:
    """The team's repository, its virtualenv's environment and its namespace."""

    root: Path
    env: dict[str, str]
    namespace: str

    def run(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def gate(self, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        done = self.run("pytest", "-p", "no:cacheprovider", "--cluster=local", *args)
        report = self.root / "reports" / ("canary.json" if "--canary" in args else "gate.json")
        return done, json.loads(report.read_text()) if report.exists() else {}


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """Module: the team's repository (manifests at two replicas, a request body), its release
    v1 applied with kubectl, and a virtualenv with the gate pip-installed from this checkout."""
    if not KUBECONFIG.is_file():
        _missing("no local cluster: run `make cluster-up`")
    if not {"v1", "v2", "wrong"} <= (loaded_tags(PENGUIN.image) or set()):
        _missing(f"{PENGUIN.image} images not loaded: run `make load-images`")
    root = tmp_path_factory.mktemp("team")
    PENGUIN.copy(root / "k8s", replicas=2)
    (root / "adelie.json").write_text(json.dumps(ADELIE))
    venv = tmp_path_factory.mktemp("venv")
    # The test's own pip installs into the new environment (--python): the same install, without
    # seeding a pip into it first; --no-compile: Python compiles what it imports (compiling
    # every module of the kubernetes client and scipy took a minute on the shared node).
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLOUTGATE_", "PYTHON"))}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = os.pathsep.join([str(venv / "bin"), str(KUBECTL.parent), env["PATH"]])
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--quiet", "--no-compile", "--no-index", f"--find-links={wheelhouse()}", str(REPO)],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    with fresh_namespace("e2e-team") as namespace:
        kubectl("create", "namespace", namespace)
        kubectl("apply", "-f", str(root / "k8s"), namespace=namespace)
        kubectl("rollout", "status", "deployment/penguin", "--timeout=180s", namespace=namespace,
                timeout=200)  # fmt: skip
        yield Team(root, env, namespace)


@pytest.fixture(scope="module")
def initialised(team: Team) -> str:
    """Module: `rolloutgate init` run once in the team's repository; its output."""
    done = team.run(
        "rolloutgate", "init", "--cluster=local", f"--kubeconfig={KUBECONFIG}",
        f"--namespace={team.namespace}", "--manifests=k8s", "--predict-path=/api/score",
        "--request=adelie.json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_init_asks_the_live_service_and_writes_what_a_team_would_copy(
    team: Team, initialised: str
) -> None:
    assert "Deployment/penguin, container server (image rolloutgate/penguin)" in initialised
    assert "protocol plain (GET /v2: 404; GET /v1/models: 404; GET /healthz: 200;" in initialised
    assert "recorded 1 case(s) from cluster local" in initialised
    assert initialised.rstrip().endswith("pytest --cluster=local --image-tag=v1")
    for path in ("conftest.py", "tests/deploy/test_rollout.py", "tests/smoke/test_pod.py",
                 "fixtures/golden/penguin.json", ".github/workflows/release-gate.yml"):  # fmt: skip
        assert (team.root / path).is_file(), path
    golden = json.loads((team.root / "fixtures" / "golden" / "penguin.json").read_text())
    assert golden["protocol"] == "plain"
    case = golden["cases"][0]
    assert case["request"]["path"] == "/api/score"
    values = {v["path"]: v for v in case["expect"]["values"]}
    assert values["species"]["data"] == ["Adelie"]
    assert "model_version" not in values  # "v1": the release's name, not its prediction
    # Asked again, nothing is overwritten.
    again = team.run(
        "rolloutgate", "init", "--cluster=local", f"--kubeconfig={KUBECONFIG}",
        f"--namespace={team.namespace}", "--manifests=k8s", "--predict-path=/api/score",
        "--request=adelie.json",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "wrote" not in again.stdout
    assert "kept fixtures/golden/penguin.json (exists; --force overwrites it)" in again.stdout


def test_the_release_running_now_passes(team: Team, initialised: str) -> None:
    done, report = team.gate("--image-tag=v1")
    assert done.returncode == 0, done.stdout[-4000:]
    assert report["verdict"] == "pass"
    assert report["tests"]["failed"] == report["tests"]["error"] == 0
    # What does not run says why: a setting to turn it on, or the protocol has none.
    for skipped in report["skipped"]:
        assert skipped["reason"].startswith(("not configured", "protocol plain has no")), skipped
    outcomes = {i["nodeid"].rsplit("::", 1)[-1]: i["outcome"] for i in report["tests"]["items"]}
    assert outcomes["test_serving_process_is_not_root"] == "passed"  # in container `server`
    assert outcomes["test_latency_budget"] == "passed"


def test_v2_passes(team: Team, initialised: str) -> None:
    done, report = team.gate("--image-tag=v2")
    assert done.returncode == 0, done.stdout[-4000:]
    assert (report["verdict"], report["previous_tag"]) == ("pass", "v1")
    assert len(report["new_pods"]) == 2
    assert all(p["start_to_ready_s"] is not None for p in report["new_pods"]), report["new_pods"]


def test_a_wrong_tag_is_rolled_back_and_verified(team: Team, initialised: str) -> None:
    done, report = team.gate("--image-tag=wrong")
    assert done.returncode == 1, done.stdout[-4000:]
    assert report["verdict"] == "rolled-back", report["cause"]
    assert "test_golden_case[adelie]" in report["cause"]
    assert report["rollback"]["verified"] is True
    assert PENGUIN.ready_with(team.namespace, "v2")


def test_a_canary_of_the_wrong_tag_fails(team: Team, initialised: str) -> None:
    # Fewer requests than the default 200 per arm over at least 20 s: every answer of the wrong
    # model differs, and what is judged here is the verdict, not its statistics.
    team.env["ROLLOUTGATE_CANARY_MIN_DURATION"] = "5"
    done, report = team.gate("--canary", "--image-tag=wrong", "--canary-requests=50")
    assert done.returncode == 1, done.stdout[-4000:]
    assert report["verdict"] == "fail", report.get("reason")
    assert PENGUIN.ready_with(team.namespace, "v2")  # the live release untouched
