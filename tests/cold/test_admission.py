"""The miss admission rules, pure: expected waits, bounds, when to answer 503 at once."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pools.cold.admission import (
    MIN_RETRY_AFTER_S,
    Ewma,
    Limits,
    Queue,
    Verdict,
    decide,
    expected_wait,
)
from pools.cold.placement import HALVE_EVERY, RecentHits, choose_server


def test_expected_wait_counts_rounds_of_parallel_loads() -> None:
    # Two slots, one second each: positions 0-1 end after 1 s, 2-3 after 2 s, 4 after 3 s.
    assert [expected_wait(p, 2, 1.0) for p in range(5)] == [1.0, 1.0, 2.0, 2.0, 3.0]
    assert expected_wait(0, 1, 0.0) == 0.0
    for bad in ((-1, 1, 1.0), (0, 0, 1.0), (0, 1, -1.0)):
        with pytest.raises(ValueError):
            expected_wait(*bad)


LIMITS = Limits(load_wait_s=3.0, parallel=2, max_queued_per_model=4, max_queued=10)


def test_every_small_queue_against_the_rules() -> None:
    """Exhaustive over a grid: the verdict is exactly what the rules say."""
    for pending, position, for_model, waiting, load_s in itertools.product(
            range(8), [None, *range(8)], range(6), range(12), [None, 0.0, 0.5, 1.0, 1.5, 4.0]):
        if position is not None and position >= pending:
            continue  # a pending load's place is among the pending ones
        verdict = decide(Queue(pending, position, for_model, waiting), LIMITS, load_s)
        place = pending if position is None else position
        wait = 0.0 if load_s is None else (place // 2 + 1) * load_s
        assert verdict.expected_wait_s == wait
        if for_model >= 4:
            assert verdict.reason == "model_queue"
        elif waiting >= 10:
            assert verdict.reason == "queue"
        elif wait > 3.0:
            assert verdict.reason == "too_slow"
            assert verdict.retry_after_s == max(wait - 3.0, MIN_RETRY_AFTER_S)
        else:
            assert verdict == Verdict(True, expected_wait_s=wait)
        assert verdict.admit == (verdict.reason == "")
        if not verdict.admit:
            assert verdict.retry_after_s >= MIN_RETRY_AFTER_S


def test_without_a_measurement_only_the_bounds_apply() -> None:
    assert decide(Queue(1000, None, 0, 0), LIMITS, None).admit
    assert not decide(Queue(0, None, 0, 10), LIMITS, None).admit


def test_joining_a_running_load_is_judged_by_its_place_not_the_queue_tail() -> None:
    # Ten loads pending, ours is running (place 0): one second away, not five.
    assert decide(Queue(10, 0, 1, 1), LIMITS, 1.0).admit
    assert not decide(Queue(10, None, 0, 1), LIMITS, 1.0).admit


queues = st.builds(lambda pending, pos, m, w: Queue(pending, None if pos is None else
                                                    min(pos, max(pending - 1, 0)), m, w),
                   st.integers(0, 500), st.none() | st.integers(0, 500), st.integers(0, 300),
                   st.integers(0, 2000))
limits = st.builds(Limits, st.floats(0.01, 120), st.integers(1, 32), st.integers(1, 300),
                   st.integers(1, 2000))
load_times = st.none() | st.floats(0, 60)


@given(queues, limits, load_times)
def test_an_admitted_miss_is_expected_in_time_and_within_the_bounds(
        queue: Queue, lim: Limits, load_s: float | None) -> None:
    verdict = decide(queue, lim, load_s)
    if verdict.admit:
        assert verdict.expected_wait_s <= lim.load_wait_s
        assert queue.waiting_for_model < lim.max_queued_per_model
        assert queue.waiting < lim.max_queued
    else:
        assert verdict.retry_after_s >= MIN_RETRY_AFTER_S
        assert math.isfinite(verdict.retry_after_s)


@given(queues, limits, st.floats(0, 60), st.floats(0, 60))
def test_a_longer_load_time_never_admits_more(queue: Queue, lim: Limits, a: float,
                                              b: float) -> None:
    fast, slow = sorted((a, b))
    assert decide(queue, lim, fast).admit or not decide(queue, lim, slow).admit


@given(st.integers(0, 100), st.integers(1, 8), st.floats(0, 10))
def test_a_later_place_never_waits_less(position: int, parallel: int, load_s: float) -> None:
    assert expected_wait(position + 1, parallel, load_s) >= expected_wait(position, parallel,
                                                                          load_s)


def test_ewma() -> None:
    mean = Ewma(alpha=0.5)
    assert mean.value is None
    assert mean.add(2.0) == 2.0  # the first sample is the mean
    assert mean.add(4.0) == 3.0
    for bad in (-1.0, math.nan):
        with pytest.raises(ValueError):
            mean.add(bad)
    with pytest.raises(ValueError):
        Ewma(alpha=0.0)


def test_placement_prefers_idle_servers_then_the_victims_then_the_emptier() -> None:
    assert choose_server([1, 0], [0, 9]) == 1  # a load under way comes first
    assert choose_server([0, 0], [3, 5], victims_on={1}) == 1  # one reload for both
    assert choose_server([0, 0], [3, 2]) == 1
    assert choose_server([0, 0], [2, 2]) == 0
    assert choose_server([2], [0]) == 0
    with pytest.raises(ValueError):
        choose_server([], [])
    with pytest.raises(ValueError):
        choose_server([0, 0], [0, 0], hits=[1.0])


def test_placement_spares_the_server_busier_with_hits() -> None:
    # Server 1 serves most hits: the load goes to 0, even though 1 holds the victim.
    assert choose_server([0, 0], [3, 3], victims_on={1}, hits=[10.0, 40.0]) == 0
    # Close enough is a tie: then one reload for the victim and the load.
    assert choose_server([0, 0], [3, 3], victims_on={1}, hits=[30.0, 36.0]) == 1
    assert choose_server([0, 0], [3, 3], victims_on={1}, hits=[0.0, 1.0]) == 1
    # A load under way still counts first: loads run side by side in two processes.
    assert choose_server([1, 0], [3, 3], hits=[0.0, 90.0]) == 1


def test_recent_hits_fade() -> None:
    hits = RecentHits(2)
    for _ in range(HALVE_EVERY - 1):
        hits.add(1)
    assert hits.counts == [0.0, HALVE_EVERY - 1.0]
    hits.add(0)
    assert hits.counts == [0.5, (HALVE_EVERY - 1) / 2]
