"""The canary's settings: resolved like the gate's (option → env → profile → project → default).

Keys live under ``canary.`` in ``[tool.rolloutgate]`` (``[tool.rolloutgate.canary]``) and in a
cluster profile; environment variables are ``ROLLOUTGATE_CANARY_<KEY>``. The defaults of the
judgement's thresholds are those of ``canary_thresholds.Thresholds`` (defined once, there); the
defaults of the run (traffic, arms, reports) are in ``RunDefaults`` below.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from rolloutgate import config as cfgmod
from rolloutgate.canary.thresholds import Thresholds
from rolloutgate.config import Setting
from rolloutgate.errors import ConfigError


@dataclass(frozen=True)
class RunDefaults:
    """How a canary run drives the arms and the traffic (CANARY.md gives the reasons)."""

    # Pods per arm: the pod is the unit of latency variance, and one pod per arm cannot tell a
    # slow candidate from a slow pod (docs/canary.md, "Error rates").
    replicas: int = 3
    # Measured requests per arm: what power 0.99 to find a 1.25x slow-down takes on a busy node
    # (latency.server_power says so before each run; simulated 99 % from 600, docs/canary.md).
    requests: int = 720
    warmup: int = 20  # per arm, discarded
    concurrency: int = 2  # requests in flight per arm at most
    # The traffic stops here; what was measured is judged. None: it follows the requests
    # (``traffic_deadline``), so a larger run is not cut short on a busy node.
    traffic_timeout: float | None = None
    # The traffic is spread over at least this long (noise comes in bursts; see traffic).
    min_duration: float = 20.0
    # The measured traffic goes on past ``requests``, at the same pace, while the latency's
    # interval is too wide for power 0.9 at ``latency_ratio`` (the run's own scatter says how
    # many more; ``latency.requests_for_power``), for at most this long in all. 0: never.
    max_duration: float = 60.0
    # The servers' duration metric is read on every pod this often during the traffic: the
    # latency is judged window by window, both arms over the same interval (docs/canary.md).
    server_window: float = 1.0
    # How the traffic reaches the arms' pods: "auto" is their pod IPs when the gate runs in a
    # pod of the cluster (in-cluster configuration), else a port-forward to each (``REACHES``).
    reach: str = "auto"
    cleanup_timeout: float = 120.0  # deleting both arms
    report: str = "reports/canary.json"
    html: str = "reports/canary.html"
    history: str = "reports/canary-history.jsonl"


# The traffic's deadline when none is set: this long per request per arm (warm-up included), and
# never less than the fixed 180 s it replaces. The slowest traffic counted on our 2-core node ran
# 3.8 requests a second per arm (688 in 182 s at load average 49, where 180 s cut a 720-request
# run); 2 a second leaves room for a node twice as slow: 720 requests get 370 s.
TRAFFIC_S_PER_REQUEST = 0.5
MIN_TRAFFIC_TIMEOUT = 180.0


def traffic_deadline(requests: int, warmup: int) -> float:
    """Seconds the traffic of ``requests`` measured and ``warmup`` requests per arm may take."""
    return max(MIN_TRAFFIC_TIMEOUT, TRAFFIC_S_PER_REQUEST * (requests + warmup))


# ---------------------------------------------------------------------------------------------
# Converters (argparse.ArgumentTypeError naming the accepted format, as in config.py).


def fraction(value: object) -> float:
    """A number in [0, 1)."""
    number = _float(value)
    if not 0 <= number < 1:
        raise argparse.ArgumentTypeError(
            f"invalid fraction {value!r}: expected a number from 0 up to (not including) 1, "
            "e.g. 0.05"
        )
    return number


def confidence(value: object) -> float:
    """A number in (0.5, 1)."""
    number = _float(value)
    if not 0.5 < number < 1:
        raise argparse.ArgumentTypeError(
            f"invalid confidence {value!r}: expected a number between 0.5 and 1, e.g. 0.98"
        )
    return number


def ratio(value: object) -> float:
    """A number > 1 (a slow-down factor)."""
    number = _float(value)
    if not 1 < number < float("inf"):
        raise argparse.ArgumentTypeError(
            f"invalid ratio {value!r}: expected a number > 1, e.g. 1.1 (10 % slower)"
        )
    return number


def score(value: object) -> float:
    """A score from 0 to 100."""
    number = _float(value)
    if not 0 <= number <= 100:
        raise argparse.ArgumentTypeError(f"invalid score {value!r}: expected 0 to 100, e.g. 95")
    return number


# How the canary's requests reach an arm's pod. Through a port-forward every request also costs
# the gate's relay, the API server and the kubelet CPU on a busy node: ~1 ms of node CPU of the
# 2.9 a request to the example cost through the forward, 1.8 to its pod IP (measured
# 2026-12-03 on our node, docs/canary.md, "Which arm starts first, and pod IPs").
REACHES = ("auto", "port-forward", "pod-ip")


def reach(value: object) -> str:
    """One of ``REACHES``."""
    text = str(value).strip().lower()
    if text not in REACHES:
        raise argparse.ArgumentTypeError(
            f"invalid reach {value!r}: expected one of {', '.join(REACHES)} (pod-ip where the "
            "gate can route to the pods' IPs: in a pod of the cluster, on a node, or where the "
            "network routes the pod range)"
        )
    return text


def positive_count(value: object) -> int:
    """A whole number >= 1."""
    number = cfgmod.count(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"invalid count {value!r}: expected a whole number >= 1")
    return number


def non_negative(value: object) -> float:
    number = _float(value)
    if not 0 <= number < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid number {value!r}: expected a number >= 0")
    return number


def _float(value: object) -> float:
    if isinstance(value, bool):
        return float("nan")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


# ---------------------------------------------------------------------------------------------
# The settings.

_T = Thresholds()
_R = RunDefaults()


def _c(
    key: str,
    convert: Any,
    default: Any,
    flag: str | None = None,
    help: str = "",
    **kw: Any,
) -> Setting:
    """A canary setting; with a flag it is an option of the gate's group (dest
    ``rolloutgate_<flag>``), defined by plugin.py with the gate's own options. Its environment
    variable is ``ROLLOUTGATE_CANARY_<KEY>`` whatever its flag (``--promote``:
    ``ROLLOUTGATE_CANARY_PROMOTE``), as docs/canary.md says."""
    return Setting(f"canary.{key}", convert, default, flag, help, env_name=f"canary.{key}", **kw)


# Each threshold's converter, keyed by its Thresholds field: the name is written once (a row
# ``_c("a", f, _T.b)`` could pair one key with another's default).
_THRESHOLD_CONVERTERS: dict[str, Callable[[object], Any]] = {
    "min_samples": positive_count,
    "max_consecutive_errors": positive_count,
    "confidence": confidence,
    "latency_ratio": ratio,
    "latency_critical_ratio": ratio,
    "server_pod_sd": non_negative,
    "window_pod_sd": non_negative,
    "client_pod_sd": non_negative,
    "pod_sd_df": non_negative,
    "max_path_share": fraction,
    "p95_ms": cfgmod.seconds,  # "seconds" = any number > 0
    "p99_ms": cfgmod.seconds,
    "p99_min_samples": positive_count,
    "max_flip_rate": fraction,
    "max_accuracy_drop": fraction,
    "flip_margin": fraction,
    "flip_noise_floor": fraction,
    "numeric_abs_tol": non_negative,
    "numeric_rel_tol": non_negative,
    "judge_numeric": cfgmod.flag,
    "min_success_rate": fraction,
    "pass_score": score,
    "marginal_score": score,
}


SETTINGS: tuple[Setting, ...] = (
    _c("replicas", positive_count, _R.replicas),
    _c(
        "requests",
        positive_count,
        _R.requests,
        "--canary-requests",
        "With --canary: measured requests per arm",
        metavar="N",
    ),
    _c("warmup", cfgmod.count, _R.warmup),
    _c("concurrency", positive_count, _R.concurrency),
    _c("traffic_timeout", cfgmod.seconds, _R.traffic_timeout),
    _c("min_duration", non_negative, _R.min_duration),
    _c("max_duration", non_negative, _R.max_duration),
    _c("server_window", cfgmod.seconds, _R.server_window),
    _c("reach", reach, _R.reach),
    _c("cleanup_timeout", cfgmod.seconds, _R.cleanup_timeout),
    _c(
        "request_set",
        cfgmod.path,
        None,
        "--request-set",
        "With --canary: JSON Lines requests (optionally labelled) sent to both arms besides "
        "the golden cases",
        metavar="FILE",
        is_path=True,
    ),
    _c("label_output", cfgmod.name, None),
    _c("latency_metric", cfgmod.name, None),
    _c("same_model", cfgmod.flag, None),
    _c("seed", cfgmod.count, None),
    _c(
        "keep_arms",
        cfgmod.flag,
        False,
        "--keep-arms",
        "With --canary: keep the baseline and canary arms for debugging",
        const=True,
        profile=False,
        project=False,
    ),
    _c(
        "promote",
        cfgmod.flag,
        False,
        "--promote",
        "With --canary: on a Pass only, release the candidate with the normal gate",
        const=True,
        profile=False,
        project=False,
    ),
    _c(
        "report",
        cfgmod.path,
        _R.report,
        "--canary-report",
        "With --canary: where the JSON canary report goes",
        metavar="PATH",
        is_path=True,
    ),
    _c("html", cfgmod.path, _R.html, is_path=True),
    _c("history", cfgmod.path, _R.history, is_path=True),
    # The judgement's thresholds: each with its converter below, its default Thresholds'.
    *(_c(key, convert, getattr(_T, key)) for key, convert in _THRESHOLD_CONVERTERS.items()),
    *(_c(f"weights.{g}", non_negative, w) for g, w in _T.weights.items()),
)


@dataclass(frozen=True)
class CanaryConfig:
    """Everything a canary run needs beyond the gate's ``GateConfig``."""

    thresholds: Thresholds
    replicas: int
    requests: int
    warmup: int
    concurrency: int
    traffic_timeout: float
    min_duration: float
    max_duration: float
    server_window: float
    reach: str
    cleanup_timeout: float
    request_set: Path | None
    label_output: str | None
    # The servers' own duration metric (a Prometheus summary or histogram, read from the gate's
    # ``metrics`` path and port on every pod): latency is judged on it when set.
    latency_metric: str | None
    same_model: bool | None  # None: the same image tag on both arms means the same model
    seed: int | None
    keep_arms: bool
    promote: bool
    report: Path
    html: Path
    history: Path
    sources: Mapping[str, str] = field(default_factory=dict)


_NOT_SETTINGS = frozenset({"thresholds", "sources"})


def resolve(
    options: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    tool: Mapping[str, Any],
    cluster: str | None,
    rootdir: Path,
    invocation_dir: Path,
) -> CanaryConfig:
    """ConfigError (from config.py's rules) names a bad value and where it came from."""
    v, sources = cfgmod.resolve_settings(
        SETTINGS,
        options,
        env=env,
        tool=tool,
        cluster=cluster,
        rootdir=rootdir,
        invocation_dir=invocation_dir,
    )

    def c(key: str) -> Any:
        return v[f"canary.{key}"]

    if c("marginal_score") > c("pass_score"):
        raise ConfigError(
            f"canary.marginal_score {c('marginal_score'):g} is above canary.pass_score "
            f"{c('pass_score'):g}: expected marginal <= pass (defaults 75 and 95)"
        )
    weights = {g: c(f"weights.{g}") for g in _T.weights}
    if not any(weights.values()):
        raise ConfigError("canary.weights are all 0: at least one group must count")
    # Every field of Thresholds and CanaryConfig is the setting of the same name (SETTINGS
    # above); a field without its setting fails here, in the tests, not in a user's run.
    thresholds = Thresholds(
        **{f.name: c(f.name) for f in fields(Thresholds) if f.name != "weights"},
        weights=weights,
    )
    run = {f.name: c(f.name) for f in fields(CanaryConfig) if f.name not in _NOT_SETTINGS}
    if run["traffic_timeout"] is None:
        run["traffic_timeout"] = traffic_deadline(run["requests"], run["warmup"])
        sources = {
            **sources,
            "canary.traffic_timeout": f"default ({TRAFFIC_S_PER_REQUEST:g} s per request per arm, "
            f"at least {MIN_TRAFFIC_TIMEOUT:g} s)",
        }
    return CanaryConfig(thresholds=thresholds, sources=sources, **run)
