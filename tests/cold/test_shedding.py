"""Misses faster than loads: 503 + Retry-After at once, never after a wait; bounded queues.

Slow fake loads (a fake model server whose reloads wait on a gate), no timing asserts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from base.errors import Unavailable
from pools.cold.admission import Limits
from pools.cold.pool import ColdPool, Lease
from tests.cold.test_pool_fakes import FakeServer, FakeStore, make_pool


async def decided(pool: ColdPool, tasks: list[asyncio.Future[Lease]]) -> None:
    """Until every request has been shed (done) or waits for a load (store listings run in
    threads first, so this takes a few loop turns)."""
    for _ in range(2000):
        if sum(t.done() for t in tasks) + sum(pool.waiting.values()) >= len(tasks):
            return
        await asyncio.sleep(0.005)
    raise AssertionError("requests neither waiting nor answered")


def outcomes(results: list[Lease | BaseException]) -> tuple[list[Lease], list[Unavailable]]:
    served = [r for r in results if isinstance(r, Lease)]
    shed = [r for r in results if isinstance(r, Unavailable)]
    assert len(served) + len(shed) == len(results), results
    return served, shed


def metric(pool: ColdPool, line_start: str) -> float:
    text = generate_latest(pool.metrics.registry).decode()
    (line,) = [x for x in text.splitlines() if x.startswith(line_start)]
    return float(line.rsplit(" ", 1)[1])


async def test_misses_beyond_what_loads_can_serve_in_time_are_shed_at_once(
        tmp_path: Path) -> None:
    models = {f"m{i}": [1] for i in range(6)}
    store, server = FakeStore(models), FakeServer()
    pool = await make_pool(tmp_path, store, server, max_parallel_loads=1, memory_models=10,
                           load_wait_s=60.0)
    server.delay = 0.3  # one slow load, to measure
    pool.release(await pool.acquire("m0", None))
    measured = pool.loader.load_time.value
    assert measured is not None and measured >= 0.3
    # load_wait holds two loads in a row, not three: the third miss in the queue is shed.
    pool.config.load_wait_s = 2.5 * measured
    pool.limits = Limits(pool.config.load_wait_s, 1, 100, 100)
    server.delay, server.gate = 0.0, asyncio.Event()  # loads now wait for the gate
    tasks = [asyncio.ensure_future(pool.acquire(f"m{i}", None)) for i in range(1, 6)]
    await decided(pool, tasks)
    assert sum(t.done() for t in tasks) == 3  # shed at once, while two loads wait
    server.gate.set()
    served, shed = outcomes(list(await asyncio.gather(*tasks, return_exceptions=True)))
    assert len(served) == 2 and len(shed) == 3
    for error in shed:
        assert error.retry_after is not None and error.retry_after >= 1
        assert "cannot be loaded within" in error.message
    # A shed miss queues no load: only the admitted ones were downloaded.
    assert sorted(store.downloads) == sorted([("m0", 1), *(lease.key for lease in served)])
    assert metric(pool, 'tierserve_pool_shed_total{reason="too_slow"}') == 3
    assert metric(pool, "tierserve_pool_load_wait_timeouts_total") == 0  # none waited, then failed
    for lease in served:
        pool.release(lease)
    assert metric(pool, "tierserve_pool_load_busy_seconds_total") >= measured
    await pool.stop()


async def test_queue_bounds_per_model_and_in_total(tmp_path: Path) -> None:
    store, server = FakeStore({n: [1] for n in "abcdef"}), FakeServer()
    pool = await make_pool(tmp_path, store, server, max_queued_per_model=3, max_queued=5)
    server.gate.clear()
    crowd = [asyncio.ensure_future(pool.acquire("a", None)) for _ in range(5)]
    await decided(pool, crowd)
    assert metric(pool, "tierserve_pool_queued_requests") == 3
    others = [asyncio.ensure_future(pool.acquire(n, None)) for n in "bcde"]
    await decided(pool, crowd + others)
    assert metric(pool, "tierserve_pool_queued_requests") == 5
    assert metric(pool, "tierserve_pool_pending_loads") == 3  # a, and two of b-e
    server.gate.set()
    served_a, shed_a = outcomes(list(await asyncio.gather(*crowd, return_exceptions=True)))
    served_o, shed_o = outcomes(list(await asyncio.gather(*others, return_exceptions=True)))
    assert (len(served_a), len(shed_a), len(served_o), len(shed_o)) == (3, 2, 2, 2)
    assert pool.cache.entry(("a", 1)).loads == 1 and store.downloads.count(("a", 1)) == 1
    assert metric(pool, 'tierserve_pool_shed_total{reason="model_queue"}') == 2
    assert metric(pool, 'tierserve_pool_shed_total{reason="queue"}') == 2
    for lease in served_a + served_o:
        pool.release(lease)
    assert metric(pool, "tierserve_pool_queued_requests") == 0
    assert pool.listing()["totals"]["shed"] == 4
    await pool.stop()


async def test_a_request_that_joins_a_load_under_way_is_judged_by_that_load(
        tmp_path: Path) -> None:
    store, server = FakeStore({n: [1] for n in "abc"}), FakeServer()
    pool = await make_pool(tmp_path, store, server, max_parallel_loads=1, load_wait_s=60.0)
    server.delay = 0.3
    pool.release(await pool.acquire("a", None))
    measured = pool.loader.load_time.value
    assert measured is not None
    pool.config.load_wait_s = 1.5 * measured  # one load fits, two in a row do not
    pool.limits = Limits(pool.config.load_wait_s, 1, 100, 100)
    server.delay, server.gate = 0.0, asyncio.Event()
    first = asyncio.ensure_future(pool.acquire("b", None))
    await decided(pool, [first])
    second = asyncio.ensure_future(pool.acquire("c", None))  # behind b: shed
    joiner = asyncio.ensure_future(pool.acquire("b", None))  # b is first in line: admitted
    await decided(pool, [first, second, joiner])
    assert second.done() and not joiner.done()
    with pytest.raises(Unavailable):
        second.result()
    server.gate.set()
    for lease in await asyncio.gather(first, joiner):
        assert lease.key == ("b", 1)
        pool.release(lease)
    await pool.stop()
