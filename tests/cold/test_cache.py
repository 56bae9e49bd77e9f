"""Pure bookkeeping of the cold pool's cache: bounds, victims, pins, failures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pools.cold.cache import Bounds, Cache, CacheStateError, Disk, Key, Mem, Tier
from pools.eviction import make_policy

MEM, DISK = Bounds(2), Bounds(4)


def make_cache(mem: Bounds = MEM, disk: Bounds = DISK) -> Cache:
    return Cache(mem, disk, make_policy("lru", 2), make_policy("lru", 4))


def load(cache: Cache, key: Key, size: int = 10, now: float = 0.0) -> None:
    """Walk `key` through the whole miss path (room assumed)."""
    assert cache.plan_room(Tier.MEMORY, key, size).fits
    cache.reserve_memory(key, size)
    if cache.entry(key).disk is not Disk.PRESENT:
        assert cache.plan_room(Tier.DISK, key, size).fits
        cache.start_download(key, size)
        cache.finish_download(key, size, 0.1, now)
    cache.start_load(key)
    cache.finish_load(key, 0.2, now)


def test_miss_path_states_and_counters() -> None:
    cache = make_cache()
    assert cache.begin_request(("a", 1), 1.0) is False
    load(cache, ("a", 1))
    e = cache.entry(("a", 1))
    assert (e.mem, e.disk, e.downloads, e.loads, e.misses) == (Mem.LOADED, Disk.PRESENT, 1, 1, 1)
    assert cache.begin_request(("a", 1), 2.0) is True
    assert e.hits == 1 and e.in_flight == 2 and e.last_used == 2.0
    cache.end_request(("a", 1))
    cache.end_request(("a", 1))
    with pytest.raises(CacheStateError):
        cache.end_request(("a", 1))


def test_room_evicts_least_recently_used_idle_model() -> None:
    cache = make_cache()
    load(cache, ("a", 1), now=1)
    load(cache, ("b", 1), now=2)
    cache.begin_request(("a", 1), 3)  # a is now the most recent
    cache.end_request(("a", 1))
    plan = cache.plan_room(Tier.MEMORY, ("c", 1), 10)
    assert not plan.fits and plan.victims == (("b", 1),)


def test_model_under_request_is_never_a_victim() -> None:
    cache = make_cache()
    load(cache, ("a", 1))
    load(cache, ("b", 1))
    cache.begin_request(("a", 1), 5)
    cache.begin_request(("b", 1), 6)
    plan = cache.plan_room(Tier.MEMORY, ("c", 1), 10)
    assert plan == plan.__class__()  # nothing fits, nothing evictable: wait
    with pytest.raises(CacheStateError):
        cache.start_unload(("a", 1))
    cache.end_request(("b", 1))
    assert cache.plan_room(Tier.MEMORY, ("c", 1), 10).victims == (("b", 1),)


def test_held_entry_is_never_a_victim() -> None:
    cache = make_cache()
    load(cache, ("a", 1))
    load(cache, ("b", 1))
    cache.hold(("a", 1))
    cache.hold(("b", 1))
    assert cache.plan_room(Tier.MEMORY, ("c", 1), 10).victims == ()
    cache.release(("a", 1))
    assert cache.plan_room(Tier.MEMORY, ("c", 1), 10).victims == (("a", 1),)


def test_unloading_frees_memory_at_once_but_deleting_counts_until_finished() -> None:
    cache = make_cache(mem=Bounds(2), disk=Bounds(2))
    load(cache, ("a", 1))
    load(cache, ("b", 1))
    cache.start_unload(("a", 1), evicted=True)
    # Out of the desired list: the next reload (the successor's) leaves it out.
    assert cache.plan_room(Tier.MEMORY, ("c", 1), 10).fits
    assert cache.usage(Tier.MEMORY).count == 1
    assert cache.evictions[Tier.MEMORY] == 1 and cache.entry(("a", 1)).evictions == 1
    assert cache.plan_room(Tier.DISK, ("c", 1), 10).victims == ()  # "a" still unloading
    cache.finish_unload(("a", 1))
    cache.start_delete(("a", 1), evicted=True)
    plan = cache.plan_room(Tier.DISK, ("c", 1), 10)
    assert not plan.fits and plan.victims == ()  # wait for the delete under way
    cache.finish_delete(("a", 1))
    assert cache.plan_room(Tier.DISK, ("c", 1), 10).fits


def test_byte_bound_picks_enough_victims() -> None:
    cache = make_cache(mem=Bounds(None, 100), disk=Bounds(None, 1000))
    for i, size in enumerate((30, 30, 40)):
        load(cache, (f"m{i}", 1), size=size, now=i)
    plan = cache.plan_room(Tier.MEMORY, ("big", 1), 60)
    assert plan.victims == (("m0", 1), ("m1", 1))
    assert cache.plan_room(Tier.MEMORY, ("huge", 1), 101).never


def test_reservation_counts_before_download_finishes() -> None:
    cache = make_cache(mem=Bounds(1), disk=Bounds(1))
    cache.reserve_memory(("a", 1), 10)
    cache.start_download(("a", 1), 10)
    # nothing to evict: a reserved or downloading entry is not resident yet
    assert cache.plan_room(Tier.MEMORY, ("b", 1), 10).victims == ()
    assert cache.plan_room(Tier.DISK, ("b", 1), 10).victims == ()


def test_disk_victims_are_never_loaded() -> None:
    cache = make_cache(mem=Bounds(2), disk=Bounds(2))
    load(cache, ("a", 1))
    load(cache, ("b", 1))
    assert cache.plan_room(Tier.DISK, ("c", 1), 10) == cache.plan_room(Tier.DISK, ("c", 1), 10)
    assert cache.plan_room(Tier.DISK, ("c", 1), 10).victims == ()
    cache.start_unload(("a", 1))
    cache.finish_unload(("a", 1))
    assert cache.plan_room(Tier.DISK, ("c", 1), 10).victims == (("a", 1),)
    cache.start_delete(("a", 1), evicted=True)
    cache.finish_delete(("a", 1))
    assert cache.entry(("a", 1)).disk is Disk.ABSENT and cache.evictions[Tier.DISK] == 1


def test_deleting_files_of_a_loaded_model_is_refused() -> None:
    cache = make_cache()
    load(cache, ("a", 1))
    with pytest.raises(CacheStateError):
        cache.start_delete(("a", 1))


def test_failures_expire() -> None:
    cache = make_cache()
    cache.record_failure(("a", 1), "INTERNAL", "bad model", now=10.0, ttl=5.0)
    failure = cache.failure(("a", 1), 12.0)
    assert failure is not None and failure.message == "bad model"
    assert cache.failure(("a", 1), 15.0) is None
    assert cache.entry(("a", 1)).failure is None


def test_index_rebuild_enters_the_disk_tier() -> None:
    cache = make_cache()
    cache.found_on_disk(("a", 3), 123, 0.0)
    assert cache.usage(Tier.DISK).bytes == 123 and cache.usage(Tier.MEMORY).count == 0
    load(cache, ("a", 3))
    assert cache.entry(("a", 3)).downloads == 0


# -- a random walk over the whole state machine: bounds hold after every step --------------

ops = st.lists(st.tuples(st.sampled_from(["req", "end", "room", "tick"]),
                         st.integers(0, 7), st.integers(1, 40)), max_size=200)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_bounds_hold_and_victims_are_idle(steps: list[tuple[str, int, int]]) -> None:
    cache = make_cache(mem=Bounds(3, 80), disk=Bounds(5, 120))
    sizes: dict[Key, int] = {}
    for t, (op, i, size) in enumerate(steps):
        key = (f"m{i}", 1)
        sizes.setdefault(key, size)
        e = cache.entry(key)
        if op == "req":
            cache.begin_request(key, t)
        elif op == "end" and e.in_flight:
            cache.end_request(key)
        elif op == "room" and e.mem is Mem.ABSENT:
            _try_load(cache, key, sizes[key], t)
        elif op == "tick":  # finish every unload and delete under way
            for other in cache.entries.values():
                if other.mem is Mem.UNLOADING:
                    cache.finish_unload(other.key)
                if other.disk is Disk.DELETING:
                    cache.finish_delete(other.key)
        for tier in Tier:
            usage = cache.usage(tier)
            assert cache.bounds(tier).fits(usage.count, usage.bytes)


def _try_load(cache: Cache, key: Key, size: int, now: float) -> None:
    plan = cache.plan_room(Tier.MEMORY, key, size)
    if plan.never:
        return
    for victim in plan.victims:
        assert not cache.entry(victim).pinned()
        cache.start_unload(victim, evicted=True)  # raises if a request were running
    if not plan.fits:
        return
    cache.reserve_memory(key, size)
    if cache.entry(key).disk is Disk.ABSENT:
        disk_plan = cache.plan_room(Tier.DISK, key, size)
        for victim in disk_plan.victims:
            cache.start_delete(victim, evicted=True)
        if not disk_plan.fits:
            cache.abort_load(key)
            return
        cache.start_download(key, size)
        cache.finish_download(key, size, 0.0, now)
    if cache.entry(key).disk is Disk.PRESENT:
        cache.start_load(key)
        cache.finish_load(key, 0.0, now)
    else:
        cache.abort_load(key)
