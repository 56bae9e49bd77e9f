"""Request counts: the router's batched flush, and the roll-up of 5 s buckets into minutes.

Two resolutions, each request stored in exactly one of them:

- `request_counts_recent`: per 5 s bucket, keyed by (model, experiment, variant, bucket,
  shadow). The router writes here, so a promotion window of a few seconds is measured
  at 5 s resolution instead of being smeared over a minute.
- `request_counts`: per minute, keyed by (model, experiment, variant, minute, shadow).
  Whole minutes older than RECENT_MINUTES move here (`roll_up`): the bucket rows are
  deleted and their sums merged into the minute rows in one transaction, so the recent
  table stays bounded and no request is counted twice or lost.

A write merges deltas into existing rows with `col = col + :delta` (portable, and safe
when several routers write the same key), inserting the rows that do not exist.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, Table, and_
from sqlalchemy.exc import IntegrityError

from db import histogram
from db.engine import write
from db.errors import db_errors
from db.schema import (
    BUCKET_S,
    BUCKETS_PER_MINUTE,
    HIST_COLUMNS,
    request_counts,
    request_counts_recent,
)

T = request_counts
R = request_counts_recent

# Whole minutes kept at 5 s resolution behind the current one: a window up to this long
# is measured from 5 s buckets only.
RECENT_MINUTES = 5


def bucket_of(ts: float) -> int:
    """The 5 s bucket of a Unix time."""
    return int(ts // BUCKET_S)


@dataclass
class CountDelta:
    """Requests to add for one key. With a `bucket` (Unix time // 5, as the router records)
    the delta goes to the 5 s table and `minute` must be `bucket // 12`; without one, straight
    to the minute table (history written in bulk, tests)."""

    model: str
    minute: int  # int(unix_time // 60)
    experiment: str = ""
    variant: str = ""
    shadow: bool = False
    count: int = 0
    errors: int = 0  # every answer >= 400, the two below included
    errors_4xx: int = 0
    errors_5xx: int = 0
    latency_sum: float = 0.0
    hist: list[int] = field(default_factory=histogram.empty)
    bucket: int | None = None

    def __post_init__(self) -> None:
        if self.bucket is not None and self.bucket // BUCKETS_PER_MINUTE != self.minute:
            raise ValueError(f"bucket {self.bucket} is not in minute {self.minute}")

    @classmethod
    def at(cls, model: str, ts: float, **kwargs: object) -> CountDelta:
        """An empty delta for the 5 s bucket holding Unix time `ts`."""
        bucket = bucket_of(ts)
        return cls(model=model, minute=bucket // BUCKETS_PER_MINUTE, bucket=bucket,
                   **kwargs)  # type: ignore[arg-type]

    def key(self) -> tuple[str, str, str, int, int, bool]:
        bucket = -1 if self.bucket is None else self.bucket
        return (self.model, self.experiment, self.variant, self.minute, bucket, self.shadow)

    def record(self, latency_s: float, status: int) -> None:
        """Add one request answered with HTTP `status`."""
        self.count += 1
        if status >= 400:
            self.errors += 1
            if status >= 500:
                self.errors_5xx += 1
            else:
                self.errors_4xx += 1
        self.latency_sum += latency_s
        self.hist[histogram.bucket_of(latency_s)] += 1

    def merge(self, other: CountDelta) -> None:
        """Add every request of `other` (same key)."""
        self.count += other.count
        self.errors += other.errors
        self.errors_4xx += other.errors_4xx
        self.errors_5xx += other.errors_5xx
        self.latency_sum += other.latency_sum
        histogram.merge_into(self.hist, other.hist)


def _target(delta: CountDelta) -> tuple[Table, dict[str, object]]:
    key: dict[str, object] = {"model": delta.model, "experiment": delta.experiment,
                              "variant": delta.variant, "shadow": delta.shadow}
    if delta.bucket is None:
        return T, {**key, "minute": delta.minute}
    return R, {**key, "bucket": delta.bucket}


def _merge_one(conn: Connection, delta: CountDelta) -> None:
    table, key = _target(delta)
    where = and_(*(table.c[name].is_(value) if name == "shadow" else table.c[name] == value
                   for name, value in key.items()))
    increments = {"count": table.c.count + delta.count,
                  "errors": table.c.errors + delta.errors,
                  "errors_4xx": table.c.errors_4xx + delta.errors_4xx,
                  "errors_5xx": table.c.errors_5xx + delta.errors_5xx,
                  "latency_sum": table.c.latency_sum + delta.latency_sum}
    for name, value in zip(HIST_COLUMNS, delta.hist, strict=True):
        if value:
            increments[name] = table.c[name] + value
    if conn.execute(table.update().where(where).values(increments)).rowcount:
        return
    values = {**key, "minute": delta.minute, "count": delta.count, "errors": delta.errors,
              "errors_4xx": delta.errors_4xx, "errors_5xx": delta.errors_5xx,
              "latency_sum": delta.latency_sum, **dict(zip(HIST_COLUMNS, delta.hist, strict=True))}
    try:
        with conn.begin_nested():
            conn.execute(table.insert().values(values))
    except IntegrityError:
        # Another router inserted the same key since our update: merge into its row.
        conn.execute(table.update().where(where).values(increments))


def _merge_all(conn: Connection, deltas: Iterable[CountDelta]) -> None:
    # One order for every writer: two routers updating the same rows cannot deadlock.
    for delta in sorted(deltas, key=CountDelta.key):
        _merge_one(conn, delta)


def _roll_up(conn: Connection, now: float) -> int:
    cutoff = (math.floor(now / 60) - RECENT_MINUTES) * BUCKETS_PER_MINUTE
    # DELETE ... RETURNING takes exactly the rows it removes: a router adding to one of
    # them meanwhile either lands before (and is rolled up) or finds no row and inserts
    # a new bucket row (rolled up next time).
    rows = conn.execute(R.delete().where(R.c.bucket < cutoff).returning(
        R.c.model, R.c.experiment, R.c.variant, R.c.minute, R.c.shadow, R.c.count,
        R.c.errors, R.c.errors_4xx, R.c.errors_5xx, R.c.latency_sum,
        *(R.c[name] for name in HIST_COLUMNS))).all()
    minutes: dict[tuple[str, str, str, int, int, bool], CountDelta] = {}
    for row in rows:
        delta = CountDelta(model=row[0], experiment=row[1], variant=row[2], minute=row[3],
                           shadow=bool(row[4]), count=row[5], errors=row[6],
                           errors_4xx=row[7], errors_5xx=row[8], latency_sum=row[9],
                           hist=[int(v) for v in row[10:]])
        found = minutes.setdefault(delta.key(), delta)
        if found is not delta:
            found.merge(delta)
    _merge_all(conn, minutes.values())
    return len(rows)


@db_errors
def add_counts(engine: Engine, deltas: Iterable[CountDelta], *,
               roll_up_at: float | None = None) -> int:
    """Merge every delta in ONE transaction; returns how many keys were written.

    With `roll_up_at` (the current time), the same transaction also rolls up the 5 s
    buckets older than RECENT_MINUTES whole minutes before it (see `roll_up`)."""
    batch = [d for d in deltas if d.count or d.errors]
    if not batch and roll_up_at is None:
        return 0
    with write(engine) as conn:
        _merge_all(conn, batch)
        if roll_up_at is not None:
            _roll_up(conn, roll_up_at)
    return len(batch)


@db_errors
def roll_up(engine: Engine, now: float) -> int:
    """Move the 5 s buckets of every minute before `now`'s minute - RECENT_MINUTES into
    per-minute rows; returns how many bucket rows were rolled up."""
    with write(engine) as conn:
        return _roll_up(conn, now)
