"""Endpoint credentials: header values from the environment or files, the URL's userinfo as
Basic auth, and errors that name a header and its source, never its value."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from rolloutgate import config
from rolloutgate.checks import credentials
from rolloutgate.errors import ConfigError

from .k8s_objects import gate_config

SECRET = "Bearer plantedvalue-7f3a"


def test_headers_from_a_toml_table_or_json_hide_their_values() -> None:
    toml = config.headers({"Authorization": "env:MODEL_TOKEN", "X-Key": "file:/run/key"})
    env = config.headers('{"Authorization": "env:MODEL_TOKEN", "X-Key": "file:/run/key"}')
    assert toml == env
    assert [(h.name, h.origin) for h in toml] == [
        ("Authorization", "env MODEL_TOKEN"),
        ("X-Key", "file /run/key"),
    ]
    literal = config.headers({"X-Tenant": SECRET})
    assert SECRET not in repr(literal)
    assert literal[0].origin == "a value written in the settings"


@pytest.mark.parametrize("bad", [SECRET, {"bad name": SECRET}, {"X": 3}, f'["{SECRET}"]'])
def test_bad_headers_are_refused_without_their_values(bad: object) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as e:
        config.headers(bad)
    assert "plantedvalue" not in str(e.value)
    assert "env:MODEL_TOKEN" in str(e.value)


def test_values_come_from_env_and_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("filevalue\n")
    monkeypatch.setenv("MODEL_TOKEN", SECRET)
    cfg = gate_config(
        rootdir=tmp_path,
        headers=config.headers({"Authorization": "env:MODEL_TOKEN", "X-Key": "file:key"}),
    )
    assert credentials.header_values(cfg) == {"Authorization": SECRET, "X-Key": "filevalue"}
    session = credentials.session(cfg)
    assert session.headers["Authorization"] == SECRET
    assert session.auth is None


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("env:NOT_SET_ANYWHERE", ("X-Key", "NOT_SET_ANYWHERE", "not set")),
        ("file:/nonexistent/key", ("X-Key", "/nonexistent/key", "cannot be read")),
        ("env:MULTI", ("X-Key", "line break")),
        ("env:EMPTY", ("X-Key", "empty")),
        ("env:NONLATIN", ("X-Key", "Latin-1")),
    ],
)
def test_unusable_values_name_header_and_source_only(
    monkeypatch: pytest.MonkeyPatch, source: str, words: tuple[str, ...]
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    monkeypatch.setenv("MULTI", SECRET + "\nmore")
    monkeypatch.setenv("EMPTY", " ")
    monkeypatch.setenv("NONLATIN", SECRET + "€")
    cfg = gate_config(headers=config.headers({"X-Key": source}))
    with pytest.raises(ConfigError) as e:
        credentials.check(cfg)
    for word in words:
        assert word in str(e.value)
    assert "plantedvalue" not in str(e.value)


def test_url_userinfo_becomes_basic_auth_and_leaves_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = gate_config(endpoint_url="https://ci%40corp:pa%3Ass@model.example:8443/base")
    assert credentials.endpoint_url(cfg) == "https://model.example:8443/base"
    assert credentials.session(cfg).auth == ("ci@corp", "pa:ss")
    # An explicit Authorization header wins over the userinfo.
    monkeypatch.setenv("MODEL_TOKEN", SECRET)
    with_header = gate_config(
        endpoint_url=cfg.endpoint_url, headers=config.headers({"authorization": "env:MODEL_TOKEN"})
    )
    assert credentials.session(with_header).auth is None


def test_a_bad_url_is_refused_without_its_userinfo() -> None:
    with pytest.raises(argparse.ArgumentTypeError) as e:
        config.url("ftp://user:plantedvalue@host")
    assert "plantedvalue" not in str(e.value)
    assert "ftp://host" in str(e.value)
