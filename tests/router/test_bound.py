"""The router's in-flight bound: past `max_in_flight` requests, 503 with Retry-After at once
(never a hang), counted in /metrics; the requests within the bound are served."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from db.engine import make_engine
from router.app import create_app
from router.config import RouterConfig
from tests.router.conftest import start_fake_backend


@pytest.fixture(scope="module")
def slow_backend(log_dir: Path) -> Iterator[str]:
    # Slow enough that the first requests are still in flight when the others arrive.
    proc, url = start_fake_backend(log_dir, 1.0, "slow", delay=3.0)
    try:
        yield url
    finally:
        proc.stop()


def metric(text: str, name: str) -> float:
    [line] = [x for x in text.splitlines() if x.startswith(name + " ")]
    return float(line.split()[1])


async def test_past_the_bound_answers_503_with_retry_after(slow_backend: str,
                                                          tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'router.db'}")
    config = RouterConfig(cold_url=slow_backend, max_in_flight=2, flush_interval=60.0,
                          grpc_port=0)
    app = create_app(config, engine)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=transport, base_url="http://router", timeout=60) as client:
        answers = await asyncio.gather(*(
            client.post("/v1/models/m:predict", json={"instances": [float(i)]})
            for i in range(5)))
        served = [r for r in answers if r.status_code == 200]
        shed = [r for r in answers if r.status_code == 503]
        assert (len(served), len(shed)) == (2, 3)
        for r in shed:
            assert r.headers["retry-after"] == "1"
            assert set(r.json()) == {"error"} and "overloaded" in r.json()["error"]
        text = (await client.get("/metrics")).text
        assert metric(text, "tierserve_router_shed_requests_total") == 3
        assert metric(text, "tierserve_router_in_flight") == 0
        # The bound frees as requests finish: the next one is served.
        r = await client.post("/v1/models/m:predict", json={"instances": [2.0]})
        assert (r.status_code, r.json()["predictions"]) == (200, [2.0])
    engine.dispose()


def test_the_bound_is_configurable_and_sane_by_default() -> None:
    assert RouterConfig.load(environ={}).max_in_flight >= 64
    config = RouterConfig.load(environ={"TIERSERVE_MAX_IN_FLIGHT": "7"})
    assert config.max_in_flight == 7
