"""The window tuner: TinyLFU grows its recency window when plain LRU would do better."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pools.eviction import make_policy
from pools.eviction.adapt import WindowTuner
from pools.eviction.simulate import simulate
from pools.eviction.tinylfu import WTinyLFU
from pools.eviction.traces import shifting, zipf


def test_the_window_grows_while_lru_is_ahead_and_shrinks_back_after() -> None:
    tuner = WindowTuner(capacity=10, min_window=1, period=10, step=2)
    sizes = []
    for _ in range(5):  # a loop over 5 keys: the shadow LRU hits, "we" never do
        for i in range(10):
            changed = tuner.observe(f"k{i % 5}", hit=False)
        sizes.append(changed)
    assert sizes == [3, 5, 7, 9, None]  # capped at capacity - 1
    for _ in range(3):  # now we hit as often as LRU: back towards the minimum
        for i in range(10):
            tuner.observe(f"k{i % 5}", hit=True)
    assert tuner.window == 3


def test_adaptation_keeps_tinylfu_near_lru_when_the_popular_set_moves_fast() -> None:
    trace = shifting(1.0, n_models=1000, n_requests=20_000, phase=2000)
    lru = simulate(make_policy("lru", 200), trace.requests, 200).hit_ratio
    fixed = simulate(make_policy("tinylfu", 200, adaptive=False), trace.requests, 200).hit_ratio
    tuned = simulate(make_policy("tinylfu", 200), trace.requests, 200).hit_ratio
    assert fixed < lru - 0.05  # a long frequency memory alone is far behind here
    assert tuned >= lru - 0.02


def test_adaptation_does_not_cost_hits_on_a_stable_popularity() -> None:
    trace = zipf(1.0, n_requests=20_000)
    fixed = simulate(make_policy("tinylfu", 50, adaptive=False), trace.requests, 50).hits
    tuned = simulate(make_policy("tinylfu", 50), trace.requests, 50).hits
    assert tuned >= 0.99 * fixed


@settings(max_examples=100, deadline=None)
@given(
    requests=st.lists(st.sampled_from([f"m{i}" for i in range(10)]), max_size=200),
    slots=st.integers(1, 6),
    data=st.data(),
)
def test_a_window_resized_every_few_requests_keeps_the_bookkeeping_consistent(
    requests: list[str], slots: int, data: st.DataObject
) -> None:
    policy = make_policy("tinylfu", slots, adapt_period=3, adapt_step=1)
    assert isinstance(policy, WTinyLFU)
    marks = range(len(requests) + 1)
    result = simulate(policy, requests, slots, checkpoints=marks)
    assert result.peak_models <= slots
    segments = policy.segments()
    tracked = [k for keys in segments.values() for k in keys]
    assert sorted(tracked) == sorted(result.residents_at[len(requests)])
    assert len(segments["window"]) <= policy.window_cap
