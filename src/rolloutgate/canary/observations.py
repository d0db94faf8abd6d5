"""What a canary run saw: the inputs, every request sent to each arm with its answer and
latency, and what happened to the arms. Filled by the run and the traffic, read by the
judgement and the reports. Pure data: nothing here sends a request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rolloutgate.checks.cases import Case, Request

Arm = Literal["baseline", "canary"]
ARMS: tuple[Arm, Arm] = ("baseline", "canary")
# How a request ended: answered as the item asks; answered otherwise (a 5xx, an unexpected
# status); no answer within the request timeout; the connection broke again when the request
# was sent a second time on a new one; the connection broke once ("transport": the measuring
# path's, never the model's: the request is sent again).
Outcome = Literal["ok", "http", "timeout", "reset", "transport"]
# The outcomes that count against the arm that gave them (issue 17: a candidate that hangs or
# drops connections fails; before, a timeout was filed as "transport" and left out).
ARM_ERRORS: frozenset[Outcome] = frozenset({"http", "timeout", "reset"})


@dataclass(frozen=True)
class Item:
    """One distinct input: a golden case (with its expectations) or a request-set line (with
    its labels, if any). ``request`` is sent as the gate sends a case's."""

    id: str
    request: Request
    case: Case | None = None
    labels: tuple[Any, ...] | None = None

    def answered(self, status: int) -> bool:
        """Whether ``status`` is the answer the item asks for: a golden case's own status (a
        case may expect a 400), else any 2xx."""
        if self.case is not None:
            return status == self.case.status
        return 200 <= status < 300


@dataclass(frozen=True)
class Sample:
    """One request sent to one arm, and what came back. ``answer`` is the parsed JSON body
    (None when the body was not JSON or nothing came back). ``index`` is the request's place
    in the plan, the same on both arms (it pairs them); ``at`` when it was sent, in seconds
    since the traffic started; ``pod`` the pod that answered ("" when not known)."""

    item: str
    arm: Arm
    outcome: Outcome
    latency_ms: float
    warmup: bool = False
    status: int | None = None
    answer: Any = None
    error: str = ""
    index: int = -1
    at: float = 0.0
    # The pod that answered (its name): the pod, not the request, is the unit of variance.
    pod: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True)
class PodTiming:
    """What one pod's server says it spent on the measured traffic: the increase of its own
    duration metric's count and sum (seconds) from before to after (a Prometheus summary or
    histogram: MLServer's ``model_infer_request_duration``)."""

    pod: str
    count: float
    sum_s: float


@dataclass(frozen=True)
class ServerRead:
    """One read of one pod's duration metric while the measured traffic ran: its running
    ``count`` and ``sum_s`` (seconds) at ``t`` (epoch seconds, the middle of the request). All
    pods are read in one ``sweep`` (numbered from 0, before the traffic) every
    ``canary.server_window`` seconds: sweep k-1 to k is a window, the same interval on both arms
    (a node-wide slow spell falls on both; ``latency.windows``)."""

    sweep: int
    arm: Arm
    pod: str
    t: float
    count: float
    sum_s: float


@dataclass
class Observations:
    """What a canary run saw. Filled by the arms' lifecycle and the traffic."""

    items: dict[str, Item] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    same_model: bool = False
    # Why an arm could not be used (rollout or health), None when it served.
    arm_failure: dict[Arm, str | None] = field(
        default_factory=lambda: {"baseline": None, "canary": None}
    )
    # Why the cluster could not run an arm (no room to schedule it): says nothing about the
    # candidate, so the run is inconclusive.
    environment: list[str] = field(default_factory=list)
    # Container restarts per arm during the traffic.
    restarts: dict[Arm, int] = field(default_factory=lambda: {"baseline": 0, "canary": 0})
    # Why the traffic stopped early (deadline, consecutive transport errors), per arm or run.
    stopped: list[str] = field(default_factory=list)
    consecutive_errors: dict[Arm, int] = field(default_factory=lambda: {"baseline": 0, "canary": 0})
    # Why the traffic stopped because the canary failed requests the baseline answered (a
    # streak long enough to be significant on its own): a critical failure of ``errors``.
    canary_failing: str | None = None
    # Pairs in a row (both arms' answers to one request): neither answered ("path"), only the
    # baseline failed, only the canary failed. Kept across the warm-up's and the measured run.
    pair_streaks: dict[str, int] = field(
        default_factory=lambda: {"path": 0, "baseline": 0, "canary": 0}
    )
    # When the traffic started (epoch seconds): a sample's ``at`` counts from here.
    traffic_started: float | None = None
    # Samples that came back after the traffic was closed (a request still in flight past its
    # workers' last wait): counted, not judged, so the judgement reads a fixed set.
    late: int = 0
    # Per arm, every pod's own duration metric over the measured traffic (empty: the servers
    # export none, or it could not be read); the metric's name.
    server: dict[Arm, list[PodTiming]] = field(
        default_factory=lambda: {"baseline": [], "canary": []}
    )
    server_metric: str | None = None
    # Every read of every pod's duration metric, before, during and after the measured traffic.
    server_reads: list[ServerRead] = field(default_factory=list)
    # Per arm, latencies of a request that does no model work (health): the path's own time.
    path_ms: dict[Arm, list[float]] = field(default_factory=lambda: {"baseline": [], "canary": []})
    # The value judged as the label (``canary.label_output``): a value's name; None: the first.
    label_output: str | None = None
    # The last sweep of the servers' metric when the traffic was extended for the latency's
    # power (``measure.extend``): the windows up to it set the interval's width. None: not.
    latency_look: int | None = None

    def measured(self, arm: Arm) -> list[Sample]:
        return [s for s in self.samples if s.arm == arm and not s.warmup]


def first_answers(obs: Observations, arm: Arm) -> Mapping[str, Any]:
    """Each item's first answer on the arm with the status it asks for (models are
    deterministic: one is enough); the value is the parsed JSON, None when not JSON."""
    answers: dict[str, Any] = {}
    for s in obs.samples:
        if s.arm == arm and s.ok and s.item not in answers:
            answers[s.item] = s.answer
    return answers


def latencies(obs: Observations, arm: Arm) -> list[float]:
    """Latencies of the arm's measured answers with the status their item asks for, and of
    its timeouts: a timeout's elapsed time is the request timeout, longer than any answer, so
    it ranks as slower than every answer (a hanging arm's slowest requests stay in)."""
    return [s.latency_ms for s in obs.measured(arm) if s.ok or s.outcome == "timeout"]
