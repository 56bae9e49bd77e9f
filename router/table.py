"""The routing table held in memory, reloaded when the db's routing version changes.

Lookups are plain dict reads on the event loop; only the poller touches the db
(from a thread), about once per `poll_interval`, with two tiny queries (the version,
and the cold shards' rows) unless the version moved.

The one place a model's backend is decided, for every front (REST, gRPC): `route(model)`
gives its hot server or its cold shard, `route_cold(model)` its cold shard alone (the
fallback when a hot server cannot be reached). With no live shard registered in the db
(the embedded default: one pool), the cold tier is `cold_url`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from base.errors import TierserveError
from db import queries
from db.queries import ColdShard, Engine, Placement
from policies.experiments import ExperimentSpec
from router import sharding

log = logging.getLogger(__name__)


# A shard silent for this long is skipped: three missed heartbeats (tierserve pool beats
# every 2 s), so one slow db write does not move its models.
SHARD_STALE_AFTER_S = 6.0


@dataclass(frozen=True)
class Route:
    base_url: str
    pool: str  # "hot" | "cold"
    grpc: str | None = None  # the same backend's gRPC address, host:port, when known
    shard: str = ""  # the cold shard's name; "" for hot, or an unsharded cold tier


class RoutingTable:
    def __init__(self, engine: Engine, cold_url: str, cold_grpc: str | None = None,
                 shard_stale_after: float = SHARD_STALE_AFTER_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.cold_url = cold_url
        self.cold_grpc = cold_grpc
        self.shard_stale_after = shard_stale_after
        self.clock = clock
        self.version = -1
        self.placements: dict[str, Placement] = {}
        self.experiments: dict[str, ExperimentSpec] = {}
        # live cold shards: name -> (base URL, gRPC address if it serves gRPC)
        self.shards: dict[str, tuple[str, str | None]] = {}
        self._down: dict[str, float] = {}  # shards this router could not reach -> until when
        self._reload_lock = threading.Lock()

    def route(self, model: str) -> Route:
        placement = self.placements.get(model)
        if (placement is not None and placement.pool == "hot" and placement.healthy
                and placement.endpoint):
            return Route(placement.endpoint.rstrip("/"), "hot", placement.grpc_endpoint)
        return self.route_cold(model)

    def route_cold(self, model: str | None = None) -> Route:
        """`model`'s cold shard (rendezvous hashing over the live shards). Without a model,
        or with no live shard, the configured cold pool."""
        shards = self.shards  # one read: the poller may swap it meanwhile
        name = sharding.owner(model, shards) if model is not None else None
        if name is None:
            return Route(self.cold_url, "cold", self.cold_grpc)
        url, grpc = shards[name]
        return Route(url, "cold", grpc, name)

    def shard_failed(self, model: str, route: Route) -> Route | None:
        """`route`'s shard could not be reached: skip it here for `shard_stale_after` (its
        row will be stale by then if it is dead), and give `model`'s next shard, or None
        when there is no other."""
        if not route.shard or route.shard not in self.shards:
            return None
        self._down[route.shard] = self.clock() + self.shard_stale_after
        self.shards = {n: u for n, u in self.shards.items() if n != route.shard}
        log.warning("cold shard %s unreachable; its models go to their next shard", route.shard)
        nxt = self.route_cold(model)
        return nxt if nxt.shard else None

    def forget_hot(self, model: str, endpoint: str) -> None:
        """Stop using an endpoint at once, before the db round trip comes back."""
        placement = self.placements.get(model)
        if placement is not None and (placement.endpoint or "").rstrip("/") == endpoint:
            self.placements = {**self.placements,
                               model: dataclasses.replace(placement, healthy=False)}

    def refresh(self) -> bool:
        """Blocking: one poll, the routing version (reloading if it moved) and the shards."""
        changed = self.reload()
        return self.refresh_shards() or changed

    def refresh_shards(self) -> bool:
        """Blocking: read the cold shards' rows; keep the live ones. True when the set changed.

        Read on every poll (heartbeats do not bump the routing version), judged on this
        router's clock: a shard unhealthy or silent past `shard_stale_after` is skipped, and
        its models go to the next shard in their ranking."""
        return self._install_shards(queries.list_shards(self.engine))

    def _install_shards(self, rows: list[ColdShard]) -> bool:
        now = self.clock()
        self._down = {n: until for n, until in self._down.items() if until > now}
        live = {s.name: (s.url, s.grpc) for s in rows
                if s.live(now, self.shard_stale_after) and s.name not in self._down}
        if live == self.shards:
            return False
        log.info("cold shards now %s", sorted(live) or f"none (cold pool {self.cold_url})")
        self.shards = live  # a whole new dict: lookups never see a half-built one
        return True

    def reload(self) -> bool:
        """Blocking: read the db if its version changed. True when the table changed."""
        version = queries.routing_version(self.engine)
        if version == self.version:
            return False
        with self._reload_lock:  # the poller and admin calls may reload at once
            snapshot = queries.load_routing(self.engine)
            if snapshot.version < self.version:
                return False  # a newer table was installed meanwhile
            self._install(snapshot)
        return True

    def _install(self, snapshot: queries.RoutingSnapshot) -> None:
        experiments: dict[str, ExperimentSpec] = {}
        for name, spec in snapshot.experiments.items():
            try:
                experiments[name] = ExperimentSpec.model_validate(spec)
            except ValidationError as exc:
                # Written by someone bypassing the admin API: skip it, keep routing.
                log.error("experiment %r in the db is invalid, ignored: %s", name, exc)
        # Swap whole dicts: readers on the loop never see a half-built table.
        self.placements = snapshot.placements
        self.experiments = experiments
        self.version = snapshot.version

    async def poll_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.refresh)
            except TierserveError as exc:  # keep serving the last table through db trouble
                log.warning("routing table reload failed (%s); keeping version %s",
                            exc, self.version)
            except Exception:  # a bug must not freeze routing for good: log it, go on
                log.exception("routing table reload failed; keeping version %s", self.version)
