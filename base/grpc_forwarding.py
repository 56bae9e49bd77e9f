"""Forwarding one TF Serving gRPC call's bytes to a backend: the router's and the cold pool's.

One `grpc.aio` channel per backend address, made on first use and kept (a channel is an
HTTP/2 connection with its own reconnects: one per request would pay a handshake each
time). Requests and answers stay bytes: no serializer on either side.

The client's failures become tierserve's errors here, as base.forwarding does for REST:
- no connection could be made, or it was lost before the answer (a server killed
  mid-request): `GrpcUnreachable` (UNAVAILABLE). TF Serving's calls are free of side
  effects, so the caller may send the call elsewhere (the router's cold pool);
- the backend's own error status: `BackendStatus`, carrying its code and message as they
  are (the client sees what TF Serving would have said);
- no answer within the timeout: DeadlineExceeded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import grpc
from grpc import aio

from base.errors import DeadlineExceeded, TierserveError, Unavailable, from_grpc_code

Metadata = Sequence[tuple[str, str]]
MAX_MESSAGE_BYTES = 256 << 20  # as the model server's gRPC front
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # Reconnect soon after a backend comes back, not after grpc's default backoff of up to
    # 2 minutes: a restarted hot server is routed to again within a poll or two.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
)
# What gRPC core says when the connection, not the server, failed the call. A server's own
# UNAVAILABLE (the cold pool shedding, a model still loading) has none of these.
_TRANSPORT_RE = re.compile(
    r"failed to connect|connection refused|connection reset|socket closed|broken pipe|"
    r"connection aborted|endpoint closing|goaway|stream removed|transport closed|"
    r"connections to all backends failing|recvmsg|sendmsg|DNS resolution failed",
    re.IGNORECASE)


class GrpcUnreachable(Unavailable):
    """The backend could not be reached, or the connection was lost mid-call."""

    def __init__(self, target: str, details: str) -> None:
        super().__init__(f"{target} unreachable: {details}")
        self.target = target


def is_transport_failure(code: grpc.StatusCode, details: str | None) -> bool:
    """True when an UNAVAILABLE status came from the connection, not from the server."""
    return code is grpc.StatusCode.UNAVAILABLE and bool(_TRANSPORT_RE.search(details or ""))


def backend_error(target: str, exc: aio.AioRpcError) -> TierserveError:
    """The tierserve error for a failed forwarded call (see the module's docstring)."""
    code, details = exc.code(), exc.details() or ""
    if is_transport_failure(code, details):
        return GrpcUnreachable(target, details)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(f"backend {target} did not answer in time: {details}")
    return from_grpc_code(code, details)


class Channels:
    """One cached channel per backend address, and one cached stub per (address, method)."""

    def __init__(self, options: Sequence[tuple[str, int]] = CHANNEL_OPTIONS) -> None:
        self._options = list(options)
        self._channels: dict[str, aio.Channel] = {}
        self._calls: dict[tuple[str, str], aio.UnaryUnaryMultiCallable] = {}

    def call(self, target: str, method: str) -> aio.UnaryUnaryMultiCallable:
        stub = self._calls.get((target, method))
        if stub is None:
            channel = self._channels.get(target)
            if channel is None:
                channel = self._channels[target] = aio.insecure_channel(target, self._options)
            # No serializers: the request and the answer pass as bytes.
            stub = self._calls[(target, method)] = channel.unary_unary(method)
        return stub

    async def forward(self, target: str, method: str, request: bytes, metadata: Metadata,
                      deadline_s: float) -> bytes:
        """The backend's answer bytes, or the tierserve error for its failure."""
        try:
            answer: bytes = await self.call(target, method)(
                request, timeout=deadline_s, metadata=metadata or None)
        except aio.AioRpcError as exc:
            raise backend_error(target, exc) from None
        return answer

    async def close(self) -> None:
        channels = list(self._channels.values())
        self._channels.clear()
        self._calls.clear()
        for channel in channels:
            await channel.close()
