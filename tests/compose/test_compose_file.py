"""compose/docker-compose.yml as docker-compose reads it (no engine needed)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from policies.loader import load_policy
from tests.compose.stack import COMPOSE_FILE, REPO, compose_binary

SERVICES = {"router", "pool", "orchestrator", "minio", "minio-init", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def config() -> dict[str, dict[str, dict[str, object]]]:
    binary = compose_binary()
    if binary is None:
        pytest.skip("docker-compose not installed (scripts/install-system-test-deps.sh)")
    result = subprocess.run([binary, "-f", str(COMPOSE_FILE), "config"], capture_output=True,
                            text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    return yaml.safe_load(result.stdout)


def test_every_service_is_there(config: dict[str, dict[str, dict[str, object]]]) -> None:
    assert set(config["services"]) == SERVICES


def test_ports_are_published_on_loopback_only(
        config: dict[str, dict[str, dict[str, object]]]) -> None:
    for name, service in config["services"].items():
        for port in service.get("ports", []):  # type: ignore[attr-defined]
            host_ip = port["host_ip"] if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)


def test_orchestrator_drives_the_engine_on_the_stack_network(
        config: dict[str, dict[str, dict[str, object]]]) -> None:
    orchestrator = config["services"]["orchestrator"]
    volumes = [str(v.get("target") if isinstance(v, dict) else v)
               for v in orchestrator["volumes"]]  # type: ignore[union-attr]
    assert any("/var/run/docker.sock" in v for v in volumes)
    env = orchestrator["environment"]
    assert env["TIERSERVE_DOCKER_NETWORK"] == config["networks"]["default"]["name"]  # type: ignore[index]


def test_shipped_policy_is_valid() -> None:
    policy = load_policy(REPO / "compose" / "policy" / "policy.yaml").policy
    assert policy.store.startswith("s3://tierserve-models/")
    assert policy.hot.container.env["AWS_ENDPOINT_URL"] == "http://minio:9000"


def test_hot_containers_outweigh_the_cold_pool(
        config: dict[str, dict[str, dict[str, object]]]) -> None:
    policy = load_policy(REPO / "compose" / "policy" / "policy.yaml").policy
    pool = config["services"]["pool"]
    assert int(pool["cpu_shares"]) < policy.hot.container.cpu_shares  # type: ignore[call-overload]
    assert "cpu_shares" not in config["services"]["router"]  # Docker's default, 1024
