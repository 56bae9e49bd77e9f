"""What the store holds, as last seen: model -> versions, listed on demand and cached.

A listing is kept for `ttl` seconds (the store poll interval) so a miss costs
at most one listing per model per interval. "Not in the store" is kept apart,
briefly (NEGATIVE_TTL_S, so a model uploaded a moment ago is found) and for at
most NEGATIVE_MAX names (least recently asked out first), so requests for
bogus names cost one listing per name per few seconds and a bounded memory.
A store that cannot be reached is not "not in the store": nothing is
remembered and the caller gets Unavailable. One listing per model at a time
(single flight), run in a thread: the store's calls block.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from base.errors import NotFound
from pools.cold.flight import SingleFlight
from pools.store import ModelStore

NEGATIVE_TTL_S = 2.0
NEGATIVE_MAX = 4096


@dataclass
class Listing:
    versions: list[int]  # empty: the model is not in the store
    at: float


class Catalog:
    def __init__(self, store: ModelStore, ttl: float,
                 on_list: Callable[[float], None] | None = None,
                 negative_max: int = NEGATIVE_MAX) -> None:
        self.store = store
        self.ttl = ttl
        self._on_list = on_list or (lambda _seconds: None)
        self._listings: dict[str, Listing] = {}  # models found in the store
        self._missing: OrderedDict[str, float] = OrderedDict()  # name -> when found missing
        self.negative_max = negative_max
        self._flights: SingleFlight[str, list[int]] = SingleFlight()
        self.listings = 0

    def cached(self, model: str) -> list[int] | None:
        listing = self._listings.get(model)
        return None if listing is None else listing.versions

    async def versions(self, model: str, max_age: float | None = None) -> list[int]:
        """The model's versions; NotFound if it is not in the store, Unavailable if unreachable."""
        now = time.monotonic()
        limit = self.ttl if max_age is None else max_age
        listing = self._listings.get(model)
        if listing is not None and now - listing.at < limit:
            return listing.versions
        missing_at = self._missing.get(model)
        if missing_at is not None and now - missing_at < min(limit, NEGATIVE_TTL_S):
            self._missing.move_to_end(model)
            return _found(model, [], self.store.uri)
        versions = await self._flights.run(model, lambda: self._list(model))
        return _found(model, versions, self.store.uri)

    async def refresh(self, model: str, max_age: float = 0.0) -> list[int]:
        return await self.versions(model, max_age=max_age)

    def missing_names(self) -> int:
        return len(self._missing)

    async def _list(self, model: str) -> list[int]:
        self.listings += 1
        started = time.monotonic()
        try:
            versions = await asyncio.to_thread(self.store.list_versions, model)
        except NotFound:
            versions = []
        finally:
            self._on_list(time.monotonic() - started)
        if versions:
            self._listings[model] = Listing(versions, time.monotonic())
            self._missing.pop(model, None)
        else:
            self._listings.pop(model, None)
            self._missing[model] = time.monotonic()
            self._missing.move_to_end(model)
            while len(self._missing) > self.negative_max:
                self._missing.popitem(last=False)
        return versions


def _found(model: str, versions: list[int], uri: str) -> list[int]:
    if not versions:
        raise NotFound(f"Servable not found for request: Latest({model}) (not in {uri})")
    return versions
