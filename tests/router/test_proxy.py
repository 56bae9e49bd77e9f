"""The proxy's error mapping at the httpx edge (httpx.MockTransport, no server)."""

from __future__ import annotations

import httpx
import pytest

from base.errors import DeadlineExceeded, Unavailable
from router.proxy import BackendUnreachable, forward


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
