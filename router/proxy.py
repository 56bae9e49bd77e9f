"""Forwarding to a backend with the process's one shared httpx.AsyncClient.

httpx's errors become tierserve's here, at the edge: a connection that could not
be made is `BackendUnreachable` (the caller may fall back to the cold pool, since
the backend never saw the request); a backend too slow to answer is
DeadlineExceeded (504); a connection lost mid-answer is Unavailable (503).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tierserve.errors import DeadlineExceeded, Unavailable

FORWARDED_HEADERS = ("content-type", "accept", "content-encoding")


class BackendUnreachable(Exception):
    """Connection refused or connect timeout: the request was never delivered."""

    def __init__(self, base_url: str, cause: Exception) -> None:
        super().__init__(f"{base_url} unreachable: {type(cause).__name__}: {cause}")
        self.base_url = base_url


@dataclass(frozen=True)
class BackendAnswer:
    status: int
    body: bytes
    content_type: str


def make_client(connect_timeout: float, request_timeout: float,
                max_connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(request_timeout, connect=connect_timeout,
                              pool=request_timeout),
        limits=httpx.Limits(max_connections=max_connections,
                            max_keepalive_connections=max_connections),
        # Backends are named by the routing table; no proxies from the environment.
        trust_env=False)


async def forward(client: httpx.AsyncClient, method: str, base_url: str, path: str,
                  body: bytes, headers: dict[str, str]) -> BackendAnswer:
    wanted = {k: v for k, v in headers.items() if k.lower() in FORWARDED_HEADERS}
    try:
        response = await client.request(method, base_url + path, content=body or None,
                                        headers=wanted)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise BackendUnreachable(base_url, exc) from exc
    except httpx.TimeoutException as exc:
        raise DeadlineExceeded(f"backend {base_url} did not answer in time "
                               f"({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise Unavailable(f"backend {base_url} failed: {type(exc).__name__}: {exc}") from exc
    return BackendAnswer(response.status_code, response.content,
                         response.headers.get("content-type", "application/json"))
