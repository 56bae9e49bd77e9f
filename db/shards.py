"""Cold shard membership: each shard of a sharded cold tier registers and heartbeats its row;
routers read every row with their routing table's refresh and route among the live ones.

Heartbeats do not bump the routing version (they come every few seconds from every
shard): routers read this small table on each poll instead, and judge staleness with
their own clock against `heartbeat_at` (the shards' clocks, so machines keep NTP time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, select

from base.errors import InvalidArgument
from base.names import is_valid_model_name
from db.engine import write
from db.errors import db_errors
from db.schema import ColdShardRow


@dataclass(frozen=True)
class ColdShard:
    name: str
    url: str  # the shard's base URL, as routers reach it
    grpc: str | None  # its gRPC front's host:port, None if it serves none
    healthy: bool  # False: it said so (its pool did not answer, or it stopped cleanly)
    heartbeat_at: float  # Unix time of its last heartbeat
    registered_at: float

    def live(self, now: float, stale_after: float) -> bool:
        """Healthy and heard from within `stale_after` seconds of `now`."""
        return self.healthy and now - self.heartbeat_at <= stale_after


@db_errors
def heartbeat_shard(engine: Engine, name: str, url: str, *, grpc: str | None = None,
                    healthy: bool = True, now: float | None = None) -> None:
    """Register shard `name` at `url` or renew its row (its URL may change: a shard that
    comes back elsewhere keeps its name, hence its models)."""
    if not is_valid_model_name(name):  # the same alphabet: it is a label, not a path
        raise InvalidArgument(f"invalid shard name {name!r}")
    if not url.startswith(("http://", "https://")):
        raise InvalidArgument(f"shard url must be http:// or https://, not {url!r}")
    at = time.time() if now is None else now
    url = url.rstrip("/")
    with write(engine) as conn:
        table = ColdShardRow.__table__
        found = conn.execute(select(table.c.name).where(table.c.name == name)).first()
        if found is None:  # a concurrent first beat of the same name: IntegrityError, retried
            conn.execute(table.insert().values(name=name, url=url, grpc=grpc, healthy=healthy,
                                               heartbeat_at=at, registered_at=at))
        else:
            conn.execute(table.update().where(table.c.name == name).values(
                url=url, grpc=grpc, healthy=healthy, heartbeat_at=at))


@db_errors
def leave_shard(engine: Engine, name: str) -> bool:
    """A clean stop: routers stop sending to `name` at their next poll. The row stays
    (unhealthy) until the shard beats again. True if the row existed."""
    with write(engine) as conn:
        table = ColdShardRow.__table__
        result = conn.execute(table.update().where(table.c.name == name).values(healthy=False))
        return bool(result.rowcount)


@db_errors
def remove_shard(engine: Engine, name: str) -> bool:
    """Forget shard `name` for good (an operator retiring it). True if it existed."""
    with write(engine) as conn:
        table = ColdShardRow.__table__
        return bool(conn.execute(table.delete().where(table.c.name == name)).rowcount)


@db_errors
def list_shards(engine: Engine) -> list[ColdShard]:
    """Every registered shard by name, live or not (callers apply `ColdShard.live`)."""
    with engine.connect() as conn:
        rows = conn.execute(select(ColdShardRow.__table__).order_by(ColdShardRow.name)).all()
    return [ColdShard(name=r.name, url=r.url, grpc=r.grpc, healthy=bool(r.healthy),
                      heartbeat_at=float(r.heartbeat_at), registered_at=float(r.registered_at))
            for r in rows]
