"""Resolving the settings: option → environment → cluster profile → ``[tool.rolloutgate]`` →
default, remembering where each value came from."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from rolloutgate.config.convert import (
    ENV_PREFIX,
    KIND,
)
from rolloutgate.config.settings import (
    CLUSTER,
    SETTINGS,
    GateConfig,
    HealthPaths,
    MetricsCheck,
    Setting,
    Timeouts,
)
from rolloutgate.errors import ConfigError


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
    _check_modes(values, sources)
    if values["waves"] is not None:
        _check_waves(values["waves"], sources["waves"], profiles)
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
        verify=values["verify"],
        protocol=values["protocol"],
        waves=values["waves"],
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
        container=values["container"],
        model_file=values["model_file"],
        debug_image=values["debug_image"],
        warmup_requests=values["warmup_requests"],
        metrics=metrics,
        sources=sources,
    )


def _check_waves(
    waves: tuple[tuple[str, ...], ...], source: str, profiles: Mapping[str, Any]
) -> None:
    """ConfigError unless every wave member is a profile of one cluster (or ``kind``)."""
    for member in (c for w in waves for c in w):
        profile = profiles.get(member)
        if member == KIND and profile is None:
            continue
        if not isinstance(profile, Mapping):
            raise ConfigError(
                f"waves ({source}) name {member!r}, which is not a profile "
                f"[tool.rolloutgate.clusters.{member}]; profiles: {_names(profiles)}"
            )
        if "waves" in profile:
            raise ConfigError(
                f"waves ({source}) name {member!r}, which has waves of its own: a wave's "
                "members are single clusters"
            )


def _check_modes(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """ConfigError for run modes that exclude each other: each says what the gate does."""
    given = [key for key in ("verify", "recover", "dry_run") if values[key]]
    if len(given) > 1:
        what = {
            "verify": "--verify checks the live release and changes nothing",
            "recover": "--recover restores the last verified release",
            "dry_run": "--dry-run validates the manifests and applies nothing",
        }
        raise ConfigError(
            "; ".join(f"{what[k]} ({sources[k]})" for k in given) + ": give one of them"
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
