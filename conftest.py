"""The gate suite's own settings: what a team copying the suite edits first.

The plugin (``rolloutgate``, loaded through its pytest11 entry point) provides the fixtures;
override any of them here. Settings that are not about the checks (cluster profiles, manifests,
golden file, timeouts) live in pyproject.toml under ``[tool.rolloutgate]`` (docs/gate.md).
"""

from __future__ import annotations

import pytest

from rolloutgate.config import GateConfig

# Each example image: the container serving it in its manifests (fixtures/), where in-pod
# checks run, and where it keeps its model (examples/*/Dockerfile), by the image the gate
# deploys (`images` of the profile or [tool.rolloutgate]).
EXAMPLES = {
    "rolloutgate/iris": ("model", "/opt/iris/model/model.joblib"),
    "rolloutgate/wine": ("model", "/opt/wine/model/model.joblib"),
    "rolloutgate/penguin": ("server", "/opt/penguin/model/model.json"),
}


def _image(config: GateConfig) -> str:
    return (config.images or ("rolloutgate/iris",))[0]


@pytest.fixture
def rolloutgate_container(rolloutgate_config: GateConfig) -> str | None:
    """Function. Container of the new release's pod that tests/smoke/test_pod.py inspects
    (None: the pod's first container)."""
    known = EXAMPLES.get(_image(rolloutgate_config))
    return known[0] if known else None


@pytest.fixture
def model_file(rolloutgate_config: GateConfig) -> str:
    """Function. Path of the model file inside the serving container."""
    image = _image(rolloutgate_config)
    if image not in EXAMPLES:
        pytest.skip(f"no model file known for image {image}: add it to EXAMPLES")
    return EXAMPLES[image][1]
