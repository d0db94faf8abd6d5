"""The canary's traffic: the request set, the plan, and sending it to both arms. HTTP only.

Request set format (JSON Lines, one request per line; blank lines and lines starting with ``#``
are skipped)::

    {"name": "iris-17", "request": {<a request of the golden file's protocol>}, "label": 2}

``request`` is written as a golden case's request in the golden file's protocol (docs/gate.md):
``{"method", "path", "headers", "body"}``, what it leaves out taken from the preset; for v2 also
a bare V2 inference body ``{"inputs": [...]}``. ``name`` (optional, default ``line-<n>``) names
the request in reports; ``label`` (optional) is the expected value of the label output, a list
for a batch (one per row). A line may also be the request alone.

Requests go out as the gate sends a case's: through ``cases.HttpClient``, with the configured
``headers`` and the endpoint URL's credentials on the session (``cases.client_for``).

The plan: ``warmup`` requests (discarded), then ``requests`` measured ones — every golden case,
then request-set lines in random order, cycling when the set is smaller — shuffled. Each
planned request goes to both arms, in random order, from the same worker: both arms see the
same inputs under the same conditions, with at most ``concurrency`` requests in flight each,
spread over at least ``min_duration`` seconds.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rolloutgate.canary.observations import (
    ARM_ERRORS,
    ARMS,
    Arm,
    Item,
    Observations,
    Outcome,
    Sample,
)
from rolloutgate.checks.cases import Golden, HttpClient, parse_request
from rolloutgate.checks.client import AnswerTimedOut, EndpointUnreachable
from rolloutgate.checks.protocols import Protocol
from rolloutgate.errors import ConfigError

REQUEST_SET_FORMAT = (
    'one JSON object per line: {"name": NAME (optional), "request": REQUEST, "label": VALUE or '
    "[VALUES] (optional)}, or a REQUEST alone; a REQUEST as a golden case's request in the "
    'golden file\'s protocol: {"method": M, "path": PATH, "headers": {...}, "body": JSON} '
    '(v2 also: a V2 infer body {"inputs": [...]})'
)


def load_request_set(path: Path, protocol: Protocol) -> list[Item]:
    """Parse a JSON Lines request set whose requests are in ``protocol`` (the golden file's).
    ConfigError names the file, the line, the field and the format."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"request set {path} cannot be read: {e.strerror or e}") from e
    items: list[Item] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"request set {path}:{number}"

        def bad(field: str, problem: str, where: str = where) -> ConfigError:
            return ConfigError(f"{where}: {field} {problem}; expected {REQUEST_SET_FORMAT}")

        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{where}: not JSON ({e.msg}); expected {REQUEST_SET_FORMAT}") from e
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: not an object; expected {REQUEST_SET_FORMAT}")
        whole = "request" in raw
        request = parse_request(raw["request"] if whole else raw, "request", protocol, bad)
        name = raw.get("name", f"line-{number}") if whole else f"line-{number}"
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: name must be a non-empty string")
        item_id = f"set:{name}"
        if item_id in seen:
            raise ConfigError(f"{where}: name {name!r} is used twice; names must be unique")
        seen.add(item_id)
        labels = None
        if "label" in raw and whole:
            label = raw["label"]
            labels = tuple(label) if isinstance(label, list) else (label,)
        items.append(Item(item_id, request, labels=labels))
    if not items:
        raise ConfigError(f"request set {path} holds no request; expected {REQUEST_SET_FORMAT}")
    return items


def items_of(golden: Golden, request_set: Sequence[Item]) -> dict[str, Item]:
    """Golden cases (``golden:<name>``, with their expectations) and the request set's lines."""
    items = {
        f"golden:{case.name}": Item(f"golden:{case.name}", case.request, case=case)
        for case in golden.cases
    }
    items.update((i.id, i) for i in request_set)
    return items


def plan(
    items: Mapping[str, Item], *, requests: int, warmup: int, rng: random.Random
) -> list[tuple[str, bool]]:
    """(item id, is warm-up) in sending order: warm-up first, then the measured ones."""
    ids = list(items)
    golden = [i for i in ids if items[i].case is not None]
    rest = [i for i in ids if items[i].case is None] or golden
    measured = golden[:requests]
    pool: list[str] = []
    while len(measured) < requests:
        if not pool:
            pool = rest[:]
            rng.shuffle(pool)
        measured.append(pool.pop())
    rng.shuffle(measured)
    warm = [rng.choice(ids) for _ in range(warmup)]
    return [(i, True) for i in warm] + [(i, False) for i in measured]


class Traffic:
    """Sends a plan to both arms from ``concurrency`` worker threads; fills ``obs``.

    Each arm's requests are spread evenly over its pods (``pods``: names; ``connect(arm, pod)``
    makes a client for one), in a pattern that pairs every baseline pod with every canary pod
    equally often: the pod is the unit of variance, and no pod pair may stand for the arms.
    Every ``path_every``-th measured request is followed by a request that does no model work
    (the first health check) on the same pods: the path's own time (``obs.path_ms``).

    A request that meets a broken connection is sent once more on a new one (the first failure
    is "transport": the port-forward's, never judged); a second break is the arm's "reset". A
    request with no answer within ``request_timeout`` is the arm's "timeout" and is not sent
    again (a slow model must not take twice its time to be judged).

    Each planned request's two answers make a pair. The traffic stops early (and says why) at
    the deadline, when ``stop`` is set (an interrupt in the main thread), and after
    ``max_consecutive_errors`` pairs in a row where:

    - neither arm answered (the measuring path is broken: ``obs.stopped``, inconclusive);
    - the baseline did not answer and the canary did (``obs.stopped``, inconclusive);
    - the canary did not answer, or answered an error, and the baseline answered
      (``obs.canary_failing``: a critical failure). ``canary_failing_streak`` may ask for a
      longer streak than ``max_consecutive_errors``: enough pairs for the streak alone to be
      significant (``thresholds.Thresholds.failing_streak``).

    Warm-up requests count for the stop rules: a hanging candidate hangs in the warm-up too.
    The streaks live in ``obs`` (``pair_streaks``), so a streak that began in the warm-up's run
    goes on in the measured one.
    A sample that arrives after ``run`` returned is counted in ``obs.late``, not kept.
    """

    def __init__(
        self,
        connect: Callable[[Arm, str], HttpClient],
        obs: Observations,
        *,
        pods: Mapping[Arm, Sequence[str]] | None = None,
        path_every: int = 0,
        concurrency: int,
        request_timeout: float,
        max_consecutive_errors: int,
        seed: int | None,
        min_duration: float = 0.0,
        canary_failing_streak: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        # A new client for a pod of an arm: each worker has its own (its own connections).
        self.connect, self.obs = connect, obs
        self.pods: Mapping[Arm, Sequence[str]] = pods or {arm: ("",) for arm in ARMS}
        self.path_every = path_every
        self.concurrency = concurrency
        self.request_timeout = request_timeout
        self.max_consecutive_errors = max_consecutive_errors
        self.canary_failing_streak = max(max_consecutive_errors, canary_failing_streak or 0)
        self.seed = seed
        self.progress = progress
        # Requests are spread over at least this long: latency noise comes in bursts (another
        # process takes the CPU for a while), and 200 requests sent in 2 s would sample one
        # burst, on one arm more than the other; over 20 s both arms see many.
        self.min_duration = min_duration
        self._t0 = 0.0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self._next = 0
        self._plan: list[tuple[str, bool]] = []
        self._deadline = 0.0
        self._no_answer: dict[Arm, int] = dict.fromkeys(ARMS, 0)

    def run(self, schedule: list[tuple[str, bool]], *, deadline: float) -> None:
        """Send every planned request to both arms; returns when done or stopped."""
        self._plan, self._deadline = schedule, deadline
        self._t0 = time.monotonic()
        if self.obs.traffic_started is None:  # the warm-up's run, then the measured one
            self.obs.traffic_started = time.time()
        threads = [
            threading.Thread(target=self._work, args=(k,), name=f"rolloutgate-canary-{k}")
            for k in range(self.concurrency)
        ]
        for t in threads:
            t.daemon = True
            t.start()
        last = time.monotonic()
        try:
            while any(t.is_alive() for t in threads) and not self.stop.is_set():
                # Short joins keep the main thread responsive to Ctrl+C and SIGTERM.
                for t in threads:
                    t.join(timeout=0.2)
                if time.monotonic() >= deadline:
                    # Also when every worker is stuck in a request that outlives its timeout.
                    with self._lock:
                        self._stop_at_deadline()
                if self.progress and time.monotonic() - last >= 5:
                    last = time.monotonic()
                    self.progress(f"canary traffic: {self._next}/{len(schedule)} requests per arm")
        finally:
            self.stop.set()
            # A request in flight ends within its timeout (once more for the second arm).
            until = time.monotonic() + 2 * self.request_timeout + 1
            for t in threads:
                t.join(timeout=max(0.0, until - time.monotonic()))
            with self._lock:
                # The judgement reads a fixed set: what comes back later is only counted.
                self._closed = True

    def _take(self) -> tuple[int, str, bool] | None:
        with self._lock:
            if self.stop.is_set():
                return None
            if time.monotonic() >= self._deadline:
                self._stop_at_deadline()
                return None
            if self._next >= len(self._plan):
                return None
            item_id, warm = self._plan[self._next]
            self._next += 1
            return self._next - 1, item_id, warm

    def _stop_at_deadline(self) -> None:
        """Stop, saying how far the traffic got (once); the caller holds the lock."""
        if not self.stop.is_set():
            self.obs.stopped.append(
                f"traffic deadline reached after {self._next} of {len(self._plan)} requests per arm"
            )
            self.stop.set()

    def _work(self, k: int) -> None:
        rng = random.Random(None if self.seed is None else self.seed * 1000 + k)
        clients = {(arm, pod): self.connect(arm, pod) for arm in ARMS for pod in self.pods[arm]}
        try:
            while (entry := self._take()) is not None:
                index, item_id, warm = entry
                slot = self._t0 + index * self.min_duration / max(1, len(self._plan))
                if self.stop.wait(timeout=max(0.0, slot - time.monotonic())):
                    return
                order = list(ARMS)
                rng.shuffle(order)
                chosen = self.pods_for(index)
                final: dict[Arm, Sample] = {}
                # Both arms, even when a stop comes in between: a pair is judged whole.
                for arm in order:
                    client = clients[(arm, chosen[arm])]
                    sample = self._send(client, arm, item_id, warm, index, chosen[arm])
                    if sample.outcome == "reset":
                        # The connection broke: maybe the port-forward's doing, not the
                        # model's. Kept as "transport" (not judged); once more, on a new one.
                        self._record(replace(sample, outcome="transport"))
                        sample = self._send(client, arm, item_id, warm, index, chosen[arm])
                    self._record(sample)
                    final[arm] = sample
                self._pair(final)
                if self.path_every and not warm and index % self.path_every == 0:
                    for arm in order:
                        self._probe(clients[(arm, chosen[arm])], arm)
        finally:
            for c in clients.values():
                c.close()

    def pods_for(self, index: int) -> dict[Arm, str]:
        """The pods of both arms the ``index``-th request goes to: round-robin on the baseline,
        and on the canary round-robin too but ``_canary_step`` pods further every full round of
        the baseline, so that each pair of pods comes up equally often and neither arm sends
        two requests in a row to one pod (the workers send requests next to each other in the
        plan at the same time: a pod that got them together would queue one behind the other
        and measure that; canary17e's pattern sent 3 in a row to each canary pod, and 37 % of
        the canary pods' requests overlapped another on the same pod, 0.1 % on the
        baseline's)."""
        base, can = self.pods["baseline"], self.pods["canary"]
        rounds, slot = divmod(index, len(base))
        return {
            "baseline": base[slot],
            "canary": can[(slot + rounds * _canary_step(len(base), len(can))) % len(can)],
        }

    def _probe(self, client: HttpClient, arm: Arm) -> None:
        """Time a request that does no model work: the path's share of a prediction's time."""
        start = time.perf_counter()
        try:
            client.live()
        except EndpointUnreachable:
            return
        elapsed = (time.perf_counter() - start) * 1000
        with self._lock:
            self.obs.path_ms.setdefault(arm, []).append(elapsed)

    def _send(
        self, client: HttpClient, arm: Arm, item_id: str, warm: bool, index: int, pod: str
    ) -> Sample:
        item = self.obs.items[item_id]
        at = round(time.time() - (self.obs.traffic_started or time.time()), 6)
        start = time.perf_counter()
        try:
            response = client.send(item.request)
        except EndpointUnreachable as e:
            elapsed = (time.perf_counter() - start) * 1000
            outcome: Outcome = "timeout" if isinstance(e, AnswerTimedOut) else "reset"
            error = str(e)[:300]
            return Sample(
                item_id, arm, outcome, elapsed, warm, error=error, index=index, at=at, pod=pod
            )
        elapsed = (time.perf_counter() - start) * 1000
        try:
            answer: Any = response.json()
        except ValueError:
            answer = None
        status = response.status_code
        if item.answered(status):
            return Sample(
                item_id, arm, "ok", elapsed, warm, status, answer, index=index, at=at, pod=pod
            )
        said = answer.get("error") if isinstance(answer, dict) else None
        error = str(said or response.text)[:300]
        return Sample(item_id, arm, "http", elapsed, warm, status, answer, error, index, at, pod)

    def _record(self, sample: Sample) -> None:
        with self._lock:
            if self._closed:
                self.obs.late += 1
                return
            self.obs.samples.append(sample)
            arm = sample.arm
            broken = sample.outcome in ("transport", "reset")
            self._no_answer[arm] = self._no_answer[arm] + 1 if broken else 0
            worst = max(self.obs.consecutive_errors[arm], self._no_answer[arm])
            self.obs.consecutive_errors[arm] = worst

    def _pair(self, final: dict[Arm, Sample]) -> None:
        """Count the pair toward the stop rules (see the class's docstring)."""
        base, can = final["baseline"], final["canary"]
        failed = {
            "path": not _answered(base) and not _answered(can),
            "baseline": base.outcome in ARM_ERRORS and can.ok,
            "canary": can.outcome in ARM_ERRORS and base.ok,
        }
        with self._lock:
            if self._closed:
                return
            for rule, hit in failed.items():
                streaks = self.obs.pair_streaks
                streaks[rule] = streaks.get(rule, 0) + 1 if hit else 0
            if self.stop.is_set():
                return
            n = self.obs.pair_streaks
            if n["canary"] >= self.canary_failing_streak:
                self.obs.canary_failing = (
                    f"{n['canary']} requests in a row failed on the canary and were answered "
                    f"by the baseline (last: {_said(can)})"
                )
                self.stop.set()
            elif n["path"] >= self.max_consecutive_errors:
                self.obs.stopped.append(
                    f"stopped: {n['path']} requests in a row got no answer from either arm "
                    f"(the measuring path; last: {can.error})"
                )
                self.stop.set()
            elif n["baseline"] >= self.max_consecutive_errors:
                self.obs.stopped.append(
                    f"stopped: {n['baseline']} requests in a row failed on the baseline and "
                    f"were answered by the canary (last: {_said(base)})"
                )
                self.stop.set()


def _canary_step(base: int, canary: int) -> int:
    """How many canary pods further each round of the baseline's moves: one that meets every
    canary pod with every baseline pod (coprime with ``canary``) and does not give the last
    request of a round and the first of the next the same canary pod (a step of ``base`` - 1);
    1 when no step does both (2 pods on each arm: a pod then gets two in a row once a
    round)."""
    for step in range(1, canary + 1):
        if math.gcd(step, canary) == 1 and (step - (base - 1)) % canary != 0:
            return step
    return 1


def _said(sample: Sample) -> str:
    """What an arm answered, for a message."""
    if sample.outcome == "http":
        return f"HTTP {sample.status}: {sample.error}"
    return f"{sample.outcome}: {sample.error}"


def _answered(sample: Sample) -> bool:
    """An HTTP answer came back (any status)."""
    return sample.outcome in ("ok", "http")
