"""`python -m bench faults`: control-plane outages at each step of a release, and what the gate
made of them.

Each row starts from penguin v1 verified by a gate (one replica, a namespace of its own), runs
one gate with `-p bench.faultpoint` so that it pauses at the row's step, puts the fault in
place (a component of the local cluster stopped, bench/controlplane.py), lets the gate go on
into it, brings the component back after the row's time, and waits for the gate's end. One
outage meets every step at once: the rows of a group (the kube-apiserver's 16 s, 90 s, 5 min)
each have their gate, all paused at their steps before the one outage starts (the 16 s group's
gates hold a 6 s lease: an outage longer than the lease, as the e2e test has it). It records the
gate's verdict and exit code, its rollback, whether its output held a traceback, and what the
cluster was left with: the live tag, whether every pod of it is ready, the release record's step
and target. A row that leaves the record unfinished is followed by `--recover`, as its verdict
says to. Expected: the verdict an undisturbed run gives, or a verified rollback; an outage
longer than the step's deadline, a failure that says what restores the last verified release,
and that does.

The outages stop the local cluster's components under every other user of the cluster: run one
at a time, alone (`flock -x /tmp/rg-cluster.lock python -m bench faults --rows apiserver-90
--add`); every outage in one call takes about half an hour. `--rows` picks rows or groups
(`--list` names them). Prints a table and writes JSON (default reports/bench-faults.json;
`--add` adds to it).
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import controlplane, tools
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
    group: str = ""  # rows of one group meet one outage at once (default: the row alone)
    lease_s: int = 0  # the gate's lease duration (timeouts.lease); 0: the default, 60 s

    @property
    def outage(self) -> str:
        return self.group or self.name


def _rows() -> list[Row]:
    rows = []
    # The 16 s outage with a 6 s lease is the e2e test's (tests/e2e/test_faults.py): an outage
    # longer than the lease, as the 90 s one is with the default 60 s lease, in a third the time.
    for down, label, lease in ((16, "16 s (lease 6 s)", 6), (90, "90 s", 0), (300, "5 min", 0)):
        # One outage, every step at once: five gates, each paused at its own step.
        what, group = f"kube-apiserver killed, down {label}", f"apiserver-{down}"
        rows += [
            Row(f"{group}-apply", what, "apply", "kube-apiserver", down,
                "rolloutgate_release", "v2", "kill", group=group, lease_s=lease),
            Row(f"{group}-rollout", what, "rollout", "kube-apiserver", down,
                "rolloutgate_rollout", "v2", "kill", group=group, lease_s=lease),
            Row(f"{group}-endpoint", what, "endpoint and checks", "kube-apiserver",
                down, "rolloutgate_endpoint", "v2", "kill", group=group, lease_s=lease),
            Row(f"{group}-rollback", what, "rollback (of wrong)", "kube-apiserver",
                down, "teardown", "wrong", "kill", undisturbed="rolled-back", group=group,
                lease_s=lease),
            Row(f"{group}-recovery", what, "recovery (--recover)", "kube-apiserver",
                down, "rolloutgate_snapshot", "", "kill", ("--recover",),
                undisturbed="pass (restored)", group=group, lease_s=lease),
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
# What a traceback leaves in the gate's output: Python's, an INTERNALERROR, or a pytest error
# report whose frames are pytest's own (a check's failure shows the check, never pytest).
TRACEBACK = ("Traceback (most recent call last)", "INTERNALERROR", "/_pytest/")
# How long a group's gates may take to reach their steps, and to end after the outage.
REACH_TIMEOUT_S = 300.0
GATE_TIMEOUT_S = 900.0


def groups(rows: list[Row]) -> list[list[Row]]:
    """The rows by outage, in row order."""
    found: dict[str, list[Row]] = {}
    for row in rows:
        found.setdefault(row.outage, []).append(row)
    return list(found.values())


@dataclass
class Result:
    row: Row
    namespace: str = ""
    exit: int | None = None
    verdict: str = ""
    cause: str = ""
    previous_tag: str = ""
    rollback: str = ""
    rollback_verified: bool = False
    recovery_verified: bool = False
    traceback: bool = False
    interrupt_banner: bool = False
    seconds: float = 0.0  # the gate's whole run
    outage_s: float = 0.0  # the component gone → ready again
    after_outage_s: float = 0.0  # the component ready again → the gate's end
    live_tag: str = ""
    ready: bool = False
    record_step: str = ""
    record_tag: str = ""  # the record's restore target: the last verified release
    recovered: str = ""  # the --recover that followed, when the record was left unfinished
    lines: list[str] = field(default_factory=list)  # the gate's own lines about the fault
    tail: list[str] = field(default_factory=list)  # the end of its output


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


def cluster_state(namespace: str) -> tuple[str, bool, str, str]:
    """(live tag, every pod of it Ready, the release record's step, its target's tag)."""
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
    record = json.loads(rec.stdout) if rec.returncode == 0 and rec.stdout else {}
    return tag, ready, record.get("step", ""), (record.get("target") or {}).get("tag", "")


@dataclass
class _Gate:
    """One row's gate, started and paused at its step (or the reason it is not)."""

    row: Row
    namespace: str
    point: Path
    output: Path
    report: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failed: str = ""  # why the row has no paused gate
    failed_lines: list[str] = field(default_factory=list)


def _start_paused(row: Row, workdir: Path, baseline_done: Callable[[str], None] | None) -> _Gate:
    """penguin v1 verified in a namespace of the row's own, then the row's gate, started and
    left to reach its step (where bench.faultpoint holds it until the fault is in place)."""
    namespace = f"bench-faults-{uuid.uuid4().hex[:6]}"
    point = workdir / f"point-{row.name}"
    point.mkdir()
    gate = _Gate(row, namespace, point, workdir / f"{row.name}.out", workdir / f"{row.name}.json")
    code, out, _ = run_gate(namespace, workdir / f"{row.name}-v1.json", "--image-tag=v1")
    if code != 0:
        gate.failed = f"baseline v1 failed (exit {code})"
        gate.failed_lines = out.splitlines()[-20:]
        return gate
    if baseline_done is not None:
        baseline_done(namespace)
    args = ([f"--image-tag={row.tag}"] if row.tag else []) + list(row.args)
    env = {"ROLLOUTGATE_FAULTPOINT": row.point, "ROLLOUTGATE_FAULTPOINT_DIR": str(point)}
    if row.lease_s:
        env["ROLLOUTGATE_LEASE_TIMEOUT"] = str(row.lease_s)
    gate.started = time.monotonic()
    # To a file, not a pipe: the gates of a group run at once and none may block on a full pipe
    # while another is read.
    with gate.output.open("wb") as sink:
        gate.proc = subprocess.Popen(
            gate_argv(namespace, gate.report, *args),
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
    return gate


def _wait_reached(gates: list[_Gate], timeout: float) -> None:
    """Until every started gate is at its step; a gate that ended first, or is not there in
    `timeout`, is marked failed (and killed)."""
    deadline = time.monotonic() + timeout
    waiting = [g for g in gates if g.proc is not None]
    while waiting:
        for g in list(waiting):
            assert g.proc is not None
            if (g.point / "reached").exists():
                waiting.remove(g)
            elif g.proc.poll() is not None or time.monotonic() > deadline:
                g.failed = f"the gate never reached {g.row.point} (exit {g.proc.poll()})"
                g.failed_lines = g.output.read_text(errors="replace").splitlines()[-20:]
                if g.proc.poll() is None:
                    g.proc.kill()
                g.proc.wait()
                g.proc = None
                waiting.remove(g)
        time.sleep(0.1)


def _wait_ended(gates: list[_Gate], deadline: float) -> dict[int, float]:
    """Until every gate has ended (killed at the deadline): when each did, by its index. Polled
    side by side, so each time is its own gate's end, not that of the one waited for before."""
    ended: dict[int, float] = {i: 0.0 for i, g in enumerate(gates) if g.proc is None}
    while len(ended) < len(gates):
        for i, g in enumerate(gates):
            if i not in ended and g.proc is not None:
                if g.proc.poll() is not None:
                    ended[i] = time.monotonic()
                elif time.monotonic() > deadline:
                    g.proc.kill()
                    g.proc.wait()
                    ended[i] = time.monotonic()
        time.sleep(0.2)
    return ended


def _collect(g: _Gate, back: float, ended: float) -> Result:
    """What the ended gate said and left."""
    result = Result(g.row, namespace=g.namespace)
    if g.proc is None:
        result.verdict, result.tail = g.failed, g.failed_lines
        return result
    result.seconds = round(ended - g.started, 1)
    result.after_outage_s = round(ended - back, 1)
    result.exit = g.proc.returncode
    out = g.output.read_text(errors="replace")
    data = json.loads(g.report.read_text()) if g.report.exists() else {}
    result.verdict = str(data.get("verdict", ""))
    result.cause = str(data.get("cause", ""))[:600]
    result.previous_tag = str(data.get("previous_tag") or "")
    rollback = data.get("rollback") or {}
    result.rollback = str(rollback.get("outcome", ""))[:300]
    result.rollback_verified = bool(rollback.get("verified"))
    result.recovery_verified = bool((data.get("recovery") or {}).get("verified"))
    result.traceback = any(mark in out for mark in TRACEBACK)
    result.interrupt_banner = "KeyboardInterrupt" in out
    result.lines = [
        line for line in out.splitlines()
        if "rolloutgate: " in line and ("lease" in line or "answer" in line or "NOT DONE" in line)
    ][:12]  # fmt: skip
    result.tail += out.splitlines()[-40:]
    return result


def _after(result: Result, workdir: Path) -> None:
    """What the cluster was left with; `--recover` first when the record is unfinished, as the
    verdict then says to do."""
    ns = result.namespace
    result.live_tag, result.ready, result.record_step, result.record_tag = cluster_state(ns)
    if result.record_step and result.record_step not in ("verified", "rolled-back", "locked"):
        code, _out, data = run_gate(ns, workdir / f"{result.row.name}-recover.json", "--recover")
        result.recovered = f"exit {code}: {str(data.get('cause', ''))[:200]}"
        result.live_tag, result.ready, result.record_step, result.record_tag = cluster_state(ns)


def run_group(
    rows: list[Row],
    workdir: Path,
    *,
    baseline_done: Callable[[str], None] | None = None,
    delete: bool = True,
    say: Callable[[str], None] = print,
) -> list[Result]:
    """One outage under several gates at once: each row's gate (penguin v1 verified first, in
    a namespace of its own) is started and paused at its step; once all are there, the rows'
    component is stopped, every gate let go into the outage, the component started again after
    the rows' time, and every gate waited for. The rows must share component, time and how.
    ``baseline_done(namespace)`` runs after each v1 baseline (to read the state to compare);
    ``delete=False`` keeps the namespaces (the caller deletes them)."""
    first = rows[0]
    if any((r.component, r.down_s, r.how) != (first.component, first.down_s, first.how)
           for r in rows):  # fmt: skip
        raise ValueError(f"one outage, one component and time: {[r.name for r in rows]}")
    with ThreadPoolExecutor(max_workers=len(rows)) as pool:
        gates = list(pool.map(lambda r: _start_paused(r, workdir, baseline_done), rows))
    try:
        results = _outage(gates, say)
        for r in results:
            if r.exit is not None:
                _after(r, workdir)
        return results
    finally:
        for g in gates:
            if g.proc is not None and g.proc.poll() is None:
                g.proc.kill()
                g.proc.wait()
            if delete:
                kubectl("delete", "namespace", g.namespace, "--wait=false", timeout=30)


def _outage(gates: list[_Gate], say: Callable[[str], None]) -> list[Result]:
    """The gates at their steps, the outage under them, their ends."""
    _wait_reached(gates, REACH_TIMEOUT_S)
    paused = sum(g.proc is not None for g in gates)
    say(f"   at their steps: {paused} of {len(gates)} gates")
    if not paused:  # no gate to meet the outage: nothing is stopped
        return [_collect(g, 0.0, 0.0) for g in gates]
    row = gates[0].row
    stopped = controlplane.stop(row.component, row.how)
    gone = time.monotonic()
    for g in gates:
        (g.point / "go").write_text("go\n")  # the gates go on into the outage
    try:
        time.sleep(row.down_s)
    finally:
        controlplane.start(stopped)
        controlplane.wait_ready(row.component)
    back = time.monotonic()
    say(f"   {row.component} back after {back - gone:.1f} s")
    ended = _wait_ended(gates, back + GATE_TIMEOUT_S)
    results = [_collect(g, back, ended[i]) for i, g in enumerate(gates)]
    for r in results:
        r.outage_s = round(back - gone, 1)
    return results


def after(r: dict[str, Any]) -> str:
    """The table's "cluster afterwards" cell, from a result as the JSON holds it."""
    text = f"{r['live_tag'] or '-'}, {'ready' if r['ready'] else 'NOT ready'}, "
    text += f"record {r['record_step'] or '-'}"
    text += f" ({r['record_tag']})" if r["record_tag"] else ""
    if r["recovered"]:
        text += f" (after --recover: {r['recovered'][:60]})"
    return text


HEAD = ("fault", "step", "undisturbed", "verdict (exit)", "rollback", "traceback",
        "cluster afterwards", "outage s", "run s", "end after outage s")  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of results as the JSON holds them (`asdict(Result)`): the terminal's
    and docs/reliability.md's (bench/docs.py)."""
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    for r in rows:
        row = r["row"]
        lines.append("| " + " | ".join((
            row["fault"], row["step"], row["undisturbed"], f"{r['verdict'] or '-'} ({r['exit']})",
            r["rollback"][:70].replace("|", "/") or "-", "yes" if r["traceback"] else "no",
            after(r), f"{r['outage_s']:g}", f"{r['seconds']:g}", f"{r['after_outage_s']:g}",
        )) + " |")  # fmt: skip
    return "\n".join(lines)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench faults", description=__doc__)
    p.add_argument(
        "--rows",
        help="comma-separated row or outage names (default: all; --list names them)",
    )
    p.add_argument("--list", action="store_true", help="name the rows and exit")
    p.add_argument(
        "--output", type=Path, default=Path("reports/bench-faults.json"), help="JSON path"
    )
    p.add_argument(
        "--add",
        action="store_true",
        help="add to the JSON already at --output (a row measured again replaces its old one): "
        "the outages can then be run one by one",
    )
    args = p.parse_args(argv)
    known = {r.name for r in ROWS} | {r.outage for r in ROWS}
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
            print(f"{r.name:32} {r.fault}, at {r.step} (outage {r.outage})")
        return 0
    if not KUBECONFIG.is_file():
        print(f"no local cluster ({KUBECONFIG}): make cluster-up load-images", file=sys.stderr)
        return 2
    rows = [r for r in ROWS if not args.rows or r.name in args.rows or r.outage in args.rows]
    started = time.time()
    run = {
        "command": "python -m bench faults " + " ".join(argv),
        "started": started,
        "commit": tools.commit(),
        "nproc": os.cpu_count(),
        "loadavg_start": Path("/proc/loadavg").read_text().strip(),
    }
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for group in groups(rows):
            names = ", ".join(r.step for r in group)
            print(f"== {group[0].outage}: {group[0].fault}, at {names}", flush=True)
            done = run_group(group, Path(tmp))
            results += done
            for result in done:
                print(table([asdict(result)]).splitlines()[-1], flush=True)
                for line in result.lines:
                    print(f"   {line}", flush=True)
    run["duration_s"] = round(time.time() - started, 1)
    run["loadavg_end"] = Path("/proc/loadavg").read_text().strip()
    run["rows"] = [r.row.name for r in results]
    out: dict[str, Any] = {"runs": [], "rows": []}
    if args.add and args.output.exists():
        out = json.loads(args.output.read_text())
    measured = {r.row.name for r in results}
    out["rows"] = [r for r in out["rows"] if r["row"]["name"] not in measured]
    # The output's tail is for a test's failure message; the JSON keeps the gate's own lines.
    out["rows"] += [{k: v for k, v in asdict(r).items() if k != "tail"} for r in results]
    out["rows"].sort(key=lambda r: [row.name for row in ROWS].index(r["row"]["name"]))
    out["runs"].append(run)
    print()
    print(table(out["rows"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(f"\nJSON: {args.output}")
    return 0
