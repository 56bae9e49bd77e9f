"""The one way tierserve serves TF Serving's gRPC API: a generic handler over bytes.

The router's front and the cold pool's front differ only in what one call does
(`Behavior`); the method table, the refused HandleReloadConfigRequest and the server's
start-up are the same, so they live here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
from grpc import aio

from base import tfs_grpc
from base.grpc_forwarding import MAX_MESSAGE_BYTES

Behavior = Callable[[bytes, aio.ServicerContext], Awaitable[bytes]]


class TfsHandler(grpc.GenericRpcHandler):
    """Every TF Serving method in `tfs_grpc.METHODS`, each answered by `behavior(method,
    kind)`; HandleReloadConfigRequest refused with FAILED_PRECONDITION and `refusal`
    (placement belongs to tierserve, not to the client); any other method UNIMPLEMENTED."""

    def __init__(self, behavior: Callable[[str, str], Behavior], refusal: str) -> None:
        self._refusal = refusal
        self._handlers: dict[str, grpc.RpcMethodHandler] = {
            method: grpc.unary_unary_rpc_method_handler(behavior(method, kind))
            for method, kind in tfs_grpc.METHODS.items()}
        self._handlers[tfs_grpc.RELOAD] = grpc.unary_unary_rpc_method_handler(self._reload)

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._handlers.get(details.method)  # None: grpc answers UNIMPLEMENTED

    async def _reload(self, request: bytes, context: aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, self._refusal)
        raise AssertionError("unreachable: abort raises")


async def start_server(handler: grpc.GenericRpcHandler, host: str, port: int,
                       max_receive_bytes: int, reuse_port: bool = False
                       ) -> tuple[aio.Server, int]:
    """The started gRPC server on host:port (0: any free port) and its bound port. Without
    `reuse_port`, a second server on the same port fails instead of sharing it."""
    server = aio.server(options=[("grpc.max_receive_message_length", max_receive_bytes),
                                 ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                                 ("grpc.so_reuseport", int(reuse_port))])
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {host}:{port}")
    await server.start()
    return server, bound
