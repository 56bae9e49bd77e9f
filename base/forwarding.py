"""Forwarding one TF Serving call to a backend: the router's and the cold pool's one forwarder.

httpx's errors become tierserve's here, at the edge, with TF Serving's mapping:
- no connection could be made, or it dropped before any answer came (a server
  killed mid-request, a kept-alive connection closed as it was reused):
  `BackendUnreachable`. Every TF Serving call (status, metadata, predict,
  classify, regress) is free of side effects, so the caller may send it again
  or elsewhere; past its last attempt it is Unavailable (503);
- a backend too slow to answer: DeadlineExceeded (504), never retried (that
  would double the wait);
- any other transport failure: Unavailable (503).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from base.errors import DeadlineExceeded, Unavailable

FORWARDED_HEADERS = ("content-type", "accept", "content-encoding")
# Idle connections expire before the backends' keep-alive timeout (uvicorn: 5 s), so a
# reused connection is rarely one the server is closing at that moment.
KEEPALIVE_EXPIRY_S = 2.0


class BackendUnreachable(Unavailable):
    """Connection refused, connect timeout, or the connection lost before an answer."""

    def __init__(self, base_url: str, cause: Exception) -> None:
        super().__init__(f"{base_url} unreachable: {type(cause).__name__}: {cause}")
        self.base_url = base_url


@dataclass(frozen=True)
class BackendAnswer:
    status: int
    body: bytes
    content_type: str


class ShardedTransport(httpx.AsyncBaseTransport):
    """Several small httpx connection pools behind the one client, used in turn.

    httpcore's pool does work proportional to its number of connections on every
    request (it checks each idle connection's socket for expiry); with tens of
    requests in flight that dominated the router's CPU per request. Small pools
    keep that scan short; the client above them (timeouts, headers) stays one.
    """

    def __init__(self, shards: int, max_connections: int) -> None:
        per_shard = max(1, -(-max_connections // shards))
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard,
                              keepalive_expiry=KEEPALIVE_EXPIRY_S)
        self._pools = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(shards)]
        self._next = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._next = (self._next + 1) % len(self._pools)
        return await self._pools[self._next].handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def make_client(connect_timeout: float, request_timeout: float, max_connections: int,
                shards: int = 16) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(request_timeout, connect=connect_timeout,
                              pool=request_timeout),
        transport=ShardedTransport(shards, max_connections),
        # Backends are named by the routing table or the command line; no proxies
        # from the environment.
        trust_env=False)


async def forward(client: httpx.AsyncClient, method: str, base_url: str, path: str,
                  body: bytes, headers: Mapping[str, str], attempts: int = 1) -> BackendAnswer:
    """The backend's answer, whatever its status; `attempts` > 1 sends again while
    the backend is unreachable (a dropped kept-alive connection, say)."""
    wanted = {k: v for k, v in headers.items() if k.lower() in FORWARDED_HEADERS}
    for attempt in range(1, attempts + 1):
        try:
            response = await client.request(method, base_url + path, content=body or None,
                                            headers=wanted)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadError, httpx.WriteError,
                httpx.RemoteProtocolError) as exc:
            if attempt == attempts:
                raise BackendUnreachable(base_url, exc) from exc
            continue
        except httpx.TimeoutException as exc:
            raise DeadlineExceeded(f"backend {base_url} did not answer in time "
                                   f"({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise Unavailable(f"backend {base_url} failed: {type(exc).__name__}: {exc}") from exc
        return BackendAnswer(response.status_code, response.content,
                             response.headers.get("content-type", "application/json"))
    raise AssertionError("unreachable: attempts must be at least 1")
