"""`python -m bench scale`: what the gate's checks cost at 1, 10, 100 replicas and 1, 5, 20
workloads (issue 21). Prints a table and writes JSON (default reports/bench-scale.json).

Every row is the penguin example (the Python standard library, ready about a second after its
container starts, ~20 MiB per pod, so 100 replicas fit on the 2-core node), in a fresh
`bench-<random>` namespace (deleted afterwards): v1 applied by the benchmark and rolled out,
then the gate releases v2 (`--cluster=local-penguin`) with a golden file of `--cases` cases,
and every check runs: health on every replica, each golden case on every replica, warm-up,
latency budget, metrics on every pod, in-pod checks. A row "N replicas" is one Deployment of N
replicas; "W workloads" is W Deployments of one replica each behind the one Service.

Per row: the gate's rollout verdict → process exit (the checks, the report, the lease's
release), API requests of the whole run (the probe's client count: REST calls, watches,
websockets), port-forward streams opened, and the process's peak RSS (VmHWM).

`--gate-repo DIR` runs the gate (its package and suite) from another checkout, e.g. main's,
for a before/after table; the benchmark's probe comes from that checkout too.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client import ApiClient

from bench import cluster, probe, summary, tools
from bench.scenarios import verdict_instant

PENGUIN = cluster.REPO / "fixtures" / "penguin"
IMAGE = "rolloutgate/penguin"
# At most this many pods of a row at once (set when the node ran at most 110; its kubelet allows
# 250 since): no surge, a fifth replaced at a time.
STRATEGY = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "20%"}}
# 100 replicas must fit the node's CPU requests beside other work.
RESOURCES = {
    "requests": {"cpu": "1m", "memory": "16Mi"},
    "limits": {"cpu": "200m", "memory": "64Mi"},
}
GATE_CAP_S = 900


def _counts(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected {what} like 1,10,100, got {text!r}") from e
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected {what} ≥ 1 like 1,10,100, got {text!r}")
    return values


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__)
    p.add_argument("--runs", type=int, default=3, help="runs per row (default 3)")
    p.add_argument(
        "--replicas", type=lambda t: _counts(t, "replica counts"), default=[1, 10, 100],
        help="replica counts of one Deployment (default 1,10,100)",
    )  # fmt: skip
    p.add_argument(
        "--workloads", type=lambda t: _counts(t, "workload counts"), default=[5, 20],
        help="Deployments of one replica each (default 5,20; 1 is the 1-replica row)",
    )  # fmt: skip
    p.add_argument("--cases", type=int, default=10, help="golden cases (default 10)")
    p.add_argument("--gate-repo", type=Path, default=cluster.REPO, help="the gate's checkout")
    p.add_argument(
        "--output", type=Path, default=Path("reports/bench-scale.json"), help="JSON path"
    )
    args = p.parse_args(argv)
    if args.runs < 1 or args.cases < 1:
        p.error("--runs and --cases must be ≥ 1")
    return args


def _log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def manifests(replicas: int, workloads: int, tag: str) -> list[cluster.Obj]:
    """The penguin Deployment as `workloads` Deployments of `replicas` each, and its Service."""
    docs = [
        d
        for path in sorted((PENGUIN / "manifests").glob("*.yaml"))
        for d in yaml.safe_load_all(path.read_text())
        if d
    ]
    [base] = [d for d in docs if d["kind"] == "Deployment"]
    out = [d for d in docs if d["kind"] != "Deployment"]
    for i in range(workloads):
        dep = copy.deepcopy(base)
        if workloads > 1:
            dep["metadata"]["name"] = f"penguin-{i}"
            # Each its own pods; the Service (app.kubernetes.io/name) selects every one.
            template = dep["spec"]["template"]["metadata"]["labels"]
            for labels in (dep["spec"]["selector"]["matchLabels"], template):
                labels["rolloutgate-bench/instance"] = str(i)
        dep["spec"]["replicas"] = replicas
        dep["spec"]["strategy"] = copy.deepcopy(STRATEGY)
        for c in dep["spec"]["template"]["spec"]["containers"]:
            c["image"] = f"{IMAGE}:{tag}"
            c["resources"] = copy.deepcopy(RESOURCES)
            c["readinessProbe"]["periodSeconds"] = (
                2  # 100 pods probed every second load the kubelet
            )
        out.append(dep)
    return out


def golden(cases: int) -> cluster.Obj:
    """The penguin golden file with `cases` cases (its own, repeated under new names)."""
    data: cluster.Obj = json.loads((PENGUIN / "golden" / "penguin.json").read_text())
    own = data["cases"]
    data["cases"] = [
        {**copy.deepcopy(own[i % len(own)]), "name": f"{own[i % len(own)]['name']}-{i}"}
        for i in range(cases)
    ]
    return data


def write(objs: list[cluster.Obj], directory: Path) -> Path:
    """The manifests as the gate's `--manifests DIR` takes them, a file per object (several
    Deployments must not share one file name, as `cluster.write_manifests` names them)."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, obj in enumerate(objs):
        name = f"{i:02d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        (directory / name).write_text(yaml.safe_dump(obj))
    return directory


def _rolled_out(api: ApiClient, namespace: str, timeout_s: float) -> None:
    """Every Deployment of the namespace rolled out (setup only: a poll under a deadline)."""
    deadline = time.monotonic() + timeout_s
    pending: list[str] = ["(not read yet)"]
    while time.monotonic() < deadline:
        deps = client.AppsV1Api(api).list_namespaced_deployment(
            namespace, _request_timeout=cluster.REQUEST_TIMEOUT_S
        )
        raw = api.sanitize_for_serialization(deps)  # type: ignore[no-untyped-call]
        pending = [d["metadata"]["name"] for d in raw["items"] if not cluster.rolled_out(d)]
        if not pending:
            return
        time.sleep(2.0)
    raise TimeoutError(f"setup: not rolled out after {timeout_s:.0f} s: {', '.join(pending)}")


def gate(namespace: str, work: Path, gate_repo: Path) -> tools.Proc:
    """The gate as a user runs it on the penguin profile, with the observing probe."""
    env = os.environ.copy()
    env[probe.ENV] = str(work / "probe.json")
    env["PATH"] = f"{cluster.KUBECTL.parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(gate_repo / "src"), str(gate_repo)])
    cmd = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "bench.probe",
        "--cluster=local-penguin", "--image-tag=v2", f"--namespace={namespace}",
        f"--manifests={work / 'm'}", f"--golden={work / 'golden.json'}",
        f"--gate-report={work / 'gate.json'}", "--rollout-timeout=600", "-q",
    ]  # fmt: skip
    return tools.spawn("gate", cmd, work / "gate.log", env, cwd=gate_repo)


def row(
    api: ApiClient, replicas: int, workloads: int, cases: int, gate_repo: Path, workdir: Path
) -> dict[str, Any]:
    label = f"{replicas} replicas" if workloads == 1 else f"{workloads} workloads"
    ns = cluster.new_namespace(api, f"scale-{replicas}x{workloads}")
    result: dict[str, Any] = {
        "case": "scale", "row": label, "replicas": replicas, "workloads": workloads,
        "pods": replicas * workloads, "cases": cases, "namespace": ns,
    }  # fmt: skip
    try:
        cluster.apply(api, ns, manifests(replicas, workloads, "v1"))
        _rolled_out(api, ns, 120 + 3 * replicas * workloads)
        work = workdir / ns
        write(manifests(replicas, workloads, "v1"), work / "m")
        (work / "golden.json").write_text(json.dumps(golden(cases)))
        proc = gate(ns, work, gate_repo)
        if not proc.wait(proc.started + GATE_CAP_S):
            proc.stop(60)
        probe_data, report = tools.gate_results(work)
        rollout = tools.gate_rollout(work) or {}
        verdict_at = verdict_instant(rollout, report.get("phases_s", {}))
        requests = probe_data.get("requests", [])
        tests = report.get("tests", {})
        result["gate"] = {
            "rc": proc.rc,
            "verdict": report.get("verdict"),
            "cause": str(report.get("cause", ""))[:300],
            "checks_s": None
            if proc.exited is None or verdict_at is None
            else round(proc.exited - verdict_at, 3),
            "requests": len(requests),
            "rest_requests": sum(1 for r in requests if r["method"] != "WEBSOCKET"),
            "port_forwards": sum(1 for r in requests if "/portforward" in r["url"]),
            "execs": sum(1 for r in requests if "/exec" in r["url"]),
            "vm_hwm_mib": round(probe_data["vm_hwm_kib"] / 1024, 1)
            if probe_data.get("vm_hwm_kib")
            else None,
            "phases_s": report.get("phases_s", {}),
            "tests": len(tests) if isinstance(tests, list | dict) else None,
            # Where the checks' seconds went: each test's duration (its fixtures' setup in it)
            # and the CPU the gate spent from the verdict to its end.
            "test_s": _test_durations(tests),
            "checks_cpu_s": _checks_cpu(probe_data),
        }
        if proc.rc != 0:
            result["error"] = f"gate exited {proc.rc}: {result['gate']['cause']}"
    except Exception as e:  # one broken row must not lose the others' figures
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        cluster.delete_namespace(api, ns)
    return result


def _test_durations(tests: Any) -> dict[str, float]:
    items = tests.get("items", []) if isinstance(tests, dict) else []
    return {
        str(t.get("nodeid", "")).rpartition("::")[2]: t.get("duration_s")
        for t in items
        if isinstance(t, dict)
    }


def _checks_cpu(probe_data: dict[str, Any]) -> dict[str, float] | None:
    cpu = probe_data.get("cpu_s") or {}
    start, end = cpu.get("rollout_end"), cpu.get("end")
    if not start or not end:
        return None
    return {k: round(end[k] - start[k], 3) for k in ("self", "children")}


def checks_s(gate: dict[str, Any]) -> float | None:
    """Verdict → the end of the checks: the process's exit less a rollback's phases (a failed
    check rolls back after the last one)."""
    if gate.get("checks_s") is None:
        return None
    phases = gate.get("phases_s", {})
    rollback = sum(phases.get(k, 0.0) for k in ("rollback", "rollback_rollout", "rollback_verify"))
    return round(float(gate["checks_s"]) - rollback, 3)


def figures(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One row per release size; a release that failed a check (every check still ran) is
    named with its verdict, one whose rollout failed is left out (no checks ran)."""
    fig = summary.Figures()
    for r in results:
        g = r.get("gate")
        if not g or "endpoint" not in g.get("phases_s", {}):
            continue
        name = r["row"] if g.get("verdict") == "pass" else f"{r['row']} ({g.get('verdict')})"
        fig.add(f"scale/verdict → end of the checks (s)/{name}", checks_s(g))
        fig.add(f"scale/API requests, whole run/{name}", g["rest_requests"])
        fig.add(f"scale/port-forward streams opened/{name}", g["port_forwards"])
        fig.add(f"scale/peak memory, VmHWM (MiB)/{name}", g["vm_hwm_mib"])
    return fig.stats()


def table(stats: dict[str, dict[str, Any]]) -> str:
    # The scale rows' sections say their unit: "... (s)" is seconds, the rest are counts.
    return summary.table(
        stats, unit=lambda key: "s" if "(s)" in key.rpartition("/")[0] else "n", width=30
    )


def refigure(path: Path) -> int:
    """The figures of a finished run computed again from its results (the rules above)."""
    out = json.loads(path.read_text())
    out["figures"] = figures(out["results"])
    path.write_text(json.dumps(out, indent=1, default=str))
    print(table(out["figures"]))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--refigure"] and len(argv) == 2:
        return refigure(Path(argv[1]))
    args = parse(argv)
    started = time.time()
    api = cluster.connect()
    workdir = Path(tools.tempdir("rolloutgate-bench-scale-"))
    rows = [(n, 1) for n in args.replicas] + [(1, w) for w in args.workloads if w > 1]
    results: list[dict[str, Any]] = []
    loadavg_start = Path("/proc/loadavg").read_text().strip()
    for i in range(args.runs):
        for replicas, workloads in rows:
            _log(f"run {i + 1}/{args.runs}: {replicas} replicas x {workloads} workloads")
            r = row(api, replicas, workloads, args.cases, args.gate_repo.resolve(), workdir)
            _log(f"  {r.get('error') or 'done'}: {json.dumps(r.get('gate', {}).get('checks_s'))}")
            results.append(r)
    left = cluster.wait_namespaces_gone(api, [r["namespace"] for r in results], 300)
    stats = figures(results)
    out = {
        "command": "python -m bench scale " + " ".join(argv),
        "started": started,
        "duration_s": round(time.time() - started, 1),
        "gate_repo": str(args.gate_repo.resolve()),
        "machine": {
            "nproc": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "loadavg_start": loadavg_start,
            "loadavg_end": Path("/proc/loadavg").read_text().strip(),
            "commit": tools.commit(args.gate_repo.resolve()),
        },
        "figures": stats,
        "results": results,
        "namespaces_left": left,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1, default=str))
    print(table(stats))
    print(f"\n{len(results)} rows, {out['duration_s']:.0f} s; JSON: {args.output}")
    errors = [r for r in results if "error" in r]
    for r in errors:
        print(f"error in {r['row']}: {r['error']}")
    return 1 if errors else 0
