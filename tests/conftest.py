"""Session-wide real components: moto's S3 server, the toy and half_plus_two models, log folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit import dockerd, half_plus_two, xdist_groups
from testkit import stores as testing
from tierserve import toy_models

# A throwaway PostgreSQL server (db tests, and the router through a db outage).
pytest_plugins = ["testkit.postgres"]

# TensorFlow's C++ logging drowns test output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# `make test` runs the suite on two processes (pytest-xdist, testkit/xdist_groups.py). Each
# module stays on one process, so its module-scoped servers start once; every test that
# reaches the machine's one Docker engine (dockerd's start and stop, the one-node swarm, the
# compose stack and its image builds, the test image) runs on one process, one after another.
# A test that gets an engine through `request.getfixturevalue` must carry the `docker` mark.
DOCKER_FIXTURES = frozenset({"docker_engine", "swarm_engine", "test_image"})
# The groups that take longest, handed out first: neither process should be left running one
# of them alone at the end.
LONGEST_FIRST = ("docker", "tests/bench/test_tiering_quick.py", "tests/tierserve/test_demo.py",
                 "tests/cold/test_restart.py", "tests/router/test_postgres_routers.py")
# The key under which a worker hands the controller what it did with the Docker engine.
DOCKERD_LINES = "tierserve_dockerd_lines"


def _group(item: pytest.Item) -> str:
    docker = (item.get_closest_marker("docker") is not None
              or not DOCKER_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())))
    return "docker" if docker else item.nodeid.split("::")[0]


def _xdist(config: pytest.Config) -> bool:
    return bool(config.pluginmanager.hasplugin("xdist") and config.getoption("numprocesses", None))


def pytest_configure(config: pytest.Config) -> None:
    if _xdist(config) and not hasattr(config, "workerinput"):
        xdist_groups.choose_file()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker is not None and xdist_groups.GROUPS_ENV in os.environ:
        xdist_groups.write({item.nodeid: _group(item) for item in items}, worker)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if config.getoption("dist") != "loadgroup":
        return None  # xdist's own
    return xdist_groups.GroupScheduling(config, log, first=LONGEST_FIRST)


def _report(config: pytest.Config, lines: list[str]) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    for line in lines:
        if reporter is not None:
            reporter.write_line(line)
        else:
            print(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop a Docker engine this run started (never one that was already running)."""
    lines = dockerd.stop_started()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a worker's console is not the user's: the controller says it
        workeroutput[DOCKERD_LINES] = lines
    else:
        _report(session.config, lines)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the controller: what a worker's session finish did with the engine."""
    _report(node.config, list(getattr(node, "workeroutput", {}).get(DOCKERD_LINES, [])))


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where server processes started by tests write their logs."""
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def toy_template() -> Path:
    """Build the toy SavedModel template once per session."""
    return toy_models.template_dir()


@pytest.fixture(scope="session")
def moto_s3(log_dir: Path) -> Iterator[str]:
    """moto's standalone S3 server on 127.0.0.1; yields its endpoint URL."""
    proc, endpoint = testing.start_moto(log_dir)
    saved = {k: os.environ.get(k) for k in testing.S3_ENV}
    os.environ.update(testing.S3_ENV)
    try:
        yield endpoint
    finally:
        proc.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def s3_bucket(moto_s3: str, request: pytest.FixtureRequest) -> str:
    """A fresh bucket on the moto server, named after the test."""
    import re

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-") or "bucket"
    client = testing.s3_client(moto_s3)
    bucket = f"t-{name}-{os.getpid()}"[:63]
    client.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(scope="session")
def half_plus_two_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TF Serving's half_plus_two test models, built once per session by testkit."""
    return half_plus_two.write_models(tmp_path_factory.mktemp("half-plus-two"))


@pytest.fixture(scope="session")
def swarm_engine() -> Iterator[None]:
    """The Docker engine as a one-node swarm manager: made one for this run when it was in no
    swarm, and taken out again at the end; an engine already in a swarm is not touched."""
    from testkit import swarm

    reason = dockerd.ensure_engine(timeout=180)
    if reason is None:
        reason, joined = swarm.join()
    if reason is not None:
        pytest.skip(f"no swarm: {reason}")
    try:
        yield
    finally:
        if joined:
            swarm.leave()
