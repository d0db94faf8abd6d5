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


def test_the_fault_table_has_one_row_per_fault_and_step_and_names_each_run(
    tmp_path: Path,
) -> None:
    row = {
        "name": "apiserver-90-rollout",
        "fault": "kube-apiserver killed, down 90 s",
        "step": "rollout",
        "undisturbed": "pass",
    }
    result = {
        "row": row,
        "verdict": "pass",
        "exit": 0,
        "rollback": "",
        "traceback": False,
        "live_tag": "v2",
        "ready": True,
        "record_step": "verified",
        "record_tag": "v2",
        "recovered": "",
        "outage_s": 101.3,
        "seconds": 150.2,
        "after_outage_s": 20.0,
    }
    run = {
        "command": "python -m bench faults --rows apiserver-90 --add",
        "started": 0,
        "duration_s": 300,
        "commit": "abc1234",
        "nproc": 2,
        "loadavg_start": "3.1 2 1",
        "loadavg_end": "4.2 3 2",
    }
    source = tmp_path / "faults.json"
    source.write_text(json.dumps({"runs": [run], "rows": [result]}))
    block = f"<!-- bench-table: faults from {source} -->\nold\n<!-- /bench-table -->\n"

    fresh = docs.regenerate(block)

    assert (
        "| kube-apiserver killed, down 90 s | rollout | pass | pass (0) | - | no | "
        "v2, ready, record verified (v2) | 101.3 | 150.2 | 20 |"
    ) in fresh
    assert "`python -m bench faults --rows apiserver-90 --add`" in fresh
    assert "commit abc1234, load average 3.1 → 4.2" in fresh
    assert docs.stale_text(fresh) == []
