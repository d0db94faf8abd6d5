"""Connecting to the API server: kubeconfig lists as kubectl reads them, the in-cluster
configuration inside a pod, the first ``/version`` probe.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from rolloutgate.errors import (
    ClusterError,
    ClusterUnreachable,
    ConfigError,
)

T = TypeVar("T")

# Where a pod finds its ServiceAccount's token (the in-cluster configuration).
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def _kubeconfig_paths(kubeconfig: str | None) -> list[Path]:
    """The files kubectl would read: the argument, else $KUBECONFIG (a path list, missing
    entries skipped as kubectl does), else ~/.kube/config."""
    if kubeconfig:
        return [Path(kubeconfig).expanduser()]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def in_cluster(kubeconfig: str | None) -> bool:
    """No kubeconfig anywhere, but a ServiceAccount token: the gate runs in a pod (Tekton,
    GitLab's Kubernetes executor, Argo Workflows) and uses the in-cluster configuration."""
    if kubeconfig:
        return False
    # As kubectl: a $KUBECONFIG list whose files are all missing loads an empty config, and an
    # empty config in a pod falls back to the in-cluster one.
    if any(p.is_file() for p in _kubeconfig_paths(None)):
        return False
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and IN_CLUSTER_TOKEN.is_file()


def _kubeconfig_arg(kubeconfig: str | None) -> str:
    paths = _kubeconfig_paths(kubeconfig)
    if kubeconfig:
        if not paths[0].is_file():
            raise ConfigError(
                f"kubeconfig {paths[0]} does not exist; pass an existing file "
                "(profile `kubeconfig`, --kubeconfig or ROLLOUTGATE_KUBECONFIG)"
            )
        return str(paths[0])
    existing = [p for p in paths if p.is_file()]
    if not existing:
        where = "$KUBECONFIG" if os.environ.get("KUBECONFIG") else "the default path"
        raise ConfigError(
            f"no kubeconfig: none of {', '.join(map(str, paths))} ({where}) exists, and this "
            "is not a pod with a ServiceAccount token; pass --kubeconfig or set KUBECONFIG"
        )
    # The client merges a path list joined like $KUBECONFIG.
    return os.pathsep.join(str(p) for p in existing)


def contexts(kubeconfig: str | None) -> list[str]:
    """Names of the contexts in the kubeconfig (ConfigError if it is missing or unreadable);
    [] inside a pod that uses the in-cluster configuration."""
    if in_cluster(kubeconfig):
        return []
    path = _kubeconfig_arg(kubeconfig)
    try:
        found, _current = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=path
        )
    except ConfigException as e:
        raise ConfigError(f"kubeconfig {path} cannot be read: {e}") from e
    except (yaml.YAMLError, AttributeError, TypeError) as e:
        # Not YAML, or YAML of another shape (the client indexes into it): not a kubeconfig.
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"kubeconfig {path} is not a kubeconfig ({first}); pass the file `kubectl config "
            "view --raw` shows (profile `kubeconfig`, --kubeconfig or ROLLOUTGATE_KUBECONFIG)"
        ) from e
    return sorted(str(c["name"]) for c in found or [])


def connect(kubeconfig: str | None, context: str | None, *, timeout: float = 10.0) -> ApiClient:
    """An API client for `context` (None: the kubeconfig's current context) that answered /version.

    Inside a pod with no kubeconfig, the in-cluster configuration (its ServiceAccount).
    ConfigError: the kubeconfig is missing or the context unknown (the message lists the known
    ones). ClusterUnreachable: the API server did not answer /version within `timeout` seconds.
    """
    configuration = client.Configuration()
    if in_cluster(kubeconfig) and context is None:
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    else:
        path = _kubeconfig_arg(kubeconfig)
        known = contexts(kubeconfig)
        if context is not None and context not in known:
            raise ConfigError(
                f"kubeconfig context {context!r} not found in {path}; "
                f"known contexts: {', '.join(known) or '(none)'}"
            )
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=path,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except ConfigException as e:
            raise ConfigError(f"kubeconfig {path}, context {context or '(current)'}: {e}") from e
    _probe(configuration, timeout)
    return ApiClient(configuration=configuration)


def _probe(configuration: client.Configuration, timeout: float) -> None:
    """GET /version once, without the client's retries, so an unreachable server fails fast."""
    host = configuration.host
    # The REST client reads `retries` when it is built: build the probe's without them.
    previous, configuration.retries = configuration.retries, 0
    try:
        probe = ApiClient(configuration=configuration)
    finally:
        configuration.retries = previous
    with probe:
        try:
            client.VersionApi(probe).get_code(_request_timeout=timeout)
        except urllib3.exceptions.HTTPError as e:
            # MaxRetryError wraps the real cause (connection refused, timeout, TLS...).
            cause = getattr(e, "reason", None) or e
            raise ClusterUnreachable(
                f"API server {host} did not answer /version (timeout {timeout:g} s): {cause}; "
                "is the cluster running, and is the kubeconfig's server address right?"
            ) from e
        except ApiException as e:
            if e.status == 0:  # the client's wrapper for a transport failure
                raise ClusterUnreachable(f"API server {host} did not answer: {e.reason}") from e
            raise ClusterError(
                f"API server {host} refused /version: {e.status} {e.reason}; "
                "check the kubeconfig's credentials"
            ) from e
