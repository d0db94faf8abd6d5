"""Loading manifests and setting image tags (kustomize `images` semantics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rolloutgate.errors import ConfigError
from rolloutgate.manifests import ImageRef, kind_of_source, load, render, set_image_tag
from rolloutgate.workloads import image_names, workloads

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: iris
spec:
  selector:
    matchLabels: {app: iris}
  template:
    metadata:
      labels: {app: iris}
    spec:
      initContainers:
        - name: fetch
          image: registry.local:5000/ml/fetcher:1.0
      containers:
        - name: model
          image: registry.local:5000/ml/iris:v1
        - name: sidecar
          image: busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
---
apiVersion: v1
kind: Service
metadata:
  name: iris
spec:
  selector: {app: iris}
  ports: [{port: 80, targetPort: 8080}]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def images(objs: list[dict[str, Any]]) -> dict[str, str]:
    spec = workloads(objs)[0]["spec"]["template"]["spec"]
    return {c["name"]: c["image"] for c in spec["initContainers"] + spec["containers"]}


def test_load_multi_document_in_file_order(tmp_path: Path) -> None:
    write(tmp_path, "b.yml", DEPLOYMENT)
    write(
        tmp_path, "a.json", '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}'
    )
    write(tmp_path, "notes.txt", "not a manifest")
    objs = load(tmp_path)
    assert [(o["kind"], o["metadata"]["name"]) for o in objs] == [
        ("ConfigMap", "c"),
        ("Deployment", "iris"),
        ("Service", "iris"),
    ]


def test_load_flattens_lists_and_skips_empty_documents(tmp_path: Path) -> None:
    write(
        tmp_path,
        "list.yaml",
        "---\n---\napiVersion: v1\nkind: List\nitems:\n"
        "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
        "  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n",
    )
    assert [o["metadata"]["name"] for o in load(tmp_path)] == ["a", "b"]


def test_yaml_that_does_not_parse_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+:\d+: not valid YAML") as info:
        load(tmp_path)
    line = int(str(info.value).split(":")[1])
    assert line >= 4


def test_json_that_does_not_parse_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "bad.json", '{\n  "kind": "ConfigMap",\n  oops\n}')
    with pytest.raises(ConfigError, match=r"bad\.json:3:3: not valid JSON"):
        load(tmp_path)


def test_missing_kind_names_file_and_document_line(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", DEPLOYMENT + "---\napiVersion: v1\nmetadata:\n  name: x\n")
    first_line = DEPLOYMENT.count("\n") + 2  # the line after the `---`
    with pytest.raises(ConfigError, match=rf"m\.yaml:{first_line}: object without kind$"):
        load(tmp_path)


def test_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, "m.yaml", "- just\n- a list\n")
    with pytest.raises(ConfigError, match=r"m\.yaml:1: expected a Kubernetes object.*a list"):
        load(tmp_path)


def test_empty_or_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no manifests in"):
        load(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope")


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("iris", ImageRef("iris", None, None)),
        ("rolloutgate/iris:v1", ImageRef("rolloutgate/iris", "v1", None)),
        ("localhost:5000/iris", ImageRef("localhost:5000/iris", None, None)),
        ("localhost:5000/ml/iris:v2", ImageRef("localhost:5000/ml/iris", "v2", None)),
        ("iris@sha256:abc", ImageRef("iris", None, "sha256:abc")),
        ("h:1/iris:v1@sha256:abc", ImageRef("h:1/iris", "v1", "sha256:abc")),
    ],
)
def test_image_ref_parse(image: str, expected: ImageRef) -> None:
    assert ImageRef.parse(image) == expected


def test_set_tag_by_name_with_registry_port(tmp_path: Path) -> None:
    objs = load(write(tmp_path, "m.yaml", DEPLOYMENT))
    out = set_image_tag(objs, "v2", ["registry.local:5000/ml/iris"])
    assert images(out) == {
        "fetch": "registry.local:5000/ml/fetcher:1.0",
        "model": "registry.local:5000/ml/iris:v2",
        "sidecar": images(objs)["sidecar"],
    }
    # deep copies: the input is unchanged
    assert images(objs)["model"] == "registry.local:5000/ml/iris:v1"


def test_set_tag_names_given_with_a_tag_match_by_name(tmp_path: Path) -> None:
    objs = load(write(tmp_path, "m.yaml", DEPLOYMENT))
    out = set_image_tag(objs, "v3", ["registry.local:5000/ml/iris:v1"])
    assert images(out)["model"] == "registry.local:5000/ml/iris:v3"


def test_set_tag_replaces_a_digest(tmp_path: Path) -> None:
    objs = load(write(tmp_path, "m.yaml", DEPLOYMENT))
    assert images(set_image_tag(objs, "1.36", ["busybox"]))["sidecar"] == "busybox:1.36"


def test_set_tag_on_init_containers(tmp_path: Path) -> None:
    objs = load(write(tmp_path, "m.yaml", DEPLOYMENT))
    out = set_image_tag(objs, "2.0", ["registry.local:5000/ml/fetcher"])
    assert images(out)["fetch"] == "registry.local:5000/ml/fetcher:2.0"
    assert images(out)["model"] == "registry.local:5000/ml/iris:v1"


def test_set_tag_without_names_sets_every_deployment_image(tmp_path: Path) -> None:
    objs = load(write(tmp_path, "m.yaml", DEPLOYMENT))
    assert set(images(set_image_tag(objs, "v9", image_names(objs))).values()) == {
        "registry.local:5000/ml/fetcher:v9",
        "registry.local:5000/ml/iris:v9",
        "busybox:v9",
    }


def test_similar_names_do_not_match(tmp_path: Path) -> None:
    objs = load(write(tmp_path, "m.yaml", DEPLOYMENT))
    with pytest.raises(ConfigError, match="matched no container") as info:
        set_image_tag(objs, "v2", ["ml/iris", "iris"])
    # the message shows what the manifests do use
    assert "registry.local:5000/ml/iris:v1" in str(info.value)


def test_no_deployment_and_no_names(tmp_path: Path) -> None:
    objs = load(write(tmp_path, "c.yaml", "{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}"))
    assert image_names(objs) == []
    with pytest.raises(ConfigError, match="matched no container"):
        set_image_tag(objs, "v2", image_names(objs))


@pytest.mark.parametrize("tag", ["", "-v2", ".v2", "v2 ", "v:2", "v/2", "x" * 129, "v2@sha"])
def test_bad_tag_is_rejected(tmp_path: Path, tag: str) -> None:
    objs = load(write(tmp_path, "m.yaml", DEPLOYMENT))
    with pytest.raises(ConfigError, match="not a valid tag"):
        set_image_tag(objs, tag, ["busybox"])


@pytest.mark.parametrize("tag", ["v2", "1.36.1", "nightly-2024_05_01", "_x", "x" * 128])
def test_good_tags_are_accepted(tmp_path: Path, tag: str) -> None:
    objs = load(write(tmp_path, "m.yaml", DEPLOYMENT))
    assert images(set_image_tag(objs, tag, ["busybox"]))["sidecar"] == f"busybox:{tag}"


# --- sources -------------------------------------------------------------------------------


def test_subdirectories_are_read_in_path_order(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "{apiVersion: v1, kind: ConfigMap, metadata: {name: b}}")
    sub = tmp_path / "a"
    sub.mkdir()
    write(sub, "z.yaml", "{apiVersion: v1, kind: ConfigMap, metadata: {name: a-z}}")
    hidden = tmp_path / ".git"
    hidden.mkdir()
    write(hidden, "x.yaml", "not: [a manifest")
    rendered = render(tmp_path)
    assert [o["metadata"]["name"] for o in rendered.objects] == ["a-z", "b"]
    assert rendered.source == f"directory {tmp_path}"


def test_a_kustomization_inside_a_plain_directory_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "cm.yaml", "{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    write(overlay, "kustomization.yaml", "resources: []")
    with pytest.raises(ConfigError, match="is a kustomize source inside the plain"):
        render(tmp_path)


def test_source_kinds_are_detected(tmp_path: Path) -> None:
    assert kind_of_source(tmp_path) == "directory"
    write(tmp_path, "Chart.yaml", "name: x")
    assert kind_of_source(tmp_path) == "helm"
    write(tmp_path, "kustomization.yaml", "resources: []")
    assert kind_of_source(tmp_path) == "kustomize"


def test_a_missing_tool_is_named_with_the_setting(tmp_path: Path) -> None:
    write(tmp_path, "kustomization.yaml", "resources: []")
    with pytest.raises(ConfigError, match=r"needs '/nonexistent/kubectl'.*ROLLOUTGATE_KUBECTL"):
        render(tmp_path, kubectl="/nonexistent/kubectl")


def test_values_files_need_a_chart(tmp_path: Path) -> None:
    write(tmp_path, "cm.yaml", "{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}")
    with pytest.raises(ConfigError, match="are for a Helm chart"):
        render(tmp_path, values=[tmp_path / "values.yaml"])


def test_only_the_given_kinds_are_retagged(tmp_path: Path) -> None:
    job = """
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      containers: [{name: migrate, image: "registry.local:5000/ml/iris:v1"}]
"""
    objs = load(write(tmp_path, "m.yaml", DEPLOYMENT + "---\n" + job))
    out = set_image_tag(objs, "v2", ["registry.local:5000/ml/iris"], kinds={"Deployment"})
    job_image = out[-1]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert job_image == "registry.local:5000/ml/iris:v1"
    assert images(out)["model"] == "registry.local:5000/ml/iris:v2"
