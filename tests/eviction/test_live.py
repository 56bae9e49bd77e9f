"""Live: a real `tierserve pool` (and its model server child) uses the configured policy.

Local toy-model store, memory_models=2, every model fits on disk. The same
hand-made trace tells the policies apart: a model asked for five times, then
three one-off models. TinyLFU keeps the popular model loaded, LRU unloads it.
A restart of the TinyLFU pool keeps its frequencies (`.eviction-state.json`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from base.procs import ServerProcess, free_port, tierserve_command
from testkit import stores as testing

pytestmark = pytest.mark.slow

MODELS = {name: float(i + 1) for i, name in enumerate(["hot", "a", "b", "c", "d", "e"])}


class LivePool:
    def __init__(self, store: Path, cache: Path, policy: str, log_dir: Path) -> None:
        self.cache = cache
        port = free_port()
        command = tierserve_command(
            "pool", "--store", str(store), "--cache-dir", str(cache), "--port", str(port),
            "--grpc-port", str(free_port()),
            "--memory-models", "2", "--disk-models", "10", "--eviction-policy", policy,
            "--store-poll", "3600",
        )  # fmt: skip
        self.proc = ServerProcess(
            command, f"http://127.0.0.1:{port}/healthz", log_path=log_dir / f"pool-{port}.log"
        )
        self.proc.wait_ready(timeout=180)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120.0)

    def request(self, *models: str) -> None:
        for model in models:
            response = self.http.post(f"/v1/models/{model}:predict", json={"instances": [2.0]})
            assert response.status_code == 200, response.text
            assert response.json() == {"predictions": [2.0 * MODELS[model]]}

    def loaded(self) -> set[str]:
        listing: dict[str, Any] = self.http.get("/admin/models").json()
        return {m["model"] for m in listing["models"] if m["loaded"]}

    def stop(self) -> None:
        self.http.close()
        self.proc.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eviction-store")
    return testing.make_local_store(root, {name: {1: a} for name, a in MODELS.items()})


@pytest.fixture
def start(log_dir: Path) -> Iterator[Any]:
    pools: list[LivePool] = []

    def _start(store: Path, cache: Path, policy: str) -> LivePool:
        pool = LivePool(store, cache, policy, log_dir)
        pools.append(pool)
        return pool

    yield _start
    for pool in pools:
        pool.stop()


def test_lru_unloads_the_popular_model_for_one_offs(
    start: Any, store: Path, tmp_path: Path
) -> None:
    pool = start(store, tmp_path / "cache", "lru")
    pool.request(*["hot"] * 5, "a", "b", "c")
    assert pool.loaded() == {"b", "c"}


def test_tinylfu_keeps_the_popular_model_and_remembers_it_across_a_restart(
    start: Any, store: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    pool = start(store, cache, "tinylfu")
    pool.request(*["hot"] * 5, "a", "b", "c")
    assert pool.loaded() == {"hot", "c"}
    pool.stop()

    saved = json.loads((cache / ".eviction-state.json").read_text())
    assert saved["policy"] == "tinylfu" and "sketch" in saved["memory"]

    # The new model server starts empty; the pool restores the frequencies. Fresh
    # counts would tie "hot" (one request) with "d" and evict "hot", the less recent.
    again = start(store, cache, "tinylfu")
    again.request("hot", "d", "e")
    assert again.loaded() == {"hot", "e"}
