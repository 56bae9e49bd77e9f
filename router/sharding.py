"""Which cold shard owns a model: rendezvous (highest-random-weight) hashing on its name.

Pure functions over names. Every router computes the same owner from the same live set
with no coordination: each (shard, model) pair gets a pseudo-random score and the
highest score wins. Adding a shard moves only the models it now wins (about 1/N of
them); a shard leaving moves only its own models, each to the next shard in that
model's ranking. Scores hash the shard's *name*, never its URL, so a shard that comes
back at a new address keeps its models.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def score(shard: str, model: str) -> int:
    """The pair's weight: the first 8 bytes of blake2b over both names (stable across
    processes and Python versions, unlike `hash()`)."""
    # The separator keeps ("ab", "c") and ("a", "bc") apart; names never contain NUL.
    digest = hashlib.blake2b(f"{shard}\0{model}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def ranking(model: str, shards: Iterable[str]) -> list[str]:
    """Every shard, the model's owner first, then where it goes if the owner is gone."""
    # The name breaks a (practically impossible) tie, so the order is total.
    return sorted(set(shards), key=lambda s: (score(s, model), s), reverse=True)


def owner(model: str, shards: Iterable[str]) -> str | None:
    """The shard that serves `model`, or None when there is no shard."""
    best: tuple[int, str] | None = None
    for shard in shards:
        key = (score(shard, model), shard)
        if best is None or key > best:
            best = key
    return None if best is None else best[1]
