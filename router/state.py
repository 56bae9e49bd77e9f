"""What one router process holds: wired once in `router.app`, read by the endpoints."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httpx
from fastapi import Request

from base import http1
from db.queries import Engine
from router.config import RouterConfig
from router.counting import Counter
from router.metrics import RouterMetrics
from router.table import RoutingTable

log = logging.getLogger(__name__)


@dataclass
class RouterState:
    config: RouterConfig
    engine: Engine
    table: RoutingTable
    counter: Counter
    metrics: RouterMetrics
    client: httpx.AsyncClient | None = None  # the dashboard's calls to the cold pool
    forwarding: http1.Client | None = None  # the serving path's calls to backends
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    grpc_port: int = 0  # the gRPC front's bound port, once started

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Fire-and-forget, keeping a reference so the task is not collected mid-flight."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background task failed: %r", task.exception())

    def count(self, model: str, pool: str, status: int, latency_s: float, inference: bool,
              experiment: str = "", variant: str = "") -> None:
        """One answer in the metrics and (inference only: status and metadata calls are not
        load) the db counts; the same rule for the REST and the gRPC front."""
        if status == HTTPStatus.NOT_FOUND and not experiment and model not in self.table.placements:
            # Not found, for a name the routing table does not know: any name can be asked
            # for, so nothing per name is kept (no db count row, no metric label, no
            # dashboard row); one shared series counts them. A placed model's 404 (a missing
            # version, say) is that model's error, counted as such.
            self.metrics.observe_not_found(pool, latency_s)
            return
        self.metrics.observe(model, pool, status, latency_s)
        if inference:
            self.counter.record(model, latency_s, status, experiment=experiment, variant=variant)

    def http(self) -> httpx.AsyncClient:
        assert self.client is not None, "router not started"
        return self.client

    def forwarder(self) -> http1.Client:
        assert self.forwarding is not None, "router not started"
        return self.forwarding


def get_state(request: Request) -> RouterState:
    state: RouterState = request.app.state.router
    return state
