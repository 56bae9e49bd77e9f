"""The count-min sketch, and policy snapshots surviving a restart (JSON round trip)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from pools.eviction import make_policy
from pools.eviction.sketch import CountMinSketch
from pools.eviction.traces import zipf


def test_estimates_never_undercount_before_a_halving() -> None:
    sketch = CountMinSketch(width=64, depth=4, cap=255, sample_size=10**9)
    requests = zipf(1.0, n_models=300, n_requests=3000).requests
    for key in requests:
        sketch.increment(key)
    for key, count in Counter(requests).items():
        assert sketch.estimate(key) >= min(count, 255)


def test_counters_saturate_at_the_cap_and_halve_after_the_sample() -> None:
    sketch = CountMinSketch(cap=15, sample_size=40)
    for _ in range(39):
        sketch.increment("hot")
    assert sketch.estimate("hot") == 15
    sketch.increment("hot")  # the 40th addition triggers the halving
    assert sketch.estimate("hot") == 7
    assert sketch.halvings == 1


def test_hashing_is_the_same_in_another_process() -> None:
    # Python's str hash is salted per process; a snapshot must not depend on it.
    code = (
        "from pools.eviction.sketch import CountMinSketch as S; s = S(); "
        "[s.increment(k) for k in ['a', 'b', 'b']]; import json; print(json.dumps(s.to_state()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    here = CountMinSketch()
    assert here.load_state(json.loads(out))
    assert (here.estimate("a"), here.estimate("b"), here.estimate("c")) == (1, 2, 0)


def test_a_snapshot_of_another_shape_is_ignored() -> None:
    small, big = CountMinSketch(width=64), CountMinSketch(width=128)
    small.increment("x")
    assert not big.load_state(small.to_state())
    assert not big.load_state({"version": 1, "width": 128, "depth": 4, "counters": "!!"})
    assert big.estimate("x") == 0


@pytest.mark.parametrize("name", ["tinylfu", "tinylfu-cost", "lfu"])
def test_a_restart_remembers_which_models_matter(name: str) -> None:
    before = make_policy(name, 50)
    for _ in range(100):
        before.record_access("hot", 0.0, True)
    for i in range(20):
        before.record_access(f"rare-{i}", 0.0, False)
    state = json.loads(json.dumps(before.to_state()))  # what the pool writes and reads back

    after = make_policy(name, 50)
    after.load_state(state)
    # on start the pool re-inserts what it finds; "hot" is the least recent of them
    for key in ("hot", "rare-1", "rare-2"):
        after.on_insert(key, 1, 1.0, 0.0)
    assert after.choose_victim(["hot", "rare-1", "rare-2"], "new") != "hot"

    fresh = make_policy(name, 50)
    for key in ("hot", "rare-1", "rare-2"):
        fresh.on_insert(key, 1, 1.0, 0.0)
    assert fresh.choose_victim(["hot", "rare-1", "rare-2"], "new") == "hot"


def test_the_tinylfu_snapshot_is_small() -> None:
    policy = make_policy("tinylfu", 50)
    for key in zipf(1.0).requests:
        policy.record_access(key, 0.0, False)
    assert len(json.dumps(policy.to_state())) < 8_000


@pytest.mark.parametrize("name", ["lru", "tinylfu", "tinylfu-cost", "tinylfu-size", "lfu"])
@pytest.mark.parametrize("garbage", [{}, {"version": 99}, {"sketch": "x"}, {"counts": [1]}])
def test_a_bad_snapshot_leaves_a_working_policy(name: str, garbage: dict) -> None:
    policy = make_policy(name, 5)
    policy.load_state(garbage)
    policy.record_access("a", 0.0, False)
    policy.on_insert("a", 1, 1.0, 0.0)
    assert policy.choose_victim(["a"], "b") == "a"
