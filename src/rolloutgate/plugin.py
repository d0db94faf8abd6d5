"""pytest plugin of rolloutgate (entry point ``pytest11``): options, configure, registration.

Options come from the one settings table (``config.SETTINGS``). ``pytest_configure`` resolves
the settings and registers ``hooks.GateHooks``, the object that holds the run's state and
implements the reporting hooks; the fixtures live in ``fixtures.py`` (loaded through
``pytest_plugins``). The cluster layer is imported only by the fixtures that need it.
"""

from __future__ import annotations

import pytest

from rolloutgate import config as cfgmod
from rolloutgate.errors import ConfigError
from rolloutgate.fixtures import GATE_FIXTURES
from rolloutgate.hooks import STATE, GateHooks

pytest_plugins = ("rolloutgate.fixtures",)

HOOKS = "rolloutgate-hooks"  # name of the registered GateHooks


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rolloutgate", "rolloutgate release gate")
    for setting in (cfgmod.CLUSTER, *cfgmod.SETTINGS):
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
        help="Not yet supported: canary comparison against the stable release.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("rolloutgate_canary", False):
        raise pytest.UsageError(
            "--canary is not yet supported: the gate deploys and verifies one release. "
            "Run without --canary (see docs/gate.md)."
        )
    options = {k: v for k, v in vars(config.option).items() if k.startswith("rolloutgate_")}
    # --kubeconfig belongs to pytest-kind (a dependency); the gate reads the same option.
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
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e
    if gate_config.kind:
        _use_local_kind(config)
    hooks = GateHooks(config, gate_config, GATE_FIXTURES)
    config.stash[STATE] = hooks
    config.pluginmanager.register(hooks, HOOKS)
    hooks.install_sigterm()


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

    from rolloutgate import kindcluster

    try:
        tools = kindcluster.resolve(
            getattr(config.option, "kind_bin", None),
            getattr(config.option, "kind_image", None),
            env=os.environ,
        )
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from e
    config.option.kind_bin, config.option.kind_image = tools.kind, tools.image


def _contexts(kubeconfig: str | None) -> list[str]:
    """The kubeconfig's contexts; the Kubernetes client is imported only when a cluster is
    named, i.e. when the run is a gate run."""
    from rolloutgate import kube

    return kube.contexts(kubeconfig)
