"""Commands of rolloutgate outside pytest: ``rolloutgate init ...``, ``rolloutgate record
...`` and ``rolloutgate canary-verdict REPORT`` (also ``python -m rolloutgate ...``).

The gate itself runs as pytest (``pytest --cluster=NAME``); this entry point holds what is
not a test run. ``record``'s settings resolve as in the gate (option → env → profile →
[tool.rolloutgate] → default), from the pyproject.toml in or above the current directory;
``init`` writes that pyproject.toml.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rolloutgate import config
from rolloutgate.checks import cases, httpclient, recording
from rolloutgate.checks.client import wait_answering
from rolloutgate.errors import ConfigError, GateError

if TYPE_CHECKING:
    from kubernetes.client import ApiClient


def _rootdir(start: Path) -> Path:
    """The nearest directory at or above ``start`` with a pyproject.toml (else ``start``)."""
    for candidate in (start, *start.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return start


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rolloutgate")
    commands = parser.add_subparsers(dest="command", required=True)
    _init_parser(commands)
    verdict = commands.add_parser(
        "canary-verdict",
        help="judge a canary report's evidence again (every sample is in the JSON report)",
        description="Recompute a canary run's verdict from its JSON report (--canary-report): "
        "every input and sample, judged with the report's own thresholds; exits with the "
        "verdict's status (0 pass, 1 fail, 6 marginal, 7 inconclusive; 4 not a report).",
    )
    verdict.add_argument("report", type=Path, metavar="REPORT", help="the canary's JSON report")
    rec = commands.add_parser(
        "record",
        help="send the golden file's requests to the live release and write its answers",
        description=recording.__doc__.split("\n\n")[0] if recording.__doc__ else None,
    )
    add = rec.add_argument
    add(
        "--cluster",
        dest="rolloutgate_cluster",
        metavar="NAME",
        type=config.name,
        help="profile or kubeconfig context of the live release (or ROLLOUTGATE_CLUSTER)",
    )
    add("--out", required=True, type=Path, metavar="FILE", help="golden file to write")
    add("--force", action="store_true", help="overwrite FILE if it exists")
    add(
        "--golden",
        dest="rolloutgate_golden",
        metavar="FILE",
        type=config.path,
        help="golden file whose requests are sent (default: the profile's); its cases may "
        "leave expect out",
    )
    add("--namespace", dest="rolloutgate_namespace", metavar="NS", type=config.namespace)
    add("--context", dest="rolloutgate_context", metavar="NAME", type=config.name)
    add("--kubeconfig", dest="kubeconfig", metavar="PATH", type=config.path)
    add(
        "--endpoint-url",
        dest="rolloutgate_endpoint_url",
        metavar="URL",
        type=config.url,
        help="reach the release at this URL instead of a port-forward (no cluster needed)",
    )
    add(
        "--abs-tol",
        type=config.seconds,
        default=recording.Tolerances.abs_tol,
        metavar="X",
        help="tolerance suggested for recorded scores within [0, 1] (default: %(default)g)",
    )
    add(
        "--rel-tol",
        type=config.seconds,
        default=recording.Tolerances.rel_tol,
        metavar="X",
        help="relative tolerance suggested for other real numbers (default: %(default)g)",
    )
    return parser


def _init_parser(commands: Any) -> None:
    init = commands.add_parser(
        "init",
        help="write the gate suite, a pyproject.toml profile, a golden file recorded from the "
        "live release and a CI workflow into this repository",
        description="From the manifests and, when it answers, the live release: conftest.py, "
        "tests/deploy, tests/smoke, pyproject.toml ([tool.pytest.ini_options] testpaths, "
        "[tool.rolloutgate], a profile), a golden file whose protocol is asked of the live "
        "Service and whose answers are recorded, .github/workflows/release-gate.yml. An "
        "existing file is never overwritten without --force.",
    )
    add = init.add_argument
    add("--cluster", required=True, metavar="NAME", type=config.name,
        help="the profile to write ([tool.rolloutgate.clusters.NAME]); also its kubeconfig "
        "context unless --context names another")  # fmt: skip
    add("--context", metavar="NAME", type=config.name, help="kubeconfig context (default: NAME)")
    add("--kubeconfig", metavar="PATH", type=Path, help="kubeconfig file (default: kubectl's)")
    add("--namespace", metavar="NS", type=config.namespace,
        help="namespace of the release (default: the manifests', else default)")  # fmt: skip
    add("--manifests", required=True, metavar="DIR", type=Path,
        help="the manifests: plain files, a kustomize directory or a Helm chart")  # fmt: skip
    add("--service", metavar="NAME", type=config.name,
        help="the Service the checks go through (default: the manifests' only one)")  # fmt: skip
    add("--container", metavar="NAME", type=config.name,
        help="the serving container (default: the one the Service's port targets)")  # fmt: skip
    add("--protocol", choices=("v2", "v1", "plain"),
        help="the server's protocol (default: asked of the live server)")  # fmt: skip
    add("--model", metavar="NAME", help="the model's name (v2, v1; default: the live one's)")
    add("--predict-path", metavar="PATH", type=config.http_path,
        help="where predictions are posted, when not the protocol's (plain: /predict)")  # fmt: skip
    add("--live-path", metavar="PATH", type=config.http_path, help="liveness path (plain)")
    add("--ready-path", metavar="PATH", type=config.http_path, help="readiness path (plain)")
    add("--request", metavar="FILE", type=Path, action="append", default=[],
        help="a JSON request body the model answers: one golden case each (repeatable; V2 "
        "default: zeros of the model's inputs)")  # fmt: skip
    add("--golden", metavar="FILE", type=Path,
        help="golden file to write (default: fixtures/golden/SERVICE.json)")  # fmt: skip
    add("--secret", metavar="NAME",
        help="the CI secret holding the kubeconfig (default: KUBECONFIG_<NAME>)")  # fmt: skip
    add("--dir", metavar="DIR", type=Path, default=Path("."),
        help="the repository to write into (default: the current directory)")  # fmt: skip
    add("--force", action="store_true", help="overwrite files that exist")


def _init(args: argparse.Namespace) -> int:
    from rolloutgate.checks.detect import Hints
    from rolloutgate.init import command

    root = args.dir.resolve()

    def under_root(path: Path | None) -> Path | None:
        return None if path is None else (path if path.is_absolute() else Path.cwd() / path)

    opts = command.Options(
        root=root,
        profile=args.cluster,
        context=args.context,
        kubeconfig=under_root(args.kubeconfig),
        namespace=args.namespace,
        manifests=under_root(args.manifests) or root,
        service=args.service,
        container=args.container,
        hints=Hints(args.protocol, args.model, args.predict_path, args.live_path, args.ready_path),
        requests=[p for p in (under_root(r) for r in args.request) if p is not None],
        golden=under_root(args.golden),
        secret=args.secret or "KUBECONFIG_" + args.cluster.upper().replace("-", "_"),
        force=args.force,
    )
    return command.run(opts, print)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "canary-verdict":
        return _canary_verdict(args.report)
    if args.command == "init":
        try:
            return _init(args)
        except ConfigError as e:
            print(f"rolloutgate init: {e}", file=sys.stderr)
            return 2
        except GateError as e:
            print(f"rolloutgate init: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
    if args.out.exists() and not args.force:
        print(f"rolloutgate record: {args.out} exists; pass --force to overwrite", file=sys.stderr)
        return 2
    try:
        return _record(args)
    except recording.RecordingRefused as e:
        print(f"rolloutgate record: {e}", file=sys.stderr)
        return 1
    except ConfigError as e:
        print(f"rolloutgate record: {e}", file=sys.stderr)
        return 2
    except GateError as e:
        print(f"rolloutgate record: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


def _canary_verdict(path: Path) -> int:
    """Judge a canary report's evidence again; exit with the verdict's status."""
    import json

    from rolloutgate.canary import evidence
    from rolloutgate.canary.report import USAGE_ERROR_EXIT

    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        judgement = evidence.rejudge(report)
    except (OSError, ValueError, ConfigError) as e:
        print(f"rolloutgate canary-verdict: {path}: {e}", file=sys.stderr)
        return USAGE_ERROR_EXIT
    print(f"{path}: {judgement.verdict.upper()} (score {judgement.score:g}) - {judgement.reason}")
    for m in judgement.metrics:
        crit = " critical" if m.critical and m.verdict == "fail" else ""
        print(f"  {m.name:<15} {m.verdict}{crit}: {m.reason}")
    recorded = (report.get("verdict"), report.get("score"))
    if recorded != (judgement.verdict, judgement.score):
        print(f"the report says {recorded[0]} (score {recorded[1]}): the verdicts differ")
    else:
        print("the report's verdict and score are the same")
    return judgement.exit_status


def _record(args: argparse.Namespace) -> int:
    from rolloutgate import kube
    from rolloutgate.release.engine import Release
    from rolloutgate.release.report import GateRun

    cwd = Path.cwd()
    rootdir = _rootdir(cwd)
    options = {k: v for k, v in vars(args).items() if k.startswith("rolloutgate_")}
    options["kubeconfig"] = args.kubeconfig
    cfg = config.resolve(
        options,
        env=config.environ(),
        tool=config.read_pyproject(rootdir),
        rootdir=rootdir,
        invocation_dir=cwd,
        list_contexts=kube.contexts,
    )
    if cfg.cluster is None and cfg.endpoint_url is None:
        raise ConfigError("record needs --cluster NAME (a profile or context) or --endpoint-url")
    golden = cases.load(cfg.golden, requests_only=True, protocol=cfg.protocol)
    deadline = time.monotonic() + cfg.timeouts.endpoint
    images: list[str] = []
    with ExitStack() as stack:
        if cfg.endpoint_url is not None:
            url, source = cfg.endpoint_url, cfg.endpoint_url
        else:
            # The release engine's steps, as a gate takes them: render, connect, endpoint.
            release = Release(cfg, GateRun(cfg), golden=lambda: golden)
            objs = release.render()
            api = release.connect()
            stack.callback(release.close)
            url = stack.enter_context(release.endpoint())
            images = _images(api, cfg, objs)
            source = f"cluster {cfg.cluster}, namespace {cfg.namespace}" + (
                f", images {', '.join(images)}" if images else ""
            )
        client = stack.enter_context(httpclient.client_for(url, golden, cfg))
        wait_answering(client, deadline=deadline)
        from rolloutgate.manifests import ImageRef

        data = recording.record(
            client,
            golden,
            recording.Tolerances(args.abs_tol, args.rel_tol),
            source=source,
            tags={t for i in images if (t := ImageRef.parse(i).tag)},
        )
    recording.write(data, args.out)
    print(
        f"rolloutgate record: wrote {len(data['cases'])} cases to {args.out} "
        f"(answers of {source}; template {cfg.golden})"
    )
    return 0


def _images(api: ApiClient, cfg: config.GateConfig, objs: list[dict[str, Any]]) -> list[str]:
    """The images of the live workloads (what the answers belong to), sorted; [] if unknown."""
    from rolloutgate import kube
    from rolloutgate.objects import name_of
    from rolloutgate.workloads import workloads

    found = []
    for obj in workloads(objs):
        try:
            live = kube.get(api, obj["apiVersion"], obj["kind"], name_of(obj), cfg.namespace)
        except GateError:  # the note is a courtesy; recording goes on without it
            continue
        template = ((live or {}).get("spec") or {}).get("template") or {}
        found += [str(c.get("image")) for c in (template.get("spec") or {}).get("containers", [])]
    return sorted(set(found))


if __name__ == "__main__":
    sys.exit(main())
