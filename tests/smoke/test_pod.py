"""Inside a pod of the new release, next to the serving process (testinfra through kubectl
exec: in the serving container, or from an ephemeral debug container when its image has no
shell). Which container: the one whose image --image-tag sets, or the `container` setting."""

from __future__ import annotations

from rolloutgate import InPod


def test_serving_process_is_not_root(rolloutgate_in_pod: InPod) -> None:
    # PID 1 of the container is the serving process (the image's CMD).
    status = rolloutgate_in_pod.file("/proc/1/status").content_string
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    assert "0" not in uids, (
        f"the serving process runs with uid 0 (real/effective/saved/fs: {uids}) in "
        f"{rolloutgate_in_pod.where}"
    )


def test_model_file_present(rolloutgate_model_file: str, rolloutgate_in_pod: InPod) -> None:
    f = rolloutgate_in_pod.file(rolloutgate_model_file)
    assert f.is_file, f"{rolloutgate_model_file} is not a file in {rolloutgate_in_pod.where}"
    assert f.size > 0, f"{rolloutgate_model_file} is empty in {rolloutgate_in_pod.where}"
