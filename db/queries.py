"""Every read and write other parts make on the tierserve db: the one module they import.

Opening: `make_engine` (`db.engine`, migrations in `db.migrate`). Placements, pins,
routing version, experiments: `db.routing`; events: `db.events`; request counts (5 s
buckets rolled up into minutes): `db.counts`; rates and stats: `db.stats`; dashboard
series: `db.series`; cold shard membership: `db.shards`. All functions are synchronous:
call them from a thread (`asyncio.to_thread`) on an event loop.

Errors are tierserve's (`base.errors`), never SQLAlchemy's (see `db.errors`): a db
that cannot be reached, is locked past its busy timeout or lost its connection
raises `Unavailable`; callers catch that, not `Exception`.
"""

from __future__ import annotations

from sqlalchemy import Engine

from db.counts import RECENT_MINUTES, CountDelta, add_counts, bucket_of, roll_up
from db.engine import make_engine
from db.events import Event, list_events, record_event
from db.routing import (
    PIN_SOURCES,
    Pin,
    PinSource,
    Placement,
    Pool,
    RoutingSnapshot,
    delete_experiment,
    get_experiment,
    list_experiments,
    list_pins,
    list_placements,
    load_routing,
    mark_unhealthy,
    remove_placement,
    routing_version,
    set_pinned,
    set_placement,
    set_policy_pins,
    upsert_experiment,
)
from db.schema import BUCKET_S, BUCKETS_PER_MINUTE
from db.series import minute_series
from db.shards import ColdShard, heartbeat_shard, leave_shard, list_shards, remove_shard
from db.stats import Stats, experiment_stats, model_stats, request_rates

__all__ = [
    "BUCKETS_PER_MINUTE",
    "BUCKET_S",
    "PIN_SOURCES",
    "RECENT_MINUTES",
    "ColdShard",
    "CountDelta",
    "Engine",
    "Event",
    "Pin",
    "PinSource",
    "Placement",
    "Pool",
    "RoutingSnapshot",
    "Stats",
    "add_counts",
    "bucket_of",
    "delete_experiment",
    "experiment_stats",
    "get_experiment",
    "heartbeat_shard",
    "leave_shard",
    "list_events",
    "list_experiments",
    "list_pins",
    "list_placements",
    "list_shards",
    "load_routing",
    "make_engine",
    "mark_unhealthy",
    "minute_series",
    "model_stats",
    "record_event",
    "remove_placement",
    "remove_shard",
    "request_rates",
    "roll_up",
    "routing_version",
    "set_pinned",
    "set_placement",
    "set_policy_pins",
    "upsert_experiment",
]
