"""The replicas' client (``forwarded=True``: straight through urllib3, ``checks.loopback``)
answers and fails as the session's own path does, against the loopback model server
(model_server.py): the same ``requests.Response`` fields, the same request on the wire, the
same errors for a timeout, a reset, a refused connection; a redirect followed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import urllib3
from model_server import serve

from rolloutgate.checks.client import AnswerTimedOut, EndpointRefused, EndpointUnreachable
from rolloutgate.checks.httpclient import HttpClient, Request

CASE = Request("POST", "/predict", (("X-Case", "setosa"),), {"instances": [[5.1, 3.5]]})


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, Any]]]:
    """Function. (base URL, state) of the loopback model server."""
    with serve() as running:
        yield running


def client(url: str, *, forwarded: bool, timeout: float = 2.0) -> HttpClient:
    """A client with a session as ``credentials.session`` builds one (a configured header,
    Basic auth from the URL, no environment for a forward)."""
    session = requests.Session()
    session.headers["X-Team"] = "ml"
    session.auth = ("gate", "secret")
    session.trust_env = not forwarded
    if forwarded:
        # The forward's path must not go through Session.request at all.
        def refuse(*_a: object, **_k: object) -> requests.Response:
            raise AssertionError("Session.request used for a forward")

        session.request = refuse  # type: ignore[method-assign]
    health = {"live": "/healthz"}
    return HttpClient(
        url, model="wine", timeout=timeout, health=health, session=session, forwarded=forwarded
    )


def fields(response: requests.Response) -> dict[str, Any]:
    """What the checks and users' suites read of an answer."""
    headers = {k: v for k, v in response.headers.items() if k.lower() != "date"}
    return {
        "status": response.status_code,
        "reason": response.reason,
        "ok": response.ok,
        "headers": headers,
        "text": response.text,
        "json": response.json(),
        "encoding": response.encoding,
        "url": response.url,
        "method": response.request.method,
        "sent": dict(response.request.headers),
        "body": response.request.body,
        "history": [(r.status_code, r.url) for r in response.history],
    }


def test_an_answer_through_a_forward_is_the_sessions_answer(
    server: tuple[str, dict[str, Any]],
) -> None:
    url, state = server
    with client(url, forwarded=False) as plain, client(url, forwarded=True) as forwarded:
        want, got = plain.send(CASE), forwarded.send(CASE)
        assert fields(got) == fields(want)
        assert fields(got)["json"]["predictions"] == [2]
        assert got.headers["content-type"] == "application/json"  # case-insensitive
        assert got.elapsed.total_seconds() > 0
        # On the wire: the same headers (the session's, the case's, Basic auth) and body.
        sent_plain, sent_forwarded = state["headers"]
        assert sent_forwarded == sent_plain
        assert (sent_forwarded["X-Team"], sent_forwarded["X-Case"]) == ("ml", "setosa")
        assert sent_forwarded["Authorization"].startswith("Basic ")
        # A status that is not 2xx is an answer, as before.
        want, got = plain.get("/nope"), forwarded.get("/nope")
        assert (got.status_code, fields(got)) == (404, fields(want))
        # Kept connections are reused: the answers keep coming on the same pool.
        assert [forwarded.get("/healthz").json() for _ in range(3)] == [{"status": "alive"}] * 3


def test_a_redirect_is_followed_as_the_session_follows_it(
    server: tuple[str, dict[str, Any]],
) -> None:
    url, _ = server
    with client(url, forwarded=False) as plain, client(url, forwarded=True) as forwarded:
        want, got = plain.get("/moved"), forwarded.get("/moved")
        assert fields(got) == fields(want)
        assert (got.status_code, got.url) == (200, f"{url}/healthz")
        assert [(r.status_code, r.url) for r in got.history] == [(307, f"{url}/moved")]


def failure(c: HttpClient, request: Request) -> tuple[type[BaseException], str]:
    with pytest.raises(EndpointUnreachable) as e:
        c.send(request)
    return type(e.value), str(e.value)


def test_no_answer_in_time_is_an_answer_timed_out(server: tuple[str, dict[str, Any]]) -> None:
    url, state = server
    state["hang"] = True
    with (
        client(url, forwarded=False, timeout=0.3) as plain,
        client(url, forwarded=True, timeout=0.3) as forwarded,
    ):
        kind, message = failure(forwarded, CASE)
        assert (kind, message) == failure(plain, CASE)
        assert kind is AnswerTimedOut
        assert message.startswith(f"POST {url}/predict got no answer within 0.3 s: ")
        assert "Read timed out" in message


def test_a_reset_is_refused_and_sent_once_more_on_a_kept_connection(
    server: tuple[str, dict[str, Any]],
) -> None:
    url, state = server
    outcomes = []
    for forwarded in (False, True):
        with client(url, forwarded=forwarded) as c:
            state["reset"] = True
            state["headers"] = []
            fresh = failure(c, CASE)  # no kept connection yet: not sent again
            sent_fresh = len(state["headers"])
            assert c.get("/healthz").status_code == 200  # (a GET is answered)
            state["headers"] = []
            kept = failure(c, CASE)
            # The kept connection may have been a stale one: sent once more, then judged.
            outcomes.append((fresh, sent_fresh, kept, len(state["headers"])))
    assert outcomes[1] == outcomes[0]
    (kind, message), sent_fresh, _, sent_kept = outcomes[1]
    assert kind is EndpointRefused
    assert (sent_fresh, sent_kept) == (1, 2)
    assert message.startswith(f"POST {url}/predict got no answer: ")


def test_a_refused_connection_is_refused() -> None:
    # Port 9 (discard) on loopback: nothing listens there in the test environment.
    url = "http://127.0.0.1:9"
    with client(url, forwarded=False) as plain, client(url, forwarded=True) as forwarded:
        kind, message = failure(forwarded, CASE)
        assert (kind, message) == failure(plain, CASE)
        assert kind is EndpointRefused


def test_a_request_leaves_in_one_write_the_bytes_the_session_sends(
    server: tuple[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through a port-forward every write is a websocket frame: head and body in one (OneWrite).
    url, _ = server
    writes: list[bytes] = []
    send = urllib3.connection.HTTPConnection.send

    def recorded(conn: urllib3.connection.HTTPConnection, data: bytes) -> None:
        writes.append(bytes(data))
        send(conn, data)

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "send", recorded)
    sent = {}
    for forwarded in (False, True):
        with client(url, forwarded=forwarded) as c:
            writes.clear()
            assert c.send(CASE).json()["predictions"] == [2]
            assert c.get("/healthz").status_code == 200
            sent[forwarded] = list(writes)
    head, body, get = sent[False]  # the session's: the POST's head, its body, the GET
    assert body == b'{"instances": [[5.1, 3.5]]}'
    assert sent[True] == [head + body, get]
