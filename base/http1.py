"""A lean HTTP/1.1 client for forwarding: kept-alive connections per backend, httptools' parser.

Why not httpx: a profile of the router under one client put most of its CPU
per request under httpx, httpcore and h11 (a pure-Python parser), for what
is one write and one parse on a kept-alive connection. This client does only
what forwarding needs: a request with a body, an answer with its status,
content type and body (Content-Length or chunked), connections reused while
the server keeps them alive. httptools is the C parser uvicorn uses.

Failures are this module's own exceptions; base.forwarding maps them to
tierserve's errors.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

# A request target we write as is: printable ASCII, no spaces (paths come from base.tfs_rest).
_TARGET_RE = re.compile(r"/[!-~]*")


class HttpFailure(Exception):
    """Base class of this module's failures."""


class ConnectFailed(HttpFailure):
    """Refused, unreachable, or not accepted within the connect timeout."""


class ConnectionDropped(HttpFailure):
    """The connection closed before a whole answer came."""


class ReadTimeout(HttpFailure):
    """No whole answer within the request timeout."""


class BadAnswer(HttpFailure):
    """The server's bytes are not HTTP/1.1."""


# Headers that describe one hop's connection or framing: never passed on.
HOP_HEADERS = frozenset((b"connection", b"keep-alive", b"transfer-encoding", b"content-length",
                         b"date", b"server", b"content-type", b"upgrade", b"te", b"trailer"))


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes
    content_type: bytes
    # The answer's other end-to-end headers (lower-case names), for a proxy to pass on.
    headers: tuple[tuple[bytes, bytes], ...] = ()


class _Connection(asyncio.Protocol):
    """One TCP connection, one request at a time; parser callbacks fill the answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self.requests = 0
        self._body: list[bytes] = []
        self._content_type = b""
        self._headers: list[tuple[bytes, bytes]] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(BadAnswer(f"unparsable answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionDropped(f"connection closed before the answer ({exc!r})"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-type":
            self._content_type = value
        elif name not in HOP_HEADERS:
            self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        self.reusable = self.parser.should_keep_alive()
        waiter.set_result(Answer(self.parser.get_status_code(), b"".join(self._body),
                                 self._content_type, tuple(self._headers)))

    # client side
    def send(self, head: bytes, body: bytes) -> asyncio.Future[Answer]:
        assert self.transport is not None
        self._body = []
        self._content_type = b""
        self._headers = []
        self.reusable = False
        self.requests += 1
        self.waiter = asyncio.get_running_loop().create_future()
        if self.closed or self.transport.is_closing():
            # The peer closed it before connection_lost reached us (a container's port
            # proxy accepts, then drops): uvloop raises RuntimeError on such a write.
            self.closed = True
            self.waiter.set_exception(ConnectionDropped("connection closed before the request"))
            return self.waiter
        try:
            # One write: two would cost two system calls (and on loopback, two wake-ups).
            self.transport.write(head + body)
        except (RuntimeError, OSError) as exc:
            self.close()
            self.waiter.set_exception(ConnectionDropped(f"write failed: {exc!r}"))
        return self.waiter

    def expire(self) -> None:
        self._fail(ReadTimeout("no answer within the request timeout"))
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: HttpFailure) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class _Backend:
    """The connections to one host:port, and who waits for one."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http:// or https:// URL: {base_url!r}")
        self.host = parts.hostname
        self.base_url = base_url
        self.tls = _tls_context() if parts.scheme == "https" else None
        self.port = parts.port or (443 if self.tls else 80)
        self.host_header = parts.netloc.encode("ascii")
        # A backend behind a path prefix (http://proxy/tfs) gets it before every path.
        self.prefix = parts.path.rstrip("/").encode("ascii")
        self.idle: deque[_Connection] = deque()
        self.open = 0
        self.waiters: deque[asyncio.Future[None]] = deque()

    def wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class Client:
    """Kept-alive HTTP/1.1 connections to any number of backends (named by base URL)."""

    def __init__(self, connect_timeout: float, request_timeout: float,
                 max_connections_per_backend: int, keepalive_expiry: float) -> None:
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.max_connections = max_connections_per_backend
        self.keepalive_expiry = keepalive_expiry
        self._backends: dict[str, _Backend] = {}

    def open_connections(self) -> int:
        return sum(b.open for b in self._backends.values())

    async def request(self, method: str, base_url: str, path: str, body: bytes,
                      headers: Sequence[tuple[bytes, bytes]] = ()) -> Answer:
        if not _TARGET_RE.fullmatch(path):
            raise ValueError(f"not a request target: {path!r}")
        backend = self._backends.get(base_url)
        if backend is None:
            try:
                backend = _Backend(base_url)
            except ValueError as exc:  # a bad endpoint is one nobody can connect to
                raise ConnectFailed(str(exc)) from exc
            self._backends[base_url] = backend
        head = b"".join((
            method.encode("ascii"), b" ", backend.prefix, path.encode("ascii"),
            b" HTTP/1.1\r\nhost: ",
            backend.host_header, b"\r\ncontent-length: ", str(len(body)).encode("ascii"),
            b"\r\n", *(b"%s: %s\r\n" % pair for pair in headers), b"\r\n"))
        conn = await self._checkout(backend)
        try:
            return await self._exchange(backend, conn, head, body)
        except ConnectionDropped:
            if conn.requests < 2:
                raise
        # The server closed a kept-alive connection as we reused it: once more on a new
        # one (forwarded calls have no side effects). A dead server refuses this one.
        conn = await self._connect(backend)
        return await self._exchange(backend, conn, head, body)

    async def _exchange(self, backend: _Backend, conn: _Connection, head: bytes,
                        body: bytes) -> Answer:
        timer = asyncio.get_running_loop().call_later(self.request_timeout, conn.expire)
        try:
            answer = await conn.send(head, body)
        except BaseException:
            conn.close()  # mid-request (a timeout, a cancelled caller): never reuse
            self._release(backend, conn)
            raise
        finally:
            timer.cancel()
        self._release(backend, conn)
        return answer

    async def _checkout(self, backend: _Backend) -> _Connection:
        now = time.monotonic()
        while True:
            while backend.idle:
                # Most recently used first: the least likely to be closing by now.
                conn = backend.idle.pop()
                if not conn.closed and now - conn.idle_since < self.keepalive_expiry:
                    return conn
                conn.close()
                backend.open -= 1
            if backend.open < self.max_connections:
                return await self._connect(backend)
            waiter = asyncio.get_running_loop().create_future()
            backend.waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, self.request_timeout)
            except TimeoutError as exc:
                raise ReadTimeout(f"no free connection to {backend.host}:{backend.port} "
                                  f"within {self.request_timeout} s") from exc
            now = time.monotonic()

    async def _connect(self, backend: _Backend) -> _Connection:
        backend.open += 1
        self._backends.setdefault(backend.base_url, backend)  # if forgotten meanwhile
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_Connection, backend.host, backend.port,
                                       ssl=backend.tls),
                self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            backend.open -= 1
            backend.wake_one()
            self._forget_if_unused(backend)
            raise ConnectFailed(f"{backend.host}:{backend.port}: {type(exc).__name__}: "
                                f"{exc}") from exc
        except BaseException:
            backend.open -= 1
            backend.wake_one()
            raise
        return conn

    def _release(self, backend: _Backend, conn: _Connection) -> None:
        if conn.closed or not conn.reusable:
            conn.close()
            backend.open -= 1
        else:
            conn.idle_since = time.monotonic()
            backend.idle.append(conn)
        backend.wake_one()
        self._forget_if_unused(backend)

    def _forget_if_unused(self, backend: _Backend) -> None:
        # Hot endpoints come and go (a new port per container): forget unused ones.
        if backend.open == 0 and not backend.waiters:
            self._backends.pop(backend.base_url, None)

    async def aclose(self) -> None:
        for backend in self._backends.values():
            while backend.idle:
                backend.idle.pop().close()
                backend.open -= 1
        self._backends.clear()
