"""The public API is one list: ``rolloutgate.__all__``, docs/gate.md's table, and what the
suite a team copies (conftest.py, tests/deploy, tests/smoke) imports."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rolloutgate

REPO = Path(__file__).resolve().parents[2]


def documented() -> set[str]:
    text = (REPO / "docs" / "gate.md").read_text(encoding="utf-8")
    table = text.split("<!-- public-api:", 1)[1].split("\n\n", 1)[0]
    names: set[str] = set()
    for row in table.splitlines()[3:]:
        first_cell = row.split("|")[1]
        names |= set(re.findall(r"`(\w+)", first_cell))
    return names


@pytest.mark.parametrize("name", rolloutgate.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(rolloutgate, name) is not None


def test_docs_list_the_public_names() -> None:
    assert documented() == set(rolloutgate.__all__)


def test_no_public_name_is_a_subpackage_name() -> None:
    """Importing a subpackage binds its name on the package: a public name equal to it would be
    replaced by the module (``rolloutgate.workloads`` was, once)."""
    package = Path(rolloutgate.__file__).parent
    modules = {
        p.stem for p in package.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()
    }
    assert not modules & set(rolloutgate.__all__)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rolloutgate.nope  # noqa: B018


def test_the_copied_suite_imports_the_public_api_only() -> None:
    files = [REPO / "conftest.py", *REPO.glob("tests/deploy/*.py"), *REPO.glob("tests/smoke/*.py")]
    private = []
    for file in files:
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rolloutgate."):
                private.append(f"{file.relative_to(REPO)}: from {node.module} import ...")
            if isinstance(node, ast.Import):
                private += [a.name for a in node.names if a.name.startswith("rolloutgate.")]
    assert not private


def test_importing_the_package_imports_no_implementation() -> None:
    """``import rolloutgate`` (every pytest run loads the plugin's package) stays cheap."""
    code = (
        "import sys, rolloutgate; "
        "print(sorted(m for m in sys.modules if m.startswith('rolloutgate')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['rolloutgate']"
