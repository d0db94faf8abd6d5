"""The measurement on two running arms: health on every pod of both, each reached at its pod IP
or through a port-forward (``canary.reach``), the traffic spread over all of them (warm-up,
then the measured requests with requests that do no model work among them), the servers' own
duration metric read per pod before, every ``canary.server_window`` seconds during and after
the traffic, and the restarts the traffic saw."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import requests
from kubernetes.client import ApiClient

from rolloutgate import kube
from rolloutgate.canary.arms import pod_restarts
from rolloutgate.canary.config import CanaryConfig
from rolloutgate.canary.inputs import Inputs
from rolloutgate.canary.judge import judge
from rolloutgate.canary.latency import (
    extension,
    sample_size,
    server_power,
)
from rolloutgate.canary.observations import ARMS, Arm, Observations, PodTiming, ServerRead
from rolloutgate.canary.stats import POWER, RatioEstimate
from rolloutgate.canary.traffic import Traffic, plan
from rolloutgate.checks import cases
from rolloutgate.checks.cases import Golden
from rolloutgate.checks.client import EndpointUnreachable, wait_answering
from rolloutgate.checks.metrics import duration_totals
from rolloutgate.config import GateConfig
from rolloutgate.errors import ClusterError
from rolloutgate.kube import portforward
from rolloutgate.objects import is_deleting, is_ready, name_of
from rolloutgate.release import verify

if TYPE_CHECKING:
    from rolloutgate.canary.run import CanaryRun

Obj = dict[str, Any]

# Every 4th measured request is followed by a request that does no model work on the same pods:
# enough to tell the path's share each run (50 per 200), little extra load.
PATH_EVERY = 4


def measure(
    api: ApiClient,
    cfg: GateConfig,
    ccfg: CanaryConfig,
    inputs: Inputs,
    finals: dict[Arm, Obj],
    write: Callable[[str], None],
    run: CanaryRun,
) -> None:
    """Health on every pod of both arms, then the traffic, spread over all of them, each pod
    reached as ``canary.reach`` says; the servers' own duration metric read per pod before,
    during and after."""
    ns = cfg.namespace
    port, golden = inputs.port, inputs.golden
    reach = run.reach = resolved_reach(ccfg.reach, cfg)
    with ExitStack() as stack:
        urls: dict[Arm, dict[str, str]] = {}
        pods: dict[Arm, list[Obj]] = {}
        deadline = time.monotonic() + cfg.timeouts.endpoint
        with run.phase("health"):
            for arm in ("canary", "baseline"):
                pods[arm] = verify.release_pods(api, ns, finals[arm])
                ready = [p for p in pods[arm] if is_ready(p) and not is_deleting(p)]
                if not ready:
                    run.obs.arm_failure[arm] = f"no ready pod of {run.arms[arm]}"
                    return
                urls[arm] = {}
                for pod in ready:
                    url = pod_url(api, ns, pod, port, reach, stack)
                    problem = _health(url, golden, cfg, deadline)
                    if problem:
                        if reach == "pod-ip":
                            problem += (
                                f" (reached at its pod IP, {url}: canary.reach=port-forward "
                                "goes through the API server instead)"
                            )
                        run.obs.arm_failure[arm] = f"health of pod {name_of(pod)}: {problem}"
                        return
                    urls[arm][name_of(pod)] = url
        server = ServerMetrics.open(
            api, cfg, ccfg, ready_pods=pods, urls=urls, stack=stack, reach=reach
        )
        before = {arm: pod_restarts(pods[arm]) for arm in ARMS}
        rng = random.Random(ccfg.seed)
        schedule = plan(run.obs.items, requests=ccfg.requests, warmup=ccfg.warmup, rng=rng)
        write(
            f"canary traffic: {ccfg.warmup} warm-up + {ccfg.requests} measured requests per "
            f"arm over {', '.join(f'{len(urls[a])} {a}' for a in ARMS)} pod(s), "
            f"{'at their pod IPs' if reach == 'pod-ip' else 'through a port-forward each'} "
            f"(canary.reach={ccfg.reach}), "
            f"{len(run.obs.items)} distinct inputs, concurrency {ccfg.concurrency}, over at "
            f"least {ccfg.min_duration:g} s and at most {ccfg.traffic_timeout:g} s "
            "(canary.traffic_timeout)"
        )

        def traffic(min_duration: float, path_every: int) -> Traffic:
            return Traffic(
                lambda arm, pod: arm_client(urls[arm][pod], golden, cfg),
                run.obs,
                pods={arm: list(urls[arm]) for arm in ARMS},
                path_every=path_every,
                concurrency=ccfg.concurrency,
                request_timeout=cfg.request_timeout,
                max_consecutive_errors=ccfg.thresholds.max_consecutive_errors,
                canary_failing_streak=ccfg.thresholds.failing_streak,
                seed=ccfg.seed,
                min_duration=min_duration,
                progress=write,
            )

        end = time.monotonic() + ccfg.traffic_timeout
        with run.phase("traffic"):
            # The warm-up first, unspread: it is discarded, and it sizes what follows.
            traffic(0.0, 0).run([e for e in schedule if e[1]], deadline=end)
            size = sample_size(
                run.obs, ccfg.thresholds, min(map(len, urls.values())), ccfg.requests
            )
            write(f"canary {size}")
            run.notes.append(size)
            if server:
                power = server_power(ccfg.thresholds, ccfg.requests, ccfg.max_duration)
                write(f"canary {power}")
                run.notes.append(power)
            first = server.read(write) if server else None
            # A canary that failed the warm-up's streak has failed: nothing more to measure.
            if not run.obs.stopped and run.obs.canary_failing is None:
                with server.windows(ccfg.server_window) if server and first else ExitStack():
                    started = time.monotonic()
                    traffic(ccfg.min_duration, PATH_EVERY).run(
                        [e for e in schedule if not e[1]], deadline=end
                    )

                    def so_far() -> Observations:
                        if not (server and first):
                            return run.obs
                        now = latest_totals(list(server.reads))
                        return replace(
                            run.obs,
                            server_reads=list(server.reads),
                            server_metric=server.metric,
                            server=pod_timings(first, now),
                        )

                    extend(
                        run, ccfg, so_far, traffic, write, started=started, deadline=end, rng=rng
                    )
            last = server.read(write) if server and first else None
            if server:
                run.obs.server_reads = server.reads
            if server and first and last:
                run.obs.server_metric = server.metric
                run.obs.server = pod_timings(first, last)
        if run.obs.late:
            run.notes.append(f"{run.obs.late} answers came after the traffic had ended: not judged")
        for arm in ARMS:
            now = verify.release_pods(api, ns, finals[arm])
            run.obs.restarts[arm] = max(0, pod_restarts(now) - before[arm])


Totals = dict[Arm, dict[str, tuple[float, float]]]  # per arm, per pod: (count, sum seconds)


def extend(
    run: CanaryRun,
    ccfg: CanaryConfig,
    so_far: Callable[[], Observations],
    traffic: Callable[[float, int], Traffic],
    write: Callable[[str], None],
    *,
    started: float,
    deadline: float,
    rng: random.Random,
) -> None:
    """More measured requests, at the first requests' pace, when the latency's interval on the
    servers' windows is too wide for power ``POWER`` to find ``latency_ratio``: as many as the
    run's own scatter asks for (``latency.extension``), within ``canary.max_duration`` of
    measured traffic. One look: the run is then judged with this look's variance
    (``obs.latency_look``), so that the extension changes its size and not its test's level.
    Said on the terminal and in the report's notes, and why not when the power is not had."""
    t = ccfg.thresholds
    if run.obs.stopped or run.obs.canary_failing is not None:
        return
    now = so_far()
    judged = judge(now, t)
    latency = next(m.figures for m in judged.metrics if m.name == "latency")
    if any(m.critical and m.verdict == "fail" for m in judged.metrics) or "windows" not in latency:
        # Failed already (a wrong or hanging candidate waits no longer: a critical failure
        # stands whatever follows; under the same model one is rarer than alpha), or no
        # windows of the servers' own metric to size on (client-side, nodata): as planned.
        return
    est = RatioEstimate(**{**latency["estimate"], "pods": tuple(latency["estimate"]["pods"])})
    pace = ccfg.min_duration / ccfg.requests  # seconds per request per arm, at least
    rate = ccfg.requests / max(1e-9, time.monotonic() - started)
    until = min(deadline, started + ccfg.max_duration)
    room = int((until - time.monotonic()) * (min(rate, 1 / pace) if pace else rate))
    ext = extension(
        est, t, sent=ccfg.requests, windows=latency["windows"]["count"], room=max(0, room)
    )
    if ext.reached:
        return
    said = (
        f"canary latency after {ccfg.requests} requests per arm: power {ext.power:.2f} to find "
        f"{t.latency_ratio:g}x (standard error {est.se:.3f}, pod sd {est.pod_sd:.3f})"
    )
    if math.isinf(ext.needed):
        note = (
            f"{said}: the pods alone vary that much; more pods per arm (canary.replicas) would "
            "narrow it, more requests would not"
        )
    else:
        wanted = math.ceil(ext.needed)
        room_for = f"canary.max_duration {ccfg.max_duration:g} s"
        if not ext.more:
            then = f"no time for them within {room_for}"
        elif ccfg.requests + ext.more < wanted:
            then = f"sending {ext.more} more, all that {room_for} leaves room for"
        else:
            then = f"sending {ext.more} more"
        note = f"{said}: ~{wanted} in all would reach {POWER:g}; {then}"
    write(note)
    run.notes.append(note)
    if not ext.more:
        return
    run.obs.latency_look = max(r.sweep for r in now.server_reads)
    extra = plan(run.obs.items, requests=ext.more, warmup=0, rng=rng)
    # Sized to end within max_duration at the pace so far; only the traffic's deadline stops
    # it (a stop there is the run's, as for the first requests).
    traffic(ext.more * pace, PATH_EVERY).run(extra, deadline=deadline)


def latest_totals(reads: list[ServerRead]) -> Totals:
    """Each pod's latest (count, sum) among ``reads``."""
    totals: Totals = {arm: {} for arm in ARMS}
    for r in sorted(reads, key=lambda r: r.sweep):
        totals[r.arm][r.pod] = (r.count, r.sum_s)
    return totals


def pod_timings(first: Totals, last: Totals) -> dict[Arm, list[PodTiming]]:
    """Each pod's requests and server seconds from ``first`` to ``last``."""
    return {
        arm: [
            PodTiming(pod, last[arm][pod][0] - c0, last[arm][pod][1] - s0)
            for pod, (c0, s0) in first[arm].items()
            if pod in last[arm]
        ]
        for arm in ARMS
    }


@dataclass
class ServerMetrics:
    """The servers' own duration metric (``canary.latency_metric``) on every pod of both arms,
    read where the gate's ``metrics`` setting says (its path, port and labels)."""

    metric: str
    path: str
    labels: tuple[tuple[str, str], ...]
    urls: dict[Arm, dict[str, str]]
    timeout: float
    reads: list[ServerRead] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        api: ApiClient,
        cfg: GateConfig,
        ccfg: CanaryConfig,
        *,
        ready_pods: dict[Arm, list[Obj]],
        urls: dict[Arm, dict[str, str]],
        stack: ExitStack,
        reach: str = "port-forward",
    ) -> ServerMetrics | None:
        if not ccfg.latency_metric:
            return None
        check = cfg.metrics
        metric_urls: dict[Arm, dict[str, str]] = {arm: {} for arm in ARMS}
        for arm in ARMS:
            for pod in ready_pods[arm]:
                name = name_of(pod)
                if name not in urls[arm]:
                    continue
                if check is None or check.port is None:
                    metric_urls[arm][name] = urls[arm][name]  # the serving port itself
                else:
                    metric_urls[arm][name] = pod_url(
                        api, cfg.namespace, pod, check.port, reach, stack
                    )
        return cls(
            ccfg.latency_metric,
            check.path if check else "/metrics",
            check.labels if check else (),
            metric_urls,
            cfg.request_timeout,
        )

    def read(
        self, write: Callable[[str], None]
    ) -> dict[Arm, dict[str, tuple[float, float]]] | None:
        """(count, sum) per pod per arm, read at once on every pod and kept as a sweep of
        ``reads``; None (said why) when a pod does not export it: the latency is then judged
        client-side."""
        pods = self._pods()
        with ThreadPoolExecutor(max_workers=len(pods), thread_name_prefix="canary-read") as pool:
            found = self.sweep(pool)
        for (_, pod, _), got in zip(pods, found, strict=True):
            if isinstance(got, str):
                write(f"canary: pod {pod}: {got}; latency judged client-side")
                return None
        totals: dict[Arm, dict[str, tuple[float, float]]] = {arm: {} for arm in ARMS}
        for r in found:
            if isinstance(r, ServerRead):
                totals[r.arm][r.pod] = (r.count, r.sum_s)
        return totals

    def windows(self, every: float) -> _Windows:
        """A context that sweeps every pod's metric every ``every`` seconds while it is open
        (a pod that does not answer in a sweep is left out of it: its window grows)."""
        return _Windows(self, every)

    def sweep(self, pool: ThreadPoolExecutor) -> list[ServerRead | str]:
        """Every pod read at once (one thread each), so that the pods' counters are read at
        about the same moment however slow the node makes one read. Kept in ``reads``; per pod
        its read, or why it was not read (that pod is left out of this sweep: its window
        grows)."""
        sweep = self.reads[-1].sweep + 1 if self.reads else 0
        found = list(pool.map(lambda pod: self._read_one(sweep, *pod), self._pods()))
        self.reads.extend(r for r in found if isinstance(r, ServerRead))
        return found

    def _read_one(self, sweep: int, arm: Arm, pod: str, url: str) -> ServerRead | str:
        try:
            t, response = self._get(url)
            totals = (
                duration_totals(response.text, self.metric, self.labels) if response.ok else None
            )
        except (requests.RequestException, ValueError) as e:
            return f"{self.metric} not read ({e})"
        if totals is None:
            return (
                f"exports no summary or histogram {self.metric} at {self.path} "
                f"(HTTP {response.status_code})"
            )
        return ServerRead(sweep, arm, pod, t, *totals)

    def _pods(self) -> list[tuple[Arm, str, str]]:
        """Every pod, the arms taking turns (baseline's first, canary's first, ...): each arm's
        pods are read at about the same moments."""
        by_arm = [[(arm, pod, url) for pod, url in self.urls[arm].items()] for arm in ARMS]
        longest = max(map(len, by_arm))
        return [row[k] for k in range(longest) for row in by_arm if k < len(row)]

    def _get(self, url: str) -> tuple[float, requests.Response]:
        """The response and the middle of the time it took (when the pod's counters were read,
        as near as the client can tell)."""
        start = time.time()
        response = requests.get(url + self.path, timeout=self.timeout)
        return (start + time.time()) / 2, response


class _Windows:
    """The sweeps of ``ServerMetrics.windows``, in a daemon thread, on a fixed cadence (a slow
    sweep does not stretch the next window; the traffic's workers are never held up)."""

    def __init__(self, server: ServerMetrics, every: float) -> None:
        self._server, self._every = server, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="canary-windows", daemon=True)

    def _loop(self) -> None:
        pods = len(self._server._pods())
        with ThreadPoolExecutor(max_workers=pods, thread_name_prefix="canary-window") as pool:
            due = time.monotonic() + self._every
            while not self._stop.wait(max(0.0, due - time.monotonic())):
                self._server.sweep(pool)
                # The next sweep on the cadence; one that overran skips to the next slot.
                due += self._every * max(1, math.ceil((time.monotonic() - due) / self._every))

    def __enter__(self) -> _Windows:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        # A sweep reads every pod at once, each within the request timeout: bounded by that.
        self._thread.join(timeout=2 * self._server.timeout)


def resolved_reach(reach: str, cfg: GateConfig) -> str:
    """``port-forward`` or ``pod-ip``: ``auto`` is the pods' IPs when the gate runs in a pod of
    the cluster (the in-cluster configuration: the pod network reaches them), else a
    port-forward (a CI runner outside the cluster reaches nothing else)."""
    if reach != "auto":
        return reach
    kubeconfig = str(cfg.kubeconfig) if cfg.kubeconfig else None
    return "pod-ip" if kube.in_cluster(kubeconfig) else "port-forward"


def pod_url(
    api: ApiClient, namespace: str, pod: Obj, port: int | str, reach: str, stack: ExitStack
) -> str:
    """The base URL of ``port`` (number or container port name) of one pod: its pod IP, or a
    port-forward to it on 127.0.0.1 that ``stack`` closes."""
    number = portforward.container_port(pod, port)
    if reach != "pod-ip":
        return stack.enter_context(portforward.pod_forward(api, namespace, pod, number))
    return pod_ip_url(pod, number)


def pod_ip_url(pod: Obj, number: int) -> str:
    """``http://<pod IP>:<port>`` (an IPv6 address in brackets). Pure. ClusterError when the
    pod has no IP (not yet, or no longer, on the pod network)."""
    ip = str((pod.get("status") or {}).get("podIP") or "")
    if not ip:
        raise ClusterError(
            f"pod {name_of(pod)} has no pod IP to reach (canary.reach=pod-ip): it is not on "
            "the pod network yet; canary.reach=port-forward goes through the API server"
        )
    return f"http://[{ip}]:{number}" if ":" in ip else f"http://{ip}:{number}"


def arm_client(url: str, golden: Golden, cfg: GateConfig) -> cases.HttpClient:
    """The client of one pod of an arm at ``url``, the canary's own port-forward on 127.0.0.1
    or the pod's IP (``canary.reach``): the gate's client (protocol, health paths, configured
    headers and the endpoint URL's credentials) as the gate's replica checks make it, so the
    environment's proxy and netrc never concern it (an HTTP_PROXY without a NO_PROXY for
    127.0.0.1 took every request to the proxy) and its requests go straight through urllib3
    (``checks.loopback``)."""
    return cases.client_for(url, golden, cfg, forwarded=True)


def _health(url: str, golden: Golden, cfg: GateConfig, deadline: float) -> str | None:
    """What is wrong with the health of the arm at ``url`` (None: healthy): the gate's health
    checks (settings, then the golden file's, then its protocol's), with its credentials."""
    with arm_client(url, golden, cfg) as client:
        try:
            wait_answering(client, deadline=deadline)
            problems = cases.check_health(client)
        except EndpointUnreachable as e:
            return str(e)
    return "; ".join(problems) or None
