"""Placements, pins, experiments and the routing version: what routers must see.

Every write that changes something bumps the routing version in the same transaction,
so a router polling `routing_version` reloads exactly when something changed.

Pins: a model is pinned (kept hot by the orchestrator) while it has a pin from any
source: 'policy' (the YAML's `hot.pinned`, replaced as a whole on every policy load) or
'admin' (the router's admin API, until unpinned there). Each source adds and removes only
its own pin, so a policy reload never clears an admin pin and an admin unpin never clears
a policy pin.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from base.errors import InvalidArgument, NotFound
from db.engine import write
from db.errors import db_errors
from db.schema import ExperimentRow, PinRow, PlacementGrpcRow, PlacementRow, RoutingVersion

Pool = Literal["hot", "cold"]
PinSource = Literal["policy", "admin"]
PIN_SOURCES: tuple[PinSource, ...] = ("policy", "admin")


@dataclass(frozen=True)
class Placement:
    model: str
    pool: str  # "hot" | "cold"
    endpoint: str | None  # base URL of the hot server, e.g. http://127.0.0.1:8501
    healthy: bool
    pinned: bool
    updated_at: float
    pinned_by: tuple[str, ...] = ()  # the pins' sources: "policy", "admin" or both
    grpc_endpoint: str | None = None  # the hot server's gRPC address, host:port, when known


@dataclass(frozen=True)
class Pin:
    model: str
    source: str  # "policy" | "admin"
    created_at: float


@dataclass(frozen=True)
class RoutingSnapshot:
    """Everything a router needs, read in one transaction."""

    version: int
    placements: dict[str, Placement]
    experiments: dict[str, dict[str, Any]]


def _bump(conn: Connection) -> None:
    conn.execute(update(RoutingVersion).where(RoutingVersion.id == 1)
                 .values(version=RoutingVersion.version + 1))


def _placement(row: PlacementRow, pins: Mapping[str, tuple[tuple[str, ...], float]],
               grpc: Mapping[str, tuple[str, str]]) -> Placement:
    sources = pins.get(row.model, ((), 0.0))[0]
    endpoint, address = grpc.get(row.model, ("", None))
    return Placement(model=row.model, pool=row.pool, endpoint=row.endpoint,
                     healthy=bool(row.healthy), pinned=bool(sources),
                     updated_at=row.updated_at, pinned_by=sources,
                     # Only for the server it was written with (a REST-only writer may have
                     # moved the placement since).
                     grpc_endpoint=address if endpoint == row.endpoint else None)


def _pins(conn: Connection) -> dict[str, tuple[tuple[str, ...], float]]:
    """Pinned model -> (its pins' sources in PIN_SOURCES order, when it was last pinned)."""
    found: dict[str, tuple[list[str], float]] = {}
    for model, source, at in conn.execute(select(PinRow.model, PinRow.source,
                                                 PinRow.created_at)):
        sources, last = found.setdefault(model, ([], 0.0))
        sources.append(source)
        found[model] = (sources, max(last, at))
    order = {source: i for i, source in enumerate(PIN_SOURCES)}
    return {model: (tuple(sorted(sources, key=lambda s: order.get(s, len(order)))), at)
            for model, (sources, at) in found.items()}


def _placements(conn: Connection) -> dict[str, Placement]:
    """Every placement row, plus a cold placement for each pinned model without one."""
    pins = _pins(conn)
    grpc = {m: (e, g) for m, e, g in conn.execute(select(
        PlacementGrpcRow.model, PlacementGrpcRow.endpoint, PlacementGrpcRow.grpc))}
    rows = conn.execute(select(PlacementRow.__table__)).all()
    placements = {r.model: _placement(r, pins, grpc) for r in rows}  # type: ignore[arg-type]
    for model, (sources, pinned_at) in pins.items():
        if model not in placements:
            placements[model] = Placement(model=model, pool="cold", endpoint=None, healthy=True,
                                          pinned=True, updated_at=pinned_at, pinned_by=sources)
    return dict(sorted(placements.items()))


def _get_row(conn: Connection, model: str) -> Any:
    return conn.execute(select(PlacementRow.__table__).where(PlacementRow.model == model)).first()


@db_errors
def routing_version(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(RoutingVersion.version)
                                .where(RoutingVersion.id == 1)).scalar_one())


@db_errors
def set_placement(engine: Engine, model: str, pool: Pool, endpoint: str | None, *,
                  healthy: bool = True, grpc: str | None = None) -> None:
    """Route `model` to its hot `endpoint` (pool 'hot') or to the cold pool ('cold');
    `grpc`: the hot server's gRPC address (host:port), if it serves gRPC."""
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
                                               healthy=healthy, updated_at=now))
        else:
            conn.execute(table.update().where(table.c.model == model).values(
                pool=pool, endpoint=endpoint, healthy=healthy, updated_at=now))
        grpc_table = PlacementGrpcRow.__table__
        conn.execute(delete(grpc_table).where(grpc_table.c.model == model))
        if pool == "hot" and grpc:
            conn.execute(grpc_table.insert().values(model=model, endpoint=endpoint, grpc=grpc))
        _bump(conn)


@db_errors
def remove_placement(engine: Engine, model: str) -> None:
    """Send `model` back to the cold pool (its pins, if any, stay)."""
    with write(engine) as conn:
        table = PlacementRow.__table__
        grpc_table = PlacementGrpcRow.__table__
        conn.execute(delete(grpc_table).where(grpc_table.c.model == model))
        if conn.execute(delete(table).where(table.c.model == model)).rowcount:
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
def set_pinned(engine: Engine, model: str, pinned: bool, source: PinSource = "admin") -> bool:
    """Add or remove `source`'s pin on `model` (another source's pin stays). True if it
    changed; the model stays pinned while any source pins it."""
    if source not in PIN_SOURCES:
        raise InvalidArgument(f"pin source must be one of {PIN_SOURCES}, not {source!r}")
    with write(engine) as conn:
        table = PinRow.__table__
        where = (table.c.model == model, table.c.source == source)
        exists = conn.execute(select(table.c.model).where(*where)).first() is not None
        if pinned == exists:
            return False
        if pinned:
            try:
                with conn.begin_nested():
                    conn.execute(insert(table).values(model=model, source=source,
                                                      created_at=time.time()))
            except IntegrityError:
                return False  # pinned by a concurrent call meanwhile
        else:
            conn.execute(delete(table).where(*where))
        _bump(conn)
    return True


@db_errors
def set_policy_pins(engine: Engine, models: Iterable[str]) -> bool:
    """Make the policy's pins exactly `models` (admin pins are left alone). True if changed."""
    wanted = set(models)
    with write(engine) as conn:
        table = PinRow.__table__
        have = set(conn.execute(select(table.c.model)
                                .where(table.c.source == "policy")).scalars())
        gone, new = have - wanted, wanted - have
        if gone:
            conn.execute(delete(table).where(table.c.source == "policy",
                                             table.c.model.in_(sorted(gone))))
        now = time.time()
        for model in sorted(new):
            conn.execute(insert(table).values(model=model, source="policy", created_at=now))
        if gone or new:
            _bump(conn)
    return bool(gone or new)


@db_errors
def list_pins(engine: Engine) -> list[Pin]:
    """Every pin, oldest first (a model pinned by both sources appears twice)."""
    with engine.connect() as conn:
        rows = conn.execute(select(PinRow.model, PinRow.source, PinRow.created_at)
                            .order_by(PinRow.created_at, PinRow.model, PinRow.source)).all()
    return [Pin(model, source, created_at) for model, source, created_at in rows]


@db_errors
def list_placements(engine: Engine) -> list[Placement]:
    """Every placement by model: hot models, and pinned ones even while cold."""
    with engine.begin() as conn:
        return list(_placements(conn).values())


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
        placements = _placements(conn)
        experiments = _experiments(conn)
    return RoutingSnapshot(version=int(version), placements=placements,
                           experiments={e["name"]: e for e in experiments})
