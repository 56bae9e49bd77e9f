"""The shared forwarder and its HTTP/1.1 client against small in-process TCP servers that
answer byte for byte what each case needs: error mapping, keep-alive, retries, bounds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from base import http1
from base.errors import DeadlineExceeded, Unavailable
from base.forwarding import (
    TRACE_HEADERS,
    BackendUnreachable,
    forward,
    header_names,
    make_client,
    wanted_headers,
)
from base.procs import free_port

OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


class Server:
    def __init__(self) -> None:
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Server]:
    state = Server()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            await handler(reader, writer, state)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with server:
        yield state


async def answer_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      state: Server) -> None:
    while True:
        state.requests.append(await read_request(reader))
        writer.write(OK)
        await writer.drain()


def client(timeout: float = 5.0, max_connections: int = 8) -> http1.Client:
    return make_client(1.0, timeout, max_connections)


async def test_answer_and_request_pass_through_unchanged() -> None:
    async def teapot(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     state: Server) -> None:
        state.requests.append(await read_request(reader))
        writer.write(b"HTTP/1.1 418 I'm a teapot\r\ncontent-type: application/json\r\n"
                     b"transfer-encoding: chunked\r\n\r\n"
                     b"6\r\n{\"erro\r\n10\r\nr\": \"teapot\"}   \r\n0\r\n\r\n")
        await writer.drain()

    async with serving(teapot) as server:
        c = client()
        headers = wanted_headers([(b"content-type", b"application/json"),
                                  (b"x-user-id", b"secret"), (b"accept", b"*/*")])
        answer = await forward(c, "POST", server.url, "/v1/models/m:predict",
                               b'{"instances": [1]}', headers)
        await c.aclose()
    assert (answer.status, answer.body, answer.content_type) == (
        418, b'{"error": "teapot"}   ', b"application/json")
    [sent] = server.requests
    assert sent.startswith(b"POST /v1/models/m:predict HTTP/1.1\r\n")
    assert b"content-type: application/json\r\n" in sent and b"accept: */*\r\n" in sent
    assert b"x-user-id" not in sent and sent.endswith(b'\r\n\r\n{"instances": [1]}')


def test_header_names_add_to_the_body_headers_and_refuse_framing_ones() -> None:
    raw = [(b"content-type", b"application/json"), (b"x-request-id", b"r1"),
           (b"traceparent", b"00-t-s-01"), (b"authorization", b"Bearer s"), (b"host", b"h")]
    assert wanted_headers(raw, header_names(TRACE_HEADERS)) == raw[:3]
    assert wanted_headers(raw) == raw[:1]  # the default: only what the body needs
    assert header_names(["Authorization"]) >= {b"authorization", b"content-type"}
    for bad in ("Host", "content-length", "Connection", "TE", "a:b", ""):
        with pytest.raises(ValueError):
            header_names([bad])


async def test_connections_are_kept_alive_and_bounded() -> None:
    async with serving(answer_each) as server:
        c = client(max_connections=2)
        for _ in range(5):
            assert (await forward(c, "GET", server.url, "/v1/models/m", b"", [])).status == 200
        assert server.connections == 1
        answers = await asyncio.gather(*(forward(c, "GET", server.url, "/v1/models/m", b"", [])
                                         for _ in range(20)))
        assert {a.status for a in answers} == {200} and len(server.requests) == 25
        assert server.connections == 2 and c.open_connections() == 2
        await c.aclose()


async def test_refused_is_unreachable_a_503() -> None:
    c = client()
    with pytest.raises(BackendUnreachable) as info:
        await forward(c, "GET", f"http://127.0.0.1:{free_port()}", "/v1/models/m", b"", [],
                      attempts=2)
    assert isinstance(info.value, Unavailable) and info.value.http_status == 503
    assert c.open_connections() == 0


async def test_dropped_before_the_answer_is_unreachable_and_sent_again() -> None:
    async def drop_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         state: Server) -> None:
        state.requests.append(await read_request(reader))
        if len(state.requests) == 1:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{")  # then dies
            return
        writer.write(OK)

    async with serving(drop_first) as server:
        c = client()
        with pytest.raises(BackendUnreachable):
            await forward(c, "POST", server.url, "/v1/models/m:predict", b"{}", [])
        server.requests.clear()
        answer = await forward(c, "POST", server.url, "/v1/models/m:predict", b"{}", [],
                               attempts=2)
        assert answer.status == 200 and len(server.requests) == 2
        await c.aclose()


async def test_a_kept_alive_connection_closed_by_the_server_is_replaced() -> None:
    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                 state: Server) -> None:
        # Says keep-alive, then closes once the client is about to reuse the connection.
        state.requests.append(await read_request(reader))
        writer.write(OK)
        await writer.drain()
        await reader.read(1)

    async with serving(one_per_connection) as server:
        c = client()
        for _ in range(3):
            assert (await forward(c, "GET", server.url, "/v1/models/m", b"", [])).status == 200
        assert server.connections == 3 and len(server.requests) == 3
        await c.aclose()


async def test_a_slow_answer_is_a_504_and_never_sent_twice() -> None:
    async def never(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    state: Server) -> None:
        state.requests.append(await read_request(reader))
        await reader.read()

    async with serving(never) as server:
        c = client(timeout=0.2)
        with pytest.raises(DeadlineExceeded) as info:
            await forward(c, "POST", server.url, "/v1/models/m:predict", b"{}", [], attempts=2)
        assert info.value.http_status == 504 and len(server.requests) == 1
        assert c.open_connections() == 0


async def test_garbage_is_unavailable_not_unreachable() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      state: Server) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with serving(garbage) as server:
        c = client()
        with pytest.raises(Unavailable) as info:
            await forward(c, "GET", server.url, "/v1/models/m", b"", [], attempts=2)
        assert not isinstance(info.value, BackendUnreachable)
        await c.aclose()


async def test_targets_that_would_split_the_request_line_are_refused() -> None:
    with pytest.raises(ValueError):
        await client().request("GET", "http://127.0.0.1:1", "/v1/models/a b\r\nx: y", b"")


async def test_a_path_prefix_in_the_base_url_is_kept_and_a_bad_url_is_unreachable() -> None:
    async with serving(answer_each) as server:
        c = client()
        answer = await forward(c, "GET", server.url + "/tfs/", "/v1/models/m", b"", [])
        assert answer.status == 200
        assert server.requests[0].startswith(b"GET /tfs/v1/models/m HTTP/1.1\r\n")
        with pytest.raises(BackendUnreachable):
            await forward(c, "GET", "ftp://127.0.0.1:1", "/v1/models/m", b"", [])
        await c.aclose()


async def test_answers_split_anywhere_and_large_bodies_arrive_whole() -> None:
    big = b"[" + b"1.0," * 250_000 + b"1.0]"

    async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      state: Server) -> None:
        while True:
            state.requests.append(await read_request(reader))
            if len(state.requests) == 1:  # byte by byte
                for i in range(len(OK)):
                    writer.write(OK[i:i + 1])
                    await writer.drain()
            else:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(big), big))
                await writer.drain()

    async with serving(dribble) as server:
        c = client()
        first = await forward(c, "POST", server.url, "/v1/models/m:predict", big, [])
        second = await forward(c, "POST", server.url, "/v1/models/m:predict", b"{}", [])
        await c.aclose()
    assert (first.body, first.content_type) == (b"{}", b"application/json")
    assert second.body == big and second.content_type == b"application/json"  # defaulted
    assert server.requests[0].endswith(big) and server.connections == 1


class _ClosedTransport(asyncio.Transport):
    """A transport as uvloop leaves it after a reset the protocol has not heard of yet."""

    def __init__(self, closing: bool) -> None:
        super().__init__()
        self.closing = closing

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>; "
                           "the handler is closed")

    def close(self) -> None:
        self.closing = True


@pytest.mark.parametrize("closing", [True, False])
async def test_a_connection_reset_before_the_write_is_dropped_not_a_bug(closing: bool) -> None:
    # Seen with Docker's port proxy: it accepts, then resets; the write must read as a
    # dropped connection (503, or the router's cold fallback), never as a 500.
    conn = http1._Connection()
    conn.connection_made(_ClosedTransport(closing))
    with pytest.raises(http1.ConnectionDropped):
        await conn.send(b"GET / HTTP/1.1\r\n\r\n", b"")
    assert conn.closed
