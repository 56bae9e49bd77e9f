"""Least recently used: the baseline every serving cache starts with."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from pools.eviction.base import EvictionPolicy, register


@register("lru")
class LRU(EvictionPolicy):
    name = "lru"

    def __init__(self, capacity: int = 0) -> None:
        self._order: OrderedDict[str, None] = OrderedDict()  # least recent first

    def record_access(self, key: str, now: float, hit: bool) -> None:
        if key in self._order:
            self._order.move_to_end(key)

    def on_insert(self, key: str, size_bytes: int, load_cost_s: float, now: float) -> None:
        self._order[key] = None
        self._order.move_to_end(key)

    def on_remove(self, key: str) -> None:
        self._order.pop(key, None)

    def choose_victim(self, candidates: Sequence[str], incoming: str | None) -> str | None:
        allowed = set(candidates)
        for key in self._order:
            if key in allowed:
                return key
        return candidates[0] if candidates else None

    def to_state(self) -> dict[str, Any]:
        return {"order": list(self._order)}
