"""The canary's metrics: their names, groups and order, and the verdict of one (``Metric``).

The rules that fill them are in ``predictions`` (golden cases, agreement, accuracy, numeric
differences), ``stats`` (latency and errors) and ``judge`` (the arms, stability, the score and
the run's verdict).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MetricVerdict = Literal["pass", "fail", "nodata"]

# Metric name -> (group, in the score). Order is the report's order and the JUnit order.
METRICS: Mapping[str, tuple[str, bool]] = {
    "arms": ("health", False),
    "golden": ("predictions", True),
    "agreement": ("predictions", True),
    "accuracy": ("predictions", True),
    "numeric": ("predictions", True),
    "latency": ("latency", True),
    "latency-budget": ("latency", True),
    "errors": ("errors", True),
    "stability": ("errors", False),
}


@dataclass
class Metric:
    """One metric's verdict (``nodata``: not judged, no data or reported only), with a reason
    that names what was seen and the figures behind it."""

    name: str
    verdict: MetricVerdict
    reason: str
    critical: bool = False
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return METRICS[self.name][0]

    @property
    def scored(self) -> bool:
        return METRICS[self.name][1]
