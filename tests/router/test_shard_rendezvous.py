"""Property tests of the shard choice (router.sharding): deterministic, ~1/N of the models move
when a shard is added (all of them to the new one), a dead shard's models go to the next shard
in their ranking and no other model moves."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from base.names import is_valid_model_name
from router.sharding import owner, ranking, score

model_names = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,40}\Z", fullmatch=True)
shard_names = st.lists(st.from_regex(r"\Acold-[a-z0-9]{1,8}\Z", fullmatch=True),
                       min_size=1, max_size=12, unique=True)
# A fixed population big enough that the moved share is close to its expectation:
# 3000 models, so one standard deviation of a share near 1/2 is under 1 %.
POPULATION = [f"model-{i:05d}" for i in range(3000)]


@given(model_names, shard_names, st.randoms(use_true_random=False))
def test_shard_owner_is_deterministic_and_independent_of_order(
        model: str, shards: list[str], rnd: random.Random) -> None:
    assert is_valid_model_name(model)
    shuffled = list(shards)
    rnd.shuffle(shuffled)
    assert owner(model, shards) == owner(model, shuffled) == ranking(model, shuffled)[0]
    assert ranking(model, shards) == ranking(model, shuffled)
    assert sorted(ranking(model, shards)) == sorted(shards)
    assert score(shards[0], model) == score(shards[0], model)


def test_shard_owner_of_nothing_is_none() -> None:
    assert owner("m", []) is None and ranking("m", []) == []


def test_shard_scores_are_fixed_across_processes() -> None:
    """blake2b, not hash(): every router (and every Python) agrees. Pinned values."""
    assert score("cold-0", "example-a") == 12923687840835870764
    assert ranking("example-a", ["cold-0", "cold-1", "cold-2"]) == ["cold-2", "cold-0", "cold-1"]
    assert score("a", "bc") != score("ab", "c")


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 9), st.integers(0, 10_000))
def test_adding_a_shard_moves_about_one_in_n_plus_1_models_all_to_the_new_shard(
        n: int, salt: int) -> None:
    shards = [f"cold-{salt}-{i}" for i in range(n)]
    new = f"cold-{salt}-new"
    before = {m: owner(m, shards) for m in POPULATION}
    after = {m: owner(m, [*shards, new]) for m in POPULATION}
    moved = [m for m in POPULATION if before[m] != after[m]]
    assert all(after[m] == new for m in moved)  # nobody moves between old shards
    share = len(moved) / len(POPULATION)
    assert abs(share - 1 / (n + 1)) < 0.05, (n, share)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 10), st.integers(0, 10_000), st.data())
def test_a_dead_shards_models_go_to_their_next_shard_and_no_other_model_moves(
        n: int, salt: int, data: st.DataObject) -> None:
    shards = [f"cold-{salt}-{i}" for i in range(n)]
    dead = data.draw(st.sampled_from(shards))
    live = [s for s in shards if s != dead]
    for model in POPULATION[:600]:
        order = ranking(model, shards)
        now = owner(model, live)
        if order[0] == dead:
            assert now == order[1]
        else:
            assert now == order[0]


@settings(max_examples=10, deadline=None)
@given(st.integers(2, 8), st.integers(0, 10_000))
def test_each_shard_owns_about_its_share(n: int, salt: int) -> None:
    shards = [f"cold-{salt}-{i}" for i in range(n)]
    owned = {s: 0 for s in shards}
    for model in POPULATION:
        found = owner(model, shards)
        assert found is not None
        owned[found] += 1
    for count in owned.values():
        assert abs(count / len(POPULATION) - 1 / n) < 0.05, owned
