"""The cold pool: which version a request means, hit or miss, bounded waits, admin actions.

`ColdPool` wires the cache, the catalog of the store, the loader and the
model server client together, and owns the start (index rebuilt from the
cache folder) and the stop (eviction policy state saved).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from base.errors import NotFound, Unavailable, from_code_name
from base.names import check_model_name
from pools.cold import disk
from pools.cold.admission import Limits, Queue, decide
from pools.cold.cache import Bounds, Cache, Disk, Entry, Key, Mem, Tier
from pools.cold.catalog import NEGATIVE_TTL_S, Catalog
from pools.cold.config import PoolConfig
from pools.cold.labels import Labels
from pools.cold.loader import Changes, Loader
from pools.cold.metrics import PoolMetrics
from pools.cold.modelserver_client import ModelServerClient
from pools.cold.servers import Servers
from pools.eviction import make_policy
from pools.store import ModelStore

log = logging.getLogger(__name__)

# Seconds a miss refused because the store is away is asked to wait.
STORE_RETRY_AFTER_S = 5.0


@dataclass(frozen=True)
class Lease:
    """A request's hold on a loaded model version: it stays loaded until released."""

    key: Key
    hit: bool
    server: int = 0  # which of the pool's model servers holds it


class ColdPool:
    def __init__(self, config: PoolConfig, store: ModelStore,
                 clients: ModelServerClient | Sequence[ModelServerClient]) -> None:
        self.config = config
        self.store = store
        self.servers = Servers(list(clients) if isinstance(clients, Sequence) else [clients],
                               lambda m: str(config.cache_dir / m))
        self.cache = Cache(
            Bounds(config.memory_models, config.memory_bytes),
            Bounds(config.disk_models, config.disk_bytes),
            make_policy(config.eviction_policy, capacity=config.memory_models or 0),
            make_policy(config.eviction_policy, capacity=config.disk_models or 0))
        self.metrics = PoolMetrics(lambda: self.cache)
        self.changes = Changes()
        self.catalog = Catalog(store, config.store_poll_s,
                               on_list=self.metrics.miss_phases.labels("listing").observe)
        self.loader = Loader(config, self.cache, store, self.servers, self.metrics,
                             self.changes)
        self.labels = Labels(config.labels_file)
        self.current: dict[str, int] = {}  # model -> the version "latest" requests get
        self.gone: set[Key] = set()  # deleted from the store, on their way out
        self.waiting: dict[Key, int] = {}  # requests waiting for a load, per model version
        self.shed = 0  # misses answered 503 at once
        self.limits = Limits(config.load_wait_s, config.max_parallel_loads,
                             config.max_queued_per_model, config.max_queued)
        self.metrics.watch("tierserve_pool_queued_requests",
                           "Requests waiting for a load", lambda: sum(self.waiting.values()))
        self.metrics.watch("tierserve_pool_pending_loads",
                           "Loads started and not done (running or waiting for a slot)",
                           lambda: len(self.loader.pending))
        self.metrics.watch("tierserve_pool_load_time_estimate_seconds",
                           "Measured seconds per load (EWMA), what shedding predicts with",
                           lambda: self.loader.load_time.value or 0.0)

    @property
    def client(self) -> ModelServerClient:
        """The first model server's client (the only one when attached)."""
        return self.servers.backends[0].client

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        # Downloads, listings and file work run in threads: the default pool (cores + 4)
        # would cap parallel downloads below max_parallel_loads on a small machine.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=2 * self.config.max_parallel_loads + 4,
                               thread_name_prefix="cold-pool-io"))
        now = time.time()
        found = await asyncio.to_thread(disk.scan, self.config.cache_dir)
        for item in sorted(found, key=lambda f: f.mtime):
            self.cache.found_on_disk((item.model, item.version), item.size_bytes, now)
        state = await asyncio.to_thread(disk.load_state, self.config.cache_dir)
        if state.get("policy") == self.config.eviction_policy:
            self.cache.memory_policy.load_state(state.get("memory") or {})
            self.cache.disk_policy.load_state(state.get("disk") or {})
        await self._trim_disk()
        # The model servers serve exactly our lists from now on (they may hold old ones).
        for backend, error in zip(self.servers.backends, await self.servers.push_all(),
                                  strict=True):
            if error is not None:
                log.warning("model server at %s: %s", backend.client.address, error)
        log.info("cold pool: %d model versions on disk, %d bytes", len(found),
                 self.cache.usage(Tier.DISK).bytes)

    async def stop(self) -> None:
        await asyncio.to_thread(self.save_state)
        await self.loader.close()
        await self.servers.close()

    def save_state(self) -> None:
        disk.save_state(self.config.cache_dir, {
            "policy": self.config.eviction_policy,
            "memory": self.cache.memory_policy.to_state(),
            "disk": self.cache.disk_policy.to_state()})

    async def _trim_disk(self) -> None:
        """Bounds may have shrunk since the files were written."""
        while True:
            usage = self.cache.usage(Tier.DISK)
            if self.cache.disk_bounds.fits(usage.count, usage.bytes):
                return
            victims = self.cache.evictable(Tier.DISK)
            if not victims:
                return
            names = {f"{e.model}/{e.version}": e for e in victims}
            chosen = self.cache.disk_policy.choose_victim(list(names), None)
            victim = names.get(chosen or "", victims[0])
            await self.loader.retire(victim.key, delete_files=True)

    # -- requests -------------------------------------------------------------------------

    async def acquire(self, model: str, version: int | None) -> Lease:
        """Hold the model version a request means, loading it if needed (up to load_wait)."""
        check_model_name(model)
        key = await self.resolve(model, version)
        failure = self.cache.failure(key, time.monotonic())
        if failure is not None:
            self.metrics.failures.labels("remembered").inc()
            raise from_code_name(failure.code, failure.message)
        hit = self.cache.begin_request(key, time.time())
        (self.metrics.hits if hit else self.metrics.misses).inc()
        if not hit:
            await self._wait_for_load(key)
        if version is None:
            self.current[model] = key[1]
        server = self.servers.index(key)
        if hit:
            self.servers.hits.add(server)
        return Lease(key, hit, server)

    async def _wait_for_load(self, key: Key) -> None:
        """Wait for `key`'s load, or answer 503 at once if the wait cannot end in time."""
        verdict = decide(Queue(len(self.loader.pending), self.loader.position(key),
                               self.waiting.get(key, 0), sum(self.waiting.values())),
                         self.limits, self.loader.load_time.value)
        if not verdict.admit:
            self._end(key)
            self.shed += 1
            self.metrics.shed.labels(verdict.reason).inc()
            raise Unavailable(
                f"model {key[0]} version {key[1]} cannot be loaded within "
                f"{self.config.load_wait_s:g} s (expected {verdict.expected_wait_s:.1f} s, "
                f"{verdict.reason}); retry later", retry_after=verdict.retry_after_s)
        self.waiting[key] = self.waiting.get(key, 0) + 1
        try:
            await asyncio.wait_for(asyncio.shield(self.loader.ensure(key)),
                                   self.config.load_wait_s)
        except TimeoutError:
            self._end(key)
            self.metrics.load_waits.inc()
            raise Unavailable(
                f"model {key[0]} version {key[1]} is still loading; retry later",
                retry_after=self._retry_after(key)) from None
        except Unavailable as exc:
            self._end(key)
            if exc.retry_after is not None:
                raise
            # The store went away mid-download, the files vanished twice...: worth a retry.
            raise Unavailable(exc.message, retry_after=STORE_RETRY_AFTER_S) from exc
        except BaseException:
            self._end(key)
            raise
        finally:
            left = self.waiting.pop(key) - 1
            if left:
                self.waiting[key] = left

    def release(self, lease: Lease) -> None:
        self._end(lease.key)

    def _end(self, key: Key) -> None:
        self.cache.end_request(key)
        entry = self.cache.get(key)
        if entry is not None and entry.in_flight == 0:
            self.changes.notify()

    def _retry_after(self, key: Key) -> float:
        entry = self.cache.get(key)
        typical = entry.load_time_s if entry and entry.load_time_s else 1.0
        return min(max(typical, 1.0), self.config.load_wait_s)

    async def resolve(self, model: str, version: int | None) -> Key:
        """The (model, version) a request means; NotFound / Unavailable from the store.

        What the pool holds (loaded or on disk) is served without the store when it is
        away: only a miss that needs the store gets Unavailable (503 + Retry-After).
        """
        if version is not None:
            key = (model, version)
            e = self.cache.get(key)
            if e is not None and key not in self.gone and (
                    e.mem is Mem.LOADED or e.disk is Disk.PRESENT):
                return key
            versions = await self._listing(model)
            if version not in versions:
                # Uploaded since the listing? Asked again at most every few seconds, so
                # requests for a version that does not exist cost no listing each.
                versions = await self._listing(model, NEGATIVE_TTL_S)
            if version not in versions:
                raise NotFound(f"Servable not found for request: Specific({model}, {version})")
            self.gone.discard(key)
            return key
        current = self.current.get(model)
        if current is not None and (model, current) not in self.gone:
            e = self.cache.get((model, current))
            if e is not None and e.mem is Mem.LOADED:
                return (model, current)
        local = [e.version for e in self.cache.versions(model)
                 if (e.mem is Mem.LOADED or e.disk is Disk.PRESENT) and e.key not in self.gone]
        try:
            versions = await self._listing(model)
        except Unavailable:
            if not local:
                raise
            return (model, max(local))  # the store is away: serve what we hold
        key = (model, max(versions))
        self.gone.discard(key)
        return key

    async def _listing(self, model: str, max_age: float | None = None) -> list[int]:
        try:
            return await self.catalog.versions(model, max_age)
        except Unavailable as exc:
            raise Unavailable(f"the model store cannot be reached: {exc.message}",
                              retry_after=exc.retry_after or STORE_RETRY_AFTER_S) from exc

    # -- admin ----------------------------------------------------------------------------

    async def prewarm(self, model: str, version: int | None, wait: float) -> Entry:
        """Start loading a model (without a request pinning it); wait up to `wait` seconds."""
        check_model_name(model)
        key = await self.resolve(model, version)
        failure = self.cache.failure(key, time.monotonic())
        if failure is not None:
            raise from_code_name(failure.code, failure.message)
        task = self.loader.ensure(key)
        try:
            await asyncio.wait_for(asyncio.shield(task), wait)
        except TimeoutError:
            pass
        if version is None and self.cache.entry(key).mem is Mem.LOADED:
            self.current[model] = key[1]
        return self.cache.entry(key)

    async def unload(self, model: str, version: int | None, delete_files: bool,
                     wait: float) -> list[Key]:
        """Unload a model's versions (all, or one) once idle; the keys that are out."""
        check_model_name(model)
        keys = [e.key for e in self.cache.versions(model)
                if (version is None or e.version == version)
                and (e.mem is not Mem.ABSENT or (delete_files and e.disk is not Disk.ABSENT))]
        if version is not None and not keys:
            raise NotFound(f"model {model} version {version} is not in the cold pool")
        done = await asyncio.gather(*(self.loader.retire(k, delete_files, wait) for k in keys))
        if self.current.get(model) in {k[1] for k in keys}:
            del self.current[model]
        return [k for k, ok in zip(keys, done, strict=True) if ok]

    def listing(self) -> dict[str, Any]:
        now = time.monotonic()
        models = [{**describe(e, now), "server": self.servers.placement.get(e.key)}
                  for e in sorted(self.cache.entries.values(), key=lambda e: e.key)
                  if e.mem is not Mem.ABSENT or e.disk is not Disk.ABSENT or e.hits or e.misses
                  or e.busy or e.failure is not None]
        memory, on_disk = self.cache.usage(Tier.MEMORY), self.cache.usage(Tier.DISK)
        return {
            "bounds": {"memory_models": self.config.memory_models,
                       "memory_bytes": self.config.memory_bytes,
                       "disk_models": self.config.disk_models,
                       "disk_bytes": self.config.disk_bytes},
            "usage": {"memory_models": memory.count, "memory_bytes": memory.bytes,
                      "disk_models": on_disk.count, "disk_bytes": on_disk.bytes},
            "totals": {
                "downloads": sum(e.downloads for e in self.cache.entries.values()),
                "loads": sum(e.loads for e in self.cache.entries.values()),
                "hits": sum(e.hits for e in self.cache.entries.values()),
                "misses": sum(e.misses for e in self.cache.entries.values()),
                "evictions": {t.value: n for t, n in self.cache.evictions.items()},
                "reload_calls": self.servers.calls,
                "status_calls": self.servers.status_calls,
                "store_listings": self.catalog.listings,
                "shed": self.shed,
            },
            "eviction_policy": self.config.eviction_policy,
            "labels": self.labels.map, "labels_error": self.labels.error,
            "models": models,
        }


def describe(e: Entry, now: float) -> dict[str, Any]:
    failure = None
    if e.failure is not None and e.failure.until > now:
        failure = {"code": e.failure.code, "message": e.failure.message,
                   "retry_in_s": round(e.failure.until - now, 3)}
    return {
        "model": e.model, "version": e.version,
        "on_disk": e.disk is Disk.PRESENT, "disk_state": e.disk.value,
        "loaded": e.mem is Mem.LOADED, "memory_state": e.mem.value,
        "bytes": e.size_bytes, "last_used": e.last_used, "in_flight": e.in_flight,
        "busy": e.busy > 0,
        "hits": e.hits, "misses": e.misses, "downloads": e.downloads, "loads": e.loads,
        "evictions": e.evictions, "load_time_s": e.load_time_s,
        "download_time_s": e.download_time_s, "failure": failure,
    }
