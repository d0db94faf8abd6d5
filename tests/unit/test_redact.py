"""What the gate never prints: Secret values in diffs (kubectl diff's masking rule), URL
userinfo, and Markdown that a log line cannot break out of."""

from __future__ import annotations

import copy
import re

import pytest

from rolloutgate import redact
from rolloutgate.release import report

from .k8s_objects import gate_config


def secret(data: dict[str, str] | None = None, **extra: object) -> dict:
    obj: dict = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}}
    if data is not None:
        obj["data"] = data
    obj.update(extra)
    return obj


def test_equal_values_are_masked_alike_and_keys_kept() -> None:
    before, after = redact.secret_pair(secret({"a": "QQ==", "b": "Qg=="}), secret({"a": "QQ=="}))
    assert before is not None
    assert after is not None
    assert before["data"] == {"a": "***", "b": "***"}
    assert after["data"] == {"a": "***"}


def test_a_changed_value_shows_before_and_after_markers_only() -> None:
    before, after = redact.secret_pair(secret({"a": "b2xk"}), secret({"a": "bmV3", "c": "Yw=="}))
    assert before is not None
    assert after is not None
    assert before["data"] == {"a": "*** (before)"}
    assert after["data"] == {"a": "*** (after)", "c": "***"}


def test_string_data_and_last_applied_annotation_are_masked() -> None:
    applied = '{"apiVersion":"v1","kind":"Secret","stringData":{"token":"hunter2"}}'
    live = secret({"token": "aHVudGVyMg=="})
    live["metadata"]["annotations"] = {redact.LAST_APPLIED: applied, "team": "ml"}
    new = secret(stringData={"token": "s3cr3t"})
    before, after = redact.secret_pair(live, new)
    text = repr((before, after))
    for value in ("hunter2", "aHVudGVyMg==", "s3cr3t"):
        assert value not in text
    assert before is not None
    assert after is not None
    assert before["metadata"]["annotations"] == {redact.LAST_APPLIED: "***", "team": "ml"}
    assert after["stringData"] == {"token": "***"}


def test_a_new_secret_and_the_inputs_are_left_alone() -> None:
    new = secret({"k": "dg=="})
    kept = copy.deepcopy(new)
    before, after = redact.secret_pair(None, new)
    assert before is None
    assert after is not None
    assert after["data"] == {"k": "***"}
    assert new == kept  # the caller's object is not changed


def test_other_kinds_pass_unchanged() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}}
    assert redact.secret_pair(cm, cm) == (cm, cm)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@host.example/x?q=1", "https://host.example/x?q=1"),
        ("http://tok@127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://a%40b:p%3Aw@h:1/p", "http://h:1/p"),
        ("https://host.example/path@x", "https://host.example/path@x"),
    ],
)
def test_url_userinfo_is_removed(url: str, shown: str) -> None:
    assert redact.url(url) == shown
    assert redact.urls_in(f"GET {url} -> 401") == f"GET {shown} -> 401"


def test_userinfo_is_decoded_for_basic_auth() -> None:
    assert redact.userinfo("http://a%40b:p%3Aw@h:1") == ("a@b", "p:w")
    assert redact.userinfo("http://h") is None


def test_markdown_fence_outlasts_every_backtick_run_in_a_log() -> None:
    run = report.GateRun(gate_config(endpoint_url="https://u:pw@host"))
    run.interrupted = "SIGTERM"
    log = "    | line\n```\n    | ````` five\n</details>\n# not a heading"
    run.diagnostics = log
    md = report.markdown(run)
    fence = re.search(r"^(`{3,})$", md, re.MULTILINE)
    assert fence is not None
    assert len(fence.group(1)) == 6
    # The block closes only on its own fence, after the whole log.
    body = md.split(fence.group(1))
    assert len(body) == 3
    assert body[1].strip("\n") == log
    assert "pw" not in md
    assert "pw" not in str(run.to_json())


def test_inline_code_survives_backticks_in_a_test_id() -> None:
    run = report.GateRun(gate_config())
    run.record(report.TestOutcome("t.py::test[`x`]", "failed", 0.1, "boom"))
    md = report.markdown(run)
    assert "- ``t.py::test[`x`]`` (failed): boom" in md


def test_reports_strip_userinfo_from_urls_in_messages(tmp_path) -> None:
    run = report.GateRun(gate_config())
    message = "GET https://ci:hunter2@model.example/v2 -> 401"
    run.record(report.TestOutcome("t.py::test_health", "failed", 0.1, message))
    report.write_json(run, tmp_path / "gate.json")
    summary = tmp_path / "summary.md"
    report.append_step_summary(run, {"GITHUB_STEP_SUMMARY": str(summary)})
    for path in (tmp_path / "gate.json", summary):
        text = path.read_text()
        assert "hunter2" not in text
        assert "https://model.example/v2" in text
