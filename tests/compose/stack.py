"""Drive compose/docker-compose.yml with Debian's `docker-compose` for the tests.

The stack gets its own project name, network, orchestrator scope and host ports, so it
never collides with another run or a real deployment on the same engine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from base.procs import free_port
from testkit import dockerd

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "compose" / "docker-compose.yml"
TEST_OVERRIDE = Path(__file__).with_name("docker-compose.test.yml")
S3_USER, S3_SECRET = "tierserve", "tierserve-secret"
BUCKET = "tierserve-models"


def checkout_image_tag() -> str:
    """`tierserve:test-<8 hex>`, named after this checkout's folder."""
    return f"tierserve:test-{hashlib.sha1(str(REPO).encode()).hexdigest()[:8]}"


def docker_gid(socket: Path = Path("/var/run/docker.sock")) -> int:
    """The group that may use the engine's socket (the host's `docker` group)."""
    return socket.stat().st_gid if socket.exists() else 0


def compose_binary() -> str | None:
    return shutil.which("docker-compose")


def ensure_engine() -> str | None:
    """None when a Docker engine answers (starting one if needed, stopped at the run's end),
    else why not."""
    return dockerd.ensure_engine(timeout=300)


def build_image(tag: str) -> None:
    subprocess.run(["bash", str(REPO / "compose" / "build-images.sh")], check=True,
                   env={**os.environ, "TIERSERVE_IMAGE": tag}, timeout=1800,
                   capture_output=True, text=True)


PREFIX = "tstest"


def _docker_lines(*args: str) -> list[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True)
    return result.stdout.split() if result.returncode == 0 else []


def remove_stale_stacks() -> list[str]:
    """Remove what test runs that died left behind: stacks named after a pid no longer alive."""
    removed = []
    projects = set(_docker_lines("ps", "-a", "--format",
                                 '{{.Label "com.docker.compose.project"}}'))
    for project in sorted(p for p in projects if p.startswith(PREFIX)):
        pid = project.removeprefix(PREFIX)
        if pid.isdigit() and not _alive(int(pid)):
            containers = [
                *_docker_lines("ps", "-aq", "--filter", f"label=tierserve.scope={project}"),
                *_docker_lines("ps", "-aq", "--filter",
                               f"label=com.docker.compose.project={project}")]
            subprocess.run(["docker", "rm", "-f", "-v", *containers], capture_output=True)
            volumes = _docker_lines("volume", "ls", "-q", "--filter",
                                    f"label=com.docker.compose.project={project}")
            if volumes:
                subprocess.run(["docker", "volume", "rm", *volumes], capture_output=True)
            subprocess.run(["docker", "network", "rm", f"{project}-net"], capture_output=True)
            removed.append(project)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Stack:
    def __init__(self, name: str, image: str, policy_dir: Path, log_dir: Path) -> None:
        self.name = name
        self.scope = name
        self.network = f"{name}-net"
        self.log_dir = log_dir
        self.policy_file = policy_dir / "policy.yaml"
        self.prometheus: str | None = None  # the Prometheus image, when one could be made
        self.ports = {key: free_port() for key in ("router", "router_grpc", "pool", "s3",
                                                   "console", "orchestrator", "prometheus",
                                                   "grafana")}
        # Only the variables below reach the compose file: one left by another test
        # (TIERSERVE_DB_URL, say) would otherwise configure the containers.
        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith(("TIERSERVE_", "MINIO_", "AWS_", "COMPOSE_"))
                     and k not in ("PROMETHEUS_IMAGE", "GRAFANA_IMAGE")}
        self.env = {
            **inherited,
            "COMPOSE_PROJECT_NAME": name,
            "TIERSERVE_IMAGE": image,
            "TIERSERVE_NETWORK": self.network,
            "TIERSERVE_SCOPE": self.scope,
            "TIERSERVE_POLICY_DIR": str(policy_dir),
            "TIERSERVE_POOL_STORE_POLL": "2",
            "TIERSERVE_ROUTER_PORT": str(self.ports["router"]),
            "TIERSERVE_ROUTER_GRPC_PORT": str(self.ports["router_grpc"]),
            "TIERSERVE_POOL_PORT": str(self.ports["pool"]),
            "TIERSERVE_S3_PORT": str(self.ports["s3"]),
            "TIERSERVE_MINIO_CONSOLE_PORT": str(self.ports["console"]),
            "TIERSERVE_ORCHESTRATOR_PORT": str(self.ports["orchestrator"]),
            "TIERSERVE_PROMETHEUS_PORT": str(self.ports["prometheus"]),
            "TIERSERVE_GRAFANA_PORT": str(self.ports["grafana"]),
            # No PostgreSQL image here (see docker-compose.test.yml): a shared SQLite file.
            "TIERSERVE_DB_URL": "sqlite:////data/db/tierserve.db",
            # The orchestrator runs unprivileged, in the Docker socket's group.
            "DOCKER_GID": str(docker_gid()),
        }

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def compose(self, *args: str, timeout: float = 600, check: bool = True,
                extra_files: Sequence[Path] = ()) -> subprocess.CompletedProcess[str]:
        files = [COMPOSE_FILE, TEST_OVERRIDE, *extra_files]
        cmd = [compose_binary() or "docker-compose"]
        for path in files:
            cmd += ["-f", str(path)]
        return subprocess.run([*cmd, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=check)

    def up(self, *services: str, extra_files: Sequence[Path] = ()) -> None:
        result = self.compose("up", "-d", *services, check=False, extra_files=extra_files)
        if result.returncode != 0:
            raise RuntimeError(f"docker-compose up {' '.join(services)} failed:\n"
                               f"{result.stderr[-3000:]}\n{self.logs()[-6000:]}")

    def wait_exit(self, service: str, timeout: float = 120) -> None:
        """Wait until a one-shot service (an init job) has exited 0."""
        container = self.compose("ps", "-q", service).stdout.strip()
        code = subprocess.run(["docker", "wait", container], capture_output=True, text=True,
                              timeout=timeout, check=True).stdout.strip()
        if code != "0":
            raise RuntimeError(f"{service} exited {code}:\n{self.logs()[-4000:]}")

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail=200", check=False).stdout

    def hot_containers(self) -> list[str]:
        out = subprocess.run(["docker", "ps", "-aq", "--filter",
                              f"label=tierserve.scope={self.scope}"],
                             capture_output=True, text=True, check=True).stdout
        return out.split()

    def down(self) -> None:
        """Save logs, stop the orchestrator, remove its hot containers, then the whole stack."""
        (self.log_dir / f"compose-{self.name}.log").write_text(self.logs())
        self.compose("stop", "orchestrator", check=False)
        containers = self.hot_containers()
        if containers:
            subprocess.run(["docker", "rm", "-f", *containers], capture_output=True)
        self.compose("down", "-v", "--remove-orphans", "-t", "5", check=False)
        subprocess.run(["docker", "network", "rm", self.network], capture_output=True)
