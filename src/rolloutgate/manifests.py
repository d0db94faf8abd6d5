"""Reading manifests (plain files, a kustomization, a Helm chart) and setting image tags.
No cluster: kustomize and Helm sources are rendered by their own tools, locally.

Objects are plain dicts as YAML parses them. Tags are set on parsed objects with kustomize
`images` semantics (image name -> new tag), never by text substitution.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rolloutgate.errors import ConfigError
from rolloutgate.objects import IMAGE_TAG, Obj

SUFFIXES = (".yaml", ".yml", ".json")


KUSTOMIZATION = ("kustomization.yaml", "kustomization.yml", "Kustomization")
CHART = "Chart.yaml"
# Rendering runs a tool on local files: a minute is far more than it needs.
RENDER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Rendered:
    """The objects of a manifest source, and a line saying which source and how it was read."""

    objects: list[Obj]
    source: str


def kind_of_source(path: Path) -> str:
    """'kustomize', 'helm' or 'directory' for a manifest path (ConfigError if it is none)."""
    if not path.is_dir():
        raise ConfigError(f"manifest directory {path} does not exist")
    if any((path / name).is_file() for name in KUSTOMIZATION):
        return "kustomize"
    if (path / CHART).is_file():
        return "helm"
    return "directory"


def render(
    path: Path,
    *,
    values: Sequence[Path] = (),
    release: str | None = None,
    namespace: str = "default",
    kubectl: str = "kubectl",
    helm: str = "helm",
) -> Rendered:
    """The objects of a manifest source: a directory holding a kustomization is rendered with
    `kubectl kustomize`, a Helm chart (Chart.yaml) with `helm template` and `values`, any other
    directory is read as plain files (subdirectories included). ConfigError names what failed."""
    kind = kind_of_source(path)
    if values and kind != "helm":
        raise ConfigError(
            f"values files ({', '.join(map(str, values))}) are for a Helm chart, but {path} is "
            f"a {kind} source; remove `values` or point `manifests` at a chart"
        )
    if kind == "kustomize":
        text = _run_tool([kubectl, "kustomize", str(path)], "kustomize", kubectl)
        return Rendered(_parse(text, f"kubectl kustomize {path}"), f"kustomize {path}")
    if kind == "helm":
        missing = [str(v) for v in values if not v.is_file()]
        if missing:
            raise ConfigError(f"Helm values file(s) {', '.join(missing)} do not exist")
        name = release or path.name
        argv = [helm, "template", name, str(path), "--namespace", namespace]
        for v in values:
            argv += ["--values", str(v)]
        text = _run_tool(argv, "Helm chart", helm)
        shown = f", values {', '.join(str(v) for v in values)}" if values else ""
        return Rendered(
            _parse(text, f"helm template {path}"), f"helm chart {path} (release {name}{shown})"
        )
    objs = load(path)
    return Rendered(objs, f"directory {path}")


def _run_tool(argv: list[str], what: str, tool: str) -> str:
    """The tool's standard output; ConfigError with its own message when it fails."""
    if shutil.which(tool) is None:
        setting = Path(tool).name
        raise ConfigError(
            f"rendering a {what} needs {tool!r}, which is not on PATH; install it or set its "
            f"path ([tool.rolloutgate] {setting} = PATH, or ROLLOUTGATE_{setting.upper()})"
        )
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise ConfigError(f"{' '.join(argv)} did not finish in {RENDER_TIMEOUT_S:g} s") from e
    if proc.returncode != 0:
        raise ConfigError(
            f"{' '.join(argv)} failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}"
        )
    return proc.stdout


def _parse(text: str, where: str) -> list[Obj]:
    objs = [
        o for line, doc in _yaml_documents(text, where) for o in _objects(doc, f"{where}:{line}")
    ]
    if not objs:
        raise ConfigError(f"{where} rendered no objects")
    return objs


def load(directory: Path) -> list[Obj]:
    """Every object of every *.yaml, *.yml, *.json file in `directory` and its subdirectories
    (hidden ones skipped), in path order.

    Multi-document YAML and `kind: List` are flattened. ConfigError names the file and line of a
    document that does not parse or lacks apiVersion, kind or metadata.name, and a subdirectory
    that is a kustomization or a chart (it would be read as plain files).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"manifest directory {directory} does not exist")
    files = sorted(
        p
        for p in directory.rglob("*")
        if p.is_file()
        and p.suffix in SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )
    for sub in sorted({p.parent for p in files} - {directory}):
        if kind_of_source(sub) != "directory":
            raise ConfigError(
                f"{sub} is a {kind_of_source(sub)} source inside the plain manifest directory "
                f"{directory}: its files are not manifests as they are. Point `manifests` at "
                "it to render it, or move it out"
            )
    if not files:
        raise ConfigError(
            f"no manifests in {directory}: expected files ending in {', '.join(SUFFIXES)}"
        )
    objs: list[Obj] = []
    for path in files:
        for line, doc in _documents(path):
            objs.extend(_objects(doc, f"{path}:{line}"))
    if not objs:
        raise ConfigError(f"the manifests in {directory} hold no objects")
    return objs


def _documents(path: Path) -> Iterator[tuple[int, Any]]:
    """(first line, parsed value) of each non-empty document of a file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            yield 1, json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from e
        return
    yield from _yaml_documents(text, str(path))


def _yaml_documents(text: str, where: str) -> Iterator[tuple[int, Any]]:
    loader = yaml.SafeLoader(text)
    try:
        # What yaml.safe_load_all does, keeping each document's start line for messages.
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield node.start_mark.line + 1, loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at_ = f"{where}:{mark.line + 1}:{mark.column + 1}" if mark else where
        raise ConfigError(f"{at_}: not valid YAML: {e.problem or e.context}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML: {e}") from e
    finally:
        loader.dispose()


def _objects(doc: Any, where: str) -> list[Obj]:
    if doc is None:
        return []
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a Kubernetes object (a mapping), got {_kind(doc)}")
    if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
        return [o for item in doc["items"] for o in _objects(item, where)]
    missing = [
        field
        for field, value in (
            ("apiVersion", doc.get("apiVersion")),
            ("kind", doc.get("kind")),
            ("metadata.name", (doc.get("metadata") or {}).get("name")),
        )
        if not isinstance(value, str) or not value
    ]
    if missing:
        raise ConfigError(f"{where}: object without {', '.join(missing)}")
    return [doc]


def _kind(value: Any) -> str:
    names = {"list": "a list", "str": "a string"}
    name = type(value).__name__
    return names.get(name, name)


# Kinds applied before all others (and so deleted after them): what the rest lives in.
FIRST_KINDS = ("Namespace",)


def apply_order(objs: list[Obj]) -> list[Obj]:
    """`objs` in the order to apply them: Namespaces first, the rest in file order. Pure."""
    first = [o for o in objs if o.get("kind") in FIRST_KINDS]
    return first + [o for o in objs if o.get("kind") not in FIRST_KINDS]


@dataclass(frozen=True)
class ImageRef:
    """An image reference split the way kustomize matches it: name, tag, digest."""

    name: str  # registry[:port]/repository, without tag or digest
    tag: str | None
    digest: str | None

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        rest, _, digest = image.partition("@")
        # A ':' after the last '/' separates a tag; one before it is a registry port.
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon > slash:
            return cls(rest[:colon], rest[colon + 1 :], digest or None)
        return cls(rest, None, digest or None)


def pod_specs(obj: Obj) -> list[Obj]:
    """The pod specs inside an object: a Pod's own, a workload's template, a CronJob's job's."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return [spec]
    if kind == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    template = spec.get("template")
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return [template["spec"]]
    return []


def containers(pod_spec: Obj) -> list[Obj]:
    """Containers and initContainers of a pod spec."""
    return [
        c
        for key in ("initContainers", "containers")
        for c in pod_spec.get(key) or []
        if isinstance(c, dict)
    ]


def set_image_tag(
    objs: list[Obj], tag: str, images: Sequence[str], *, kinds: Collection[str] | None = None
) -> list[Obj]:
    """Deep copies of `objs` with `tag` set on every container whose image name is in `images`.

    kustomize `images` semantics: an image name is registry[:port]/repository without tag or
    digest; a digest is replaced by the tag. `kinds` (None: all) limits which objects are
    retagged. ConfigError for a malformed tag, or when the tag matched nothing.
    """
    if not IMAGE_TAG.fullmatch(tag):
        raise ConfigError(
            f"image tag {tag!r} is not a valid tag: up to 128 letters, digits, '_', '.', '-', "
            "not starting with '.' or '-'"
        )
    out = copy.deepcopy(objs)
    wanted = {ImageRef.parse(i).name for i in images}
    seen: list[str] = []
    changed = 0
    for obj in out:
        if kinds is not None and obj.get("kind") not in kinds:
            continue
        for spec in pod_specs(obj):
            for c in containers(spec):
                image = c.get("image")
                if not isinstance(image, str):
                    continue
                seen.append(image)
                ref = ImageRef.parse(image)
                if ref.name in wanted:
                    c["image"] = f"{ref.name}:{tag}"
                    changed += 1
    if not changed:
        raise ConfigError(
            f"image tag {tag!r} matched no container: looked for "
            f"{', '.join(sorted(wanted)) or '(no image names given)'}; "
            f"images in the manifests: {', '.join(seen) or '(none)'}"
        )
    return out
