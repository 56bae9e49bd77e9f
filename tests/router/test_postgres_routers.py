"""Several routers on one real PostgreSQL, with the orchestrator and a sharded cold tier on it.

All real processes: PostgreSQL (testkit.postgres), two `tierserve pool --shard-name` shards
(each with one model server), an orchestrator (hot models as local processes), routers A
and B. Scenarios, in order: an experiment created and changed through A is followed by B; a
pin made through A is promoted by the orchestrator and B routes the model hot; counts sent
to both routers add up exactly in the db; a router's SIGTERM flushes what it holds and a
SIGKILL loses at most the last flush interval; a model whose hot server cannot be reached
is answered by its own shard; each model is cached on its own shard, and a
killed shard's models go to the other.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from base.procs import ServerProcess, free_port, tierserve_command
from db import queries
from db.queries import Engine, make_engine
from router.sharding import owner
from tests.orchestrator.realworld import World, make_runtime, policy_dict, wait_for
from tierserve import toy_models

from .conftest import ADMIN_TOKEN, RouterProcess, start_router

pytestmark = pytest.mark.slow
XS = [1.0, 2.0]
# model -> {version: a}; y = a * x.
MODELS: dict[str, dict[int, float]] = {
    "hotm": {1: 2.0}, "coldm": {1: 3.0, 2: 5.0}, "arm-a": {1: 10.0}, "arm-b": {1: 20.0},
    "countm": {1: 7.0}, "termm": {1: 8.0}, "s0": {1: 1.5}, "s1": {1: 2.5}, "s2": {1: 3.5},
    "s3": {1: 4.5}, "s4": {1: 5.5}, "s5": {1: 6.5}, "fallm": {1: 9.0},
}
SHARDS = ["cold-0", "cold-1"]
FLUSH_S = 0.3
STALE_S = 2.0


def a_of(model: str) -> float:
    versions = MODELS[model]
    return versions[max(versions)]


def predict(client: httpx.Client, router: str, model: str) -> httpx.Response:
    return client.post(f"{router}/v1/models/{model}:predict", json={"instances": XS})


@dataclass
class Cluster:
    db_url: str
    engine: Engine
    pools: dict[str, ServerProcess]
    pool_urls: dict[str, str]
    world: World
    a: RouterProcess
    b: RouterProcess
    log_dir: Path


def _database(postgres_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


def start_shard(name: str, store: Path, cache: Path, db_url: str, log_dir: Path,
                port: int | None = None) -> tuple[ServerProcess, str]:
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    proc = ServerProcess(
        tierserve_command("pool", "--store", str(store), "--cache-dir", str(cache),
                          "--port", str(port), "--grpc-port", str(free_port()),
                          "--model-servers", "1", "--load-wait", "60",
                          "--shard-name", name, "--db-url", db_url,
                          "--heartbeat-interval", "0.5"),
        ready_url=f"{url}/healthz", log_path=log_dir / f"shard-{name}-{port}.log")
    return proc, url


@pytest.fixture(scope="module")
def cluster(postgres_url: str, tmp_path_factory: pytest.TempPathFactory, log_dir: Path,
            toy_template: Path) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("pg-cluster")
    store = root / "store"
    for name, versions in MODELS.items():
        toy_models.write_model(store, name, versions)
    db_url = _database(postgres_url, f"routers{os.getpid()}")
    engine = make_engine(db_url)
    pools: dict[str, ServerProcess] = {}
    urls: dict[str, str] = {}
    routers: list[RouterProcess] = []
    scope = f"pg{os.getpid()}"
    runtime, container = make_runtime("process", root, scope)
    world = World(root, runtime, "process", scope,
                  policy_dict(store, container, promote={"min_rate": 1000, "window": "10s"},
                              demote={"max_rate": 0.5, "window": "20s"}, cooldown="1h"),
                  log_dir, db_url=db_url)
    try:
        for name in SHARDS:
            pools[name], urls[name] = start_shard(name, store, root / f"cache-{name}", db_url,
                                                  log_dir)
        for proc in pools.values():
            proc.wait_ready(timeout=180)
        world.start_orchestrator()
        extra = ("--shard-stale-after", str(STALE_S))
        routers.append(start_router(log_dir, db_url, urls["cold-0"], *extra))
        routers.append(start_router(log_dir, db_url, urls["cold-0"], *extra))
        for router in routers:
            wait_for("the router to see both shards", lambda r=router: httpx.get(
                f"{r.url}/healthz").json()["cold_shards"] == SHARDS, timeout=30)
        yield Cluster(db_url, engine, pools, urls, world, routers[0], routers[1], log_dir)
    finally:
        for router in routers:
            router.proc.stop()
        world.close()
        for proc in pools.values():
            proc.stop()
        engine.dispose()


def test_postgres_experiment_made_through_router_a_is_followed_by_router_b(
        cluster: Cluster) -> None:
    spec = {"name": "pgexp", "variants": [{"model": "arm-a", "weight": 100}]}
    with cluster.a.admin() as admin, httpx.Client(timeout=60) as client:
        created = admin.post("/admin/experiments", json=spec)
        assert created.status_code == 201, created.text
        # B polls the routing version every 0.2 s: it routes the new name soon after.
        answer = wait_for("B to route the experiment", lambda: (
            r := predict(client, cluster.b.url, "pgexp")).status_code == 200 and r, timeout=10)
        assert answer.json() == {"predictions": toy_models.expected(a_of("arm-a"), 0.0, XS)}
        assert answer.headers["x-tierserve-model"] == "arm-a"
        changed = admin.put("/admin/experiments/pgexp",
                            json={"variants": [{"model": "arm-b", "weight": 100}]})
        assert changed.status_code == 200, changed.text
        answer = wait_for("B to follow the change", lambda: (
            r := predict(client, cluster.b.url, "pgexp")).headers.get(
                "x-tierserve-model") == "arm-b" and r, timeout=10)
        assert answer.json() == {"predictions": toy_models.expected(a_of("arm-b"), 0.0, XS)}


def test_postgres_pin_through_router_a_is_promoted_and_router_b_routes_it_hot(
        cluster: Cluster) -> None:
    with cluster.a.admin() as admin, httpx.Client(timeout=60) as client:
        assert admin.post("/admin/models/hotm/pin").status_code == 200
        endpoint = wait_for("the orchestrator to promote hotm",
                            lambda: cluster.world.hot_endpoint("hotm"), timeout=240)
        answer = wait_for("B to route hotm hot", lambda: (
            r := predict(client, cluster.b.url, "hotm")).headers.get(
                "x-tierserve-pool") == "hot" and r, timeout=30)
        assert answer.json() == {"predictions": toy_models.expected(a_of("hotm"), 0.0, XS)}
        # Each router polls the db on its own: A may see the new version one poll after B.
        answer = wait_for("A to route hotm hot", lambda: (
            r := predict(client, cluster.a.url, "hotm")).headers.get(
                "x-tierserve-pool") == "hot" and r, timeout=10)
        assert answer.json() == {"predictions": toy_models.expected(a_of("hotm"), 0.0, XS)}
        routing = client.get(f"{cluster.b.url}/admin/routing",
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        (hot,) = [p for p in routing["placements"] if p["model"] == "hotm"]
        assert (hot["pool"], hot["endpoint"], hot["pinned_by"]) == ("hot", endpoint, ["admin"])


def db_count(engine: Engine, model: str) -> int:
    stats = queries.model_stats(engine, 3600, time.time())
    return sum(s.count for s in stats if s.model == model)


def test_postgres_counts_from_two_routers_add_up_exactly(cluster: Cluster) -> None:
    sent = {cluster.a.url: 0, cluster.b.url: 0}
    with httpx.Client(timeout=60) as client:
        for i in range(90):
            router = cluster.a.url if i % 3 else cluster.b.url  # 60 to A, 30 to B
            answer = predict(client, router, "countm")
            assert answer.status_code == 200, answer.text
            sent[router] += 1
    total = sum(sent.values())
    wait_for("both routers' counts in the db", lambda: db_count(cluster.engine, "countm") == total,
             timeout=10)
    time.sleep(5 * FLUSH_S)  # more flushes: nothing counted twice
    assert db_count(cluster.engine, "countm") == total == 90
    assert sent == {cluster.a.url: 60, cluster.b.url: 30}


def test_postgres_router_sigterm_flushes_what_it_holds_and_sigkill_loses_one_interval_at_most(
        cluster: Cluster) -> None:
    # A router that would not flush for a minute: only its stop can write these counts.
    slow = start_router(cluster.log_dir, cluster.db_url, cluster.pool_urls["cold-0"],
                        "--flush-interval", "60")
    with httpx.Client(timeout=60) as client:
        for _ in range(25):
            assert predict(client, slow.url, "termm").status_code == 200
        pending = client.get(f"{slow.url}/metrics").text
    assert "tierserve_router_pending_counts 25.0" in pending, pending
    assert db_count(cluster.engine, "termm") == 0
    code = slow.proc.stop()  # SIGTERM
    assert code in (0, -signal.SIGTERM), code  # uvicorn re-raises the signal once stopped
    assert db_count(cluster.engine, "termm") == 25

    # Restarted (flushing every 0.3 s), then killed mid-traffic: what it answered more than
    # two flush intervals (a period, and the flush's own time) before the kill is in the db.
    again = start_router(cluster.log_dir, cluster.db_url, cluster.pool_urls["cold-0"])
    done: list[float] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=10) as client:
            for _ in range(2000):  # bounded
                if stop.is_set():
                    return
                try:
                    if predict(client, again.url, "termm").status_code == 200:
                        done.append(time.time())
                except httpx.HTTPError:
                    return  # the router is gone
    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    wait_for("traffic through the restarted router", lambda: len(done) >= 60, timeout=60)
    killed_at = time.time()
    os.kill(again.proc.proc.pid, signal.SIGKILL)
    again.proc.proc.wait(10)
    stop.set()
    thread.join(timeout=15)
    answered = sum(1 for t in done if t <= killed_at)
    in_db = db_count(cluster.engine, "termm") - 25
    settled = sum(1 for t in done if t <= killed_at - 2 * FLUSH_S)
    assert settled <= in_db <= answered, (settled, in_db, answered)
    print(f"SIGKILL: {answered} answered, {in_db} in the db, {answered - in_db} lost "
          f"(flush interval {FLUSH_S} s)")


def loaded(client: httpx.Client, url: str) -> set[str]:
    listing = client.get(f"{url}/admin/models").json()
    return {m["model"] for m in listing["models"] if m["loaded"]}


def fallbacks(client: httpx.Client, router: str) -> float:
    (line,) = [line for line in client.get(f"{router}/metrics").text.splitlines()
               if line.startswith("tierserve_router_hot_fallbacks_total ")]
    return float(line.split()[1])


def test_postgres_unreachable_hot_endpoint_falls_back_to_the_models_own_shard(
        cluster: Cluster) -> None:
    home = str(owner("fallm", SHARDS))
    assert home == "cold-1"  # not the routers' --cold-url: the fallback must pick the owner
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: a hot server gone away
    with cluster.b.admin() as admin, httpx.Client(timeout=60) as client:
        placed = admin.put("/admin/placements/fallm", json={"pool": "hot", "endpoint": dead})
        assert placed.status_code == 200, placed.text
        before = fallbacks(client, cluster.b.url)
        answer = predict(client, cluster.b.url, "fallm")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": toy_models.expected(a_of("fallm"), 0.0, XS)}
        assert answer.headers["x-tierserve-pool"] == "cold"
        assert fallbacks(client, cluster.b.url) == before + 1
        # Cached on its own shard only.
        for name, url in cluster.pool_urls.items():
            assert ("fallm" in loaded(client, url)) == (name == home), name
        # The router remembers at once: the next request goes cold without trying again.
        assert predict(client, cluster.b.url, "fallm").status_code == 200
        assert fallbacks(client, cluster.b.url) == before + 1
        # ...and tells the db, so other routers and the orchestrator see it.
        wait_for("the placement marked unhealthy", lambda: [
            p for p in queries.list_placements(cluster.engine)
            if p.model == "fallm" and p.endpoint == dead and not p.healthy], timeout=10)
        wait_for("the unhealthy event", lambda: ("unhealthy", "routed to the cold pool")
                 in cluster.world.events("fallm"), timeout=10)
        assert admin.delete("/admin/placements/fallm").status_code == 200


def test_postgres_shard_owner_caches_each_model_and_a_killed_shards_models_move(
        cluster: Cluster) -> None:
    models = [m for m in MODELS if m.startswith("s") or m == "coldm"]
    owners = {m: owner(m, SHARDS) for m in models}
    assert set(owners.values()) == set(SHARDS), owners  # both shards own some
    with httpx.Client(timeout=60) as client:
        for i, model in enumerate(models):
            router = cluster.a.url if i % 2 else cluster.b.url
            answer = predict(client, router, model)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"predictions": toy_models.expected(a_of(model), 0.0, XS)}
        for name, url in cluster.pool_urls.items():
            mine = {m for m, o in owners.items() if o == name}
            assert mine <= loaded(client, url)
            assert not (loaded(client, url) & (set(models) - mine))  # nobody else's
        # cold-1 dies without a word (SIGKILL, its model server too): its heartbeats stop.
        victim = cluster.pools["cold-1"]
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait(10)
        moved = [m for m, o in owners.items() if o == "cold-1"]
        for model in moved:  # before any router notices: A retries on the next shard at once
            answer = predict(client, cluster.a.url, model)
            assert answer.status_code == 200, answer.text
        for router in (cluster.a, cluster.b):
            wait_for("the routers to drop cold-1", lambda r=router: client.get(
                f"{r.url}/healthz").json()["cold_shards"] == ["cold-0"], timeout=15)
        for model in moved:
            answer = predict(client, cluster.b.url, model)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"predictions": toy_models.expected(a_of(model), 0.0, XS)}
        assert set(models) <= loaded(client, cluster.pool_urls["cold-0"])
    (row,) = [s for s in queries.list_shards(cluster.engine) if s.name == "cold-1"]
    assert row.healthy and not row.live(time.time(), STALE_S)  # stale, never said goodbye
