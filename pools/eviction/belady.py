"""Belady's optimal eviction (evict the model needed farthest in the future).

It knows the whole trace, so it only exists for the simulator: the limit the
real policies are measured against. With equal-size models and a slot bound it
is the optimum for the hit count; under byte bounds it is the usual heuristic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pools.eviction.base import EvictionPolicy


def next_uses(requests: Sequence[str]) -> list[float]:
    """For each position, the position of the next request for the same model (inf if none)."""
    upcoming: dict[str, float] = {}
    out: list[float] = [math.inf] * len(requests)
    for i in range(len(requests) - 1, -1, -1):
        key = requests[i]
        out[i] = upcoming.get(key, math.inf)
        upcoming[key] = i
    return out


class BeladyOracle(EvictionPolicy):
    """Needs the trace up front; counts its own position from the record_access calls."""

    name = "belady"

    def __init__(self, requests: Sequence[str]) -> None:
        self._requests = requests
        self._next_use = next_uses(requests)
        self._pos = -1
        self._next: dict[str, float] = {}  # resident or just requested -> its next use

    def record_access(self, key: str, now: float, hit: bool) -> None:
        self._pos += 1
        if self._requests[self._pos] != key:
            raise ValueError(f"trace mismatch at {self._pos}: {key!r}")
        self._next[key] = self._next_use[self._pos]

    def on_insert(self, key: str, size_bytes: int, load_cost_s: float, now: float) -> None:
        self._next.setdefault(key, math.inf)

    def on_remove(self, key: str) -> None:
        self._next.pop(key, None)

    def choose_victim(self, candidates: Sequence[str], incoming: str | None) -> str | None:
        if not candidates:
            return None
        # max() keeps the first of equals: deterministic for never-again models
        return max(candidates, key=lambda k: self._next.get(k, math.inf))
