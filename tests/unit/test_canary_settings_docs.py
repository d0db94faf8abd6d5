"""docs/canary.md's settings table and the canary's settings (``canary.config.SETTINGS``) say
the same, both ways: every key is documented, with its option when it has one, and every
documented key exists."""

from __future__ import annotations

import re
from pathlib import Path

from rolloutgate.canary.config import SETTINGS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "canary.md"


def documented() -> dict[str, str]:
    """key -> option ("" when none) of every row of the table under "| option | key |"."""
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("| option | key | default |", 1)[1].split("\n\n", 1)[0]
    found: dict[str, str] = {}
    for line in table.strip().splitlines()[1:]:
        option, key_cell = (c.strip() for c in line.strip().strip("|").split("|")[:2])
        # A cell lists `canary.a`, `b`, `c` (b and c under canary.), then maybe a remark.
        names = re.findall(r"`([^`]+)`", key_cell.split("(", 1)[0])
        flag = re.findall(r"`(--[a-z-]+)", option)
        for k, name in enumerate(names):
            key = name if name.startswith("canary.") else f"canary.{name}"
            assert key not in found, f"{key} documented twice"
            found[key] = flag[0] if flag and k == 0 else ""
    return found


def test_every_canary_setting_is_documented_with_its_option_and_no_other() -> None:
    docs = documented()
    assert set(docs) == {s.key for s in SETTINGS}
    for s in SETTINGS:
        assert docs[s.key] == (s.flag or ""), s.key
