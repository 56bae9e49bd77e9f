"""Requests for names no backend has (404) leave no per-name state in the router: no db count
rows, no metric label, no dashboard row; one shared series counts them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from db import queries
from db.queries import Engine, make_engine
from db.schema import request_counts, request_counts_recent
from router.metrics import NOT_FOUND
from tests.router.conftest import start_fake_backend
from tests.router.test_app import predict, running


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'router.db'}")


@pytest.fixture(scope="module")
def cold(log_dir: Path) -> Iterator[str]:
    proc, url = start_fake_backend(log_dir, 3.0, "cold")
    yield url
    proc.stop()


async def test_500_bogus_names_leave_no_per_name_state(cold: str, engine: Engine) -> None:
    async with running(engine, cold_url=cold, metrics_top_models=20) as (client, state):
        for i in range(500):
            r = await client.post(f"/v1/models/bogus-{i}:predict", json=predict([1.0]))
            assert r.status_code == 404 and set(r.json()) == {"error"}
        real = await client.post("/v1/models/real:predict", json=predict([1.0]))
        assert real.status_code == 200
        await state.counter.flush()
        state.metrics.refresh_labels()
        metrics = (await client.get("/metrics")).text
        overview = await client.get("/ui/api/overview", params={"page_size": 500})
        assert overview.status_code == 200
    with engine.connect() as conn:
        models = {row[0] for table in (request_counts, request_counts_recent)
                  for row in conn.execute(sa.select(table.c.model).distinct())}
    assert models == {"real"}
    assert "bogus" not in metrics
    assert f'model="{NOT_FOUND}",pool="cold"' in metrics
    assert 'model="real"' in metrics
    assert not any(name.startswith("bogus") for name in state.metrics._traffic)
    stats = queries.model_stats(engine, 300, time.time(), 1000)
    assert [s.model for s in stats] == ["real"]
    rows = overview.json()["models"]
    assert [m["model"] for m in rows] == ["real"]
