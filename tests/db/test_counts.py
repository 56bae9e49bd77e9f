"""Request counts: the in-memory delta, the minute weighting of rates, windows and limits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db import histogram, queries
from db.counts import _minute_weight
from db.queries import Engine


def test_delta_records_and_merges() -> None:
    a = queries.CountDelta(model="m", minute=1)
    a.record(0.01, error=False)
    a.record(2.0, error=True)
    b = queries.CountDelta(model="m", minute=1)
    b.record(0.01, error=False)
    a.merge(b)
    assert (a.count, a.errors, a.latency_sum) == (3, 1, pytest.approx(2.02))
    assert a.hist[histogram.bucket_of(0.01)] == 2 and a.hist[histogram.bucket_of(2.0)] == 1
    assert sum(b.hist) == 1  # the merged delta is left alone


@given(minute=st.integers(0, 100), start=st.floats(0, 6100), span=st.floats(0, 600))
def test_minute_weight_is_a_share(minute: int, start: float, span: float) -> None:
    now = start + span
    weight = _minute_weight(minute, start, now)
    assert 0.0 <= weight <= 1.0
    lo = minute * 60.0
    if lo + 60 <= start or lo > now:
        assert weight == 0.0  # wholly outside the window
    elif start <= lo and lo + 60 <= now:
        assert weight == 1.0  # wholly inside


def test_rates_weigh_the_edges_and_include_shadow(engine: Engine) -> None:
    minute = 2000
    now = minute * 60 + 15.0  # a quarter into the current minute
    queries.add_counts(engine, [
        queries.CountDelta(model="a", minute=minute - 2, count=600),  # outside a 60 s window
        queries.CountDelta(model="a", minute=minute - 1, count=60),
        queries.CountDelta(model="a", minute=minute, count=10),
        queries.CountDelta(model="s", minute=minute, count=6, shadow=True,
                           experiment="e", variant="sh"),
    ])
    # [now - 60, now]: 3/4 of the previous minute (45) + all 10 of the current one so far.
    rates = queries.request_rates(engine, 60.0, now)
    assert rates == pytest.approx({"a": 55 / 60, "s": 6 / 60})
    assert queries.request_rates(engine, 60.0, now + 3600) == {}


def test_zero_deltas_write_nothing_and_stats_limit(engine: Engine) -> None:
    assert queries.add_counts(engine, [queries.CountDelta(model="z", minute=5)]) == 0
    assert queries.model_stats(engine, 60, 5 * 60 + 30) == []
    queries.add_counts(engine, [queries.CountDelta(model=m, minute=5, count=c)
                                for m, c in (("a", 3), ("b", 9), ("c", 9))])
    stats = queries.model_stats(engine, 60, 5 * 60 + 30, limit=2)
    assert [(s.model, s.count) for s in stats] == [("b", 9), ("c", 9)]  # busiest, then name
    assert stats[0].mean_s == 0.0
    assert stats[0].p50_s is None  # no latency recorded: no percentile invented


def test_minute_series_oldest_first_zero_filled_without_shadow(engine: Engine) -> None:
    last = 3000
    queries.add_counts(engine, [
        queries.CountDelta(model="a", minute=last - 2, count=4),
        queries.CountDelta(model="a", minute=last, count=7),
        queries.CountDelta(model="a", minute=last - 5, count=99),  # before the range
        queries.CountDelta(model="s", minute=last, count=3, shadow=True),
    ])
    assert queries.minute_series(engine, 3, last * 60 + 59) == {"a": [4, 0, 7]}
