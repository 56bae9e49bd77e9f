"""The routing table held in memory, reloaded when the db's routing version changes.

Lookups are plain dict reads on the event loop; only the poller touches the db
(from a thread), about once per `poll_interval`, with one tiny query unless the
version moved.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from dataclasses import dataclass

from pydantic import ValidationError

from base.errors import TierserveError
from db import queries
from db.queries import Engine, Placement
from policies.experiments import ExperimentSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    base_url: str
    pool: str  # "hot" | "cold"
    grpc: str | None = None  # the same backend's gRPC address, host:port, when known


class RoutingTable:
    def __init__(self, engine: Engine, cold_url: str, cold_grpc: str | None = None) -> None:
        self.engine = engine
        self.cold_url = cold_url
        self.cold_grpc = cold_grpc
        self.version = -1
        self.placements: dict[str, Placement] = {}
        self.experiments: dict[str, ExperimentSpec] = {}
        self._reload_lock = threading.Lock()

    def route(self, model: str) -> Route:
        placement = self.placements.get(model)
        if (placement is not None and placement.pool == "hot" and placement.healthy
                and placement.endpoint):
            return Route(placement.endpoint.rstrip("/"), "hot", placement.grpc_endpoint)
        return self.route_cold()

    def route_cold(self) -> Route:
        return Route(self.cold_url, "cold", self.cold_grpc)

    def forget_hot(self, model: str, endpoint: str) -> None:
        """Stop using an endpoint at once, before the db round trip comes back."""
        placement = self.placements.get(model)
        if placement is not None and (placement.endpoint or "").rstrip("/") == endpoint:
            self.placements = {**self.placements,
                               model: dataclasses.replace(placement, healthy=False)}

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
                await asyncio.to_thread(self.reload)
            except TierserveError as exc:  # keep serving the last table through db trouble
                log.warning("routing table reload failed (%s); keeping version %s",
                            exc, self.version)
            except Exception:  # a bug must not freeze routing for good: log it, go on
                log.exception("routing table reload failed; keeping version %s", self.version)
