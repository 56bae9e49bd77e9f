"""bench router's gRPC references: bare pass-through proxies, with no tierserve code in them.

    python bench/_grpc_proxies.py aio|threads PORT TARGET

Each forwards Predict's bytes to TARGET over one channel and answers with the backend's
bytes: the least a gRPC front written with grpc-python can do. `aio` is an `aio.server`
on uvloop awaiting an `aio` channel call (the router's front without the router);
`threads` is the thread-pool `grpc.server` with a blocking channel call. Measured beside
the router, they tell what of the router's added latency is ours and what is the price
of one grpc-python server leg plus one client leg.
"""

from __future__ import annotations

import sys
from concurrent import futures

import grpc
from grpc import aio

from bench._router_grpc import PREDICT


class _PredictOnly(grpc.GenericRpcHandler):
    def __init__(self, handler: grpc.RpcMethodHandler) -> None:
        self._handler = handler

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._handler if details.method == PREDICT else None


def run_threads(port: int, target: str) -> None:
    call = grpc.insecure_channel(target).unary_unary(PREDICT)

    def forward(request: bytes, context: grpc.ServicerContext) -> bytes:
        answer: bytes = call(request, timeout=60)
        return answer

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((_PredictOnly(grpc.unary_unary_rpc_method_handler(forward)),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


async def run_aio(port: int, target: str) -> None:
    call = aio.insecure_channel(target).unary_unary(PREDICT)

    async def forward(request: bytes, context: aio.ServicerContext) -> bytes:
        answer: bytes = await call(request, timeout=60)
        return answer

    server = aio.server()
    server.add_generic_rpc_handlers((_PredictOnly(grpc.unary_unary_rpc_method_handler(forward)),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    kind, port, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind == "threads":
        run_threads(port, target)
    elif kind == "aio":
        import uvloop
        uvloop.run(run_aio(port, target))
    else:
        raise SystemExit(f"unknown proxy kind {kind!r}: aio or threads")


if __name__ == "__main__":
    main()
