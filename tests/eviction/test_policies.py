"""Each policy on hand-made traces whose right answer is known."""

from __future__ import annotations

import pytest

from pools.eviction import DEFAULT_POLICY, available, make_policy
from pools.eviction.belady import BeladyOracle
from pools.eviction.simulate import simulate
from pools.eviction.tinylfu import WTinyLFU
from pools.eviction.traces import ModelSpec

FREQUENCY_AWARE = ["tinylfu", "tinylfu-cost", "lfu"]


def residents_after(policy_name: str, requests: list[str], slots: int, **options: object) -> set:
    policy = make_policy(policy_name, slots, **options)
    result = simulate(policy, requests, slots, checkpoints=[len(requests)])
    return set(result.residents_at[len(requests)])


def test_registry_lists_every_policy_and_the_default_is_one_of_them() -> None:
    assert {"lru", "lfu", "tinylfu", "tinylfu-cost", "tinylfu-size"} <= set(available())
    assert DEFAULT_POLICY in available()


def test_unknown_policy_name_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown eviction policy 'mru'"):
        make_policy("mru", 10)


@pytest.mark.parametrize("name", FREQUENCY_AWARE)
def test_a_scan_of_one_offs_does_not_evict_a_model_requested_100_times(name: str) -> None:
    requests = ["hot"] * 100 + [f"once-{i}" for i in range(200)]
    assert "hot" in residents_after(name, requests, slots=4)


def test_lru_is_flushed_by_the_same_scan() -> None:
    requests = ["hot"] * 100 + [f"once-{i}" for i in range(200)]
    assert "hot" not in residents_after("lru", requests, slots=4)


@pytest.mark.parametrize("name", ["lru", *FREQUENCY_AWARE])
def test_with_equal_frequency_the_least_recent_goes(name: str) -> None:
    assert residents_after(name, ["a", "b", "c", "d"], slots=3) == {"b", "c", "d"}
    # a and c were requested twice each, b three times: a is the less recent of the two
    requests = ["a", "b", "c", "a", "b", "c", "b", "d"]
    assert residents_after(name, requests, slots=3) == {"b", "c", "d"}


@pytest.mark.parametrize("name", FREQUENCY_AWARE)
def test_frequency_beats_recency(name: str) -> None:
    # a is the least recent resident but was requested five times
    requests = ["a"] * 5 + ["b", "c", "d"]
    assert "a" in residents_after(name, requests, slots=3)
    assert "a" not in residents_after("lru", requests, slots=3)


def test_cost_aware_keeps_the_slow_model_that_plain_tinylfu_evicts() -> None:
    catalogue = {
        "slow": ModelSpec(size_bytes=1, load_cost_s=10.0),
        "cheap": ModelSpec(size_bytes=1, load_cost_s=0.1),
        "new": ModelSpec(size_bytes=1, load_cost_s=0.1),
    }
    requests = ["slow"] * 3 + ["cheap"] * 5 + ["new"]
    marks = [len(requests)]
    cost = simulate(make_policy("tinylfu-cost", 2), requests, 2, catalogue, checkpoints=marks)
    plain = simulate(make_policy("tinylfu", 2), requests, 2, catalogue, checkpoints=marks)
    assert set(cost.residents_at[len(requests)]) == {"slow", "new"}
    assert set(plain.residents_at[len(requests)]) == {"cheap", "new"}


def test_cost_aware_per_byte_prefers_keeping_the_small_model() -> None:
    policy = make_policy("tinylfu-cost", 2, per_byte=True)
    for key, size in (("big", 1000), ("small", 10)):
        policy.record_access(key, 0.0, False)
        policy.on_insert(key, size, 1.0, 0.0)
    assert policy.choose_victim(["big", "small"], "new") == "big"


def test_tinylfu_promotes_a_model_hit_on_probation_to_protected() -> None:
    policy = WTinyLFU(capacity=10)
    for key in ("a", "b"):
        policy.record_access(key, 0.0, False)
        policy.on_insert(key, 1, 1.0, 0.0)
    assert policy.segments() == {"window": ["b"], "probation": ["a"], "protected": []}
    policy.record_access("a", 1.0, True)
    assert policy.segments()["protected"] == ["a"]


def test_a_model_the_policy_was_never_told_about_goes_first() -> None:
    policy = make_policy("tinylfu", 10)
    policy.record_access("known", 0.0, False)
    policy.on_insert("known", 1, 1.0, 0.0)
    assert policy.choose_victim(["known", "stranger"], None) == "stranger"


@pytest.mark.parametrize("name", ["lru", *FREQUENCY_AWARE])
def test_no_candidates_means_no_victim(name: str) -> None:
    policy = make_policy(name, 3)
    policy.record_access("a", 0.0, False)
    policy.on_insert("a", 1, 1.0, 0.0)
    assert policy.choose_victim([], "b") is None


def test_belady_on_a_known_trace() -> None:
    # slots 2, a b c a b: Belady evicts b for c (b is needed later than a), then hits a
    requests = ["a", "b", "c", "a", "b"]
    assert simulate(BeladyOracle(requests), requests, 2).hits == 1
    assert simulate(make_policy("lru", 2), requests, 2).hits == 0


def test_belady_refuses_a_different_trace() -> None:
    oracle = BeladyOracle(["a", "b"])
    with pytest.raises(ValueError, match="trace mismatch"):
        oracle.record_access("b", 0.0, False)


def test_size_aware_gives_up_one_big_model_for_small_ones_under_a_byte_bound() -> None:
    catalogue = {
        "big": ModelSpec(size_bytes=60, load_cost_s=1.0),
        "s1": ModelSpec(size_bytes=20, load_cost_s=1.0),
        "s2": ModelSpec(size_bytes=20, load_cost_s=1.0),
        "new": ModelSpec(size_bytes=20, load_cost_s=1.0),
    }
    requests = ["big"] * 4 + ["s1"] * 3 + ["s2"] * 3 + ["new"]
    end = [len(requests)]
    sized = simulate(make_policy("tinylfu-size", 10), requests, 10, catalogue, 100, (), end)
    plain = simulate(make_policy("tinylfu", 10), requests, 10, catalogue, 100, (), end)
    assert set(sized.residents_at[end[0]]) == {"s1", "s2", "new"}  # 3 models kept, not 2
    assert set(plain.residents_at[end[0]]) == {"big", "s2", "new"}  # big is the most frequent
