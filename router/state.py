"""What one router process holds: wired once in `router.app`, read by the endpoints."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
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

    def http(self) -> httpx.AsyncClient:
        assert self.client is not None, "router not started"
        return self.client

    def forwarder(self) -> http1.Client:
        assert self.forwarding is not None, "router not started"
        return self.forwarding


def get_state(request: Request) -> RouterState:
    state: RouterState = request.app.state.router
    return state
