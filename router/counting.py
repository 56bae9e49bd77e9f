"""Request counts aggregated in memory and flushed to the db in one transaction.

`record` is a few dict operations on the event loop; the db write happens every
`flush_interval` from a thread, never per request. A failed flush keeps its
deltas for the next attempt. Requests are counted per 5 s bucket (so short promotion
windows are measured as such); every `roll_up_every` seconds a flush also rolls the
buckets of older minutes up into per-minute rows, in the same transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from base.errors import TierserveError
from db import queries
from db.queries import BUCKETS_PER_MINUTE, CountDelta, Engine, bucket_of

log = logging.getLogger(__name__)

Key = tuple[str, str, str, int, bool]

ROLL_UP_EVERY_S = 60.0


class Counter:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time,
                 roll_up_every: float = ROLL_UP_EVERY_S) -> None:
        self.engine = engine
        self.clock = clock
        self.roll_up_every = roll_up_every
        self._next_roll_up = 0.0  # the first flush rolls up what an earlier run left
        self._pending: dict[Key, CountDelta] = {}
        self._lock = asyncio.Lock()  # one flush at a time (timer vs shutdown)
        self.flushed_requests = 0

    def record(self, model: str, latency_s: float, status: int, *, experiment: str = "",
               variant: str = "", shadow: bool = False, now: float | None = None) -> None:
        bucket = bucket_of(self.clock() if now is None else now)
        key = (model, experiment, variant, bucket, shadow)
        delta = self._pending.get(key)
        if delta is None:
            delta = self._pending[key] = CountDelta(
                model=model, minute=bucket // BUCKETS_PER_MINUTE, bucket=bucket,
                experiment=experiment, variant=variant, shadow=shadow)
        delta.record(latency_s, status)

    def pending_requests(self) -> int:
        return sum(d.count for d in self._pending.values())

    async def flush(self) -> int:
        """Write everything recorded so far; returns the number of requests written."""
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return 0
            now = self.clock()
            roll_up_at = now if now >= self._next_roll_up else None
            try:
                await asyncio.to_thread(queries.add_counts, self.engine, list(batch.values()),
                                        roll_up_at=roll_up_at)
            except TierserveError:  # the db is down or locked: keep them for the next flush
                self._merge_back(batch)
                raise
            if roll_up_at is not None:
                self._next_roll_up = now + self.roll_up_every
            written = sum(d.count for d in batch.values())
            self.flushed_requests += written
            return written

    def _merge_back(self, batch: dict[Key, CountDelta]) -> None:
        for key, old in batch.items():
            new = self._pending.get(key)
            if new is None:
                self._pending[key] = old
                continue
            new.merge(old)

    async def flush_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.flush()
            except TierserveError as exc:
                log.warning("count flush failed (%s); %d requests kept for the next one",
                            exc, self.pending_requests())
            except Exception:  # a bug must not stop counting for good: log it, go on
                log.exception("count flush failed")
