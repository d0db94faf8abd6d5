"""`python -m bench`: how fast the gate reaches a verdict, against kubectl and Helm.
`python -m bench fault-tests`: the fault tests run again and again, their figures tabulated
(bench/fault_tests.py). `python -m bench faults`: control-plane outages at each step of a
release, the gate's verdict and the cluster afterwards (bench/faults.py). `python -m bench
scale`: the checks at 1/10/100 replicas and 1/5/20 workloads (bench/scale.py). `python -m bench
startup`: only the plugin's start-up rows, no cluster (bench/overhead.py).

Run from the repository root on the local cluster (`make cluster-up load-images`). Prints a
table and writes JSON (default reports/bench.json). docs/benchmarks.md explains each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Semaphore
from typing import Any

from bench import audit, cluster, overhead, scenarios, summary, tools

BAD_TAGS = ("crash", "unready", "missing")
DEADLINES_S = (600, 60)
NAMESPACE_CLEANUP_S = 180


def _replicas(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected counts like 1,3,10,30, got {text!r}") from e
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected counts ≥ 1 like 1,3,10,30, got {text!r}")
    return values


def _tags(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in values if v not in BAD_TAGS]
    if not values or unknown:
        raise argparse.ArgumentTypeError(
            f"expected bad tags among {','.join(BAD_TAGS)}, got {text!r}"
        )
    return values


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    p.add_argument(
        "--quick", action="store_true", help="smoke check: 1 run, replicas 1,3, few start-ups"
    )
    p.add_argument(
        "--replicas", type=_replicas, default=[1, 3, 10, 30],
        help="replica counts of the good-rollout case (default 1,3,10,30)",
    )  # fmt: skip
    p.add_argument(
        "--cap", type=float, default=90.0,
        help="seconds a failure wait may take before it is recorded as '> cap' (default 90)",
    )  # fmt: skip
    p.add_argument("--no-helm", action="store_true", help="compare with kubectl alone")
    p.add_argument("--skip-failures", action="store_true", help="only the good-rollout cases")
    p.add_argument(
        "--skip-good", action="store_true", help="only the failure cases (no good rollout)"
    )
    p.add_argument(
        "--tags", type=_tags, default=list(BAD_TAGS),
        help=f"the failure cases' bad tags (default {','.join(BAD_TAGS)})",
    )  # fmt: skip
    p.add_argument("--startup-runs", type=int, default=20, help="pytest start-ups per variant")
    p.add_argument("--output", type=Path, default=Path("reports/bench.json"), help="JSON path")
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.replicas, args.startup_runs = 1, [1, 3], 5
    if args.runs < 1:
        p.error("--runs must be ≥ 1")
    if args.skip_good and args.skip_failures:
        p.error("--skip-good and --skip-failures leave nothing to run")
    return args


def machine() -> dict[str, Any]:
    def run(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError) as e:
            return f"unavailable: {e}"
        return (out.stdout or out.stderr).strip()

    meminfo = Path("/proc/meminfo").read_text().splitlines()[0]
    return {
        "nproc": os.cpu_count(),
        "memory": meminfo,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kubectl": run([str(cluster.KUBECTL), "version", "--client"]).splitlines()[0],
        "server": run(
            [str(cluster.KUBECTL), "--kubeconfig", str(cluster.KUBECONFIG), "version"]
        ).splitlines()[-1],
        "helm": run([str(tools.HELM), "version", "--short"]) if tools.HELM.exists() else None,
        "loadavg_start": Path("/proc/loadavg").read_text().strip(),
        "commit": tools.commit(),
    }


def _log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# Failure cases whose pods start at the same time (the waits themselves all overlap).
SETUP_SLOTS = 3


def run_once(
    api: Any, settings: scenarios.Settings, args: argparse.Namespace, index: int
) -> list[dict[str, Any]]:
    results = []
    for n in [] if args.skip_good else args.replicas:
        _log(f"run {index + 1}/{args.runs}: good rollout, {n} replicas")
        r = scenarios.good(api, settings, n, crash_after=True)
        _log(f"  {r.get('error') or 'done'}")
        results.append(r)
        _partial(args.output, r)
    if not args.skip_failures:
        cases = [(t, d) for t in args.tags for d in DEADLINES_S]
        _log(f"run {index + 1}/{args.runs}: {len(cases)} failure cases at once (twin namespaces)")
        # Side by side: the waits are long (up to the cap) and mostly idle, so they overlap.
        slots = Semaphore(SETUP_SLOTS)
        with ThreadPoolExecutor(max_workers=len(cases)) as pool:
            futures = [pool.submit(scenarios.failure, api, settings, t, d, slots) for t, d in cases]
            for f in futures:
                r = f.result()
                _log(f"  {r['tag']} {r['deadline_s']} s: {r.get('error') or 'done'}")
                results.append(r)
                _partial(args.output, r)
    return results


def _partial(output: Path, result: dict[str, Any]) -> None:
    """Every case's raw result as soon as it is done, so a stopped run keeps what it measured."""
    path = output.with_suffix(".partial.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(result, default=str) + "\n")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--resummarize"] and len(argv) == 2:
        return resummarize(Path(argv[1]))
    if argv[:1] == ["fault-tests"]:
        from bench import fault_tests

        return fault_tests.main(argv[1:])
    if argv[:1] == ["faults"]:
        from bench import faults

        return faults.main(argv[1:])
    if argv[:1] == ["scale"]:
        from bench import scale

        return scale.main(argv[1:])
    if argv[:1] == ["startup"]:
        return overhead.main(argv[1:])
    args = parse(argv)
    started = time.time()
    api = cluster.connect()
    helm_ok, helm_note = (
        (False, "disabled by --no-helm") if args.no_helm else tools.helm_available()
    )
    _log(helm_note)
    settings = scenarios.Settings(helm=helm_ok, cap_s=args.cap, workdir=scenarios.new_workdir())
    mark = audit.mark()
    info = machine()
    results: list[dict[str, Any]] = []
    for i in range(args.runs):
        results.extend(run_once(api, settings, args, i))
    namespaces = _namespaces(results)
    _log(f"counting requests in the audit log for {len(namespaces)} namespaces")
    splits = summary.audit_splits(results)
    counts = audit.count(mark, set(namespaces), splits) if mark else {}
    _log(f"pytest start-up, {args.startup_runs} runs per variant")
    startup = overhead.startup(args.startup_runs)
    stats = _figures(results, counts, startup)
    left = cluster.wait_namespaces_gone(api, namespaces, NAMESPACE_CLEANUP_S)
    info["loadavg_end"] = Path("/proc/loadavg").read_text().strip()
    out = {
        "command": "python -m bench " + " ".join(argv),
        "started": started,
        "duration_s": round(time.time() - started, 1),
        "machine": info,
        "helm": helm_note,
        "cap_s": args.cap,
        "figures": stats,
        "results": results,
        "audit": counts,
        "startup": startup,
        "namespaces_left": left,
        "workdir": str(settings.workdir),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1, default=str))
    print(summary.table(stats))
    print(f"\n{len(results)} cases, {out['duration_s']:.0f} s; JSON: {args.output}")
    errors = [r for r in results if "error" in r]
    for r in errors:
        print(f"error in {r['case']} {r.get('replicas') or r.get('tag')}: {r['error']}")
    if left:
        print(f"namespaces not yet deleted: {', '.join(left)}")
    return 1 if errors else 0


def _figures(
    results: list[dict[str, Any]], counts: dict[str, Any], startup: dict[str, list[float]]
) -> dict[str, dict[str, Any]]:
    fig = summary.collect(results, counts)
    for name, values in startup.items():
        for v in values:
            fig.add(f"startup/pytest --co, empty dir/{name}", v)
    return fig.stats()


def resummarize(path: Path) -> int:
    """Count the audit log again for a finished run's namespaces and rebuild its figures."""
    out = json.loads(path.read_text())
    results = out["results"]
    counts = audit.count(
        audit.since_start(out["started"]), set(_namespaces(results)), summary.audit_splits(results)
    )
    old = out["figures"]
    figures = _figures(results, counts, out.get("startup", {}))
    # Runs written before raw start-up times were kept: keep their start-up figures as they are.
    figures.update({k: v for k, v in old.items() if k.startswith("startup/") and k not in figures})
    out["audit"], out["figures"] = counts, dict(sorted(figures.items()))
    path.write_text(json.dumps(out, indent=1, default=str))
    print(summary.table(out["figures"]))
    return 0


def _namespaces(results: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for r in results:
        names.extend([r["namespace"]] if "namespace" in r else r["namespaces"].values())
    return names


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
