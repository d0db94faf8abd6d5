"""pytest plugin of rolloutgate (entry point ``pytest11``): options, configure, registration.

Options come from the one settings table (``config.SETTINGS``). ``pytest_configure`` resolves
the settings and registers ``hooks.GateHooks``, the object that holds the run's state and
implements the reporting hooks; the fixtures live in ``fixtures.py`` (loaded through
``pytest_plugins``). The cluster layer is imported only by the fixtures that need it.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest

from rolloutgate import config as cfgmod
from rolloutgate.canary import config as canary_config
from rolloutgate.config import GateConfig
from rolloutgate.errors import ConfigError
from rolloutgate.pytest import cmdline
from rolloutgate.pytest.fixtures import GATE_FIXTURES
from rolloutgate.pytest.hooks import KIND_OFFLINE, STATE, GateHooks

# http_fixtures: the protocol-neutral HTTP checks (rolloutgate_http, rolloutgate_metrics).
pytest_plugins = ("rolloutgate.pytest.fixtures", "rolloutgate.pytest.http_fixtures")

HOOKS = "rolloutgate-hooks"  # name of the registered GateHooks


KIND_PLUGIN = "pytest-kind"  # pytest-kind's entry-point name
KIND_EXTRA = "pip install 'rolloutgate[kind]'"


def _kind_plugin_loads(pluginmanager: pytest.PytestPluginManager) -> bool:
    """Whether pytest-kind will register its options in this run. It is an optional extra: its
    plugin imports pykube-ng at start-up (~0.12 s of every pytest start), which a project that
    never makes a kind cluster should not pay. Registration order between entry points is not
    fixed, so this asks whether it is installed and allowed, not whether it is registered yet."""
    if pluginmanager.is_blocked(KIND_PLUGIN) or os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return pluginmanager.has_plugin(KIND_PLUGIN)
    return importlib.util.find_spec("pytest_kind") is not None


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("rolloutgate", "rolloutgate release gate")
    if not _kind_plugin_loads(pluginmanager):
        # pytest-kind defines --kubeconfig when it is there; the gate reads the same option.
        group.addoption(
            "--kubeconfig",
            dest="kubeconfig",
            default=None,
            help="kubeconfig file (default $KUBECONFIG, else ~/.kube/config)",
        )
    for setting in (cfgmod.CLUSTER, *cfgmod.SETTINGS, *canary_config.SETTINGS):
        if setting.flag is None or not setting.define:
            continue
        if setting.const is not None:
            group.addoption(
                setting.flag,
                dest=setting.option,
                action="store_const",
                const=setting.const,
                default=None,
                help=setting.help_text,
            )
        else:
            group.addoption(
                setting.flag,
                dest=setting.option,
                metavar=setting.metavar,
                type=setting.convert,
                help=setting.help_text,
            )
    group.addoption(
        "--canary",
        dest="rolloutgate_canary",
        action="store_true",
        default=False,
        help="Judge the candidate --image-tag against the live release side by side (fresh "
        "baseline and canary arms, same traffic; predictions, latency, errors); the live "
        "release is not touched. Exit 0 pass, 1 fail, 6 marginal, 7 inconclusive "
        "(docs/canary.md).",
    )


def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    # The earliest moment the plugin's options are known, and before conftest files are loaded
    # from a rootdir that may be the wrong one (cmdline.py explains the trap).
    message = cmdline.rootdir_moved(early_config, args)
    if message is not None:
        raise pytest.UsageError(message)


def pytest_configure(config: pytest.Config) -> None:
    options = {k: v for k, v in vars(config.option).items() if k.startswith("rolloutgate_")}
    # --kubeconfig: pytest-kind's option when it is installed, else the gate's own.
    options["kubeconfig"] = getattr(config.option, "kubeconfig", None)
    try:
        gate_config = cfgmod.resolve(
            options,
            env=cfgmod.environ(),
            tool=cfgmod.read_pyproject(config.rootpath),
            rootdir=config.rootpath,
            invocation_dir=config.invocation_params.dir,
            list_contexts=_contexts,
        )
        if gate_config.protocol is not None:
            from rolloutgate.checks import protocols

            protocols.get(gate_config.protocol)  # ConfigError listing the presets
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e
    how = cmdline.distributed(config) if gate_config.enabled else None
    if how is not None:
        raise pytest.UsageError(cmdline.xdist_message(how))
    if options.get("rolloutgate_canary"):
        _configure_canary(config, gate_config, options)
        return
    if gate_config.waves is not None:
        _configure_waves(config, gate_config)
        return
    if gate_config.kind:
        _use_local_kind(config)
    hooks = GateHooks(config, gate_config, GATE_FIXTURES)
    config.stash[STATE] = hooks
    config.pluginmanager.register(hooks, HOOKS)
    hooks.install_sigterm()


def _configure_canary(config: pytest.Config, cfg: GateConfig, options: dict[str, Any]) -> None:
    """--canary: the canary plugin replaces the gate suite's items (canary_plugin.py)."""
    from rolloutgate.canary import inputs
    from rolloutgate.pytest.canary import CanaryPlugin, check_options

    try:
        ccfg = canary_config.resolve(
            options,
            env=cfgmod.environ(),
            tool=cfgmod.read_pyproject(config.rootpath),
            cluster=cfg.cluster,
            rootdir=config.rootpath,
            invocation_dir=config.invocation_params.dir,
        )
        check_options(cfg)
        # Everything local is read and checked now: bad input is a usage error, no arm exists.
        checked = inputs.read(cfg, ccfg)
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e
    canary = CanaryPlugin(config, cfg, ccfg, checked)
    config.pluginmanager.register(canary, "rolloutgate-canary")
    canary.install_sigterm()


def _configure_waves(config: pytest.Config, cfg: GateConfig) -> None:
    """A profile of waves: the wave runner's plugin replaces the suite's items (waves.py)."""
    from rolloutgate.pytest.waves import WavesPlugin, check_options

    try:
        check_options(cfg)
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e
    waves = WavesPlugin(config, cfg)
    config.pluginmanager.register(waves, "rolloutgate-waves")
    waves.install_sigterm()


def pytest_unconfigure(config: pytest.Config) -> None:
    hooks = config.pluginmanager.get_plugin(HOOKS)
    if isinstance(hooks, GateHooks):
        hooks.restore_sigterm()
        config.pluginmanager.unregister(hooks)


def _use_local_kind(config: pytest.Config) -> None:
    """--cluster=kind: give pytest-kind (--kind-bin, --kind-image) the kind binary and node image
    found on this machine, so it never downloads; a UsageError says what to run when there is
    none (see kindcluster)."""
    import os

    from rolloutgate.kube import kindcluster

    if not config.pluginmanager.has_plugin(KIND_PLUGIN):
        raise pytest.UsageError(
            "--cluster=kind makes its cluster through pytest-kind, which is not "
            + (
                "enabled (-p no:pytest-kind)"
                if config.pluginmanager.is_blocked(KIND_PLUGIN)
                else f"installed: {KIND_EXTRA}"
            )
        )
    try:
        tools = kindcluster.resolve(
            getattr(config.option, "kind_bin", None),
            getattr(config.option, "kind_image", None),
            env=os.environ,
        )
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e
    config.option.kind_bin, config.option.kind_image = tools.kind, tools.image
    config.stash[KIND_OFFLINE] = tools.offline


def _contexts(kubeconfig: str | None) -> list[str]:
    """The kubeconfig's contexts; the Kubernetes client is imported only when a cluster is
    named, i.e. when the run is a gate run."""
    from rolloutgate import kube

    return kube.contexts(kubeconfig)
