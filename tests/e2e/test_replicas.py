"""Every replica is asked: a 3-replica release where exactly one pod serves the wrong model fails
the golden cases naming that pod (and only that pod), rolls back, and the rollback checks every
replica too.

One pod is made wrong the way a per-pod model source would: an init container copies the model
into an emptyDir, and a second init container (the `wrong` image) replaces it only in the first
pod to claim a marker directory on the node — so exactly one replica answers wrong while all of
them run the same template and the same image.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from gaterun import PENGUIN


@pytest.fixture
def claim_dir() -> Iterator[Path]:
    """A node directory the pods may write in: the first to mkdir `taken` in it goes wrong."""
    path = Path("/var/lib/rolloutgate-e2e") / f"claim-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    path.chmod(0o777)  # the model server runs as a non-root user
    yield path
    shutil.rmtree(path, ignore_errors=True)


def one_wrong_replica(directory: Path, claim: Path) -> Path:
    """The penguin example's manifests at 3 replicas with the model served from a per-pod copy
    (see module doc)."""
    path = PENGUIN.copy(directory, replicas=3) / "deployment.yaml"
    dep = yaml.safe_load(path.read_text())
    pod = dep["spec"]["template"]["spec"]
    model = pod["containers"][0]
    model.setdefault("volumeMounts", []).append(
        {"name": "model", "mountPath": "/opt/penguin/model"}
    )
    init = {
        "imagePullPolicy": "IfNotPresent",
        "securityContext": model["securityContext"],
        "volumeMounts": [
            {"name": "model", "mountPath": "/model"},
            {"name": "claim", "mountPath": "/claim"},
        ],
    }
    pod["initContainers"] = [
        # Retagged by the gate like the server: the release's own model.
        init | {
            "name": "release-model",
            "image": model["image"],
            "command": ["sh", "-c", "cp -r /opt/penguin/model/. /model/"],
        },
        # Another name for the same image, so --image-tag leaves it alone.
        init | {
            "name": "maybe-wrong",
            "image": "docker.io/rolloutgate/penguin:wrong",
            "command": [
                "sh", "-c",
                "if mkdir /claim/taken 2>/dev/null; then cp -r /opt/penguin/model/. /model/; fi",
            ],
        },
    ]  # fmt: skip
    pod.setdefault("volumes", []).extend(
        [
            {"name": "model", "emptyDir": {"sizeLimit": "64Mi"}},
            {"name": "claim", "hostPath": {"path": str(claim), "type": "Directory"}},
        ]
    )
    path.write_text(yaml.safe_dump(dep, sort_keys=False))
    return directory


def test_one_wrong_replica_fails_naming_that_pod_and_rolls_back(
    penguin_v1: dict, e2e_namespace: str, tmp_path: Path, claim_dir: Path
) -> None:
    before = PENGUIN.state(e2e_namespace)
    manifests = one_wrong_replica(tmp_path / "manifests", claim_dir)

    result = PENGUIN.run(
        e2e_namespace, tmp_path / "gate.json", "--image-tag=v1", f"--manifests={manifests}"
    )

    assert result.returncode == 1, result.output[-4000:]
    assert (claim_dir / "taken").is_dir(), "no pod claimed the wrong model"
    golden = [t for t in result.report["tests"]["items"] if "test_golden_case" in t["nodeid"]]
    failed = [t for t in golden if t["outcome"] == "failed"]
    assert failed, f"no golden case failed: {json.dumps(golden)[:2000]}"
    wrong_pods = {
        word
        for t in failed
        for word in t["message"].replace(":", " ").split()
        if word.startswith("penguin-")
    }
    # Exactly one replica named, and the message counts it against all three.
    assert len(wrong_pods) == 1, [t["message"] for t in failed]
    assert all("1 of 3 replicas answered wrong" in t["message"] for t in failed)
    assert result.report["verdict"] == "rolled-back"
    assert result.report["rollback"]["verified"] is True
    assert PENGUIN.state(e2e_namespace) == before
    assert PENGUIN.ready_with(e2e_namespace, "v1")
