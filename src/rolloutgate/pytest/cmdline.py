"""Command lines the gate refuses before anything runs: the rootdir trap and pytest-xdist.

The rootdir trap. pytest picks its rootdir (and with it the pyproject.toml whose
``[tool.rolloutgate]`` and ``testpaths`` it reads) from the command line *before* it loads
plugins, so at that moment ``--gate-report /tmp/gate.json`` is an unknown option followed by a
path argument, and an existing ``/tmp/gate.json`` makes ``/tmp`` the rootdir. Once the plugins
are loaded the value is known to be an option's, but the rootdir is already fixed (and conftest
files are about to be loaded from it). ``rootdir_moved`` tells whether that happened, by asking
pytest's own rule again with the arguments it now knows to be test paths; the plugin then stops
with a usage error that names the option and the ``--opt=VALUE`` form. Repairing pytest's
configuration instead would mean rewriting private state (the ini values, ``addopts`` already
merged from the wrong file, the conftest cut-off directory): a clear stop is the honest fix.

pytest-xdist. The gate's deployment is a chain of session fixtures; under ``-n N`` every worker
is its own session and would run the whole chain (the second worker would snapshot the first
one's release as "previous"). The gate refuses distribution instead of pinning the chain to one
worker: every gate test depends on the chain, so one worker would run them all anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from rolloutgate.config import CLUSTER, SETTINGS


def value_flags() -> list[str]:
    """The gate's options that take a value (``--gate-report PATH``, ``--manifests DIR``...)."""
    return [
        s.flag
        for s in (CLUSTER, *SETTINGS)
        if s.flag is not None and s.const is None  # a const option takes no value
    ]


def space_form(args: Sequence[str], flags: Iterable[str]) -> list[tuple[str, str]]:
    """(flag, value) for each ``--flag VALUE`` (space form) among `args`. Pure.

    ``--flag=VALUE`` is not listed: pytest never mistakes it for a path. Arguments after ``--``
    are positional for argparse and are not option values.
    """
    wanted = set(flags)
    found = []
    for i, arg in enumerate(args[:-1]):
        if arg == "--":
            break
        if arg in wanted:
            found.append((arg, args[i + 1]))
    return found


def rootdir_moved(config: pytest.Config, args: Sequence[str]) -> str | None:
    """A usage message when an option value in space form moved pytest's rootdir, else None.

    Only values that exist as paths can move it (pytest ignores the others); only then is
    pytest's rule asked again, so a run without such values pays nothing.
    """
    suspects = [
        (flag, value) for flag, value in space_form(args, value_flags()) if Path(value).exists()
    ]
    if not suspects:
        return None
    expected = _rootdir_without_option_values(config)
    if expected is None or expected == config.rootpath:
        return None
    flag, value = suspects[0]
    shown = ", ".join(f"{f} {v}" for f, v in suspects)
    return (
        f"pytest chose {config.rootpath} as its rootdir instead of {expected}: it reads the "
        f"command line before rolloutgate's options are known, so the existing path in "
        f"`{shown}` counted as a test path. The project's pyproject.toml ([tool.rolloutgate], "
        f"testpaths) would not be read. Write the option with '=': {flag}={value}"
    )


def _rootdir_without_option_values(config: pytest.Config) -> Path | None:
    """pytest's rootdir for the arguments that really are test paths (None: cannot tell).

    ``known_args_namespace`` was parsed again after the plugins were loaded, so its
    ``file_or_dir`` no longer holds our options' values. ``determine_setup`` is pytest's own
    (private) rule; its keyword arguments differ between pytest versions, so only those it
    takes are passed, and any surprise means "cannot tell" rather than a false alarm.
    """
    import inspect  # lazily: only a command line with a suspect value pays for this

    try:
        from _pytest.config.findpaths import determine_setup
    except ImportError:
        return None
    ns = config.known_args_namespace
    offered: dict[str, Any] = {
        "inifile": getattr(ns, "inifilename", None),
        "override_ini": getattr(ns, "override_ini", None),
        "args": list(getattr(ns, "file_or_dir", None) or []),
        "rootdir_cmd_arg": getattr(ns, "rootdir", None) or None,
        "invocation_dir": config.invocation_params.dir,
    }
    try:
        accepted = inspect.signature(determine_setup).parameters
        result = determine_setup(**{k: v for k, v in offered.items() if k in accepted})
    except (TypeError, ValueError, pytest.UsageError):
        return None
    rootpath = result[0]
    return rootpath if isinstance(rootpath, Path) else None


def distributed(config: pytest.Config) -> str | None:
    """How pytest-xdist was asked to distribute this run (``-n 2``), or None."""
    if hasattr(config, "workerinput"):  # this process is an xdist worker
        return "this process is a pytest-xdist worker"
    numprocesses = getattr(config.option, "numprocesses", None)
    if numprocesses:
        return f"-n {numprocesses}"
    tx = getattr(config.option, "tx", None)
    if tx and getattr(config.option, "dist", "no") != "no":
        return f"--dist {config.option.dist} --tx {' '.join(tx)}"
    return None


def xdist_message(how: str) -> str:
    return (
        f"the gate cannot run distributed by pytest-xdist ({how}): each worker would deploy "
        "the release again and snapshot the other workers' release as 'previous'. Run the gate "
        "without -n (or with -n 0); its tests share one deployment and are cheap once it is up"
    )
