"""Trace-driven cache simulator: a policy, a trace, the cold pool's bounds.

It calls the policy exactly as the cold pool does: `record_access` on every
request, `choose_victim` among evictable residents until the incoming model
fits the slot and byte bounds, `on_remove` for each victim, `on_insert` once
the model is resident. The requested model is always admitted. Pinned models
are never offered as candidates (the pool's in-flight and pinned models).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from pools.eviction.base import EvictionPolicy
from pools.eviction.traces import ModelSpec

DEFAULT_SPEC = ModelSpec(size_bytes=1, load_cost_s=1.0)


class SimulationError(RuntimeError):
    """The bounds cannot be met (everything left is pinned, or a model alone is too big)."""


@dataclass
class SimResult:
    requests: int = 0
    hits: int = 0
    miss_cost_s: float = 0.0
    miss_bytes: int = 0
    evictions: int = 0
    peak_models: int = 0
    peak_bytes: int = 0
    residents_at: dict[int, tuple[str, ...]] = field(default_factory=dict)

    @property
    def misses(self) -> int:
        return self.requests - self.hits

    @property
    def hit_ratio(self) -> float:
        return self.hits / self.requests if self.requests else 0.0


def simulate(
    policy: EvictionPolicy,
    requests: Sequence[str],
    slots: int,
    catalogue: Mapping[str, ModelSpec] | None = None,
    max_bytes: int | None = None,
    pinned: Collection[str] = (),
    checkpoints: Collection[int] = (),
) -> SimResult:
    """Run `requests` through a cache of `slots` models (and `max_bytes`, if given).

    `checkpoints`: request indexes before which the resident set is recorded.
    """
    if slots < 1:
        raise ValueError("slots must be at least 1")
    specs = catalogue or {}
    pinned_set = frozenset(pinned)
    marks = frozenset(checkpoints)
    resident: dict[str, ModelSpec] = {}  # insertion-ordered: deterministic candidates
    used_bytes = 0
    result = SimResult()

    for index, key in enumerate(requests):
        if index in marks:
            result.residents_at[index] = tuple(resident)
        now = float(index)
        hit = key in resident
        result.requests += 1
        policy.record_access(key, now, hit)
        if hit:
            result.hits += 1
            continue
        spec = specs.get(key, DEFAULT_SPEC)
        result.miss_cost_s += spec.load_cost_s
        result.miss_bytes += spec.size_bytes
        if max_bytes is not None and spec.size_bytes > max_bytes:
            raise SimulationError(f"{key} ({spec.size_bytes} B) is larger than max_bytes")
        while len(resident) >= slots or (
            max_bytes is not None and used_bytes + spec.size_bytes > max_bytes
        ):
            candidates = [k for k in resident if k not in pinned_set]
            victim = policy.choose_victim(candidates, key)
            if victim is None:
                raise SimulationError(f"no evictable model to make room for {key}")
            if victim not in candidates:
                raise SimulationError(f"policy {policy.name} chose non-candidate {victim!r}")
            used_bytes -= resident.pop(victim).size_bytes
            policy.on_remove(victim)
            result.evictions += 1
        resident[key] = spec
        used_bytes += spec.size_bytes
        policy.on_insert(key, spec.size_bytes, spec.load_cost_s, now)
        result.peak_models = max(result.peak_models, len(resident))
        result.peak_bytes = max(result.peak_bytes, used_bytes)

    if len(requests) in marks:
        result.residents_at[len(requests)] = tuple(resident)
    return result
