"""`python -m bench.protocols`: the gate's checks over gRPC against the same checks over HTTP.

The iris example (MLServer serves the Open Inference Protocol on both ports) is released once
with the gate (one replica, a namespace of its own); then, through a port-forward straight to
its pod for each port, the same golden file is checked over REST (protocol v2, port 8080) and
over gRPC (protocol grpc, port 8081), alternately, `--runs` times: one pass of every health
check and golden case (what each replica is asked), and the latency of `--requests` sequential
ModelInfer requests. Prints a table, writes JSON (default reports/bench-protocols.json); the
namespace is deleted afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.cluster import KUBECONFIG, KUBECTL, REPO


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.protocols", description=__doc__)
    p.add_argument("--runs", type=int, default=20, help="check passes per protocol (default 20)")
    p.add_argument("--requests", type=int, default=200, help="ModelInfer requests per latency run")
    p.add_argument(
        "--output", type=Path, default=Path("reports/bench-protocols.json"), help="JSON path"
    )
    return p.parse_args(argv)


def release(namespace: str, manifests: Path) -> None:
    """iris v2 at one replica, by the gate itself (it proves the release works first)."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cluster=local",
         f"--namespace={namespace}", f"--manifests={manifests}", "--image-tag=v2",
         f"--gate-report={manifests.parent / 'gate.json'}"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"the release for the benchmark failed:\n{proc.stdout[-3000:]}")


def one_replica(target: Path) -> Path:
    import shutil

    shutil.copytree(REPO / "fixtures" / "manifests", target)
    deployment = target / "deployment.yaml"
    # A minute of liveness grace is too little for a start on a busy shared node; what is
    # measured here is the checks, not the start.
    text = deployment.read_text().replace("replicas: 3", "replicas: 1")
    deployment.write_text(text.replace("failureThreshold: 6", "failureThreshold: 30"))
    return target


def measure(args: argparse.Namespace, namespace: str) -> dict[str, Any]:
    from rolloutgate import kube
    from rolloutgate.checks import cases, httpclient
    from rolloutgate.checks.latency import measure_latency, percentile
    from rolloutgate.config import resolve
    from rolloutgate.kube.portforward import pod_forwards
    from rolloutgate.objects import is_ready

    cfg = resolve(
        {"rolloutgate_cluster": "local", "rolloutgate_namespace": namespace},
        env={},
        tool={"clusters": {"local": {"kubeconfig": str(KUBECONFIG), "context": "local"}}},
        rootdir=REPO,
        invocation_dir=REPO,
        list_contexts=lambda _k: ["local"],
    )
    golden = cases.load(REPO / "fixtures" / "golden" / "iris.json")
    goldens = {"http": golden, "grpc": dataclasses.replace(golden, protocol=_grpc())}
    api = kube.connect(str(KUBECONFIG), "local", timeout=10)
    pods = [
        p
        for p in kube.list_objects(api, "v1", "Pod", namespace)["items"]
        if is_ready(p) and not p["metadata"].get("deletionTimestamp")
    ]
    deadline = time.monotonic() + 60
    results: dict[str, Any] = {}
    with (
        pod_forwards(api, namespace, "iris", "http", pods, deadline=deadline) as http,
        pod_forwards(api, namespace, "iris", "grpc", pods, deadline=deadline) as grpc,
    ):
        urls = {"http": next(iter(http.values())), "grpc": next(iter(grpc.values()))}
        clients = {name: httpclient.client_for(urls[name], goldens[name], cfg) for name in urls}
        passes: dict[str, list[float]] = {name: [] for name in clients}
        for name, client in clients.items():  # warm: the first connection is not measured
            assert cases.verify(client, goldens[name]) == [], name
        for _ in range(args.runs):
            for name, client in clients.items():
                start = time.perf_counter()
                problems = cases.verify(client, goldens[name])
                passes[name].append((time.perf_counter() - start) * 1000)
                assert problems == [], (name, problems)
        checks = len(golden.cases) + len(client.health)
        request = golden.cases[0].request
        for name, client in clients.items():
            latency = measure_latency(lambda c=client: c.send(request), args.requests)
            results[name] = {
                "checks_per_pass": checks,
                "pass_ms_median": round(statistics.median(passes[name]), 2),
                "pass_ms_min": round(min(passes[name]), 2),
                "pass_ms_max": round(max(passes[name]), 2),
                "infer_p50_ms": round(percentile(latency.samples_ms, 50), 2),
                "infer_p95_ms": round(percentile(latency.samples_ms, 95), 2),
                "infer_errors": len(latency.errors),
            }
            client.close()
    api.close()  # type: ignore[no-untyped-call]
    return results


def _grpc() -> Any:
    from rolloutgate.checks.protocols import GRPC

    return GRPC


def main(argv: list[str]) -> int:
    args = parse(argv)
    namespace = f"bench-proto-{uuid.uuid4().hex[:6]}"
    work = Path("/tmp") / namespace
    work.mkdir(parents=True)
    started = time.time()
    try:
        release(namespace, one_replica(work / "manifests"))
        results = measure(args, namespace)
    finally:
        subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(KUBECONFIG), "delete", "namespace", namespace,
             "--wait=false"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    print(f"{'protocol':<10}{'one pass (median [min..max])':<34}{'ModelInfer p50':>16}{'p95':>10}")
    for name, r in results.items():
        span = f"{r['pass_ms_median']} ms [{r['pass_ms_min']}..{r['pass_ms_max']}]"
        print(f"{name:<10}{span:<34}{r['infer_p50_ms']:>13} ms{r['infer_p95_ms']:>7} ms")
    print(f"(one pass: {results['http']['checks_per_pass']} checks, health and golden cases; "
          f"{args.runs} passes and {args.requests} requests per protocol, one iris pod, "
          "through a port-forward)")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({"started": started, "runs": args.runs, "results": results}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
