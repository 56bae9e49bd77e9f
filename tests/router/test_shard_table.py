"""The routing table's one lookup sends each model to its cold shard (router.table with
shards registered in a real db): the owner by rendezvous hashing, the next in its ranking
once the owner is stale or unhealthy, the hot server first when one is healthy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from db import queries
from db.queries import Engine, make_engine
from router.sharding import owner, ranking
from router.table import RoutingTable

COLD = "http://127.0.0.1:8600"
URLS = {f"cold-{i}": f"http://127.0.0.1:{9000 + i}" for i in range(3)}
MODELS = [f"m{i}" for i in range(60)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    yield engine
    engine.dispose()


def beat(engine: Engine, at: float, names: list[str], healthy: bool = True) -> None:
    for name in names:
        queries.heartbeat_shard(engine, name, URLS[name], healthy=healthy, now=at)


def test_shard_of_each_model_is_its_rendezvous_owner(engine: Engine) -> None:
    clock = Clock()
    table = RoutingTable(engine, COLD, shard_stale_after=6.0, clock=clock)
    table.refresh()
    assert table.route("m1").base_url == COLD and table.route_cold("m1").shard == ""
    beat(engine, clock.now, list(URLS))
    assert table.refresh() is True and table.refresh() is False
    used = set()
    for model in MODELS:
        want = owner(model, URLS)
        assert want is not None
        route = table.route(model)
        assert (route.base_url, route.pool, route.shard) == (URLS[want], "cold", want)
        assert table.route_cold(model) == route
        used.add(want)
    assert used == set(URLS)  # 60 models spread over all three
    assert table.route_cold().base_url == COLD  # no model named: the configured pool


def test_shard_stale_or_unhealthy_sends_its_models_to_their_next_shard(engine: Engine) -> None:
    clock = Clock()
    table = RoutingTable(engine, COLD, shard_stale_after=6.0, clock=clock)
    beat(engine, clock.now, list(URLS))
    table.refresh()
    before = {m: table.route(m).shard for m in MODELS}
    clock.now += 5.0
    beat(engine, clock.now, ["cold-0", "cold-2"])  # cold-1 falls silent
    clock.now += 2.0  # 7 s since cold-1's last beat
    assert table.refresh() is True and set(table.shards) == {"cold-0", "cold-2"}
    for model in MODELS:
        order = ranking(model, URLS)
        if before[model] == "cold-1":
            assert table.route(model).shard == order[1]
        else:
            assert table.route(model).shard == before[model]  # nobody else moves
    beat(engine, clock.now, ["cold-2"], healthy=False)  # its pool said it cannot serve
    table.refresh()
    assert set(table.shards) == {"cold-0"}
    assert {table.route(m).base_url for m in MODELS} == {URLS["cold-0"]}
    queries.leave_shard(engine, "cold-0")
    table.refresh()
    assert table.shards == {} and table.route("m1").base_url == COLD
    beat(engine, clock.now, list(URLS))  # everyone back: every model back home
    table.refresh()
    assert {m: table.route(m).shard for m in MODELS} == before


def test_shard_hot_placement_wins_and_its_fallback_is_the_models_shard(engine: Engine) -> None:
    clock = Clock()
    table = RoutingTable(engine, COLD, clock=clock)
    beat(engine, clock.now, list(URLS))
    queries.set_placement(engine, "m7", "hot", "http://127.0.0.1:7777/")
    table.refresh()
    assert table.route("m7").base_url == "http://127.0.0.1:7777"
    home = URLS[str(owner("m7", URLS))]
    assert table.route_cold("m7").base_url == home
    table.forget_hot("m7", "http://127.0.0.1:7777")
    assert table.route("m7").base_url == home and table.route("m7").pool == "cold"


def test_shard_unreachable_is_skipped_until_stale_and_the_next_shard_is_given(
        engine: Engine) -> None:
    clock = Clock()
    table = RoutingTable(engine, COLD, shard_stale_after=6.0, clock=clock)
    beat(engine, clock.now, list(URLS))
    table.refresh()
    model = next(m for m in MODELS if owner(m, URLS) == "cold-1")
    first = table.route(model)
    nxt = table.shard_failed(model, first)
    assert nxt is not None and nxt.shard == ranking(model, URLS)[1]
    assert table.route(model) == nxt and "cold-1" not in table.shards
    assert table.shard_failed(model, first) is None  # already skipped: no second retry
    clock.now += 3.0
    beat(engine, clock.now, list(URLS))  # its row still says live: this router waits it out
    table.refresh()
    assert "cold-1" not in table.shards
    clock.now += 3.5
    beat(engine, clock.now, list(URLS))
    table.refresh()
    assert table.route(model) == first  # back once the skip ran out and it still beats
    for name in ("cold-0", "cold-2"):
        queries.leave_shard(engine, name)
    table.refresh()
    assert table.shard_failed(model, table.route(model)) is None  # no other shard
