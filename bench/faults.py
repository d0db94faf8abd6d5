"""`python -m bench faults`: control-plane outages at each step of a release, and what the gate
made of them.

Each row starts from penguin v1 verified by a gate (one replica, a namespace of its own), runs
one gate with `-p bench.faultpoint` so that it pauses at the row's step, puts the fault in
place (a component of the local cluster stopped, bench/controlplane.py), lets the gate go on
into it, brings the component back after the row's time, and waits for the gate's end. It
records the gate's verdict and exit code, its rollback, whether its output held a traceback,
and what the cluster was left with: the live tag, whether every pod of it is ready, the release
record's step. A row that leaves the record unfinished is followed by `--recover`, as its
verdict says to. Expected: the verdict an undisturbed run gives, or a verified rollback; an
outage longer than the step's deadline, a failure that says what restores the last verified
release, and that does.

The outages stop the local cluster's components under every other user of the cluster: run it
alone (`flock -x /tmp/rg-cluster.lock python -m bench faults`). The default rows take about an
hour; `--rows` picks some (`--list` names them). Prints a table and writes JSON (default
reports/bench-faults.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import controlplane
from bench.controlplane import KUBECONFIG, REPO, kubectl

PROFILE = "local-penguin"
APP = "penguin"
IMAGE = "rolloutgate/penguin"
RECORD = "rolloutgate-penguin-release"


@dataclass(frozen=True)
class Row:
    """One fault at one step."""

    name: str
    fault: str  # what is done, for the table
    step: str  # the step it meets, for the table
    component: str
    down_s: float
    point: str  # bench.faultpoint's step
    tag: str  # the tag the gate releases ("" with --recover)
    how: str = "term"
    args: tuple[str, ...] = ()
    undisturbed: str = "pass"  # the verdict of the same run without the fault


def _rows() -> list[Row]:
    rows = []
    for down, label in ((90, "90 s"), (300, "5 min")):
        what = f"kube-apiserver killed, down {label}"
        rows += [
            Row(f"apiserver-{down}-apply", what, "apply", "kube-apiserver", down,
                "rolloutgate_release", "v2", "kill"),
            Row(f"apiserver-{down}-rollout", what, "rollout", "kube-apiserver", down,
                "rolloutgate_rollout", "v2", "kill"),
            Row(f"apiserver-{down}-endpoint", what, "endpoint and checks", "kube-apiserver",
                down, "rolloutgate_endpoint", "v2", "kill"),
            Row(f"apiserver-{down}-rollback", what, "rollback (of wrong)", "kube-apiserver",
                down, "teardown", "wrong", "kill", undisturbed="rolled-back"),
            Row(f"apiserver-{down}-recovery", what, "recovery (--recover)", "kube-apiserver",
                down, "rolloutgate_snapshot", "", "kill", ("--recover",)),
        ]  # fmt: skip
    rows += [
        Row("etcd-60-rollout", "etcd killed, down 60 s", "rollout", "etcd", 60,
            "rolloutgate_rollout", "v2", "kill"),
        Row("controller-manager-rollout", "kube-controller-manager stopped 90 s", "rollout",
            "kube-controller-manager", 90, "rolloutgate_release", "v2",
            args=("--rollout-timeout=45",), undisturbed="pass"),
        Row("scheduler-rollout", "kube-scheduler stopped 90 s", "rollout", "kube-scheduler",
            90, "rolloutgate_release", "v2", args=("--rollout-timeout=45",)),
        Row("kubelet-rollout", "kubelet restarted (down 10 s)", "rollout", "kubelet", 10,
            "rolloutgate_rollout", "v2"),
    ]  # fmt: skip
    return rows


ROWS = _rows()


@dataclass
class Result:
    row: Row
    exit: int | None = None
    verdict: str = ""
    cause: str = ""
    rollback: str = ""
    traceback: bool = False
    interrupt_banner: bool = False
    seconds: float = 0.0
    outage_s: float = 0.0
    live_tag: str = ""
    ready: bool = False
    record_step: str = ""
    recovered: str = ""  # the --recover that followed, when the record was left unfinished
    lines: list[str] = field(default_factory=list)  # the gate's own lines about the fault


def gate_argv(namespace: str, report: Path, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "bench.faultpoint",
        f"--cluster={PROFILE}", f"--namespace={namespace}", f"--gate-report={report}", *args,
    ]  # fmt: skip


def run_gate(namespace: str, report: Path, *args: str, env: dict[str, str] | None = None,
             timeout: float = 900) -> tuple[int, str, dict[str, Any]]:  # fmt: skip
    report.unlink(missing_ok=True)
    proc = subprocess.run(
        gate_argv(namespace, report, *args),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return proc.returncode, proc.stdout + proc.stderr, data


def cluster_state(namespace: str) -> tuple[str, bool, str]:
    """(live tag, every pod of it Ready, the release record's step)."""
    dep = kubectl("get", "deployment", APP, "-n", namespace, "-o", "json", timeout=30)
    tag = ""
    if dep.returncode == 0:
        image = json.loads(dep.stdout)["spec"]["template"]["spec"]["containers"][0]["image"]
        tag = image.rsplit(":", 1)[-1]
    pods = kubectl("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/name={APP}",
                   "-o", "json", timeout=30)  # fmt: skip
    ready = False
    if pods.returncode == 0:
        live = [p for p in json.loads(pods.stdout)["items"]
                if not p["metadata"].get("deletionTimestamp")]  # fmt: skip
        ready = (
            bool(live)
            and all(c["image"].endswith(f":{tag}") for p in live for c in p["spec"]["containers"])
            and all(
                {c["type"]: c["status"] for c in p["status"].get("conditions", [])}.get("Ready")
                == "True"
                for p in live
            )
        )
    rec = kubectl("get", "configmap", RECORD, "-n", namespace, "-o",
                  "jsonpath={.data.release\\.json}", timeout=30)  # fmt: skip
    step = json.loads(rec.stdout).get("step", "") if rec.returncode == 0 and rec.stdout else ""
    return tag, ready, step


def run_row(row: Row, workdir: Path) -> Result:
    namespace = f"bench-faults-{uuid.uuid4().hex[:6]}"
    result = Result(row)
    code, out, _ = run_gate(namespace, workdir / "v1.json", "--image-tag=v1")
    if code != 0:
        result.verdict = f"baseline v1 failed (exit {code})"
        result.lines = out.splitlines()[-5:]
        return result
    point = workdir / f"point-{row.name}"
    point.mkdir()
    args = ([f"--image-tag={row.tag}"] if row.tag else []) + list(row.args)
    env = {
        "ROLLOUTGATE_FAULTPOINT": row.point,
        "ROLLOUTGATE_FAULTPOINT_DIR": str(point),
    }
    report = workdir / f"{row.name}.json"
    started = time.monotonic()
    proc = subprocess.Popen(
        gate_argv(namespace, report, *args),
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
    )
    try:
        deadline = time.monotonic() + 300
        while not (point / "reached").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the gate never reached {row.point}")
            time.sleep(0.1)

        def go() -> None:
            (point / "go").write_text("go\n")

        stopped = controlplane.stop(row.component, row.how)
        gone = time.monotonic()
        go()  # the gate goes on into the outage
        try:
            time.sleep(row.down_s)
        finally:
            controlplane.start(stopped)
            controlplane.wait_ready(row.component)
            result.outage_s = round(time.monotonic() - gone, 1)
        out, _ = proc.communicate(timeout=1800)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    result.seconds = round(time.monotonic() - started, 1)
    result.exit = proc.returncode
    data = json.loads(report.read_text()) if report.exists() else {}
    result.verdict = str(data.get("verdict", ""))
    result.cause = str(data.get("cause", ""))[:300]
    result.rollback = str((data.get("rollback") or {}).get("outcome", ""))[:300]
    result.traceback = "Traceback (most recent call last)" in out
    result.interrupt_banner = "KeyboardInterrupt" in out
    result.lines = [
        line for line in out.splitlines()
        if "rolloutgate: " in line and ("lease" in line or "answer" in line or "NOT DONE" in line)
    ][:12]  # fmt: skip
    result.live_tag, result.ready, result.record_step = cluster_state(namespace)
    if result.record_step not in ("verified", "rolled-back", "locked"):
        code, out, data = run_gate(namespace, workdir / f"{row.name}-recover.json", "--recover")
        result.recovered = f"exit {code}: {str(data.get('cause', ''))[:200]}"
        result.live_tag, result.ready, result.record_step = cluster_state(namespace)
    kubectl("delete", "namespace", namespace, "--wait=false", timeout=30)
    return result


def table(results: list[Result]) -> str:
    head = ("fault", "step", "undisturbed", "verdict (exit)", "rollback", "traceback",
            "cluster afterwards", "outage s", "run s")  # fmt: skip
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for r in results:
        after = f"{r.live_tag}, {'ready' if r.ready else 'NOT ready'}, record {r.record_step}"
        if r.recovered:
            after += f" (after --recover: {r.recovered[:60]})"
        lines.append(" | ".join((
            r.row.fault, r.row.step, r.row.undisturbed, f"{r.verdict} ({r.exit})",
            r.rollback[:70] or "-", "yes" if r.traceback else "no", after,
            f"{r.outage_s:g}", f"{r.seconds:g}",
        )))  # fmt: skip
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench faults", description=__doc__)
    p.add_argument("--rows", help="comma-separated row names (default: all; --list names them)")
    p.add_argument("--list", action="store_true", help="name the rows and exit")
    p.add_argument(
        "--output", type=Path, default=Path("reports/bench-faults.json"), help="JSON path"
    )
    args = p.parse_args(argv)
    known = {r.name for r in ROWS}
    if args.rows:
        wanted = [n.strip() for n in args.rows.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in known]
        if unknown:
            p.error(f"unknown rows {', '.join(unknown)}; rows: {', '.join(sorted(known))}")
        args.rows = wanted
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.list:
        for r in ROWS:
            print(f"{r.name:32} {r.fault}, at {r.step}")
        return 0
    if not KUBECONFIG.is_file():
        print(f"no local cluster ({KUBECONFIG}): make cluster-up load-images", file=sys.stderr)
        return 2
    rows = [r for r in ROWS if not args.rows or r.name in args.rows]
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for row in rows:
            print(f"== {row.name}: {row.fault}, at {row.step}", flush=True)
            result = run_row(row, Path(tmp))
            results.append(result)
            print(table([result]).splitlines()[-1], flush=True)
            for line in result.lines:
                print(f"   {line}", flush=True)
    print()
    print(table(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps({"rows": [asdict(r) for r in results]}, indent=1, default=str)
    )
    print(f"\nJSON: {args.output}")
    return 0
