"""``rolloutgate init`` without a cluster: the protocol asked of a loopback server, the
serving container found in the manifests, the files it writes and the rule that nothing is
overwritten without --force. (tests/e2e/test_first_try.py runs it against the real cluster,
from a fresh virtualenv.)"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from model_server import serve

from rolloutgate.checks import detect
from rolloutgate.checks.httpclient import HttpClient
from rolloutgate.errors import ConfigError
from rolloutgate.init import files, target

REPO = Path(__file__).resolve().parents[2]

MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: team}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec:
      containers:
      - name: proxy
        image: mesh/proxy:1.2
        ports: [{name: admin, containerPort: 9901}]
      - name: server
        image: registry.example:5000/team/echo:v1
        ports: [{name: http, containerPort: 8000}]
---
apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: web, port: 80, targetPort: http}]
"""


def client(url: str) -> HttpClient:
    return HttpClient(url, model="", timeout=5, health={})


def test_a_plain_server_is_detected_by_its_health_paths() -> None:
    with serve() as (url, _state):
        found = detect.detect(client(url), detect.Hints(predict_path="/api/score"))
    assert found.protocol.name == "plain"
    assert found.predict_path == "/api/score"
    assert found.health == {}
    assert found.seen[-2:] == ("GET /healthz: 200", "GET /readyz: 200")


def test_a_v1_server_needs_its_model_named() -> None:
    with serve() as (url, _state):
        found = detect.detect(client(url), detect.Hints(protocol="v1", model="wine"))
    assert (found.protocol.name, found.model) == ("v1", "wine")


def test_a_v2_server_names_its_ready_model_and_its_inputs() -> None:
    with serve() as (url, state):
        state["v2"] = True
        probe = client(url)
        found = detect.detect(probe, detect.Hints())
        body = detect.v2_request(probe, found.model)
    assert (found.protocol.name, found.model) == ("v2", "wine")
    assert body == {
        "inputs": [{"name": "predict", "shape": [1, 4], "datatype": "FP64", "data": [0.0] * 4}]
    }


def test_health_paths_the_server_does_not_answer_are_said() -> None:
    with serve() as (url, _state), pytest.raises(detect.NotDetected) as e:
        detect.detect(client(url), detect.Hints(protocol="plain", live="/livez"))
    assert "the live path /livez you named answered GET http" in str(e.value)
    assert str(e.value).endswith('/livez -> 404: {"error": "no route /livez"}')


def test_a_server_of_no_known_protocol_lists_what_it_answered() -> None:
    with serve() as (url, _state), pytest.raises(detect.NotDetected) as e:
        detect.detect(client(url), detect.Hints(protocol="v2"))
    assert "answered as none of the protocols (v2 asked for): GET /v2: 404" in str(e.value)
    assert "--protocol=plain --predict-path=PATH" in str(e.value)


def test_the_container_the_services_port_targets_serves() -> None:
    found = target.find(list(yaml.safe_load_all(MANIFESTS)))
    assert found == target.Target(
        service="echo",
        port="web",
        workload="Deployment/echo",
        container="server",
        image="registry.example:5000/team/echo",
        tag="v1",
        namespace="team",
    )


def test_two_services_need_one_named() -> None:
    objs = list(yaml.safe_load_all(MANIFESTS))
    objs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "admin"}})
    with pytest.raises(ConfigError, match=r"2 Service\(s\) \(Services: echo, admin\).*--service"):
        target.find(objs)
    assert target.find(objs, service="echo").container == "server"


def test_the_suite_written_is_the_projects_own() -> None:
    written = files.suite_files()
    expected = {"conftest.py", *(str(p.relative_to(REPO)) for p in REPO.glob("tests/deploy/*.py"))}
    expected |= {str(p.relative_to(REPO)) for p in REPO.glob("tests/smoke/*.py")}
    assert set(written) == expected
    for relative, text in written.items():
        assert text == (REPO / relative).read_text(encoding="utf-8"), relative


GATE = """\
[tool.rolloutgate]
manifests = "k8s"

[tool.rolloutgate.clusters.staging]
context = "staging"
"""


def test_pyproject_is_created_with_testpaths(tmp_path: Path) -> None:
    out = files.Written()
    files.pyproject(tmp_path, GATE, "staging", force=False, out=out)
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert data["tool"]["pytest"]["ini_options"]["testpaths"] == files.TESTPATHS
    assert data["tool"]["rolloutgate"]["clusters"]["staging"]["context"] == "staging"
    assert out.written == ["pyproject.toml"]


def test_an_existing_pyproject_keeps_its_tables(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "team-echo"\n\n[tool.pytest.ini_options]\naddopts = "-ra"\n'
    )
    files.pyproject(tmp_path, GATE, "staging", force=False, out=files.Written())
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert data["project"] == {"name": "team-echo"}
    assert data["tool"]["pytest"]["ini_options"] == {
        "addopts": "-ra",
        "testpaths": files.TESTPATHS,
    }
    # A second run finds the gate's tables: kept without --force, replaced with it.
    out = files.Written()
    files.pyproject(tmp_path, GATE.replace("k8s", "deploy"), "staging", force=False, out=out)
    assert "k8s" in (tmp_path / "pyproject.toml").read_text()
    assert out.kept[0].startswith("pyproject.toml [tool.rolloutgate] (exists; --force")
    files.pyproject(tmp_path, GATE.replace("k8s", "deploy"), "staging", force=True, out=out)
    data = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    assert data["tool"]["rolloutgate"]["manifests"] == "deploy"
    assert data["project"] == {"name": "team-echo"}


def test_files_are_never_overwritten_without_force(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("# the team's own\n")
    out = files.Written()
    files.write(tmp_path, "conftest.py", "new", force=False, out=out)
    assert (tmp_path / "conftest.py").read_text() == "# the team's own\n"
    assert out.kept == ["conftest.py (exists; --force overwrites it)"]
    files.write(tmp_path, "conftest.py", "new", force=True, out=out)
    assert (tmp_path / "conftest.py").read_text() == "new"


def test_the_workflow_names_the_profile_and_its_secret() -> None:
    flow = yaml.safe_load(files.workflow("staging", "KUBECONFIG_STAGING"))
    steps = {s.get("name"): s for s in flow["jobs"]["gate"]["steps"]}
    assert steps["Release gate"]["run"].startswith("exec pytest --cluster=staging --image-tag=")
    assert steps["Kubeconfig"]["env"] == {"KUBECONFIG_TEXT": "${{ secrets.KUBECONFIG_STAGING }}"}
    assert flow["concurrency"]["group"] == "release-gate-staging"


def test_init_without_a_reachable_cluster_writes_the_requests_and_says_what_next(
    project: pytest.Pytester,
) -> None:
    (project.path / "k8s").mkdir()
    (project.path / "k8s" / "app.yaml").write_text(MANIFESTS)
    (project.path / "pyproject.toml").unlink()
    (project.path / "req.json").write_text('{"text": "hello"}')
    argv = [
        sys.executable, "-m", "rolloutgate", "init", "--cluster=staging",
        "--kubeconfig=kubeconfig", "--manifests=k8s", "--predict-path=/api/echo",
        "--request=req.json",
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=project.path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Deployment/echo, container server (image registry.example:5000/team/echo)" in out
    assert "the live release was not asked (cluster staging not reached: " in out
    assert "next, deploy the service once, record the golden answers" in out
    written = (project.path / "fixtures" / "golden" / "echo.json").read_text()
    assert '"path": "/api/echo"' in written
    gate = tomllib.loads((project.path / "pyproject.toml").read_text())["tool"]["rolloutgate"]
    assert gate["images"] == ["registry.example:5000/team/echo"]
    assert (gate["container"], gate["service"], gate["port"]) == ("server", "echo", "web")
    assert gate["clusters"]["staging"] == {
        "kubeconfig": "kubeconfig",
        "context": "staging",
        "namespace": "team",
    }
    assert (project.path / ".github" / "workflows" / "release-gate.yml").is_file()
    again = subprocess.run(argv, cwd=project.path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "  kept conftest.py (exists; --force overwrites it)" in again.stdout
    assert "wrote" not in again.stdout
