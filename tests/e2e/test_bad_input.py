"""Bad input gets a clear error naming what was wrong, and changes nothing on the cluster (on
the penguin example, v1 live)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from gaterun import KUBECONFIG, PENGUIN, Result, namespace_objects


def manifests_with(tmp_path: Path, name: str, text: str) -> Path:
    return PENGUIN.copy(tmp_path / "manifests", extra={name: text})


def unparsable_manifest(tmp_path: Path) -> list[str]:
    path = manifests_with(tmp_path, "broken.yaml", "kind: Service\nmetadata: {name: [oops\n")
    return [f"--manifests={path}", "--image-tag=v2"]


def unknown_kind(tmp_path: Path) -> list[str]:
    text = "apiVersion: example.com/v1\nkind: Frobnicator\nmetadata: {name: frob}\n"
    return [f"--manifests={manifests_with(tmp_path, 'frob.yaml', text)}", "--image-tag=v2"]


def unparsable_golden(tmp_path: Path) -> list[str]:
    golden = tmp_path / "golden.json"
    golden.write_text('{"protocol": "plain", "cases": [')
    return [f"--golden={golden}", "--image-tag=v2"]


def unreachable_api_server(tmp_path: Path) -> list[str]:
    config = tmp_path / "kubeconfig"
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    config.write_text(
        KUBECONFIG.read_text().replace("https://127.0.0.1:6443", "https://127.0.0.1:9")
    )
    return [f"--kubeconfig={config}", "--image-tag=v2"]


# name → (arguments, extra environment, words the error must contain)
CASES: dict[str, tuple[Callable[[Path], list[str]], dict[str, str], tuple[str, ...]]] = {
    "manifest that does not parse": (unparsable_manifest, {}, ("broken.yaml",)),
    "unknown kind": (unknown_kind, {}, ("Frobnicator",)),
    "tag matching no container": (
        lambda _: ["--image-tag=v2"],
        {"ROLLOUTGATE_IMAGES": "rolloutgate/not-in-manifests"},
        ("rolloutgate/not-in-manifests", "rolloutgate/penguin"),
    ),
    "unknown cluster profile": (
        lambda _: ["--cluster=no-such-profile", "--image-tag=v2"],
        {},
        ("no-such-profile", "local"),
    ),
    "kubeconfig context that does not exist": (
        lambda _: ["--context=no-such-context", "--image-tag=v2"],
        {},
        ("no-such-context", "local"),
    ),
    "unreachable API server": (unreachable_api_server, {}, ("127.0.0.1:9",)),
    "golden file that does not parse": (unparsable_golden, {}, ("golden.json",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_named_and_changes_nothing(
    case: str, penguin_v1: dict, e2e_namespace: str, tmp_path: Path
) -> None:
    make_args, env, words = CASES[case]
    before = namespace_objects(e2e_namespace)

    result: Result = PENGUIN.run(
        e2e_namespace, tmp_path / "gate.json", *make_args(tmp_path), env=env, timeout=180
    )

    # For docs/reliability.md (`-s` shows it).
    print(f"FIGURE {case}: exit {result.returncode}, cause: {result.report.get('cause', '-')}")
    assert result.returncode not in (0, 5), result.output[-3000:]
    for word in words:
        assert word in result.output, f"{word!r} not in the error:\n{result.output[-3000:]}"
    assert "Traceback" not in result.output, result.output[-3000:]
    assert namespace_objects(e2e_namespace) == before
