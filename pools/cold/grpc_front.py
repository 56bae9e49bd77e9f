"""The cold pool's gRPC front: TF Serving's PredictionService and GetModelStatus for every
model in the store, loaded on demand.

The same path as the REST front (pools.cold.app.ColdFront): a request takes a Lease on the
model version it means (a miss loads it: single flight, a bounded wait, shedding answered
UNAVAILABLE with the reason), is forwarded as bytes to the gRPC port of the model server
holding that version, and releases the lease. Only the ModelSpec is read (base.tfs_grpc);
it is rewritten to pin the version the lease holds, so a "latest" request is answered by
the version it was counted against even if a newer one lands meanwhile.
"""

from __future__ import annotations

import logging

from grpc import aio

from base import grpc_server, tfs_grpc
from base.errors import Internal, TierserveError
from base.forwarding import TRACE_HEADERS
from base.grpc_forwarding import MAX_MESSAGE_BYTES, Channels, GrpcUnreachable
from base.grpc_server import Behavior, TfsHandler
from base.tfs_grpc import ModelSpec
from pools.cold.pool import ColdPool

log = logging.getLogger(__name__)
FORWARD_TIMEOUT_S = 60.0
RELOAD_REFUSED = ("HandleReloadConfigRequest is refused by the tierserve cold pool: it loads "
                  "and evicts models itself, on demand")
_FORWARDED = frozenset(name.lower() for name in TRACE_HEADERS)


class ColdGrpcFront(TfsHandler):
    def __init__(self, pool: ColdPool, timeout: float = FORWARD_TIMEOUT_S) -> None:
        super().__init__(self._behavior, RELOAD_REFUSED)
        self.pool = pool
        self.timeout = timeout
        self.channels = Channels()

    def _behavior(self, method: str, kind: str) -> Behavior:
        async def behavior(request: bytes, context: aio.ServicerContext) -> bytes:
            try:
                return await self.handle(method, kind, request, context)
            except TierserveError as exc:
                error = exc
            except Exception as exc:  # a bug: still a gRPC status, and logged
                log.exception("gRPC %s failed", method)
                error = Internal(f"cold pool error: {exc!r}")
            await context.abort(error.grpc_code, error.message)
            raise AssertionError("unreachable: abort raises")
        return behavior

    async def handle(self, method: str, kind: str, request: bytes,
                     context: aio.ServicerContext) -> bytes:
        multi = kind == "multi_inference"
        spec = tfs_grpc.read_spec(request, multi)
        version = spec.version
        if spec.label is not None:  # the policy's labels, as over REST
            version = self.pool.labels.resolve(spec.name, spec.label)
        metadata = [(k, v) for k, v in context.invocation_metadata() or () if k in _FORWARDED]
        lease = await self.pool.acquire(spec.name, version)
        try:
            model, version = lease.key
            # Status without a version or label asks for every version, as the caller did.
            pinned = (None if kind == "status" and spec.version is None and spec.label is None
                      else version)
            if (model, pinned, None) != (spec.name, spec.version, spec.label):
                request = tfs_grpc.write_spec(request, ModelSpec(model, pinned), multi)
            target = self.pool.servers.backends[lease.server].client.address
            try:
                answer = await self.channels.forward(target, method, request, metadata,
                                                     self.timeout)
            except GrpcUnreachable:  # once more: the channel reconnects by itself
                answer = await self.channels.forward(target, method, request, metadata,
                                                     self.timeout)
        finally:
            self.pool.release(lease)
        context.set_trailing_metadata((("x-tierserve-pool", "cold"),
                                       ("x-tierserve-cache", "hit" if lease.hit else "miss"),
                                       ("x-tierserve-model-version", str(version))))
        return answer


async def start_server(front: ColdGrpcFront, host: str, port: int) -> tuple[aio.Server, int]:
    """The started gRPC server on host:port (0: any free port) and its bound port."""
    return await grpc_server.start_server(front, host, port, MAX_MESSAGE_BYTES)


async def stop_server(server: aio.Server, front: ColdGrpcFront, grace: float = 5.0) -> None:
    await server.stop(grace)
    await front.channels.close()
