"""A check that gets no answer fails without printing the request's headers: pytest shows the
frames of a chained transport error with their arguments, and urllib3's carry the headers
(the configured credentials). Found by tests/e2e/test_secrets.py under load."""

from __future__ import annotations

import pytest

SECRET_HEADER = "SEKRET-HEADER-123"
BASIC = "dXNlcjpQVy1TRUtSRVQtNDU2"  # base64 of user:PW-SEKRET-456

INNER = f'''
import requests
from rolloutgate.checks.httpclient import HttpClient, Request
from rolloutgate.checks.client import V2Client


def session():
    s = requests.Session()
    s.headers["X-Tenant"] = "{SECRET_HEADER}"
    s.auth = ("user", "PW-SEKRET-456")
    return s


def test_http_client():
    client = HttpClient(
        "http://127.0.0.1:9", model="m", timeout=0.5, health={{}}, session=session()
    )
    client.send(Request("GET", "/v2/health/ready"))


def test_v2_client():
    V2Client("http://127.0.0.1:9", "m", timeout=0.5, session=session()).live()
'''


def test_unanswered_requests_fail_without_their_headers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_subprocess("-p", "no:rolloutgate", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    output = result.stdout.str()
    assert "got no answer" in output
    assert f"'{SECRET_HEADER}'" not in output  # the header's value as a traceback argument
    assert BASIC not in output
