"""A pytest plugin the benchmark loads into the gate's process (`-p bench.probe`). Observes only.

It records, in the file named by $ROLLOUTGATE_BENCH_PROBE (JSON):
- `rollout_end`: wall-clock time (time.time(), sub-second) when the gate's `rolloutgate_rollout`
  fixture finished its setup, passed or failed: the instant the report's `rollout` phase ends,
  which is the gate's rollout verdict;
- `requests`: every API request the Kubernetes client sent (time, method, path), counted in the
  client: REST calls and watches through `RESTClientObject.request`, port-forwards and execs
  through the websocket factory;
- `vm_hwm_kib`: the process's peak resident memory (VmHWM of /proc/self/status) at the very end;
- `cpu_s`: CPU time (user + system) of the process and of its finished children (the in-pod
  checks' kubectl), at the rollout's end and at the very end: what the checks cost in CPU
  beside their wall time (on 2 shared cores, a check phase near 1 CPU-second per second is the
  gate's own CPU, not the cluster's answers).

The rollout end is also written at once to `<file>.rollout` so the benchmark can tell, while the
gate still runs, whether it reached a verdict before the benchmark's cap.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest

ENV = "ROLLOUTGATE_BENCH_PROBE"
ROLLOUT_FIXTURE = "rolloutgate_rollout"

_requests: list[dict[str, Any]] = []
_rollout: dict[str, Any] = {}


def _out() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


def _counted(func: Callable[..., Any], kind: str) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        method, url = _method_url(kind, args, kwargs)
        _requests.append({"t": time.time(), "method": method, "url": url})
        return func(*args, **kwargs)

    return wrapper


def _method_url(kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    if kind == "rest":  # RESTClientObject.request(self, method, url, ...)
        return str(args[1] if len(args) > 1 else kwargs.get("method")), str(
            args[2] if len(args) > 2 else kwargs.get("url")
        )
    # create_websocket(configuration, url, headers=None): exec, attach, port-forward
    return "WEBSOCKET", str(args[1] if len(args) > 1 else kwargs.get("url"))


def pytest_configure(config: pytest.Config) -> None:
    # Patched before any gate fixture builds a client; the class attribute is what instances use.
    from kubernetes.client import rest
    from kubernetes.stream import ws_client

    rest.RESTClientObject.request = _counted(rest.RESTClientObject.request, "rest")  # type: ignore[method-assign]
    ws_client.create_websocket = _counted(ws_client.create_websocket, "ws")


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    if fixturedef.argname != ROLLOUT_FIXTURE:
        return (yield)
    _rollout["start"] = time.time()
    try:
        return (yield)
    except BaseException as e:
        _rollout["outcome"] = type(e).__name__
        raise
    finally:
        _rollout["end"] = time.time()
        _rollout["cpu_s"] = _cpu_s()
        _rollout.setdefault("outcome", "done")
        out = _out()
        if out is not None:
            out.with_suffix(".rollout").write_text(json.dumps(_rollout))


def _cpu_s() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "self": round(own.ru_utime + own.ru_stime, 3),
        "children": round(children.ru_utime + children.ru_stime, 3),
    }


def _vm_hwm_kib() -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    out = _out()
    if out is None:
        return
    data = {
        "rollout_start": _rollout.get("start"),
        "rollout_end": _rollout.get("end"),
        "rollout_outcome": _rollout.get("outcome"),
        "requests": _requests,
        "vm_hwm_kib": _vm_hwm_kib(),
        "cpu_s": {"rollout_end": _rollout.get("cpu_s"), "end": _cpu_s(), "at": time.time()},
    }
    out.write_text(json.dumps(data))
