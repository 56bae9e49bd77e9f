"""The cold pool's HTTP front: TF Serving's REST API for every model in the store.

A request holds its model version (a Lease) while it is forwarded to the model
server's REST port with one shared client, so the version is never unloaded
under it. Paths are parsed and rendered by base.tfs_rest, the forwarding is
base.forwarding's (the router's too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from base import forwarding, http1, tfs_rest
from base.errors import NotFound
from base.http_errors import install_error_handlers
from base.names import check_version
from base.tfs_rest import ModelPath
from pools.cold.cache import Tier
from pools.cold.poller import StorePoller
from pools.cold.pool import ColdPool, Lease, describe

FORWARD_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 256


def parse_path(path: str, method: str) -> ModelPath:
    call = tfs_rest.parse(method, path)
    if call.label is not None:
        # The store has no labels: only numbered versions exist here.
        raise NotFound(f"Unrecognized servable version label: {call.label}")
    return call


def create_app(pool: ColdPool, rest_url: str | Sequence[str]) -> FastAPI:
    """`rest_url`: the REST URL of each model server, in the order of `pool.servers`."""
    poller = StorePoller(pool)
    rest_urls = [rest_url] if isinstance(rest_url, str) else list(rest_url)
    state: dict[str, http1.Client] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["http"] = forwarding.make_client(CONNECT_TIMEOUT_S, FORWARD_TIMEOUT_S,
                                               MAX_CONNECTIONS)
        await pool.start()
        poller.start()
        try:
            yield
        finally:
            await poller.stop()
            await pool.stop()
            await state["http"].aclose()

    app = FastAPI(title="tierserve cold pool", lifespan=lifespan)
    app.state.pool = pool
    app.state.poller = poller
    install_error_handlers(app)

    async def forward(request: Request, lease: Lease, call: ModelPath) -> Response:
        model, version = lease.key
        # Status without a version asks for every version, as the caller did.
        pinned = None if call.kind == "status" and call.version is None else version
        path = call.with_target(model, pinned, None).render()
        # Once more if the server dropped a kept-alive connection as we reused it.
        answer = await forwarding.forward(state["http"], request.method,
                                          rest_urls[lease.server], path, await request.body(),
                                          forwarding.wanted_headers(request.headers.raw),
                                          attempts=2)
        headers = {"X-Tierserve-Pool": "cold", "X-Tierserve-Cache": "hit" if lease.hit else "miss",
                   "X-Tierserve-Model-Version": str(version)}
        return Response(answer.body, status_code=answer.status, headers=headers,
                        media_type=answer.content_type.decode("latin-1"))

    @app.api_route("/v1/models/{rest:path}", methods=["GET", "POST"])
    async def models(request: Request) -> Response:
        call = parse_path(request.url.path, request.method)
        lease = await pool.acquire(call.name, call.version)
        try:
            return await forward(request, lease, call)
        finally:
            pool.release(lease)

    @app.get("/admin/models")
    async def admin_list() -> dict[str, object]:
        servers = [{"grpc": b.client.address, "rest": url}
                   for b, url in zip(pool.servers.backends, rest_urls, strict=True)]
        return {**pool.listing(), "model_server": servers[0], "model_servers": servers}

    @app.post("/admin/models/{model}/load")
    async def admin_load(model: str, version: int | None = None,
                         wait: float | None = None) -> JSONResponse:
        entry = await pool.prewarm(model, None if version is None else check_version(version),
                                   pool.config.load_wait_s if wait is None else wait)
        body = describe(entry, 0.0)
        return JSONResponse(body, status_code=200 if body["loaded"] else 202)

    @app.post("/admin/models/{model}/unload")
    async def admin_unload(model: str, version: int | None = None, delete_files: bool = False,
                           wait: float | None = None) -> JSONResponse:
        out = await pool.unload(model, None if version is None else check_version(version),
                                delete_files, pool.config.load_wait_s if wait is None else wait)
        return JSONResponse({"unloaded": [{"model": m, "version": v} for m, v in out]})

    @app.post("/admin/poll")
    async def admin_poll() -> dict[str, int]:
        """Compare with the store now instead of at the next interval."""
        await poller.poll_once()
        return {"rounds": poller.rounds}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(pool.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "loaded": pool.cache.usage(Tier.MEMORY).count}

    return app
