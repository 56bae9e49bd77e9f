"""Events: one row per decision or incident (promote, demote, unhealthy, pin...)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, select

from db.engine import write
from db.errors import db_errors
from db.schema import EventRow


@dataclass(frozen=True)
class Event:
    id: int
    ts: float
    model: str
    action: str
    reason: str
    outcome: str


@db_errors
def record_event(engine: Engine, model: str, action: str, reason: str = "",
                 outcome: str = "", ts: float | None = None) -> None:
    with write(engine) as conn:
        conn.execute(EventRow.__table__.insert().values(
            ts=time.time() if ts is None else ts, model=model, action=action,
            reason=reason, outcome=outcome))


@db_errors
def list_events(engine: Engine, limit: int = 100, model: str | None = None) -> list[Event]:
    """The newest events first."""
    table = EventRow.__table__
    query = select(table).order_by(table.c.ts.desc(), table.c.id.desc()).limit(limit)
    if model is not None:
        query = query.where(table.c.model == model)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [Event(id=r.id, ts=r.ts, model=r.model, action=r.action, reason=r.reason,
                  outcome=r.outcome) for r in rows]
