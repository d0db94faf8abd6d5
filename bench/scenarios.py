"""The measured cases. Each runs in fresh `bench-<random>` namespaces, deleted afterwards.

- good: v1 → v2, the gate, `kubectl rollout status` and `helm upgrade --install --wait` on the
  same Deployment; then (optionally) `crash` through the gate alone on the same namespace, to
  see detection and rollback grow with the replica count.
- failure: a bad tag (crash, unready, missing) at a progress deadline. The gate rolls back when it
  fails, which would end kubectl's and Helm's waits with a false success (the template goes
  back to v1), so it runs in a twin namespace set up identically at the same moment: the gate in
  one, kubectl and Helm on the other's Deployment. Each latency is measured against its own
  namespace's first failure.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from threading import Semaphore
from typing import Any

from kubernetes.client import ApiClient

from bench import cluster, tools
from bench.observer import Observer, Seen, Signal

# First-failure signals per bad tag: what "the first failing container status" is for each.
FAILURE_KINDS = {
    "crash": {"terminated", "waiting:CrashLoopBackOff", "event:BackOff"},
    "missing": {"waiting:ErrImagePull", "waiting:ImagePullBackOff", "event:Failed"},
    "unready": {"event:Unhealthy"},
}
HELM_INSTALL_TIMEOUT_S = 60
FAILURE_REPLICAS = 1
# After a capped verdict the gate still rolls back and re-checks: let it, under this deadline.
GATE_AFTER_VERDICT_S = 180


@dataclass(frozen=True)
class Settings:
    helm: bool
    cap_s: float  # failure waits: from the tool's start to "> cap"
    workdir: Path


def setup_timeout_s(replicas: int) -> float:
    # ~4 s of CPU per MLServer start on 2 shared cores, plus image unpacking on first use.
    return 120 + 8 * replicas


def good_cap_s(replicas: int) -> float:
    # maxSurge 1: pods are replaced one at a time, ~5-10 s each here.
    return 120 + 15 * replicas


def _workdir(settings: Settings, ns: str, name: str) -> Path:
    path = settings.workdir / ns / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _setup(api: ApiClient, settings: Settings, ns: str, variant: cluster.Variant) -> Path | None:
    """v1 of the example, rolled out; through Helm when it is measured here (it must own the
    release to upgrade it). Returns the chart, if any."""
    work = _workdir(settings, ns, "setup")
    chart = None
    if settings.helm:
        chart = tools.write_chart(cluster.render(variant, tools.TAG_PLACEHOLDER), work / "chart")
        proc = tools.helm_upgrade(ns, chart, "v1", work / "helm-install.log", wait_s=None)
        if not proc.wait(time.time() + HELM_INSTALL_TIMEOUT_S) or proc.rc != 0:
            proc.stop(5)
            raise RuntimeError(f"helm install in {ns} failed: {proc.log.read_text()[-800:]}")
    else:
        cluster.apply(api, ns, cluster.render(variant, "v1"))
    cluster.wait_rolled_out(api, ns, setup_timeout_s(variant.replicas))
    return chart


def _observe(api: ApiClient, ns: str, tag: str, horizon_s: float) -> Observer:
    generation = cluster.deployment(api, ns)["metadata"]["generation"]
    return Observer(api, ns, tag, time.monotonic() + horizon_s).start(generation)


def _finish(proc: tools.Proc, cap_at: float) -> None:
    if not proc.wait(cap_at):
        proc.capped = True
        proc.stop(10)


def _finish_gate(proc: tools.Proc, work: Path, cap_at: float) -> None:
    """Past the cap without a rollout verdict: SIGTERM, which the gate answers by rolling back."""
    if proc.wait(cap_at):
        return
    if tools.gate_rollout(work) is None:
        proc.capped = True
        proc.stop(GATE_AFTER_VERDICT_S)
    elif not proc.wait(cap_at + GATE_AFTER_VERDICT_S):
        proc.stop(10)


def _tool_result(proc: tools.Proc, verdict_at: float | None, since: float | None) -> dict[str, Any]:
    """`since`: the instant latencies start from. A capped wait gives a lower bound."""
    capped = proc.capped or verdict_at is None
    # Capped: the latency is at least the time from `since` to the stop.
    end = verdict_at if not capped else (proc.stopped_at or proc.exited or time.time())
    return {
        "rc": proc.rc,
        "started": proc.started,
        "verdict_at": None if capped else verdict_at,
        "exited": proc.exited,
        "capped": capped,
        "latency_s": None if since is None or end is None else round(end - since, 3),
    }


def _gate_result(
    proc: tools.Proc, work: Path, since: float | None, since_api: float | None
) -> dict[str, Any]:
    probe, report = tools.gate_results(work)
    rollout = tools.gate_rollout(work) or {}
    phases = report.get("phases_s", {})
    verdict_at = verdict_instant(rollout, phases)
    if proc.capped:
        verdict_at = None
    result = _tool_result(proc, verdict_at, since)
    requests = probe.get("requests", [])
    start, end = probe.get("rollout_start"), probe.get("rollout_end")
    rollback = report.get("rollback", {})
    result.update(
        {
            "latency_api_s": _minus(verdict_at, since_api),
            "exit_latency_s": _minus(proc.exited, since),
            "rollout_outcome": rollout.get("outcome"),
            "report_verdict": report.get("verdict"),
            "cause": str(report.get("cause", ""))[:300],
            "phases_s": phases,
            "rollback": rollback,
            "rollback_s": _rollback_s(phases),
            # A failed rollout's restore is submitted at its verdict, the diagnostics beside it.
            "verdict_to_restore_s": _minus(rollback.get("restored_at"), verdict_at),
            "verdict_to_verified_s": _minus(rollback.get("verified_at"), verdict_at),
            # The restored pods Ready (the end of the rollback's rollout) → verified.
            "restored_to_verified_s": phases.get("rollback_verify"),
            "verdict_to_exit_s": _minus(proc.exited, verdict_at),
            "client_requests": len(requests),
            "client_requests_rollout": sum(
                1
                for r in requests
                if start is not None and end is not None and start <= r["t"] <= end
            ),
            "vm_hwm_kib": probe.get("vm_hwm_kib"),
        }
    )
    return result


def verdict_instant(rollout: dict[str, Any], phases: dict[str, float]) -> float | None:
    """The gate's rollout verdict (wall clock): the end of its report's ``rollout`` phase,
    counted from the rollout fixture's start (the phase starts within a millisecond of it).
    Not the fixture's end: a failed rollout submits the restore before the fixture fails."""
    start, took = rollout.get("start"), phases.get("rollout")
    if start is not None and took is not None:
        return float(start) + float(took)
    end = rollout.get("end")
    return float(end) if end is not None else None


def _rollback_s(phases: dict[str, float]) -> float | None:
    """Failure verdict → previous release restored, rolled out and verified (report timings)."""
    parts = [phases.get(k) for k in ("rollback", "rollback_rollout", "rollback_verify")]
    return round(sum(p for p in parts if p is not None), 3) if phases.get("rollback") else None


def _minus(a: float | None, b: float | None) -> float | None:
    return round(a - b, 3) if a is not None and b is not None else None


def _last_ready(seen: Seen) -> tuple[Signal | None, Signal | None]:
    """The last new pod to become Ready: by the watch (sub-second) and by the condition (1 s)."""
    signals = list(seen.ready.values())
    if not signals:
        return None, None
    by_api = [s for s in signals if s.api_time is not None]
    return max(signals, key=lambda s: s.seen), max(by_api, key=lambda s: s.api_time or 0.0)


def _first_failure(seen: Seen, tag: str) -> tuple[Signal | None, float | None]:
    """The first failing status or event of the new pods; and the earliest API time for it."""
    signals = [s for s in seen.failures if s.kind in FAILURE_KINDS[tag]]
    if not signals:
        return None, None
    api_times = [s.api_time for s in signals if s.api_time is not None]
    return min(signals, key=lambda s: s.seen), min(api_times) if api_times else None


def good(api: ApiClient, settings: Settings, replicas: int, crash_after: bool) -> dict[str, Any]:
    """v1 → v2 with every tool watching; then `crash` through the gate alone if asked."""
    variant = cluster.Variant(replicas, 600)
    ns = cluster.new_namespace(api, f"good-{replicas}")
    result: dict[str, Any] = {"case": "good", "replicas": replicas, "namespace": ns}
    try:
        chart = _setup(api, settings, ns, variant)
        manifests = cluster.write_manifests(
            cluster.render(variant, "v1"), settings.workdir / ns / "m"
        )
        work = _workdir(settings, ns, "good")
        cap = good_cap_s(replicas)
        obs = _observe(api, ns, "v2", cap + 60)
        gate = tools.gate(ns, "v2", manifests, work, 600, [])
        cap_at = gate.started + cap
        # kubectl started before the apply would report the previous rollout as done.
        obs.applied.wait(timeout=60)
        kubectl = tools.kubectl_rollout_status(ns, work / "kubectl.log")
        helm = None
        if chart is not None:
            helm = tools.helm_upgrade(ns, chart, "v2", work / "helm.log", wait_s=600)
        for proc in (kubectl, helm):
            if proc is not None:
                _finish(proc, cap_at)
        _finish_gate(gate, work, cap_at)
        seen = obs.stop()
        last, last_api = _last_ready(seen)
        since = last.seen if last else None
        result["last_ready"] = {
            "watch": since,
            "api": last_api.api_time if last_api else None,
            "pods_ready": len(seen.ready),
        }
        result["applied_at"] = seen.applied
        result["observer_errors"] = obs.errors[:5]
        result["gate"] = _gate_result(gate, work, since, last_api.api_time if last_api else None)
        result["kubectl"] = _tool_result(kubectl, kubectl.exited, since)
        result["kubectl"]["latency_api_s"] = _minus(kubectl.exited, result["last_ready"]["api"])
        result["kubectl"]["client_requests"] = tools.kubectl_requests(kubectl.log)
        if helm is not None:
            result["helm"] = _tool_result(helm, helm.exited, since)
            result["helm"]["latency_api_s"] = _minus(helm.exited, result["last_ready"]["api"])
        if crash_after:
            result["crash_after"] = _gate_only_failure(api, settings, ns, manifests, "crash")
    except Exception as e:  # one broken case must not lose the others' figures
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        cluster.delete_namespace(api, ns)
    return result


def _gate_only_failure(
    api: ApiClient, settings: Settings, ns: str, manifests: Path, tag: str
) -> dict[str, Any]:
    work = _workdir(settings, ns, tag)
    obs = _observe(api, ns, tag, settings.cap_s + GATE_AFTER_VERDICT_S)
    gate = tools.gate(ns, tag, manifests, work, 600, [])
    _finish_gate(gate, work, gate.started + settings.cap_s)
    seen = obs.stop()
    first, first_api = _first_failure(seen, tag)
    return {
        "tag": tag,
        "first_failure": _signal(first, first_api),
        "gate": _gate_result(gate, work, first.seen if first else None, first_api),
    }


def _signal(sig: Signal | None, api_time: float | None) -> dict[str, Any] | None:
    if sig is None:
        return None
    return {"watch": sig.seen, "api": api_time, "kind": sig.kind, "what": sig.what[:200]}


def failure(
    api: ApiClient, settings: Settings, tag: str, deadline_s: int, setup_slots: Semaphore
) -> dict[str, Any]:
    """A bad tag at progress deadline `deadline_s`: the gate in one namespace, kubectl and Helm
    in its twin, started together.

    One replica: with maxSurge 1 / maxUnavailable 0 a failing rollout starts exactly one new pod
    whatever the count, so the count only changes the setup; and six cases x two namespaces x 3
    MLServer pods starting at once do not start on 2 cores (liveness probes kill them first).
    `setup_slots` bounds how many cases start their pods at the same time.
    """
    variant = cluster.Variant(FAILURE_REPLICAS, deadline_s)
    gate_ns = cluster.new_namespace(api, f"{tag}-{deadline_s}-gate")
    base_ns = cluster.new_namespace(api, f"{tag}-{deadline_s}-base")
    result: dict[str, Any] = {
        "case": "failure", "tag": tag, "deadline_s": deadline_s,
        "namespaces": {"gate": gate_ns, "base": base_ns},
    }  # fmt: skip
    try:
        with setup_slots:
            # The gate's namespace needs no Helm release: the benchmark applies v1 itself.
            cluster.apply(api, gate_ns, cluster.render(variant, "v1"))
            chart = _setup(api, settings, base_ns, variant)
            cluster.wait_rolled_out(api, gate_ns, setup_timeout_s(FAILURE_REPLICAS))
        manifests = cluster.write_manifests(
            cluster.render(variant, "v1"), settings.workdir / gate_ns / "m"
        )
        gate_work, base_work = _workdir(settings, gate_ns, tag), _workdir(settings, base_ns, tag)
        horizon = settings.cap_s + GATE_AFTER_VERDICT_S + 30
        gate_obs = _observe(api, gate_ns, tag, horizon)
        base_obs = _observe(api, base_ns, tag, horizon)
        gate = tools.gate(gate_ns, tag, manifests, gate_work, deadline_s, [])
        helm = None
        if chart is not None:
            helm = tools.helm_upgrade(
                base_ns, chart, tag, base_work / "helm.log", wait_s=deadline_s
            )
        else:
            cluster.apply(api, base_ns, cluster.render(variant, tag))
        base_obs.applied.wait(timeout=60)
        kubectl = tools.kubectl_rollout_status(base_ns, base_work / "kubectl.log")
        for proc in (kubectl, helm):
            if proc is not None:
                _finish(proc, proc.started + settings.cap_s)
        _finish_gate(gate, gate_work, gate.started + settings.cap_s)
        gate_seen, base_seen = gate_obs.stop(), base_obs.stop()
        g_first, g_api = _first_failure(gate_seen, tag)
        b_first, b_api = _first_failure(base_seen, tag)
        result["first_failure"] = {"gate": _signal(g_first, g_api), "base": _signal(b_first, b_api)}
        result["gate"] = _gate_result(gate, gate_work, g_first.seen if g_first else None, g_api)
        since = b_first.seen if b_first else None
        result["kubectl"] = _tool_result(kubectl, kubectl.exited, since)
        result["kubectl"]["client_requests"] = tools.kubectl_requests(kubectl.log)
        result["kubectl"]["output"] = kubectl.log.read_text(errors="replace").splitlines()[-1:]
        if helm is not None:
            result["helm"] = _tool_result(helm, helm.exited, since)
            result["helm"]["output"] = helm.log.read_text(errors="replace").splitlines()[-1:]
        result["observer_errors"] = (gate_obs.errors + base_obs.errors)[:5]
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        cluster.delete_namespace(api, gate_ns)
        cluster.delete_namespace(api, base_ns)
    return result


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="rolloutgate-bench-"))
