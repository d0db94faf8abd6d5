"""The benchmark tables in README.md and docs/benchmarks.md are what their JSON gives: a
table edited by hand, or a JSON re-measured without `python -m bench.docs --write`, fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import docs


@pytest.mark.parametrize("path", docs.DOCS, ids=lambda p: p.name)
def test_every_documented_table_matches_the_json_it_names(path: Path) -> None:
    assert docs.BLOCK.search(path.read_text()), f"{path.name} has no generated benchmark table"
    assert docs.stale(path) == [], "regenerate with: python -m bench.docs --write"


def test_a_table_that_no_longer_matches_its_json_is_found(tmp_path: Path) -> None:
    source = tmp_path / "run.json"  # absolute: joined to the repository, it stays itself
    figures = {"scale/verdict → end of the checks (s)/100 replicas": {"n": 1, "median": 4.2}}
    source.write_text(json.dumps({"command": "python -m bench scale", "figures": figures}))
    block = f"<!-- bench-table: scale from {source} -->\nold\n<!-- /bench-table -->\n"

    fresh = docs.regenerate(block)

    assert "| 100 replicas | 4.20 |" in fresh
    assert "`python -m bench scale`" in fresh  # the run it comes from
    assert docs.stale_text(block) != []
    assert docs.stale_text(fresh) == []
    assert docs.stale_text(fresh.replace("4.20", "3.10")) != []
