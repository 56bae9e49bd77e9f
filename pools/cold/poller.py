"""Live reload: every `store_poll` seconds, compare what the pool holds with the store.

- A loaded model whose store has a newer version: load the new one first,
  point "latest" requests at it, then unload the old one once idle. Requests
  never see the model missing.
- A version (or a whole model) gone from the store: no new request gets it;
  it is unloaded once idle and its files are deleted.
An unreachable store skips the round: what is loaded keeps serving.

Each round lists the models in memory; models only on disk are listed every
`DISK_EVERY` rounds (one listing per model: hundreds of them every round cost
more than the files of a deleted model left on disk a little longer, and a
miss lists a stale model anyway).
"""

from __future__ import annotations

import asyncio
import logging
import time

from base.errors import NotFound, TierserveError, Unavailable
from pools.cold.cache import Disk, Key, Mem
from pools.cold.pool import ColdPool

log = logging.getLogger(__name__)

DISK_EVERY = 10


class StorePoller:
    def __init__(self, pool: ColdPool) -> None:
        self.pool = pool
        self._tasks: set[asyncio.Task[None]] = set()
        self._swapping: set[str] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self.rounds = 0

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.pool.config.store_poll_s)
            try:
                await self.poll_once(with_disk=self.rounds % DISK_EVERY == 0)
                await asyncio.to_thread(self.pool.save_state)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("store poll failed")

    async def poll_once(self, with_disk: bool = True) -> None:
        cache = self.pool.cache
        held = sorted({e.model for e in cache.entries.values()
                       if e.mem is not Mem.ABSENT or (with_disk and e.disk is not Disk.ABSENT)})
        for model in held:
            try:
                versions = await self.pool.catalog.refresh(model)
            except NotFound:
                versions = []
            except Unavailable as exc:
                log.warning("store unreachable, skipping this poll: %s", exc)
                return
            self._reconcile(model, set(versions))
        self.rounds += 1

    def _reconcile(self, model: str, in_store: set[int]) -> None:
        pool, cache = self.pool, self.pool.cache
        for e in cache.versions(model):
            held = e.mem is not Mem.ABSENT or e.disk is not Disk.ABSENT
            if held and e.version not in in_store and e.key not in pool.gone:
                log.info("%s/%d deleted from the store: retiring it", model, e.version)
                pool.gone.add(e.key)
                if pool.current.get(model) == e.version:
                    del pool.current[model]
                self._spawn(self._retire(e.key))
        current = pool.current.get(model)
        if not in_store or current is None or model in self._swapping:
            return
        latest = max(in_store)
        entry = cache.get((model, current))
        if latest > current and entry is not None and entry.mem is Mem.LOADED \
                and cache.failure((model, latest), time.monotonic()) is None:
            self._swapping.add(model)
            self._spawn(self._swap(model, current, latest))

    async def _retire(self, key: Key) -> None:
        await self.pool.loader.retire(key, delete_files=True)

    async def _swap(self, model: str, old: int, new: int) -> None:
        pool = self.pool
        pool.cache.hold((model, old))  # keeps serving, never the victim of its successor
        try:
            log.info("%s: loading version %d before unloading %d", model, new, old)
            await asyncio.shield(pool.loader.ensure((model, new)))
            if pool.current.get(model) == old:
                pool.current[model] = new
        except TierserveError as exc:
            log.warning("%s: version %d did not load, %d keeps serving: %s",
                        model, new, old, exc)
            return
        finally:
            pool.cache.release((model, old))
            pool.changes.notify()
            self._swapping.discard(model)
        await pool.loader.retire((model, old), delete_files=False)

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
