"""Commands of rolloutgate outside pytest: ``python -m rolloutgate record ...``.

The gate itself runs as pytest (``pytest --cluster=NAME``); this entry point holds what is
not a test run. Settings resolve as in the gate (option → env → profile → [tool.rolloutgate]
→ default), from the pyproject.toml in or above the current directory.
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
from rolloutgate.checks import cases, recording
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
    parser = argparse.ArgumentParser(prog="python -m rolloutgate")
    commands = parser.add_subparsers(dest="command", required=True)
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
            source = f"cluster {cfg.cluster}, namespace {cfg.namespace}" + _images(api, cfg, objs)
        client = stack.enter_context(cases.client_for(url, golden, cfg))
        wait_answering(client, deadline=deadline)
        data = recording.record(
            client, golden, recording.Tolerances(args.abs_tol, args.rel_tol), source=source
        )
    recording.write(data, args.out)
    print(
        f"rolloutgate record: wrote {len(data['cases'])} cases to {args.out} "
        f"(answers of {source}; template {cfg.golden})"
    )
    return 0


def _images(api: ApiClient, cfg: config.GateConfig, objs: list[dict[str, Any]]) -> str:
    """``, images a:v1`` of the live workloads (what the answers belong to); '' if unknown."""
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
    return f", images {', '.join(sorted(set(found)))}" if found else ""


if __name__ == "__main__":
    sys.exit(main())
