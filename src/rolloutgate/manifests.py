"""Reading manifests and setting image tags. Pure: no cluster.

Objects are plain dicts as YAML parses them. Tags are set on parsed objects with kustomize
`images` semantics (image name -> new tag), never by text substitution.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rolloutgate.errors import ConfigError
from rolloutgate.objects import IMAGE_TAG, Obj

SUFFIXES = (".yaml", ".yml", ".json")


def load(directory: Path) -> list[Obj]:
    """Every object of every *.yaml, *.yml, *.json file directly in `directory`, in file order.

    Multi-document YAML and `kind: List` are flattened. ConfigError names the file and line of a
    document that does not parse or lacks apiVersion, kind or metadata.name.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(f"manifest directory {directory} does not exist")
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in SUFFIXES)
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
    loader = yaml.SafeLoader(text)
    try:
        # What yaml.safe_load_all does, keeping each document's start line for messages.
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield node.start_mark.line + 1, loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {e.problem or e.context}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
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


def set_image_tag(objs: list[Obj], tag: str, images: Sequence[str]) -> list[Obj]:
    """Deep copies of `objs` with `tag` set on every container whose image name is in `images`.

    kustomize `images` semantics: an image name is registry[:port]/repository without tag or
    digest; a digest is replaced by the tag. ConfigError for a malformed tag, or when the tag
    matched nothing.
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
