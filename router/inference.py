"""The TF Serving REST front: parse, pick the variant, route, forward, count, answer.

A plain ASGI app that router.app calls for /v1 before FastAPI's middleware and
routing: a profile put a few hundred microseconds of CPU per request in
Starlette's request and response objects, middleware, routing and dependency
solving. FastAPI keeps the admin API and the OpenAPI docs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from base import asgi, tfs_rest
from base.asgi import Headers, Receive, Scope, Send
from base.asgi_body import ClientGone, read_body
from base.errors import Internal, TierserveError, Unavailable
from base.forwarding import Answer, BackendUnreachable, forward, header_names
from base.tfs_rest import ModelPath
from db import queries
from policies.experiments import ExperimentSpec, Shadow, Variant
from router import split
from router.state import RouterState
from router.table import Route

log = logging.getLogger(__name__)

# Seconds a shed client is asked to wait: in-flight requests mostly finish well within it.
SHED_RETRY_AFTER_S = 1


_ROUTER_HEADERS = frozenset((b"x-tierserve-model", b"x-tierserve-variant", b"x-tierserve-pool"))


class Frontend:
    """The ASGI app for /v1; at most `max_in_flight` requests at a time, 503 past it (the
    gRPC front, router.grpc_front, counts its requests in `in_flight` too)."""

    def __init__(self, state: RouterState) -> None:
        self.state = state
        self.in_flight = 0
        config = state.config
        self._limit = config.max_body_bytes
        self.max_in_flight = config.max_in_flight
        self._default_sticky = config.sticky_header.lower().encode("latin-1")
        self._forwarded = header_names(config.forward_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.in_flight >= self.max_in_flight:
            # Past the bound, answer at once: queueing here only makes every request late.
            self.state.metrics.shed.inc()
            status, body, headers = asgi.error_answer(Unavailable(
                f"router overloaded: {self.max_in_flight} requests in flight",
                retry_after=SHED_RETRY_AFTER_S))
            await asgi.answer(send, status, body, headers)
            return
        self.in_flight += 1
        try:
            status, body, headers = await self.handle(scope, receive)
        except ClientGone:
            return
        except Exception as exc:  # a bug: still TF Serving's error shape, and logged
            log.exception("%s %s failed", scope["method"], scope["path"])
            status, body, headers = asgi.error_answer(Internal(f"router error: {exc!r}"))
        finally:
            self.in_flight -= 1
        await asgi.answer(send, status, body, headers)

    async def handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes, Headers]:
        started = time.perf_counter()
        method: str = scope["method"]
        raw = dict(scope["headers"])
        try:
            call = tfs_rest.parse(method, scope["path"])
            body = await read_body(receive, raw.get(b"content-length"), self._limit)
        except TierserveError as exc:
            return asgi.error_answer(exc)
        names = self._forwarded
        forwarded = [(k, v) for k, v in raw.items() if k in names]
        spec = self.state.table.experiments.get(call.name)
        variant: Variant | None = None
        target = call
        if spec is not None:
            header = (spec.sticky_header.lower().encode("latin-1") if spec.sticky_header
                      else self._default_sticky)
            key = raw.get(header)
            variant = split.pick_variant(spec, key.decode("latin-1") if key else None)
            target = call.with_target(variant.model, variant.version, variant.label)
            if spec.shadow is not None and call.is_inference and split.shadow_hit(
                    spec.shadow.percent, random.random()):
                if len(self.state.background) < self.state.config.max_shadow_inflight:
                    self.state.spawn(self._shadow(spec.name, spec.shadow, call, body, forwarded))
                else:  # a slow shadow must not pile up work behind real traffic
                    self.state.metrics.shadow.labels("dropped").inc()
        out: Headers = [(b"x-tierserve-model", target.name.encode())]
        if variant is not None:
            out.append((b"x-tierserve-variant", variant.variant_name.encode()))
        pool = "cold"
        try:
            answer, pool = await self._send(method, target, body, forwarded)
        except TierserveError as exc:
            self._count(target, call, spec, variant, int(exc.http_status), started, pool)
            status, error_body, headers = asgi.error_answer(exc)
            headers += out
            headers.append((b"x-tierserve-pool", pool.encode()))
            return status, error_body, headers
        self._count(target, call, spec, variant, answer.status, started, pool)
        out.append((b"x-tierserve-pool", pool.encode()))
        out.append((b"content-type", answer.content_type))
        # The backend's own headers (the cold pool's X-Tierserve-Cache, Retry-After...)
        # pass on; the router's say who served it, so a backend's never replace them.
        out.extend(h for h in answer.headers if h[0] not in _ROUTER_HEADERS)
        return answer.status, answer.body, out

    async def _send(self, method: str, target: ModelPath, body: bytes,
                    headers: Headers) -> tuple[Answer, str]:
        route = self.state.table.route(target.name)
        path = target.render()
        if route.pool == "hot":
            try:
                return await forward(self.state.forwarder(), method, route.base_url, path,
                                     body, headers), "hot"
            except BackendUnreachable as exc:
                self.fall_back(target.name, route, str(exc))
            route = self.state.table.route_cold(target.name)  # the model's shard
            return await self._send_cold(target.name, route, method, path, body, headers,
                                         "hot endpoint and cold pool"), "cold"
        return await self._send_cold(target.name, route, method, path, body, headers,
                                     "cold pool"), "cold"

    async def _send_cold(self, model: str, route: Route, method: str, path: str, body: bytes,
                         headers: Headers, what: str) -> Answer:
        client = self.state.forwarder()
        try:
            return await forward(client, method, route.base_url, path, body, headers)
        except BackendUnreachable as exc:
            # A sharded tier: the model's next shard, at once (the table skips the dead one
            # until its row goes stale).
            retry = self.state.table.shard_failed(model, route)
            if retry is None:
                raise Unavailable(f"{what} unreachable: {exc}") from exc
            try:
                return await forward(client, method, retry.base_url, path, body, headers)
            except BackendUnreachable as again:
                raise Unavailable(f"cold shards unreachable: {again}") from again

    def fall_back(self, model: str, route: Route, reason: str) -> None:
        self.state.metrics.fallbacks.inc()
        placement = self.state.table.placements.get(model)
        self.state.table.forget_hot(model, route.base_url)
        if placement is not None and placement.endpoint:
            self.state.spawn(self._mark_unhealthy(model, placement.endpoint, reason))

    async def _mark_unhealthy(self, model: str, endpoint: str, reason: str) -> None:
        engine = self.state.engine
        if await asyncio.to_thread(queries.mark_unhealthy, engine, model, endpoint):
            await asyncio.to_thread(queries.record_event, engine, model, "unhealthy",
                                    reason, "routed to the cold pool")

    async def _shadow(self, experiment: str, shadow: Shadow, call: ModelPath, body: bytes,
                      headers: Headers) -> None:
        """Mirror one request; the answer is dropped, only counted (apart)."""
        started = time.perf_counter()
        target = call.with_target(shadow.model, shadow.version, shadow.label)
        route = self.state.table.route(target.name)
        try:
            answer = await forward(self.state.forwarder(), "POST", route.base_url,
                                   target.render(), body, headers)
            status = answer.status
        except TierserveError:
            status = 503
        self.state.metrics.shadow.labels("ok" if status < 400 else "error").inc()
        self.state.counter.record(target.name, time.perf_counter() - started, status,
                                  experiment=experiment, variant=shadow.variant_name, shadow=True)

    def _count(self, target: ModelPath, call: ModelPath, spec: ExperimentSpec | None,
               variant: Variant | None, status: int, started: float, pool: str) -> None:
        self.state.count(target.name, pool, status, time.perf_counter() - started,
                         call.is_inference, spec.name if spec is not None else "",
                         variant.variant_name if variant is not None else "")

