"""Real processes for the router's tests: model servers (hot and cold addresses) on toy
SavedModels, the router itself, and small fake backends for fault cases."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from base.procs import ServerProcess, free_port, tierserve_command
from pools.model_server.command import model_server_args
from tierserve import toy_models

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "test-admin-token"
# model -> {version: a}; every model answers y = a * x.
STORE_MODELS: dict[str, dict[int, float]] = {
    "hotm": {1: 2.0},
    "coldm": {1: 3.0, 2: 5.0},
    "arm-a": {1: 10.0},
    "arm-b": {1: 20.0},
    "shadowm": {1: 30.0},
}


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory, toy_template: Path) -> Path:
    root = tmp_path_factory.mktemp("router-store")
    for name, versions in STORE_MODELS.items():
        toy_models.write_model(root, name, versions)
    return root


def start_model_server(log_dir: Path, tag: str, *, model: str | None = None,
                       base_path: Path | None = None,
                       config_file: Path | None = None) -> tuple[ServerProcess, str]:
    rest, grpc = free_port(), free_port()
    if config_file is not None:
        args = model_server_args(port=grpc, rest_api_port=rest,
                                 extra=[f"--model_config_file={config_file}"])
    else:
        args = model_server_args(port=grpc, rest_api_port=rest, model_name=str(model),
                                 model_base_path=str(base_path))
    first = model or next(iter(STORE_MODELS))
    proc = ServerProcess(tierserve_command("model-server", *args),
                         ready_url=f"http://127.0.0.1:{rest}/v1/models/{first}",
                         log_path=log_dir / f"model-server-{tag}-{rest}.log", cwd=str(REPO))
    proc.wait_ready(timeout=120)
    return proc, f"http://127.0.0.1:{rest}"


def model_config_text(store: Path, names: list[str]) -> str:
    entries = "".join(
        f'  config {{ name: "{n}" base_path: "{store / n}" model_platform: "tensorflow" }}\n'
        for n in names)
    return f"model_config_list {{\n{entries}}}\n"


@pytest.fixture(scope="session")
def cold_server(model_store: Path, log_dir: Path) -> Iterator[str]:
    """One model server with every model: the router's cold pool address."""
    config = model_store.parent / "cold-models.config"
    config.write_text(model_config_text(model_store, list(STORE_MODELS)))
    proc, url = start_model_server(log_dir, "cold", config_file=config)
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def hot_server_proc(model_store: Path, log_dir: Path) -> Iterator[tuple[ServerProcess, str]]:
    """A dedicated model server for `hotm` (tests may kill it)."""
    proc, url = start_model_server(log_dir, "hot", model="hotm", base_path=model_store / "hotm")
    try:
        yield proc, url
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def hot_server(hot_server_proc: tuple[ServerProcess, str]) -> str:
    """`hotm`'s hot endpoint URL."""
    return hot_server_proc[1]


class RouterProcess:
    def __init__(self, proc: ServerProcess, url: str, db_url: str, grpc: str = "") -> None:
        self.proc, self.url, self.db_url, self.grpc = proc, url, db_url, grpc

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


def start_router(log_dir: Path, db_path: Path | str, cold_url: str,
                 *extra: str) -> RouterProcess:
    """`db_path`: a SQLite file, or any SQLAlchemy URL."""
    port, grpc_port = free_port(), free_port()
    db_url = db_path if isinstance(db_path, str) and "://" in db_path else f"sqlite:///{db_path}"
    proc = ServerProcess(
        tierserve_command("router", "--db-url", db_url, "--cold-url", cold_url,
                          "--port", str(port), "--grpc-port", str(grpc_port),
                          "--flush-interval", "0.2",
                          "--poll-interval", "0.2", *extra),
        ready_url=f"http://127.0.0.1:{port}/healthz",
        log_path=log_dir / f"router-{port}.log", cwd=str(REPO),
        env={"TIERSERVE_ADMIN_TOKEN": ADMIN_TOKEN})
    proc.wait_ready(timeout=60)
    return RouterProcess(proc, f"http://127.0.0.1:{port}", db_url, f"127.0.0.1:{grpc_port}")


@pytest.fixture(scope="module")
def router_proc(tmp_path_factory: pytest.TempPathFactory, log_dir: Path,
                cold_server: str) -> Iterator[RouterProcess]:
    db_path = tmp_path_factory.mktemp("router-db") / "tierserve.db"
    router = start_router(log_dir, db_path, cold_server)
    try:
        yield router
    finally:
        router.proc.stop()


def start_fake_backend(log_dir: Path, a: float, name: str,
                       delay: float = 0.0) -> tuple[ServerProcess, str]:
    port = free_port()
    proc = ServerProcess(
        [sys.executable, "-m", "tests.router.fake_backend", "--port", str(port), "--a", str(a),
         "--name", name, "--delay", str(delay)],
        ready_url=f"http://127.0.0.1:{port}/v1/models/x", cwd=str(REPO),
        log_path=log_dir / f"fake-{name}-{port}.log")
    proc.wait_ready(timeout=30)
    return proc, f"http://127.0.0.1:{port}"
