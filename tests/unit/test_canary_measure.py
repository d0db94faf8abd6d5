"""What the canary measures, on recorded inputs: the servers' own duration metrics (MLServer's
summary, a plain histogram), the spread of requests over the arms' pods, and the sample size
the warm-up asks for."""

from __future__ import annotations

import itertools
import math
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rolloutgate.canary.config import RunDefaults
from rolloutgate.canary.latency import sample_size, server_power, server_windows
from rolloutgate.canary.measure import ServerMetrics
from rolloutgate.canary.observations import Observations, Sample, ServerRead
from rolloutgate.canary.thresholds import Thresholds
from rolloutgate.canary.traffic import Traffic
from rolloutgate.checks.metrics import duration_totals

# As MLServer 1.7 serves it on its metrics port (a summary per model and version).
MLSERVER = """\
# HELP model_infer_request_duration Model infer request duration
# TYPE model_infer_request_duration summary
model_infer_request_duration_count{model="iris",version=""} 67.0
model_infer_request_duration_sum{model="iris",version=""} 0.0803
model_infer_request_duration_count{model="other",version=""} 5.0
model_infer_request_duration_sum{model="other",version=""} 9.0
# HELP model_infer_request_duration_created Model infer request duration
# TYPE model_infer_request_duration_created gauge
model_infer_request_duration_created{model="iris",version=""} 1.7e9
# HELP model_infer_request_success_total Model infer request success count
# TYPE model_infer_request_success_total counter
model_infer_request_success_total{model="iris",version=""} 67.0
"""

# As prometheus_client serves a label-less histogram (the wine example's).
WINE = """\
# HELP wine_prediction_seconds Time to answer a prediction request
# TYPE wine_prediction_seconds histogram
wine_prediction_seconds_bucket{le="0.005"} 60.0
wine_prediction_seconds_bucket{le="+Inf"} 70.0
wine_prediction_seconds_count 70.0
wine_prediction_seconds_sum 0.21
"""


def test_duration_totals_of_a_summary_keep_the_configured_model_only() -> None:
    assert duration_totals(MLSERVER, "model_infer_request_duration", [("model", "iris")]) == (
        pytest.approx(67.0),
        pytest.approx(0.0803),
    )
    # Without the label filter both models add up.
    assert duration_totals(MLSERVER, "model_infer_request_duration", []) == (
        pytest.approx(72.0),
        pytest.approx(9.0803),
    )


def test_duration_totals_of_a_histogram_ignore_labels_it_does_not_carry() -> None:
    # The gate's metrics labels (outcome="ok") are its counter's, not the histogram's.
    assert duration_totals(WINE, "wine_prediction_seconds", [("outcome", "ok")]) == (70.0, 0.21)


def test_duration_totals_of_a_counter_or_a_missing_family_are_none() -> None:
    assert duration_totals(MLSERVER, "model_infer_request_success", []) is None
    assert duration_totals(WINE, "model_infer_request_duration", []) is None


def test_requests_pair_every_baseline_pod_with_every_canary_pod_equally() -> None:
    traffic = Traffic(
        lambda arm, pod: None,  # type: ignore[arg-type,return-value]
        Observations(),
        pods={"baseline": ["b0", "b1", "b2"], "canary": ["c0", "c1", "c2"]},
        concurrency=1,
        request_timeout=1,
        max_consecutive_errors=4,
        seed=1,
    )
    chosen = [traffic.pods_for(i) for i in range(90)]
    pairs = Counter((c["baseline"], c["canary"]) for c in chosen)
    assert set(pairs) == set(itertools.product(["b0", "b1", "b2"], ["c0", "c1", "c2"]))
    assert set(pairs.values()) == {10}
    # One pod on an arm: all its requests go there.
    single = Traffic(
        lambda arm, pod: None,  # type: ignore[arg-type,return-value]
        Observations(),
        pods={"baseline": ["b"], "canary": ["c0", "c1"]},
        concurrency=1,
        request_timeout=1,
        max_consecutive_errors=4,
        seed=1,
    )
    assert Counter(single.pods_for(i)["canary"] for i in range(10)) == {"c0": 5, "c1": 5}


def _traffic_over(baseline: list[str], canary: list[str]) -> Traffic:
    return Traffic(
        lambda arm, pod: None,  # type: ignore[arg-type,return-value]
        Observations(),
        pods={"baseline": baseline, "canary": canary},
        concurrency=2,
        request_timeout=1,
        max_consecutive_errors=4,
        seed=1,
    )


@pytest.mark.parametrize(
    ("baseline", "canary"), [(3, 3), (3, 2), (2, 3), (4, 4), (5, 3), (1, 3), (6, 6)]
)
def test_no_pod_gets_two_requests_in_a_row_and_every_pair_comes_up(
    baseline: int, canary: int
) -> None:
    # Two workers send requests next to each other in the plan at the same time: two in a row
    # on one pod would queue inside it, on one arm more than the other.
    names = {
        "baseline": [f"b{k}" for k in range(baseline)],
        "canary": [f"c{k}" for k in range(canary)],
    }
    traffic = _traffic_over(names["baseline"], names["canary"])
    chosen = [traffic.pods_for(i) for i in range(baseline * canary * 10)]
    for arm in ("baseline", "canary"):
        if len(names[arm]) > 1:
            repeats = [i for i in range(1, len(chosen)) if chosen[i][arm] == chosen[i - 1][arm]]
            assert repeats == [], (arm, repeats[:5])
        assert set(Counter(c[arm] for c in chosen).values()) == {len(chosen) // len(names[arm])}
    pairs = Counter((c["baseline"], c["canary"]) for c in chosen)
    assert set(pairs.values()) == {10}
    assert len(pairs) == baseline * canary


def test_two_pods_on_each_arm_repeat_a_canary_pod_once_a_round() -> None:
    # No step both meets every pair and alternates: the pairs win (the pod is the unit).
    traffic = _traffic_over(["b0", "b1"], ["c0", "c1"])
    chosen = [traffic.pods_for(i)["canary"] for i in range(8)]
    assert chosen == ["c0", "c1", "c1", "c0", "c0", "c1", "c1", "c0"]


def test_the_warm_up_sizes_the_client_side_traffic() -> None:
    rng = random.Random(2)
    obs = Observations()
    for k in range(20):
        base = 5.0 * rng.lognormvariate(0, 0.3)
        for arm, ms in (("baseline", base), ("canary", base * rng.lognormvariate(0, 0.3))):
            obs.samples.append(Sample(f"i{k}", arm, "ok", ms, warmup=True, status=200))  # type: ignore[arg-type]
    text = sample_size(obs, Thresholds(), pods=3, requests=200)
    assert text.startswith("warm-up: paired log-latency sd 0.")
    assert "over 20 pairs" in text
    assert "pairs; sending 200" in text
    # Pods calibrated as different as the effect to detect: no request count is enough.
    wide = sample_size(obs, Thresholds(client_pod_sd=0.2), pods=1, requests=200)
    assert "more pods per arm" in wide
    assert "1 warm-up pairs answered" in sample_size(
        Observations(samples=obs.samples[:2]), Thresholds(), pods=3, requests=200
    )


def test_server_windows_pair_the_arms_over_the_same_sweeps() -> None:
    def reads(sweep: int, b: tuple[float, float], c: tuple[float, float]) -> list[ServerRead]:
        return [
            ServerRead(sweep, "baseline", "b0", float(sweep), *b),
            ServerRead(sweep, "canary", "c0", float(sweep), *c),
        ]

    recorded = [
        *reads(0, (0, 0.0), (0, 0.0)),
        *reads(1, (10, 0.02), (10, 0.03)),
        # Too few requests on the canary (3 of the 10 a window needs): joined to the next window.
        *reads(2, (20, 0.04), (13, 0.04)),
        *reads(3, (30, 0.06), (20, 0.06)),
        # A second baseline pod, read from sweep 3 on; its read in sweep 5 failed, so its
        # requests of sweeps 4-5 land in sweep 6's window.
        ServerRead(3, "baseline", "b1", 3.0, 100, 1.0),
        *reads(4, (40, 0.08), (30, 0.09)),
        ServerRead(4, "baseline", "b1", 4.0, 105, 1.01),
        *reads(5, (50, 0.10), (40, 0.12)),
        *reads(6, (60, 0.12), (50, 0.15)),
        ServerRead(6, "baseline", "b1", 6.0, 115, 1.03),
        # The canary pod restarted (its counters went down): nothing from it in this window.
        *reads(7, (70, 0.14), (2, 0.004)),
    ]
    windows = server_windows(recorded)
    assert [(w.baseline_count, w.canary_count) for w in windows[:4]] == [
        (10, 10),
        (20, 10),
        (15, 10),
        (10, 10),
    ]
    assert windows[0].log_ratio == pytest.approx(math.log(1.5))
    assert windows[2].baseline_sum_s == pytest.approx(0.03)
    # Sweep 6: b0's 10 requests and b1's 10 from two sweeps; sweep 7 has no canary requests
    # and ends the reads: no window.
    assert (windows[4].baseline_count, windows[4].baseline_sum_s) == (20, pytest.approx(0.04))
    assert len(windows) == 5


class _Exporter(BaseHTTPRequestHandler):
    """A pod's metrics endpoint on loopback: every read finds 10 more requests, 0.02 s more."""

    reads = 0

    def do_GET(self) -> None:
        if self.path != "/metrics":
            self.send_response(404)
            self.end_headers()
            return
        type(self).reads += 1
        n = type(self).reads
        body = MLSERVER.replace("67.0", f"{10 * n}.0").replace("0.0803", f"{0.02 * n}")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: object) -> None:
        pass


def test_server_metrics_sweep_every_pod_on_a_cadence_while_the_traffic_runs() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        metrics = ServerMetrics(
            "model_infer_request_duration",
            "/metrics",
            (("model", "iris"),),
            {"baseline": {"b0": url, "b1": url}, "canary": {"c0": url, "gone": url + "/x"}},
            timeout=2.0,
        )
        lines: list[str] = []
        # A pod that does not export the metric: no totals, said why, judged client-side.
        assert metrics.read(lines.append) is None
        assert "pod gone:" in lines[0]
        assert "HTTP 404" in lines[0]
        metrics.urls["canary"].pop("gone")
        metrics.reads.clear()
        first = metrics.read(lines.append)
        assert first is not None
        assert set(first["canary"]) == {"c0"}
        with metrics.windows(0.05):
            # Sweeps while open (a loaded test machine is slow to answer: a deadline, not a nap).
            deadline = time.monotonic() + 10
            while len({r.sweep for r in metrics.reads}) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
        sweeps = sorted({r.sweep for r in metrics.reads})
        assert sweeps[0] == 0
        assert len(sweeps) >= 5
        # Each sweep reads every pod once; the counters only grow from one sweep to the next.
        for s in sweeps:
            assert sorted(r.pod for r in metrics.reads if r.sweep == s) == ["b0", "b1", "c0"]
        c0 = [r.count for r in metrics.reads if r.pod == "c0"]
        assert c0 == sorted(c0)
        assert len(set(c0)) == len(c0)
        windows = server_windows(metrics.reads)
        assert len(windows) == len(sweeps) - 1
        assert all(w.log_ratio == pytest.approx(0.0) for w in windows)  # 2 ms a request each
    finally:
        server.shutdown()


def test_the_server_side_power_is_said_before_the_traffic() -> None:
    text = server_power(Thresholds(), 200)
    assert text.startswith("server-side: 200 requests per arm make ~13 time-paired windows")
    powers = [float(x) for x in re.findall(r"(\d\.\d\d) to find", text)]
    assert len(powers) == 2
    assert powers[0] < 0.3 < powers[1] < 0.9
    # The requests each target takes: power 0.9 at the ratio to detect, 0.99 at 1.25x.
    needed = {float(r): int(n) for r, n in re.findall(r"at (\d\.\d+)x ~(\d+)", text)}
    assert list(needed) == [1.1, 1.25]
    assert needed[1.1] > 3 * needed[1.25] > 3 * 200
    more = server_power(Thresholds(), needed[1.25])
    assert float(re.findall(r"(\d\.\d\d) to find 1.25x", more)[0]) >= 0.99
    # The default size is that of the 1.25x target: a run says it has the power it was sized for.
    assert RunDefaults().requests == needed[1.25]
