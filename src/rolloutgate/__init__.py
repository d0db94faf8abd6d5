"""rolloutgate: a release gate for ML model services on Kubernetes, as a pytest plugin.

The public API: what a gate suite (``conftest.py``, ``tests/deploy``, ``tests/smoke``) may
import, all from here (``from rolloutgate import Golden, HttpClient``). docs/gate.md lists the
same names; tests/plugin/test_public_api.py keeps the two lists equal. Everything else —
the packages ``kube``, ``workloads``, ``checks``, ``release``, ``canary``, ``pytest`` and
``config``'s internals — is the implementation and may change between versions.

Names are imported on first use: ``import rolloutgate`` costs a pytest run nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it.
_PUBLIC = {
    # settings
    "GateConfig": "rolloutgate.config",
    # golden cases and clients
    "Golden": "rolloutgate.checks.cases",
    "Case": "rolloutgate.checks.cases",
    "HttpClient": "rolloutgate.checks.httpclient",
    "check": "rolloutgate.checks.cases",
    "load_golden": "rolloutgate.checks.cases",
    "V2Client": "rolloutgate.checks.client",
    "describe": "rolloutgate.checks.client",
    "json_of": "rolloutgate.checks.client",
    "measure_latency": "rolloutgate.checks.latency",
    "PodMetrics": "rolloutgate.checks.metrics",
    "InPod": "rolloutgate.checks.inpod",
    "Latency": "rolloutgate.checks.latency",
    "judge_metrics": "rolloutgate.checks.metrics",
    "each_replica": "rolloutgate.checks.fanout",
    # the fixtures' types
    "Restarts": "rolloutgate.checks.podhistory",
    "Lease": "rolloutgate.release.lock",
    "Snapshot": "rolloutgate.release.snapshot",
    "Release": "rolloutgate.release.engine",
    # workloads of the release
    "ref": "rolloutgate.objects",
    "viewer_for": "rolloutgate.workloads",
    # (not "workloads": that is the subpackage's name, which an import of it rebinds)
    "workloads_in": "rolloutgate.workloads",
    # errors
    "GateError": "rolloutgate.errors",
    "ConfigError": "rolloutgate.errors",
    "ClusterError": "rolloutgate.errors",
    "ClusterUnreachable": "rolloutgate.errors",
    "RolloutFailed": "rolloutgate.errors",
    "RollbackFailed": "rolloutgate.errors",
    "LockHeld": "rolloutgate.errors",
}
# Public names whose definition has another name.
_RENAMED = {
    "load_golden": "load",
    "judge_metrics": "judge",
    "workloads_in": "workloads",
    "each_replica": "each",
}

__all__ = [
    "Case",
    "ClusterError",
    "ClusterUnreachable",
    "ConfigError",
    "GateConfig",
    "GateError",
    "Golden",
    "HttpClient",
    "InPod",
    "Latency",
    "Lease",
    "LockHeld",
    "PodMetrics",
    "Release",
    "Restarts",
    "RollbackFailed",
    "RolloutFailed",
    "Snapshot",
    "V2Client",
    "check",
    "describe",
    "each_replica",
    "json_of",
    "judge_metrics",
    "load_golden",
    "measure_latency",
    "ref",
    "viewer_for",
    "workloads_in",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'rolloutgate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), _RENAMED.get(name, name))
    globals()[name] = value  # the next lookup does not come here
    return value


if TYPE_CHECKING:
    from rolloutgate.checks.cases import Case, Golden, check
    from rolloutgate.checks.cases import load as load_golden
    from rolloutgate.checks.client import V2Client, describe, json_of
    from rolloutgate.checks.fanout import each as each_replica
    from rolloutgate.checks.httpclient import HttpClient
    from rolloutgate.checks.inpod import InPod
    from rolloutgate.checks.latency import Latency, measure_latency
    from rolloutgate.checks.metrics import PodMetrics
    from rolloutgate.checks.metrics import judge as judge_metrics
    from rolloutgate.checks.podhistory import Restarts
    from rolloutgate.config import GateConfig
    from rolloutgate.errors import (
        ClusterError,
        ClusterUnreachable,
        ConfigError,
        GateError,
        LockHeld,
        RollbackFailed,
        RolloutFailed,
    )
    from rolloutgate.objects import ref
    from rolloutgate.release.engine import Release
    from rolloutgate.release.lock import Lease
    from rolloutgate.release.snapshot import Snapshot
    from rolloutgate.workloads import viewer_for
    from rolloutgate.workloads import workloads as workloads_in
