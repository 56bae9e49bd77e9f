"""Request counts: the in-memory delta, the minute weighting of rates, windows and limits."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from base.errors import Unavailable
from db import histogram, queries
from db.queries import Engine
from db.stats import span_weight


def test_delta_records_and_merges() -> None:
    a = queries.CountDelta(model="m", minute=1)
    a.record(0.01, 200)
    a.record(2.0, 503)
    b = queries.CountDelta(model="m", minute=1)
    b.record(0.01, 404)
    a.merge(b)
    assert (a.count, a.errors, a.latency_sum) == (3, 2, pytest.approx(2.02))
    assert (a.errors_4xx, a.errors_5xx) == (1, 1)
    assert a.hist[histogram.bucket_of(0.01)] == 2 and a.hist[histogram.bucket_of(2.0)] == 1
    assert sum(b.hist) == 1  # the merged delta is left alone


@given(minute=st.integers(0, 100), start=st.floats(0, 6100), span=st.floats(0, 600))
def test_minute_weight_is_a_share(minute: int, start: float, span: float) -> None:
    now = start + span
    weight = span_weight(minute * 60.0, 60.0, start, now)
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


def _flush_second(engine: Engine, model: str, t: float, per_s: int, **kw: object) -> None:
    """What the router's flush at time `t` writes: `per_s` requests spread over (t-1, t]."""
    deltas: dict[int, queries.CountDelta] = {}
    for j in range(per_s):
        ts = t - 1 + (j + 0.5) / per_s
        delta = deltas.setdefault(queries.bucket_of(ts), queries.CountDelta.at(model, ts, **kw))
        delta.record(0.001, 200)
    queries.add_counts(engine, deltas.values())


@pytest.mark.parametrize("phase", [0.0, 23.5, 52.0])  # where in a minute traffic starts
def test_ten_second_window_reads_the_rate_within_one_bucket(engine: Engine, phase: float
                                                            ) -> None:
    t0 = 4000 * 60 + phase
    for s in range(1, 41):  # 5 req/s for 40 s, flushed every second
        _flush_second(engine, "m", t0 + s, 5)
        rate = queries.request_rates(engine, 10.0, t0 + s).get("m", 0.0)
        if s >= 10 + queries.BUCKET_S:  # a window and one bucket after traffic started
            assert rate == pytest.approx(5.0, abs=0.5), s
        assert rate <= 5.0 * 1.1
    end = t0 + 40
    # Traffic stops: the window forgets it within a window and one bucket, not a minute.
    assert queries.request_rates(engine, 10.0, end + 5).get("m", 0.0) > 2
    assert queries.request_rates(engine, 10.0, end + 10 + queries.BUCKET_S) == {}


def _snapshot(engine: Engine, now: float) -> tuple[object, ...]:
    """Everything read from the counts over windows of whole minutes (resolution-free);
    float sums rounded (their order of addition changes)."""
    stats = queries.model_stats(engine, 3600, now)
    arms = queries.experiment_stats(engine, "e", 3600, now)
    rates = queries.request_rates(engine, now - 4000 * 60, now)
    return ([(s.model, s.count, s.errors, s.errors_4xx, s.errors_5xx, s.p50_s, s.p99_s,
              round(s.mean_s or 0, 12))
             for s in stats],
            [(s.variant, s.shadow, s.count, s.errors, s.p95_s) for s in arms],
            queries.minute_series(engine, 30, now),
            {m: round(r, 12) for m, r in rates.items()})


def _table_rows(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_roll_up_keeps_totals_exact_and_counts_nothing_twice(engine: Engine) -> None:
    t0 = 4000 * 60.0
    deltas = []
    for i in range(20 * 60 // 7):  # a request every 7 s for 20 minutes, two kinds
        ts = t0 + 7 * i
        d = queries.CountDelta.at("a", ts)
        d.record(0.001 * (1 + i % 50), 500 if i % 9 == 0 else 404 if i % 7 == 0 else 200)
        e = queries.CountDelta.at("b", ts, experiment="e", variant="arm" if i % 2 else "sh",
                                  shadow=not i % 2)
        e.record(0.01, 200)
        deltas += [d, e]
    queries.add_counts(engine, deltas)
    # A minute row already there (a db from before 5 s buckets): merged into, never lost.
    queries.add_counts(engine, [queries.CountDelta(model="a", minute=4001, count=4, errors=1)])
    now = t0 + 20 * 60 + 30
    before = _snapshot(engine, now)
    assert before[0][0][1] == 20 * 60 // 7 + 4
    assert before[0][0][3] > 0 and before[0][0][4] > 0  # 4xx and 5xx, kept apart
    recent_rows = _table_rows(engine, "request_counts_recent")

    rolled = queries.roll_up(engine, now)
    # Minutes 4000..4014 rolled up (older than RECENT_MINUTES before minute 4020).
    kept = 20 - 15
    assert rolled > 0 and _table_rows(engine, "request_counts_recent") == recent_rows - rolled
    with engine.connect() as conn:
        left = conn.execute(text("SELECT min(minute) FROM request_counts_recent")).scalar()
        minutes = conn.execute(text("SELECT count(DISTINCT minute) FROM request_counts")).scalar()
    assert left == 4020 - queries.RECENT_MINUTES and minutes == 20 - kept
    assert _snapshot(engine, now) == before
    assert queries.roll_up(engine, now) == 0  # nothing left to move
    # A late write into a minute already rolled up (a router whose flushes failed for a
    # while) counts once, before and after the next roll-up.
    late = queries.CountDelta.at("a", t0 + 61, count=3)
    queries.add_counts(engine, [late])
    after = _snapshot(engine, now)
    assert after[0][0][1] == before[0][0][1] + 3
    assert queries.roll_up(engine, now) == 1 and _snapshot(engine, now) == after


def test_rates_use_the_finest_data_that_covers_each_part(engine: Engine) -> None:
    t0 = 5000 * 60.0
    # 30 requests in the first 5 s of minute 5000; none in the rest of that minute.
    queries.add_counts(engine, [queries.CountDelta.at("m", t0 + 1, count=30)])
    now = t0 + 50
    assert queries.request_rates(engine, 10.0, now) == {}  # at 5 s resolution: long gone
    assert queries.request_rates(engine, 60.0, now) == pytest.approx({"m": 30 / 60})
    queries.roll_up(engine, now + 10 * 60)
    # Rolled up, the same requests read as spread over their minute.
    assert queries.request_rates(engine, 10.0, now) == pytest.approx({"m": 30 * 10 / 50 / 10})


def test_roll_up_racing_writers_loses_nothing(engine: Engine) -> None:
    """Routers flushing into old and new buckets while others roll up: every request is
    counted exactly once (a conflicting transaction fails whole and is retried)."""
    t0 = 6000 * 60.0
    now = t0 + 20 * 60
    writers, rounds = 4, 25
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers + 1)

    def write(who: int) -> None:
        try:
            barrier.wait()
            for i in range(rounds):
                old = queries.CountDelta.at("m", t0 + 5 * ((i + who) % 24), count=1)
                new = queries.CountDelta.at("m", now - 5 * (i % 3), count=1)
                _retry(queries.add_counts, engine, [old, new], roll_up_at=now)
        except BaseException as exc:
            errors.append(exc)

    def roll() -> None:
        try:
            barrier.wait()
            for _ in range(rounds):
                _retry(queries.roll_up, engine, now)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    threads.append(threading.Thread(target=roll))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    queries.roll_up(engine, now)
    [stats] = queries.model_stats(engine, 3600, now)
    assert stats.count == writers * rounds * 2
    with engine.connect() as conn:
        old_buckets = conn.execute(text("SELECT count(*) FROM request_counts_recent "
                                        "WHERE minute < :m"), {"m": 6000 + 5}).scalar()
    assert old_buckets == 0


def _retry(call: Callable[..., object], *args: object, **kwargs: object) -> None:
    for _ in range(50):
        try:
            call(*args, **kwargs)
            return
        except Unavailable:  # a deadlock or a lost race: the transaction rolled back whole
            continue
    raise AssertionError("still failing after 50 attempts")
