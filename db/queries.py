"""Every read and write other parts make on the tierserve db: the one module they import.

Opening: `make_engine` (`db.engine`). Placements / routing version / experiments:
`db.routing`; events: `db.events`; request counts, rates and stats: `db.counts`;
dashboard series: `db.series`. All functions are synchronous: call them from a
thread (`asyncio.to_thread`) on an event loop.

Errors are tierserve's (`base.errors`), never SQLAlchemy's (see `db.errors`): a db
that cannot be reached, is locked past its busy timeout or lost its connection
raises `Unavailable`; callers catch that, not `Exception`.
"""

from __future__ import annotations

from sqlalchemy import Engine

from db.counts import (
    CountDelta,
    Stats,
    add_counts,
    experiment_stats,
    model_stats,
    request_rates,
)
from db.engine import make_engine
from db.events import Event, list_events, record_event
from db.routing import (
    Placement,
    Pool,
    RoutingSnapshot,
    delete_experiment,
    get_experiment,
    list_experiments,
    list_placements,
    load_routing,
    mark_unhealthy,
    remove_placement,
    routing_version,
    set_pinned,
    set_placement,
    upsert_experiment,
)
from db.series import minute_series

__all__ = [
    "CountDelta",
    "Engine",
    "Event",
    "Placement",
    "Pool",
    "RoutingSnapshot",
    "Stats",
    "add_counts",
    "delete_experiment",
    "experiment_stats",
    "get_experiment",
    "list_events",
    "list_experiments",
    "list_placements",
    "load_routing",
    "make_engine",
    "mark_unhealthy",
    "minute_series",
    "model_stats",
    "record_event",
    "remove_placement",
    "request_rates",
    "routing_version",
    "set_pinned",
    "set_placement",
    "upsert_experiment",
]
