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

import re
from collections.abc import Iterable, Sequence

from base import http1
from base.errors import DeadlineExceeded, Unavailable
from base.http1 import Answer

# What a backend needs to read the body: always passed on.
FORWARDED_HEADERS = frozenset((b"content-type", b"accept", b"content-encoding"))
# Tracing headers the router passes on by default (Authorization is not: a backend has no use
# for the client's credentials).
TRACE_HEADERS = ("X-Request-Id", "traceparent", "tracestate")
# One hop's connection and framing: the forwarder writes its own, so a copy would corrupt the
# request (two Content-Lengths, a Host naming the router).
_NEVER_FORWARDED = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection",
                              b"keep-alive", b"proxy-connection", b"te", b"trailer",
                              b"upgrade", b"expect"))
_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Idle connections expire before the backends' keep-alive timeout (uvicorn: 5 s), so a
# reused connection is rarely one the server is closing at that moment.
KEEPALIVE_EXPIRY_S = 2.0
DEFAULT_CONTENT_TYPE = b"application/json"

__all__ = ["Answer", "BackendUnreachable", "forward", "header_names", "make_client",
           "wanted_headers"]


class BackendUnreachable(Unavailable):
    """Connection refused, connect timeout, or the connection lost before an answer."""

    def __init__(self, base_url: str, cause: Exception) -> None:
        super().__init__(f"{base_url} unreachable: {type(cause).__name__}: {cause}")
        self.base_url = base_url


def make_client(connect_timeout: float, request_timeout: float,
                max_connections: int) -> http1.Client:
    """`max_connections` per backend; idle ones are kept alive KEEPALIVE_EXPIRY_S."""
    return http1.Client(connect_timeout, request_timeout, max_connections, KEEPALIVE_EXPIRY_S)


def header_names(extra: Iterable[str]) -> frozenset[bytes]:
    """FORWARDED_HEADERS and `extra` in ASGI's raw form (lower-case bytes), for
    `wanted_headers`. ValueError for a name that is not an HTTP token or that the
    forwarder writes itself."""
    names = set(FORWARDED_HEADERS)
    for name in extra:
        if not _TOKEN_RE.fullmatch(name):
            raise ValueError(f"not a header name: {name!r}")
        raw = name.lower().encode("ascii")
        if raw in _NEVER_FORWARDED:
            raise ValueError(f"{name} describes one connection and is never forwarded")
        names.add(raw)
    return frozenset(names)


def wanted_headers(headers: Sequence[tuple[bytes, bytes]],
                   names: frozenset[bytes] = FORWARDED_HEADERS) -> list[tuple[bytes, bytes]]:
    """The request headers named in `names` (ASGI's raw form: lower-case names)."""
    return [(name, value) for name, value in headers if name in names]


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
