"""The plugin's own cost: pytest start-up with and without it (hyperfine-style repeated timing)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Each start-up is a few seconds at most; one that takes this long is hung.
RUN_TIMEOUT_S = 60

VARIANTS = {
    "with rolloutgate": [],
    "without rolloutgate (-p no:rolloutgate)": ["-p", "no:rolloutgate"],
    # The plugin's dependencies register plugins of their own; this is bare pytest.
    "bare pytest (no rolloutgate, pytest-kind, testinfra)": [
        "-p", "no:rolloutgate", "-p", "no:pytest-kind", "-p", "no:pytest11.testinfra",
    ],
}  # fmt: skip


def _once(directory: Path, extra: list[str]) -> float:
    cmd = [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=directory, capture_output=True, timeout=RUN_TIMEOUT_S)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 5):  # 5: no tests collected, as expected in an empty dir
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stdout[-500:]!r}")
    return elapsed


def startup(runs: int) -> dict[str, list[float]]:
    """Seconds per start-up, per variant, interleaved so drifting load hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="rolloutgate-bench-empty-") as tmp:
        directory = Path(tmp)
        for extra in VARIANTS.values():  # warm-up: the page cache, .pyc files
            _once(directory, extra)
        for _ in range(runs):
            for name, extra in VARIANTS.items():
                times[name].append(round(_once(directory, extra), 4))
    return times


def summary(times: dict[str, list[float]]) -> dict[str, Any]:
    return {name: {"runs_s": values} for name, values in times.items()}
