"""Which protocol a live model server speaks, found by asking it (``rolloutgate init``).

Asked in this order, each a few GETs (and, for V2, its repository index):

- **v2** (Open Inference Protocol: MLServer, Triton, KServe V2): ``GET /v2`` answers the server
  metadata (``name``, ``version``); the model is the one its repository index
  (``POST /v2/repository/index``) lists as ready, or the one named;
- **v1** (KServe V1, TF-Serving): ``GET /v1/models`` lists ``models`` (KServe), or, with a
  model named, ``GET /v1/models/{model}`` answers 200 (TF-Serving's model status);
- **plain**: the preset's ``/healthz`` and ``/readyz``, or the paths the team names, answer 200.

What the team names (protocol, model, prediction path, health paths) is taken as given and only
checked. A V2 model's metadata also gives a request to record answers for (zeros of its inputs'
shapes and datatypes) when the team names none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from rolloutgate.checks import protocols
from rolloutgate.checks.client import EndpointUnreachable, describe
from rolloutgate.checks.httpclient import HttpClient, Request
from rolloutgate.checks.protocols import Protocol
from rolloutgate.errors import GateError


class NotDetected(GateError):
    """The server answered none of the protocols' questions as one of them would; the message
    lists what was asked, what came back and which options name the protocol instead."""


@dataclass(frozen=True)
class Hints:
    """What the team named (``rolloutgate init`` options); None: to be found out."""

    protocol: str | None = None
    model: str | None = None
    predict_path: str | None = None
    live: str | None = None
    ready: str | None = None


@dataclass(frozen=True)
class Detected:
    """The protocol, the model's name ('' when the protocol has none), the golden file's
    ``health`` object (paths that differ from the preset's; None drops one), the prediction
    path when it is not the preset's, and what was seen on the way (for the terminal)."""

    protocol: Protocol
    model: str = ""
    health: Mapping[str, str | None] = field(default_factory=dict)
    predict_path: str | None = None
    seen: tuple[str, ...] = ()


def _get(client: HttpClient, path: str, seen: list[str]) -> requests.Response | None:
    try:
        response = client.get(path)
    except EndpointUnreachable as e:
        seen.append(f"GET {path}: no answer ({e})")
        return None
    seen.append(f"GET {path}: {response.status_code}")
    return response


def _json(response: requests.Response | None) -> Any:
    if response is None or not response.ok:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def detect(client: HttpClient, hints: Hints) -> Detected:
    """The protocol ``client``'s server speaks (see the module's docstring); NotDetected."""
    seen: list[str] = []
    wanted = hints.protocol
    if wanted in (None, "v2"):
        found = _v2(client, hints, seen)
        if found is not None:
            return found
    if wanted in (None, "v1"):
        found = _v1(client, hints, seen)
        if found is not None:
            return found
    if wanted in (None, "plain") or hints.predict_path is not None:
        found = _plain(client, hints, seen)
        if found is not None:
            return found
    raise NotDetected(
        f"the live server at {client.base_url} answered as none of the protocols "
        f"{'(' + wanted + ' asked for)' if wanted else 'v2, v1, plain'}: "
        + "; ".join(seen)
        + ". Name them: --protocol=plain --predict-path=PATH --live-path=PATH --ready-path=PATH "
        "(any path the server answers 200 on), or --protocol=v2/v1 --model=NAME"
    )


def _v2(client: HttpClient, hints: Hints, seen: list[str]) -> Detected | None:
    meta = _json(_get(client, "/v2", seen))
    if not (isinstance(meta, dict) and "name" in meta and "version" in meta):
        return None
    model = hints.model
    if model is None:
        try:
            index = client.send(Request("POST", "/v2/repository/index", body={}))
        except EndpointUnreachable as e:
            seen.append(f"POST /v2/repository/index: no answer ({e})")
            index = None
        listed = _json(index)
        if index is not None:
            seen.append(f"POST /v2/repository/index: {index.status_code}")
        ready = sorted(
            str(m.get("name"))
            for m in listed or []
            if isinstance(m, dict) and m.get("name") and m.get("state", "READY") == "READY"
        )
        if len(ready) != 1:
            raise NotDetected(
                f"a V2 server ({meta.get('name')} {meta.get('version')}) whose repository lists "
                f"{len(ready)} ready models ({', '.join(ready) or 'none'}): name the one to gate "
                "with --model=NAME"
            )
        model = ready[0]
    status = _get(client, f"/v2/models/{model}/ready", seen)
    if status is None or not status.ok:
        raise NotDetected(
            f"V2 model {model!r} is not ready on the live server: "
            + (describe(status) if status is not None else "no answer")
        )
    return Detected(protocols.V2, model, seen=(*seen, f"V2 server {meta.get('name')}"))


def _v1(client: HttpClient, hints: Hints, seen: list[str]) -> Detected | None:
    listed = _json(_get(client, "/v1/models", seen))
    names = listed.get("models") if isinstance(listed, dict) else None
    model = hints.model
    if model is None and isinstance(names, list) and len(names) == 1:
        model = str(names[0])
    if model is None:
        if isinstance(names, list):
            raise NotDetected(
                f"a V1 server listing {len(names)} models ({', '.join(map(str, names))}): "
                "name the one to gate with --model=NAME"
            )
        return None
    status = _get(client, f"/v1/models/{model}", seen)
    if status is None or not status.ok:
        return None
    return Detected(protocols.V1, model, seen=tuple(seen))


def _plain(client: HttpClient, hints: Hints, seen: list[str]) -> Detected | None:
    preset = protocols.PLAIN
    health: dict[str, str | None] = {}
    for check, named in (("live", hints.live), ("ready", hints.ready)):
        path = named or preset.health[check]
        response = _get(client, path, seen)
        if response is None or not response.ok:
            if named is not None:
                raise NotDetected(
                    f"the {check} path {path} you named answered "
                    + (describe(response) if response is not None else "nothing")
                )
            health[check] = None  # the preset's path is not this server's: no such check
        elif named is not None and named != preset.health[check]:
            health[check] = named
    if all(v is None for v in health.values()) and len(health) == 2 and not hints.predict_path:
        return None  # neither health path answered, and no prediction path named: not plain
    predict = hints.predict_path if hints.predict_path != preset.predict_path else None
    return Detected(preset, "", health, predict, tuple(seen))


def v2_request(client: HttpClient, model: str) -> Any:
    """A V2 inference body for ``model`` from its metadata: each input as zeros (``false``,
    ``""``) of its datatype and shape (-1 read as 1). None when the metadata does not say."""
    meta = _json(client.get(f"/v2/models/{model}"))
    inputs = meta.get("inputs") if isinstance(meta, dict) else None
    if not isinstance(inputs, list) or not inputs:
        return None
    body = []
    for tensor in inputs:
        if not isinstance(tensor, dict):
            return None
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in tensor.get("shape") or [1]]
        datatype = str(tensor.get("datatype", "FP32"))
        zero: Any = 0
        if datatype == "BOOL":
            zero = False
        elif datatype == "BYTES":
            zero = ""
        elif datatype.startswith("FP"):
            zero = 0.0
        size = 1
        for d in shape:
            size *= d
        body.append(
            {
                "name": tensor.get("name"),
                "shape": shape,
                "datatype": datatype,
                "data": [zero] * size,
            }
        )
    return {"inputs": body}
