"""The plugin's own cost: pytest start-up with and without it (hyperfine-style repeated timing)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Each start-up is a few seconds at most; one that takes this long is hung.
RUN_TIMEOUT_S = 60

WITH = "with rolloutgate (pip install rolloutgate: no pytest-kind)"
WITHOUT = "without rolloutgate (-p no:rolloutgate)"
BARE = "bare pytest (no rolloutgate, pytest-kind, testinfra)"
VARIANTS = {
    # pytest-kind is the `kind` extra; this venv has it (the project's tests use it), so the
    # plain install is measured with it blocked.
    WITH: ["-p", "no:pytest-kind"],
    "with rolloutgate[kind] (pytest-kind too)": [],
    WITHOUT: ["-p", "no:rolloutgate", "-p", "no:pytest-kind"],
    # The plugin's dependencies register plugins of their own; this is bare pytest.
    BARE: ["-p", "no:rolloutgate", "-p", "no:pytest-kind", "-p", "no:pytest11.testinfra"],
}  # fmt: skip


# Start-ups as a user's: with compiled bytecode (a session that sets this would recompile every
# module on every start and measure the compiler).
_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _once(directory: Path, extra: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one start-up. CPU time is what the plugin costs whatever
    else the machine runs; wall time is what a user waits."""
    cmd = [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=directory, env=_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        proc.kill()
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 5):  # 5: no tests collected, as expected in an empty dir
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {out[-500:]!r}")
    return elapsed, usage.ru_utime + usage.ru_stime


def startup(runs: int) -> dict[str, list[float]]:
    """Seconds per start-up, per variant (wall, and `cpu: ` CPU time), interleaved so drifting
    load hits all alike."""
    times: dict[str, list[float]] = {}
    for name in VARIANTS:
        times[name], times[f"cpu: {name}"] = [], []
    with tempfile.TemporaryDirectory(prefix="rolloutgate-bench-empty-") as tmp:
        directory = Path(tmp)
        for extra in VARIANTS.values():  # warm-up: the page cache, .pyc files
            _once(directory, extra)
        for _ in range(runs):
            for name, extra in VARIANTS.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                wall, cpu_total = _once(directory, extra)
                cpu = cpu_total - (before.ru_utime + before.ru_stime)
                times[name].append(round(wall, 4))
                times[f"cpu: {name}"].append(round(cpu, 4))
    return times


def summary(times: dict[str, list[float]]) -> dict[str, Any]:
    return {name: {"runs_s": values} for name, values in times.items()}


def main(argv: list[str]) -> int:
    """`python -m bench startup`: the start-up rows alone, without the cluster."""
    from bench import summary, tools

    p = argparse.ArgumentParser(
        prog="python -m bench startup",
        description="pytest start-ups with and without the plugin, interleaved; a table and JSON",
    )
    p.add_argument("--runs", type=int, default=20, help="start-ups per variant (default 20)")
    p.add_argument(
        "--output", type=Path, default=Path("reports/bench-startup.json"), help="JSON path"
    )
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be >= 1")
    loadavg_start = Path("/proc/loadavg").read_text().strip()
    started = time.time()
    times = startup(args.runs)
    fig = summary.Figures()
    for name, values in times.items():
        for v in values:
            fig.add(f"startup/pytest --co, empty dir/{name}", v)
    stats = fig.stats()
    with_, without, bare = (statistics.median(times[f"cpu: {n}"]) for n in (WITH, WITHOUT, BARE))
    # What the plugin itself costs: CPU time, which other load on the machine inflates far
    # less than wall time.
    cost = {
        "plugin_cpu_ms_over_without": round((with_ - without) * 1000, 1),
        "plugin_cpu_ms_over_bare": round((with_ - bare) * 1000, 1),
    }
    out = {
        "command": "python -m bench startup " + " ".join(argv),
        "started": started,
        "machine": {
            "nproc": os.cpu_count(),
            "python": sys.version.split()[0],
            "loadavg_start": loadavg_start,
            "loadavg_end": Path("/proc/loadavg").read_text().strip(),
            "commit": tools.commit(),
        },
        "startup": times,
        "figures": stats,
        "cost": cost,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1))
    print(summary.table(stats))
    print(
        f"\nthe plugin's CPU time (medians): +{cost['plugin_cpu_ms_over_without']:.0f} ms over "
        f"-p no:rolloutgate, +{cost['plugin_cpu_ms_over_bare']:.0f} ms over bare pytest; "
        f"load average {out['machine']['loadavg_start']} -> {out['machine']['loadavg_end']}; "
        f"JSON: {args.output}"
    )
    return 0
