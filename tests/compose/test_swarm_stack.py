"""compose/stack.yml, the Swarm deployment: validated by `docker stack config` (the CLI's own
parse and interpolation, no engine needed), then deployed on the one-node test swarm to check
that Swarm accepts every service, network and volume as written.

The deployment is checked as Swarm stores it, not run: the production image cannot be built
here from a public base, and no PostgreSQL or MinIO image can be pulled. Every service runs
the local test image instead (its tasks fail to start and are restarted by Swarm until the
stack is removed; the test never sends traffic anywhere).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
import yaml

from base.procs import free_port
from policies.loader import load_policy
from tests.compose.stack import REPO

STACK_FILE = REPO / "compose" / "stack.yml"
STACK_POLICY = REPO / "compose" / "policy" / "stack-policy.yaml"
SERVICES = {"router", "cold-0", "cold-1", "orchestrator", "postgres", "minio"}


def docker_cli() -> str:
    """A docker CLI with `docker stack config` (20.10 has `stack deploy` but not `config`)."""
    for path in (shutil.which("docker"), "/usr/local/bin/docker", "/usr/bin/docker"):
        if path and subprocess.run([path, "stack", "config", "--help"],
                                   capture_output=True).returncode == 0:
            return path
    pytest.skip("no docker CLI with `docker stack config`")


def stack_config() -> dict[str, Any]:
    # Only PATH: the defaults in the file are what is checked, not this shell's variables.
    result = subprocess.run([docker_cli(), "stack", "config", "-c", str(STACK_FILE)],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return stack_config()


def test_swarm_stack_has_every_part(config: dict[str, Any]) -> None:
    assert set(config["services"]) == SERVICES


def test_swarm_stack_routers_are_replicas_behind_the_routing_mesh(config: dict[str, Any]) -> None:
    router = config["services"]["router"]
    assert router["deploy"]["replicas"] >= 2
    (port,) = router["ports"]
    assert (port["mode"], port["target"], port["published"]) == ("ingress", 8501, 8501)
    assert router["deploy"]["update_config"]["order"] == "start-first"
    # Only the routers publish: everything else talks over the overlay network.
    assert [n for n, s in config["services"].items() if s.get("ports")] == ["router"]


def test_swarm_stack_orchestrator_is_one_replica_on_a_manager(config: dict[str, Any]) -> None:
    orch = config["services"]["orchestrator"]
    assert orch["deploy"]["replicas"] == 1
    assert orch["deploy"]["placement"]["constraints"] == ["node.role == manager"]
    assert "--runtime=swarm" in orch["command"]
    targets = [v["target"] for v in orch["volumes"]]
    assert "/var/run/docker.sock" in targets and "/etc/tierserve" in targets
    policy_arg = next(a for a in orch["command"] if a.startswith("--policy="))
    assert policy_arg == f"--policy=/etc/tierserve/{STACK_POLICY.name}"


def test_swarm_stack_cold_shards_have_a_cache_each(config: dict[str, Any]) -> None:
    caches = {name: [v["source"] for v in config["services"][name]["volumes"]]
              for name in ("cold-0", "cold-1")}
    assert caches == {"cold-0": ["cold-0-cache"], "cold-1": ["cold-1-cache"]}


def test_swarm_stack_shares_one_postgresql_and_one_store(config: dict[str, Any]) -> None:
    urls = {s["environment"]["TIERSERVE_DB_URL"] for n, s in config["services"].items()
            if n in ("router", "cold-0", "cold-1", "orchestrator")}
    (url,) = urls
    assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
    assert config["services"]["postgres"]["deploy"]["placement"]["constraints"] == [
        "node.labels.tierserve.data == true"]


def test_swarm_stack_policy_reaches_hot_services_on_the_stack_network(
        config: dict[str, Any]) -> None:
    policy = load_policy(STACK_POLICY).policy
    assert policy.runtime == "swarm"
    assert policy.hot.swarm.reach == "network" and policy.hot.swarm.health_cmd
    network = config["networks"]["tierserve"]
    assert (network["driver"], network["attachable"]) == ("overlay", True)
    assert network["name"] == policy.hot.swarm.network
    assert policy.hot.container.env["AWS_ENDPOINT_URL"] == "http://minio:9000"


# -- deployed ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def test_image(swarm_engine: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    from orchestrator.docker_runtime import DockerRuntime
    from testkit.docker_image import ensure_test_image

    runtime = DockerRuntime(tmp_path_factory.mktemp("img"), scope="testimage")
    try:
        return ensure_test_image(runtime)
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def deployed(test_image: str) -> Iterator[dict[str, dict[str, Any]]]:
    name = f"tsstack{os.getpid()}"
    env = {**os.environ, "TIERSERVE_IMAGE": test_image, "POSTGRES_IMAGE": test_image,
           "MINIO_IMAGE": test_image, "TIERSERVE_ROUTER_PORT": str(free_port()),
           "TIERSERVE_NETWORK": f"{name}-net", "TIERSERVE_SCOPE": name}
    subprocess.run([docker_cli(), "stack", "deploy", "-c", str(STACK_FILE), name], check=True,
                   capture_output=True, text=True, env=env, cwd=REPO / "compose", timeout=120)
    client = docker.from_env()
    try:
        services = {s.name.removeprefix(f"{name}_"): s.attrs["Spec"] for s in
                    client.services.list(filters={"label": f"com.docker.stack.namespace={name}"})}
        yield services
    finally:
        subprocess.run([docker_cli(), "stack", "rm", name], capture_output=True, timeout=120)
        stack = {"label": f"com.docker.stack.namespace={name}"}
        for _ in range(60):  # the network goes once the stack's tasks are gone
            if not client.networks.list(names=[f"{name}-net"]) and not client.containers.list(
                    all=True, filters=stack):
                break
            time.sleep(1)
        for volume in client.volumes.list(filters=stack):  # `stack rm` leaves volumes
            volume.remove(force=True)
        client.close()


def test_swarm_stack_deploys_on_a_one_node_swarm(deployed: dict[str, dict[str, Any]]) -> None:
    assert set(deployed) == SERVICES
    router = deployed["router"]
    assert router["Mode"]["Replicated"]["Replicas"] == 2
    assert router["EndpointSpec"]["Ports"][0]["PublishMode"] == "ingress"
    orch = deployed["orchestrator"]["TaskTemplate"]
    assert orch["Placement"]["Constraints"] == ["node.role == manager"]
    assert any(m["Target"] == "/var/run/docker.sock" for m in orch["ContainerSpec"]["Mounts"])
    cold = deployed["cold-0"]["TaskTemplate"]["Resources"]
    assert cold["Reservations"]["MemoryBytes"] == 2 * 1024**3
