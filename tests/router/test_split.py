"""The pure A/B split: stable buckets, cumulative weights, shadow draws."""

from __future__ import annotations

import itertools
import random
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from policies.experiments import ExperimentSpec
from router import split


def test_90_10_over_10000_sticky_keys_is_within_300_and_stable() -> None:
    weights = [90, 10]
    arms = [split.pick(weights, split.sticky_bucket("rec", f"user-{i}")) for i in range(10_000)]
    first = arms.count(0)
    assert 8_700 <= first <= 9_300
    again = [split.pick(weights, split.sticky_bucket("rec", f"user-{i}")) for i in range(10_000)]
    assert again == arms


def test_bucket_is_independent_of_process_hash_seed() -> None:
    # Known value: blake2b is the same in every process and on every machine.
    assert split.sticky_bucket("rec", "user-1") == split.sticky_bucket("rec", "user-1")
    assert split.sticky_bucket("rec", "user-1") == 87


def test_experiments_are_salted() -> None:
    a = [split.sticky_bucket("exp-a", str(i)) for i in range(200)]
    b = [split.sticky_bucket("exp-b", str(i)) for i in range(200)]
    assert a != b


def test_pick_edges_and_zero_weights() -> None:
    assert split.pick([90, 10], 0) == 0
    assert split.pick([90, 10], 89) == 0
    assert split.pick([90, 10], 90) == 1
    assert split.pick([90, 10], 99) == 1
    assert {split.pick([0, 100, 0], b) for b in range(100)} == {1}
    assert {split.pick([50, 0, 50], b) for b in range(100)} == {0, 2}


@given(st.lists(st.integers(0, 100), max_size=5))
def test_each_arm_owns_exactly_its_weight_in_buckets(cuts: list[int]) -> None:
    edges = [0, *sorted(cuts), 100]
    weights = [b - a for a, b in itertools.pairwise(edges)]
    owned = Counter(split.pick(weights, b) for b in range(100))
    assert [owned.get(i, 0) for i in range(len(weights))] == weights


def test_random_split_without_a_key_follows_weights() -> None:
    spec = ExperimentSpec.model_validate(
        {"name": "e", "variants": [{"model": "a", "weight": 70}, {"model": "b", "weight": 30}]})
    rng = random.Random(7)
    picks = Counter(split.choose_variant(spec, {}, "X-User-Id", rng).model for _ in range(5000))
    assert 3300 <= picks["a"] <= 3700 and 1300 <= picks["b"] <= 1700


def test_sticky_header_from_spec_wins() -> None:
    spec = ExperimentSpec.model_validate(
        {"name": "e", "sticky_header": "X-Session",
         "variants": [{"model": "a", "weight": 50}, {"model": "b", "weight": 50}]})
    picks = {split.choose_variant(spec, {"X-Session": "s1"}, "X-User-Id").model for _ in range(50)}
    assert len(picks) == 1


def test_shadow_hit() -> None:
    assert split.shadow_hit(10, 0.05) and not split.shadow_hit(10, 0.15)
    assert split.shadow_hit(100, 0.999)
