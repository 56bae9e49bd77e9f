"""What the store holds, as last seen: model -> versions, listed on demand and cached.

A listing is kept for `ttl` seconds (the store poll interval) so a miss costs
at most one listing per model per interval; "not in the store" is kept only
briefly so a model uploaded a moment ago is found. One listing per model at a
time (single flight), run in a thread: the store's calls block.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from base.errors import NotFound
from pools.cold.flight import SingleFlight
from pools.store import ModelStore

NEGATIVE_TTL_S = 1.0


@dataclass
class Listing:
    versions: list[int]  # empty: the model is not in the store
    at: float


class Catalog:
    def __init__(self, store: ModelStore, ttl: float,
                 on_list: Callable[[float], None] | None = None) -> None:
        self.store = store
        self.ttl = ttl
        self._on_list = on_list or (lambda _seconds: None)
        self._listings: dict[str, Listing] = {}
        self._flights: SingleFlight[str, list[int]] = SingleFlight()
        self.listings = 0

    def cached(self, model: str) -> list[int] | None:
        listing = self._listings.get(model)
        return None if listing is None else listing.versions

    async def versions(self, model: str, max_age: float | None = None) -> list[int]:
        """The model's versions; NotFound if it is not in the store, Unavailable if unreachable."""
        listing = self._listings.get(model)
        if listing is not None:
            age = time.monotonic() - listing.at
            limit = self.ttl if max_age is None else max_age
            if age < (limit if listing.versions else min(limit, NEGATIVE_TTL_S)):
                return _found(model, listing.versions, self.store.uri)
        versions = await self._flights.run(model, lambda: self._list(model))
        return _found(model, versions, self.store.uri)

    async def refresh(self, model: str) -> list[int]:
        return await self.versions(model, max_age=0.0)

    async def _list(self, model: str) -> list[int]:
        self.listings += 1
        started = time.monotonic()
        try:
            versions = await asyncio.to_thread(self.store.list_versions, model)
        except NotFound:
            versions = []
        finally:
            self._on_list(time.monotonic() - started)
        self._listings[model] = Listing(versions, time.monotonic())
        return versions


def _found(model: str, versions: list[int], uri: str) -> list[int]:
    if not versions:
        raise NotFound(f"Servable not found for request: Latest({model}) (not in {uri})")
    return versions
