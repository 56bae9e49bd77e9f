"""The contract between the cold pool's cache and an eviction policy.

The cache owns the facts (what is resident, its bytes, what is in flight or
pinned) and the bounds; a policy only keeps its own bookkeeping of accesses
and, when asked, names the next victim among the candidates the cache offers.
A model that a request needs is always loaded (a serving cache cannot turn a
request away), so "admission" shows up as a choice of victim, never a refusal.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any


class EvictionPolicy(ABC):
    name: str = ""

    @abstractmethod
    def record_access(self, key: str, now: float, hit: bool) -> None:
        """A request for `key` arrived (hit: it was resident)."""

    @abstractmethod
    def on_insert(self, key: str, size_bytes: int, load_cost_s: float, now: float) -> None:
        """`key` became resident."""

    @abstractmethod
    def on_remove(self, key: str) -> None:
        """`key` is no longer resident (evicted, deleted from the store, unloaded by hand)."""

    @abstractmethod
    def choose_victim(self, candidates: Sequence[str], incoming: str | None) -> str | None:
        """The resident to evict next among `candidates` (never in flight, never pinned).

        `incoming` is the key being made room for, if any. None only if `candidates` is empty.
        """

    def to_state(self) -> dict[str, Any]:
        """A small JSON-able snapshot, saved in the cache folder across restarts."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore a snapshot written by `to_state` (ignore what does not fit)."""
        return None


_REGISTRY: dict[str, Callable[..., EvictionPolicy]] = {}


def register(name: str) -> Callable[[Callable[..., EvictionPolicy]], Callable[..., EvictionPolicy]]:
    def deco(factory: Callable[..., EvictionPolicy]) -> Callable[..., EvictionPolicy]:
        _REGISTRY[name] = factory
        return factory

    return deco


def available() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def make_policy(name: str, capacity: int, **options: Any) -> EvictionPolicy:
    """A fresh policy by name; `capacity` is the slot count it may size its state by."""
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown eviction policy {name!r}; choose one of {available()}") from None
    return factory(capacity=capacity, **options)


def _load_builtin() -> None:
    from pools.eviction import lfu, lru, tinylfu, weighted  # noqa: F401  (they register themselves)
