"""The gate suite's own settings: what a team copying the suite edits first.

The plugin (``rolloutgate``, loaded through its pytest11 entry point) provides the fixtures;
override any of them here. Settings that are not about the checks (cluster profiles, manifests,
golden file, timeouts) live in pyproject.toml under ``[tool.rolloutgate]`` (docs/gate.md).
"""

from __future__ import annotations

import pytest

# The model server's container in the Deployment (fixtures/manifests), where in-pod checks run.
MODEL_CONTAINER = "model"
# Where the example image keeps its trained model (examples/iris/Dockerfile, app/train.py).
MODEL_FILE = "/opt/iris/model/model.joblib"


@pytest.fixture
def rolloutgate_container() -> str:
    """Function. Container of the new release's pod that tests/smoke/test_pod.py inspects."""
    return MODEL_CONTAINER


@pytest.fixture
def model_file() -> str:
    """Function. Path of the model file inside the serving container."""
    return MODEL_FILE
