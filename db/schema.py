"""SQLAlchemy 2 tables. SCHEMA_VERSION names this layout; `db.engine` creates or migrates it.

Portable types only (no JSON column, no dialect upserts) so any SQLAlchemy URL works.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db import histogram

# 1: the first layout. 2: 5 s request buckets (`request_counts_recent`) and pins with their
# source (`pins`) instead of `placements.pinned`. 3: request counts split their errors into
# `errors_4xx` and `errors_5xx`. `db.migrate` moves a db up, step by step.
SCHEMA_VERSION = 3
NAME_LEN = 128


class Base(DeclarativeBase):
    pass


class SchemaVersion(Base):
    """One row: the layout version the db holds (for later migrations)."""

    __tablename__ = "schema_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)


class RoutingVersion(Base):
    """One row: bumped by every change routers must see (placements, experiments)."""

    __tablename__ = "routing_version"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class PlacementRow(Base):
    """Where a model is served. No row (or pool 'cold') means the cold pool. Pins live in `pins`."""

    __tablename__ = "placements"
    model: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    pool: Mapped[str] = mapped_column(String(8), nullable=False)
    endpoint: Mapped[str | None] = mapped_column(String(512), nullable=True)
    healthy: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    updated_at: Mapped[float] = mapped_column(Float, nullable=False)


class PlacementGrpcRow(Base):
    """The gRPC address (host:port) of a hot placement's server, for the `endpoint` (its REST
    URL) it was written with. A table of its own rather than a column of `placements`:
    `create_all` adds it to an existing db, no migration needed."""

    __tablename__ = "placement_grpc"
    model: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(512), nullable=False)
    grpc: Mapped[str] = mapped_column(String(512), nullable=False)


class PinRow(Base):
    """A model the orchestrator keeps hot, once per source: 'policy' (the YAML's `hot.pinned`,
    replaced on every policy load) or 'admin' (the router's admin API, until unpinned there)."""

    __tablename__ = "pins"
    model: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)


class ExperimentRow(Base):
    """An A/B experiment owning a public name; its validated spec stored as JSON text."""

    __tablename__ = "experiments"
    name: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    spec: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[float] = mapped_column(Float, nullable=False)
    updated_at: Mapped[float] = mapped_column(Float, nullable=False)


class EventRow(Base):
    """One decision or incident (promote, demote, unhealthy, pin...)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[float] = mapped_column(Float, nullable=False, index=True)
    model: Mapped[str] = mapped_column(String(NAME_LEN), nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    outcome: Mapped[str] = mapped_column(Text, nullable=False, default="")


class ColdShardRow(Base):
    """One cold pool of a sharded cold tier, as it last reported itself (`db.shards`).

    Kept alive by the shard's own heartbeat; routers skip a row that is unhealthy or whose
    heartbeat is older than their stale bound. A table of its own, created by `create_all`
    on any db (no migration step: an older tierserve never reads it)."""

    __tablename__ = "cold_shards"
    name: Mapped[str] = mapped_column(String(NAME_LEN), primary_key=True)
    url: Mapped[str] = mapped_column(String(512), nullable=False)
    grpc: Mapped[str | None] = mapped_column(String(512), nullable=True)  # host:port
    healthy: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    heartbeat_at: Mapped[float] = mapped_column(Float, nullable=False)
    registered_at: Mapped[float] = mapped_column(Float, nullable=False)


HIST_COLUMNS: tuple[str, ...] = tuple(f"h{i:02d}" for i in range(histogram.N_BUCKETS))


def _count_columns() -> list[Column[Any]]:
    # The counted part of a row, the same at both resolutions.
    return [Column("shadow", Boolean, nullable=False, default=False),
            Column("count", Integer, nullable=False, default=0),
            # Every answer >= 400; from schema 3 on split into client and server errors
            # (errors counted before schema 3 are in `errors` only).
            Column("errors", Integer, nullable=False, default=0),
            Column("errors_4xx", Integer, nullable=False, default=0),
            Column("errors_5xx", Integer, nullable=False, default=0),
            Column("latency_sum", Float, nullable=False, default=0.0),
            *(Column(name, Integer, nullable=False, default=0) for name in HIST_COLUMNS)]


# Requests per (model, experiment, variant, minute, shadow). The latency histogram
# is one integer column per bucket so that several routers can merge into the same
# row with plain `col = col + :n` updates (no read-modify-write of a blob).
# `minute` is the Unix time // 60; `experiment` and `variant` are '' outside experiments.
# Holds whole minutes rolled up from `request_counts_recent` (and the counts of dbs
# from before schema 2).
request_counts = Table(
    "request_counts",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(NAME_LEN), nullable=False),
    Column("experiment", String(NAME_LEN), nullable=False, default=""),
    Column("variant", String(NAME_LEN), nullable=False, default=""),
    Column("minute", Integer, nullable=False, index=True),
    *_count_columns(),
    UniqueConstraint("model", "experiment", "variant", "minute", "shadow",
                     name="uq_request_counts_key"),
)

BUCKET_S = 5
BUCKETS_PER_MINUTE = 60 // BUCKET_S

# The same counts per 5 s bucket (`bucket` = Unix time // 5; `minute` = bucket // 12,
# stored so that per-minute reads group both tables alike). The router writes here;
# whole minutes older than `db.counts.RECENT_MINUTES` are rolled up into `request_counts`,
# each request living in exactly one of the two tables.
request_counts_recent = Table(
    "request_counts_recent",
    Base.metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(NAME_LEN), nullable=False),
    Column("experiment", String(NAME_LEN), nullable=False, default=""),
    Column("variant", String(NAME_LEN), nullable=False, default=""),
    Column("bucket", Integer, nullable=False, index=True),
    Column("minute", Integer, nullable=False),
    *_count_columns(),
    UniqueConstraint("model", "experiment", "variant", "bucket", "shadow",
                     name="uq_request_counts_recent_key"),
)
