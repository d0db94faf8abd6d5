"""``rolloutgate init``: from a team's manifests and, when it answers, the live release, the
files the team would otherwise copy and hand-type.

The manifests (plain, kustomize or Helm, rendered as the gate renders them) name the Service,
the port, the workload, the serving container and its image (``target``). When the profile's
cluster answers and the Service is live, the release engine's own steps reach it (connect,
endpoint: a port-forward); the protocol is asked of the server (``checks.detect``), the answers
to the golden requests are recorded as ``python -m rolloutgate record`` records them, and a
latency budget is set from what it answered. Then the files are written (``files``) and the
next command printed.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolloutgate import config, kube
from rolloutgate.checks import cases, credentials, detect, recording
from rolloutgate.checks.client import wait_answering
from rolloutgate.checks.httpclient import HttpClient, client_for
from rolloutgate.checks.latency import measure_latency
from rolloutgate.config import GateConfig
from rolloutgate.errors import ClusterError, ConfigError, GateError
from rolloutgate.init import files, target
from rolloutgate.init.target import Target
from rolloutgate.manifests import ImageRef
from rolloutgate.objects import Obj, at, name_of, ref
from rolloutgate.release.engine import Release
from rolloutgate.release.report import GateRun

# The latency budget written from what the live release answered: this many requests, and
# budgets this many times the measured percentiles (a loaded CI runner is slower than a quiet
# laptop), never below the floors. The team tightens them.
LATENCY_REQUESTS = 20
LATENCY_SLACK = 10
LATENCY_FLOOR_MS = (250, 500)


@dataclass(frozen=True)
class Options:
    """What ``rolloutgate init`` was told (``__main__`` parses the flags)."""

    root: Path
    profile: str
    context: str | None
    kubeconfig: Path | None
    namespace: str | None
    manifests: Path
    service: str | None
    container: str | None
    hints: detect.Hints
    requests: Sequence[Path]
    golden: Path | None  # None: fixtures/golden/<service>.json
    secret: str
    force: bool


@dataclass
class Found:
    """What the live release told (None: it was not asked, and why)."""

    golden: dict[str, Any] | None = None
    protocol: detect.Detected | None = None
    live_tag: str | None = None
    why_not: str | None = None


def run(opts: Options, say: Callable[[str], None]) -> int:
    """Write the team's files; the exit code (0, or 1 when the live server could not be
    understood and nothing was written). ConfigError for bad input."""
    cfg, tool = _config(opts, namespace=opts.namespace or "default")
    objs = Release(cfg, GateRun(cfg)).render()
    where = target.find(objs, service=opts.service, container=opts.container)
    golden = opts.golden or opts.root / "fixtures" / "golden" / f"{where.service}.json"
    opts = dataclasses.replace(opts, golden=golden)
    cfg, tool = _config(opts, namespace=opts.namespace or where.namespace or "default")
    objs = Release(cfg, GateRun(cfg)).render()  # the namespace may change a Helm chart
    cfg = dataclasses.replace(
        cfg,
        service=where.service,
        port=where.port,
        images=(where.image,),
        container=where.container,
        sources={**cfg.sources, "service": "init", "port": "init"},
    )
    release = Release(cfg, GateRun(cfg)).use(objects=objs)
    say(
        f"rolloutgate init: {where.workload}, container {where.container} (image {where.image}), "
        f"behind Service {where.service} port {where.port}, namespace {cfg.namespace}"
    )
    try:
        found = _ask_live(release, where, opts, say)
    except detect.NotDetected as e:
        say(f"rolloutgate init: {e}")
        say("rolloutgate init: nothing written")
        return 1
    if found.golden is None:
        found.golden = _template(found.protocol, opts)
        say(
            f"rolloutgate init: the live release was not asked ({found.why_not}); the golden "
            "file holds the requests only"
        )
    out = files.Written()
    for relative, text in files.suite_files().items():
        files.write(opts.root, relative, text, force=opts.force, out=out)
    golden_rel = _relative(golden, opts.root)
    files.write(opts.root, golden_rel, files.golden_text(found.golden), force=opts.force, out=out)
    files.pyproject(
        opts.root, _gate_tables(opts, where, tool), opts.profile, force=opts.force, out=out
    )
    files.write(
        opts.root,
        str(files.WORKFLOW),
        files.workflow(opts.profile, opts.secret),
        force=opts.force,
        out=out,
    )
    for relative in out.written:
        say(f"  wrote {relative}")
    for kept in out.kept:
        say(f"  kept {kept}")
    tag = found.live_tag or where.tag
    if found.why_not is None:
        say(
            "rolloutgate init: next, gate the release that runs now (it changes nothing and "
            f"proves the suite): pytest --cluster={opts.profile}"
            + (f" --image-tag={tag}" if tag else "")
        )
    else:
        say(
            "rolloutgate init: next, deploy the service once, record the golden answers "
            f"(python -m rolloutgate record --cluster={opts.profile} --golden={golden_rel} "
            f"--out={golden_rel} --force), then: pytest --cluster={opts.profile}"
            + (f" --image-tag={tag}" if tag else "")
        )
    return 0


def _config(opts: Options, *, namespace: str) -> tuple[GateConfig, dict[str, Any]]:
    """The gate's settings as the written pyproject.toml will give them (and that table)."""
    profile: dict[str, Any] = {}
    if opts.kubeconfig is not None:
        profile["kubeconfig"] = _relative(opts.kubeconfig, opts.root)
    profile["context"] = opts.context or opts.profile
    profile["namespace"] = namespace
    tool: dict[str, Any] = {
        "manifests": _relative(opts.manifests, opts.root),
        "golden": _relative(opts.golden or opts.root / "golden.json", opts.root),
        "clusters": {opts.profile: profile},
    }
    cfg = config.resolve(
        {"rolloutgate_cluster": opts.profile},
        env={},
        tool=tool,
        rootdir=opts.root,
        invocation_dir=opts.root,
        list_contexts=kube.contexts,
    )
    return cfg, tool


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def _ask_live(release: Release, where: Target, opts: Options, say: Callable[[str], None]) -> Found:
    """The live release's protocol and answers, when its Service is there and answers."""
    cfg = release.cfg
    try:
        api = release.connect()
    except (ClusterError, ConfigError) as e:
        return Found(why_not=f"cluster {opts.profile} not reached: {e}")
    try:
        live = kube.get(api, "v1", "Service", where.service, cfg.namespace)
        manifest = next(o for o in release.objects if ref(o) == where.workload)
        workload = kube.get(
            api,
            str(manifest["apiVersion"]),
            str(manifest["kind"]),
            name_of(manifest),
            cfg.namespace,
        )
    except GateError as e:
        release.close()
        return Found(why_not=f"the live objects could not be read: {e}")
    if live is None or workload is None:
        release.close()
        return Found(
            why_not=f"Service {where.service} or {where.workload} is not live in namespace "
            f"{cfg.namespace}"
        )
    live_tag = _live_tag(workload, where.container)
    with ExitStack() as stack:
        stack.callback(release.close)
        url = stack.enter_context(release.endpoint())
        probe = stack.enter_context(
            HttpClient(
                url,
                model="",
                timeout=cfg.request_timeout,
                health={},
                session=credentials.session(cfg),
            )
        )
        wait_answering(probe, deadline=time.monotonic() + cfg.timeouts.endpoint)
        found = detect.detect(probe, opts.hints)
        say(f"rolloutgate init: protocol {found.protocol.name} ({'; '.join(found.seen)})")
        template = _template(found, opts, probe)
        golden = cases.parse(template, opts.golden or Path("golden.json"), requests_only=True)
        client = stack.enter_context(client_for(url, golden, cfg))
        source = f"cluster {opts.profile}, namespace {cfg.namespace}, image " + (
            f"{where.image}:{live_tag}" if live_tag else where.image
        )
        data = recording.record(
            client,
            golden,
            recording.Tolerances(),
            source=source,
            tags={live_tag} if live_tag else (),
        )
        latency = measure_latency(lambda: client.send(golden.cases[0].request), LATENCY_REQUESTS)
    if latency.samples_ms:
        budget = {
            "requests": LATENCY_REQUESTS,
            "p50_ms": max(LATENCY_FLOOR_MS[0], round(latency.p50_ms * LATENCY_SLACK)),
            "p95_ms": max(LATENCY_FLOOR_MS[1], round(latency.p95_ms * LATENCY_SLACK)),
        }
        say(
            f"rolloutgate init: latency {latency.summary()}; budget p50 {budget['p50_ms']} ms, "
            f"p95 {budget['p95_ms']} ms ({LATENCY_SLACK}x, at least {LATENCY_FLOOR_MS[0]} and "
            f"{LATENCY_FLOOR_MS[1]} ms: tighten it in the golden file)"
        )
        data = {k: v for k, v in data.items() if k != "cases"} | {
            "latency": budget,
            "cases": data["cases"],
        }
    say(f"rolloutgate init: recorded {len(data['cases'])} case(s) from {source}")
    return Found(golden=data, protocol=found, live_tag=live_tag)


def _live_tag(workload: Obj, container: str) -> str | None:
    for c in at(workload, "spec", "template", "spec", "containers") or []:
        if c.get("name") == container:
            return ImageRef.parse(str(c.get("image"))).tag
    return None


def _template(
    found: detect.Detected | None, opts: Options, probe: HttpClient | None = None
) -> dict[str, Any]:
    """The golden file's requests: the bodies the team named (``--request``), else, for a V2
    model, zeros of its inputs (from its metadata)."""
    protocol = found.protocol if found else None
    out: dict[str, Any] = {
        "protocol": protocol.name if protocol else (opts.hints.protocol or "plain")
    }
    model = found.model if found else opts.hints.model
    if model:
        out["model"] = model
    if found and found.health:
        out["health"] = dict(found.health)
    bodies: list[tuple[str, Any]] = []
    for path in opts.requests:
        try:
            bodies.append((path.stem, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError) as e:
            raise ConfigError(f"--request {path}: not a JSON request body ({e})") from e
    if not bodies and protocol is not None and protocol.name == "v2" and probe is not None:
        body = detect.v2_request(probe, model or "")
        if body is not None:
            bodies.append(("zeros", body))
    if not bodies:
        raise ConfigError(
            "no request to record answers for: name a JSON request body the model answers "
            "with --request=FILE (repeat it for more cases)"
        )
    predict_path = (found.predict_path if found else None) or opts.hints.predict_path
    cases_out = []
    for name, body in bodies:
        if predict_path is None and protocol is not None and protocol.name == "v2":
            request: Any = body  # the V2 inference body, in the golden file's short form
        else:
            request = {"body": body}
            if predict_path is not None:
                request = {"path": predict_path, **request}
        cases_out.append({"name": name, "request": request})
    out["cases"] = cases_out
    return out


def _gate_tables(opts: Options, where: Target, tool: dict[str, Any]) -> str:
    """``[tool.rolloutgate]`` and the profile, with a comment on each setting."""
    project = {
        "manifests": tool["manifests"],
        "golden": tool["golden"],
        "images": [where.image],
        "container": where.container,
        "service": where.service,
        "port": where.port,
    }
    comments = {
        "manifests": "Written by `rolloutgate init`; every setting: docs/gate.md.",
        "images": "Only these images get --image-tag (without it every image of the workloads\n"
        "would, sidecars' and init containers' too).",
        "container": "The serving container: the in-pod checks run in it.",
        "service": "The checks reach the model through this Service and port.",
    }
    text = files.table("tool.rolloutgate", project, comments)
    text += (
        '# Turn on the checks a setting decides (listed as "not configured" until then):\n'
        '# model_file = "/path/of/the/model/in/the/container"\n'
        '# metrics = { path = "/metrics", counter = "requests_served" }\n'
    )
    profile = tool["clusters"][opts.profile]
    text += "\n" + files.table(
        f"tool.rolloutgate.clusters.{opts.profile}",
        profile,
        {"context": f"`pytest --cluster={opts.profile}`: this kubeconfig context and namespace."},
    )
    return text
