"""A random workload over 50 models with small bounds: never exceeded, every answer right.

The bounds are checked continuously from outside the pool's own bookkeeping
too: the model server's count of loaded versions and the cache folder itself.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from pools.cold.disk import folder_size
from tests.cold.conftest import Pool, expected, upload_many

N_MODELS = 50
REQUESTS = 200
CONCURRENCY = 6
BOUNDS = {"memory_models": 4, "memory_bytes": 150_000, "disk_models": 8, "disk_bytes": 320_000}
XS = [0.5, 1.5]


def pad_of(i: int) -> int:
    return (i % 3) * 20_000  # three sizes, so the byte bounds bite too


def cache_dir_usage(cache_dir: Path) -> tuple[int, int]:
    count = size = 0
    for model_dir in list(cache_dir.iterdir()):
        try:
            versions = [p for p in model_dir.iterdir() if p.name.isdigit()]
        except (FileNotFoundError, NotADirectoryError):
            continue  # a model folder deleted while we look
        for version_dir in versions:
            count += 1
            size += folder_size(version_dir)
    return count, size


def server_loaded(rest: str) -> int:
    text = httpx.get(f"{rest}/monitoring/prometheus/metrics", timeout=10).text
    match = re.search(r"^tierserve_model_server_loaded_versions (\S+)$", text, re.M)
    assert match, "model server exposes no loaded_versions gauge"
    return int(float(match.group(1)))


def test_bounds_hold_under_a_random_workload(pool_factory: Callable[..., Pool], s3: Any,
                                             module_bucket: str) -> None:
    upload_many(s3, module_bucket,
                {f"r{i}": (float(i + 1), pad_of(i)) for i in range(N_MODELS)})
    pool = pool_factory(**BOUNDS, max_parallel_loads=3)
    rests = [server["rest"] for server in pool.listing()["model_servers"]]
    violations: list[str] = []
    checks = 0
    stop = threading.Event()

    def check_continuously() -> None:
        nonlocal checks
        while not stop.is_set():
            usage = pool.listing()["usage"]
            if not (usage["memory_models"] <= BOUNDS["memory_models"]
                    and usage["memory_bytes"] <= BOUNDS["memory_bytes"]
                    and usage["disk_models"] <= BOUNDS["disk_models"]
                    and usage["disk_bytes"] <= BOUNDS["disk_bytes"]):
                violations.append(f"pool accounting {usage}")
            if (loaded := sum(map(server_loaded, rests))) > BOUNDS["memory_models"]:
                violations.append(f"model servers have {loaded} versions loaded")
            count, size = cache_dir_usage(pool.cache_dir)
            if count > BOUNDS["disk_models"] or size > BOUNDS["disk_bytes"]:
                violations.append(f"cache folder holds {count} versions, {size} bytes")
            checks += 1
            stop.wait(0.05)

    async def workload() -> list[tuple[int, int, Any]]:
        rng = random.Random(7)
        # Skewed like real traffic (Zipf-like), so there are hits as well as misses.
        picks = rng.choices(range(N_MODELS), weights=[1 / (i + 1) for i in range(N_MODELS)],
                            k=REQUESTS)
        gate = asyncio.Semaphore(CONCURRENCY)

        async with httpx.AsyncClient(base_url=pool.url, timeout=120) as client:
            async def one(i: int) -> tuple[int, int, Any]:
                async with gate:
                    r = await client.post(f"/v1/models/r{i}:predict", json={"instances": XS})
                    return i, r.status_code, r.json()

            return await asyncio.gather(*(one(i) for i in picks))

    checker = threading.Thread(target=check_continuously)
    checker.start()
    try:
        results = asyncio.run(workload())
    finally:
        stop.set()
        checker.join(30)

    assert violations == []
    assert checks > 10
    wrong = [(i, code, body) for i, code, body in results
             if code != 200 or body != {"predictions": expected(float(i + 1), XS)}]
    assert wrong == []
    totals = pool.listing()["totals"]
    assert totals["evictions"]["memory"] > 0 and totals["evictions"]["disk"] > 0
    assert totals["hits"] + totals["misses"] == REQUESTS
