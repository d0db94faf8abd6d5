"""docs/gate.md's settings tables and the one table in the code (``config.SETTINGS``) say the
same, both ways: every setting is documented with the environment variable the code reads,
and every documented key, option and variable exists. (A team followed the docs to
ROLLOUTGATE_CANARY_PROMOTE, a `health.*` option and a `timeouts.api` that the tables lacked.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rolloutgate.config import CLUSTER, SETTINGS, Setting

DOCS = Path(__file__).resolve().parents[2] / "docs" / "gate.md"
IN_FILES = {s.key: s for s in SETTINGS if s.profile or s.project}
WITH_FLAG = {str(s.flag): s for s in (CLUSTER, *SETTINGS) if s.flag is not None}


def rows(marker: str) -> list[list[str]]:
    """The cells of each row of the table that follows ``marker`` in docs/gate.md."""
    text = DOCS.read_text(encoding="utf-8")
    table = text.split(marker, 1)[1].lstrip("\n").split("\n\n", 1)[0]
    lines = table.splitlines()
    lines = lines[1:] if lines[0].startswith("|---") else lines[2:]  # header, separator
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]


def names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def keys_table() -> list[tuple[list[str], str]]:
    """(keys, env cell) of each row of the keys table."""
    return [
        (names(r[0]), r[1]) for r in rows("<!-- settings: tests/plugin/test_settings_docs.py -->")
    ]


def options_table() -> dict[str, str]:
    """flag (without its value) → env cell, from the options table."""
    found = {}
    for r in rows("| option | value | default | env |"):
        flag = names(r[0])[0].split("=", 1)[0]
        found[flag] = r[-1]
    return found


def test_every_setting_a_file_may_hold_is_documented_and_no_other() -> None:
    documented = [k for keys, _env in keys_table() for k in keys]
    assert len(documented) == len(set(documented)), "a key documented twice"
    assert set(documented) == set(IN_FILES)


@pytest.mark.parametrize(("keys", "env"), keys_table(), ids=lambda v: str(v)[:40])
def test_the_documented_variables_are_the_ones_read(keys: list[str], env: str) -> None:
    settings = [IN_FILES[k] for k in keys]
    if env in ("as the option", "as the options"):
        documented = options_table()
        for s in settings:
            assert s.flag in documented, f"{s.key}: 'as the options', but {s.flag} is not there"
        return
    assert [n.split("=", 1)[0] for n in names(env)] == [s.env for s in settings]


def test_every_option_is_documented_with_its_variable_and_no_other() -> None:
    documented = options_table()
    assert set(documented) - {"--canary"} == set(WITH_FLAG)
    for flag, env in documented.items():
        if flag == "--canary":
            continue
        setting: Setting = WITH_FLAG[flag]
        assert names(env)[0].split("=", 1)[0] == setting.env, flag
