"""Errors and retries: the one place transport and API errors become domain errors; the
running step's patience for an API server that restarts.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TypeVar

import urllib3
from kubernetes.client.exceptions import ApiException

from rolloutgate.errors import (
    ApiError,
    ClusterError,
    ClusterUnreachable,
    Forbidden,
)

T = TypeVar("T")

# Every single request has a deadline: a server that accepts the connection and then hangs
# must not hang the gate.
REQUEST_TIMEOUT_S = 30.0
# Backoff between attempts after a transient error: doubling from the first to the last.
BACKOFF_S = (0.2, 5.0)


def message_of(e: BaseException) -> str:
    """The API server's own message (the Status object's `message`), else the error's text."""
    body = getattr(e, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            return body.strip()
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])
    reason = getattr(e, "reason", None)
    return str(reason or e)


@contextmanager
def api_errors(verb: str, what: str) -> Iterator[None]:
    """Map errors raised inside the block to domain errors naming `verb` and `what`.

    `what` names the resource and namespace, e.g. ``deployments iris/iris``.
    """
    try:
        yield
    except ApiException as e:
        status = int(e.status or 0)
        message = message_of(e)
        if status == 0:
            status, message = _handshake(e)
        if status == 0:
            raise ClusterUnreachable(f"{verb} {what}: API server did not answer: {e}") from e
        text = f"{verb} {what}: {status} {message}"
        if status == 403:
            # `verb` may say more than RBAC's verb ("patch (server-side apply dry-run)").
            rbac_verb = verb.split(" ", 1)[0]
            raise Forbidden(
                f"{text}. The gate's credentials lack this permission: grant `{rbac_verb}` on it "
                "(docs/rbac.md lists every permission the gate needs)",
                status=status,
            ) from e
        raise ApiError(text, status=status) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        cause = getattr(e, "reason", None) or e
        raise ClusterUnreachable(f"{verb} {what}: API server did not answer: {cause}") from e


def _handshake(e: ApiException) -> tuple[int, str]:
    """(status, server message) of a refused websocket handshake (port-forward, exec), which the
    client reports as status 0 with ``Handshake status 403 Forbidden -+-+- headers -+-+- body``
    as its reason; (0, "") for a real transport failure."""
    reason = str(e.reason or "")
    if not reason.startswith("Handshake status "):
        return 0, ""
    parts = reason.split(" -+-+- ")
    try:
        status = int(parts[0].split()[2])
    except (IndexError, ValueError):
        return 0, ""
    message = parts[0]
    if len(parts) > 2:
        try:
            body = json.loads(parts[2])
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("message"):
            message = str(body["message"])
    return status, message


def transient(e: BaseException) -> bool:
    """Whether retrying can help: no answer, 429, or a 5xx."""
    return isinstance(e, ClusterUnreachable) or (isinstance(e, ApiError) and e.transient)


def retry(
    call: Callable[[], T],
    *,
    deadline: float,
    on_retry: Callable[[str], None] | None = None,
    stopped: threading.Event | None = None,
) -> T:
    """``call()``, retried with backoff on transient errors until `deadline` (monotonic).

    The last transient error is raised once the deadline has passed; any other error at once.
    """
    delay = BACKOFF_S[0]
    while True:
        try:
            return call()
        except ClusterError as e:
            if not transient(e) or time.monotonic() + delay >= deadline:
                raise
            if on_retry is not None:
                on_retry(f"{e}; retrying in {delay:.1f} s")
            pause = delay * random.uniform(0.8, 1.2)  # jitter: gates do not retry in step
            if stopped is not None:
                if stopped.wait(pause):
                    raise
            else:
                time.sleep(pause)
            delay = min(delay * 2, BACKOFF_S[1])


@dataclass
class _Patience:
    deadline: float
    on_retry: Callable[[str], None] | None
    guard: Callable[[], None] | None = None


# The running step's deadline: under it every request below retries transient errors (no
# answer, 429, 5xx) until then, so an API server that restarts in the middle of a step delays
# the step instead of failing it. A context variable, not a global: the lease's renewal thread
# and the port-forward relay have their own deadlines, and a new thread starts without one.
_PATIENCE: ContextVar[_Patience | None] = ContextVar("rolloutgate_patience", default=None)
# Set while a guard runs (or a call is exempt from it): a guard's own requests are not guarded.
_UNGUARDED: ContextVar[bool] = ContextVar("rolloutgate_unguarded", default=False)
_INHERIT: Callable[[], None] = lambda: None  # noqa: E731 - a sentinel: keep the outer guard


@contextmanager
def patience(
    deadline: float,
    on_retry: Callable[[str], None] | None = None,
    guard: Callable[[], None] | None = _INHERIT,
) -> Iterator[None]:
    """Within the block, every request of this module (but the watch's own, which retries
    anyway) is retried on transient errors until `deadline` (monotonic). ``on_retry`` hears
    when the API server stops answering and when it answers again. ``guard`` runs before every
    attempt of a change (create, update, patch, delete) and may refuse it by raising (the lease
    holder's check-before-write); without it, the enclosing block's guard stays in force."""
    outer = _PATIENCE.get()
    if guard is _INHERIT:
        guard = outer.guard if outer is not None else None
    token = _PATIENCE.set(_Patience(deadline, on_retry, guard))
    try:
        yield
    finally:
        _PATIENCE.reset(token)


@contextmanager
def unguarded() -> Iterator[None]:
    """Changes within the block skip the guard: the lease's own renewal and release, which
    check the holder themselves, and a guard's own requests."""
    token = _UNGUARDED.set(True)
    try:
        yield
    finally:
        _UNGUARDED.reset(token)


def patient(call: Callable[[], T], *, change: bool = False) -> T:
    """``call()`` under the running step's patience (one attempt when there is none); a
    ``change`` asks the step's guard first, at every attempt.

    Retrying is safe for every call here: reads; server-side apply (the same patch gives the
    same object); PUT and conditional DELETE carry a resourceVersion (a retry of one that had
    landed gets a 409, which the callers already handle by reading again); create gets a 409
    AlreadyExists and delete a 404, both of which the callers read as done.
    """
    p = _PATIENCE.get()
    if p is None:
        return call()
    guard = p.guard if change and not _UNGUARDED.get() else None
    if guard is not None:
        checked = guard

        def attempt() -> T:
            with unguarded():
                checked()
            return call()

    else:
        attempt = call
    failing_since: list[float] = []

    def said(message: str) -> None:
        if not failing_since:
            failing_since.append(time.monotonic())
            if p.on_retry is not None:
                left = max(0.0, p.deadline - time.monotonic())
                p.on_retry(f"{message} (retrying for up to {left:.0f} s)")

    result = retry(attempt, deadline=p.deadline, on_retry=said)
    if failing_since and p.on_retry is not None:
        p.on_retry(f"API server answered again after {time.monotonic() - failing_since[0]:.1f} s")
    return result
