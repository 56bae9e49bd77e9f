"""The cold pool's cache bookkeeping: pure state, no I/O, no clock, no asyncio.

One entry per model version (a servable, in TF Serving's words) with its place
in two tiers kept under separate bounds:

- disk: ABSENT -> DOWNLOADING -> PRESENT -> DELETING -> ABSENT
- memory: ABSENT -> RESERVED -> LOADING -> LOADED -> UNLOADING -> ABSENT

Every state but ABSENT counts toward its tier's bounds, so room is taken when
a download or load is *planned*, not when it ends, and a bound is never
exceeded. One exception: an UNLOADING model no longer counts in memory. It has
left the model server's desired list, so every reload from then on (the one
that loads its successor included) leaves it out, and the server unloads what
a reload leaves out before it loads what the reload adds: the successor and
its victim share one reload instead of waiting for each other.

`plan_room` answers "may this start now, and if not, whom to evict"; the
choice among the evictable is the EvictionPolicy's. An entry with a
request in flight or a pipeline working on it (`busy`) is never a victim.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from pools.eviction.base import EvictionPolicy

Key = tuple[str, int]  # (model, version)


def key_str(key: Key) -> str:
    """The policy's key: model names never hold '/', so this is unambiguous."""
    return f"{key[0]}/{key[1]}"


class Tier(StrEnum):
    MEMORY = "memory"
    DISK = "disk"


class Mem(StrEnum):
    ABSENT = "absent"
    RESERVED = "reserved"  # room taken; files still downloading
    LOADING = "loading"  # in the model server's desired list
    LOADED = "loaded"
    UNLOADING = "unloading"


class Disk(StrEnum):
    ABSENT = "absent"
    DOWNLOADING = "downloading"
    PRESENT = "present"
    DELETING = "deleting"


@dataclass(frozen=True)
class Bounds:
    models: int | None = None
    bytes: int | None = None

    def fits(self, count: int, nbytes: int) -> bool:
        return ((self.models is None or count <= self.models)
                and (self.bytes is None or nbytes <= self.bytes))


@dataclass
class Failure:
    code: str  # TF Serving error code name, e.g. "INVALID_ARGUMENT"
    message: str
    until: float


@dataclass
class Entry:
    model: str
    version: int
    disk: Disk = Disk.ABSENT
    mem: Mem = Mem.ABSENT
    size_bytes: int = 0
    in_flight: int = 0
    busy: int = 0
    last_used: float | None = None
    hits: int = 0
    misses: int = 0
    downloads: int = 0
    loads: int = 0
    evictions: int = 0
    download_time_s: float | None = None
    load_time_s: float | None = None
    failure: Failure | None = None

    @property
    def key(self) -> Key:
        return (self.model, self.version)

    def in_tier(self, tier: Tier) -> bool:
        if tier is Tier.MEMORY:
            return self.mem not in (Mem.ABSENT, Mem.UNLOADING)
        return self.disk is not Disk.ABSENT

    def freeing(self, tier: Tier) -> bool:
        return self.mem is Mem.UNLOADING if tier is Tier.MEMORY else self.disk is Disk.DELETING

    def pinned(self) -> bool:
        return self.in_flight > 0 or self.busy > 0


@dataclass(frozen=True)
class Plan:
    """What `plan_room` decided. Neither `fits` nor victims nor `never`: wait for a change."""

    fits: bool = False
    victims: tuple[Key, ...] = ()
    never: str | None = None  # the entry is larger than the bound itself


@dataclass
class Usage:
    count: int = 0
    bytes: int = 0


class CacheStateError(RuntimeError):
    """A transition from the wrong state: a bug in the caller, never a user error."""


@dataclass
class Cache:
    memory_bounds: Bounds
    disk_bounds: Bounds
    memory_policy: EvictionPolicy
    disk_policy: EvictionPolicy
    entries: dict[Key, Entry] = field(default_factory=dict)
    evictions: dict[Tier, int] = field(default_factory=lambda: {t: 0 for t in Tier})

    # -- lookup ---------------------------------------------------------------------------

    def get(self, key: Key) -> Entry | None:
        return self.entries.get(key)

    def entry(self, key: Key) -> Entry:
        found = self.entries.get(key)
        if found is None:
            found = self.entries[key] = Entry(*key)
        return found

    def versions(self, model: str) -> list[Entry]:
        return sorted((e for e in self.entries.values() if e.model == model),
                      key=lambda e: e.version)

    def resident(self, tier: Tier) -> Iterator[Entry]:
        return (e for e in self.entries.values() if e.in_tier(tier))

    def usage(self, tier: Tier) -> Usage:
        usage = Usage()
        for e in self.resident(tier):
            usage.count += 1
            usage.bytes += e.size_bytes
        return usage

    def bounds(self, tier: Tier) -> Bounds:
        return self.memory_bounds if tier is Tier.MEMORY else self.disk_bounds

    def policy(self, tier: Tier) -> EvictionPolicy:
        return self.memory_policy if tier is Tier.MEMORY else self.disk_policy

    # -- requests -------------------------------------------------------------------------

    def begin_request(self, key: Key, now: float) -> bool:
        """A request for `key` starts; True on a hit (loaded). It pins the entry until it ends."""
        e = self.entry(key)
        hit = e.mem is Mem.LOADED
        e.in_flight += 1
        e.last_used = now
        if hit:
            e.hits += 1
        else:
            e.misses += 1
        self.memory_policy.record_access(key_str(key), now, hit)
        self.disk_policy.record_access(key_str(key), now, e.disk is Disk.PRESENT)
        return hit

    def end_request(self, key: Key) -> None:
        e = self._expect(key)
        if e.in_flight <= 0:
            raise CacheStateError(f"{key_str(key)}: request ended twice")
        e.in_flight -= 1

    def hold(self, key: Key) -> None:
        """A pipeline (load, swap, delete) works on `key`: keep it out of the victims."""
        self.entry(key).busy += 1

    def release(self, key: Key) -> None:
        e = self._expect(key)
        if e.busy <= 0:
            raise CacheStateError(f"{key_str(key)}: released twice")
        e.busy -= 1

    # -- failures -------------------------------------------------------------------------

    def record_failure(self, key: Key, code: str, message: str, now: float, ttl: float) -> None:
        self.entry(key).failure = Failure(code, message, now + ttl)

    def failure(self, key: Key, now: float) -> Failure | None:
        """The remembered failure of `key` if it has not expired (an expired one is dropped)."""
        e = self.entries.get(key)
        if e is None or e.failure is None:
            return None
        if now >= e.failure.until:
            e.failure = None
            return None
        return e.failure

    def clear_failure(self, key: Key) -> None:
        if key in self.entries:
            self.entries[key].failure = None

    # -- room -----------------------------------------------------------------------------

    def plan_room(self, tier: Tier, key: Key, size_bytes: int) -> Plan:
        """May `key` (of `size_bytes`) enter `tier` now? If not, whom to evict, or wait."""
        bounds = self.bounds(tier)
        if not bounds.fits(1, size_bytes):
            return Plan(never=f"{key_str(key)} needs {size_bytes} bytes; the {tier} bound is "
                              f"{bounds.models} models, {bounds.bytes} bytes")
        usage = self.usage(tier)
        if bounds.fits(usage.count + 1, usage.bytes + size_bytes):
            return Plan(fits=True)
        count, nbytes = usage.count + 1, usage.bytes + size_bytes
        for e in self.resident(tier):
            if e.freeing(tier):
                count, nbytes = count - 1, nbytes - e.size_bytes
        if bounds.fits(count, nbytes):
            return Plan()  # evictions under way free enough: wait for them
        candidates = {key_str(e.key): e for e in self.evictable(tier) if e.key != key}
        victims: list[Key] = []
        policy = self.policy(tier)
        while candidates and not bounds.fits(count, nbytes):
            name = policy.choose_victim(list(candidates), key_str(key))
            victim = candidates.pop(name) if name in candidates else candidates.popitem()[1]
            victims.append(victim.key)
            count, nbytes = count - 1, nbytes - victim.size_bytes
        if not bounds.fits(count, nbytes):
            return Plan()  # not enough is evictable now: evicting part would only waste it
        return Plan(victims=tuple(victims))

    def evictable(self, tier: Tier) -> list[Entry]:
        if tier is Tier.MEMORY:
            return [e for e in self.entries.values() if e.mem is Mem.LOADED and not e.pinned()]
        # A loaded model keeps its files: only what is out of memory leaves the disk.
        return [e for e in self.entries.values()
                if e.disk is Disk.PRESENT and e.mem is Mem.ABSENT and not e.pinned()]

    # -- disk transitions -----------------------------------------------------------------

    def start_download(self, key: Key, size_bytes: int) -> None:
        e = self._move(key, "disk", Disk.ABSENT, Disk.DOWNLOADING)
        e.size_bytes = size_bytes

    def finish_download(self, key: Key, size_bytes: int, seconds: float, now: float) -> None:
        e = self._move(key, "disk", Disk.DOWNLOADING, Disk.PRESENT)
        e.size_bytes = size_bytes
        e.downloads += 1
        e.download_time_s = seconds
        self.disk_policy.on_insert(key_str(key), size_bytes, seconds, now)

    def abort_download(self, key: Key) -> None:
        self._move(key, "disk", Disk.DOWNLOADING, Disk.ABSENT)

    def found_on_disk(self, key: Key, size_bytes: int, now: float) -> None:
        """An index rebuilt from the cache folder on start."""
        e = self._move(key, "disk", Disk.ABSENT, Disk.PRESENT)
        e.size_bytes = size_bytes
        self.disk_policy.on_insert(key_str(key), size_bytes, 0.0, now)

    def lose_files(self, key: Key) -> None:
        """The files were deleted under the pool: the entry is no longer on disk."""
        e = self._expect(key)
        if e.mem is not Mem.ABSENT:
            raise CacheStateError(f"{key_str(key)}: files lost while in memory ({e.mem})")
        self._move(key, "disk", Disk.PRESENT, Disk.ABSENT)
        self.disk_policy.on_remove(key_str(key))

    def start_delete(self, key: Key, evicted: bool = False) -> None:
        e = self._expect(key)
        if e.mem is not Mem.ABSENT:
            raise CacheStateError(f"{key_str(key)}: deleting files of a model in memory")
        self._move(key, "disk", Disk.PRESENT, Disk.DELETING)
        self.disk_policy.on_remove(key_str(key))
        if evicted:
            self.evictions[Tier.DISK] += 1

    def finish_delete(self, key: Key) -> None:
        self._move(key, "disk", Disk.DELETING, Disk.ABSENT)

    # -- memory transitions ---------------------------------------------------------------

    def reserve_memory(self, key: Key, size_bytes: int) -> None:
        e = self._move(key, "mem", Mem.ABSENT, Mem.RESERVED)
        e.size_bytes = max(e.size_bytes, size_bytes)

    def start_load(self, key: Key) -> None:
        if self._expect(key).disk is not Disk.PRESENT:
            raise CacheStateError(f"{key_str(key)}: loading a model that is not on disk")
        self._move(key, "mem", Mem.RESERVED, Mem.LOADING)

    def finish_load(self, key: Key, seconds: float, now: float) -> None:
        e = self._move(key, "mem", Mem.LOADING, Mem.LOADED)
        e.loads += 1
        e.load_time_s = seconds
        self.memory_policy.on_insert(key_str(key), e.size_bytes, seconds, now)

    def abort_load(self, key: Key) -> None:
        """A reservation or load that failed: the room is free again."""
        e = self._expect(key)
        if e.mem not in (Mem.RESERVED, Mem.LOADING):
            raise CacheStateError(f"{key_str(key)}: abort_load in state {e.mem}")
        e.mem = Mem.ABSENT

    def start_unload(self, key: Key, evicted: bool = False) -> None:
        if self._expect(key).in_flight:
            raise CacheStateError(f"{key_str(key)}: unloading under a running request")
        e = self._move(key, "mem", Mem.LOADED, Mem.UNLOADING)
        self.memory_policy.on_remove(key_str(key))
        if evicted:
            e.evictions += 1
            self.evictions[Tier.MEMORY] += 1

    def finish_unload(self, key: Key) -> None:
        self._move(key, "mem", Mem.UNLOADING, Mem.ABSENT)

    # -- helpers --------------------------------------------------------------------------

    def _expect(self, key: Key) -> Entry:
        e = self.entries.get(key)
        if e is None:
            raise CacheStateError(f"{key_str(key)}: no such entry")
        return e

    def _move(self, key: Key, attr: str, before: Mem | Disk, after: Mem | Disk) -> Entry:
        e = self.entry(key)
        if getattr(e, attr) is not before:
            raise CacheStateError(f"{key_str(key)}: {attr} is {getattr(e, attr)}, not {before}")
        setattr(e, attr, after)
        return e
