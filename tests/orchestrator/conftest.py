"""Real components for the orchestrator tests: a Docker engine, the local test image, a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit import dockerd
from testkit import stores as testing

REPO = Path(__file__).resolve().parents[2]
# y = a*x for these models; the tests check predictions against a.
MODELS = {"alpha": 2.0, "beta": 3.0, "gamma": 5.0}


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[None]:
    """A Docker engine that answers: started by scripts/ensure-dockerd.sh when needed (and
    then stopped when the test run ends, tests/conftest.py). Docker tests are skipped only
    when it cannot start, with the reason."""
    reason = dockerd.ensure_engine(timeout=180)
    if reason is not None:
        print(f"\nno Docker engine, skipping docker tests: {reason}")
        pytest.skip(f"no Docker engine: {reason}")
    yield


@pytest.fixture(scope="session")
def test_image(docker_engine: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    from orchestrator.docker_runtime import DockerRuntime
    from testkit.docker_image import ensure_test_image

    runtime = DockerRuntime(tmp_path_factory.mktemp("img"), scope="testimage")
    try:
        return ensure_test_image(runtime)
    finally:
        runtime.close()


@pytest.fixture(scope="session")
def toy_store(tmp_path_factory: pytest.TempPathFactory, toy_template: Path) -> Path:
    """A local store with toy models `y = a*x` (one version each)."""
    return testing.make_local_store(tmp_path_factory.mktemp("store"),
                                    {name: {1: a} for name, a in MODELS.items()})
