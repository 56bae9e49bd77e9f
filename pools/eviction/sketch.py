"""A count-min frequency sketch with periodic halving (TinyLFU's popularity estimate).

Counters are small and saturate at `cap`; after `sample_size` increments every
counter is halved, so old popularity fades and a shifted workload is noticed.
Hashing uses blake2b, not Python's per-process salted `hash()`, so a snapshot
written by one process means the same thing to the next one.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from functools import lru_cache
from typing import Any

STATE_VERSION = 1
_INDEX_CACHE = 1 << 16


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


@lru_cache(maxsize=1 << 12)
def _hashes(key: str, depth: int) -> tuple[int, ...]:
    digest = hashlib.blake2b(key.encode(), digest_size=4 * depth, person=b"tierserve-cms").digest()
    return tuple(int.from_bytes(digest[4 * i : 4 * i + 4], "little") for i in range(depth))


class CountMinSketch:
    def __init__(
        self,
        width: int = 1024,
        depth: int = 4,
        cap: int = 15,
        sample_size: int = 10_000,
        conservative: bool = True,
    ) -> None:
        if not 1 <= cap <= 255:
            raise ValueError("cap must be between 1 and 255 (one byte per counter)")
        if depth < 1 or width < 1 or sample_size < 1:
            raise ValueError("width, depth and sample_size must be positive")
        self.width = _next_pow2(width)
        self.depth = depth
        self.cap = cap
        self.sample_size = sample_size
        # Conservative update raises only the rows at the current minimum, which
        # keeps collisions from inflating rare keys as much.
        self.conservative = conservative
        self.additions = 0
        self.halvings = 0
        self._mask = self.width - 1
        self._table = bytearray(self.width * self.depth)
        self._index: dict[str, tuple[int, ...]] = {}  # key -> its counter positions

    @classmethod
    def for_capacity(cls, capacity: int, **options: Any) -> CountMinSketch:
        """Sized for a cache of `capacity` entries.

        The halving period scales with the capacity so that a model at the edge
        of the cache (rank ~capacity in a Zipf(1) over ~1,000 models) collects a
        few dozen counts per period: enough to rank it against its neighbours.
        TinyLFU's usual 10 x capacity leaves it one or two counts, which costs
        ~4 points of hit ratio on stationary Zipf (see docs/eviction.md).
        """
        width = options.pop("width", max(1024, 4 * capacity))
        sample_size = options.pop("sample_size", max(1000, 300 * capacity))
        options.setdefault("cap", 63)
        return cls(width=width, sample_size=sample_size, **options)

    def _slots(self, key: str) -> tuple[int, ...]:
        slots = self._index.get(key)
        if slots is None:
            if len(self._index) >= _INDEX_CACHE:
                self._index.clear()
            hashes = _hashes(key, self.depth)
            slots = tuple(row * self.width + (h & self._mask) for row, h in enumerate(hashes))
            self._index[key] = slots
        return slots

    def estimate(self, key: str) -> int:
        return min(map(self._table.__getitem__, self._slots(key)))

    def increment(self, key: str) -> None:
        table = self._table
        slots = self._slots(key)
        low = min(table[i] for i in slots)
        if low < self.cap:
            for i in slots:
                if not self.conservative or table[i] == low:
                    table[i] = min(self.cap, table[i] + 1)
        self.additions += 1
        if self.additions >= self.sample_size:
            self.halve()

    def halve(self) -> None:
        self._table = bytearray(b >> 1 for b in self._table)
        self.additions //= 2
        self.halvings += 1

    def to_state(self) -> dict[str, Any]:
        packed = base64.b64encode(zlib.compress(bytes(self._table), 9)).decode("ascii")
        return {
            "version": STATE_VERSION,
            "width": self.width,
            "depth": self.depth,
            "cap": self.cap,
            "sample_size": self.sample_size,
            "additions": self.additions,
            "counters": packed,
        }

    def load_state(self, state: dict[str, Any]) -> bool:
        """Take the counters of a snapshot with the same shape; False (and no change) otherwise."""
        try:
            if (state["version"], state["width"], state["depth"]) != (
                STATE_VERSION,
                self.width,
                self.depth,
            ):
                return False
            table = bytearray(zlib.decompress(base64.b64decode(state["counters"])))
            additions = int(state["additions"])
        except (KeyError, TypeError, ValueError, zlib.error):
            return False
        if len(table) != self.width * self.depth:
            return False
        self._table = bytearray(min(b, self.cap) for b in table)
        self.additions = max(0, min(additions, self.sample_size - 1))
        return True
