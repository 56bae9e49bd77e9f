"""The A/B split (pure): buckets 0..99 from a stable hash, variants by cumulative weight."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence

from policies.experiments import ExperimentSpec, Variant

BUCKETS = 100


def sticky_bucket(experiment: str, key: str) -> int:
    """The bucket for a sticky key: the same on every router and every restart
    (blake2b, not Python's per-process salted hash()). Salted by the experiment so
    one user does not land in the first variant of every experiment."""
    digest = hashlib.blake2b(f"{experiment}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def random_bucket(rng: random.Random | None = None) -> int:
    return (rng or random).randrange(BUCKETS)


def pick(weights: Sequence[int], bucket: int) -> int:
    """The variant owning `bucket`: variant i holds buckets [sum(w[:i]), sum(w[:i+1])).
    Weights sum to 100; a zero-weight variant never wins."""
    edge = 0
    for index, weight in enumerate(weights):
        edge += weight
        if bucket < edge:
            return index
    # Only reachable if weights sum below 100: the last variant with weight takes the rest.
    for index in range(len(weights) - 1, -1, -1):
        if weights[index] > 0:
            return index
    return len(weights) - 1


def shadow_hit(percent: float, draw: float) -> bool:
    """Mirror this request? `draw` is uniform in [0, 1)."""
    return draw * 100.0 < percent


def pick_variant(spec: ExperimentSpec, sticky_key: str | None,
                 rng: random.Random | None = None) -> Variant:
    """The variant serving one request: by the sticky key's hash when there is one."""
    bucket = sticky_bucket(spec.name, sticky_key) if sticky_key else random_bucket(rng)
    return spec.variants[pick([v.weight for v in spec.variants], bucket)]


def choose_variant(spec: ExperimentSpec, headers: Mapping[str, str], default_header: str,
                   rng: random.Random | None = None) -> Variant:
    """`pick_variant` keyed by the experiment's sticky header (or the default one)."""
    return pick_variant(spec, headers.get(spec.sticky_header or default_header), rng)
