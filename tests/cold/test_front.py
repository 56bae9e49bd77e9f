"""The cold pool's /v1 front (ColdFront in ColdPoolApp) with a fake pool and in-process
TCP model servers: what is forwarded where, the answers' headers, the error shapes, and
that every lease taken is given back."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import httpx
from fastapi import FastAPI

from base.errors import Unavailable
from base.forwarding import make_client
from pools.cold.app import ColdFront, ColdPoolApp, create_app
from pools.cold.labels import Labels
from pools.cold.pool import Lease
from tests.test_forwarding import OK, Server, answer_each, read_request, serving

BODY_LIMIT = 1000


class FakePool:
    """acquire/release as the front uses them; `fail` is raised by acquire."""

    def __init__(self, version: int = 3, server: int = 0, hit: bool = True) -> None:
        self.version, self.server, self.hit = version, server, hit
        self.fail: BaseException | None = None
        self.acquired: list[tuple[str, int | None]] = []
        self.released: list[Lease] = []
        self.config = SimpleNamespace(max_body_bytes=BODY_LIMIT)
        self.labels = Labels(labels={"m": {"stable": 5}})

    async def acquire(self, model: str, version: int | None) -> Lease:
        self.acquired.append((model, version))
        if self.fail is not None:
            raise self.fail
        return Lease((model, version or self.version), self.hit, self.server)

    def release(self, lease: Lease) -> None:
        self.released.append(lease)


def make_app(pool: FakePool, urls: list[str]) -> ColdPoolApp:
    client = make_client(1.0, 5.0, 4)
    app = ColdPoolApp(ColdFront(pool, urls, lambda: client))  # type: ignore[arg-type]
    return app


def http(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pool")


async def test_a_hit_goes_to_its_server_pinned_to_the_leased_version() -> None:
    async with serving(answer_each) as first, serving(answer_each) as second:
        pool = FakePool(version=7, server=1)
        async with http(make_app(pool, [first.url, second.url])) as client:
            r = await client.post("/v1/models/m:predict", content=b'{"instances": [1.0]}',
                                  headers={"content-type": "application/json",
                                           "x-user-id": "secret"})
        assert r.status_code == 200 and r.content == b"{}"
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-tierserve-pool"] == "cold"
        assert r.headers["x-tierserve-cache"] == "hit"
        assert r.headers["x-tierserve-model-version"] == "7"
        assert first.requests == [] and len(second.requests) == 1
        sent = second.requests[0]
        assert sent.startswith(b"POST /v1/models/m/versions/7:predict HTTP/1.1")
        assert sent.endswith(b'{"instances": [1.0]}')
        assert b"x-user-id" not in sent.lower()
        assert pool.acquired == [("m", None)] and len(pool.released) == 1


async def test_status_without_a_version_asks_for_every_version() -> None:
    async with serving(answer_each) as server:
        pool = FakePool(version=2, hit=False)
        async with http(make_app(pool, [server.url])) as client:
            r = await client.get("/v1/models/m")
            pinned = await client.get("/v1/models/m/versions/2/metadata")
        assert r.status_code == 200 and r.headers["x-tierserve-cache"] == "miss"
        assert server.requests[0].startswith(b"GET /v1/models/m HTTP/1.1")
        assert pinned.status_code == 200
        assert server.requests[1].startswith(b"GET /v1/models/m/versions/2/metadata HTTP/1.1")
        assert pool.acquired == [("m", None), ("m", 2)] and len(pool.released) == 2


async def test_a_shed_miss_is_503_with_retry_after_and_nothing_forwarded() -> None:
    async with serving(answer_each) as server:
        pool = FakePool()
        pool.fail = Unavailable("cannot be loaded within 30 s", retry_after=2.6)
        async with http(make_app(pool, [server.url])) as client:
            r = await client.post("/v1/models/m:predict", json={"instances": [1.0]})
        assert r.status_code == 503 and r.headers["retry-after"] == "3"
        assert r.json() == {"error": "cannot be loaded within 30 s"}
        assert server.requests == [] and pool.released == []


async def test_a_label_is_its_version_and_an_unknown_one_tf_servings_400() -> None:
    async with serving(answer_each) as server:
        pool = FakePool(version=5)
        async with http(make_app(pool, [server.url])) as client:
            predict = await client.post("/v1/models/m/labels/stable:predict", json={})
            status = await client.get("/v1/models/m/labels/stable")
            metadata = await client.get("/v1/models/m/labels/stable/metadata")
            unknown = await client.post("/v1/models/m/labels/beta:predict", json={})
            other = await client.get("/v1/models/other/labels/stable")
            bad = await client.get("/v1/models/m:predict")
    assert (predict.status_code, status.status_code, metadata.status_code) == (200, 200, 200)
    assert predict.headers["x-tierserve-model-version"] == "5"
    assert [r.split(b" HTTP")[0] for r in server.requests] == [
        b"POST /v1/models/m/versions/5:predict", b"GET /v1/models/m/versions/5",
        b"GET /v1/models/m/versions/5/metadata"]
    for r, label in ((unknown, "beta"), (other, "stable")):  # as our model server answers
        assert r.status_code == 400
        assert r.json() == {"error": f"Unrecognized servable version label: {label}"}
    assert bad.status_code == 400 and set(bad.json()) == {"error"}
    assert pool.acquired == [("m", 5)] * 3


async def test_tracing_headers_go_on_to_the_model_server() -> None:
    async with serving(answer_each) as server:
        async with http(make_app(FakePool(), [server.url])) as client:
            r = await client.post("/v1/models/m:predict", json={"instances": [1.0]}, headers={
                "X-Request-Id": "req-7", "traceparent": "00-abc-def-01", "tracestate": "k=v",
                "authorization": "Bearer secret"})
    assert r.status_code == 200
    sent = server.requests[0].lower()
    for line in (b"x-request-id: req-7", b"traceparent: 00-abc-def-01", b"tracestate: k=v"):
        assert line in sent
    assert b"authorization" not in sent


async def test_a_body_past_the_limit_is_413_unread_and_loads_nothing() -> None:
    async with serving(answer_each) as server:
        pool = FakePool()
        async with http(make_app(pool, [server.url])) as client:
            declared = await client.post("/v1/models/m:predict", content=b"x" * (BODY_LIMIT + 1),
                                         headers={"content-type": "application/json"})

            async def chunks():  # no Content-Length: counted as it arrives
                for _ in range(3):
                    yield b"x" * 600

            streamed = await client.post("/v1/models/m:predict", content=chunks())
            fits = await client.post("/v1/models/m:predict", content=b"x" * BODY_LIMIT)
    assert declared.status_code == 413 and set(declared.json()) == {"error"}
    assert "1000 bytes" in declared.json()["error"]
    assert streamed.status_code == 413 and set(streamed.json()) == {"error"}
    assert fits.status_code == 200
    assert pool.acquired == [("m", None), ("m", None)]  # none for the declared one
    assert len(pool.released) == 2 and len(server.requests) == 1


async def test_a_dropped_connection_is_sent_once_more_then_503_and_the_lease_back() -> None:
    async def drop_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         state: Server) -> None:
        state.requests.append(await read_request(reader))
        if state.connections == 1:
            return  # closed without an answer
        writer.write(OK)
        await writer.drain()

    async def drop_all(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       state: Server) -> None:
        state.requests.append(await read_request(reader))

    async with serving(drop_first) as flaky, serving(drop_all) as dead:
        pool = FakePool()
        async with http(make_app(pool, [flaky.url])) as client:
            r = await client.post("/v1/models/m:predict", json={"instances": [1.0]})
        assert r.status_code == 200 and len(flaky.requests) == 2
        pool = FakePool()
        async with http(make_app(pool, [dead.url])) as client:
            r = await client.post("/v1/models/m:predict", json={"instances": [1.0]})
        assert r.status_code == 503 and "unreachable" in r.json()["error"]
        assert len(dead.requests) == 2 and len(pool.released) == 1


async def test_a_bug_is_a_500_in_tf_serving_shape() -> None:
    pool = FakePool()
    pool.fail = KeyError("oops")
    async with http(make_app(pool, ["http://127.0.0.1:9"])) as client:
        r = await client.post("/v1/models/m:predict", json={})
    assert r.status_code == 500 and "KeyError" in r.json()["error"]


async def test_everything_else_is_fastapi_with_the_v1_paths_documented() -> None:
    pool = FakePool()
    app = create_app(pool, "http://127.0.0.1:9")  # type: ignore[arg-type]
    async with http(app) as client:
        put = await client.put("/v1/models/m:predict", json={})
        bare = await client.get("/v1/other")
        docs = await client.get("/openapi.json")
    assert put.status_code == 405 and put.json() == {"error": "Method Not Allowed"}
    assert bare.status_code == 404 and bare.json() == {"error": "Not Found"}
    paths = docs.json()["paths"]
    assert set(paths["/v1/models/{rest}"]) == {"get", "post"}
    assert "/admin/models" in paths and "/metrics" in paths
    assert pool.acquired == []
