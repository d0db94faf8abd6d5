"""The gate suite's own conftest.py: what a team copying the suite edits first.

The plugin (``rolloutgate``, loaded through its pytest11 entry point) provides every fixture
the suite uses; override any of them here. The settings — cluster profiles, manifests, golden
file, the in-pod checks' ``container`` and ``model_file``, timeouts — live in pyproject.toml
under ``[tool.rolloutgate]`` (docs/gate.md), so this file needs nothing to start with. An
example override, for a check the settings cannot express::

    @pytest.fixture
    def rolloutgate_container(rolloutgate_config: GateConfig) -> str:
        return "server" if rolloutgate_config.namespace.startswith("edge-") else "model"
"""
