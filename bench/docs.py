"""`python -m bench.docs`: the documents' benchmark tables, generated from the JSON they name.

A generated table sits between two markers in README.md, docs/benchmarks.md or
docs/reliability.md::

    <!-- bench-table: failures from docs/bench/2026-12-02-bench.json -->
    ...          (written by this command; edits here are overwritten)
    <!-- /bench-table -->

`python -m bench.docs --write` rewrites every block from its JSON; without `--write` it only
checks, and exits 1 naming each block that no longer matches (tests/unit/test_bench_docs.py
runs the same check). `python -m bench.docs --keep reports/bench.json docs/bench/NAME.json`
copies a run's figures and facts (not its raw samples) to a small file the docs can name.
Every block opens with the run it comes from: command, date, commit, machine, load average.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import faults as bench_faults

REPO = Path(__file__).resolve().parent.parent
DOCS = (REPO / "README.md", REPO / "docs" / "benchmarks.md", REPO / "docs" / "reliability.md")
BLOCK = re.compile(
    r"(<!-- bench-table: (?P<table>[\w-]+) from (?P<file>\S+) -->\n)"
    r"(?P<body>.*?)(<!-- /bench-table -->)",
    re.DOTALL,
)
# What a kept file holds: the figures and the facts of the run, not its raw samples.
KEPT = ("command", "started", "duration_s", "machine", "helm", "cap_s", "gate_repo", "figures")

Stats = dict[str, dict[str, Any]]


def cell(figures: Stats, key: str, unit: str = "s") -> str:
    """`median [min..max]` of one figure; `>N` for a capped wait; `-` when not measured."""
    s = figures.get(key)
    if not s or not s.get("n"):
        return "-"

    def one(name: str) -> str:
        v = s.get(name)
        if v is None:
            return f">{s['lower_bound']:.0f}"
        return f"{v:.2f}" if unit == "s" else f"{v:.0f}"

    if s["n"] == 1:
        return one("median")
    return f"{one('median')} [{one('min')}..{one('max')}]"


def caption(data: dict[str, Any], source: str) -> str:
    machine = data.get("machine", {})
    started = data.get("started")
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)) if started else "?"
    load = machine.get("loadavg_start", "?").split()[0]
    end = machine.get("loadavg_end", "?").split()[0]
    return (
        f"`{data.get('command', '?')}`, {when}, {data.get('duration_s', 0) / 60:.0f} min, "
        f"commit {machine.get('commit', '?')}; {machine.get('nproc', '?')} vCPUs, load average "
        f"{load} at the start, {end} at the end; figures `median [min..max]` over the runs, "
        f"seconds unless said, `>N`: capped (`{source}`)."
    )


def _rows(figures: Stats, prefix: str) -> list[str]:
    """The distinct row names under `prefix/<row>/<column>`, in figure order."""
    seen: list[str] = []
    for key in figures:
        if key.startswith(prefix + "/"):
            row = key[len(prefix) + 1 :].split("/", 1)[0]
            if row not in seen:
                seen.append(row)
    return sorted(seen, key=_natural)


def _natural(text: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def readme(f: Stats) -> str:
    good = _rows(f, "verdict/good")
    n = "3 replicas" if "3 replicas" in good else (good[0] if good else "?")
    rows = [
        [
            f"verdict after the last new pod is Ready ({n})",
            cell(f, f"verdict/good/{n}/gate (rollout verdict)"),
            cell(f, f"verdict/good/{n}/kubectl rollout status"),
            cell(f, f"verdict/good/{n}/helm upgrade --wait"),
        ]
    ]
    for tag, what in (
        ("missing", "missing image detected"),
        ("crash", "crash detected"),
        ("unready", "never ready (ready_grace 30 s) detected"),
    ):
        p = f"detect/{tag}/deadline 600 s"
        # The gate from the API's own (1 s) time of the failure: from the bench's watch it is ~0
        # (both watches get the same event). A capped run has no API figure: then the watch's,
        # which keeps it.
        api, watch = f"{p}/gate, from the API's failure time (1 s)", f"{p}/gate"
        since = "the API's 1 s timestamp"
        if (f.get(api) or {}).get("n", 0) < (f.get(watch) or {}).get("n", 0):
            api, since = watch, "its first failing probe event"
        rows.append(
            [
                f"{what}, progressDeadlineSeconds 600 (gate: from {since})",
                cell(f, api),
                cell(f, f"{p}/kubectl rollout status") + " (waits for the deadline)",
                cell(f, f"{p}/helm upgrade --wait"),
            ]
        )
    case = "crash, deadline 600 s"
    rows += [
        [
            "failure verdict → restore submitted (crash)",
            cell(f, f"rollback/verdict → restore submitted/{case}"),
            "no rollback",
            "only at its timeout",
        ],
        [
            "failure verdict → previous release restored and verified (crash)",
            cell(f, f"rollback/verdict → restored and verified/{case}"),
            "no rollback",
            "unverified",
        ],
        [
            f"API requests of the rollout wait ({n})",
            cell(f, f"requests/good/{n}/gate, client (rollout phase)", "n"),
            cell(f, f"requests/good/{n}/kubectl rollout status, client", "n"),
            cell(f, f"requests/good/{n}/helm upgrade --wait, audit", "n") + " (polls every 2 s)",
        ],
    ]
    return _table(["", "rolloutgate", "`kubectl rollout status`", "`helm upgrade --wait`"], rows)


def good(f: Stats) -> str:
    rows = [
        [
            row,
            cell(f, f"verdict/good/{row}/gate (rollout verdict)"),
            cell(f, f"verdict/good/{row}/kubectl rollout status"),
            cell(f, f"verdict/good/{row}/helm upgrade --wait"),
            cell(f, f"verdict/good/{row}/gate (process exit, after its checks)"),
            cell(f, f"memory/gate VmHWM MiB/{row}", "n"),
        ]
        for row in _rows(f, "verdict/good")
    ]
    head = ["", "gate, rollout verdict", "kubectl rollout status", "helm upgrade --wait",
            "gate, process exit (after its checks)", "gate peak RSS (MiB)"]  # fmt: skip
    return _table(head, rows)


def failures(f: Stats) -> str:
    rows = []
    for tag in _rows(f, "detect"):
        if tag.startswith("crash after"):
            continue
        for deadline in _rows(f, f"detect/{tag}"):
            p, case = f"detect/{tag}/{deadline}", f"{tag}, {deadline}"
            rows.append(
                [
                    f"{tag}, {deadline.removeprefix('deadline ')}",
                    cell(f, f"{p}/gate"),
                    cell(f, f"{p}/gate, from the API's failure time (1 s)"),
                    cell(f, f"{p}/kubectl rollout status"),
                    cell(f, f"{p}/helm upgrade --wait"),
                    cell(f, f"rollback/verdict → restore submitted/{case}"),
                    cell(f, f"rollback/restored pods Ready → verified/{case}"),
                    cell(f, f"rollback/verdict → restored and verified/{case}"),
                    cell(f, f"rollback/{case}"),
                ]
            )
    head = ["bad tag, deadline", "gate", "gate, from the API's time (1 s)",
            "kubectl rollout status", "helm upgrade --wait", "verdict → restore submitted",
            "restored pods Ready → verified", "verdict → restored and verified",
            "rollback phases (restore + rollout + verify)"]  # fmt: skip
    return _table(head, rows)


def crash_after(f: Stats) -> str:
    rows = []
    for row in _rows(f, "detect/crash after v2, gate only"):
        case = f"crash after v2, {row}"
        rows.append(
            [
                row,
                cell(f, f"detect/crash after v2, gate only/{row}"),
                cell(f, f"rollback/verdict → restore submitted/{case}"),
                cell(f, f"rollback/verdict → restored and verified/{case}"),
            ]
        )
    head = ["replicas", "crash detected (gate alone)", "verdict → restore submitted",
            "verdict → restored and verified"]  # fmt: skip
    return _table(head, rows)


def requests(f: Stats) -> str:
    rows = []
    for case in _rows(f, "requests"):
        p = f"requests/{case}"
        rows.append(
            [
                case,
                cell(f, f"{p}/gate, client (all)", "n"),
                cell(f, f"{p}/gate, client (rollout phase)", "n"),
                cell(f, f"{p}/gate, audit (namespaced)", "n"),
                cell(f, f"{p}/kubectl rollout status, client", "n"),
                cell(f, f"{p}/kubectl rollout status, audit", "n"),
                cell(f, f"{p}/helm upgrade --wait, audit", "n"),
            ]
        )
    head = ["case", "gate, client (all)", "gate, client (rollout phase)", "gate, audit",
            "kubectl, client", "kubectl, audit", "helm, audit"]  # fmt: skip
    return _table(head, rows)


def scale(f: Stats) -> str:
    rows = []
    for row in _rows(f, "scale/verdict → end of the checks (s)"):
        rows.append(
            [
                row,
                cell(f, f"scale/verdict → end of the checks (s)/{row}"),
                cell(f, f"scale/API requests, whole run/{row}", "n"),
                cell(f, f"scale/port-forward streams opened/{row}", "n"),
                cell(f, f"scale/peak memory, VmHWM (MiB)/{row}", "n"),
            ]
        )
    head = ["release", "verdict → end of every check (s)", "API requests, whole run",
            "port-forward streams opened", "gate peak RSS (MiB)"]  # fmt: skip
    return _table(head, rows)


TABLES: dict[str, Callable[[Stats], str]] = {
    "readme": readme,
    "good": good,
    "failures": failures,
    "crash-after": crash_after,
    "requests": requests,
    "scale": scale,
}


def faults_table(data: dict[str, Any], source: str) -> str:
    """`python -m bench faults`: one row per fault and step, as measured; its outages are run
    one by one (`--add`), so the caption names each run."""
    runs = []
    for run in data["runs"]:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(run["started"]))
        load = f"{run['loadavg_start'].split()[0]} → {run['loadavg_end'].split()[0]}"
        runs.append(
            f"`{run['command']}` ({when}, {run['duration_s'] / 60:.0f} min, commit "
            f"{run['commit']}, load average {load})"
        )
    nproc = {run.get("nproc") for run in data["runs"]}
    head = f"{'; '.join(runs)}; {', '.join(map(str, sorted(nproc, key=str)))} vCPUs (`{source}`)."
    return f"{head}\n\n{bench_faults.table(data['rows'])}\n"


# Tables made from a whole run (its rows and runs), not from its figures.
RUN_TABLES: dict[str, Callable[[dict[str, Any], str], str]] = {"faults": faults_table}


def render(table: str, source: str) -> str:
    """The block's body: the caption and the table, from the JSON file `source` names
    (relative to the repository)."""
    data = json.loads((REPO / source).read_text())
    if table in RUN_TABLES:
        return RUN_TABLES[table](data, source)
    return f"{caption(data, source)}\n\n{TABLES[table](data['figures'])}\n"


def regenerate(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + render(m["table"], m["file"]) + m.group(5), text)


def stale_text(text: str) -> list[str]:
    """The blocks of `text` whose body is not what their JSON gives now."""
    return [
        f"table {m['table']} from {m['file']}"
        for m in BLOCK.finditer(text)
        if m["body"] != render(m["table"], m["file"])
    ]


def stale(path: Path) -> list[str]:
    return [f"{path.relative_to(REPO)}: {block}" for block in stale_text(path.read_text())]


def keep(source: Path, target: Path) -> None:
    data = json.loads(source.read_text())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({k: data[k] for k in KEPT if k in data}, indent=1) + "\n")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.docs", description=__doc__)
    p.add_argument("--write", action="store_true", help="rewrite the blocks from their JSON")
    p.add_argument("--keep", nargs=2, type=Path, metavar=("RUN_JSON", "KEPT_JSON"))
    args = p.parse_args(argv)
    if args.keep:
        keep(*args.keep)
        return 0
    if args.write:
        for path in DOCS:
            path.write_text(regenerate(path.read_text()))
        return 0
    found = [s for path in DOCS for s in stale(path)]
    for line in found:
        print(f"stale: {line} (python -m bench.docs --write)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
