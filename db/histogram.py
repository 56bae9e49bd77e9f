"""Fixed log-spaced latency buckets: pure arithmetic shared by the router and the db.

Bucket i (0 <= i < N_BUCKETS - 1) holds latencies below BOUNDS[i] seconds and at or
above the previous bound; the last bucket holds everything above the last bound.
Bounds grow by sqrt(2) from 0.1 ms, so a percentile read back from the counts is
within about 19 % of the true value, from 0.1 ms up to about 100 s.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

FIRST_BOUND_S = 0.0001
GROWTH = math.sqrt(2.0)
N_BUCKETS = 42
BOUNDS: tuple[float, ...] = tuple(FIRST_BOUND_S * GROWTH**i for i in range(N_BUCKETS - 1))


def bucket_of(latency_s: float) -> int:
    """The bucket index for one latency in seconds."""
    return bisect.bisect_right(BOUNDS, max(0.0, latency_s))


def empty() -> list[int]:
    return [0] * N_BUCKETS


def merge_into(target: list[int], other: Sequence[int]) -> None:
    for i, value in enumerate(other):
        target[i] += value


def _representative(index: int) -> float:
    """A latency standing for bucket `index`: the geometric middle of its bounds."""
    if index == 0:
        return BOUNDS[0] / 2
    if index >= len(BOUNDS):
        return BOUNDS[-1] * GROWTH
    return math.sqrt(BOUNDS[index - 1] * BOUNDS[index])


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The q-th percentile (0 < q <= 100) in seconds from bucket counts; None when empty."""
    total = sum(counts)
    if total == 0:
        return None
    rank = math.ceil(total * q / 100.0)
    seen = 0
    for index, value in enumerate(counts):
        seen += value
        if seen >= max(rank, 1):
            return _representative(index)
    return _representative(len(counts) - 1)
