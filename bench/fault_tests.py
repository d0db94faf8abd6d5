"""`python -m bench fault-tests`: the fault tests, again and again, and the figures they print.

tests/e2e/test_faults.py runs each fault once, as part of `make test`, and asserts what the gate
did. How long the gate took for it (the restore after SIGINT, the lock take-over, the rollout
through an API server restart, ...) varies from run to run on a shared machine, and its range is
what docs/reliability.md reports: that takes minutes of repeated runs, so it is this command's
job, not the test suite's. Each run is one `pytest tests/e2e/test_faults.py` on the local
cluster (it restarts the kube-apiserver: run it when nobody else uses the cluster); every
`FIGURE name: value` line a test prints is collected. Prints a table (numbers: median [min..max]
over the runs that passed; other values: each distinct value with its count) and writes JSON
(default reports/bench-fault-tests.json).
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.summary import fmt, stat

REPO = Path(__file__).resolve().parents[1]
TESTS = "tests/e2e/test_faults.py"
FIGURE = "FIGURE "


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench fault-tests", description=__doc__)
    p.add_argument("--runs", type=int, default=5, help="runs of the fault tests (default 5)")
    p.add_argument("-k", dest="keyword", help="only the fault tests a pytest -k expression picks")
    p.add_argument(
        "--timeout", type=float, default=1800, help="seconds one run may take (default 1800)"
    )
    p.add_argument(
        "--output", type=Path, default=Path("reports/bench-fault-tests.json"), help="JSON path"
    )
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be ≥ 1")
    return args


def figures(text: str) -> dict[str, Any]:
    """name -> value of every FIGURE line. Names and values may both hold ": ": the first split
    whose value Python can read (a number, tuple, dict, None, bool) wins; otherwise the value is
    the text after the first one."""
    found: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.startswith(FIGURE) or ": " not in line:
            continue
        parts = line[len(FIGURE) :].split(": ")
        for i in range(1, len(parts)):
            try:
                found[": ".join(parts[:i])] = ast.literal_eval(": ".join(parts[i:]))
                break
            except (ValueError, SyntaxError):
                continue
        else:
            found[parts[0]] = ": ".join(parts[1:])
    return found


def numbers(value: Any) -> dict[str, float] | None:
    """A figure's numbers by suffix ("" for a plain number, "[0]" or "[key]" inside a tuple or
    dict), or None when it holds anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return {"": float(value)}
    if isinstance(value, dict):
        found = {f"[{k}]": v for k, v in value.items()}
    elif isinstance(value, tuple | list):
        found = {f"[{i}]": v for i, v in enumerate(value)}
    else:
        return None
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in found.values()):
        return {k: float(v) for k, v in found.items()}
    return None


def read_junit(path: Path) -> dict[str, dict[str, Any]]:
    """test name -> outcome, duration and figures, from a JUnit XML written with the tests'
    output (junit_logging=system-out)."""
    tests: dict[str, dict[str, Any]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        for child, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            if case.find(child) is not None:
                outcome = name
        out = "".join(e.text or "" for e in case.iter("system-out"))
        tests[case.get("name", "?")] = {
            "outcome": outcome,
            "duration_s": round(float(case.get("time", 0)), 1),
            "figures": figures(out),
        }
    return tests


def run_once(index: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    junit = workdir / f"run-{index}.xml"
    argv = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
        f"--junitxml={junit}", "-o", "junit_logging=system-out", TESTS,
    ]  # fmt: skip
    if args.keyword:
        argv += ["-k", args.keyword]
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=args.timeout)
        exit_status: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        exit_status = f"timed out after {args.timeout:.0f} s"
    return {
        "run": index + 1,
        "exit": exit_status,
        "duration_s": round(time.monotonic() - started, 1),
        "tests": read_junit(junit) if junit.exists() else {},
    }


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per test and per figure: numbers over the runs the test passed in."""
    rows: list[dict[str, Any]] = []
    by_test: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        for name, test in run["tests"].items():
            by_test[name].append(test)
    for name, tests in by_test.items():
        passed = [t for t in tests if t["outcome"] == "passed"]
        rows.append(
            {
                "test": name,
                "figure": "test duration (s)",
                "passed": f"{len(passed)}/{len(tests)}",
                "stat": stat([(t["duration_s"], False) for t in passed]),
            }
        )
        values: dict[str, list[Any]] = defaultdict(list)
        for t in passed:
            for figure, value in t["figures"].items():
                values[figure].append(value)
        for figure, seen in values.items():
            read = [numbers(v) for v in seen]
            if all(r is not None for r in read):
                series: dict[str, list[tuple[float, bool]]] = defaultdict(list)
                for r in read:
                    for suffix, number in (r or {}).items():
                        series[suffix].append((number, False))
                for suffix, samples in series.items():
                    rows.append(
                        {
                            "test": name,
                            "figure": figure + suffix,
                            "passed": len(samples),
                            "stat": stat(samples),
                        }
                    )
            else:
                counted = Counter(json.dumps(v) for v in seen).most_common()
                row = {"test": name, "figure": figure, "passed": len(seen), "values": counted}
                rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = []
    test = None
    for row in rows:
        if row["test"] != test:
            test = row["test"]
            lines.append(f"\n{test}")
        if "stat" in row:
            shown = fmt(row["stat"])
        else:
            shown = ", ".join(f"{value} (x{n})" for value, n in row["values"])
        lines.append(f"  {row['figure']:<60} {shown}  ({row['passed']} passed)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse(argv)
    started = time.time()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-fault-tests-") as tmp:
        for i in range(args.runs):
            print(f"[{time.strftime('%H:%M:%S')}] run {i + 1}/{args.runs}", file=sys.stderr)
            runs.append(run_once(i, args, Path(tmp)))
            print(f"  exit {runs[-1]['exit']} in {runs[-1]['duration_s']:.0f} s", file=sys.stderr)
    rows = summarize(runs)
    out = {
        "command": "python -m bench fault-tests " + " ".join(argv),
        "started": started,
        "duration_s": round(time.time() - started, 1),
        "loadavg_end": Path("/proc/loadavg").read_text().strip(),
        "rows": rows,
        "runs": runs,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1, default=str))
    print(table(rows))
    print(f"\n{len(runs)} runs, {out['duration_s']:.0f} s; JSON: {args.output}")
    return 0 if all(r["exit"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
