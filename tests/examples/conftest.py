"""Fixtures for the example-image tests: run rolloutgate/iris tags under docker.

These tests build nothing: `make -C examples/iris images` does. Without docker or without
the images they skip, saying which — except under ROLLOUTGATE_REQUIRE_CLUSTER=1 (set by
.ci/run), where that is a failure: CI must never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from iris_harness import (
    BUILD_HINT,
    IMAGE,
    START_DEADLINE_S,
    Container,
    docker_problem,
    image_exists,
    run_container,
    wait_for_status,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "docker: runs rolloutgate/iris images under a local docker daemon"
    )


def _missing(message: str) -> None:
    if os.environ.get("ROLLOUTGATE_REQUIRE_CLUSTER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def iris_docker() -> None:
    """Session: skips the test when docker cannot run containers here."""
    problem = docker_problem()
    if problem:
        _missing(f"needs docker: {problem}")


@pytest.fixture(scope="session")
def iris_image(iris_docker: None) -> Callable[[str], str]:
    """Session: returns a function tag -> image name that skips when that tag is not built."""

    def need(tag: str) -> str:
        if not image_exists(tag):
            _missing(f"image {IMAGE}:{tag} not built; {BUILD_HINT}")
        return f"{IMAGE}:{tag}"

    return need


@pytest.fixture
def iris_start(iris_image: Callable[[str], str]) -> Iterator[Callable[[str], Container]]:
    """Function: starts containers of a tag on free ports; removes them all in teardown."""
    started: list[Container] = []

    def start(tag: str) -> Container:
        iris_image(tag)
        c = run_container(tag)
        started.append(c)
        return c

    yield start
    for c in started:
        c.remove()


@pytest.fixture(scope="module")
def iris_ready(iris_image: Callable[[str], str]) -> Iterator[Callable[[str], Container]]:
    """Module: one ready container per tag, shared by the module's tests, removed after it."""
    running: dict[str, Container] = {}

    def ready(tag: str) -> Container:
        if tag not in running:
            iris_image(tag)
            c = run_container(tag)
            running[tag] = c
            wait_for_status(c, "/v2/health/ready", 200, START_DEADLINE_S)
        return running[tag]

    yield ready
    for c in running.values():
        c.remove()
