"""Inside a pod of the new release (testinfra, kubectl backend)."""

from __future__ import annotations

from typing import Any


def test_serving_process_is_not_root(rolloutgate_pod_host: Any) -> None:
    # PID 1 of the container is the serving process (the image's CMD).
    status = rolloutgate_pod_host.file("/proc/1/status").content_string
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert "0" not in uids, f"the serving process runs with uid 0 (real/effective/saved/fs: {uids})"


def test_model_file_present(rolloutgate_pod_host: Any, model_file: str) -> None:
    f = rolloutgate_pod_host.file(model_file)
    assert f.is_file, f"{model_file} is not a file in the serving container"
    assert f.size > 0, f"{model_file} is empty"
