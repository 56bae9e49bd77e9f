"""Per-minute request series for dashboards (sparklines)."""

from __future__ import annotations

import math

from sqlalchemy import Engine, func, select

from db.errors import db_errors
from db.schema import request_counts as T


@db_errors
def minute_series(engine: Engine, minutes: int, now: float) -> dict[str, list[int]]:
    """Requests per minute per model for the last `minutes` minutes, oldest first.

    Shadow requests are left out: they are not traffic a client sent to that model.
    """
    last = math.floor(now / 60)
    first = last - minutes + 1
    query = (select(T.c.model, T.c.minute, func.sum(T.c.count))
             .where(T.c.minute >= first, T.c.minute <= last, T.c.shadow.is_(False))
             .group_by(T.c.model, T.c.minute))
    series: dict[str, list[int]] = {}
    with engine.connect() as conn:
        for model, minute, count in conn.execute(query):
            series.setdefault(model, [0] * minutes)[minute - first] = int(count)
    return series
