"""`python -m bench.canary_cluster`: counted real canary runs: time to verdict, A/A false alarms,
slow-down detection. (`python -m bench.canary` simulates the same rules' error rates.)

Run from the repository root on the local cluster (`make cluster-up load-images`). In a fresh
namespace it deploys v1 with the gate, then runs the canary as a user would
(`python -m pytest --cluster=local --canary --image-tag=TAG`), each run with fresh arms:

- ``v2`` (a good new model): time from start to verdict at the canary's default size;
- ``v1`` against live v1 (A/A): how often a run that should pass does not (false alarms);
- ``slower`` (~25 % slower than v1): how often the latency metric catches it;
- ``retrained`` (an equally good retrain, 4 of 150 rows differ): its verdicts.

``--tags`` chooses (default v1,slower,retrained), alternating, ``--runs`` each. The machine's
load average is recorded before and after every run (the target holds "even while the machine
is busy": the table says how busy it was). ``--busy`` keeps CPU-bound processes beside the
cluster; ``--churn`` keeps model servers starting beside the arms, as other modules' gates and
canaries do under `make test`.

Prints a table and writes JSON (default reports/bench-canary.json); docs/canary.md has figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rolloutgate.canary.config import RunDefaults

REPO = Path(__file__).resolve().parent.parent
NAMESPACE_PREFIX = "bench-canary"
# A restart of the churn Deployment this often: MLServer takes 5-15 s to start on the busy
# 2-core node, so its pods are starting most of the time.
CHURN_PERIOD_S = 20.0


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.canary_cluster", description=__doc__)
    p.add_argument("--runs", type=int, default=20, help="runs of each tag (default 20)")
    p.add_argument(
        "--tags", default="v1,slower,retrained", help="tags judged against live v1, alternating"
    )
    p.add_argument("--verdict-runs", type=int, default=3, help="v2 runs timed (default 3)")
    p.add_argument(
        "--requests",
        type=int,
        default=RunDefaults.requests,
        help=f"measured requests per arm (default {RunDefaults.requests}, the canary's)",
    )
    p.add_argument(
        "--reach",
        choices=("auto", "pod-ip", "port-forward"),
        help="canary.reach of every run (default: the canary's, auto: port-forwards from here)",
    )
    p.add_argument(
        "--busy",
        type=int,
        default=0,
        metavar="N",
        help="keep N CPU-bound processes running on this machine for the whole benchmark "
        "(a busy node: on 2 cores, N=8 holds the load average near 10)",
    )
    p.add_argument(
        "--churn",
        type=int,
        default=0,
        metavar="N",
        help=f"keep N pods of the example's v1 image restarting every {CHURN_PERIOD_S:g} s in a "
        "namespace of their own for the whole benchmark (pods starting beside the arms)",
    )
    p.add_argument("--namespace", help="reuse this namespace (v1 must be live there)")
    p.add_argument("--output", type=Path, default=Path("reports/bench-canary.json"))
    args = p.parse_args(argv)
    if min(args.runs, args.verdict_runs, args.busy, args.churn) < 0:
        p.error("--runs, --verdict-runs, --busy and --churn must be >= 0")
    return args


MANIFESTS: Path | None = None  # the one-replica copy of the manifests (see one_replica)


def one_replica(out: Path) -> Path:
    """The example's manifests with 1 replica instead of 3: the live release is only the
    canary's reference here, and a node shared with other jobs has little CPU to request."""
    import yaml

    target = out / "manifests"
    target.mkdir(parents=True, exist_ok=True)
    for f in (REPO / "fixtures" / "manifests").iterdir():
        docs = list(yaml.safe_load_all(f.read_text()))
        for d in docs:
            if isinstance(d, dict) and d.get("kind") == "Deployment":
                d["spec"]["replicas"] = 1
        (target / f.name).write_text(yaml.safe_dump_all(docs))
    return target


def pytest_argv(namespace: str, *args: str) -> list[str]:
    manifests = [f"--manifests={MANIFESTS}"] if MANIFESTS else []
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--cluster=local",
        f"--namespace={namespace}",
        *manifests,
        *args,
    ]


def deploy_v1(namespace: str, out: Path, attempts: int = 3) -> None:
    """The live release the canaries compare against. Retried: on a machine shared with other
    jobs the gate's first request through a fresh port-forward is sometimes dropped, and that
    is not what this benchmark measures."""
    for attempt in range(1, attempts + 1):
        proc = subprocess.run(
            pytest_argv(namespace, "--image-tag=v1", f"--gate-report={out / 'v1-gate.json'}"),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode == 0:
            return
        print(f"deploying v1, attempt {attempt}: exit {proc.returncode}", flush=True)
    raise SystemExit(f"deploying v1 failed:\n{(proc.stdout + proc.stderr)[-3000:]}")


REACH: str | None = None  # --reach: ROLLOUTGATE_CANARY_REACH of every canary run


@contextmanager
def busy(processes: int) -> Iterator[None]:
    """``processes`` CPU-bound local processes for as long as the context is open: the node as
    busy as other jobs made it when the targets were set (load average >= 8), reproducibly.
    They touch nothing but their own CPU time."""
    # Each ends by itself once its parent is gone (a benchmark killed without its finally).
    burn = "import os\nparent = os.getppid()\nwhile os.getppid() == parent: pass"
    burners = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(processes)]
    try:
        yield
    finally:
        for b in burners:
            b.kill()
        for b in burners:
            b.wait(timeout=30)


@contextmanager
def churn(pods: int, namespace: str, out: Path) -> Iterator[None]:
    """``pods`` model servers (the example's Deployment, renamed) in ``namespace``, restarted
    every ``CHURN_PERIOD_S`` for as long as the context is open; the namespace is deleted
    after. They share the node's CPU with the arms as other tests' pods do under `make test`,
    and start while the arms start and serve."""
    if not pods:
        yield
        return
    import yaml

    (deployment,) = [
        d
        for d in yaml.safe_load_all(
            (REPO / "fixtures" / "manifests" / "deployment.yaml").read_text()
        )
        if isinstance(d, dict) and d.get("kind") == "Deployment"
    ]
    labels = {"app.kubernetes.io/name": "churn"}
    deployment["metadata"] = {"name": "churn", "namespace": namespace, "labels": labels}
    deployment["spec"]["replicas"] = pods
    deployment["spec"]["selector"] = {"matchLabels": labels}
    deployment["spec"]["template"]["metadata"]["labels"] = labels
    manifest = out / "churn.yaml"
    manifest.write_text(yaml.safe_dump(deployment))
    kubectl("create", "namespace", namespace)
    kubectl("apply", "-f", str(manifest))
    stop = threading.Event()

    def restart() -> None:
        while not stop.wait(CHURN_PERIOD_S):
            kubectl("-n", namespace, "rollout", "restart", "deployment/churn")

    thread = threading.Thread(target=restart, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=150)
        kubectl("delete", "namespace", namespace, "--wait=false")


def canary(namespace: str, tag: str, requests: int, out: Path, k: int) -> dict[str, Any]:
    """One judged canary run. A run the cluster could not serve (an arm unschedulable on the
    shared node, the API server down) is not a sample of the canary's judgement: it is retried
    after a pause, and the retries are counted."""
    waited = 0
    for _ in range(20):
        result = canary_once(namespace, tag, requests, out, k)
        reason = str(result["reason"])
        # Not about the candidate: no room on the shared node, or the API server restarting
        # (other jobs on this machine restart it to test their own code).
        environment = "could not be scheduled" in reason or "ClusterUnreachable" in reason
        if result["verdict"] not in ("inconclusive", None) or not environment:
            break
        waited += 1
        time.sleep(30)
    result["unschedulable_retries"] = waited
    return result


def canary_once(namespace: str, tag: str, requests: int, out: Path, k: int) -> dict[str, Any]:
    """One canary run; its report plus the wall time of the whole process."""
    report = out / f"{tag}-{k}.json"
    env = {
        **os.environ,
        "ROLLOUTGATE_CANARY_HTML": str(out / f"{tag}-{k}.html"),
        "ROLLOUTGATE_CANARY_HISTORY": str(out / "history.jsonl"),
        **({"ROLLOUTGATE_CANARY_REACH": REACH} if REACH else {}),
    }
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    proc = subprocess.run(
        pytest_argv(
            namespace,
            "--canary",
            f"--image-tag={tag}",
            f"--canary-requests={requests}",
            f"--canary-report={report}",
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    wall = time.monotonic() - start
    load_after = os.getloadavg()[0]
    data = json.loads(report.read_text()) if report.exists() else {}
    metrics = {m["name"]: m for m in data.get("metrics", [])}
    latency = metrics.get("latency", {})
    figures = latency.get("figures") or {}
    return {
        "tag": tag,
        "exit_status": proc.returncode,
        "verdict": data.get("verdict"),
        "score": data.get("score"),
        "reason": data.get("reason"),
        "seconds_to_verdict": data.get("seconds_to_verdict"),
        "wall_s": round(wall, 2),
        "phases_s": data.get("phases_s"),
        "reach": (data.get("traffic") or {}).get("reach"),
        "latency_verdict": latency.get("verdict"),
        "median_ratio": figures.get("median_ratio"),
        "p_value": figures.get("p_value"),
        "median_baseline_ms": figures.get("median_baseline_ms"),
        "median_canary_ms": figures.get("median_canary_ms"),
        "ratio_low": figures.get("ratio_low"),
        "latency_source": figures.get("source"),
        # The traffic's extension for the latency's power (canary.max_duration): the look's
        # note, the requests measured per arm in all, the power at 1.1x of the judged windows.
        "latency_look": next(
            (n for n in data.get("notes", []) if n.startswith("canary latency after")), None
        ),
        "measured_per_arm": (
            ((data.get("traffic") or {}).get("per_arm") or {}).get("canary") or {}
        ).get("measured"),
        "latency_power": (figures.get("windows") or {}).get("power"),
        "load_average": [round(load_before, 2), round(load_after, 2)],
        "metrics": {n: m["verdict"] for n, m in metrics.items()},
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_tag: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_tag.setdefault(r["tag"], []).append(r)
    out: dict[str, Any] = {}
    for tag, rs in by_tag.items():
        ratios = [r["median_ratio"] for r in rs if r["median_ratio"] is not None]
        verdict_s = [r["seconds_to_verdict"] for r in rs if r["seconds_to_verdict"] is not None]
        measured = [r["measured_per_arm"] for r in rs if r.get("measured_per_arm")]
        powers = [
            r["latency_power"]["1.1"] for r in rs if (r.get("latency_power") or {}).get("1.1")
        ]
        out[tag] = {
            "runs": len(rs),
            "verdicts": {
                v: sum(1 for r in rs if r["verdict"] == v)
                for v in sorted({str(r["verdict"]) for r in rs})
            },
            "latency_fail": sum(1 for r in rs if r["latency_verdict"] == "fail"),
            "not_pass": sum(1 for r in rs if r["verdict"] != "pass"),
            "median_ratio": {
                "median": statistics.median(ratios) if ratios else None,
                "min": min(ratios) if ratios else None,
                "max": max(ratios) if ratios else None,
            },
            "seconds_to_verdict": {
                "median": statistics.median(verdict_s) if verdict_s else None,
                "max": max(verdict_s) if verdict_s else None,
            },
            "wall_s_median": statistics.median(r["wall_s"] for r in rs),
            "extended": sum(1 for r in rs if "sending" in (r.get("latency_look") or "")),
            "measured_per_arm": {
                "median": statistics.median(measured) if measured else None,
                "max": max(measured) if measured else None,
            },
            "power_at_1.1": {
                "median": statistics.median(powers) if powers else None,
                "at_least_0.9": sum(1 for x in powers if x >= 0.9),
                "of": len(powers),
            },
            "load_average": {
                "min": min(min(r["load_average"]) for r in rs),
                "max": max(max(r["load_average"]) for r in rs),
            },
        }
    return out


def table(summary: dict[str, Any]) -> str:
    lines = [
        f"{'tag':<8} {'runs':>4}  {'verdicts':<40} {'latency fail':>12} "
        f"{'median ratio (min-max)':>24} {'s to verdict (med/max)':>22} {'load avg':>10}"
    ]
    for tag, s in summary.items():
        r = s["median_ratio"]
        v = s["seconds_to_verdict"]
        ratio = (
            f"{r['median']:.3f} ({r['min']:.3f}-{r['max']:.3f})" if r["median"] is not None else "-"
        )
        secs = f"{v['median']:.1f}/{v['max']:.1f}" if v["median"] is not None else "-"
        load = f"{s['load_average']['min']:.1f}-{s['load_average']['max']:.1f}"
        lines.append(
            f"{tag:<8} {s['runs']:>4}  {json.dumps(s['verdicts']):<40} "
            f"{s['latency_fail']:>5}/{s['runs']:<6} {ratio:>24} {secs:>22} {load:>10}"
        )
    return "\n".join(lines)


def kubectl(*args: str) -> None:
    kubectl_bin = Path("~/.cache/rolloutgate/k8s/v1.34.4/bin/kubectl").expanduser()
    subprocess.run(
        [str(kubectl_bin), "--kubeconfig", str(REPO / ".cluster" / "kubeconfig"), *args],
        capture_output=True,
        timeout=120,
        check=False,
    )


def main(argv: list[str]) -> None:
    args = parse(argv)
    out = args.output.with_suffix("")
    out.mkdir(parents=True, exist_ok=True)
    global MANIFESTS, REACH
    MANIFESTS = one_replica(out)
    REACH = args.reach
    namespace = args.namespace or f"{NAMESPACE_PREFIX}-{os.getpid()}"
    if not args.namespace:
        print(f"deploying v1 with the gate in {namespace}", flush=True)
        deploy_v1(namespace, out)
    runs: list[dict[str, Any]] = []
    tags = [t for t in args.tags.split(",") if t]
    plan = ["v2"] * args.verdict_runs + [t for _ in range(args.runs) for t in tags]
    if args.busy:
        print(f"{args.busy} CPU-bound processes keep this machine busy throughout", flush=True)
    if args.churn:
        print(
            f"{args.churn} model servers restart every {CHURN_PERIOD_S:g} s throughout", flush=True
        )
    try:
        with busy(args.busy), churn(args.churn, f"{namespace}-churn", out):
            for k, tag in enumerate(plan):
                r = canary(namespace, tag, args.requests, out, k)
                runs.append(r)
                print(
                    f"[{k + 1}/{len(plan)}] {tag}: {r['verdict']} (exit {r['exit_status']}), "
                    f"latency {r['latency_verdict']} ratio {r['median_ratio']} "
                    f"p {r['p_value']}, verdict after {r['seconds_to_verdict']} s "
                    f"(rollout {(r['phases_s'] or {}).get('rollout')} s, traffic "
                    f"{(r['phases_s'] or {}).get('traffic')} s), wall {r['wall_s']} s, "
                    f"load {r['load_average']}, reach {r['reach']}",
                    flush=True,
                )
                # Partial results survive an interrupted benchmark.
                data = {
                    "machine": machine(),
                    "reach": args.reach,
                    "busy": args.busy,
                    "churn": args.churn,
                    "runs": runs,
                    "summary": summarise(runs),
                }
                args.output.write_text(json.dumps(data, indent=2) + "\n")
    finally:
        if not args.namespace:
            kubectl("delete", "namespace", namespace, "--wait=false")
    print(table(summarise(runs)))
    print(f"written: {args.output}")


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "memory": Path("/proc/meminfo").read_text().splitlines()[0],
        "python": platform.python_version(),
    }


if __name__ == "__main__":
    main(sys.argv[1:])
