"""The TF Serving REST front: parse, pick the variant, route, forward, count, answer."""

from __future__ import annotations

import asyncio
import random
import time
from http import HTTPStatus

from fastapi import Request, Response

from base import tfs_rest
from base.errors import InvalidArgument, TierserveError, Unavailable
from base.forwarding import BackendAnswer, BackendUnreachable, forward
from base.http_errors import error_response
from base.tfs_rest import ModelPath
from db import queries
from policies.experiments import ExperimentSpec, Shadow, Variant
from router import split
from router.state import RouterState
from router.table import Route


class PayloadTooLarge(InvalidArgument):
    http_status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes without reading it all."""
    too_large = PayloadTooLarge(f"request body larger than {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class Frontend:
    def __init__(self, state: RouterState) -> None:
        self.state = state

    async def handle(self, request: Request) -> Response:
        started = time.perf_counter()
        call = tfs_rest.parse(request.method, request.url.path)
        body = await read_body(request, self.state.config.max_body_bytes)
        headers = dict(request.headers)
        spec = self.state.table.experiments.get(call.name)
        variant: Variant | None = None
        target = call
        if spec is not None:
            variant = split.choose_variant(spec, request.headers,
                                           self.state.config.sticky_header)
            target = call.with_target(variant.model, variant.version, variant.label)
            if spec.shadow is not None and call.is_inference and split.shadow_hit(
                    spec.shadow.percent, random.random()):
                if len(self.state.background) < self.state.config.max_shadow_inflight:
                    self.state.spawn(self._shadow(spec.name, spec.shadow, call, body, headers))
                else:  # a slow shadow must not pile up work behind real traffic
                    self.state.metrics.shadow.labels("dropped").inc()
        out_headers = {"X-Tierserve-Model": target.name}
        if variant is not None:
            out_headers["X-Tierserve-Variant"] = variant.variant_name
        pool = "cold"
        try:
            answer, pool = await self._send(request.method, target, body, headers)
        except TierserveError as exc:
            self._count(target, call, spec, variant, int(exc.http_status), started, pool)
            response: Response = error_response(exc)
            response.headers.update({**out_headers, "X-Tierserve-Pool": pool})
            return response
        self._count(target, call, spec, variant, answer.status, started, pool)
        out_headers["X-Tierserve-Pool"] = pool
        return Response(answer.body, status_code=answer.status, headers=out_headers,
                        media_type=answer.content_type)

    async def _send(self, method: str, target: ModelPath, body: bytes,
                    headers: dict[str, str]) -> tuple[BackendAnswer, str]:
        route = self.state.table.route(target.name)
        client = self.state.http()
        try:
            return await forward(client, method, route.base_url, target.render(), body,
                                 headers), route.pool
        except BackendUnreachable as exc:
            if route.pool != "hot":
                raise Unavailable(f"cold pool unreachable: {exc}") from exc
            self._fall_back(target.name, route, str(exc))
        cold = self.state.table.route_cold()
        try:
            return await forward(client, method, cold.base_url, target.render(), body,
                                 headers), cold.pool
        except BackendUnreachable as exc:
            raise Unavailable(f"hot endpoint and cold pool unreachable: {exc}") from exc

    def _fall_back(self, model: str, route: Route, reason: str) -> None:
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
                      headers: dict[str, str]) -> None:
        """Mirror one request; the answer is dropped, only counted (apart)."""
        started = time.perf_counter()
        target = call.with_target(shadow.model, shadow.version, shadow.label)
        route = self.state.table.route(target.name)
        try:
            answer = await forward(self.state.http(), "POST", route.base_url, target.render(),
                                   body, headers)
            status = answer.status
        except (TierserveError, BackendUnreachable):
            status = 503
        self.state.metrics.shadow.labels("ok" if status < 400 else "error").inc()
        self.state.counter.record(target.name, time.perf_counter() - started, status >= 400,
                                  experiment=experiment, variant=shadow.variant_name, shadow=True)

    def _count(self, target: ModelPath, call: ModelPath, spec: ExperimentSpec | None,
               variant: Variant | None, status: int, started: float, pool: str) -> None:
        latency = time.perf_counter() - started
        self.state.metrics.observe(target.name, pool, status, latency)
        # Status and metadata calls are not load: only inference feeds the db counts.
        if call.is_inference:
            self.state.counter.record(
                target.name, latency, status >= 400,
                experiment=spec.name if spec is not None else "",
                variant=variant.variant_name if variant is not None else "")
