"""Sizing TinyLFU's recency window by comparing it with a shadow LRU.

Frequency wins while popularity is stable; when the popular set moves faster
than the sketch can forget, recency wins. A shadow LRU of the same slot count
(names only) tells which: every `period` requests, if plain LRU would have hit
more than `margin` more often, the window grows by `step`; otherwise it shrinks
back towards its minimum. The policy thus stays within about `margin` of LRU
when LRU is better, and returns to frequency when it is not.
"""

from __future__ import annotations

from collections import OrderedDict


class WindowTuner:
    def __init__(
        self,
        capacity: int,
        min_window: int,
        period: int | None = None,
        step: int | None = None,
        margin: float = 0.01,
    ) -> None:
        self.capacity = max(1, capacity)
        self.min_window = max(1, min(min_window, self.capacity))
        self.max_window = max(self.min_window, self.capacity - 1)
        self.period = period or max(200, 4 * self.capacity)
        self.step = step or max(1, self.capacity // 8)
        self.margin = margin
        self.window = self.min_window
        self._shadow: OrderedDict[str, None] = OrderedDict()
        self._seen = self._ours = self._lru = 0

    def observe(self, key: str, hit: bool) -> int | None:
        """Count one request; the new window size when it changes, else None."""
        if key in self._shadow:
            self._shadow.move_to_end(key)
            self._lru += 1
        else:
            self._shadow[key] = None
            if len(self._shadow) > self.capacity:
                self._shadow.popitem(last=False)
        self._ours += hit
        self._seen += 1
        if self._seen < self.period:
            return None
        lru_ahead = (self._lru - self._ours) / self._seen > self.margin
        self._seen = self._ours = self._lru = 0
        before = self.window
        if lru_ahead:
            self.window = min(self.max_window, self.window + self.step)
        else:
            self.window = max(self.min_window, self.window - self.step)
        return self.window if self.window != before else None
