"""/livez, /readyz and /healthz: the cached readiness check alone (fake checks), then a real
router process with a cold pool nobody listens on, and with its db in an outage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from base.procs import free_port
from router.readiness import Readiness
from testkit.postgres import outage
from tests.router.conftest import RouterProcess, start_fake_backend, start_router


class FakeCheck:
    def __init__(self, result: str | None = None, hang: bool = False) -> None:
        self.result, self.hang, self.calls = result, hang, 0

    async def __call__(self) -> str | None:
        self.calls += 1
        await asyncio.sleep(3600 if self.hang else 0.01)  # held open: probes pile up on it
        return self.result


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_probe_storm_costs_one_check_per_interval() -> None:
    cold, db, clock = FakeCheck(), FakeCheck(), Clock()
    readiness = Readiness({"cold pool": cold, "db": db}, cache_s=1.0, clock=clock)
    verdicts = await asyncio.gather(*(readiness.verdict() for _ in range(200)))
    assert all(v.ready for v in verdicts) and (cold.calls, db.calls) == (1, 1)
    clock.now += 0.5
    assert (await readiness.verdict()).ready and cold.calls == 1  # cached
    clock.now += 0.6
    cold.result = "http://10.1.2.3:8600: ConnectError: refused"
    verdict = await readiness.verdict()
    assert (verdict.ready, verdict.down, cold.calls, db.calls) == (False, ("cold pool",), 2, 2)
    assert verdict.error() == "not ready: cold pool unreachable"  # no address in the answer
    clock.now += 1.1
    cold.result = None
    assert (await readiness.verdict()).ready  # recovers at the next check


async def test_a_hanging_or_failing_check_is_down_not_a_hung_probe() -> None:
    async def broken() -> str | None:
        raise RuntimeError("bug")

    readiness = Readiness({"cold pool": FakeCheck(), "db": FakeCheck(hang=True),
                           "other": broken}, timeout_s=0.05)
    verdict = await readiness.verdict()
    assert verdict.down == ("db", "other")
    assert verdict.error() == "not ready: db unreachable, other unreachable"


@pytest.fixture
def cold_fake(log_dir: Path) -> Iterator[str]:
    proc, url = start_fake_backend(log_dir, 1.0, "cold")
    try:
        yield url
    finally:
        proc.stop()


def _until_status(router: RouterProcess, path: str, status: int) -> httpx.Response:
    """The answer once it has `status` (the verdict is cached about a second)."""
    deadline = time.monotonic() + 30
    while True:
        r = httpx.get(router.url + path, timeout=10)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


@pytest.mark.slow
def test_cold_pool_nobody_listens_on(tmp_path: Path, log_dir: Path) -> None:
    router = start_router(log_dir, tmp_path / "tierserve.db", f"http://127.0.0.1:{free_port()}")
    try:
        live = httpx.get(router.url + "/livez", timeout=10)
        assert (live.status_code, live.json()) == (200, {"status": "alive"})
        ready = httpx.get(router.url + "/readyz", timeout=10)
        assert (ready.status_code, ready.json()) == (
            503, {"error": "not ready: cold pool unreachable"})
        # /healthz keeps its old meaning (the process answers) for existing probes.
        assert httpx.get(router.url + "/healthz", timeout=10).status_code == 200
        # TF Serving's answer to a status call without a name, from the real process too.
        listing = httpx.get(router.url + "/v1/models", timeout=10)
        assert (listing.status_code, listing.json()) == (
            400, {"error": "Missing model name in request."})
    finally:
        router.proc.stop()


@pytest.mark.slow
def test_db_outage_makes_the_router_unready_until_it_ends(
        postgres_db: str, cold_fake: str, log_dir: Path) -> None:
    router = start_router(log_dir, postgres_db, cold_fake)
    try:
        ready = httpx.get(router.url + "/readyz", timeout=10)
        assert (ready.status_code, ready.json()) == (200, {"status": "ready"})
        with outage(postgres_db):
            ready = _until_status(router, "/readyz", 503)
            assert (ready.status_code, ready.json()) == (
                503, {"error": "not ready: db unreachable"})
            assert httpx.get(router.url + "/livez", timeout=10).status_code == 200
            # Still serving from the table it holds: unready is advice, not a refusal.
            r = httpx.post(router.url + "/v1/models/m:predict", json={"instances": [2.0]},
                           timeout=10)
            assert (r.status_code, r.json()["predictions"]) == (200, [2.0])
        assert _until_status(router, "/readyz", 200).status_code == 200
    finally:
        router.proc.stop()
