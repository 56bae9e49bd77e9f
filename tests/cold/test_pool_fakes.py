"""ColdPool with a fake store and a fake model server: the miss path's rules, fast."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from base.errors import Internal, NotFound, Unavailable
from pools.cold.config import PoolConfig
from pools.cold.modelserver_client import ABSENT, ModelList, VersionStatus
from pools.cold.pool import ColdPool


class FakeStore:
    uri = "fake://store"

    def __init__(self, models: dict[str, list[int]]) -> None:
        self.models = models
        self.downloads: list[tuple[str, int]] = []
        self.reachable = True
        self.gate = threading.Event()
        self.gate.set()

    def list_versions(self, model: str) -> list[int]:
        if not self.reachable:
            raise Unavailable("store unreachable")
        if model not in self.models:
            raise NotFound(f"{model} not in store")
        return sorted(self.models[model])

    def version_size(self, model: str, version: int) -> int:
        return 100

    def download(self, model: str, version: int, dest_dir: Path) -> Path:
        self.gate.wait(10)
        self.downloads.append((model, version))
        final = dest_dir / str(version)
        final.mkdir(parents=True, exist_ok=True)
        (final / "saved_model.pb").write_bytes(b"x" * 100)
        return final


class FakeServer:
    """Loads whatever the list names, at once; remembers the most it ever held. Like TF
    Serving, a reload in which a model failed to load answers an error."""

    address = "fake:0"

    def __init__(self) -> None:
        self.loaded: set[tuple[str, int]] = set()
        self.failing: set[tuple[str, int]] = set()
        self.calls = 0
        self.most_loaded = 0
        self.delay = 0.001  # a slow load: seconds each reload takes
        self.gate = asyncio.Event()  # a load held back: reloads wait while it is clear
        self.gate.set()

    async def reload(self, models: ModelList) -> None:
        self.calls += 1
        await asyncio.sleep(self.delay)
        await self.gate.wait()
        wanted = {(m, v) for m, (_, vs) in models.items() for v in vs}
        self.loaded = {k for k in wanted if k not in self.failing}
        self.most_loaded = max(self.most_loaded, len(self.loaded))
        if wanted & self.failing:
            raise Internal("some models did not become available")

    async def status(self, model: str, version: int) -> VersionStatus:
        if (model, version) in self.failing:
            return VersionStatus("END", "INVALID_ARGUMENT", "bad SavedModel")
        return VersionStatus("AVAILABLE") if (model, version) in self.loaded else ABSENT

    async def wait_for(self, model: str, version: int, done: object, limit_s: float
                       ) -> VersionStatus:
        return await self.status(model, version)

    async def close(self) -> None:
        pass


async def make_pool(tmp_path: Path, store: FakeStore, server: FakeServer,
                    **settings: object) -> ColdPool:
    config = PoolConfig(store_uri="fake://store", cache_dir=tmp_path / "cache",
                        eviction_policy="lru", **settings)  # type: ignore[arg-type]
    pool = ColdPool(config, store, server)  # type: ignore[arg-type]
    await pool.start()
    return pool


async def test_hundred_waiters_one_download_one_load(tmp_path: Path) -> None:
    store, server = FakeStore({"m": [1, 2]}), FakeServer()
    pool = await make_pool(tmp_path, store, server)
    store.gate.clear()
    leases = asyncio.gather(*(pool.acquire("m", None) for _ in range(100)))
    await asyncio.sleep(0.05)
    store.gate.set()
    got = await leases
    assert {lease.key for lease in got} == {("m", 2)}
    assert store.downloads == [("m", 2)]
    entry = pool.cache.entry(("m", 2))
    assert (entry.loads, entry.in_flight) == (1, 100)
    for lease in got:
        pool.release(lease)
    await pool.stop()


async def test_full_of_running_requests_waits_then_evicts_the_idle_one(tmp_path: Path) -> None:
    store, server = FakeStore({n: [1] for n in "abc"}), FakeServer()
    # load_wait is what c waits in vain; a's and b's loads must fit in it on a busy machine.
    pool = await make_pool(tmp_path, store, server, memory_models=2, load_wait_s=2.0)
    a = await pool.acquire("a", None)
    b = await pool.acquire("b", None)
    with pytest.raises(Unavailable) as waited:
        await pool.acquire("c", None)  # both slots under a running request
    assert waited.value.retry_after is not None
    assert pool.loader.flights.running(("c", 1))  # the load goes on
    pool.release(b)
    c = await pool.acquire("c", None)
    assert server.loaded == {("a", 1), ("c", 1)}
    assert server.most_loaded == 2
    pool.release(a)
    pool.release(c)
    await pool.stop()


async def test_failed_load_is_remembered_then_retried(tmp_path: Path) -> None:
    store, server = FakeStore({"bad": [1]}), FakeServer()
    server.failing.add(("bad", 1))
    pool = await make_pool(tmp_path, store, server, failure_ttl_s=0.2)
    with pytest.raises(Internal, match="bad SavedModel"):
        await pool.acquire("bad", None)
    with pytest.raises(Internal, match="bad SavedModel"):
        await pool.acquire("bad", None)
    assert len(store.downloads) == 1  # answered from memory, not tried again
    assert not (tmp_path / "cache" / "bad" / "1").exists()  # suspect files dropped
    server.failing.clear()
    await asyncio.sleep(0.25)
    pool.release(await pool.acquire("bad", None))
    assert len(store.downloads) == 2
    await pool.stop()


async def test_unreachable_store_fails_misses_only(tmp_path: Path) -> None:
    store, server = FakeStore({"up": [1], "cold": [1]}), FakeServer()
    pool = await make_pool(tmp_path, store, server)
    pool.release(await pool.acquire("up", None))
    store.reachable = False
    pool.catalog.ttl = 0.0  # every miss asks the store
    lease = await pool.acquire("up", None)
    assert lease.hit
    pool.release(lease)
    with pytest.raises(Unavailable):
        await pool.acquire("cold", None)
    with pytest.raises(NotFound):
        store.reachable = True
        await pool.acquire("never-there", None)
    await pool.stop()


async def test_restart_rebuilds_the_index_and_drops_leftovers(tmp_path: Path) -> None:
    store, server = FakeStore({"m": [3]}), FakeServer()
    pool = await make_pool(tmp_path, store, server)
    pool.release(await pool.acquire("m", None))
    await pool.stop()
    leftover = tmp_path / "cache" / "m" / ".tmp-3-abc"
    leftover.mkdir()
    (leftover / "half").write_text("partial")
    again = await make_pool(tmp_path, store, FakeServer())
    assert not leftover.exists()
    again.release(await again.acquire("m", None))
    assert store.downloads == [("m", 3)]  # once, before the restart
    await again.stop()


async def test_a_miss_that_evicts_costs_one_reload_and_one_listing(tmp_path: Path) -> None:
    store, server = FakeStore({n: [1] for n in "abcd"}), FakeServer()
    pool = await make_pool(tmp_path, store, server, memory_models=2)
    for name in "ab":
        pool.release(await pool.acquire(name, None))
    calls, listings = server.calls, pool.catalog.listings
    pool.release(await pool.acquire("c", None))  # evicts "a" in the same reload
    assert (server.calls - calls, pool.catalog.listings - listings) == (1, 1)
    assert server.loaded == {("b", 1), ("c", 1)} and server.most_loaded == 2
    for _ in range(3):
        lease = await pool.acquire("c", None)  # hits: no listing, no reload
        assert lease.hit
        pool.release(lease)
    assert (server.calls - calls, pool.catalog.listings - listings) == (1, 1)
    await pool.stop()


async def test_two_model_servers_each_get_their_own_list(tmp_path: Path) -> None:
    store, servers = FakeStore({n: [1] for n in "abcd"}), [FakeServer(), FakeServer()]
    servers[1].address = "fake:1"
    config = PoolConfig(store_uri="fake://store", cache_dir=tmp_path / "cache",
                        eviction_policy="lru", memory_models=2)
    pool = ColdPool(config, store, servers)  # type: ignore[arg-type]
    await pool.start()
    a = await pool.acquire("a", None)
    b = await pool.acquire("b", None)
    assert {a.server, b.server} == {0, 1}  # spread: the emptier server loads
    assert servers[a.server].loaded == {("a", 1)} and servers[b.server].loaded == {("b", 1)}
    pool.release(a)
    pool.release(b)
    pool.release(await pool.acquire("a", None))  # "b" is now the least recently used
    calls = [s.calls for s in servers]
    c = await pool.acquire("c", None)  # evicts "b": with hits balanced, on the victim's server
    assert c.server == b.server and servers[b.server].loaded == {("c", 1)}
    assert [s.calls for s in servers] == [n + (i == b.server) for i, n in enumerate(calls)]
    pool.release(c)
    for _ in range(20):  # "c"'s server gets busy with hits
        pool.release(await pool.acquire("c", None))
    pool.release(await pool.acquire("a", None))  # "c" is now the least recently used
    d = await pool.acquire("d", None)  # evicts "c", but loads away from the busy server
    assert d.server == a.server
    assert servers[a.server].loaded == {("a", 1), ("d", 1)} and servers[c.server].loaded == set()
    pool.release(d)
    await pool.stop()


async def test_a_victim_on_another_server_leaves_before_the_load_lands(tmp_path: Path) -> None:
    """Across servers the bound holds at every instant, even when the victim's server is
    the slow one: its unload is confirmed before the other server's reload starts."""
    store, servers = FakeStore({n: [1] for n in "abc"}), [FakeServer(), FakeServer()]
    servers[1].address = "fake:1"
    most_in_memory = 0

    def track(server: FakeServer) -> None:
        original = server.reload

        async def reload(models: ModelList) -> None:
            nonlocal most_in_memory
            await original(models)
            most_in_memory = max(most_in_memory, sum(len(s.loaded) for s in servers))

        server.reload = reload  # type: ignore[method-assign]

    for server in servers:
        track(server)
    config = PoolConfig(store_uri="fake://store", cache_dir=tmp_path / "cache",
                        eviction_policy="lru", memory_models=2)
    pool = ColdPool(config, store, servers)  # type: ignore[arg-type]
    await pool.start()
    a = await pool.acquire("a", None)
    b = await pool.acquire("b", None)
    pool.release(a)
    pool.release(b)
    for _ in range(20):  # "a"'s server gets busy with hits, so "c" loads away from it
        pool.release(await pool.acquire("a", None))
    pool.release(await pool.acquire("b", None))  # "a" is now the least recently used
    servers[a.server].delay = 0.2  # "a"'s unload is slow; "c" must not land before it ends
    c = await pool.acquire("c", None)  # evicts "a"
    assert c.server == b.server and servers[a.server].loaded == set()
    assert most_in_memory <= 2
    assert sum(len(s.loaded) for s in servers) == 2
    pool.release(c)
    await pool.stop()
