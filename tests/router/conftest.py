"""Real processes for the router's tests: model servers (hot and cold addresses) on toy
SavedModels, the router itself, and small fake backends for fault cases."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from base.procs import ServerProcess, free_port, tierserve_command
from db import queries
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


@pytest.fixture(scope="module")
def router_without_cold(tmp_path_factory: pytest.TempPathFactory, log_dir: Path
                        ) -> Iterator[RouterProcess]:
    """A router whose cold pool address has nothing listening: cold requests get 503."""
    db_path = tmp_path_factory.mktemp("router-nocold") / "tierserve.db"
    router = start_router(log_dir, db_path, f"http://127.0.0.1:{free_port()}")
    try:
        yield router
    finally:
        router.proc.stop()


def send_mixed_statuses(router: RouterProcess, hot_server: str
                        ) -> dict[str, tuple[int, int, int, int]]:
    """Real answers through `router_without_cold`: 200 from a hot model server, 404 from it
    for a model it does not hold, 503 from the router when the cold pool cannot be reached.
    Pins `hotm` (admin and policy) and `coldm` (policy). Returns the rows expected per model:
    (count, errors, errors_4xx, errors_5xx)."""
    with router.admin() as admin:
        for model in ("hotm", "ghost"):
            admin.put(f"/admin/placements/{model}", json={"pool": "hot", "endpoint": hot_server}
                      ).raise_for_status()
        admin.post("/admin/models/hotm/pin").raise_for_status()
    engine = queries.make_engine(router.db_url)
    queries.set_policy_pins(engine, ["hotm", "coldm"])
    engine.dispose()
    with httpx.Client(base_url=router.url, timeout=30) as client:
        for model, status, times in (("hotm", 200, 3), ("ghost", 404, 2), ("coldm", 503, 1)):
            for _ in range(times):
                answer = client.post(f"/v1/models/{model}:predict", json={"instances": [1.0]})
                assert answer.status_code == status
                assert status == 200 or "error" in answer.json()
    return {"hotm": (3, 0, 0, 0), "ghost": (2, 2, 2, 0), "coldm": (1, 1, 0, 1)}


def error_rows(engine: Engine) -> dict[str, tuple[int, ...]]:
    """Per model, summed over the 5 s rows: (count, errors, errors_4xx, errors_5xx)."""
    with engine.connect() as conn:
        return {r[0]: tuple(int(v) for v in r[1:]) for r in conn.execute(text(
            "SELECT model, sum(count), sum(errors), sum(errors_4xx), sum(errors_5xx) "
            "FROM request_counts_recent GROUP BY model"))}
