"""Property tests: bounds hold, non-candidates are never chosen, runs are deterministic."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from pools.eviction import EvictionPolicy, available, make_policy
from pools.eviction.belady import BeladyOracle
from pools.eviction.simulate import simulate
from pools.eviction.traces import ModelSpec

KEYS = [f"m{i}" for i in range(12)]
traces = st.lists(st.sampled_from(KEYS), min_size=1, max_size=120)
sizes = st.dictionaries(st.sampled_from(KEYS), st.integers(1, 50), min_size=len(KEYS))
policy_names = st.sampled_from(available())


class Recording(EvictionPolicy):
    """Passes every call through and remembers the candidates offered and the victims named."""

    def __init__(self, inner: EvictionPolicy) -> None:
        self.inner = inner
        self.name = inner.name
        self.victims: list[str] = []
        self.offers: list[tuple[str, ...]] = []

    def record_access(self, key: str, now: float, hit: bool) -> None:
        self.inner.record_access(key, now, hit)

    def on_insert(self, key: str, size_bytes: int, load_cost_s: float, now: float) -> None:
        self.inner.on_insert(key, size_bytes, load_cost_s, now)

    def on_remove(self, key: str) -> None:
        self.inner.on_remove(key)

    def choose_victim(self, candidates: Sequence[str], incoming: str | None) -> str | None:
        victim = self.inner.choose_victim(candidates, incoming)
        self.offers.append(tuple(candidates))
        if victim is not None:
            self.victims.append(victim)
        return victim


@settings(max_examples=150, deadline=None)
@given(name=policy_names, requests=traces, slots=st.integers(1, 6), sizes=sizes, data=st.data())
def test_bounds_never_exceeded_and_pinned_models_never_evicted(
    name: str, requests: list[str], slots: int, sizes: dict[str, int], data: st.DataObject
) -> None:
    catalogue = {k: ModelSpec(size_bytes=v, load_cost_s=v / 10) for k, v in sizes.items()}
    pinned = data.draw(st.sets(st.sampled_from(KEYS), max_size=slots - 1), label="pinned")
    pinned_bytes = sum(catalogue[k].size_bytes for k in pinned)
    max_bytes = data.draw(st.integers(50 + pinned_bytes, 50 + pinned_bytes + 200), label="bytes")
    policy = Recording(make_policy(name, slots))
    marks = range(len(requests) + 1)
    result = simulate(policy, requests, slots, catalogue, max_bytes, pinned, marks)

    assert result.peak_models <= slots
    assert result.peak_bytes <= max_bytes
    assert not set(policy.victims) & pinned
    for residents in result.residents_at.values():
        assert len(residents) <= slots
        assert sum(catalogue[k].size_bytes for k in residents) <= max_bytes
    # the requested model is always admitted: it is resident right after its request
    for index, key in enumerate(requests):
        assert key in result.residents_at[index + 1]
    assert result.hits + result.misses == len(requests)


ops = st.lists(
    st.tuples(st.sampled_from(["access", "insert", "remove"]), st.sampled_from(KEYS)),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(name=policy_names, script=ops, data=st.data())
def test_the_victim_is_always_one_of_the_candidates(
    name: str, script: list[tuple[str, str]], data: st.DataObject
) -> None:
    # Driven directly (not through the simulator), including calls a real cache may
    # make in odd orders: remove of an unknown key, insert of a resident one.
    policy = make_policy(name, 4)
    resident: list[str] = []
    for step, (op, key) in enumerate(script):
        if op == "access":
            policy.record_access(key, float(step), key in resident)
        elif op == "insert":
            policy.on_insert(key, 1 + step % 7, 0.1 * (step % 5), float(step))
            if key not in resident:
                resident.append(key)
        else:
            policy.on_remove(key)
            if key in resident:
                resident.remove(key)
        # in flight or pinned models are simply left out of the candidates
        candidates = data.draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=6))
        victim = policy.choose_victim(candidates, key)
        if candidates:
            assert victim in candidates
        else:
            assert victim is None


@settings(max_examples=60, deadline=None)
@given(name=policy_names, requests=traces, slots=st.integers(1, 5))
def test_runs_are_deterministic(name: str, requests: list[str], slots: int) -> None:
    runs = []
    for _ in range(2):
        policy = Recording(make_policy(name, slots))
        result = simulate(policy, requests, slots, checkpoints=[len(requests)])
        runs.append((policy.victims, result.hits, result.residents_at, policy.inner.to_state()))
    assert runs[0] == runs[1]


@settings(max_examples=100, deadline=None)
@given(name=policy_names, requests=traces, slots=st.integers(1, 5))
def test_no_policy_beats_belady_with_equal_sizes(
    name: str, requests: list[str], slots: int
) -> None:
    best = simulate(BeladyOracle(requests), requests, slots).hits
    assert simulate(make_policy(name, slots), requests, slots).hits <= best
