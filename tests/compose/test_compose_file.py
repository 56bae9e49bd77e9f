"""compose/docker-compose.yml as docker-compose reads it (no engine needed), its env files,
the test override and the Dockerfile's user."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.loader import load_policy
from tests.compose.stack import COMPOSE_FILE, REPO, TEST_OVERRIDE, compose_binary

SERVICES = {"router", "pool", "orchestrator", "postgres", "minio", "minio-init", "prometheus",
            "grafana"}
Config = dict[str, dict[str, dict[str, Any]]]


def compose_config(*files: Path, env: dict[str, str] | None = None) -> Config:
    binary = compose_binary()
    if binary is None:
        pytest.skip("docker-compose not installed (scripts/install-system-test-deps.sh)")
    args = [a for f in files for a in ("-f", str(f))]
    result = subprocess.run([binary, *args, "config"], capture_output=True, text=True,
                            check=True, env={"PATH": "/usr/bin:/bin", **(env or {})})
    loaded: Config = yaml.safe_load(result.stdout)
    return loaded


@pytest.fixture(scope="module")
def config() -> Config:
    return compose_config(COMPOSE_FILE)


def test_every_service_is_there(config: Config) -> None:
    assert set(config["services"]) == SERVICES


def test_ports_are_published_on_loopback_only(
        config: Config) -> None:
    for name, service in config["services"].items():
        for port in service.get("ports", []):  # type: ignore[attr-defined]
            host_ip = port["host_ip"] if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)


def test_orchestrator_drives_the_engine_on_the_stack_network(
        config: Config) -> None:
    orchestrator = config["services"]["orchestrator"]
    volumes = [str(v.get("target") if isinstance(v, dict) else v)
               for v in orchestrator["volumes"]]  # type: ignore[union-attr]
    assert any("/var/run/docker.sock" in v for v in volumes)
    env = orchestrator["environment"]
    assert env["TIERSERVE_DOCKER_NETWORK"] == config["networks"]["default"]["name"]  # type: ignore[index]


def test_shipped_policy_is_valid() -> None:
    policy = load_policy(REPO / "compose" / "policy" / "policy.yaml").policy
    assert policy.store.startswith("s3://tierserve-models/")
    # The hot containers get the store's settings from the orchestrator (compose/minio.env).
    assert not any(k.startswith("AWS_") for k in policy.hot.container.env)


def _env_file(name: str) -> dict[str, str]:
    lines = (REPO / "compose" / name).read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_each_credential_is_written_once(config: Config) -> None:
    store, db = _env_file("minio.env"), _env_file("postgres.env")
    secrets = [store["AWS_SECRET_ACCESS_KEY"], db["PGPASSWORD"]]
    for path in [COMPOSE_FILE, REPO / "compose" / "policy" / "policy.yaml",
                 *sorted((REPO / "compose").glob("*.env"))]:
        text = path.read_text()
        assert sum(text.count(secret) for secret in secrets) == (
            1 if path.suffix == ".env" else 0), path
    # ...and every service that needs them reads them from there.
    for name in ("pool", "orchestrator", "minio", "minio-init"):
        env = config["services"][name]["environment"]
        assert env["AWS_SECRET_ACCESS_KEY"] == store["AWS_SECRET_ACCESS_KEY"], name
    for name in ("router", "orchestrator", "postgres"):
        assert config["services"][name]["environment"]["PGPASSWORD"] == db["PGPASSWORD"], name
    # MinIO and PostgreSQL make their users from those same variables.
    assert "MINIO_ROOT_PASSWORD=\"$$AWS_SECRET_ACCESS_KEY\"" in config["services"]["minio"][
        "command"][0]
    assert "POSTGRES_PASSWORD=\"$$PGPASSWORD\"" in config["services"]["postgres"]["command"][0]


def test_router_and_orchestrator_share_postgresql(config: Config) -> None:
    from sqlalchemy.engine import make_url

    for name in ("router", "orchestrator"):
        service = config["services"][name]
        url = make_url(service["environment"]["TIERSERVE_DB_URL"])
        assert (url.drivername, url.host, url.database) == ("postgresql+psycopg", "postgres",
                                                            "tierserve")
        assert url.password is None  # libpq reads PGPASSWORD
        url.get_dialect()  # the driver the image installs (the `postgres` extra) loads
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert "postgres" in config["volumes"]


def test_images_run_unprivileged_and_the_orchestrator_joins_the_socket_group(
        config: Config) -> None:
    dockerfile = (REPO / "compose" / "Dockerfile").read_text()
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert "10001" in dockerfile
    gid = compose_config(COMPOSE_FILE, env={"DOCKER_GID": "4242"})[
        "services"]["orchestrator"]["group_add"]
    assert [str(g) for g in gid] == ["4242"]
    assert [str(g) for g in config["services"]["orchestrator"]["group_add"]] == ["999"]


def test_the_test_override_validates_and_keeps_the_credentials_in_one_place() -> None:
    merged = compose_config(COMPOSE_FILE, TEST_OVERRIDE,
                            env={"TIERSERVE_IMAGE": "tierserve:test",
                                 "TIERSERVE_DB_URL": "sqlite:////data/db/tierserve.db"})
    assert set(merged["services"]) == SERVICES
    assert merged["services"]["minio"]["entrypoint"] == ["python", "-m", "moto.server"]
    env = merged["services"]["minio-init"]["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == _env_file("minio.env")["AWS_ACCESS_KEY_ID"]
    for name in ("router", "orchestrator"):
        service = merged["services"][name]
        assert service["environment"]["TIERSERVE_DB_URL"].startswith("sqlite:")
        assert any(str(v).startswith("db:/data/db") for v in service["volumes"])


def test_hot_containers_outweigh_the_cold_pool(
        config: Config) -> None:
    policy = load_policy(REPO / "compose" / "policy" / "policy.yaml").policy
    pool = config["services"]["pool"]
    assert int(pool["cpu_shares"]) < policy.hot.container.cpu_shares  # type: ignore[call-overload]
    assert "cpu_shares" not in config["services"]["router"]  # Docker's default, 1024
