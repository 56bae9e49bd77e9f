"""Per-minute request series for dashboards (sparklines)."""

from __future__ import annotations

import math

from sqlalchemy import Engine, func, select

from db.errors import db_errors
from db.stats import both, summed


@db_errors
def minute_series(engine: Engine, minutes: int, now: float) -> dict[str, list[int]]:
    """Requests per minute per model for the last `minutes` minutes, oldest first; recent
    minutes are summed from their 5 s buckets.

    Shadow requests are left out: they are not traffic a client sent to that model.
    """
    last = math.floor(now / 60)
    first = last - minutes + 1
    query = both(lambda t: select(t.c.model, t.c.minute, func.sum(t.c.count))
                 .where(t.c.minute >= first, t.c.minute <= last, t.c.shadow.is_(False))
                 .group_by(t.c.model, t.c.minute))
    series: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for (model, minute), (count,) in summed(conn, query, 2):
            series.setdefault(model, [0] * minutes)[minute - first] = int(count)
    return series
