"""Pure admission and eviction policies for the cold pool's cache (no I/O)."""

from pools.eviction.base import EvictionPolicy, make_policy

__all__ = ["EvictionPolicy", "make_policy"]
