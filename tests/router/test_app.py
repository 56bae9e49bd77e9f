"""The router app in-process (ASGI) against small fake backend processes: error shapes,
fallback, admin access and validation, live weight changes, count flushes, a db outage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from base.errors import Unavailable
from base.procs import free_port
from db import queries
from db.queries import Engine, make_engine
from router.app import create_app
from router.config import RouterConfig
from testkit.postgres import outage
from tests.router.conftest import start_fake_backend
from tests.router.fake_backend import TRACEPARENT

TOKEN = "t0ken"


@pytest.fixture(scope="module")
def fakes(log_dir: Path) -> Iterator[dict[str, str]]:
    procs = [start_fake_backend(log_dir, 2.0, "hot"), start_fake_backend(log_dir, 3.0, "cold"),
             start_fake_backend(log_dir, 1.0, "slow", delay=3.0)]
    try:
        yield {"hot": procs[0][1], "cold": procs[1][1], "slow": procs[2][1]}
    finally:
        for proc, _ in procs:
            proc.stop()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'router.db'}")


@asynccontextmanager
async def running(engine: Engine, client_host: str = "127.0.0.1",
                  **config: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(RouterConfig(**{"flush_interval": 60.0, "poll_interval": 0.1,
                                     "grpc_port": 0, **config}),
                     engine)
    transport = httpx.ASGITransport(app=app, client=(client_host, 40000))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            yield client, app.state.router


def predict(x: list[float]) -> dict[str, Any]:
    return {"instances": x}


async def test_hot_cold_and_passthrough(fakes: dict[str, str], engine: Engine) -> None:
    queries.set_placement(engine, "h", "hot", fakes["hot"] + "/")
    async with running(engine, cold_url=fakes["cold"]) as (client, _):
        r = await client.post("/v1/models/h/versions/4:predict", json=predict([1.0, 2.0]))
        assert r.status_code == 200
        assert r.json()["predictions"] == [2.0, 4.0]
        assert r.json()["path"] == "/v1/models/h/versions/4:predict"
        assert (r.headers["x-tierserve-model"], r.headers["x-tierserve-pool"]) == ("h", "hot")
        assert "x-tierserve-variant" not in r.headers
        # The backend's own headers pass on; its claim about the pool never replaces ours.
        assert r.headers["x-tierserve-cache"] == "hit"
        assert r.headers.get_list("x-tierserve-pool") == ["hot"]
        # Tracing headers reach the backend; credentials and unlisted headers do not.
        r = await client.post("/v1/models/c:predict", json=predict([1.0]), headers={
            "X-Request-Id": "req-42", "traceparent": "00-abc-01", "tracestate": "k=v",
            "Authorization": "Bearer secret", "X-Other": "o"})
        seen = r.json()["headers"]
        assert (seen["x-request-id"], seen["traceparent"], seen["tracestate"]) == (
            "req-42", "00-abc-01", "k=v")
        assert "authorization" not in seen and "x-other" not in seen
        assert seen["content-type"] == "application/json"
        # ... and the backend's trace context comes back.
        assert r.headers["traceparent"] == TRACEPARENT
        r = await client.post("/v1/models/c/labels/stable:regress", json=predict([1.0]))
        assert r.json()["path"] == "/v1/models/c/labels/stable:regress"
        assert r.headers["x-tierserve-pool"] == "cold"
        # The backend's own error status and body come back unchanged.
        r = await client.post("/v1/models/c:predict", content=b"not json")
        assert (r.status_code, r.json()) == (400, {"error": "bad body"})
        r = await client.get("/v1/models/c/metadata")
        assert r.json() == {"backend": "cold", "path": "/v1/models/c/metadata"}


async def test_forwarded_headers_are_configurable(fakes: dict[str, str],
                                                  engine: Engine) -> None:
    async with running(engine, cold_url=fakes["cold"],
                       forward_headers="Authorization, X-Tenant") as (client, _):
        r = await client.post("/v1/models/c:predict", json=predict([1.0]), headers={
            "Authorization": "Bearer s", "X-Tenant": "t", "X-Request-Id": "r"})
        seen = r.json()["headers"]
        assert (seen["authorization"], seen["x-tenant"]) == ("Bearer s", "t")
        assert "x-request-id" not in seen  # the list replaces the default one


async def test_error_shapes(fakes: dict[str, str], engine: Engine) -> None:
    queries.set_placement(engine, "slow", "hot", fakes["slow"])
    async with running(engine, cold_url=fakes["cold"], max_body_bytes=1000,
                       request_timeout=0.5) as (client, _):
        r = await client.post("/v1/models/m:explode", json={})
        assert (r.status_code, r.json()) == (
            400, {"error": "Malformed request: POST /v1/models/m:explode"})
        r = await client.post("/v1/models/m:predict", content=b"x" * 1001)
        assert r.status_code == 413 and "1000 bytes" in r.json()["error"]
        # No name: TF Serving's 400 and texts (the model server's too), never a redirect.
        for path, error in (("/v1/models", "Missing model name in request."),
                            ("/v1/models/", "Malformed request: GET /v1/models/"),
                            ("/v1", "Malformed request: GET /v1")):
            r = await client.get(path)
            assert (r.status_code, r.json()) == (400, {"error": error}), path
        # TF Serving's paths are case-insensitive: forwarded in the canonical form.
        r = await client.get("/V1/MODELS/c/METADATA")
        assert r.json()["path"] == "/v1/models/c/metadata"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b"y" * 300  # no Content-Length: the cap applies while reading

        r = await client.post("/v1/models/m:predict", content=chunks())
        assert r.status_code == 413
        r = await client.post("/v1/models/slow:predict", json=predict([1.0]))
        assert r.status_code == 504 and "did not answer in time" in r.json()["error"]
    dead = f"http://127.0.0.1:{free_port()}"
    async with running(engine, cold_url=dead) as (client, _):
        r = await client.post("/v1/models/m:predict", json=predict([1.0]))
        assert r.status_code == 503 and "cold pool unreachable" in r.json()["error"]
        r = await client.get("/nothing")
        assert r.status_code == 404 and "error" in r.json()


async def test_unreachable_hot_falls_back_to_cold_and_is_marked(
        fakes: dict[str, str], engine: Engine) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    queries.set_placement(engine, "h", "hot", dead)
    async with running(engine, cold_url=fakes["cold"]) as (client, state):
        for _ in range(3):
            r = await client.post("/v1/models/h:predict", json=predict([1.0]))
            assert (r.status_code, r.json()["backend"]) == (200, "cold")
            assert r.headers["x-tierserve-pool"] == "cold"
        await state.counter.flush()
    [placement] = queries.list_placements(engine)
    assert placement.healthy is False and placement.endpoint == dead
    events = queries.list_events(engine, model="h")
    assert [e.action for e in events] == ["unhealthy"]  # marked once, not per request
    [stats] = queries.model_stats(engine, 3600, time.time())
    assert (stats.model, stats.count) == ("h", 3)


async def test_admin_token(fakes: dict[str, str], engine: Engine) -> None:
    async with running(engine, cold_url=fakes["cold"], admin_token=TOKEN) as (client, _):
        r = await client.get("/admin/routing")
        assert r.status_code == 401 and "token" in r.json()["error"]
        r = await client.get("/admin/routing", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
        r = await client.get("/admin/routing", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and r.json()["cold_url"] == fakes["cold"]
        # The cold pool's /admin follows the same rule: the dashboard sends our token there.
        r = await client.get("/ui/api/overview", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.json()["cold_cache"]["authorization"] == f"Bearer {TOKEN}"
    async with running(engine, cold_url=fakes["cold"]) as (client, _):
        assert (await client.get("/admin/routing")).status_code == 200  # loopback, no token
        r = await client.get("/ui/api/overview")
        assert r.json()["cold_cache"]["authorization"] is None
    async with running(engine, client_host="10.1.2.3", cold_url=fakes["cold"]) as (client, _):
        r = await client.get("/admin/routing")
        assert r.status_code == 403 and "loopback" in r.json()["error"]
        # Inference is not behind the admin check.
        r = await client.post("/v1/models/c:predict", json=predict([1.0]))
        assert r.status_code == 200


def _error_locs(response: httpx.Response) -> list[list[Any]]:
    import json

    assert response.status_code == 422
    return [e["loc"] for e in json.loads(response.json()["error"])]


async def test_experiment_validation(fakes: dict[str, str], engine: Engine) -> None:
    async with running(engine, cold_url=fakes["cold"]) as (client, _):
        r = await client.post("/admin/experiments", json={
            "name": "e", "variants": [{"model": "a", "weight": 60}, {"model": "b", "weight": 60}]})
        assert _error_locs(r) == [["body", "variants"]]
        assert "sum to 100" in r.json()["error"]
        r = await client.post("/admin/experiments", json={
            "name": "e", "variants": [{"model": "a/../x", "weight": 100}]})
        assert _error_locs(r) == [["body", "variants", 0, "model"]]
        good = {"name": "e", "variants": [{"model": "a", "weight": 100}]}
        assert (await client.post("/admin/experiments", json=good)).status_code == 201
        assert (await client.post("/admin/experiments", json=good)).status_code == 409
        r = await client.put("/admin/experiments/e", json={"variants": [
            {"model": "a", "weight": 100}, {"model": "a", "weight": 0}]})
        assert _error_locs(r) == [["variants"]]
        r = await client.put("/admin/experiments/zz", json={"variants": good["variants"]})
        assert r.status_code == 404
        assert (await client.delete("/admin/experiments/e")).status_code == 204
        assert (await client.delete("/admin/experiments/e")).status_code == 404
        r = await client.put("/admin/placements/m", json={"pool": "hot"})
        assert r.status_code == 400 and "endpoint" in r.json()["error"]
        r = await client.post("/admin/models/bad%20name/pin")
        assert _error_locs(r) == [["path", "model"]]


async def test_weights_change_live_and_counts(fakes: dict[str, str], engine: Engine) -> None:
    queries.set_placement(engine, "b", "hot", fakes["hot"])
    async with running(engine, cold_url=fakes["cold"]) as (client, state):
        spec = {"name": "pub", "variants": [{"model": "a", "weight": 100},
                                            {"model": "b", "weight": 0, "name": "arm-b"}]}
        assert (await client.post("/admin/experiments", json=spec)).status_code == 201
        for i in range(20):
            r = await client.post("/v1/models/pub:predict", json=predict([1.0]),
                                  headers={"X-User-Id": f"u{i}"})
            assert (r.headers["x-tierserve-variant"], r.json()["backend"]) == ("a", "cold")
        spec["variants"] = [{"model": "a", "weight": 0}, {"model": "b", "weight": 100,
                                                          "name": "arm-b"}]
        del spec["name"]
        assert (await client.put("/admin/experiments/pub", json=spec)).status_code == 200
        for i in range(20):
            r = await client.post("/v1/models/pub:predict", json=predict([1.0]),
                                  headers={"X-User-Id": f"u{i}"})
            assert r.headers["x-tierserve-variant"] == "arm-b"
            assert (r.headers["x-tierserve-model"], r.json()["backend"]) == ("b", "hot")
        await state.counter.flush()
        r = await client.get("/admin/experiments/pub/stats")
        arms = {v["variant"]: v["count"] for v in r.json()["variants"]}
        assert arms == {"a": 20, "arm-b": 20}
        r = await client.get("/admin/stats", params={"window_s": 600})
        assert {m["model"]: m["count"] for m in r.json()["models"]} == {"a": 20, "b": 20}
        r = await client.get("/metrics")
        assert 'tierserve_router_requests_total{code="200",model="b",pool="hot"} 20.0' in r.text


async def test_pin_and_routing_view(fakes: dict[str, str], engine: Engine) -> None:
    async with running(engine, cold_url=fakes["cold"]) as (client, _):
        assert (await client.post("/admin/models/m1/pin")).status_code == 200
        r = await client.put("/admin/placements/m2", json={"pool": "hot",
                                                           "endpoint": fakes["hot"]})
        assert r.status_code == 200
        view = (await client.get("/admin/routing")).json()
        assert view["db_version"] == view["loaded_version"] == 2
        rows = {p["model"]: (p["pool"], p["pinned"]) for p in view["placements"]}
        assert rows == {"m1": ("cold", True), "m2": ("hot", False)}
        r = await client.post("/v1/models/m2:predict", json=predict([1.0]))
        assert r.json()["backend"] == "hot"
        assert (await client.delete("/admin/models/m1/pin")).status_code == 200
        assert (await client.delete("/admin/placements/m2")).status_code == 200
        assert (await client.get("/admin/routing")).json()["placements"] == []
        events = (await client.get("/admin/events")).json()["events"]
        assert [e["action"] for e in events] == ["unpin", "placement", "pin"]
        assert (await client.get("/docs")).status_code == 200
        assert "/admin/experiments" in (await client.get("/openapi.json")).json()["paths"]


async def test_admin_and_policy_pins_count_apart(fakes: dict[str, str], engine: Engine) -> None:
    """One pin per source: the admin API adds and removes only its own; the policy's (as the
    orchestrator writes them on each policy load) replace only the policy's."""
    queries.set_policy_pins(engine, ["both", "pol"])  # the orchestrator loaded a policy
    async with running(engine, cold_url=fakes["cold"]) as (client, _):
        r = await client.post("/admin/models/both/pin")
        assert r.json() == {"model": "both", "pinned": True, "pinned_by": ["policy", "admin"]}
        r = await client.post("/admin/models/adm/pin")
        assert r.json() == {"model": "adm", "pinned": True, "pinned_by": ["admin"]}
        assert (await client.post("/admin/models/adm/pin")).json()["pinned_by"] == ["admin"]
        view = (await client.get("/admin/routing")).json()
        assert {p["model"]: (p["pool"], p["pinned_by"]) for p in view["placements"]} == {
            "adm": ("cold", ["admin"]), "both": ("cold", ["policy", "admin"]),
            "pol": ("cold", ["policy"])}
        assert sorted((p["model"], p["source"]) for p in view["pins"]) == [
            ("adm", "admin"), ("both", "admin"), ("both", "policy"), ("pol", "policy")]

        # A policy reload without them keeps the admin pins.
        queries.set_policy_pins(engine, [])
        assert {p.model: p.pinned_by for p in queries.list_placements(engine)} == {
            "adm": ("admin",), "both": ("admin",)}
        queries.set_policy_pins(engine, ["both"])
        # Unpinning through the admin API leaves the policy's pin in force.
        r = await client.delete("/admin/models/both/pin")
        assert r.json() == {"model": "both", "pinned": True, "pinned_by": ["policy"]}
        r = await client.delete("/admin/models/pol/pin")  # never pinned here: nothing to do
        assert r.json() == {"model": "pol", "pinned": False, "pinned_by": []}
        r = await client.delete("/admin/models/adm/pin")
        assert r.json() == {"model": "adm", "pinned": False, "pinned_by": []}
    assert [(p.model, p.source) for p in queries.list_pins(engine)] == [("both", "policy")]
    events = [(e.model, e.action, e.outcome) for e in reversed(queries.list_events(engine))]
    assert events == [("both", "pin", "pinned"), ("adm", "pin", "pinned"),
                      ("both", "unpin", "unpinned; still pinned by the policy"),
                      ("adm", "unpin", "unpinned")]


async def _until(condition: Callable[[], bool]) -> None:
    """Wait for `condition`, giving up (a failure) after about 20 s."""
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition never held")


async def test_db_outage_keeps_the_last_table_and_the_counts(
        fakes: dict[str, str], postgres_db: str, caplog: pytest.LogCaptureFixture) -> None:
    engine = make_engine(postgres_db)
    queries.set_placement(engine, "h", "hot", fakes["hot"])
    queries.upsert_experiment(engine, {"name": "e", "variants": [{"model": "h", "weight": 100}]})
    async with running(engine, cold_url=fakes["cold"]) as (client, state):
        with outage(postgres_db):
            with pytest.raises(Unavailable, match="db unavailable"):
                await asyncio.to_thread(state.table.reload)
            await _until(lambda: "routing table reload failed" in caplog.text)
            for model in ("h", "e"):  # served from the table loaded before the outage
                r = await client.post(f"/v1/models/{model}:predict", json=predict([1.0]))
                assert (r.status_code, r.json()["backend"]) == (200, "hot")
            # The admin API answers in TF Serving's error shape, not with a bare 500.
            r = await client.get("/admin/routing")
            assert r.status_code == 503 and r.json()["error"].startswith("db unavailable")
            with pytest.raises(Unavailable):
                await state.counter.flush()
            assert state.counter.pending_requests() == 2  # kept for the next flush
        assert await state.counter.flush() == 2
        # The poller lived through it: it follows the next change.
        queries.set_placement(engine, "h", "cold", None)
        await _until(lambda: state.table.version == 3)
        r = await client.post("/v1/models/h:predict", json=predict([1.0]))
        assert r.json()["backend"] == "cold"
    assert {s.model: s.count for s in queries.model_stats(engine, 3600, time.time())} == {"h": 3}
    engine.dispose()
