"""Forwarding one TF Serving call to a backend: the router's and the cold pool's one forwarder.

The client's failures become tierserve's errors here, with TF Serving's mapping:
- no connection could be made, or it dropped before a whole answer came (a
  server killed mid-request): `BackendUnreachable`, a 503. Every TF Serving call
  (status, metadata, predict, classify, regress) is free of side effects, so the
  caller may send it again (`attempts`) or elsewhere (the router's cold pool);
- no answer within the request timeout: DeadlineExceeded (504), never sent
  again (that would double the wait);
- bytes that are not HTTP: Unavailable (503).
"""

from __future__ import annotations

from collections.abc import Sequence

from base import http1
from base.errors import DeadlineExceeded, Unavailable
from base.http1 import Answer

FORWARDED_HEADERS = frozenset((b"content-type", b"accept", b"content-encoding"))
# Idle connections expire before the backends' keep-alive timeout (uvicorn: 5 s), so a
# reused connection is rarely one the server is closing at that moment.
KEEPALIVE_EXPIRY_S = 2.0
DEFAULT_CONTENT_TYPE = b"application/json"

__all__ = ["Answer", "BackendUnreachable", "forward", "make_client"]


class BackendUnreachable(Unavailable):
    """Connection refused, connect timeout, or the connection lost before an answer."""

    def __init__(self, base_url: str, cause: Exception) -> None:
        super().__init__(f"{base_url} unreachable: {type(cause).__name__}: {cause}")
        self.base_url = base_url


def make_client(connect_timeout: float, request_timeout: float,
                max_connections: int) -> http1.Client:
    """`max_connections` per backend; idle ones are kept alive KEEPALIVE_EXPIRY_S."""
    return http1.Client(connect_timeout, request_timeout, max_connections, KEEPALIVE_EXPIRY_S)


def wanted_headers(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The request headers a backend needs (ASGI's raw form: lower-case names)."""
    return [(name, value) for name, value in headers if name in FORWARDED_HEADERS]


async def forward(client: http1.Client, method: str, base_url: str, path: str, body: bytes,
                  headers: Sequence[tuple[bytes, bytes]], attempts: int = 1) -> Answer:
    """The backend's answer, whatever its status (content type defaulted to JSON).

    `headers` are sent as given: pass them through `wanted_headers` first. With
    `attempts` > 1 the call is sent again while the backend is unreachable.
    """
    for attempt in range(1, attempts + 1):
        try:
            answer = await client.request(method, base_url, path, body, headers)
        except (http1.ConnectFailed, http1.ConnectionDropped) as exc:
            if attempt == attempts:
                raise BackendUnreachable(base_url, exc) from exc
            continue
        except http1.ReadTimeout as exc:
            raise DeadlineExceeded(f"backend {base_url} did not answer in time: {exc}") from exc
        except http1.BadAnswer as exc:
            raise Unavailable(f"backend {base_url} failed: {exc}") from exc
        if not answer.content_type:
            return Answer(answer.status, answer.body, DEFAULT_CONTENT_TYPE, answer.headers)
        return answer
    raise AssertionError("unreachable: attempts must be at least 1")
