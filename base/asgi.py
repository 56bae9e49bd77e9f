"""The raw ASGI pieces the router's and the cold pool's /v1 fronts share: message types and
the two ways they answer (a body, or TF Serving's `{"error": ...}`).

Both fronts are plain ASGI callables rather than FastAPI routes because the data path is
measured per request (docs/performance.md): these helpers send exactly two messages and
nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from base.errors import TierserveError, Unavailable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


async def answer(send: Send, status: int, body: bytes, headers: Headers) -> None:
    """One whole response; `headers` gets its content-length."""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_answer(exc: TierserveError) -> tuple[int, bytes, Headers]:
    """TF Serving's `{"error": ...}` with the error's status, as base.http_errors answers it
    for FastAPI's routes; Retry-After when the error says when to come back."""
    headers: Headers = [(b"content-type", b"application/json")]
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(exc.retry_after))).encode()))
    return int(exc.http_status), json.dumps(exc.body()).encode(), headers
