"""Pure admission and eviction policies for the cold pool's cache (no I/O)."""

from pools.eviction.base import EvictionPolicy, available, make_policy

# The cold pool's policy unless its config names another. W-TinyLFU won the
# trace benchmark (bench/eviction.py, docs/eviction.md): 0.90 of Belady on
# stationary Zipf(1.0) where LRU reaches 0.70, +4.5 points over LRU on the
# shifting mix, and a scan of one-off models does not flush the popular ones.
DEFAULT_POLICY = "tinylfu"

__all__ = ["DEFAULT_POLICY", "EvictionPolicy", "available", "make_policy"]
