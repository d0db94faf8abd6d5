"""The files ``rolloutgate init`` writes into a team's repository, and the rule it writes them
by: an existing file is never overwritten without ``--force``.

- the suite: ``conftest.py``, ``tests/deploy/``, ``tests/smoke/`` (this package's own copy,
  ``rolloutgate/suite``: the suite the project itself runs);
- ``pyproject.toml``: ``[tool.pytest.ini_options] testpaths`` (a bare ``pytest --cluster=...``
  then runs only the gate: any unrelated failing test would otherwise roll the release back),
  ``[tool.rolloutgate]`` (what the manifests say about the service) and one cluster profile;
  an existing pyproject.toml gets them added, never its other tables touched;
- the golden file and ``.github/workflows/release-gate.yml``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from rolloutgate import __version__

SUITE = ("conftest.py", "tests/deploy", "tests/smoke")
WORKFLOW = Path(".github/workflows/release-gate.yml")
TESTPATHS = ["tests/deploy", "tests/smoke"]
_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


@dataclass
class Written:
    """What was written, and what was kept because it existed (with the reason)."""

    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def suite_files() -> dict[str, str]:
    """The suite a team copies, by path relative to its repository's root."""
    root = resources.files("rolloutgate") / "suite"
    found: dict[str, str] = {}
    for part in SUITE:
        node = root.joinpath(*part.split("/"))
        if node.is_file():
            found[part] = node.read_text(encoding="utf-8")
            continue
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            if child.name.endswith(".py") and child.is_file():
                found[f"{part}/{child.name}"] = child.read_text(encoding="utf-8")
    return found


def workflow(profile: str, secret: str) -> str:
    """The CI workflow for ``profile``, its kubeconfig from the repository secret ``secret``."""
    text = (resources.files("rolloutgate") / "init" / "release-gate.yml").read_text("utf-8")
    return Template(text).substitute(
        profile=profile, secret=secret, package=f"rolloutgate=={__version__}"
    )


def write(root: Path, relative: str, text: str, *, force: bool, out: Written) -> None:
    """Write ``text`` to ``root/relative`` unless it exists (``force``: overwrite it)."""
    path = root / relative
    if path.exists() and not force:
        out.kept.append(f"{relative} (exists; --force overwrites it)")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    out.written.append(relative)


def golden_text(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


# ---------------------------------------------------------------------------------------------
# pyproject.toml


def _toml(value: Any) -> str:
    """A TOML value: strings, numbers, booleans, lists and inline tables of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def table(name: str, values: Mapping[str, Any], comments: Mapping[str, str]) -> str:
    """``[name]`` with one ``key = value`` line each, a key's comment above it."""
    lines = [f"[{name}]"]
    for key, value in values.items():
        if key in comments:
            lines += [f"# {line}" for line in comments[key].splitlines()]
        lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


def _tables(text: str) -> list[str]:
    return [m.group(1) for line in text.splitlines() if (m := _HEADER.match(line))]


def pyproject(root: Path, gate: str, profile_name: str, *, force: bool, out: Written) -> None:
    """Add the gate's tables to ``root/pyproject.toml`` (created if missing): ``testpaths`` in
    ``[tool.pytest.ini_options]``, ``gate`` (``[tool.rolloutgate]`` and the profile) at the end.

    An existing ``[tool.rolloutgate]`` is kept without ``force`` (with it, the gate's tables are
    replaced, the rest of the file kept); a ``testpaths`` already set is kept and said.
    """
    path = root / "pyproject.toml"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    names = _tables(text)
    ours = [n for n in names if n == "tool.rolloutgate" or n.startswith("tool.rolloutgate.")]
    if ours and not force:
        out.kept.append(
            f"pyproject.toml [tool.rolloutgate] (exists; --force replaces the gate's tables, "
            f"keeping the rest of the file); profile {profile_name} would be:\n{gate}"
        )
        return
    text = _without_tables(text, set(ours))
    pytest_table = "tool.pytest.ini_options"
    lines = text.splitlines()
    if pytest_table in names:
        current = tomllib.loads(text).get("tool", {}).get("pytest", {}).get("ini_options", {})
        if "testpaths" in current:
            if list(current["testpaths"]) != TESTPATHS:
                out.kept.append(
                    f"pyproject.toml testpaths = {current['testpaths']} (exists): a bare "
                    f"`pytest --cluster=...` runs these; the gate suite is {TESTPATHS}"
                )
        else:
            at = next(
                i
                for i, line in enumerate(lines)
                if (m := _HEADER.match(line)) and m.group(1) == pytest_table
            )
            lines.insert(at + 1, f"testpaths = {_toml(TESTPATHS)}")
    else:
        lines += [
            "",
            "[tool.pytest.ini_options]",
            "# A bare `pytest --cluster=...` runs the gate suite only: any other failing test of",
            "# the repository would otherwise fail the gate and roll the release back.",
            f"testpaths = {_toml(TESTPATHS)}",
        ]
    new = "\n".join(lines).strip("\n") + "\n\n" + gate
    tomllib.loads(new)  # what is written must read back
    path.write_text(new, encoding="utf-8")
    out.written.append("pyproject.toml" + (" (added to)" if text else ""))


def _without_tables(text: str, names: set[str]) -> str:
    """``text`` without the tables called ``names`` (header to the next header)."""
    if not names:
        return text
    kept: list[str] = []
    dropping = False
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            dropping = m.group(1) in names
        if not dropping:
            kept.append(line)
    return "\n".join(kept)
