"""The cold pool's corners with a fake store and model server: unknown names, a store that
is away, cache files deleted under the pool, version labels, fast."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from base.errors import Internal, InvalidArgument, NotFound, Unavailable
from pools.cold.cache import Disk, Mem
from pools.cold.labels import Labels, read_labels
from pools.cold.modelserver_client import ModelList, VersionStatus
from tests.cold.test_pool_fakes import FakeServer, FakeStore, make_pool


class DiskServer(FakeServer):
    """Loads only what is on disk under its base path, as a model server does."""

    def __init__(self) -> None:
        super().__init__()
        self.missing: set[tuple[str, int]] = set()
        self.broken: set[tuple[str, int]] = set()
        self.vanish: dict[str, int] = {}  # model -> reloads at which its files are deleted

    async def reload(self, models: ModelList) -> None:
        for model, (base, _) in models.items():
            if self.vanish.get(model, 0) > 0:
                self.vanish[model] -= 1
                shutil.rmtree(base, ignore_errors=True)
        self.missing = {(m, v) for m, (base, vs) in models.items() for v in vs
                        if not (Path(base) / str(v) / "saved_model.pb").is_file()}
        self.failing = self.missing | self.broken
        await super().reload(models)

    async def status(self, model: str, version: int) -> VersionStatus:
        if (model, version) in self.missing:
            return VersionStatus("END", "NOT_FOUND", "Could not find base path")
        return await super().status(model, version)


async def test_bogus_names_cost_one_listing_each_and_bounded_memory(tmp_path: Path) -> None:
    store, server = FakeStore({"real": [1]}), FakeServer()
    pool = await make_pool(tmp_path, store, server)
    pool.catalog.negative_max = 100
    for _ in range(2):
        for i in range(500):
            with pytest.raises(NotFound):
                await pool.acquire(f"bogus-{i % 50}", None)
    assert pool.catalog.listings == 50  # each name once; repeats answered from memory
    for i in range(500):
        with pytest.raises(NotFound):
            await pool.acquire(f"other-{i}", None)
    assert pool.catalog.missing_names() == 100  # bounded: the oldest names were dropped
    assert not any(e.model.startswith(("bogus", "other")) for e in pool.cache.entries.values())
    listings = pool.catalog.listings
    pool.release(await pool.acquire("real", None))
    for _ in range(20):  # a version that does not exist, asked again and again
        with pytest.raises(NotFound):
            await pool.acquire("real", 7)
    assert pool.catalog.listings - listings <= 2
    await pool.stop()


async def test_store_away_serves_what_is_held_and_503s_misses(tmp_path: Path) -> None:
    store = FakeStore({"loaded": [1, 2], "on-disk": [1], "cold": [1]})
    pool = await make_pool(tmp_path, store, FakeServer(), memory_models=1)
    pool.release(await pool.acquire("on-disk", None))
    pool.release(await pool.acquire("loaded", None))  # evicts on-disk from memory
    assert pool.cache.entry(("on-disk", 1)).mem is Mem.ABSENT
    assert pool.cache.entry(("on-disk", 1)).disk is Disk.PRESENT
    store.reachable = False
    pool.catalog.ttl = 0.0  # every listing asks the store
    pool.current.clear()  # even "latest" must not need the store for what is held
    for model, version in (("loaded", None), ("loaded", 2), ("on-disk", None),
                           ("on-disk", 1)):
        lease = await pool.acquire(model, version)
        assert lease.key[0] == model
        pool.release(lease)
    for model, version in (("cold", None), ("loaded", 1), ("never-there", None)):
        with pytest.raises(Unavailable) as refused:
            await pool.acquire(model, version)
        assert refused.value.retry_after is not None and refused.value.retry_after > 0
    store.reachable = True
    with pytest.raises(NotFound):  # a store that answers "no such model" is another thing
        await pool.acquire("never-there", None)
    await pool.stop()


async def test_files_deleted_under_the_pool_are_downloaded_again(tmp_path: Path) -> None:
    store, server = FakeStore({"a": [1], "b": [1]}), DiskServer()
    pool = await make_pool(tmp_path, store, server, memory_models=1, failure_ttl_s=600)
    pool.release(await pool.acquire("a", None))
    pool.release(await pool.acquire("b", None))  # a: on disk only
    shutil.rmtree(tmp_path / "cache" / "a")
    lease = await pool.acquire("a", None)  # seen missing before the load
    pool.release(lease)
    assert store.downloads.count(("a", 1)) == 2
    # Deleted between the check and the load: the model server fails, the pool downloads.
    assert pool.cache.entry(("b", 1)).disk is Disk.PRESENT  # evicted by a's load
    server.vanish["b"] = 1
    pool.release(await pool.acquire("b", None))
    assert store.downloads.count(("b", 1)) == 2
    server.vanish["a"] = 5  # deleted before every load: transient, never remembered
    with pytest.raises(Unavailable, match="deleted under the pool"):
        await pool.acquire("a", None)
    assert pool.cache.failure(("a", 1), 0.0) is None
    server.vanish.clear()
    pool.release(await pool.acquire("a", None))
    assert pool.cache.entry(("a", 1)).mem is Mem.LOADED
    await pool.stop()


async def test_a_broken_model_is_still_remembered(tmp_path: Path) -> None:
    store, server = FakeStore({"bad": [1]}), DiskServer()
    server.broken.add(("bad", 1))  # its files are whole: the model itself fails
    pool = await make_pool(tmp_path, store, server, failure_ttl_s=600)
    with pytest.raises(Internal, match="bad SavedModel"):
        await pool.acquire("bad", None)
    assert pool.cache.failure(("bad", 1), 0.0) is not None
    assert store.downloads == [("bad", 1)]
    await pool.stop()


def test_labels_file_is_read_checked_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("store: /x\nlabels:\n  m:\n    stable: 1\n    canary: 2\n")
    labels = Labels(path)
    assert labels.resolve("m", "canary") == 2
    with pytest.raises(InvalidArgument, match="Unrecognized servable version label: beta"):
        labels.resolve("m", "beta")
    with pytest.raises(InvalidArgument, match="Unrecognized servable version label: stable"):
        labels.resolve("other", "stable")
    path.write_text("labels:\n  m:\n    stable: 0\n")  # refused: the last good map stays
    labels.refresh(force=True)
    assert labels.resolve("m", "stable") == 1 and labels.error is not None
    path.write_text("labels:\n  m:\n    stable: 2\n")
    labels.refresh(force=True)
    assert labels.of("m") == {"stable": 2} and labels.error is None
    for bad in ("labels: [1]", "labels:\n  m: {'bad label': 1}", "labels:\n  m: {a: true}",
                "labels:\n  ../x: {a: 1}"):
        path.write_text(bad)
        with pytest.raises(ValueError):
            read_labels(path)


async def test_a_store_lost_mid_download_is_503_with_retry_after(tmp_path: Path) -> None:
    class Dropping(FakeStore):
        def download(self, model: str, version: int, dest_dir: Path) -> Path:
            raise Unavailable("connection reset by the store")

    store = Dropping({"m": [1]})
    pool = await make_pool(tmp_path, store, FakeServer(), failure_ttl_s=600)
    with pytest.raises(Unavailable) as refused:
        await pool.acquire("m", None)
    assert refused.value.retry_after is not None
    assert pool.cache.failure(("m", 1), 0.0) is None  # transient: tried again next time
    await pool.stop()
