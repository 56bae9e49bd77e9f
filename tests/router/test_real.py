"""The router as a real process in front of real model servers (toy SavedModels).

Cold address: one model server holding every model; hot address: a dedicated model
server for `hotm`. The last test kills that hot server.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from db import queries
from db.queries import make_engine
from router import split
from tests.router.conftest import (
    ADMIN_TOKEN,
    RouterProcess,
    error_rows,
    send_mixed_statuses,
    start_router,
)
from tierserve.cli import main as tierserve_main

pytestmark = pytest.mark.slow


def predict(client: httpx.Client, model: str, xs: list[float],
            headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post(f"/v1/models/{model}:predict", json={"instances": xs},
                       headers=headers or {})


def wait_for(check: object, timeout: float = 20.0) -> None:
    """Poll `check()` until true (flushes run every 0.2 s here); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def test_predictions_hot_and_cold(router_proc: RouterProcess, hot_server: str) -> None:
    with router_proc.admin() as admin:
        r = admin.put("/admin/placements/hotm", json={"pool": "hot", "endpoint": hot_server})
        assert r.status_code == 200
    with httpx.Client(base_url=router_proc.url, timeout=30) as client:
        r = predict(client, "hotm", [1.0, 2.5])
        assert (r.status_code, r.json()) == (200, {"predictions": [2.0, 5.0]})
        assert r.headers["x-tierserve-pool"] == "hot"
        r = predict(client, "coldm", [1.0, 2.0])
        assert r.json() == {"predictions": [5.0, 10.0]}  # latest version: a = 5
        assert (r.headers["x-tierserve-pool"], r.headers["x-tierserve-model"]) == (
            "cold", "coldm")
        r = client.post("/v1/models/coldm/versions/2:predict", json={"inputs": [2.0]})
        assert r.json() == {"outputs": [10.0]}
        r = client.get("/v1/models/coldm/versions/2")
        assert r.json()["model_version_status"][0]["state"] == "AVAILABLE"
        r = client.get("/v1/models/hotm/metadata")
        assert r.status_code == 200 and r.headers["x-tierserve-pool"] == "hot"
        # The model server's own error comes back unchanged (TF Serving's shape).
        r = predict(client, "nosuchmodel", [1.0])
        assert r.status_code == 404 and "error" in r.json()


def test_counts_equal_requests_under_50_concurrent_clients(
        tmp_path: Path, log_dir: Path, cold_server: str) -> None:
    db_path = tmp_path / "counts.db"
    router = start_router(log_dir, db_path, cold_server)
    per_client, clients = 8, 50

    async def one_client(i: int, client: httpx.AsyncClient) -> int:
        ok = 0
        for j in range(per_client):
            model = "coldm" if (i + j) % 2 else "arm-a"
            r = await client.post(f"/v1/models/{model}:predict", json={"instances": [1.0]})
            ok += r.status_code == 200
        return ok

    async def drive() -> int:
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(base_url=router.url, timeout=60, limits=limits) as client:
            return sum(await asyncio.gather(*(one_client(i, client) for i in range(clients))))

    try:
        assert asyncio.run(drive()) == per_client * clients
    finally:
        router.proc.stop()  # SIGTERM: the router flushes what is left before exiting
    engine = make_engine(f"sqlite:///{db_path}")
    stats = sorted(queries.model_stats(engine, 3600, time.time()), key=lambda s: s.model)
    assert {s.model: s.count for s in stats} == {"coldm": per_client * clients // 2,
                                                 "arm-a": per_client * clients // 2}
    assert sum(s.errors for s in stats) == 0
    [stats_a, _] = stats
    assert stats_a.p50_s is not None and stats_a.p99_s is not None
    assert stats_a.p50_s <= stats_a.p99_s


def test_sticky_split_through_the_router(router_proc: RouterProcess) -> None:
    spec = {"name": "rec", "variants": [{"model": "arm-a", "weight": 90},
                                        {"model": "arm-b", "weight": 10}]}
    with router_proc.admin() as admin:
        assert admin.post("/admin/experiments", json=spec).status_code == 201
    keys = [f"user-{i}" for i in range(400)]

    async def drive() -> dict[str, tuple[str, list[float]]]:
        async with httpx.AsyncClient(base_url=router_proc.url, timeout=60) as client:
            sem = asyncio.Semaphore(16)

            async def one(key: str) -> tuple[str, tuple[str, list[float]]]:
                async with sem:
                    r = await client.post("/v1/models/rec:predict", json={"instances": [1.0]},
                                          headers={"X-User-Id": key})
                return key, (r.headers["x-tierserve-variant"], r.json()["predictions"])

            return dict(await asyncio.gather(*(one(k) for k in keys)))

    first = asyncio.run(drive())
    expected = {k: ("arm-a", [10.0]) if split.pick([90, 10], split.sticky_bucket("rec", k)) == 0
                else ("arm-b", [20.0]) for k in keys}
    assert first == expected  # the arm AND the answer of that arm's real model
    assert 320 <= sum(arm == "arm-a" for arm, _ in first.values()) <= 400
    assert asyncio.run(drive()) == first  # each key keeps its arm


def test_shadow_keeps_answer_and_counts_apart(router_proc: RouterProcess) -> None:
    spec = {"name": "shadowed", "variants": [{"model": "arm-a", "weight": 100}],
            "shadow": {"model": "shadowm", "percent": 100}}
    with router_proc.admin() as admin:
        assert admin.post("/admin/experiments", json=spec).status_code == 201
    with httpx.Client(base_url=router_proc.url, timeout=30) as client:
        for _ in range(30):
            r = predict(client, "shadowed", [1.0])
            assert r.json() == {"predictions": [10.0]}  # never the shadow's 30.0
            assert r.headers["x-tierserve-variant"] == "arm-a"
    with router_proc.admin() as admin:
        def arms() -> dict[tuple[str, bool], int]:
            body = admin.get("/admin/experiments/shadowed/stats").json()
            return {(v["variant"], v["shadow"]): v["count"] for v in body["variants"]}

        wait_for(lambda: arms() == {("arm-a", False): 30, ("shadowm", True): 30})


def test_admin_needs_the_token_and_rejects_bad_experiments(router_proc: RouterProcess) -> None:
    with httpx.Client(base_url=router_proc.url, timeout=30) as client:
        assert client.get("/admin/routing").status_code == 401
        assert client.get("/admin/experiments",
                          headers={"Authorization": "Bearer wrong"}).status_code == 401
    with router_proc.admin() as admin:
        r = admin.post("/admin/experiments", json={
            "name": "bad", "variants": [{"model": "arm-a", "weight": 90}]})
        assert r.status_code == 422 and "variants" in r.json()["error"]
        r = admin.post("/admin/experiments", json={
            "name": "bad", "variants": [{"model": "arm-a", "weight": 100}],
            "shadow": {"model": "shadowm", "percent": 150}})
        assert r.status_code == 422 and "percent" in r.json()["error"]


def test_experiments_cli(router_proc: RouterProcess, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["experiments", "--url", router_proc.url, "--token", ADMIN_TOKEN]
    assert tierserve_main([*base, "create", "cli-exp", "--variant", "arm-a=50",
                           "--variant", "coldm:2=50"]) == 0
    with httpx.Client(base_url=router_proc.url, timeout=30) as client:
        answers = {predict(client, "cli-exp", [1.0], {"X-User-Id": f"k{i}"}).json()[
            "predictions"][0] for i in range(40)}
    assert answers == {10.0, 5.0}
    assert tierserve_main([*base, "update", "cli-exp", "--variant", "coldm:2=100"]) == 0
    with httpx.Client(base_url=router_proc.url, timeout=30) as client:
        assert {predict(client, "cli-exp", [1.0], {"X-User-Id": f"k{i}"}).json()[
            "predictions"][0] for i in range(20)} == {5.0}
    assert tierserve_main([*base, "update", "cli-exp", "--variant", "coldm=90"]) == 1
    assert "sum to 100" in capsys.readouterr().err
    assert tierserve_main([*base, "list"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if "cli-exp" in line]
    assert len(table) == 1 and "coldm:2=100" in table[0]
    assert tierserve_main([*base, "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["experiments"]
    assert [e["variants"] for e in listed if e["name"] == "cli-exp"] == [
        [{"model": "coldm", "version": 2, "weight": 100}]]
    assert tierserve_main([*base, "stats", "cli-exp", "--window", "1h"]) == 0
    assert "cli-exp: last 3600 s" in capsys.readouterr().out
    assert tierserve_main([*base, "stats", "cli-exp", "--json", "--window", "90s"]) == 0
    assert json.loads(capsys.readouterr().out)["window_s"] == 90
    assert tierserve_main([*base, "delete", "cli-exp"]) == 0
    assert tierserve_main(["experiments", "--url", router_proc.url, "list"]) == 1


def test_a_second_router_follows_db_changes(router_proc: RouterProcess, log_dir: Path,
                                            cold_server: str, hot_server: str) -> None:
    """Changes written by one router (or the orchestrator, straight into the db) reach
    another router through the routing version poll, without a restart."""
    other = start_router(log_dir, Path(router_proc.db_url.removeprefix("sqlite:///")),
                         cold_server)
    try:
        with router_proc.admin() as admin:
            admin.post("/admin/experiments", json={
                "name": "follow", "variants": [{"model": "arm-a", "weight": 100},
                                               {"model": "arm-b", "weight": 0}]})
        with httpx.Client(base_url=other.url, timeout=30) as client:
            def answer(model: str) -> float:
                r = predict(client, model, [1.0])
                return float(r.json()["predictions"][0]) if r.status_code == 200 else -1.0

            wait_for(lambda: answer("follow") == 10.0)
            with router_proc.admin() as admin:
                admin.put("/admin/experiments/follow", json={"variants": [
                    {"model": "arm-a", "weight": 0}, {"model": "arm-b", "weight": 100}]})
            wait_for(lambda: answer("follow") == 20.0)
            # As the orchestrator does it: straight into the db.
            engine = make_engine(router_proc.db_url)
            queries.set_placement(engine, "arm-a", "hot", hot_server)  # serves hotm only
            wait_for(lambda: predict(client, "arm-a", [1.0]).headers.get(
                "x-tierserve-pool") == "hot")
            queries.remove_placement(engine, "arm-a")
            wait_for(lambda: answer("arm-a") == 10.0)
    finally:
        other.proc.stop()


def test_errors_are_counted_as_4xx_and_5xx(router_without_cold: RouterProcess,
                                            hot_server: str) -> None:
    """200, 404 (the hot model server has no such model) and 503 (no cold pool): the db rows
    and the dashboard's data split the errors by class, per model, per pool and overall."""
    router = router_without_cold
    expected = send_mixed_statuses(router, hot_server)
    engine = make_engine(router.db_url)
    wait_for(lambda: error_rows(engine) == expected)
    [ghost] = [s for s in queries.model_stats(engine, 300, time.time()) if s.model == "ghost"]
    assert (ghost.errors, ghost.errors_4xx, ghost.errors_5xx) == (2, 2, 0)
    engine.dispose()
    with router.admin() as admin:
        overview = admin.get("/ui/api/overview").json()
        stats = admin.get("/admin/stats").json()
    by_model = {m["model"]: m for m in overview["models"]}
    assert {m: (by_model[m]["stats"]["errors_4xx"], by_model[m]["stats"]["errors_5xx"])
            for m in expected} == {"hotm": (0, 0), "ghost": (2, 0), "coldm": (0, 1)}
    totals = overview["totals"]
    assert (totals["all"]["errors_4xx"], totals["all"]["errors_5xx"]) == (2, 1)
    assert (totals["hot"]["errors_4xx"], totals["cold"]["errors_5xx"]) == (2, 1)
    assert {m: by_model[m]["pinned_by"] for m in expected} == {
        "hotm": ["policy", "admin"], "ghost": [], "coldm": ["policy"]}
    split = {s["model"]: (s["errors"], s["errors_4xx"], s["errors_5xx"]) for s in stats["models"]}
    assert split["coldm"] == (1, 0, 1) and split["ghost"] == (2, 2, 0)


def test_hot_endpoint_killed_requests_go_cold(router_proc: RouterProcess, hot_server: str,
                                              request: pytest.FixtureRequest) -> None:
    """Runs last in this module: it kills the hot model server."""
    with router_proc.admin() as admin:
        admin.put("/admin/placements/hotm", json={"pool": "hot", "endpoint": hot_server})
    with httpx.Client(base_url=router_proc.url, timeout=30) as client:
        assert predict(client, "hotm", [1.0]).headers["x-tierserve-pool"] == "hot"
        request.getfixturevalue("hot_server_proc")[0].kill()
        for i in range(10):
            r = predict(client, "hotm", [float(i)])
            assert (r.status_code, r.json()) == (200, {"predictions": [2.0 * i]})
            assert r.headers["x-tierserve-pool"] == "cold"
    engine = make_engine(router_proc.db_url)
    [placement] = [p for p in queries.list_placements(engine) if p.model == "hotm"]
    assert placement.healthy is False
    assert queries.list_events(engine, model="hotm")[0].action == "unhealthy"
