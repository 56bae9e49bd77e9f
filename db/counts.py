"""Request counts: the router's batched flush, and the rates and stats read from them.

Rows are keyed by (model, experiment, variant, minute, shadow). A flush merges
deltas into existing rows with `col = col + :delta` (portable, and safe when
several routers write the same minute), inserting the rows that do not exist.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, and_, func, select
from sqlalchemy.exc import IntegrityError

from db import histogram
from db.engine import write
from db.errors import db_errors
from db.schema import HIST_COLUMNS, request_counts

T = request_counts


@dataclass
class CountDelta:
    """Requests to add for one key (one model/variant/minute/shadow)."""

    model: str
    minute: int  # int(unix_time // 60)
    experiment: str = ""
    variant: str = ""
    shadow: bool = False
    count: int = 0
    errors: int = 0
    latency_sum: float = 0.0
    hist: list[int] = field(default_factory=histogram.empty)

    def key(self) -> tuple[str, str, str, int, bool]:
        return (self.model, self.experiment, self.variant, self.minute, self.shadow)

    def record(self, latency_s: float, error: bool) -> None:
        """Add one request."""
        self.count += 1
        self.errors += int(error)
        self.latency_sum += latency_s
        self.hist[histogram.bucket_of(latency_s)] += 1

    def merge(self, other: CountDelta) -> None:
        """Add every request of `other` (same key)."""
        self.count += other.count
        self.errors += other.errors
        self.latency_sum += other.latency_sum
        histogram.merge_into(self.hist, other.hist)


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

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0


def _key_clause(delta: CountDelta) -> object:
    return and_(T.c.model == delta.model, T.c.experiment == delta.experiment,
                T.c.variant == delta.variant, T.c.minute == delta.minute,
                T.c.shadow.is_(delta.shadow))


def _merge_one(conn: Connection, delta: CountDelta) -> None:
    increments = {"count": T.c.count + delta.count, "errors": T.c.errors + delta.errors,
                  "latency_sum": T.c.latency_sum + delta.latency_sum}
    for name, value in zip(HIST_COLUMNS, delta.hist, strict=True):
        if value:
            increments[name] = T.c[name] + value
    if conn.execute(T.update().where(_key_clause(delta)).values(increments)).rowcount:
        return
    values = {"model": delta.model, "experiment": delta.experiment, "variant": delta.variant,
              "minute": delta.minute, "shadow": delta.shadow, "count": delta.count,
              "errors": delta.errors, "latency_sum": delta.latency_sum,
              **dict(zip(HIST_COLUMNS, delta.hist, strict=True))}
    try:
        with conn.begin_nested():
            conn.execute(T.insert().values(values))
    except IntegrityError:
        # Another router inserted the same key since our update: merge into its row.
        conn.execute(T.update().where(_key_clause(delta)).values(increments))


@db_errors
def add_counts(engine: Engine, deltas: Iterable[CountDelta]) -> int:
    """Merge every delta in ONE transaction; returns how many keys were written."""
    batch = [d for d in deltas if d.count or d.errors]
    if not batch:
        return 0
    with write(engine) as conn:
        for delta in batch:
            _merge_one(conn, delta)
    return len(batch)


def _minute_weight(minute: int, start: float, now: float) -> float:
    """The share of a minute row's requests that fell inside [start, now].

    Its requests are spread over [60m, min(60m + 60, now)] (the current minute
    is still filling), so the weight is that span's overlap with the window.
    """
    lo = minute * 60.0
    hi = min(lo + 60.0, now)
    if hi <= lo:
        return 1.0 if lo <= now else 0.0
    overlap = min(hi, now) - max(lo, start)
    return max(0.0, min(1.0, overlap / (hi - lo)))


@db_errors
def request_rates(engine: Engine, window_s: float, now: float) -> dict[str, float]:
    """Requests per second per model over [now - window_s, now], shadow traffic included
    (a shadow request loads its model as much as any other)."""
    start = now - window_s
    query = (select(T.c.model, T.c.minute, func.sum(T.c.count))
             .where(T.c.minute >= math.floor(start / 60), T.c.minute <= math.floor(now / 60))
             .group_by(T.c.model, T.c.minute))
    totals: dict[str, float] = {}
    with engine.connect() as conn:
        for model, minute, count in conn.execute(query):
            totals[model] = totals.get(model, 0.0) + count * _minute_weight(minute, start, now)
    return {model: total / window_s for model, total in totals.items() if total > 0}


def _stats(model: str, window_s: float, row: Sequence[object], variant: str = "",
           shadow: bool = False) -> Stats:
    count, errors, latency_sum = int(row[0]), int(row[1]), float(row[2])  # type: ignore[arg-type]
    hist = [int(v) for v in row[3:]]  # type: ignore[call-overload]
    return Stats(model=model, count=count, errors=errors, rate=count / window_s,
                 mean_s=latency_sum / count if count else None,
                 p50_s=histogram.percentile(hist, 50), p95_s=histogram.percentile(hist, 95),
                 p99_s=histogram.percentile(hist, 99), variant=variant, shadow=shadow)


def _sums() -> list[object]:
    return [func.sum(T.c.count), func.sum(T.c.errors), func.sum(T.c.latency_sum),
            *(func.sum(T.c[name]) for name in HIST_COLUMNS)]


def _since(window_s: float, now: float) -> object:
    # Whole minutes: a stats window reaches back to the start of its first minute.
    return T.c.minute >= math.floor((now - window_s) / 60)


@db_errors
def model_stats(engine: Engine, window_s: float, now: float, limit: int | None = None
                ) -> list[Stats]:
    """Per model over the window (shadow requests excluded), busiest first."""
    query = (select(T.c.model, *_sums()).where(_since(window_s, now), T.c.shadow.is_(False))
             .group_by(T.c.model))
    with engine.connect() as conn:
        stats = [_stats(row[0], window_s, row[1:]) for row in conn.execute(query)]
    stats.sort(key=lambda s: (-s.count, s.model))
    return stats[:limit] if limit is not None else stats


@db_errors
def experiment_stats(engine: Engine, name: str, window_s: float, now: float) -> list[Stats]:
    """Per variant of experiment `name` (the shadow variant as a separate entry)."""
    query = (select(T.c.variant, T.c.shadow, T.c.model, *_sums())
             .where(_since(window_s, now), T.c.experiment == name)
             .group_by(T.c.variant, T.c.shadow, T.c.model))
    with engine.connect() as conn:
        stats = [_stats(row[2], window_s, row[3:], variant=row[0], shadow=bool(row[1]))
                 for row in conn.execute(query)]
    stats.sort(key=lambda s: (s.shadow, s.variant))
    return stats
