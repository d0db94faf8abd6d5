"""The gate's settings, and where each one came from.

Each setting is resolved, first found wins: command-line option → environment variable
``ROLLOUTGATE_<NAME>`` → the cluster profile ``[tool.rolloutgate.clusters.<cluster>]`` → the
project table ``[tool.rolloutgate]`` → the default below. Every default users tune lives here.

Converters raise ``argparse.ArgumentTypeError`` naming the accepted format, so the same function
serves as an option's ``type=`` (argparse turns it into a usage error) and checks values read
from the environment and from pyproject.toml (``resolve`` turns those into ``ConfigError``s
naming where the value came from).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolloutgate.errors import ConfigError
from rolloutgate.objects import IMAGE_TAG

ENV_PREFIX = "ROLLOUTGATE_"
KIND = "kind"  # --cluster value for a throwaway kind cluster (pytest-kind)
# A namespace name is an RFC 1123 label.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


# ---------------------------------------------------------------------------------------------
# Converters: str (or a TOML value) -> value, or ArgumentTypeError naming the accepted format.


def image_tag(value: object) -> str:
    """A Docker image tag: ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``."""
    text = str(value)
    if not IMAGE_TAG.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid image tag {text!r}: a tag is 1-128 characters of letters, digits, "
            "'_', '.' and '-', not starting with '.' or '-' (e.g. v2, 1.4.0-rc1)"
        )
    return text


def seconds(value: object) -> float:
    """A positive number of seconds."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(
            f"invalid timeout {value!r}: expected a number of seconds > 0 (e.g. 300 or 90.5)"
        )
    return number


def count(value: object) -> int:
    """A whole number >= 0."""
    try:
        number = int(str(value))
    except ValueError:
        number = -1
    if number < 0 or isinstance(value, bool):
        raise argparse.ArgumentTypeError(
            f"invalid count {value!r}: expected a whole number >= 0 (e.g. 0 or 3)"
        )
    return number


def namespace(value: object) -> str:
    """A Kubernetes namespace name (an RFC 1123 label)."""
    text = str(value)
    if not _LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid namespace {text!r}: expected at most 63 lower-case letters, digits and "
            "'-', starting and ending with a letter or digit (e.g. iris-staging)"
        )
    return text


def url(value: object) -> str:
    """An http(s) URL with a host; no trailing slash. Its userinfo (``user:password@``) is
    kept for the requests and never shown (``redact.url``)."""
    from urllib.parse import urlsplit  # lazily: plugin start-up costs every pytest run

    text = str(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc.rpartition("@")[2]:
        from rolloutgate import redact

        raise argparse.ArgumentTypeError(
            f"invalid URL {redact.url(text)!r}: expected http://HOST[:PORT][/PATH] or https://..."
        )
    return text.rstrip("/")


@dataclass(frozen=True)
class Header:
    """A request header for the endpoint. ``source`` is ``env:NAME`` (read from the
    environment), ``file:PATH`` (a file's content, trailing newline dropped) or the value itself;
    it is never shown (``repr`` hides it), only ``origin`` is."""

    name: str
    source: str = field(repr=False)

    @property
    def origin(self) -> str:
        """Where the value comes from, for messages: ``env MODEL_TOKEN``, never the value."""
        kind, _, ref = self.source.partition(":")
        if kind == "env" and ref:
            return f"env {ref}"
        if kind == "file" and ref:
            return f"file {ref}"
        return "a value written in the settings"


# RFC 9110 token characters: a header name.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def headers(value: object) -> tuple[Header, ...]:
    """Request headers: a TOML table, or a JSON object in the environment; each value is
    ``env:NAME``, ``file:PATH`` or a literal. Messages name headers, never values."""
    import json  # lazily: plugin start-up costs every pytest run

    table = value
    if isinstance(value, str):
        try:
            table = json.loads(value)
        except ValueError:
            table = None
    accepted = (
        'expected a table of header names to "env:VARIABLE", "file:PATH" or a value, e.g. '
        'headers = {Authorization = "env:MODEL_TOKEN"} (in the environment as JSON: '
        '{"Authorization": "env:MODEL_TOKEN"})'
    )
    if not isinstance(table, dict):
        raise argparse.ArgumentTypeError(f"invalid headers (values not shown): {accepted}")
    found: list[Header] = []
    for key, source in table.items():
        if not _TOKEN.fullmatch(str(key)) or not isinstance(source, str):
            raise argparse.ArgumentTypeError(
                f"invalid header {str(key)[:40]!r} (value not shown): {accepted}"
            )
        found.append(Header(str(key), source))
    return tuple(found)


def name(value: object) -> str:
    """A non-empty name without spaces (cluster profile, kubeconfig context, object name)."""
    text = str(value)
    if not text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(
            f"invalid name {text!r}: expected a non-empty name without spaces"
        )
    return text


def path(value: object) -> str:
    """A non-empty filesystem path (made absolute by ``resolve``)."""
    text = str(value)
    if not text:
        raise argparse.ArgumentTypeError("invalid path '': expected a file or directory path")
    return text


def flag(value: object) -> bool:
    """true/false (1/0, yes/no, on/off) from the environment, or a TOML boolean."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise argparse.ArgumentTypeError(
        f"invalid boolean {value!r}: expected one of 1/0, true/false, yes/no, on/off"
    )


def images(value: object) -> tuple[str, ...]:
    """Image names (registry/repository, no tag): a TOML list or a comma-separated string."""
    items = value if isinstance(value, list) else str(value).split(",")
    names = tuple(str(i).strip() for i in items if str(i).strip())
    if not names or any(":" in n.rsplit("/", 1)[-1] or "@" in n for n in names):
        raise argparse.ArgumentTypeError(
            f"invalid image names {value!r}: expected image names without tag or digest, "
            'e.g. ["rolloutgate/iris"] or rolloutgate/iris,registry.example/other'
        )
    return names


def port(value: object) -> int | str:
    """A Service port: a number 1-65535 or a port name."""
    text = str(value)
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    if _LABEL.fullmatch(text) and not text.isdigit():
        return text
    raise argparse.ArgumentTypeError(
        f"invalid port {value!r}: expected a port number 1-65535 or a Service port name"
    )


def paths(value: object) -> tuple[str, ...]:
    """File paths: a TOML list or a comma-separated string (made absolute by ``resolve``)."""
    items = value if isinstance(value, list) else str(value).split(",")
    found = tuple(str(i).strip() for i in items if str(i).strip())
    if not found:
        raise argparse.ArgumentTypeError(
            f'invalid paths {value!r}: expected file paths, e.g. ["values-staging.yaml"]'
        )
    return found


def http_path(value: object) -> str:
    """An URL path starting with '/'; ``{model}`` is replaced by the golden file's model."""
    text = str(value)
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(
            f"invalid HTTP path {text!r}: expected a path starting with '/', "
            "e.g. /v2/models/{model}/ready"
        )
    return text


# A Prometheus metric name, and a label name.
_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def metric_name(value: object) -> str:
    """A Prometheus metric name ``[a-zA-Z_:][a-zA-Z0-9_:]*``."""
    text = str(value)
    if not _METRIC.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"invalid metric name {text!r}: expected [a-zA-Z_:][a-zA-Z0-9_:]*, "
            "e.g. model_infer_request_success"
        )
    return text


def metric_labels(value: object) -> tuple[tuple[str, str], ...]:
    """Label matchers: a TOML table ``{outcome = "ok"}`` or ``outcome=ok,model=wine``."""
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = [tuple(p.split("=", 1)) for p in str(value).split(",") if p.strip()]  # type: ignore[misc]
    if any(len(p) != 2 or not _LABEL_NAME.fullmatch(p[0].strip()) for p in pairs):
        raise argparse.ArgumentTypeError(
            f"invalid metric labels {value!r}: expected a table of label = value, "
            'e.g. {outcome = "ok"}, or outcome=ok,model=wine'
        )
    return tuple(sorted((k.strip(), v.strip()) for k, v in pairs))


# ---------------------------------------------------------------------------------------------
# The settings.


@dataclass(frozen=True)
class Timeouts:
    """Deadline of each phase, in seconds."""

    lock: float = 120.0
    rollout: float = 300.0
    endpoint: float = 60.0
    rollback: float = 300.0
    lease: float = 60.0
    # How long a single API step (snapshot, dry-run, apply, record, diagnostics) keeps retrying
    # a restarting or overloaded API server before it gives up.
    api: float = 90.0


@dataclass(frozen=True)
class HealthPaths:
    """Health endpoints; V2 (Open Inference Protocol) paths unless configured."""

    live: str = "/v2/health/live"
    ready: str = "/v2/health/ready"
    model_ready: str = "/v2/models/{model}/ready"


@dataclass(frozen=True)
class MetricsCheck:
    """Where the release's pods serve Prometheus metrics and which counter counts predictions.

    ``port``: a container port number or name (None: the port the Service targets).
    ``labels``: only samples with these label values count.
    """

    path: str
    counter: str
    port: int | str | None = None
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class GateConfig:
    """Everything a gate run needs to know, resolved once per session.

    ``cluster is None`` means no gate was asked for: the project's own tests run without one.
    ``sources`` maps each setting's name to where its value came from (for the report header).
    """

    cluster: str | None
    kind: bool
    kubeconfig: Path | None
    context: str | None
    namespace: str
    image_tag: str | None
    images: tuple[str, ...] | None
    manifests: Path
    golden: Path
    endpoint_url: str | None
    headers: tuple[Header, ...]
    service: str | None
    port: int | str | None
    timeouts: Timeouts
    max_restarts: int
    ready_grace: float | None
    unschedulable_grace: float
    rollback: bool
    dry_run: bool
    report: Path
    health: HealthPaths
    request_timeout: float
    lock_name: str | None
    rootdir: Path
    recover: bool = False
    metrics: MetricsCheck | None = None
    values: tuple[Path, ...] = ()
    helm_release: str | None = None
    kubectl: str = "kubectl"
    helm: str = "helm"
    restart_on_config_change: bool = False
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        """Whether a cluster was given, i.e. the gate may deploy."""
        return self.cluster is not None

    @property
    def target(self) -> str:
        """Human-readable target, e.g. ``staging (context staging-admin, namespace iris)``."""
        context = "kind cluster" if self.kind else f"context {self.context or '(current)'}"
        return f"{self.cluster} ({context}, namespace {self.namespace})"


@dataclass(frozen=True)
class Setting:
    """How one setting is looked up, and its option. ``key`` is its dotted name in the pyproject
    tables; ``flag`` its command-line option (None: no option); ``const`` makes the option a
    flag that stores it (``--dry-run``)."""

    key: str
    convert: Callable[[object], Any]
    default: Any = None
    flag: str | None = None
    help: str = ""
    metavar: str | None = None
    const: Any = None
    env_name: str | None = None  # default: from the flag (--rollout-timeout: ROLLOUT_TIMEOUT)
    profile: bool = True  # may a cluster profile set it?
    project: bool = True  # may [tool.rolloutgate] set it?
    is_path: bool = False
    dest: str | None = None  # the argparse dest; default rolloutgate_<flag>
    define: bool = True  # False: another plugin defines the option, the gate only reads it

    @property
    def option(self) -> str | None:
        """The argparse dest of its option, if it has one. Prefixed so that no other plugin's
        option can clash with it."""
        if self.dest is not None:
            return self.dest
        if self.flag is None:
            return None
        return "rolloutgate_" + self.flag.lstrip("-").replace("-", "_")

    @property
    def env(self) -> str:
        base = self.env_name or (self.flag or self.key).lstrip("-").replace("-", "_")
        return ENV_PREFIX + base.replace(".", "_").upper()

    @property
    def help_text(self) -> str:
        """The option's help, with its default and environment variable."""
        default = (
            "" if self.default is None or self.const is not None else f"default: {self.default}; "
        )
        return f"{self.help} ({default}env {self.env})."


CLUSTER = Setting(
    "cluster",
    name,
    None,
    "--cluster",
    "Target: a profile [tool.rolloutgate.clusters.NAME] in pyproject.toml, else a kubeconfig "
    "context, else 'kind' (a throwaway kind cluster). Gate tests need it",
    metavar="NAME",
    profile=False,
    project=False,
)

# The one table of settings: defaults, options and their help are all here.
SETTINGS: tuple[Setting, ...] = (
    # --kubeconfig is pytest-kind's option (a dependency defines it); the gate reads it.
    Setting(
        "kubeconfig", path, None, "--kubeconfig", dest="kubeconfig", is_path=True, define=False
    ),
    Setting(
        "context",
        name,
        None,
        "--context",
        "Kubeconfig context (overrides the profile's). The kubeconfig itself is --kubeconfig "
        "(an option shared with pytest-kind) or ROLLOUTGATE_KUBECONFIG",
        metavar="NAME",
    ),
    Setting(
        "namespace",
        namespace,
        "default",
        "--namespace",
        "Namespace to deploy into; created if missing",
        metavar="NS",
    ),
    Setting(
        "image_tag",
        image_tag,
        None,
        "--image-tag",
        "Image tag to deploy, set on the configured images (default: the tags in the "
        "manifests). Docker tag grammar: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
        metavar="TAG",
        project=False,
    ),
    Setting("images", images, None),
    Setting(
        "manifests",
        path,
        "manifests",
        "--manifests",
        "Directory of Kubernetes manifests (*.yaml, *.yml, *.json) to deploy",
        metavar="DIR",
        is_path=True,
    ),
    Setting(
        "golden",
        path,
        "golden.json",
        "--golden",
        "Golden file of prediction cases and the latency budget (JSON)",
        metavar="FILE",
        is_path=True,
    ),
    Setting(
        "endpoint_url",
        url,
        None,
        "--endpoint-url",
        "Reach the release at this URL (e.g. a staging ingress) instead of a port-forward",
        metavar="URL",
    ),
    # Request headers of the checks, the endpoint wait and the rollback's verification; values
    # from the environment or files (credentials), never shown.
    Setting("headers", headers, None),
    Setting("service", name, None),
    Setting("port", port, None),
    *(
        Setting(
            f"timeouts.{phase}",
            seconds,
            getattr(Timeouts, phase),
            f"--{phase}-timeout",
            f"Seconds to wait for {what}",
            metavar="SECONDS",
        )
        for phase, what in (
            ("lock", "another gate's lock on the target"),
            ("rollout", "the new release to become ready"),
            ("endpoint", "the endpoint to answer"),
            ("rollback", "the rollback to be restored and ready"),
        )
    ),
    Setting("timeouts.request", seconds, 10.0, env_name="REQUEST_TIMEOUT"),
    # A crashed gate's lease expires after this long; a live gate renews it every third of it.
    Setting("timeouts.lease", seconds, Timeouts.lease, env_name="LEASE_TIMEOUT"),
    # A restarting API server is waited for this long by each step that has no deadline of its own.
    Setting("timeouts.api", seconds, Timeouts.api, env_name="API_TIMEOUT"),
    Setting(
        "max_restarts",
        count,
        0,
        "--max-restarts",
        "Exits a new pod's container may have since the apply, ready or not, while the release "
        "still passes; the next one fails the rollout at once (0: its first non-zero exit)",
        metavar="N",
    ),
    Setting(
        "ready_grace",
        seconds,
        None,
        "--ready-grace",
        "Fail the rollout when a new pod's server has answered its readiness probe with an "
        "HTTP status (a definite 'not ready') for longer than this; off unless set. Must "
        "cover the model's load time",
        metavar="SECONDS",
    ),
    Setting(
        "unschedulable_grace",
        seconds,
        30.0,
        "--unschedulable-grace",
        "How long an unschedulable new pod waits for an autoscaler to announce a scale-up "
        "before the rollout fails",
        metavar="SECONDS",
    ),
    Setting(
        "rollback",
        flag,
        True,
        "--no-rollback",
        "On failure leave the failed release in place for debugging",
        const=False,
        env_name="ROLLBACK",
        dest="rolloutgate_rollback",
    ),
    Setting(
        "dry_run",
        flag,
        False,
        "--dry-run",
        "Validate every manifest with a server-side dry-run and print the diff against the "
        "live objects; apply nothing and skip the checks that need a release",
        const=True,
        profile=False,
        project=False,
    ),
    Setting(
        "recover",
        flag,
        False,
        "--recover",
        "Deploy nothing: restore the last release a gate verified (from the release record in "
        "the cluster) and verify it, e.g. after a gate was killed",
        const=True,
        profile=False,
        project=False,
    ),
    Setting(
        "report",
        path,
        "reports/gate.json",
        "--gate-report",
        "Where to write the JSON gate report",
        metavar="PATH",
        is_path=True,
        dest="rolloutgate_report",
    ),
    Setting("health.live", http_path, HealthPaths.live),
    Setting("health.ready", http_path, HealthPaths.ready),
    Setting("health.model_ready", http_path, HealthPaths.model_ready),
    Setting("lock_name", name, None),
    # The metrics check (metrics.py) runs when metrics.path is set.
    Setting("metrics.path", http_path, None),
    Setting("metrics.port", port, None),
    Setting("metrics.counter", metric_name, None),
    Setting("metrics.labels", metric_labels, None),
    # Manifest sources: a Helm chart's values files (a profile names its own: staging vs prod),
    # its release name (default: the chart directory's name), and the tools that render them.
    Setting("values", paths, (), is_path=True),
    Setting("helm_release", name, None),
    Setting("kubectl", path, "kubectl"),
    Setting("helm", path, "helm"),
    Setting(
        "restart_on_config_change",
        flag,
        False,
        "--restart-on-config-change",
        "When the release changes a ConfigMap or Secret a workload uses but not the workload, "
        "restart it as `kubectl rollout restart` does (else the gate only warns)",
        const=True,
    ),
)


def read_pyproject(rootdir: Path) -> dict[str, Any]:
    """The ``[tool.rolloutgate]`` table of ``rootdir/pyproject.toml`` ({} without one)."""
    file = rootdir / "pyproject.toml"
    if not file.is_file():
        return {}
    import tomllib  # lazily: plugin start-up costs every pytest run

    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{file} cannot be read as TOML: {e}") from e
    table = data.get("tool", {}).get("rolloutgate", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: [tool.rolloutgate] must be a table")
    return table


def _lookup(table: Mapping[str, Any], dotted: str) -> Any:
    """``table["a"]["b"]`` for ``"a.b"``; None where any part is missing."""
    value: Any = table
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def resolve(
    options: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    tool: Mapping[str, Any],
    rootdir: Path,
    invocation_dir: Path,
    list_contexts: Callable[[str | None], list[str]],
) -> GateConfig:
    """Resolve every setting; ConfigError names the bad value, where it came from and what fits.

    ``options`` maps option dests to values (None: not given). ``list_contexts(kubeconfig)``
    returns the kubeconfig's context names; it is only called when a cluster is given.
    """
    profiles = tool.get("clusters", {})
    if not isinstance(profiles, Mapping):
        raise ConfigError("[tool.rolloutgate.clusters] must be a table of cluster profiles")
    sources: dict[str, str] = {}

    cluster, sources["cluster"] = _resolve_one(
        CLUSTER, options, env, None, None, {}, rootdir, invocation_dir
    )
    if cluster is None:
        sources["cluster"] = "not given"
    profile = profiles.get(cluster) if cluster is not None else None
    if profile is not None and not isinstance(profile, Mapping):
        raise ConfigError(f"[tool.rolloutgate.clusters.{cluster}] must be a table")

    values: dict[str, Any] = {}
    for setting in SETTINGS:
        values[setting.key], sources[setting.key] = _resolve_one(
            setting, options, env, profile, cluster, tool, rootdir, invocation_dir
        )

    kind = False
    if cluster is not None and profile is None:
        # Not a profile: a kubeconfig context, else a throwaway kind cluster.
        kubeconfig = values["kubeconfig"]
        known = _contexts_or_none(list_contexts, kubeconfig)
        if not isinstance(known, ConfigError) and cluster in known:
            if values["context"] not in (None, cluster):
                raise ConfigError(
                    f"--cluster {cluster} names a kubeconfig context, and the context is also "
                    f"set to {values['context']!r} ({sources['context']}); give one of them"
                )
            values["context"], sources["context"] = cluster, "--cluster (kubeconfig context)"
        elif cluster == KIND:
            kind = True
            sources["context"] = "kind cluster (pytest-kind)"
        else:
            raise ConfigError(
                f"unknown cluster {cluster!r} ({sources['cluster']}): it is neither a profile "
                f"in {rootdir / 'pyproject.toml'} [tool.rolloutgate.clusters.NAME], nor a context "
                f"in kubeconfig {kubeconfig or '(default)'}, nor 'kind'. "
                f"Profiles: {_names(profiles)}; contexts: {_names(known)}"
            )
    elif cluster is not None and values["context"] is not None:
        known = _contexts_or_none(list_contexts, values["kubeconfig"])
        if isinstance(known, ConfigError) or values["context"] not in known:
            raise ConfigError(
                f"kubeconfig context {values['context']!r} ({sources['context']}) not found "
                f"in kubeconfig {values['kubeconfig'] or '(default)'} "
                f"({sources['kubeconfig']}). Contexts: {_names(known)}; "
                f"profiles: {_names(profiles)}"
            )
    if cluster is None:
        sources["context"] = "no cluster"
    metrics = None
    if values["metrics.path"] is not None:
        if values["metrics.counter"] is None:
            raise ConfigError(
                f"metrics.path is set ({sources['metrics.path']}) but metrics.counter is not: "
                "name the counter the server increments per prediction request, e.g. "
                'metrics = {path = "/metrics", counter = "model_infer_request_success"}'
            )
        metrics = MetricsCheck(
            path=values["metrics.path"],
            counter=values["metrics.counter"],
            port=values["metrics.port"],
            labels=values["metrics.labels"] or (),
        )

    return GateConfig(
        cluster=cluster,
        kind=kind,
        kubeconfig=values["kubeconfig"],
        context=values["context"],
        namespace=values["namespace"],
        image_tag=values["image_tag"],
        images=values["images"],
        manifests=values["manifests"],
        golden=values["golden"],
        endpoint_url=values["endpoint_url"],
        headers=values["headers"] or (),
        service=values["service"],
        port=values["port"],
        timeouts=Timeouts(
            lock=values["timeouts.lock"],
            rollout=values["timeouts.rollout"],
            endpoint=values["timeouts.endpoint"],
            rollback=values["timeouts.rollback"],
            lease=values["timeouts.lease"],
            api=values["timeouts.api"],
        ),
        max_restarts=values["max_restarts"],
        ready_grace=values["ready_grace"],
        unschedulable_grace=values["unschedulable_grace"],
        rollback=values["rollback"],
        dry_run=values["dry_run"],
        recover=values["recover"],
        report=values["report"],
        health=HealthPaths(
            live=values["health.live"],
            ready=values["health.ready"],
            model_ready=values["health.model_ready"],
        ),
        request_timeout=values["timeouts.request"],
        lock_name=values["lock_name"],
        values=values["values"],
        helm_release=values["helm_release"],
        kubectl=values["kubectl"],
        helm=values["helm"],
        rootdir=rootdir,
        restart_on_config_change=values["restart_on_config_change"],
        metrics=metrics,
        sources=sources,
    )


def resolve_settings(
    settings: Iterable[Setting],
    options: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    tool: Mapping[str, Any],
    cluster: str | None,
    rootdir: Path,
    invocation_dir: Path,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(values, sources) of further settings (the canary's), by the rules of ``resolve``."""
    profiles = tool.get("clusters", {})
    profile = profiles.get(cluster) if isinstance(profiles, Mapping) and cluster else None
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in settings:
        values[setting.key], sources[setting.key] = _resolve_one(
            setting,
            options,
            env,
            profile if isinstance(profile, Mapping) else None,
            cluster,
            tool,
            rootdir,
            invocation_dir,
        )
    return values, sources


def _resolve_one(
    setting: Setting,
    options: Mapping[str, Any],
    env: Mapping[str, str],
    profile: Mapping[str, Any] | None,
    cluster: str | None,
    tool: Mapping[str, Any],
    rootdir: Path,
    invocation_dir: Path,
) -> tuple[Any, str]:
    """(value, source) of one setting; paths from pyproject are relative to the rootdir."""
    found: Any = None
    if setting.option is not None and options.get(setting.option) is not None:
        found, source, base = options[setting.option], str(setting.flag), invocation_dir
    elif env.get(setting.env, "") != "":
        source, base = f"env {setting.env}", invocation_dir
        found = _convert(setting.convert, env[setting.env], source)
    elif setting.profile and profile is not None and _lookup(profile, setting.key) is not None:
        source, base = f"profile {cluster}", rootdir
        found = _convert(setting.convert, _lookup(profile, setting.key), source, setting.key)
    elif setting.project and _lookup(tool, setting.key) is not None:
        source, base = "[tool.rolloutgate]", rootdir
        found = _convert(setting.convert, _lookup(tool, setting.key), source, setting.key)
    else:
        found, source, base = setting.default, "default", rootdir
    if setting.is_path and isinstance(found, tuple):
        found = tuple((base / Path(p).expanduser()).resolve() for p in found)
    elif setting.is_path and found is not None:
        found = (base / Path(str(found)).expanduser()).resolve()
    return found, source


def _convert(
    convert: Callable[[object], Any], value: object, source: str, key: str | None = None
) -> Any:
    try:
        return convert(value)
    except argparse.ArgumentTypeError as e:
        where = f"{source}, key {key!r}" if key else source
        raise ConfigError(f"{where}: {e}") from e


def _contexts_or_none(
    list_contexts: Callable[[str | None], list[str]], kubeconfig: Path | None
) -> list[str] | ConfigError:
    """The kubeconfig's contexts, or why they cannot be read."""
    try:
        return list_contexts(str(kubeconfig) if kubeconfig else None)
    except ConfigError as e:
        return e


def _names(names: Iterable[str] | ConfigError) -> str:
    if isinstance(names, ConfigError):
        return f"none readable ({names})"
    listed = sorted(names)
    return ", ".join(listed) if listed else "(none)"


def environ() -> dict[str, str]:
    """The ``ROLLOUTGATE_*`` part of the environment."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
