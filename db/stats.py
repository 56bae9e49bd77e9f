"""Rates and stats read from the request counts, at both resolutions (see `db.counts`).

Every request lives in exactly one table (5 s buckets for recent minutes, whole minutes
before), so a read sums both and counts nothing twice. Rates weigh each row by the share
of its span inside the window, so each part of a window is measured at the finest
resolution stored for it: 5 s over the last RECENT_MINUTES minutes, a minute before.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CompoundSelect, Connection, Engine, Select, Table, func, select

from db import histogram
from db.errors import db_errors
from db.schema import BUCKET_S, HIST_COLUMNS, request_counts, request_counts_recent

T = request_counts
R = request_counts_recent


@dataclass(frozen=True)
class Stats:
    """Aggregated requests for one model (or one experiment variant) over a window."""

    model: str
    count: int
    errors: int
    rate: float  # requests per second over the window
    mean_s: float | None
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    variant: str = ""
    shadow: bool = False
    # Client and server errors; both 0 for requests counted before schema 3, whose errors
    # are in `errors` only.
    errors_4xx: int = 0
    errors_5xx: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0


def span_weight(lo: float, span: float, start: float, now: float) -> float:
    """The share of a row's requests that fell inside [start, now].

    The row covers [lo, lo + span]; its requests are spread over [lo, min(lo + span, now)]
    (the current bucket or minute is still filling), so the weight is that stretch's
    overlap with the window.
    """
    hi = min(lo + span, now)
    if hi <= lo:
        return 1.0 if lo <= now else 0.0
    overlap = min(hi, now) - max(lo, start)
    return max(0.0, min(1.0, overlap / (hi - lo)))


@db_errors
def request_rates(engine: Engine, window_s: float, now: float) -> dict[str, float]:
    """Requests per second per model over [now - window_s, now], shadow traffic included
    (a shadow request loads its model as much as any other)."""
    start = now - window_s
    minutes = (select(T.c.model, T.c.minute, func.sum(T.c.count))
               .where(T.c.minute >= math.floor(start / 60), T.c.minute <= math.floor(now / 60))
               .group_by(T.c.model, T.c.minute))
    buckets = (select(R.c.model, R.c.bucket, func.sum(R.c.count))
               .where(R.c.bucket >= math.floor(start / BUCKET_S),
                      R.c.bucket <= math.floor(now / BUCKET_S))
               .group_by(R.c.model, R.c.bucket))
    totals: dict[str, float] = {}
    with engine.connect() as conn:
        for query, span in ((minutes, 60.0), (buckets, float(BUCKET_S))):
            for model, slot, count in conn.execute(query):
                weight = span_weight(slot * span, span, start, now)
                totals[model] = totals.get(model, 0.0) + count * weight
    return {model: total / window_s for model, total in totals.items() if total > 0}


def _sums(table: Table) -> list[object]:
    return [func.sum(table.c.count), func.sum(table.c.errors), func.sum(table.c.errors_4xx),
            func.sum(table.c.errors_5xx), func.sum(table.c.latency_sum),
            *(func.sum(table.c[name]) for name in HIST_COLUMNS)]


def summed(conn: Connection, query: CompoundSelect, n_keys: int
           ) -> Iterator[tuple[tuple[Any, ...], list[float]]]:
    """Run `query` (built with `both`) on both tables; rows with the same first `n_keys`
    columns are added up column by column."""
    totals: dict[tuple[Any, ...], list[float]] = {}
    for row in conn.execute(query):
        key, values = tuple(row[:n_keys]), [v or 0 for v in row[n_keys:]]
        found = totals.get(key)
        if found is None:
            totals[key] = values
        else:
            totals[key] = [a + b for a, b in zip(found, values, strict=True)]
    yield from totals.items()


def both(build: Callable[[Table], Select[Any]]) -> CompoundSelect:
    """`build(table)` for the minute and the 5 s table, as one UNION ALL."""
    return build(T).union_all(build(R))


def _stats(model: str, window_s: float, row: Sequence[float], variant: str = "",
           shadow: bool = False) -> Stats:
    count, errors, latency_sum = int(row[0]), int(row[1]), float(row[4])
    hist = [int(v) for v in row[5:]]
    return Stats(model=model, count=count, errors=errors, errors_4xx=int(row[2]),
                 errors_5xx=int(row[3]), rate=count / window_s,
                 mean_s=latency_sum / count if count else None,
                 p50_s=histogram.percentile(hist, 50), p95_s=histogram.percentile(hist, 95),
                 p99_s=histogram.percentile(hist, 99), variant=variant, shadow=shadow)


def _first_minute(window_s: float, now: float) -> int:
    # Whole minutes: a stats window reaches back to the start of its first minute.
    return math.floor((now - window_s) / 60)


@db_errors
def model_stats(engine: Engine, window_s: float, now: float, limit: int | None = None
                ) -> list[Stats]:
    """Per model over the window (shadow requests excluded), busiest first."""
    first = _first_minute(window_s, now)
    query = both(lambda t: select(t.c.model, *_sums(t))
                 .where(t.c.minute >= first, t.c.shadow.is_(False)).group_by(t.c.model))
    with engine.connect() as conn:
        stats = [_stats(str(key[0]), window_s, values) for key, values in summed(conn, query, 1)]
    stats.sort(key=lambda s: (-s.count, s.model))
    return stats[:limit] if limit is not None else stats


@db_errors
def experiment_stats(engine: Engine, name: str, window_s: float, now: float) -> list[Stats]:
    """Per variant of experiment `name` (the shadow variant as a separate entry)."""
    first = _first_minute(window_s, now)
    query = both(lambda t: select(t.c.variant, t.c.shadow, t.c.model, *_sums(t))
                 .where(t.c.minute >= first, t.c.experiment == name)
                 .group_by(t.c.variant, t.c.shadow, t.c.model))
    with engine.connect() as conn:
        stats = [_stats(str(key[2]), window_s, values, variant=str(key[0]),
                        shadow=bool(key[1])) for key, values in summed(conn, query, 3)]
    stats.sort(key=lambda s: (s.shadow, s.variant))
    return stats
