"""The gate prints no secret. Known strings are planted where a gate meets credentials — a Secret
in the manifests (stringData and data), a different live value of it, the endpoint URL's
userinfo, two request headers (one from an environment variable, one from a file) — and four
runs (pass, fail and roll back, dry-run, SIGTERM mid-rollout) must show none of them, in any
form the gate handles them (plain, base64, the Basic auth header), in the terminal, gate.json,
the JUnit XML or the GitHub step summary.

The endpoint URL is an authenticating proxy on 127.0.0.1 in front of the model's Service: it
answers 401 unless the request carries the URL's userinfo as Basic auth and both headers, so a
pass, and a verified rollback, prove that the checks, the endpoint wait and the rollback's
verification all sent them.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from gaterun import PENGUIN, Result, kubectl

SECRET_NAME = "penguin-credentials"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@dataclass
class Planted:
    """The planted values, unique per run, and every form the gate could print them in."""

    suffix: str = field(default_factory=lambda: secrets.token_hex(6))

    def __post_init__(self) -> None:
        s = self.suffix
        self.string_data = f"stringdata-{s}"
        self.data = f"datavalue-{s}"
        self.live = f"livevalue-{s}"
        self.user = f"urluser-{s}"
        self.password = f"urlpassword-{s}"
        self.header_env = f"headerenv-{s}"
        self.header_file = f"headerfile-{s}"

    def forms(self) -> dict[str, str]:
        """name -> a string that must never be printed."""
        raw = {
            "manifest stringData": self.string_data,
            "manifest data": self.data,
            "live Secret value": self.live,
            "URL user": self.user,
            "URL password": self.password,
            "header from env": self.header_env,
            "header from file": self.header_file,
        }
        forms = dict(raw)
        forms.update({f"{name} (base64)": _b64(value) for name, value in raw.items()})
        forms["Basic auth"] = _b64(f"{self.user}:{self.password}")
        return forms


def secret_manifest(planted: Planted) -> str:
    return (
        "apiVersion: v1\nkind: Secret\n"
        f"metadata:\n  name: {SECRET_NAME}\n  labels:\n    app.kubernetes.io/name: penguin\n"
        "type: Opaque\n"
        f"stringData:\n  token: {planted.string_data}\n"
        f"data:\n  key: {_b64(planted.data)}\n"
    )


class AuthProxy:
    """127.0.0.1:<port> -> the Service's ClusterIP, for requests with every credential."""

    def __init__(self, namespace: str, planted: Planted) -> None:
        self.namespace = namespace
        self.expected = {
            "Authorization": f"Basic {_b64(f'{planted.user}:{planted.password}')}",
            "X-Api-Key": planted.header_env,
            "X-Tenant-Token": planted.header_file,
        }
        self.accepted = 0
        self.refused: list[str] = []  # "METHOD path: missing headers" (names, never values)
        self._target: tuple[str, int] | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                proxy.handle(self)

            def do_POST(self) -> None:
                proxy.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def target(self) -> tuple[str, int]:
        if self._target is None:
            ip = kubectl(
                "get",
                "service",
                PENGUIN.name,
                "-o",
                "jsonpath={.spec.clusterIP}",
                namespace=self.namespace,
            )
            self._target = (ip.strip(), PENGUIN.port)
        return self._target

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else None
        wrong = [k for k, v in self.expected.items() if req.headers.get(k) != v]
        if wrong:
            self.refused.append(f"{req.command} {req.path}: missing {', '.join(wrong)}")
            self._answer(req, 401, b'{"error": "unauthorized"}', "application/json")
            return
        self.accepted += 1
        host, port = self.target()
        # Connect fails fast, as an ingress's upstream connect does: right after a rollout
        # kube-proxy may still send a new connection to a deleted pod's address, where a SYN gets
        # no answer; 10 s spent there was one 502 for the gate's whole retry window.
        conn = http.client.HTTPConnection(host, port, timeout=2)
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.settimeout(10)
            headers = {"Content-Type": req.headers.get("Content-Type") or "application/json"}
            conn.request(req.command, req.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            self._answer(req, answer.status, data, answer.getheader("Content-Type") or "")
        except OSError as e:
            self._answer(req, 502, str(e).encode(), "text/plain")
        finally:
            conn.close()

    @staticmethod
    def _answer(req: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str) -> None:
        req.send_response(status)
        if ctype:
            req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Setup:
    namespace: str
    planted: Planted
    manifests: Path
    proxy: AuthProxy
    header_file: Path
    workdir: Path

    def args(self, *extra: str, name: str) -> list[str]:
        url = f"http://{self.planted.user}:{self.planted.password}@127.0.0.1:{self.proxy.port}"
        return [
            f"--manifests={self.manifests}",
            f"--endpoint-url={url}",
            f"--junitxml={self.workdir / f'{name}.xml'}",
            *extra,
        ]

    def env(self, name: str) -> dict[str, str]:
        return {
            "E2E_API_KEY": self.planted.header_env,
            "ROLLOUTGATE_HEADERS": json.dumps(
                {"X-Api-Key": "env:E2E_API_KEY", "X-Tenant-Token": f"file:{self.header_file}"}
            ),
            "GITHUB_STEP_SUMMARY": str(self.workdir / f"{name}.md"),
        }

    def outputs(self, name: str, result: Result, report: Path) -> dict[str, str]:
        """Everything the run left a reader: terminal, gate.json, JUnit XML, step summary."""
        found = {"terminal output": result.output}
        for what, path in (
            ("gate.json", report),
            ("JUnit XML", self.workdir / f"{name}.xml"),
            ("step summary", self.workdir / f"{name}.md"),
        ):
            assert path.is_file(), f"{name}: no {what} at {path}"
            found[what] = path.read_text()
        return found

    def assert_nothing_leaked(self, name: str, result: Result, report: Path) -> None:
        __tracebackhide__ = True
        leaks = [
            f"{form} in {where}"
            for where, text in self.outputs(name, result, report).items()
            for form, value in self.planted.forms().items()
            if value in text
        ]
        assert not leaks, f"{name} run printed secrets: {leaks}"  # names only, never values


@pytest.fixture(scope="module")
def setup(e2e_cluster: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Module: a namespace with v1 deployed from manifests holding a planted Secret, and the
    authenticating proxy in front of its Service."""
    planted = Planted()
    workdir = tmp_path_factory.mktemp("secrets")
    manifests = PENGUIN.copy(workdir / "manifests", extra={"secret.yaml": secret_manifest(planted)})
    header_file = workdir / "tenant-token"
    header_file.write_text(planted.header_file + "\n")
    header_file.chmod(0o600)
    namespace = f"e2e-secrets-{uuid.uuid4().hex[:8]}"
    first = PENGUIN.run(
        namespace, workdir / "v1.json", f"--manifests={manifests}", "--image-tag=v1"
    )
    proxy = AuthProxy(namespace, planted)
    try:
        assert first.returncode == 0, first.output[-4000:]
        yield Setup(namespace, planted, manifests, proxy, header_file, workdir)
    finally:
        proxy.close()
        kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


def test_a_passing_release_sends_the_credentials_and_prints_none(
    setup: Setup, tmp_path: Path
) -> None:
    report = tmp_path / "gate.json"
    result = PENGUIN.run(
        setup.namespace,
        report,
        *setup.args("--image-tag=v2", name="pass"),
        env=setup.env("pass"),
    )
    assert result.returncode == 0, result.output[-4000:]
    assert result.report["verdict"] == "pass"
    assert setup.proxy.accepted > 0
    assert not setup.proxy.refused, setup.proxy.refused
    # Shown: where the endpoint and the headers come from, not what they hold.
    assert f"endpoint http://127.0.0.1:{setup.proxy.port} (--endpoint-url)" in result.output
    assert "X-Api-Key (env E2E_API_KEY)" in result.output
    assert result.report["target"]["endpoint_url"] == f"http://127.0.0.1:{setup.proxy.port}"
    setup.assert_nothing_leaked("pass", result, report)


def test_a_failing_release_rolls_back_verified_through_the_credentials_and_prints_none(
    setup: Setup, tmp_path: Path
) -> None:
    before = PENGUIN.state(setup.namespace)
    accepted = setup.proxy.accepted
    report = tmp_path / "gate.json"
    result = PENGUIN.run(
        setup.namespace,
        report,
        *setup.args("--image-tag=wrong", name="fail"),
        env=setup.env("fail"),
    )
    assert result.returncode == 1, result.output[-4000:]
    rollback = result.report["rollback"]
    assert rollback["verified"] is True, (rollback["outcome"], setup.proxy.refused)
    assert result.report["verdict"] == "rolled-back", result.report["cause"]
    assert setup.proxy.accepted > accepted
    assert not setup.proxy.refused, setup.proxy.refused
    assert PENGUIN.state(setup.namespace) == before
    setup.assert_nothing_leaked("fail", result, report)


def test_a_dry_run_masks_secret_values_like_kubectl_diff(setup: Setup, tmp_path: Path) -> None:
    # A live value that differs from the manifests', written by kubectl apply: its
    # last-applied-configuration annotation holds the value in plain text too.
    live = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET_NAME},
        "stringData": {"token": setup.planted.live},
        "data": {"key": _b64(setup.planted.data)},
    }
    kubectl("apply", "-f", "-", namespace=setup.namespace, stdin=json.dumps(live))
    report = tmp_path / "gate.json"
    result = PENGUIN.run(
        setup.namespace,
        report,
        *setup.args("--image-tag=v1", "--dry-run", name="dry-run"),
        env=setup.env("dry-run"),
    )
    assert result.returncode == 0, result.output[-4000:]
    diff = result.report["dry_run_diff"]
    # Keys stay; a changed value shows as changed, an equal one as equal, neither as itself.
    assert f"live/Secret/{SECRET_NAME}" in diff
    assert "-  token: '*** (before)'" in diff
    assert "+  token: '*** (after)'" in diff
    assert "key: '***'" in diff
    setup.assert_nothing_leaked("dry-run", result, report)


def test_an_interrupted_release_rolls_back_through_the_credentials_and_prints_none(
    setup: Setup, tmp_path: Path
) -> None:
    before = PENGUIN.state(setup.namespace)
    report = tmp_path / "gate.json"
    gate = PENGUIN.start(
        setup.namespace,
        report,
        *setup.args("--image-tag=unready", "--rollout-timeout=240", name="interrupt"),
        env=setup.env("interrupt"),
    )
    try:
        gate.wait_for_line(PENGUIN.rollout_line, timeout=120)
    finally:
        result = gate.terminate_and_wait(timeout=400)
    assert result.report["interrupted"] == "SIGTERM", result.output[-4000:]
    assert result.report["rollback"]["verified"] is True, result.report["rollback"]["outcome"]
    assert result.returncode == 2, result.output[-4000:]
    assert not setup.proxy.refused, setup.proxy.refused
    assert PENGUIN.state(setup.namespace) == before
    assert PENGUIN.ready_with(setup.namespace, "v2")
    setup.assert_nothing_leaked("interrupt", result, report)


def test_the_release_record_keeps_secret_values_out_of_its_configmap(setup: Setup) -> None:
    """The record of the last verified release holds the target's objects; a ConfigMap is read
    by anyone with the `view` role, so its Secrets' values live in a Secret beside it."""
    name = PENGUIN.record
    configmap = kubectl("get", "configmap", name, "-o", "json", namespace=setup.namespace)
    assert "Secret" in configmap  # the target does hold the Secret (its name and keys)
    leaks = [form for form, value in setup.planted.forms().items() if value in configmap]
    assert not leaks, f"the release record ConfigMap holds {leaks}"
    companion = json.loads(kubectl("get", "secret", name, "-o", "json", namespace=setup.namespace))
    assert companion["type"] == "rolloutgate.dev/release-secrets"
