"""The one table of settings (``SETTINGS``) and the resolved ``GateConfig``: every default
users tune lives here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rolloutgate.config.convert import (
    ENV_PREFIX,
    Header,
    container_path,
    count,
    flag,
    headers,
    http_path,
    image,
    image_tag,
    images,
    metric_labels,
    metric_name,
    name,
    namespace,
    path,
    paths,
    port,
    seconds,
    url,
    waves,
)

# The ephemeral container's image for in-pod checks of an image without a shell: the one
# `kubectl debug` examples use; a cluster without a registry names one it has.
DEBUG_IMAGE = "busybox:1.36"


@dataclass(frozen=True)
class Timeouts:
    """Deadline of each phase, in seconds."""

    lock: float = 120.0
    rollout: float = 300.0
    endpoint: float = 60.0
    rollback: float = 300.0
    lease: float = 60.0
    # How long a single API step (snapshot, dry-run, apply, record, diagnostics) keeps retrying
    # a restarting or overloaded API server before it gives up: longer than a 90 s outage (a
    # managed control plane's upgrade, an OOM-killed server) plus the server's start-up, so
    # that such an outage at the apply ends as an undisturbed run does (issue 19).
    api: float = 120.0


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
    verify: bool = False
    # The golden file's protocol, replaced (v2 and grpc share every form: one file, both).
    protocol: str | None = None
    # A release across several clusters: waves of cluster profiles, in order (rolloutgate.waves).
    waves: tuple[tuple[str, ...], ...] | None = None
    metrics: MetricsCheck | None = None
    values: tuple[Path, ...] = ()
    helm_release: str | None = None
    kubectl: str = "kubectl"
    helm: str = "helm"
    restart_on_config_change: bool = False
    # The in-pod checks: the serving container (None: the one --image-tag retags), the model
    # file to look for in it (None: not configured), the image of an ephemeral container that
    # runs them when the serving image has no shell (None: none is added).
    container: str | None = None
    model_file: str | None = None
    debug_image: str | None = None
    # Requests sent to each new pod and not timed before the latency budget is measured.
    warmup_requests: int = 0
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
        # What is released is asked for on each run, never read from a file.
        profile=False,
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
    # A profile naming waves of other profiles releases to all of them (docs/waves.md).
    Setting("waves", waves, None, project=False),
    Setting(
        "protocol",
        name,
        None,
        "--protocol",
        "Speak this protocol preset instead of the golden file's (v2, v1, plain, grpc: the "
        "Open Inference Protocol over gRPC, with the same golden cases as v2)",
        metavar="NAME",
    ),
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
        "Fail the rollout when a new pod's container started longer ago than this and its "
        "server answers its readiness probe with an HTTP status (a definite 'not ready'); "
        "off unless set. Must cover the model's load time",
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
        "verify",
        flag,
        False,
        "--verify",
        "Deploy nothing and roll back nothing: run every check against the live release (e.g. "
        "after Argo CD or Flux synced it); the release record is read, never written",
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
    # The in-pod checks (tests/smoke/test_pod.py): which container of the release's pods (the
    # one whose image --image-tag sets, unless named), the model file they look for (a path
    # in that container), and the image of the ephemeral container that runs them when the
    # serving image has no shell (sharing the pod's process namespace; it must be pullable).
    Setting("container", name, None),
    Setting("model_file", container_path, None),
    Setting("debug_image", image, DEBUG_IMAGE),
    # A server's first requests pay for lazy loading, JIT and cold caches: this many go to
    # each new pod before the latency budget is measured, untimed.
    Setting("warmup_requests", count, 3),
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
