"""The fixture chain is drawn twice (fixtures.py's docstring, docs/gate.md); both must be what
the fixtures' real dependencies say."""

from __future__ import annotations

import inspect
import itertools
import re
from pathlib import Path

import pytest

from rolloutgate.pytest import fixtures

DOCS = Path(__file__).resolve().parents[2] / "docs" / "gate.md"


def chain_in(text: str) -> list[str]:
    """The first drawn chain in `text`: the fixture names of the consecutive indented lines that
    start with `rolloutgate_` or `→`."""
    names: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        drawn = line.startswith(" ") and stripped.startswith(("rolloutgate_", "→"))
        if drawn and "→" in stripped:
            names += re.findall(r"rolloutgate_\w+", stripped)
        elif names:
            break
    return names


def dependencies(name: str) -> set[str]:
    """The fixtures a fixture of rolloutgate.pytest.fixtures asks for, from its signature."""
    return set(inspect.signature(getattr(fixtures, name)).parameters)


def test_docstring_chain_is_the_real_dependency_order() -> None:
    chain = chain_in(fixtures.__doc__ or "")
    assert len(chain) >= 8, f"no chain found in fixtures.py's docstring: {chain}"
    for before, after in itertools.pairwise(chain):
        assert before in dependencies(after), f"{after} does not depend on {before}"


def test_docs_draw_the_same_chain() -> None:
    assert chain_in(DOCS.read_text(encoding="utf-8")) == chain_in(fixtures.__doc__ or "")


def test_chain_names_every_session_step() -> None:
    """Every session fixture that changes or reads the cluster is on the chain (a step left off
    the drawing is how the three copies drifted apart)."""
    chain = set(chain_in(fixtures.__doc__ or ""))
    steps = {
        name
        for name in dir(fixtures)
        if name.startswith("rolloutgate_")
        and name in fixtures.GATE_FIXTURES | {"rolloutgate_manifests"}
    }
    per_test = {
        "rolloutgate_v2",  # the endpoint's client, drawn beside the chain
        "rolloutgate_pods",
        "rolloutgate_workload_pods",
        "rolloutgate_restarts",
        "rolloutgate_pod_host",
        "rolloutgate_in_pod",
        "rolloutgate_warmup",  # requests to each replica before the latency budget
        "rolloutgate_case",
    }
    assert steps - per_test <= chain


@pytest.mark.parametrize("name", sorted(fixtures.GATE_FIXTURES))
def test_gate_fixtures_exist(name: str) -> None:
    assert callable(getattr(fixtures, name))
