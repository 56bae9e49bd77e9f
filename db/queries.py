"""Every read and write other parts make on the tierserve db (one import point).

Placements / routing version / experiments: `db.routing`; events: `db.events`;
request counts, rates and stats: `db.counts`. All functions are synchronous:
call them from a thread (`asyncio.to_thread`) on an event loop.
"""

from __future__ import annotations

from db.counts import (
    CountDelta,
    Stats,
    add_counts,
    experiment_stats,
    model_stats,
    request_rates,
)
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

__all__ = [
    "CountDelta",
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
    "mark_unhealthy",
    "model_stats",
    "record_event",
    "remove_placement",
    "request_rates",
    "routing_version",
    "set_pinned",
    "set_placement",
    "upsert_experiment",
]
