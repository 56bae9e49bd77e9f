"""The cold pool's HTTP front: TF Serving's REST API for every model in the store.

A request holds its model version (a Lease) while it is forwarded to the model
server's REST port with one shared httpx client, so the version is never
unloaded under it. Paths are parsed with TF Serving's own patterns.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from base.errors import InvalidArgument, NotFound, Unavailable
from base.http_errors import install_error_handlers
from base.names import check_version
from pools.cold.cache import Tier
from pools.cold.poller import StorePoller
from pools.cold.pool import ColdPool, Lease, describe

# From tensorflow_serving/model_servers/http_rest_api_handler.cc
PREDICT_RE = re.compile(r"(?i)/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                        r":(classify|regress|predict)")
STATUS_RE = re.compile(r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|"
                       r"(?:/labels/([^/:]+)))?(?:/(metadata))?")

FORWARD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Target:
    model: str
    version: int | None
    verb: str | None  # classify / regress / predict, or "metadata", or None (status)


def parse_path(path: str, method: str) -> Target:
    pattern = PREDICT_RE if method == "POST" else STATUS_RE
    match = pattern.fullmatch(path)
    if match is None or not match.group(1):
        raise InvalidArgument(f"Malformed request: {method} {path}")
    model, version, label, verb = match.groups()
    if label is not None:
        # The store has no labels: only numbered versions exist here.
        raise NotFound(f"Unrecognized servable version label: {label}")
    return Target(model, None if version is None else check_version(version),
                  verb.lower() if verb else None)


def create_app(pool: ColdPool, rest_url: str | Sequence[str]) -> FastAPI:
    """`rest_url`: the REST URL of each model server, in the order of `pool.servers`."""
    poller = StorePoller(pool)
    rest_urls = [rest_url] if isinstance(rest_url, str) else list(rest_url)
    clients: list[httpx.AsyncClient] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Idle connections expire before the server's keep-alive timeout (uvicorn: 5 s).
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=64,
                              keepalive_expiry=2.0)
        clients.extend(httpx.AsyncClient(base_url=url, limits=limits, timeout=FORWARD_TIMEOUT_S)
                       for url in rest_urls)
        await pool.start()
        poller.start()
        try:
            yield
        finally:
            await poller.stop()
            await pool.stop()
            for client in clients:
                await client.aclose()

    app = FastAPI(title="tierserve cold pool", lifespan=lifespan)
    app.state.pool = pool
    app.state.poller = poller
    install_error_handlers(app)

    async def forward(request: Request, lease: Lease, target: Target) -> Response:
        model, version = lease.key
        path = f"/v1/models/{model}"
        if target.verb in ("classify", "regress", "predict"):
            path += f"/versions/{version}:{target.verb}"
        elif target.verb == "metadata":
            path += f"/versions/{version}/metadata"
        elif target.version is not None:
            path += f"/versions/{version}"
        body = await request.body()
        content_type = request.headers.get("content-type", "application/json")
        for attempt in (1, 2):
            try:
                upstream = await clients[lease.server].request(
                    request.method, path, content=body, headers={"content-type": content_type})
                break
            except httpx.TransportError as exc:
                # Once more if the server dropped a kept-alive connection as we reused it;
                # inference has no side effects. Never after a timeout: that doubles the wait.
                if attempt == 2 or isinstance(exc, httpx.TimeoutException):
                    raise Unavailable(f"model server unreachable: {exc!r}") from exc
        headers = {"X-Tierserve-Pool": "cold", "X-Tierserve-Cache": "hit" if lease.hit else "miss",
                   "X-Tierserve-Model-Version": str(version)}
        return Response(upstream.content, status_code=upstream.status_code, headers=headers,
                        media_type=upstream.headers.get("content-type", "application/json"))

    @app.api_route("/v1/models/{rest:path}", methods=["GET", "POST"])
    async def models(request: Request) -> Response:
        target = parse_path(request.url.path, request.method)
        lease = await pool.acquire(target.model, target.version)
        try:
            return await forward(request, lease, target)
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
