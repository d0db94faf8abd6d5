"""The gate suite's own settings: what a team copying the suite edits first.

The plugin (``rolloutgate``, loaded through its pytest11 entry point) provides the fixtures;
override any of them here. Settings that are not about the checks (cluster profiles, manifests,
golden file, timeouts) live in pyproject.toml under ``[tool.rolloutgate]`` (docs/gate.md).
"""

from __future__ import annotations

import pytest

from rolloutgate import GateConfig

# The model server's container in the Deployment (fixtures/manifests), where in-pod checks run.
MODEL_CONTAINER = "model"
# Where each example image keeps its trained model (examples/*/Dockerfile, app/train.py), by
# the image the gate deploys (`images` of the profile or [tool.rolloutgate]).
MODEL_FILES = {
    "rolloutgate/iris": "/opt/iris/model/model.joblib",
    "rolloutgate/wine": "/opt/wine/model/model.joblib",
}


@pytest.fixture
def rolloutgate_container() -> str:
    """Function. Container of the new release's pod that tests/smoke/test_pod.py inspects."""
    return MODEL_CONTAINER


@pytest.fixture
def model_file(rolloutgate_config: GateConfig) -> str:
    """Function. Path of the model file inside the serving container."""
    image = (rolloutgate_config.images or ("rolloutgate/iris",))[0]
    if image not in MODEL_FILES:
        pytest.skip(f"no model file known for image {image}: add it to MODEL_FILES")
    return MODEL_FILES[image]
