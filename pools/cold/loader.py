"""The miss path: make room, download (if not on disk), load; and the ways out (unload, delete).

All state lives in `Cache` and changes only on the event loop; blocking work
(store, file system) runs in threads and each model server is driven over
grpc.aio through its one `ConfigSender`. Room is planned and taken with no
await in between, so two pipelines can never both take the last slot.

A miss costs one reload call: memory room is made once the files are on disk,
and the victims' unload travels in the same reload as the load (see
`pools.cold.cache`). A reload that succeeded has loaded its new models (TF
Serving's contract), so the status is asked only when it failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from base.errors import (
    Internal,
    NotFound,
    ResourceExhausted,
    TierserveError,
    Unavailable,
)
from pools.cold import disk
from pools.cold.admission import Ewma
from pools.cold.cache import Cache, Disk, Key, Mem, Tier, key_str
from pools.cold.config import PoolConfig
from pools.cold.flight import SingleFlight
from pools.cold.metrics import PoolMetrics
from pools.cold.servers import Servers
from pools.store import ModelStore

log = logging.getLogger(__name__)

UNLOAD_CONFIRM_S = 30.0
LOAD_CONFIRM_S = 60.0


class Changes:
    """Wakes everyone waiting for the cache to change (room freed, a request ended)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, at_most: float | None = None) -> None:
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), at_most)
        except TimeoutError:
            pass


class FilesVanished(Unavailable):
    """A load failed because the cache files were deleted under the pool: download again."""


def is_transient(exc: BaseException) -> bool:
    """Errors not worth remembering: the store or server was away, or the model is gone."""
    return isinstance(exc, Unavailable | NotFound | ResourceExhausted) or \
        not isinstance(exc, TierserveError)


class Loader:
    def __init__(self, config: PoolConfig, cache: Cache, store: ModelStore, servers: Servers,
                 metrics: PoolMetrics, changes: Changes) -> None:
        self.config = config
        self.cache = cache
        self.store = store
        self.servers = servers
        self.metrics = metrics
        self.changes = changes
        self.cache_dir: Path = config.cache_dir
        self.flights: SingleFlight[Key, None] = SingleFlight()
        self.pending: dict[Key, None] = {}  # pipelines not yet done, oldest first
        self.load_time = Ewma()  # seconds a pipeline holds its slot, measured side by side
        self._slots = asyncio.Semaphore(config.max_parallel_loads)
        self._background: set[asyncio.Task[None]] = set()

    def ensure(self, key: Key) -> asyncio.Task[None]:
        """The one task that gets `key` loaded (started if none runs)."""
        if self.flights.running(key):
            return self.flights.task(key, lambda: self._pipeline(key))
        self.pending[key] = None  # its place in the queue, from now on
        task = self.flights.task(key, lambda: self._pipeline(key))
        task.add_done_callback(lambda _: None if self.flights.running(key)
                               else self.pending.pop(key, None))
        return task

    def position(self, key: Key) -> int | None:
        """`key`'s place among the pending pipelines (0: the oldest), None if not pending."""
        for i, pending in enumerate(self.pending):
            if pending == key:
                return i
        return None

    async def close(self) -> None:
        await self.flights.cancel_all()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # -- the miss pipeline ----------------------------------------------------------------

    async def _pipeline(self, key: Key) -> None:
        cache = self.cache
        cache.hold(key)
        queued = time.monotonic()
        try:
            async with self._slots:
                started = time.monotonic()
                self._phase("slot", started - queued)
                e = cache.entry(key)
                await self._until(lambda: e.mem in (Mem.ABSENT, Mem.LOADED)
                                  and e.disk in (Disk.ABSENT, Disk.PRESENT))
                if e.mem is Mem.LOADED:
                    return
                try:
                    await self._fetch_and_load(key)
                finally:
                    self.metrics.load_busy_seconds.inc(time.monotonic() - started)
                self.load_time.add(time.monotonic() - started)
        except TierserveError as exc:
            if not is_transient(exc):
                cache.record_failure(key, exc.code_name, exc.message, time.monotonic(),
                                     self.config.failure_ttl_s)
            raise
        finally:
            cache.release(key)
            self.changes.notify()

    async def _fetch_and_load(self, key: Key) -> None:
        """Download if needed, then load; files deleted under the pool cost one download
        more, never a remembered failure."""
        try:
            await self._fetch_and_load_once(key)
        except FilesVanished as exc:
            log.warning("%s: %s; downloading it again", key_str(key), exc.message)
            await self._fetch_and_load_once(key)

    async def _fetch_and_load_once(self, key: Key) -> None:
        cache = self.cache
        e = cache.entry(key)
        if e.disk is Disk.PRESENT and not await asyncio.to_thread(
                disk.is_whole, self.cache_dir, *key):
            log.warning("%s: its cache files were deleted; downloading it again", key_str(key))
            cache.lose_files(key)
            # What is left (a folder without its saved_model) would pass for a download.
            await asyncio.to_thread(disk.delete_version, self.cache_dir, *key)
        if e.disk is not Disk.PRESENT:
            size = await self._size(key)
            self._check_fits(Tier.MEMORY, key, size)  # before downloading what cannot load
            await self._download(key, size)
        started = time.monotonic()
        victims = await self._make_room(Tier.MEMORY, key, e.size_bytes)
        self._phase("room", time.monotonic() - started)
        server = self.servers.place(key, victims)
        cache.reserve_memory(key, e.size_bytes)
        try:
            await self._load(key, server, victims)
        except BaseException:
            if e.mem in (Mem.RESERVED, Mem.LOADING):
                cache.abort_load(key)
                self.servers.backends[server].sender.remove(*key)
                self.servers.forget(key)
            raise

    def _check_fits(self, tier: Tier, key: Key, size: int) -> None:
        bounds = self.cache.bounds(tier)
        if not bounds.fits(1, size):
            raise ResourceExhausted(f"{key_str(key)} needs {size} bytes; the {tier} bound is "
                                    f"{bounds.models} models, {bounds.bytes} bytes")

    async def _size(self, key: Key) -> int:
        """Bytes to reserve before downloading; with count bounds only, no store call."""
        if self.config.memory_bytes is None and self.config.disk_bytes is None:
            return 0  # the true size is measured once the files are on disk
        return await asyncio.to_thread(self.store.version_size, *key)

    async def _download(self, key: Key, size: int) -> None:
        model, version = key
        await self._make_room(Tier.DISK, key, size)
        self.cache.start_download(key, size)
        started = time.monotonic()
        try:
            path = await asyncio.to_thread(self.store.download, model, version,
                                           self.cache_dir / model)
            actual = await asyncio.to_thread(disk.folder_size, path)
        except BaseException as exc:
            self.cache.abort_download(key)
            if isinstance(exc, Exception) and not is_transient(exc):
                self.metrics.failures.labels("download").inc()
            if isinstance(exc, Exception) and not isinstance(exc, TierserveError):
                raise Internal(f"downloading {key_str(key)}: {exc}") from exc
            raise
        seconds = time.monotonic() - started
        self.cache.finish_download(key, actual, seconds, time.monotonic())
        self.metrics.downloads.inc()
        self.metrics.download_seconds.observe(seconds)
        self._phase("download", seconds)
        self.changes.notify()

    async def _load(self, key: Key, server: int, victims: list[Key]) -> None:
        model, version = key
        backend = self.servers.backends[server]
        started = time.monotonic()
        backend.loading += 1
        try:
            # Victims on other servers leave before the load starts: their reloads and ours
            # run in separate processes, and ours finishing first would hold one model too
            # many in memory for a moment.
            here = [v for v in victims if self.servers.index(v) == server]
            elsewhere = [self._spawn(self._end_unload(v)) for v in victims if v not in here]
            if elsewhere:
                await asyncio.wait(elsewhere)
            self.cache.start_load(key)
            backend.sender.add(model, version)
            # One reload carries the load and the unload of the victims on this server.
            reload = asyncio.ensure_future(backend.sender.push())
            for victim in here:
                self._spawn(self._end_unload(victim, reload))
            error = await asyncio.shield(reload)
        finally:
            backend.loading -= 1
        self._phase("reload", time.monotonic() - started)
        if error is None:
            seconds = time.monotonic() - started
            self.cache.finish_load(key, seconds, time.monotonic())
            self.metrics.loads.inc()
            self.metrics.load_seconds.observe(seconds)
            return
        # The reload failed, maybe for another model in the list: ask for ours.
        confirm = time.monotonic()
        status = await backend.client.wait_for(model, version, lambda s: s.settled,
                                               LOAD_CONFIRM_S)
        self._phase("confirm", time.monotonic() - confirm)
        if status.state == "AVAILABLE":
            seconds = time.monotonic() - started
            self.cache.finish_load(key, seconds, time.monotonic())
            self.metrics.loads.inc()
            self.metrics.load_seconds.observe(seconds)
            return
        if isinstance(error, Unavailable):
            raise error
        message = status.error_message or (str(error) if error else f"state {status.state}")
        code = status.error_code if status.error_code != "OK" else "UNKNOWN"
        failure: TierserveError
        if not await asyncio.to_thread(disk.is_whole, self.cache_dir, model, version):
            # Deleted under us (an operator, a cleaner): not the model's fault, not remembered.
            failure = FilesVanished(f"the cache files of {model} version {version} were "
                                    f"deleted under the pool ({code}: {message})")
        else:
            # 500 whatever the server's code: the request was fine, the model is not.
            failure = Internal(f"loading {model} version {version} failed: {code}: {message}")
            self.metrics.failures.labels("load").inc()
        # The files may be what is broken: drop them so the next try downloads afresh.
        self.cache.abort_load(key)
        backend.sender.remove(model, version)
        self.servers.forget(key)
        await backend.sender.push()
        await self._delete_files(key, evicted=False)
        raise failure

    def _phase(self, name: str, seconds: float) -> None:
        self.metrics.miss_phases.labels(name).observe(seconds)

    # -- room -----------------------------------------------------------------------------

    async def _make_room(self, tier: Tier, key: Key, size: int) -> list[Key]:
        """Return once `key` fits in `tier`; the caller takes the room before any await.

        Memory victims are returned, unloading but not yet sent: the caller's reload
        carries them. Disk victims are deleted in the background.
        """
        while True:
            plan = self.cache.plan_room(tier, key, size)
            if plan.never:
                raise ResourceExhausted(plan.never)
            if plan.fits:
                return []
            # Victims change state here, before any await, so the next plan sees them leaving.
            if tier is Tier.MEMORY and plan.victims:
                self._begin_unload(list(plan.victims), evicted=True)
                if self.cache.plan_room(tier, key, size).fits:
                    return list(plan.victims)
                for victim in plan.victims:  # never: the plan freed enough; but stay safe
                    self._spawn(self._end_unload(victim))
            for victim in plan.victims if tier is Tier.DISK else ():
                self._begin_delete(victim, evicted=True)
                self._spawn(self._end_delete(victim))
            if not plan.victims:
                await self.changes.wait()

    async def _until(self, ready: Callable[[], bool]) -> None:
        while not ready():
            await self.changes.wait()

    # -- the ways out ---------------------------------------------------------------------

    async def _unload(self, key: Key, evicted: bool) -> None:
        self._begin_unload([key], evicted)
        await self._end_unload(key)

    def _begin_unload(self, keys: list[Key], evicted: bool) -> None:
        for key in keys:
            self.cache.start_unload(key, evicted=evicted)
            self.servers.of(key).sender.remove(*key)
            if evicted:
                self.metrics.evictions.labels(Tier.MEMORY.value).inc()

    async def _end_unload(self, key: Key,
                          reload: asyncio.Future[BaseException | None] | None = None) -> None:
        """Wait for a reload without `key` (the given one, else our own), then let it load
        again or leave the disk. Only a failed reload costs status calls to see it gone."""
        backend = self.servers.of(key)
        try:
            if reload is None:
                error = await backend.sender.push()
            else:
                error = await asyncio.shield(reload)
            if error is not None:
                await backend.client.wait_for(*key, lambda s: s.gone, UNLOAD_CONFIRM_S)
        except TierserveError as exc:
            log.warning("confirming the unload of %s: %s", key_str(key), exc)
        finally:
            self.cache.finish_unload(key)
            self.servers.forget(key)
            self.changes.notify()

    async def _delete_files(self, key: Key, evicted: bool) -> None:
        self._begin_delete(key, evicted)
        await self._end_delete(key)

    def _begin_delete(self, key: Key, evicted: bool) -> None:
        self.cache.start_delete(key, evicted=evicted)
        if evicted:
            self.metrics.evictions.labels(Tier.DISK.value).inc()

    async def _end_delete(self, key: Key) -> None:
        try:
            await asyncio.to_thread(disk.delete_version, self.cache_dir, *key)
        finally:
            self.cache.finish_delete(key)
            self.changes.notify()

    async def retire(self, key: Key, delete_files: bool, give_up_s: float | None = None) -> bool:
        """Unload `key` once no request uses it (and delete its files); False on giving up."""
        deadline = None if give_up_s is None else time.monotonic() + give_up_s
        while True:
            e = self.cache.get(key)
            if e is None:
                return True
            idle = not e.pinned()
            if e.mem is Mem.LOADED and idle:
                await self._unload(key, evicted=False)
                continue
            if e.mem is Mem.ABSENT and (not delete_files or e.disk is Disk.ABSENT):
                return True
            if e.mem is Mem.ABSENT and e.disk is Disk.PRESENT and idle:
                await self._delete_files(key, evicted=False)
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            await self.changes.wait(left)

    def _spawn(self, coro: object) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task
