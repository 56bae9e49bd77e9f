"""W-TinyLFU: a small recency window in front of a frequency-guarded main area.

A newly loaded model enters the window (at least 1 % of the slots, at least
one). When room is needed, the window's least recent model duels the main
area's weakest one (its least frequent by default; with main_victim="lru",
probation's least recent, else protected's): the lower estimated frequency
goes, equal frequencies evict the less recent. A model hit while on probation
moves to the protected segment (80 % of main). One-off models thus pass through
the window and leave without pushing out models that are requested again and
again, which plain LRU cannot do. The window grows while a shadow LRU would do
better (pools.eviction.adapt), so a fast-moving popular set is handled as LRU
handles it. `choose_victim` changes nothing: the cold pool may ask several
times before it evicts, or not evict at all.

Variants that weigh frequency by load time or size: pools.eviction.weighted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from pools.eviction.adapt import WindowTuner
from pools.eviction.base import EvictionPolicy, register
from pools.eviction.sketch import CountMinSketch

STATE_VERSION = 1


@register("tinylfu")
class WTinyLFU(EvictionPolicy):
    name = "tinylfu"

    def __init__(
        self,
        capacity: int = 0,
        window_fraction: float = 0.01,
        protected_fraction: float = 0.8,
        main_victim: str = "lfu",
        adaptive: bool = True,
        adapt_period: int | None = None,
        adapt_step: int | None = None,
        adapt_margin: float = 0.01,
        **sketch_options: Any,
    ) -> None:
        if not 0.0 <= window_fraction < 1.0 or not 0.0 <= protected_fraction <= 1.0:
            raise ValueError("window_fraction must be in [0, 1) and protected_fraction in [0, 1]")
        if main_victim not in ("lru", "lfu"):
            raise ValueError("main_victim must be 'lru' or 'lfu'")
        self.main_victim = main_victim
        capacity = max(1, int(capacity))
        self.capacity = capacity
        self.protected_fraction = protected_fraction
        self.window_cap = max(1, round(capacity * window_fraction))
        self.protected_cap = max(0, round((capacity - self.window_cap) * protected_fraction))
        self.tuner = (
            WindowTuner(capacity, self.window_cap, adapt_period, adapt_step, adapt_margin)
            if adaptive
            else None
        )
        self.sketch = CountMinSketch.for_capacity(capacity, **sketch_options)
        # least recent first in each segment
        self._window: OrderedDict[str, None] = OrderedDict()
        self._probation: OrderedDict[str, None] = OrderedDict()
        self._protected: OrderedDict[str, None] = OrderedDict()
        self._tick = 0
        self._last: dict[str, int] = {}  # resident -> tick of its last use (recency tie-break)
        self._cost: dict[str, tuple[int, float]] = {}  # resident -> (size_bytes, load_cost_s)
        # Residents' estimates, dropped when the key is counted again or the sketch
        # halves; other keys' collisions in between are ignored (a small staleness
        # that keeps a victim choice at dict lookups instead of sketch reads).
        self._freqs: dict[str, int] = {}
        self._freqs_epoch = 0

    # -- the contract -------------------------------------------------------

    def record_access(self, key: str, now: float, hit: bool) -> None:
        self.sketch.increment(key)
        self._freqs.pop(key, None)
        if self.tuner is not None:
            window = self.tuner.observe(key, hit)
            if window is not None:
                self._resize(window)
        self._tick += 1
        if key in self._window:
            self._window.move_to_end(key)
        elif key in self._probation:
            del self._probation[key]
            self._protected[key] = None
            self._demote_overflow()
        elif key in self._protected:
            self._protected.move_to_end(key)
        else:
            return  # not resident (a miss, or a model the cache never told us about)
        self._last[key] = self._tick

    def on_insert(self, key: str, size_bytes: int, load_cost_s: float, now: float) -> None:
        self._forget(key)
        self._tick += 1
        self._last[key] = self._tick
        self._cost[key] = (max(0, int(size_bytes)), max(0.0, float(load_cost_s)))
        self._window[key] = None
        # the window's oldest survived its duel (or there was room): on to probation
        self._shrink_window()

    def on_remove(self, key: str) -> None:
        self._forget(key)

    def choose_victim(self, candidates: Sequence[str], incoming: str | None) -> str | None:
        if not candidates:
            return None
        allowed = set(candidates)
        unknown = [k for k in candidates if k not in self._last]
        if unknown:
            # nothing recorded about these: they are the cheapest to lose
            return min(unknown, key=self.value)  # min() keeps the first of equals
        window_victim = _first_in(self._window, allowed)
        main_victim = self._main_victim(allowed)
        if window_victim is None or main_victim is None:
            return window_victim or main_victim
        if len(self._window) < self.window_cap:
            return main_victim  # the newcomer fits in the window: nobody leaves it
        return self._duel(window_victim, main_victim)

    def to_state(self) -> dict[str, Any]:
        return {
            "policy": self.name,
            "version": STATE_VERSION,
            "sketch": self.sketch.to_state(),
            "window": self.window_cap,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        # Only the frequencies carry over: what is resident is the cache's to say
        # (it calls on_insert for what it finds on start).
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            return
        sketch_state = state.get("sketch")
        if isinstance(sketch_state, dict) and self.sketch.load_state(sketch_state):
            self._freqs.clear()
        window = state.get("window")
        if self.tuner is not None and isinstance(window, int):
            self.tuner.window = max(self.tuner.min_window, min(window, self.tuner.max_window))
            self._resize(self.tuner.window)

    # -- decisions ----------------------------------------------------------

    def frequency(self, key: str) -> int:
        """The sketch's estimate of how often `key` was requested lately."""
        if self._freqs_epoch != self.sketch.halvings:
            self._freqs.clear()
            self._freqs_epoch = self.sketch.halvings
        freq = self._freqs.get(key)
        if freq is None:
            freq = self.sketch.estimate(key)
            if key in self._last:
                self._freqs[key] = freq
        return freq

    def value(self, key: str) -> float:
        """What keeping `key` is worth; the lower duelist is evicted."""
        return float(self.frequency(key))

    def _main_victim(self, allowed: set[str]) -> str | None:
        if self.main_victim == "lru":
            return _first_in(self._probation, allowed) or _first_in(self._protected, allowed)
        main = [k for k in (*self._probation, *self._protected) if k in allowed]
        if not main:
            return None
        return min(main, key=lambda k: (self.value(k), self._last[k]))

    def _duel(self, window_victim: str, main_victim: str) -> str:
        w, m = self.value(window_victim), self.value(main_victim)
        if w != m:
            return window_victim if w < m else main_victim
        return min((window_victim, main_victim), key=lambda k: self._last[k])

    # -- bookkeeping --------------------------------------------------------

    def _resize(self, window: int) -> None:
        # A smaller window hands its oldest to probation now; a larger one fills
        # up as main victims go while the window has room.
        self.window_cap = window
        self.protected_cap = max(0, round((self.capacity - window) * self.protected_fraction))
        self._shrink_window()
        self._demote_overflow()

    def _shrink_window(self) -> None:
        while len(self._window) > self.window_cap:
            old, _ = self._window.popitem(last=False)
            self._probation[old] = None

    def _demote_overflow(self) -> None:
        while len(self._protected) > self.protected_cap:
            old, _ = self._protected.popitem(last=False)
            self._probation[old] = None

    def _forget(self, key: str) -> None:
        self._window.pop(key, None)
        self._probation.pop(key, None)
        self._protected.pop(key, None)
        self._last.pop(key, None)
        self._cost.pop(key, None)
        self._freqs.pop(key, None)

    def segments(self) -> dict[str, list[str]]:
        """Residents per segment, least recent first (for tests and the admin listing)."""
        return {
            "window": list(self._window),
            "probation": list(self._probation),
            "protected": list(self._protected),
        }


def _first_in(order: OrderedDict[str, None], allowed: set[str]) -> str | None:
    for key in order:
        if key in allowed:
            return key
    return None
