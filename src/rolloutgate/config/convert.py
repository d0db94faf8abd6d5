"""Converters: str (or a TOML value) -> value, or ``argparse.ArgumentTypeError`` naming the
accepted format (so one function serves as an option's ``type=`` and checks values read from
the environment and pyproject.toml)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from rolloutgate.objects import IMAGE_TAG

ENV_PREFIX = "ROLLOUTGATE_"
KIND = "kind"  # --cluster value for a throwaway kind cluster (pytest-kind)
# A namespace name is an RFC 1123 label.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def image_tag(value: object) -> str:
    """A Docker image tag: ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``."""
    text = str(value)
    if not IMAGE_TAG.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid image tag {text!r}: a tag is 1-128 characters of letters, digits, "
            "'_', '.' and '-', not starting with '.' or '-' (e.g. v2, 1.4.0-rc1)"
        )
    return text


def seconds(value: object) -> float:
    """A positive number of seconds."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(
            f"invalid timeout {value!r}: expected a number of seconds > 0 (e.g. 300 or 90.5)"
        )
    return number


def count(value: object) -> int:
    """A whole number >= 0."""
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if number < 0 or isinstance(value, bool):
        raise argparse.ArgumentTypeError(
            f"invalid count {value!r}: expected a whole number >= 0 (e.g. 0 or 3)"
        )
    return number


def namespace(value: object) -> str:
    """A Kubernetes namespace name (an RFC 1123 label)."""
    text = str(value)
    if not _LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid namespace {text!r}: expected at most 63 lower-case letters, digits and "
            "'-', starting and ending with a letter or digit (e.g. iris-staging)"
        )
    return text


def url(value: object) -> str:
    """An http(s) URL with a host; no trailing slash. Its userinfo (``user:password@``) is
    kept for the requests and never shown (``redact.url``)."""
    from urllib.parse import urlsplit  # lazily: plugin start-up costs every pytest run

    text = str(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc.rpartition("@")[2]:
        from rolloutgate import redact

        raise argparse.ArgumentTypeError(
            f"invalid URL {redact.url(text)!r}: expected http://HOST[:PORT][/PATH] or https://..."
        )
    return text.rstrip("/")


@dataclass(frozen=True)
class Header:
    """A request header for the endpoint. ``source`` is ``env:NAME`` (read from the
    environment), ``file:PATH`` (a file's content, trailing newline dropped) or the value itself;
    it is never shown (``repr`` hides it), only ``origin`` is."""

    name: str
    source: str = field(repr=False)

    @property
    def origin(self) -> str:
        """Where the value comes from, for messages: ``env MODEL_TOKEN``, never the value."""
        kind, _, ref = self.source.partition(":")
        if kind == "env" and ref:
            return f"env {ref}"
        if kind == "file" and ref:
            return f"file {ref}"
        return "a value written in the settings"


# RFC 9110 token characters: a header name.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def headers(value: object) -> tuple[Header, ...]:
    """Request headers: a TOML table, or a JSON object in the environment; each value is
    ``env:NAME``, ``file:PATH`` or a literal. Messages name headers, never values."""
    import json  # lazily: plugin start-up costs every pytest run

    table = value
    if isinstance(value, str):
        try:
            table = json.loads(value)
        except ValueError:
            table = None
    accepted = (
        'expected a table of header names to "env:VARIABLE", "file:PATH" or a value, e.g. '
        'headers = {Authorization = "env:MODEL_TOKEN"} (in the environment as JSON: '
        '{"Authorization": "env:MODEL_TOKEN"})'
    )
    if not isinstance(table, dict):
        raise argparse.ArgumentTypeError(f"invalid headers (values not shown): {accepted}")
    found: list[Header] = []
    for key, source in table.items():
        if not _TOKEN.fullmatch(str(key)) or not isinstance(source, str):
            raise argparse.ArgumentTypeError(
                f"invalid header {str(key)[:40]!r} (value not shown): {accepted}"
            )
        found.append(Header(str(key), source))
    return tuple(found)


def name(value: object) -> str:
    """A non-empty name without spaces (cluster profile, kubeconfig context, object name)."""
    text = str(value)
    if not text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(
            f"invalid name {text!r}: expected a non-empty name without spaces"
        )
    return text


def path(value: object) -> str:
    """A non-empty filesystem path (made absolute by ``resolve``)."""
    text = str(value)
    if not text:
        raise argparse.ArgumentTypeError("invalid path '': expected a file or directory path")
    return text


def flag(value: object) -> bool:
    """true/false (1/0, yes/no, on/off) from the environment, or a TOML boolean."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise argparse.ArgumentTypeError(
        f"invalid boolean {value!r}: expected one of 1/0, true/false, yes/no, on/off"
    )


def images(value: object) -> tuple[str, ...]:
    """Image names (registry/repository, no tag): a TOML list or a comma-separated string."""
    items = value if isinstance(value, list) else str(value).split(",")
    names = tuple(str(i).strip() for i in items if str(i).strip())
    if not names or any(":" in n.rsplit("/", 1)[-1] or "@" in n for n in names):
        raise argparse.ArgumentTypeError(
            f"invalid image names {value!r}: expected image names without tag or digest, "
            'e.g. ["rolloutgate/iris"] or rolloutgate/iris,registry.example/other'
        )
    return names


def port(value: object) -> int | str:
    """A Service port: a number 1-65535 or a port name."""
    text = str(value)
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    if _LABEL.fullmatch(text) and not text.isdigit():
        return text
    raise argparse.ArgumentTypeError(
        f"invalid port {value!r}: expected a port number 1-65535 or a Service port name"
    )


def paths(value: object) -> tuple[str, ...]:
    """File paths: a TOML list or a comma-separated string (made absolute by ``resolve``)."""
    items = value if isinstance(value, list) else str(value).split(",")
    found = tuple(str(i).strip() for i in items if str(i).strip())
    if not found:
        raise argparse.ArgumentTypeError(
            f'invalid paths {value!r}: expected file paths, e.g. ["values-staging.yaml"]'
        )
    return found


def http_path(value: object) -> str:
    """An URL path starting with '/'; ``{model}`` is replaced by the golden file's model."""
    text = str(value)
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(
            f"invalid HTTP path {text!r}: expected a path starting with '/', "
            "e.g. /v2/models/{model}/ready"
        )
    return text


def container_path(value: object) -> str:
    """An absolute path inside a container (the model file the in-pod checks look for)."""
    text = str(value)
    if not text.startswith("/") or any(c in text for c in "\n\0"):
        raise argparse.ArgumentTypeError(
            f"invalid path in the container {text!r}: expected an absolute path, "
            "e.g. /opt/model/model.joblib"
        )
    return text


# An image reference as a pod spec takes it: [registry[:port]/]repository[:tag][@digest].
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?")


def image(value: object) -> str | None:
    """An image reference, e.g. ``busybox:1.36`` or ``registry.example/tools/debug:2``; false
    (TOML ``false``, env ``false``/``off``) is None: no such image is to be used."""
    if value is False or str(value).strip().lower() in ("false", "off"):
        return None
    text = str(value)
    if not _IMAGE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid image {text!r}: expected an image reference such as busybox:1.36 "
            "(lower-case repository, optional registry, tag or digest), or false for none"
        )
    return text


# A Prometheus metric name, and a label name.
_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def metric_name(value: object) -> str:
    """A Prometheus metric name ``[a-zA-Z_:][a-zA-Z0-9_:]*``."""
    text = str(value)
    if not _METRIC.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid metric name {text!r}: expected [a-zA-Z_:][a-zA-Z0-9_:]*, "
            "e.g. model_infer_request_success"
        )
    return text


def metric_labels(value: object) -> tuple[tuple[str, str], ...]:
    """Label matchers: a TOML table ``{outcome = "ok"}`` or ``outcome=ok,model=wine``."""
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = [tuple(p.split("=", 1)) for p in str(value).split(",") if p.strip()]  # type: ignore[misc]
    if any(len(p) != 2 or not _LABEL_NAME.fullmatch(p[0].strip()) for p in pairs):
        raise argparse.ArgumentTypeError(
            f"invalid metric labels {value!r}: expected a table of label = value, "
            'e.g. {outcome = "ok"}, or outcome=ok,model=wine'
        )
    return tuple(sorted((k.strip(), v.strip()) for k, v in pairs))


def waves(value: object) -> tuple[tuple[str, ...], ...]:
    """An ordered list of waves, each a non-empty list of cluster profile names (TOML
    ``[["local"], ["eu", "us"]]``; from the environment ``local;eu,us``)."""
    if isinstance(value, str):
        value = [w.split(",") for w in value.split(";")]
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(w, list) and w for w in value)
    ):
        raise argparse.ArgumentTypeError(
            f"invalid waves {value!r}: expected a list of waves, each a list of cluster "
            'profiles, e.g. [["staging"], ["eu", "us"]]'
        )
    found = tuple(tuple(name(str(c).strip()) for c in w) for w in value)
    every = [c for w in found for c in w]
    if len(every) != len(set(every)):
        raise argparse.ArgumentTypeError(f"invalid waves {value!r}: a cluster is named twice")
    return found
