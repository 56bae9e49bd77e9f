"""Exact LFU: every request ever seen counted, the least counted resident goes.

The reference "perfect frequency count" of the literature: strong on a
stationary popularity, slow to notice a shift because old counts never fade.
Its state is one counter per model name ever requested (a store's catalogue,
so still small for the cold pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pools.eviction.base import EvictionPolicy, register


@register("lfu")
class LFU(EvictionPolicy):
    name = "lfu"

    def __init__(self, capacity: int = 0) -> None:
        self._counts: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self._tick = 0

    def record_access(self, key: str, now: float, hit: bool) -> None:
        self._tick += 1
        self._counts[key] = self._counts.get(key, 0) + 1
        self._last[key] = self._tick

    def on_insert(self, key: str, size_bytes: int, load_cost_s: float, now: float) -> None:
        self._tick += 1
        self._last[key] = self._tick

    def on_remove(self, key: str) -> None:
        return None  # counts outlive residency: that is the point of LFU

    def choose_victim(self, candidates: Sequence[str], incoming: str | None) -> str | None:
        if not candidates:
            return None
        return min(candidates, key=lambda k: (self._counts.get(k, 0), self._last.get(k, 0)))

    def to_state(self) -> dict[str, Any]:
        return {"policy": self.name, "counts": dict(self._counts)}

    def load_state(self, state: dict[str, Any]) -> None:
        counts = state.get("counts") if isinstance(state, dict) else None
        if isinstance(counts, dict):
            self._counts = {
                str(k): int(v) for k, v in counts.items() if isinstance(v, int) and v > 0
            }
