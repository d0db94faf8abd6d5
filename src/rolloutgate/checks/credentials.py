"""Credentials for the model's endpoint, on the one HTTP session every check uses.

An endpoint behind authentication gets its credentials from two places: the ``headers``
setting (values from ``env:NAME`` or ``file:PATH``, e.g. ``Authorization = "env:MODEL_TOKEN"``)
and the userinfo of ``endpoint_url`` (``https://user:password@host``, sent as HTTP Basic
auth, as curl and requests do). ``session`` puts both on a ``requests.Session``; the suite's
checks, the endpoint wait and the rollback's verification all use such a session, so an
endpoint that works for the checks also works for the rollback.

Values are never shown: messages name the header and where its value comes from, and the
endpoint's URL is passed on without its userinfo (``redact.url``), so nothing built from it
(assertion messages, errors, reports) can carry the password.
"""

from __future__ import annotations

import os
from pathlib import Path

import requests

from rolloutgate import redact
from rolloutgate.config import GateConfig, Header
from rolloutgate.errors import ConfigError

AUTHORIZATION = "authorization"


def header_value(header: Header, rootdir: Path) -> str:
    """The header's value from its source. ConfigError names the header and the source (a
    missing variable, an unreadable file, a value that is not one line), never the value."""
    kind, _, ref = header.source.partition(":")
    where = f"header {header.name} ({header.origin})"
    if kind == "env" and ref:
        value = os.environ.get(ref)
        if value is None:
            raise ConfigError(f"{where}: environment variable {ref} is not set")
    elif kind == "file" and ref:
        path = Path(ref).expanduser()
        path = path if path.is_absolute() else rootdir / path
        try:
            value = path.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
        except (OSError, UnicodeDecodeError) as e:
            why = getattr(e, "strerror", None) or type(e).__name__
            raise ConfigError(f"{where}: file {path} cannot be read: {why}") from None
    else:
        value = header.source
    if not value.strip():
        raise ConfigError(f"{where}: the value is empty")
    # requests and http.client would refuse these with the value in their message.
    if any(c in value for c in "\r\n\0"):
        raise ConfigError(f"{where}: the value contains a line break or NUL (value not shown)")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise ConfigError(
            f"{where}: the value has characters HTTP headers cannot carry (not Latin-1; value "
            "not shown)"
        ) from None
    return value


def header_values(cfg: GateConfig) -> dict[str, str]:
    """Every configured header with its value (ConfigError as ``header_value``)."""
    return {h.name: header_value(h, cfg.rootdir) for h in cfg.headers}


def check(cfg: GateConfig) -> None:
    """Read every header's value once, so a missing variable or file fails before anything
    is deployed rather than after."""
    header_values(cfg)


def session(cfg: GateConfig) -> requests.Session:
    """A session carrying the configured headers and the endpoint URL's userinfo (Basic auth,
    unless an Authorization header is configured: an explicit header wins)."""
    s = requests.Session()
    values = header_values(cfg)
    s.headers.update(values)
    login = redact.userinfo(cfg.endpoint_url) if cfg.endpoint_url else None
    if login is not None and AUTHORIZATION not in {k.lower() for k in values}:
        s.auth = login
    return s


def metadata(cfg: GateConfig) -> dict[str, str]:
    """The same credentials as gRPC metadata: the configured headers, and the endpoint URL's
    userinfo as a Basic ``authorization`` unless that header is configured."""
    values = header_values(cfg)
    login = redact.userinfo(cfg.endpoint_url) if cfg.endpoint_url else None
    if login is not None and AUTHORIZATION not in {k.lower() for k in values}:
        request = requests.Request("GET", "http://host", auth=login).prepare()
        values[AUTHORIZATION] = str(request.headers["Authorization"])
    return values


def endpoint_url(cfg: GateConfig) -> str | None:
    """The configured endpoint URL without its userinfo (the session carries that)."""
    return redact.url(cfg.endpoint_url) if cfg.endpoint_url else None
