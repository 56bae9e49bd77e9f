"""Placements, experiments and the routing version: what routers must see.

Every write here bumps the routing version in the same transaction, so a router
polling `routing_version` reloads exactly when something changed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, select, update

from base.errors import InvalidArgument, NotFound
from db.engine import write
from db.errors import db_errors
from db.schema import ExperimentRow, PlacementRow, RoutingVersion

Pool = Literal["hot", "cold"]


@dataclass(frozen=True)
class Placement:
    model: str
    pool: str  # "hot" | "cold"
    endpoint: str | None  # base URL of the hot server, e.g. http://127.0.0.1:8501
    healthy: bool
    pinned: bool
    updated_at: float


@dataclass(frozen=True)
class RoutingSnapshot:
    """Everything a router needs, read in one transaction."""

    version: int
    placements: dict[str, Placement]
    experiments: dict[str, dict[str, Any]]


def _bump(conn: Connection) -> None:
    conn.execute(update(RoutingVersion).where(RoutingVersion.id == 1)
                 .values(version=RoutingVersion.version + 1))


def _placement(row: PlacementRow) -> Placement:
    return Placement(model=row.model, pool=row.pool, endpoint=row.endpoint,
                     healthy=bool(row.healthy), pinned=bool(row.pinned),
                     updated_at=row.updated_at)


def _get_row(conn: Connection, model: str) -> Any:
    return conn.execute(select(PlacementRow.__table__).where(PlacementRow.model == model)).first()


@db_errors
def routing_version(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(RoutingVersion.version)
                                .where(RoutingVersion.id == 1)).scalar_one())


@db_errors
def set_placement(engine: Engine, model: str, pool: Pool, endpoint: str | None, *,
                  healthy: bool = True) -> None:
    """Route `model` to its hot `endpoint` (pool 'hot') or to the cold pool ('cold')."""
    if pool not in ("hot", "cold"):
        raise InvalidArgument(f"pool must be 'hot' or 'cold', not {pool!r}")
    if pool == "hot" and not endpoint:
        raise InvalidArgument("a hot placement needs an endpoint")
    if pool == "cold":
        endpoint = None
    now = time.time()
    with write(engine) as conn:
        table = PlacementRow.__table__
        if _get_row(conn, model) is None:
            conn.execute(table.insert().values(model=model, pool=pool, endpoint=endpoint,
                                               healthy=healthy, pinned=False, updated_at=now))
        else:
            conn.execute(table.update().where(table.c.model == model).values(
                pool=pool, endpoint=endpoint, healthy=healthy, updated_at=now))
        _bump(conn)


@db_errors
def remove_placement(engine: Engine, model: str) -> None:
    """Send `model` back to the cold pool. A pinned model keeps its row (and its pin)."""
    with write(engine) as conn:
        table = PlacementRow.__table__
        row = _get_row(conn, model)
        if row is None:
            return
        if row.pinned:
            conn.execute(table.update().where(table.c.model == model).values(
                pool="cold", endpoint=None, healthy=True, updated_at=time.time()))
        else:
            conn.execute(delete(table).where(table.c.model == model))
        _bump(conn)


@db_errors
def mark_unhealthy(engine: Engine, model: str, endpoint: str) -> bool:
    """The router could not reach `endpoint`: route `model` cold until the orchestrator
    sets a healthy placement again. Only the placement still pointing at `endpoint`
    is touched (the orchestrator may have moved it meanwhile). True if it changed."""
    with write(engine) as conn:
        table = PlacementRow.__table__
        result = conn.execute(table.update().where(
            table.c.model == model, table.c.endpoint == endpoint,
            table.c.healthy.is_(True)).values(healthy=False, updated_at=time.time()))
        if result.rowcount:
            _bump(conn)
        return bool(result.rowcount)


@db_errors
def set_pinned(engine: Engine, model: str, pinned: bool) -> None:
    """Pin (the orchestrator keeps it hot) or unpin a model."""
    with write(engine) as conn:
        table = PlacementRow.__table__
        row = _get_row(conn, model)
        if row is None:
            if not pinned:
                return
            conn.execute(table.insert().values(model=model, pool="cold", endpoint=None,
                                               healthy=True, pinned=True, updated_at=time.time()))
        elif not pinned and row.pool == "cold":
            conn.execute(delete(table).where(table.c.model == model))
        else:
            conn.execute(table.update().where(table.c.model == model).values(
                pinned=pinned, updated_at=time.time()))
        _bump(conn)


@db_errors
def list_placements(engine: Engine) -> list[Placement]:
    """Every placement row: hot models, and pinned ones even while cold."""
    with engine.connect() as conn:
        rows = conn.execute(select(PlacementRow.__table__).order_by(PlacementRow.model)).all()
    return [_placement(r) for r in rows]  # type: ignore[arg-type]


@db_errors
def upsert_experiment(engine: Engine, spec: Mapping[str, Any]) -> bool:
    """Create or replace the experiment `spec["name"]` (a validated spec as plain data,
    JSON-serialisable). True if it was created."""
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument("experiment spec needs a name")
    text = json.dumps(dict(spec), sort_keys=True)
    now = time.time()
    with write(engine) as conn:
        table = ExperimentRow.__table__
        exists = conn.execute(select(table.c.name).where(table.c.name == name)).first()
        if exists is None:
            conn.execute(table.insert().values(name=name, spec=text, created_at=now,
                                               updated_at=now))
        else:
            conn.execute(table.update().where(table.c.name == name).values(
                spec=text, updated_at=now))
        _bump(conn)
    return exists is None


@db_errors
def delete_experiment(engine: Engine, name: str) -> None:
    with write(engine) as conn:
        table = ExperimentRow.__table__
        if conn.execute(delete(table).where(table.c.name == name)).rowcount == 0:
            raise NotFound(f"no experiment named {name!r}")
        _bump(conn)


@db_errors
def list_experiments(engine: Engine) -> list[dict[str, Any]]:
    """Every experiment's spec (as stored by `upsert_experiment`), by name."""
    with engine.connect() as conn:
        return _experiments(conn)


@db_errors
def get_experiment(engine: Engine, name: str) -> dict[str, Any]:
    with engine.connect() as conn:
        text = conn.execute(select(ExperimentRow.spec).where(ExperimentRow.name == name)).scalar()
    if text is None:
        raise NotFound(f"no experiment named {name!r}")
    return dict(json.loads(text))


def _experiments(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(ExperimentRow.spec).order_by(ExperimentRow.name)).scalars()
    return [dict(json.loads(text)) for text in rows]


@db_errors
def load_routing(engine: Engine) -> RoutingSnapshot:
    """Version, placements and experiments as of one moment."""
    with engine.begin() as conn:
        version = conn.execute(select(RoutingVersion.version)
                               .where(RoutingVersion.id == 1)).scalar_one()
        rows = conn.execute(select(PlacementRow.__table__)).all()
        experiments = _experiments(conn)
    return RoutingSnapshot(version=int(version),
                           placements={r.model: _placement(r) for r in rows},  # type: ignore[arg-type]
                           experiments={e["name"]: e for e in experiments})
