"""The canary's traffic goes on while its latency interval is too wide for the power it wants
(``measure.extend``; sized by ``latency.requests_for_power``), on synthetic server reads: the
windows' scatter is set, the traffic is a stand-in that adds windows as it is sent."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path
from typing import Any

import pytest

from rolloutgate.canary import config as canary_config
from rolloutgate.canary.judge import judge
from rolloutgate.canary.latency import requests_for_power
from rolloutgate.canary.measure import extend
from rolloutgate.canary.observations import ARMS, Observations, PodTiming, ServerRead
from rolloutgate.canary.run import CanaryRun
from rolloutgate.canary.stats import (
    POWER,
    RatioEstimate,
    ratio_power,
    se_for_power,
    trimmed_windows_se,
)
from rolloutgate.canary.thresholds import Thresholds

from .k8s_objects import gate_config
from .test_canary_judge import observations

PODS = 3
PER_WINDOW = 36  # requests per arm in a window: 720 over 20 one-second windows


class Servers:
    """Both arms' three pods: every ``PER_WINDOW`` requests sent make a window whose per-pod
    log mean time scatters by ``window_sd`` (the same level on both arms: an A/A run)."""

    def __init__(self, window_sd: float, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.window_sd = window_sd
        self.totals = {(arm, p): [0.0, 0.0] for arm in ARMS for p in range(PODS)}
        self.reads: list[ServerRead] = []
        self.sweep = 0
        self._read()
        self.sent: list[tuple[int, float]] = []  # (requests, min_duration) of each traffic run

    def _read(self) -> None:
        for (arm, p), (count, total) in self.totals.items():
            self.reads.append(ServerRead(self.sweep, arm, f"{arm}-{p}", 0.0, count, total))
        self.sweep += 1

    def add_windows(self, requests: int) -> None:
        for _ in range(requests // PER_WINDOW):
            for _key, tot in self.totals.items():
                tot[0] += PER_WINDOW / PODS
                tot[1] += PER_WINDOW / PODS * 0.0015 * math.exp(self.rng.gauss(0, self.window_sd))
            self._read()

    def observations(self, base: Observations) -> Observations:
        base.server_metric = "model_infer_request_duration"
        base.server_reads = list(self.reads)
        base.server = {
            arm: [
                PodTiming(f"{a}-{p}", count, total)
                for (a, p), (count, total) in self.totals.items()
                if a == arm
            ]
            for arm in ARMS
        }
        return base

    def traffic(self, min_duration: float, path_every: int) -> Any:
        servers = self

        class Sent:
            def run(self, schedule: list[tuple[str, bool]], *, deadline: float) -> None:
                assert not any(warm for _, warm in schedule)  # measured requests only
                servers.sent.append((len(schedule), min_duration))
                servers.add_windows(len(schedule))

        return Sent()


def _extend(
    tmp_path: Path, servers: Servers, obs: Observations, **env: str
) -> tuple[CanaryRun, list[str]]:
    ccfg = canary_config.resolve(
        {},
        env={f"ROLLOUTGATE_CANARY_{k.upper()}": v for k, v in env.items()},
        tool={},
        cluster=None,
        rootdir=tmp_path,
        invocation_dir=tmp_path,
    )
    run = CanaryRun(gate_config(), ccfg)
    run.obs = obs
    said: list[str] = []
    servers.add_windows(ccfg.requests)
    extend(
        run,
        ccfg,
        lambda: servers.observations(run.obs),
        servers.traffic,
        said.append,
        started=time.monotonic() - ccfg.min_duration,  # the first requests took 20 s
        deadline=time.monotonic() + 300,
        rng=random.Random(1),
    )
    return run, said


def test_a_run_too_noisy_for_its_power_sends_what_its_scatter_asks_once_at_the_same_pace(
    tmp_path: Path,
) -> None:
    servers = Servers(window_sd=0.12)
    run, said = _extend(tmp_path, servers, observations())
    assert len(servers.sent) == 1, said  # one look
    more, pace = servers.sent[0]
    assert 50 <= more <= 1440  # 40 s left of max_duration's 60, at 36 requests a second
    assert pace == pytest.approx(more * 20 / 720)  # the first 720's pace
    assert len(said) == 1
    assert said[0].startswith("canary latency after 720 requests per arm: power 0.")
    assert said[0].endswith(f"sending {more} more")
    assert said == run.notes
    # The look is the last sweep before the extension: the first 20 windows set the variance.
    assert run.obs.latency_look == 20
    latency = judge(servers.observations(run.obs)).metric("latency")
    windows = latency.figures["windows"]
    assert windows["variance_from"] == 20
    assert windows["count"] == 20 + more // PER_WINDOW
    # Sized for it: the interval now has about the power it was extended for.
    assert windows["power"]["1.1"] >= POWER - 0.05, (windows["power"], said)


def test_an_extension_cut_by_max_duration_says_so(tmp_path: Path) -> None:
    # Scattered so widely that 10 s more (of max_duration's 30) cannot buy the power.
    servers = Servers(window_sd=0.4)
    _, said = _extend(tmp_path, servers, observations(), max_duration="30")
    more, _ = servers.sent[0]
    assert more <= 360  # 10 s at 36 a second
    assert said[0].endswith(
        f"sending {more} more, all that canary.max_duration 30 s leaves room for"
    )


def test_a_run_with_the_power_already_sends_nothing_more(tmp_path: Path) -> None:
    servers = Servers(window_sd=0.02)
    run, said = _extend(tmp_path, servers, observations())
    assert servers.sent == []
    assert said == []
    assert run.notes == []


def test_a_candidate_already_failed_is_not_kept_waiting(tmp_path: Path) -> None:
    # Every golden case answers another label on the canary: a critical failure.
    obs = observations(canary_label={"golden:setosa": 2, "golden:virginica": 0})
    servers = Servers(window_sd=0.12)
    _, said = _extend(tmp_path, servers, obs)
    assert servers.sent == []
    assert said == []


def test_no_time_left_within_max_duration_is_said_and_nothing_is_sent(tmp_path: Path) -> None:
    servers = Servers(window_sd=0.12)
    run, said = _extend(tmp_path, servers, observations(), max_duration="21")
    assert servers.sent == []
    assert "no time for them within canary.max_duration 21 s" in said[0]
    assert run.notes == said


def test_max_duration_0_never_extends(tmp_path: Path) -> None:
    servers = Servers(window_sd=0.12)
    _, said = _extend(tmp_path, servers, observations(), max_duration="0")
    assert servers.sent == []
    assert "no time" in said[0]


def test_requests_for_power_are_the_fewest_windows_whose_interval_has_it() -> None:
    t = Thresholds()
    target = se_for_power(t.latency_ratio, 12, alpha=t.alpha)
    assert ratio_power(t.latency_ratio, target, 12, alpha=t.alpha) == pytest.approx(POWER, 1e-6)

    def est(se: float, pod_sd: float) -> RatioEstimate:
        return RatioEstimate(1.0, 0.9, 1.1, 0.5, se, 12.0, 720, (3, 3), pod_sd)

    # 20 windows of 36 requests scattering by 0.2: Yuen's error at k windows is
    # 0.2 sqrt((k-1)/(h(h-1))); the size asked is the fewest k with the power, plus a window.
    se20, _ = trimmed_windows_se(0.2, 20, trim=0.2)
    needed = requests_for_power(est(se20, 0.0), t, 720, 20)
    k = round(needed / 36) - 1
    assert (
        trimmed_windows_se(0.2, k, trim=0.2)[0]
        <= target
        < trimmed_windows_se(0.2, k - 1, trim=0.2)[0]
    )
    # At 19 windows (the look of a real run: the last sweep comes after it) more than
    # 1/requests would say: a fifth cut from each end rounded down keeps 13 of 19, 36 of 58.
    se19, _ = trimmed_windows_se(0.2, 19, trim=0.2)
    assert requests_for_power(est(se19, 0.0), t, 684, 19) > 1.2 * 684 * (se19 / target) ** 2
    # Already enough: no more than sent.
    assert requests_for_power(est(target / 2, 0.0), t, 720, 20) == 720
    # The pods alone too wide: no number of requests does it.
    assert math.isinf(requests_for_power(est(0.05, 1.3 * target), t, 720, 20))  # 1.13 target^2
