"""`python -m bench.canary`: the canary judgement's error rates, simulated.

Each cell simulates ``--runs`` canary runs (default 2000) and judges each with the package's own
statistics and decision rules (``rolloutgate.canary.stats``: ``pod_level_ratio``,
``paired_log_ratio``; ``latency.latency_decision``; ``predictions.accuracy_decision`` on
``mcnemar``), then composes the run's verdict with the package's score (``judge.score``). Nothing
here re-implements a rule: a change of a rule changes this table.

Latency model (log scale), a slow-down multiplying the canary's times. Two sources, as the
canary judges them:

- ``server``: the servers' own duration metric, read per pod before and after (MLServer's
  ``model_infer_request_duration``): one mean per pod; the log of a pod's mean scatters with
  sd ``--server-level-sd`` around its arm's (pod effect and sampling noise together: what A/A
  runs show), and the calibration (the prior) is that same value;
- ``client``: paired client-side latencies of the same request on both arms (a server without
  a duration metric): log canary - log baseline of a request scatters with
  ``--client-paired-sd``, plus each pod's own effect (sd ``--pod-sd``), the requests
  spread over the pods as the traffic spreads them.

Accuracy model: ``rows`` labelled rows (the iris set: 150); each row independently newly wrong
on the canary with probability ``churn + drop`` and newly right with probability ``churn`` (an
equally good retrain: drop 0; ``retrained`` shows 4 disagreements in 150 rows, churn 2/150).

A third table, the load model (``--load-*``), draws every request's server time: the node's load
in each 1 s window (log-sd ``--load-time-sd``, the same on both arms: the traffic sends each
request to both at about the same moment), each pod's lasting level (``--load-pod-sd``), the
request's own lognormal noise (``--load-request-sd``) and stalls (with probability
``--load-stall-rate`` a request takes 1 + Exp(``--load-stall-mean``) times as long: descheduled on
a busy node). The same simulated runs are judged both ways the canary can: on each pod's totals
(``pod_level_ratio``, the prior ``server_pod_sd``) and on time-paired windows
(``latency.server_windows`` of simulated sweeps, ``window_ratio``), and as the canary runs by
default: windows extended once when their scatter leaves the power at ``latency_ratio`` short
(``latency.extension``, up to three times the planned windows: ``canary.max_duration`` 60 s over
``min_duration`` 20 s), judged with the look's variance (``latency.windowed_estimate``). The
defaults are fitted to the windowed reads of real A/A runs at load average ~30 (docs/canary.md,
"Calibration"); the model "this node, --busy=8" to those of 2026-12-03/04.

A second table sweeps the server side over pod spreads and pods per arm (``--sweep-spreads``,
``--sweep-pods``; the calibration right): which of the targets (A/A <= 2 %, power >= 0.9 at
+10 %, >= 0.99 at +25 %) hold at which spread and size.

The defaults (sigma, pod sd) are the values measured on our cluster (docs/canary.md,
"Calibration", names the runs). Prints a table and writes JSON (default
reports/bench-canary-sim.json). Counted real runs: ``python -m bench.canary_cluster``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rolloutgate.canary.judge import score
from rolloutgate.canary.latency import (
    extension,
    latency_decision,
    windowed_estimate,
)
from rolloutgate.canary.metrics import Metric
from rolloutgate.canary.observations import ServerRead
from rolloutgate.canary.predictions import accuracy_decision
from rolloutgate.canary.stats import (
    labelled_rows_needed,
    mcnemar,
    paired_log_ratio,
    pairs_needed,
    pod_level_ratio,
)
from rolloutgate.canary.thresholds import Thresholds


@dataclass(frozen=True)
class LatencyCell:
    name: str
    source: str  # server | client
    ratio: float  # true canary/baseline slow-down
    sigma: float  # server: a pod level's log-sd; client: a pair's log-ratio sd
    pod_sd: float  # client: true pod-to-pod log-sd (server: unused, in sigma)
    pods: int  # per arm
    requests: int  # measured per arm
    # The pod sd the A/A calibration found (the prior); differs from pod_sd when miscalibrated.
    pod_sd_calibrated: float = 0.0


def calibrated(cell: LatencyCell) -> float:
    """The prior an A/A calibration finds: client-side the pod effect, server-side the sd of
    the log of a pod's mean (the cells' calibrated values, which a miscalibrated cell sets
    apart from the true ones)."""
    return cell.pod_sd_calibrated


@dataclass(frozen=True)
class AccuracyCell:
    name: str
    rows: int
    churn: float
    drop: float


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.canary", description=__doc__)
    p.add_argument("--runs", type=int, default=2000, help="simulated runs per cell (>= 1000)")
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--requests", type=int, default=200, help="measured requests per arm")
    p.add_argument("--pods", type=int, default=3, help="pods per arm")
    p.add_argument(
        "--server-level-sd",
        type=float,
        default=0.15,
        help="sd of the log of a pod's mean server time within an arm (measured: 0.141)",
    )
    p.add_argument(
        "--client-paired-sd",
        type=float,
        default=0.5,
        help="sd of log canary - log baseline of one request, client-side (measured: 0.5)",
    )
    p.add_argument("--pod-sd", type=float, default=0.03, help="client-side pod-to-pod log-sd")
    p.add_argument(
        "--sweep-spreads",
        default="0.034,0.08,0.13",
        help="server-side pod spreads (sd of the log of a pod's mean) of the sweep table: the "
        "spreads measured on our node at different loads (docs/canary.md, 'Calibration')",
    )
    p.add_argument(
        "--sweep-pods", default="3,6,16", help="pods per arm of the sweep table (server-side)"
    )
    load = p.add_argument_group("load model (time-paired windows)")
    load.add_argument("--load-windows", type=int, default=20, help="1 s windows per run")
    load.add_argument("--load-time-sd", type=float, default=0.6, help="log-sd of a window's load")
    load.add_argument("--load-pod-sd", type=float, default=0.0, help="a pod's lasting log-sd")
    load.add_argument("--load-request-sd", type=float, default=0.4, help="a request's log-sd")
    load.add_argument("--load-stall-rate", type=float, default=0.04, help="share of stalls")
    load.add_argument("--load-stall-mean", type=float, default=5.0, help="a stall's mean extra")
    load.add_argument(
        "--load-sizes",
        default="600,1000",
        help="measured requests per arm of the busy model's extra rows (windows grow with them, "
        "10 requests each: the traffic's rate kept)",
    )
    p.add_argument("--output", type=Path, default=Path("reports/bench-canary-sim.json"))
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be >= 1")
    return args


def latency_cells(a: argparse.Namespace) -> list[LatencyCell]:
    cells: list[LatencyCell] = []
    for source, sigma, prior in (
        ("server", a.server_level_sd, a.server_level_sd),
        ("client", a.client_paired_sd, a.pod_sd),
    ):
        base = LatencyCell("", source, 1.0, sigma, a.pod_sd, a.pods, a.requests, prior)
        for name, ratio in (("A/A", 1.0), ("+10 %", 1.10), ("+25 %", 1.25)):
            cells.append(replace(base, name=name, ratio=ratio))
        # Why several pods: the same runs with one pod per arm; and pods twice as different
        # as the calibration says (the prior under-states them; the run's own pods help).
        cells.append(replace(base, name="A/A, 1 pod", pods=1))
        cells.append(replace(base, name="+10 %, 1 pod", ratio=1.10, pods=1))
        if source == "server":
            cells.append(replace(base, name="A/A, pods x2 as calibrated", sigma=2 * sigma))
            priors = ((Thresholds().server_pod_sd, "default"), (EARLIER_POD_SD, "earlier"))
            for prior, which in priors:
                if sigma != prior:
                    # The spread measured here, judged with another prior.
                    cells.append(
                        replace(
                            base, name=f"A/A, prior {prior:g} ({which})", pod_sd_calibrated=prior
                        )
                    )
        else:
            cells.append(replace(base, name="A/A, pods x2 as calibrated", pod_sd=2 * a.pod_sd))
    return cells


def sweep_cells(a: argparse.Namespace) -> list[LatencyCell]:
    """Server-side A/A, +10 % and +25 % at each pod spread and pod count of the sweep, the
    calibration right (the prior is the true spread): which targets hold where."""
    cells: list[LatencyCell] = []
    for spread in (float(x) for x in a.sweep_spreads.split(",") if x):
        for pods in (int(x) for x in a.sweep_pods.split(",") if x):
            for name, ratio in (("A/A", 1.0), ("+10 %", 1.10), ("+25 %", 1.25)):
                cells.append(
                    LatencyCell(name, "server", ratio, spread, 0.0, pods, a.requests, spread)
                )
    return cells


ACCURACY_CELLS = (
    AccuracyCell("same model (A/A)", 150, 0.0, 0.0),
    AccuracyCell("equally good retrain", 150, 2 / 150, 0.0),
    AccuracyCell("5 points less accurate", 150, 2 / 150, 0.05),
    # The labelled rows the power target needs (labelled_rows_needed): 400.
    AccuracyCell("equally good retrain", 400, 2 / 150, 0.0),
    AccuracyCell("5 points less accurate", 400, 2 / 150, 0.05),
)


def simulate_latency(cell: LatencyCell, runs: int, t: Thresholds, rng: Any) -> dict[str, Any]:
    decisions: dict[str, int] = {"pass": 0, "fail": 0, "critical": 0}
    ratios: list[float] = []
    shift = math.log(cell.ratio)
    prior = calibrated(cell)
    for _ in range(runs):
        if cell.source == "server":
            levels = {
                arm: list(
                    np.exp(
                        rng.normal(0.0, cell.sigma, cell.pods) + (shift if arm == "canary" else 0.0)
                    )
                )
                for arm in ("baseline", "canary")
            }
            est = pod_level_ratio(
                levels["baseline"],
                levels["canary"],
                prior_pod_sd=prior,
                prior_df=t.pod_sd_df,
                confidence=t.confidence,
                n=cell.requests,
            )
        else:
            pods = {arm: rng.normal(0.0, cell.pod_sd, cell.pods) for arm in ("baseline", "canary")}
            # The traffic's pattern: round-robin on both arms, the canary's a pod further each
            # round (traffic.Traffic.pods_for; its step with as many pods on each arm, >= 3).
            k = np.arange(cell.requests)
            which = {"baseline": k % cell.pods, "canary": (k + k // cell.pods) % cell.pods}
            log_ratio = (
                shift
                + pods["canary"][which["canary"]]
                - pods["baseline"][which["baseline"]]
                + rng.normal(0.0, cell.sigma, cell.requests)
            )
            est = paired_log_ratio(
                np.ones(cell.requests),
                np.exp(log_ratio),
                [str(k) for k in which["baseline"]],
                [str(k) for k in which["canary"]],
                prior_pod_sd=prior,
                prior_df=t.pod_sd_df,
                confidence=t.confidence,
            )
        decisions[latency_decision(est, t)] += 1
        ratios.append(est.ratio)
    return {"decisions": decisions, "ratio_median": float(np.median(ratios))}


def simulate_accuracy(cell: AccuracyCell, runs: int, t: Thresholds, rng: Any) -> dict[str, Any]:
    decisions: dict[str, int] = {"pass": 0, "fail": 0, "critical": 0}
    worse = rng.binomial(cell.rows, cell.churn + cell.drop, runs)
    better = rng.binomial(cell.rows, cell.churn, runs)
    for w, b in zip(worse, better, strict=True):
        test = mcnemar(cell.rows, int(w), int(b), confidence=t.confidence)
        decisions[accuracy_decision(test, t)] += 1
    return {"decisions": decisions}


# server_pod_sd's default until 2026-12-03 (a quieter node's spread): what it does on a busy one.
EARLIER_POD_SD = 0.08
# window_pod_sd's default until 2026-12-03 (a biased estimator's, latency.lasting_pod_variance).
EARLIER_WINDOW_POD_SD = 0.08


@dataclass(frozen=True)
class LoadModel:
    """Every request's server time, as ``LoadModel.draw`` draws it (module docstring)."""

    windows: int
    time_sd: float
    pod_sd: float
    request_sd: float
    stall_rate: float
    stall_mean: float
    # Measured requests per arm in a window (0: --requests over --load-windows).
    per_window: int = 0


def load_models(a: argparse.Namespace) -> list[tuple[str, LoadModel]]:
    busy = LoadModel(
        a.load_windows,
        a.load_time_sd,
        a.load_pod_sd,
        a.load_request_sd,
        a.load_stall_rate,
        a.load_stall_mean,
    )
    # Larger runs at the traffic's rate (10 requests per arm a window): what the busy node's
    # targets take, the pods having no lasting level to average out.
    sizes = [int(x) for x in a.load_sizes.split(",") if x.strip()]
    return [
        ("busy (fitted)", busy),
        # Pods that keep a level of their own (what pairing in time cannot remove): the 95 %
        # bound of what the recorded runs allow (docs/canary.md).
        ("busy, lasting pod sd 0.05", replace(busy, pod_sd=0.05)),
        # A quiet node: little load swing, rare stalls.
        ("quiet", replace(busy, time_sd=0.1, stall_rate=0.005, request_sd=0.25)),
        # The node of 2026-12-03/04 (MLServer ~1.4 ms an inference) with 8 CPU-bound processes
        # beside it, pod IPs: 720 requests make 20 windows of 36 per arm, whose log-ratios
        # scattered by 0.12 (median of 58 A/A runs' sd; 0.075 winsorized; light tails, kurtosis
        # 2.6): a request's log-sd 0.45. A pod's lasting level 0.01: over 50 A/A runs at 720
        # requests the log-ratios scattered by 0.0295 and the runs' own standard errors were
        # 0.0313, which leaves little for the pods (0.02 in this model gives 2.9 % A/A fails
        # with the prior window_pod_sd 0: docs/canary.md, "Extending to the power").
        (
            "this node, --busy=8",
            replace(busy, per_window=36, time_sd=0.3, pod_sd=0.01, request_sd=0.45, stall_rate=0.0),
        ),
        *(
            (f"busy, {n} requests", replace(busy, windows=max(1, busy.windows * n // a.requests)))
            for n in sizes
        ),
    ]


# The traffic may go on to this many times its planned windows: canary.max_duration (60 s) over
# canary.min_duration (20 s), the pace kept.
EXTEND_FACTOR = 3
EXTENDED = "windows, extended to power 0.9 (default)"


def simulate_load(
    model: LoadModel, ratio: float, runs: int, pods: int, requests: int, t: Thresholds, rng: Any
) -> dict[str, dict[str, Any]]:
    """Runs of ``requests`` per arm over ``model.windows`` windows, round-robin over ``pods``
    pods per arm; the canary ``ratio`` times slower. Each run judged on the pods' totals and on
    the windows of the planned size, and on windows extended as the canary extends its traffic
    (``latency.extension`` at every look, up to ``EXTEND_FACTOR`` times the windows, at the same
    requests per window); the decisions of each, and the requests the extended runs sent."""
    per = max(1, requests // model.windows)
    total = model.windows * EXTEND_FACTOR
    shape = (2, total, per)
    # The pods' totals judged with the default prior (the busy node's measured spread) and
    # with the earlier default.
    ways = {
        f"pod totals, prior {t.server_pod_sd:g} (default)": t.server_pod_sd,
        f"pod totals, prior {EARLIER_POD_SD:g} (earlier default)": EARLIER_POD_SD,
    }
    windowed = {
        f"windows, prior {t.window_pod_sd:g}, planned size": t.window_pod_sd,
        f"windows, prior {EARLIER_WINDOW_POD_SD:g} (earlier default)": EARLIER_WINDOW_POD_SD,
    }
    decisions: dict[str, dict[str, Any]] = {
        way: {"pass": 0, "fail": 0, "critical": 0, "requests": []}
        for way in [*ways, *windowed, EXTENDED]
    }
    arms = ("baseline", "canary")
    # The traffic's round-robin over the pods; one-hot (window, request, pod).
    pod_of = np.arange(per * total).reshape(total, per) % pods
    onehot = pod_of[..., None] == np.arange(pods)

    def judged(reads: list[ServerRead], prior: float, look: int | None = None) -> Any:
        return windowed_estimate(reads, t, (pods, pods), look=look, prior_pod_sd=prior)[0]

    for _ in range(runs):
        load = rng.normal(0.0, model.time_sd, total)[None, :, None]  # both arms
        level = rng.normal(0.0, model.pod_sd, (2, pods))[:, pod_of]
        noise = rng.normal(0.0, model.request_sd, shape)
        stall = (rng.random(shape) < model.stall_rate) * rng.exponential(model.stall_mean, shape)
        ms = 2.5 * np.exp(load + level + noise) * (1.0 + stall)
        ms[1] *= ratio
        # Each pod's running count and sum at the end of each window: the canary's sweeps,
        # in sweep order (the reads up to window k are a prefix).
        counts = np.cumsum(onehot.sum(axis=1), axis=0)  # (window, pod)
        sums = np.cumsum(np.einsum("awr,wrp->awp", ms, onehot), axis=1) / 1000
        reads = [ServerRead(0, arm, str(p), 0.0, 0.0, 0.0) for arm in arms for p in range(pods)]
        reads += [
            ServerRead(w + 1, arm, str(p), w + 1.0, float(counts[w, p]), float(sums[i, w, p]))
            for w in range(total)
            for i, arm in enumerate(arms)
            for p in range(pods)
        ]

        def upto(k: int, reads: list[ServerRead] = reads) -> list[ServerRead]:
            return reads[: (k + 1) * 2 * pods]

        planned = model.windows
        levels = sums[:, planned - 1] / counts[planned - 1]
        for way, prior in ways.items():
            est = pod_level_ratio(
                levels[0],
                levels[1],
                prior_pod_sd=prior,
                prior_df=t.pod_sd_df,
                confidence=t.confidence,
                n=requests,
            )
            decisions[way][latency_decision(est, t)] += 1
            decisions[way]["requests"].append(planned * per)
        for way, prior in windowed.items():
            decisions[way][latency_decision(judged(upto(planned), prior), t)] += 1
            decisions[way]["requests"].append(planned * per)
        # The canary's one look after the planned requests; extended, judged with its variance.
        k = planned
        est = judged(upto(k), t.window_pod_sd)
        ext = extension(est, t, sent=k * per, windows=k, room=(total - k) * per)
        if ext.more:
            k = min(total, k + math.ceil(ext.more / per))
            est = judged(upto(k), t.window_pod_sd, look=planned)
        decisions[EXTENDED][latency_decision(est, t)] += 1
        decisions[EXTENDED]["requests"].append(k * per)
    return decisions


def run_verdict(latency: str, accuracy: str, t: Thresholds) -> str:
    """The run's verdict from the two simulated metrics, the others passing (golden cases,
    agreement, errors), with the package's own score."""
    if "critical" in (latency, accuracy):
        return "fail"
    metrics = [
        Metric("golden", "pass", ""),
        Metric("agreement", "pass", ""),
        Metric("accuracy", "pass" if accuracy == "pass" else "fail", ""),
        Metric("latency", "pass" if latency == "pass" else "fail", ""),
        Metric("errors", "pass", ""),
    ]
    value = score(metrics, t.weights)
    if value >= t.pass_score:
        return "pass"
    return "marginal" if value >= t.marginal_score else "fail"


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a rate k/n: how precisely the runs pin each rate."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    a = parse(argv)
    t = Thresholds()
    rng = np.random.default_rng(a.seed)
    started = time.monotonic()
    rows: list[dict[str, Any]] = []
    for lc in latency_cells(a):
        res = simulate_latency(lc, a.runs, t, rng)
        d = res["decisions"]
        # Accuracy of the same model: no discordant row, always a pass; the run's verdict is
        # the latency's.
        verdicts: Counter[str] = Counter()
        for decision, n in d.items():
            verdicts[run_verdict(decision, "pass", t)] += n
        fails = d["fail"] + d["critical"]
        rows.append(
            {
                "kind": "latency",
                **asdict(lc),
                "runs": a.runs,
                "latency_fail": fails,
                "rate": fails / a.runs,
                "rate_95": wilson(fails, a.runs),
                "run_not_pass": a.runs - verdicts.get("pass", 0),
                "ratio_median": res["ratio_median"],
            }
        )
    sweep: list[dict[str, Any]] = []
    for lc in sweep_cells(a):
        d = simulate_latency(lc, a.runs, t, rng)["decisions"]
        fails = d["fail"] + d["critical"]
        sweep.append(
            {
                "kind": "sweep",
                **asdict(lc),
                "runs": a.runs,
                "latency_fail": fails,
                "rate": fails / a.runs,
                "rate_95": wilson(fails, a.runs),
            }
        )
    loads: list[dict[str, Any]] = []
    for name, model in load_models(a):
        for case, ratio in (("A/A", 1.0), ("+10 %", 1.10), ("+25 %", 1.25)):
            # The size rows keep the traffic's rate: their windows grow with their requests.
            requests = model.per_window * model.windows or (
                a.requests * model.windows // a.load_windows
            )
            by_way = simulate_load(model, ratio, a.runs, a.pods, requests, t, rng)
            for way, d in by_way.items():
                fails = d["fail"] + d["critical"]
                loads.append(
                    {
                        "kind": "load",
                        "model": name,
                        **asdict(model),
                        "case": case,
                        "judged_on": way,
                        "runs": a.runs,
                        "latency_fail": fails,
                        "rate": fails / a.runs,
                        "rate_95": wilson(fails, a.runs),
                        "requests_median": float(np.median(d["requests"])),
                        "requests_p90": float(np.percentile(d["requests"], 90)),
                    }
                )
    for ac in ACCURACY_CELLS:
        res = simulate_accuracy(ac, a.runs, t, rng)
        d = res["decisions"]
        rows.append(
            {
                "kind": "accuracy",
                **asdict(ac),
                "runs": a.runs,
                "run_fail": d["critical"],
                "run_marginal": d["fail"],
                "run_pass": d["pass"],
                "rate": d["critical"] / a.runs,
                "rate_95": wilson(d["critical"], a.runs),
            }
        )
    sizes = {
        source: pairs_needed(
            sigma,
            a.pod_sd**2 * 2 / a.pods,
            ratio=t.latency_ratio,
            alpha=t.alpha,
        )
        for source, sigma in (("client", a.client_paired_sd),)
    }
    result = {
        "args": {k: str(v) for k, v in vars(a).items()},
        "thresholds": {
            "confidence": t.confidence,
            "latency_ratio": t.latency_ratio,
            "pod_sd_df": t.pod_sd_df,
            "max_accuracy_drop": t.max_accuracy_drop,
        },
        "cells": rows,
        "sweep": sweep,
        "load": loads,
        "pairs_needed_client": sizes["client"],
        "seconds": round(time.monotonic() - started, 1),
    }
    print(table(rows))
    print()
    print(sweep_table(sweep))
    print()
    print(load_table(loads))
    print(
        f"paired client-side requests needed for power {0.9:.0%} at ratio {t.latency_ratio} "
        f"(paired sd {a.client_paired_sd}, {a.pods} pods per arm): {sizes['client']:.0f}"
    )
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(json.dumps(result, indent=2) + "\n")
    rows_needed = labelled_rows_needed(2 / 150, 0.05, alpha=t.alpha)
    result["labelled_rows_needed"] = rows_needed
    print(
        f"labelled rows needed for power {0.9:.0%} against a 5-point drop (churn 2/150): "
        f"{rows_needed:.0f}"
    )
    a.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {a.output} ({result['seconds']} s)")
    return result


def _latency_row(r: dict[str, Any], lo: float, hi: float) -> str:
    return (
        f"| {r['source']} | {r['name']} | {r['pods']} | {r['sigma']:g} | {r['pod_sd']:g} "
        f"| {r['runs']} | {r['latency_fail']} | {r['rate']:.1%} ({lo:.1%}-{hi:.1%}) "
        f"| {r['run_not_pass']} |"
    )


def _accuracy_row(r: dict[str, Any], lo: float, hi: float) -> str:
    return (
        f"| {r['name']} | {r['rows']} | {r['runs']} | {r['run_fail']} | "
        f"{r['run_marginal']} | {r['run_pass']} | {r['rate']:.1%} ({lo:.1%}-{hi:.1%}) |"
    )


# One Markdown table per kind of cell: (kind, header, the row of a cell and its 95 % interval).
TABLES: tuple[tuple[str, str, Callable[[dict[str, Any], float, float], str]], ...] = (
    (
        "latency",
        "| source | case | pods/arm | level or pair sd | pod sd | runs | latency fails "
        "| rate (95 % interval) | run not Pass |",
        _latency_row,
    ),
    (
        "accuracy",
        "| accuracy case | labelled rows | runs | Fail | Marginal | Pass "
        "| Fail rate (95 % interval) |",
        _accuracy_row,
    ),
)


def sweep_table(cells: list[dict[str, Any]]) -> str:
    """One row per (pod spread, pods per arm): the latency-fail rate of A/A (target <= 2 %), of
    +10 % (power, target >= 0.9) and of +25 % (target >= 0.99), with their 95 % intervals."""
    lines = [
        "| server-side pod spread | pods/arm | A/A fails (target <= 2 %) | +10 % fails "
        "(target >= 90 %) | +25 % fails (target >= 99 %) |",
        "|---|---|---|---|---|",
    ]
    by: dict[tuple[float, int], dict[str, str]] = {}
    for c in cells:
        lo, hi = c["rate_95"]
        by.setdefault((c["sigma"], c["pods"]), {})[c["name"]] = (
            f"{c['rate']:.1%} ({lo:.1%}-{hi:.1%})"
        )
    for (spread, pods), rates in by.items():
        lines.append(
            f"| {spread:g} | {pods} | {rates['A/A']} | {rates['+10 %']} | {rates['+25 %']} |"
        )
    return "\n".join(lines)


def load_table(cells: list[dict[str, Any]]) -> str:
    """One row per load model and way of judging: the latency-fail rates of A/A, +10 % and +25 %
    (targets <= 2 %, >= 90 %, >= 99 %) with their 95 % intervals."""
    lines = [
        "| load model | judged on | A/A fails (target <= 2 %) | +10 % fails (target >= 90 %) "
        "| +25 % fails (target >= 99 %) | requests per arm, A/A median (p90) |",
        "|---|---|---|---|---|---|",
    ]
    by: dict[tuple[str, str], dict[str, str]] = {}
    for c in cells:
        lo, hi = c["rate_95"]
        row = by.setdefault((c["model"], c["judged_on"]), {})
        row[c["case"]] = f"{c['rate']:.1%} ({lo:.1%}-{hi:.1%})"
        if c["case"] == "A/A":
            row["requests"] = f"{c['requests_median']:.0f} ({c['requests_p90']:.0f})"
    for (model, way), r in by.items():
        lines.append(
            f"| {model} | {way} | {r['A/A']} | {r['+10 %']} | {r['+25 %']} | {r['requests']} |"
        )
    return "\n".join(lines)


def table(rows: list[dict[str, Any]]) -> str:
    tables = []
    for kind, header, row in TABLES:
        lines = [header, "|" + "---|" * (header.count("|") - 1)]
        lines += [row(r, *r["rate_95"]) for r in rows if r["kind"] == kind]
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


if __name__ == "__main__":
    main()
