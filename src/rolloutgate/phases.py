"""Phase timing for the run records: seconds per named phase, summed over a phase's repeats.

The gate's ``GateRun`` and the canary's ``CanaryRun`` both time their phases with ``timed``, so
``phases_s`` in either report means the same: monotonic wall time, rounded to milliseconds,
recorded even when the phase fails.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def timed(phases: dict[str, float], name: str) -> Iterator[None]:
    """Add the seconds the block takes to ``phases[name]``, also when it raises."""
    start = time.monotonic()
    try:
        yield
    finally:
        phases[name] = round(phases.get(name, 0.0) + time.monotonic() - start, 3)
