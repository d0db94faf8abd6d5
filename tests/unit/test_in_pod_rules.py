"""The in-pod checks' rules: which container serves the model, how paths map when the checks
run from an ephemeral debug container, and what its status says."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from rolloutgate.checks import inpod
from rolloutgate.checks.inpod import InPod, InPodUnavailable, Kubectl
from rolloutgate.errors import ConfigError, GateError

Obj = dict[str, Any]


def workload(name: str, *containers: tuple[str, str], init: tuple[str, str] | None = None) -> Obj:
    spec: Obj = {"containers": [{"name": n, "image": i} for n, i in containers]}
    if init is not None:
        spec["initContainers"] = [{"name": init[0], "image": init[1]}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"template": {"spec": spec}},
    }


ECHO = workload(
    "echo",
    ("server", "team/echo:v1"),
    ("proxy", "mesh/proxy:1.2"),
    init=("migrate", "team/echo:v1"),
)


def test_the_container_whose_image_the_tag_sets_serves_the_model() -> None:
    assert inpod.serving_container([ECHO], ["team/echo"], None) == "server"
    # A registry and a digest do not hide the name.
    pinned = workload("e", ("server", "reg.example:5000/team/echo@sha256:" + "a" * 64))
    assert inpod.serving_container([pinned], ["reg.example:5000/team/echo"], None) == "server"


def test_a_single_container_needs_no_images_setting() -> None:
    assert inpod.serving_container([workload("e", ("server", "team/echo:v1"))], None, None) == (
        "server"
    )


def test_several_retagged_containers_are_a_question_the_settings_answer() -> None:
    with pytest.raises(ConfigError) as e:
        inpod.serving_container([ECHO], None, None)
    assert "containers proxy, server" in str(e.value)
    assert "Deployment/echo has server, proxy" in str(e.value)
    assert "Set `container`" in str(e.value)
    assert inpod.serving_container([ECHO], None, "proxy") == "proxy"


def test_a_container_name_the_pods_lack_lists_theirs() -> None:
    with pytest.raises(ConfigError) as e:
        inpod.serving_container([ECHO], ["team/echo"], "model")
    assert str(e.value).startswith("container 'model' (setting `container`) is not a container")
    assert "Deployment/echo has server, proxy" in str(e.value)


def test_images_that_name_no_container_say_so() -> None:
    with pytest.raises(ConfigError, match=r"no container .* runs an image of `images`"):
        inpod.serving_container([ECHO], ["team/other"], None)


def test_paths_of_the_serving_container_from_a_debug_container() -> None:
    direct = InPod("p", "server", "server", host=None)
    assert direct.path("/opt/model.bin") == "/opt/model.bin"
    assert not direct.debug
    debug = InPod("p", "server", "rolloutgate-debug-1", host=None, root="/proc/1/root")
    assert debug.debug
    assert debug.path("/opt/model.bin") == "/proc/1/root/opt/model.bin"
    # The process namespace is shared: /proc is the same from either container.
    assert debug.path("/proc/1/status") == "/proc/1/status"
    assert "from ephemeral container rolloutgate-debug-1" in debug.where


def test_the_debug_container_runs_as_its_target() -> None:
    target = {
        "name": "server",
        "image": "team/echo:v1",
        "securityContext": {"runAsUser": 10001, "capabilities": {"drop": ["ALL"]}},
    }
    spec = inpod.debug_container(target, "busybox:1.36")
    assert spec["targetContainerName"] == "server"
    assert spec["image"] == "busybox:1.36"
    assert spec["securityContext"] == target["securityContext"]
    assert spec["name"].startswith("rolloutgate-debug-")
    assert spec["name"] != inpod.debug_container(target, "busybox:1.36")["name"]


def pod_with(name: str, state: Obj) -> Obj:
    return {"status": {"ephemeralContainerStatuses": [{"name": name, "state": state}]}}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"running": {"startedAt": "2026-01-01T00:00:00Z"}}, (True, None)),
        ({"waiting": {"reason": "ContainerCreating"}}, (False, None)),
        (
            {"waiting": {"reason": "ErrImagePull", "message": "no registry"}},
            (False, "ErrImagePull: no registry"),
        ),
        ({"terminated": {"exitCode": 127, "reason": "Error"}}, (False, "exited 127 (Error)")),
    ],
)
def test_debug_container_state(state: Obj, expected: tuple[bool, str | None]) -> None:
    assert inpod.debug_state(pod_with("dbg", state), "dbg") == expected
    assert inpod.debug_state(pod_with("other", state), "dbg") == (False, None)


def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stderr: str, code: int) -> None:
    """A kubectl on PATH that answers every call with `stderr` and exit `code` (the words of
    the real one for each case, as seen on the local cluster)."""
    script = tmp_path / "kubectl"
    script.write_text(f"#!/bin/sh\ncat >&2 <<'EOF'\n{stderr}\nEOF\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


def test_an_image_without_a_shell_is_told_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_kubectl(
        tmp_path,
        monkeypatch,
        "error: Internal error occurred: error executing command in container: failed to exec in "
        'container: failed to start exec "0b1c": OCI runtime exec failed: exec failed: unable to '
        'start container process: exec: "/bin/sh": stat /bin/sh: no such file or directory: '
        "unknown",
        1,
    )
    assert inpod.has_shell(Kubectl(None, None, "ns"), "p", "server", timeout=10) is False


def test_a_refused_exec_makes_the_checks_impossible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_kubectl(
        tmp_path,
        monkeypatch,
        'Error from server (Forbidden): pods "p" is forbidden: User "ci" cannot create resource '
        '"pods/exec" in API group "" in the namespace "ns"',
        1,
    )
    with pytest.raises(InPodUnavailable, match=r"may not exec into pod p \(`create` on pods/exec"):
        inpod.has_shell(Kubectl(None, None, "ns"), "p", "server", timeout=10)


def test_another_exec_failure_is_an_error_with_kubectls_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_kubectl(
        tmp_path,
        monkeypatch,
        'error: unable to upgrade connection: container not found ("server")',
        1,
    )
    with pytest.raises(GateError, match=r"exited 1: error: unable to upgrade connection") as e:
        inpod.has_shell(Kubectl(None, None, "ns"), "p", "server", timeout=10)
    assert not isinstance(e.value, InPodUnavailable)


def test_no_kubectl_makes_the_checks_impossible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InPodUnavailable, match="kubectl is not on PATH"):
        inpod.has_shell(Kubectl(None, None, "ns"), "p", "server", timeout=10)
