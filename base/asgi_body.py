"""Reading an ASGI request body under a size bound: the router's and the cold pool's one reader."""

from __future__ import annotations

from http import HTTPStatus

from base.asgi import Receive
from base.errors import InvalidArgument

MiB = 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 10 * MiB  # the router's and the cold pool's default


class PayloadTooLarge(InvalidArgument):
    http_status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class ClientGone(Exception):
    """The client disconnected before its body was read."""


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body larger than {limit} bytes")


def check_declared(declared: bytes | None, limit: int) -> None:
    """PayloadTooLarge when Content-Length already says more than `limit`: nothing is read."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)


async def read_body(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """The body, refusing more than `limit` bytes without reading it all."""
    check_declared(declared, limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
