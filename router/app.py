"""The router's FastAPI app: wiring, background loops, and the non-admin endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from base import forwarding
from base.asgi import Receive, Scope, Send
from base.errors import TierserveError
from base.http_errors import install_error_handlers
from base.version import __version__
from db.queries import Engine, make_engine
from router.admin import admin
from router.config import RouterConfig
from router.counting import Counter
from router.grpc_front import GrpcFront
from router.grpc_front import start_server as start_grpc
from router.grpc_front import stop_server as stop_grpc
from router.inference import Frontend
from router.metrics import RouterMetrics
from router.readiness import DbCheck, Readiness, cold_pool_check
from router.state import RouterState
from router.table import RoutingTable
from router.ui import ui

log = logging.getLogger(__name__)
METRICS_LABEL_REFRESH_S = 10.0
SHUTDOWN_GRACE_S = 5.0

async def _every(interval: float, func: Callable[[], Any]) -> None:
    while True:
        await asyncio.sleep(interval)
        func()

# TF Serving's paths are case-insensitive (`/V1/MODELS/m`); `/v1` alone would get FastAPI's
# redirect to `/v1/`. Tried only when the plain prefix test fails: the serving path pays nothing.
_OTHER_V1_RE = re.compile(r"/v1(?:/|$)", re.IGNORECASE)


class RouterApp(FastAPI):
    """FastAPI, with /v1 handed to the Frontend before any middleware or routing."""

    frontend: Frontend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["path"].startswith("/v1/")
                                        or _OTHER_V1_RE.match(scope["path"])):
            await self.frontend(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(config: RouterConfig, engine: Engine | None = None) -> FastAPI:
    """The router app. `engine` defaults to `make_engine(config.db_url)`."""
    engine = engine if engine is not None else make_engine(config.db_url)
    state = RouterState(config=config, engine=engine,
                        table=RoutingTable(engine, config.cold_url, config.cold_grpc,
                                           config.shard_stale_after),
                        counter=Counter(engine), metrics=RouterMetrics(config.metrics_top_models))
    frontend = Frontend(state)
    grpc_front = GrpcFront(state, frontend)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(state.table.refresh)
        state.client = httpx.AsyncClient(timeout=config.request_timeout, trust_env=False)
        state.forwarding = forwarding.make_client(config.connect_timeout,
                                                  config.request_timeout, config.max_connections)
        loops = [asyncio.create_task(coro) for coro in (
            state.table.poll_forever(config.poll_interval),
            state.counter.flush_forever(config.flush_interval),
            _every(METRICS_LABEL_REFRESH_S, state.metrics.refresh_labels))]
        # On this event loop, beside uvicorn's: one process, one state for both fronts.
        grpc_server, state.grpc_port = await start_grpc(
            grpc_front, config.host, config.grpc_port, config.max_body_bytes,
            config.grpc_reuse_port)
        try:
            yield
        finally:
            await stop_grpc(grpc_server, grpc_front)
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            if state.background:  # shadow requests and unhealthy marks still running
                await asyncio.wait(set(state.background), timeout=SHUTDOWN_GRACE_S)
            try:
                await state.counter.flush()
            except TierserveError:
                log.exception("final count flush failed; %d requests lost",
                              state.counter.pending_requests())
            await state.forwarding.aclose()
            await state.client.aclose()

    app = RouterApp(title="tierserve router", version=__version__, lifespan=lifespan,
                  description="TF Serving's REST API in front of the hot and cold pools, "
                              "with A/B experiments and an admin API.")
    app.state.router = state
    install_error_handlers(app)
    app.include_router(admin)
    app.include_router(ui)

    # Serving path: /v1 is answered by the Frontend, a plain ASGI app, before FastAPI's
    # middleware and routing (see router.inference); these routes only document it.
    app.frontend = frontend
    state.metrics.in_flight.set_function(lambda: frontend.in_flight)

    async def documented_only() -> Response:
        raise AssertionError("answered by router.inference.Frontend")

    app.add_api_route("/v1/{path:path}", documented_only, methods=["GET"], tags=["inference"],
                      summary="TF Serving REST: GET /v1/models/{name}"
                              "[/versions/{v}|/labels/{l}][/metadata]")
    app.add_api_route("/v1/{path:path}", documented_only, methods=["POST"], tags=["inference"],
                      summary="TF Serving REST: POST /v1/models/{name}[/versions/{v}|/labels/{l}]"
                              ":predict|classify|regress (body forwarded unchanged)")

    unsharded = cold_pool_check(state.http, config.cold_url)

    async def cold_tier() -> str | None:
        # Live shards vouch for themselves (a fresh heartbeat means their pool answered);
        # only an unsharded tier is asked here.
        return None if state.table.shards else await unsharded()

    readiness = Readiness({"cold pool": cold_tier,
                           "db": DbCheck(engine)})

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, Any]:
        """Kept for existing probes: ok while the process serves HTTP (see /livez, /readyz)."""
        return {"status": "ok", "routing_version": state.table.version,
                "cold_shards": sorted(state.table.shards)}

    @app.get("/livez", tags=["ops"])
    async def livez() -> dict[str, str]:
        """200 while the process runs: restart it only when this fails."""
        return {"status": "alive"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """200 when the cold pool and the db answer, else 503 `{"error": ...}` naming what is
        down (checked at most once a second, whatever the number of probes)."""
        verdict = await readiness.verdict()
        if verdict.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"error": verdict.error()}, status_code=503)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        state.metrics.routing_version.set(state.table.version)
        state.metrics.pending_counts.set(state.counter.pending_requests())
        return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers (`--workers N`): settings come from TIERSERVE_* variables."""
    return create_app(RouterConfig.load())
