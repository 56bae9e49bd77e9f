"""The cold pool's /admin behind the admin rule (base.admin_auth, the router's too): a
token when one is set, loopback clients only when none is; /v1 and the rest untouched."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from fastapi import FastAPI

from pools.cold.app import create_app
from tests.cold.test_front import FakePool

UNLOAD = "/admin/models/m/unload?delete_files=true"


class AdminPool(FakePool):
    """What the unload call needs; `unloaded` says whether a call got through."""

    def __init__(self) -> None:
        super().__init__()
        self.config = SimpleNamespace(load_wait_s=1.0, max_body_bytes=1 << 20)
        self.unloaded: list[tuple[str, int | None, bool]] = []

    async def unload(self, model: str, version: int | None, delete_files: bool,
                     wait: float) -> list[tuple[str, int]]:
        self.unloaded.append((model, version, delete_files))
        return [(model, 1)]


def client(app: FastAPI, host: str) -> httpx.AsyncClient:
    # The client address is the ASGI scope's: no traffic leaves the process.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(host, 50000)),
                             base_url="http://pool")


@pytest.mark.parametrize("host", ["127.0.0.1", "10.0.0.7"])
async def test_with_a_token_every_caller_needs_it(host: str) -> None:
    pool = AdminPool()
    app = create_app(pool, "http://127.0.0.1:9", admin_token="s3cret")  # type: ignore[arg-type]
    async with client(app, host) as http:
        missing = await http.post(UNLOAD)
        wrong = await http.post(UNLOAD, headers={"Authorization": "Bearer nope"})
        assert pool.unloaded == []  # refused calls leave the cache as it was
        right = await http.post(UNLOAD, headers={"Authorization": "Bearer s3cret"})
        docs = await http.get("/openapi.json")  # outside /admin: no token asked
    for answer in (missing, wrong):
        assert answer.status_code == 401
        assert answer.json() == {"error": "cold pool admin API: missing or wrong bearer token"}
        assert answer.headers["www-authenticate"] == "Bearer"
    assert right.status_code == 200 and right.json() == {"unloaded": [{"model": "m",
                                                                       "version": 1}]}
    assert pool.unloaded == [("m", None, True)]
    assert docs.status_code == 200


async def test_without_a_token_only_loopback_clients() -> None:
    pool = AdminPool()
    app = create_app(pool, "http://127.0.0.1:9")  # type: ignore[arg-type]
    async with client(app, "172.18.0.5") as http:
        refused = await http.post(UNLOAD)
    assert refused.status_code == 403 and "only loopback" in refused.json()["error"]
    assert pool.unloaded == []
    for host in ("127.0.0.1", "::1"):
        async with client(app, host) as http:
            assert (await http.post(UNLOAD)).status_code == 200
    assert len(pool.unloaded) == 2
