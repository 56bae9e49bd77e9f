"""The cold pool's HTTP front: TF Serving's REST API for every model in the store.

A request holds its model version (a Lease) while it is forwarded to the model
server's REST port with one shared client, so the version is never unloaded
under it. Paths are parsed and rendered by base.tfs_rest, the forwarding is
base.forwarding's (the router's too).

/v1/models/ is answered by `ColdFront`, a plain ASGI app that `ColdPoolApp`
calls before FastAPI's middleware and routing, as the router does (its
router.inference): on a hit, Starlette's request and response objects,
exception middleware and routing were most of the pool's own cost. FastAPI
keeps /admin, /metrics, /healthz and the OpenAPI docs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from base import asgi, forwarding, http1, tfs_rest
from base.admin_auth import guard_prefix
from base.asgi import Headers, Receive, Scope, Send
from base.asgi_body import ClientGone, check_declared, read_body
from base.errors import Internal, NotFound, TierserveError
from base.http_errors import install_error_handlers
from base.names import check_model_name, check_version
from base.tfs_rest import ModelPath
from pools.cold import grpc_front
from pools.cold.cache import Tier
from pools.cold.poller import StorePoller
from pools.cold.pool import ColdPool, describe

FORWARD_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 256

log = logging.getLogger(__name__)
V1_PREFIX = "/v1/models/"
V1_METHODS = frozenset(("GET", "POST"))


def parse_path(path: str, method: str) -> ModelPath:
    return tfs_rest.parse(method, path)


def create_app(pool: ColdPool, rest_url: str | Sequence[str],
               grpc_port: int | None = None, admin_token: str | None = None) -> FastAPI:
    """`rest_url`: the REST URL of each model server, in the order of `pool.servers`;
    `grpc_port`: serve TF Serving's gRPC API there too (pools.cold.grpc_front; 0: any
    free port, found in `app.state.grpc_port`). `admin_token`: what /admin requires
    (base.admin_auth: the router's rule); None or '' lets in loopback clients only."""
    poller = StorePoller(pool)
    rest_urls = [rest_url] if isinstance(rest_url, str) else list(rest_url)
    state: dict[str, http1.Client] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["http"] = forwarding.make_client(CONNECT_TIMEOUT_S, FORWARD_TIMEOUT_S,
                                               MAX_CONNECTIONS)
        await pool.start()
        poller.start()
        grpc_server = None
        if grpc_port is not None:
            grpc_server, app.state.grpc_port = await grpc_front.start_server(
                grpc_handler, pool.config.host, grpc_port)
        try:
            yield
        finally:
            if grpc_server is not None:
                await grpc_front.stop_server(grpc_server, grpc_handler)
            await poller.stop()
            await pool.stop()
            await state["http"].aclose()

    front = ColdFront(pool, rest_urls, lambda: state["http"])
    grpc_handler = grpc_front.ColdGrpcFront(pool, FORWARD_TIMEOUT_S)
    # /admin can unload models and delete their files: behind the admin rule, every route
    # under it (those added later too).
    admin_only = guard_prefix(admin_token, "/admin", "cold pool admin API")
    app = ColdPoolApp(front, title="tierserve cold pool", lifespan=lifespan,
                      dependencies=[Depends(admin_only)])
    app.state.pool = pool
    app.state.poller = poller
    install_error_handlers(app)

    async def documented_only() -> Response:
        raise AssertionError("answered by pools.cold.app.ColdFront")

    app.add_api_route("/v1/models/{rest:path}", documented_only, methods=["GET"],
                      summary="TF Serving REST: GET /v1/models/{name}[/versions/{v}][/metadata]")
    app.add_api_route("/v1/models/{rest:path}", documented_only, methods=["POST"],
                      summary="TF Serving REST: POST /v1/models/{name}[/versions/{v}]"
                              ":predict|classify|regress (body forwarded unchanged)")

    @app.get("/admin/models")
    async def admin_list() -> dict[str, object]:
        servers = [{"grpc": b.client.address, "rest": url}
                   for b, url in zip(pool.servers.backends, rest_urls, strict=True)]
        return {**pool.listing(), "model_server": servers[0], "model_servers": servers}

    @app.get("/admin/models/{model}/versions")
    async def admin_versions(model: str) -> dict[str, object]:
        """What exists of a model, without loading it: the store's versions (listed as a
        miss would) and the model's labels. 503 while the store cannot be reached."""
        check_model_name(model)
        try:
            versions = await pool.catalog.versions(model)
        except NotFound:
            versions = []
        return {"model": model, "in_store": bool(versions), "versions": versions,
                "labels": pool.labels.of(model)}

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


class ColdFront:
    """The ASGI app for /v1/models/: lease, forward to the owning model server, answer."""

    def __init__(self, pool: ColdPool, rest_urls: Sequence[str],
                 client: Callable[[], http1.Client]) -> None:
        self.pool = pool
        self.rest_urls = list(rest_urls)
        self.client = client
        self._limit = pool.config.max_body_bytes
        # Tracing headers go on to the model servers, as the router passes them to us.
        self._forwarded = forwarding.header_names(forwarding.TRACE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body, headers = await self.handle(scope, receive)
        except ClientGone:
            return
        except TierserveError as exc:
            status, body, headers = asgi.error_answer(exc)
        except Exception as exc:  # a bug: still TF Serving's error shape, and logged
            log.exception("%s %s failed", scope["method"], scope["path"])
            status, body, headers = asgi.error_answer(Internal(f"cold pool error: {exc!r}"))
        await asgi.answer(send, status, body, headers)

    async def handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes, Headers]:
        method: str = scope["method"]
        call = parse_path(scope["path"], method)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        check_declared(declared, self._limit)  # before any load: a refused body costs nothing
        version = call.version
        if call.label is not None:
            version = self.pool.labels.resolve(call.name, call.label)
        # The lease is taken before the body is read: a slow upload holds its version.
        lease = await self.pool.acquire(call.name, version)
        try:
            body = await read_body(receive, None, self._limit)
            model, version = lease.key
            # Status without a version or label asks for every version, as the caller did.
            pinned = (None if call.kind == "status" and call.version is None
                      and call.label is None else version)
            path = call.with_target(model, pinned, None).render()
            # Once more if the server dropped a kept-alive connection as we reused it.
            answer = await forwarding.forward(
                self.client(), method, self.rest_urls[lease.server], path, body,
                forwarding.wanted_headers(scope["headers"], self._forwarded), attempts=2)
        finally:
            self.pool.release(lease)
        return answer.status, answer.body, [
            (b"content-type", answer.content_type),
            (b"x-tierserve-pool", b"cold"),
            (b"x-tierserve-cache", b"hit" if lease.hit else b"miss"),
            (b"x-tierserve-model-version", str(version).encode())]


class ColdPoolApp(FastAPI):
    """FastAPI, with /v1/models/ handed to the ColdFront before any middleware or routing."""

    def __init__(self, front: ColdFront, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.front = front

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["path"].startswith(V1_PREFIX)
                and scope["method"] in V1_METHODS):
            await self.front(scope, receive, send)
        else:  # other methods keep FastAPI's 405, other paths its 404
            await super().__call__(scope, receive, send)
