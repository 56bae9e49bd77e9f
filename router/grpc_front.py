"""The TF Serving gRPC front: PredictionService and ModelService.GetModelStatus, forwarded.

The same steps as the REST front (router.inference), on the same state: the experiment
split (the sticky key from a gRPC metadata key, the REST sticky header's name in lower
case by default), the routing table's lookup, the counters, the hot -> cold fallback and
the in-flight bound, which the two fronts share. Requests pass as bytes: only their
ModelSpec is read, and rewritten when an experiment maps the public name to a variant
(base.tfs_grpc). The answer's model_spec names the model (and version) that served it;
trailing metadata carries x-tierserve-model, -variant and -pool as REST's headers do.

A hot placement without a known gRPC address (written by an orchestrator from before
they were stored) is served over gRPC by the cold pool.
"""

from __future__ import annotations

import logging
import random
import time

import grpc
from grpc import aio

from base import grpc_server, tfs_grpc
from base.errors import (
    Internal,
    TierserveError,
    Unavailable,
)
from base.grpc_forwarding import Channels, GrpcUnreachable, Metadata
from base.grpc_server import Behavior, TfsHandler
from base.tfs_grpc import ModelSpec
from policies.experiments import ExperimentSpec, Shadow, Variant
from router import split
from router.inference import Frontend
from router.state import RouterState
from router.table import Route

log = logging.getLogger(__name__)
RELOAD_REFUSED = ("HandleReloadConfigRequest is refused by the tierserve router: the "
                  "orchestrator owns which models are loaded where (edit the policy YAML, or "
                  "use the router's /admin API)")
SHUTDOWN_GRACE_S = 5.0


class GrpcFront(TfsHandler):
    """Every TF Serving method, with bytes in and out."""

    def __init__(self, state: RouterState, frontend: Frontend) -> None:
        super().__init__(self._behavior, RELOAD_REFUSED)
        self.state = state
        self.frontend = frontend  # its in-flight count is the bound for both fronts
        config = state.config
        self._default_sticky = config.sticky_header.lower()
        self._forwarded = frozenset(n.lower() for n in config.forward_headers)
        self._timeout = config.request_timeout
        self.channels = Channels()

    def _behavior(self, method: str, kind: str) -> Behavior:
        async def behavior(request: bytes, context: aio.ServicerContext) -> bytes:
            return await self.serve(method, kind, request, context)
        return behavior

    async def serve(self, method: str, kind: str, request: bytes,
                    context: aio.ServicerContext) -> bytes:
        front = self.frontend
        if front.in_flight >= front.max_in_flight:
            # As REST's 503: answer at once, queueing here only makes every request late.
            self.state.metrics.shed.inc()
            await context.abort(grpc.StatusCode.UNAVAILABLE,
                                f"router overloaded: {front.max_in_flight} requests in flight")
        front.in_flight += 1
        try:
            answer, trailers = await self.handle(method, kind, request, context)
        except TierserveError as exc:
            answer, trailers = b"", exc
        except Exception as exc:  # a bug: still a gRPC status, and logged
            log.exception("gRPC %s failed", method)
            answer, trailers = b"", Internal(f"router error: {exc!r}")
        finally:
            front.in_flight -= 1
        if isinstance(trailers, TierserveError):
            await context.abort(trailers.grpc_code, trailers.message)
        return answer

    async def handle(self, method: str, kind: str, request: bytes,
                     context: aio.ServicerContext) -> tuple[bytes, TierserveError | None]:
        started = time.perf_counter()
        multi = kind == "multi_inference"
        call = tfs_grpc.read_spec(request, multi)
        metadata = context.invocation_metadata() or ()
        forwarded = [(k, v) for k, v in metadata if k in self._forwarded]
        experiment = self.state.table.experiments.get(call.name)
        variant: Variant | None = None
        target = call
        if experiment is not None:
            wanted = (experiment.sticky_header.lower() if experiment.sticky_header
                      else self._default_sticky)
            key = next((v for k, v in metadata if k == wanted), None)
            variant = split.pick_variant(experiment, key if isinstance(key, str) else None)
            target = call.with_target(variant.model, variant.version, variant.label)
            request = tfs_grpc.write_spec(request, target, multi)
            if experiment.shadow is not None and kind in tfs_grpc.INFERENCE_KINDS and \
                    split.shadow_hit(experiment.shadow.percent, random.random()):
                if len(self.state.background) < self.state.config.max_shadow_inflight:
                    self.state.spawn(self._shadow(experiment.name, experiment.shadow, method,
                                                  call, request, multi, forwarded))
                else:  # a slow shadow must not pile up work behind real traffic
                    self.state.metrics.shadow.labels("dropped").inc()
        trailers = [("x-tierserve-model", target.name)]
        if variant is not None:
            trailers.append(("x-tierserve-variant", variant.variant_name))
        pool = "cold"
        timeout = self._deadline(context)
        try:
            answer, pool = await self._send(method, target.name, request, forwarded, timeout)
        except TierserveError as exc:
            self._count(target, kind, experiment, variant, int(exc.http_status), started, pool)
            context.set_trailing_metadata((*trailers, ("x-tierserve-pool", pool)))
            return b"", exc
        self._count(target, kind, experiment, variant, 200, started, pool)
        context.set_trailing_metadata((*trailers, ("x-tierserve-pool", pool)))
        return answer, None

    def _deadline(self, context: aio.ServicerContext) -> float:
        remaining = context.time_remaining()
        return self._timeout if remaining is None else min(self._timeout, max(remaining, 0.0))

    async def _send(self, method: str, model: str, request: bytes, metadata: Metadata,
                    deadline_s: float) -> tuple[bytes, str]:
        route = self.state.table.route(model)
        if route.pool == "hot" and route.grpc:
            try:
                return await self.channels.forward(route.grpc, method, request, metadata,
                                                   deadline_s), "hot"
            except GrpcUnreachable as exc:
                self.frontend.fall_back(model, route, str(exc))
            route = self.state.table.route_cold(model)  # the model's shard
        elif route.pool == "hot":
            route = self.state.table.route_cold(model)
        return await self._send_cold(model, route, method, request, metadata,
                                     deadline_s), "cold"

    async def _send_cold(self, model: str, route: Route, method: str, request: bytes,
                         metadata: Metadata, deadline_s: float) -> bytes:
        if not route.grpc:
            where = f"cold shard {route.shard}" if route.shard else "the cold pool"
            raise Unavailable(f"{where} has no gRPC address (--cold-grpc, or the shard's "
                              "--shard-grpc)")
        try:
            return await self.channels.forward(route.grpc, method, request, metadata, deadline_s)
        except GrpcUnreachable as exc:
            # A sharded tier: the model's next shard, at once, as over REST.
            retry = self.state.table.shard_failed(model, route)
            if retry is None or not retry.grpc:
                raise Unavailable(f"cold pool unreachable: {exc}") from exc
            try:
                return await self.channels.forward(retry.grpc, method, request, metadata,
                                                   deadline_s)
            except GrpcUnreachable as again:
                raise Unavailable(f"cold shards unreachable: {again}") from again

    async def _shadow(self, experiment: str, shadow: Shadow, method: str, call: ModelSpec,
                      request: bytes, multi: bool, metadata: Metadata) -> None:
        """Mirror one request; the answer is dropped, only counted (apart)."""
        started = time.perf_counter()
        target = call.with_target(shadow.model, shadow.version, shadow.label)
        try:
            await self._send(method, target.name, tfs_grpc.write_spec(request, target, multi),
                             metadata, self._timeout)
            ok = True
        except TierserveError:
            ok = False
        self.state.metrics.shadow.labels("ok" if ok else "error").inc()
        self.state.counter.record(target.name, time.perf_counter() - started,
                                  200 if ok else 503, experiment=experiment,
                                  variant=shadow.variant_name, shadow=True)

    def _count(self, target: ModelSpec, kind: str, spec: ExperimentSpec | None,
               variant: Variant | None, status: int, started: float, pool: str) -> None:
        self.state.count(target.name, pool, status, time.perf_counter() - started,
                         kind in tfs_grpc.INFERENCE_KINDS, spec.name if spec is not None else "",
                         variant.variant_name if variant is not None else "")


async def start_server(front: GrpcFront, host: str, port: int, max_message_bytes: int,
                       reuse_port: bool = False) -> tuple[aio.Server, int]:
    """The started gRPC server on host:port (0: any free port) and its bound port."""
    return await grpc_server.start_server(front, host, port, max_message_bytes, reuse_port)


async def stop_server(server: aio.Server, front: GrpcFront) -> None:
    await server.stop(SHUTDOWN_GRACE_S)
    await front.channels.close()
