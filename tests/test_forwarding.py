"""The shared forwarder's error mapping at the httpx edge (httpx.MockTransport, no server)."""

from __future__ import annotations

import httpx
import pytest

from base.errors import DeadlineExceeded, Unavailable
from base.forwarding import BackendUnreachable, forward


def _client(error: Exception) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("error", [
    httpx.ConnectError("refused"), httpx.ConnectTimeout("slow accept"),
    httpx.ReadError("connection reset"), httpx.RemoteProtocolError("closed mid-answer"),
])
async def test_lost_or_refused_connections_may_go_elsewhere(error: Exception) -> None:
    async with _client(error) as client:
        with pytest.raises(BackendUnreachable):
            await forward(client, "POST", "http://hot", "/v1/models/m:predict", b"{}", {})


@pytest.mark.parametrize(("error", "expected"), [
    (httpx.ReadTimeout("slow"), DeadlineExceeded), (httpx.ProxyError("odd"), Unavailable),
])
async def test_other_failures_map_to_tf_serving_codes(error: Exception,
                                                      expected: type[Exception]) -> None:
    async with _client(error) as client:
        with pytest.raises(expected):
            await forward(client, "POST", "http://hot", "/v1/models/m:predict", b"{}", {})


async def test_answer_passes_through_unchanged() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.content == b'{"instances": [1]}'
        return httpx.Response(418, content=b'{"error": "teapot"}',
                              headers={"content-type": "application/json"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        answer = await forward(client, "POST", "http://cold", "/v1/models/m:predict",
                               b'{"instances": [1]}', {"Content-Type": "application/json"})
    assert (answer.status, answer.body) == (418, b'{"error": "teapot"}')


async def test_a_dropped_connection_is_sent_again_but_a_timeout_never() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("server closed the kept-alive connection")
        return httpx.Response(200, content=b"{}")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        answer = await forward(client, "POST", "http://ms", "/v1/models/m:predict", b"{}", {},
                               attempts=2)
    assert answer.status == 200 and len(calls) == 2

    calls.clear()

    def slow(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        raise httpx.ReadTimeout("slow")

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as client:
        with pytest.raises(DeadlineExceeded) as info:
            await forward(client, "POST", "http://ms", "/v1/models/m:predict", b"{}", {},
                          attempts=2)
    assert len(calls) == 1 and info.value.http_status == 504


async def test_unreachable_after_the_last_attempt_is_a_503() -> None:
    async with _client(httpx.ConnectError("refused")) as client:
        with pytest.raises(BackendUnreachable) as info:
            await forward(client, "GET", "http://ms", "/v1/models/m", b"", {}, attempts=2)
    assert isinstance(info.value, Unavailable) and info.value.http_status == 503
