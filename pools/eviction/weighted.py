"""W-TinyLFU variants that weigh a model's frequency by what losing it costs.

- `tinylfu-cost`: frequency x load seconds, so a slow-to-load model is not
  evicted to keep a cheap one. Lowers the total load time spent on misses (the
  seconds requests wait) at the price of some hit ratio. `per_byte=True`
  divides by size, for byte-bounded caches.
- `tinylfu-size`: frequency / size, for caches bounded by bytes: several small
  models are worth more hits than one big one (GDSF's insight). Raises the hit
  ratio under a byte bound, but spends more load time (big models are the slow
  ones) and is wrong under a slot bound alone, where size does not matter.
"""

from __future__ import annotations

from typing import Any

from pools.eviction.base import register
from pools.eviction.tinylfu import WTinyLFU


@register("tinylfu-cost")
class CostAwareTinyLFU(WTinyLFU):
    name = "tinylfu-cost"

    def __init__(self, capacity: int = 0, per_byte: bool = False, **options: Any) -> None:
        # Cost multiplies the sketch's noise on rare models, so cost only settles
        # the window-vs-main duel; the main area's own victim stays its LRU one.
        options.setdefault("main_victim", "lru")
        super().__init__(capacity=capacity, **options)
        self.per_byte = per_byte

    def value(self, key: str) -> float:
        size, cost = self._cost.get(key, (0, 0.0))
        worth = self.frequency(key) * max(cost, 1e-3)
        return worth / max(size, 1) if self.per_byte else worth


@register("tinylfu-size")
class SizeAwareTinyLFU(WTinyLFU):
    name = "tinylfu-size"

    def value(self, key: str) -> float:
        size, _ = self._cost.get(key, (0, 0.0))
        return self.frequency(key) / max(size, 1)
