"""A lean HTTP/1.1 client for load generators: keep-alive POSTs to one loopback server.

The generator shares two cores with the servers it measures, so every
millisecond it spends is taken from them: httpx (h11, pure Python) costs
several times what this does. It does only what a predict call needs: POST
with a body, answers with Content-Length or chunked, connection reuse (most
recently used first), at most `max_connections` at once (later requests wait
for one, and that wait counts in their latency).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names lowercased
    body: bytes


class Closed(ConnectionError):
    """The server closed the connection before answering."""


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def close(self) -> None:
        self.writer.close()


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and headers (lowercased names) of a response head, without the blank line."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers from our servers
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


class Http1Client:
    def __init__(self, host: str, port: int, max_connections: int = 256,
                 idle_s: float = 2.0) -> None:
        self.host, self.port = host, port
        # Servers drop idle keep-alive connections (uvicorn after 5 s): do not reuse old ones.
        self.idle_s = idle_s
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Conn] = []
        self.opened = 0

    def _take(self) -> _Conn | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < self.idle_s:
                return conn
            conn.close()
        return None

    async def post(self, path: str, body: bytes,
                   content_type: str = "application/json") -> Answer:
        request = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                   f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
                   ).encode("latin-1") + body
        async with self._slots:
            conn = self._take()
            if conn is not None:
                try:
                    return await self._exchange(conn, request)
                except (Closed, ConnectionResetError, BrokenPipeError):
                    pass  # a kept-alive connection the server had closed: once more, fresh
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.opened += 1
            return await self._exchange(_Conn(reader, writer), request)

    async def _exchange(self, conn: _Conn, request: bytes) -> Answer:
        try:
            conn.writer.write(request)
            await conn.writer.drain()
            try:
                head = await conn.reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise Closed("closed before answering") from exc
                raise
            status, headers = parse_head(head[:-4])
            if "content-length" in headers:
                body = await conn.reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                body = await _read_chunked(conn.reader)
            else:
                body = await conn.reader.read()
                headers["connection"] = "close"
        except BaseException:
            conn.close()  # half-read or cancelled (timeout): never reuse it
            raise
        if headers.get("connection", "").lower() == "close":
            conn.close()
        else:
            conn.idle_since = asyncio.get_running_loop().time()
            self._idle.append(conn)
        return Answer(status, headers, body)

    async def aclose(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
