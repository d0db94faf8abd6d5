"""Which kind binary and node image `--cluster=kind` uses (no cluster, no Docker: both injected)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rolloutgate.errors import ConfigError
from rolloutgate.kube.kindcluster import images_of, load_images, marker_path, resolve


def executable(path: Path) -> str:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return str(path)


def which_of(**found: str) -> object:
    return lambda name: found.get(name)


@pytest.fixture
def cache(tmp_path: Path) -> dict[str, str]:
    return {"ROLLOUTGATE_CACHE": str(tmp_path / "cache")}


def record_build(env: dict[str, str], kind: str, image: str) -> None:
    path = marker_path(env)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"kind": kind, "image": image}))


def test_options_win(tmp_path: Path, cache: dict[str, str]) -> None:
    kind = executable(tmp_path / "my-kind")
    tools = resolve(
        kind, "example/node:v1", env=cache, which=which_of(docker="/d"), has_image=lambda _: False
    )
    assert (tools.kind, tools.image, tools.source) == (kind, "example/node:v1", "--kind-bin")


def test_kind_bin_that_does_not_exist_is_a_usage_error(
    tmp_path: Path, cache: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match=r"--kind-bin .*nope: no executable.*make kind-image"):
        resolve(str(tmp_path / "nope"), None, env=cache, which=which_of(docker="/d"))


def test_our_build_is_used_when_its_image_is_in_docker(
    tmp_path: Path, cache: dict[str, str]
) -> None:
    kind = executable(tmp_path / "kind")
    record_build(cache, kind, "rolloutgate/kind-node:v1.34.4-abc")
    tools = resolve(
        None,
        None,
        env=cache,
        which=which_of(docker="/d", kind="/usr/bin/kind"),
        has_image=lambda i: i == "rolloutgate/kind-node:v1.34.4-abc",
    )
    assert (tools.kind, tools.image) == (kind, "rolloutgate/kind-node:v1.34.4-abc")
    assert tools.offline, "every image must then come from Docker"


def test_stock_kind_keeps_its_default_image_when_ours_is_not_in_docker(
    tmp_path: Path, cache: dict[str, str]
) -> None:
    record_build(cache, executable(tmp_path / "kind"), "rolloutgate/kind-node:gone")
    tools = resolve(
        None,
        None,
        env=cache,
        which=which_of(docker="/d", kind="/usr/local/bin/kind"),
        has_image=lambda _: False,
    )
    assert (tools.kind, tools.image) == ("/usr/local/bin/kind", None)


def test_stock_kind_without_any_build(cache: dict[str, str]) -> None:
    tools = resolve(None, None, env=cache, which=which_of(docker="/d", kind="/usr/bin/kind"))
    assert (tools.kind, tools.image, tools.source) == ("/usr/bin/kind", None, "kind on PATH")
    assert not tools.offline


def test_nothing_local_is_one_error_naming_make_kind_image(cache: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"needs a kind binary.*`make kind-image`.*--kind-bin"):
        resolve(None, None, env=cache, which=which_of(docker="/d"))


def test_built_image_gone_says_to_run_make_kind_image_again(
    tmp_path: Path, cache: dict[str, str]
) -> None:
    record_build(cache, executable(tmp_path / "kind"), "rolloutgate/kind-node:gone")
    with pytest.raises(ConfigError, match=r"Docker image rolloutgate/kind-node:gone is gone"):
        resolve(None, None, env=cache, which=which_of(docker="/d"), has_image=lambda _: False)


def test_no_docker_is_an_error(tmp_path: Path, cache: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"needs Docker"):
        resolve(executable(tmp_path / "kind"), None, env=cache, which=which_of())


def test_images_of_lists_each_container_image_once() -> None:
    deployment = {
        "kind": "Deployment",
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [{"name": "init", "image": "busybox:1"}],
                    "containers": [
                        {"name": "a", "image": "rolloutgate/iris:v2"},
                        {"name": "b", "image": "busybox:1"},
                    ],
                }
            }
        },
    }
    service = {"kind": "Service", "spec": {}}
    assert images_of([deployment, service]) == ["busybox:1", "rolloutgate/iris:v2"]


def recording_kind(tmp_path: Path) -> tuple[str, Path]:
    """A fake kind that records its arguments, one call a line."""
    calls = tmp_path / "calls"
    kind = tmp_path / "kind"
    kind.write_text(f'#!/bin/sh\necho "$*" >>{calls}\n')
    kind.chmod(0o755)
    return str(kind), calls


def test_offline_image_missing_from_docker_is_an_error_before_any_load(tmp_path: Path) -> None:
    kind, calls = recording_kind(tmp_path)
    with pytest.raises(ConfigError, match=r"rolloutgate/iris:v9, which Docker does not have"):
        load_images(
            kind,
            "c",
            ["rolloutgate/iris:v1", "rolloutgate/iris:v9"],
            time.monotonic() + 30,
            offline=True,
            has_image=lambda i: i.endswith(":v1"),
        )
    assert not calls.exists()


def test_with_a_registry_missing_images_are_left_for_the_node_to_pull(tmp_path: Path) -> None:
    kind, calls = recording_kind(tmp_path)
    load_images(
        kind,
        "c",
        ["rolloutgate/iris:v1", "nginx:1.27"],
        time.monotonic() + 30,
        offline=False,
        has_image=lambda i: i.startswith("rolloutgate/"),
    )
    assert calls.read_text().splitlines() == ["load docker-image --name c rolloutgate/iris:v1"]
