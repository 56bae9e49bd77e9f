"""Cold shard membership in the db (`cold_shards`), on SQLite and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from base.errors import InvalidArgument
from db import queries
from db.queries import Engine


def test_shard_heartbeat_registers_then_renews(engine: Engine) -> None:
    version = queries.routing_version(engine)
    queries.heartbeat_shard(engine, "cold-1", "http://127.0.0.1:9001/", now=100.0)
    queries.heartbeat_shard(engine, "cold-0", "http://127.0.0.1:9000", now=100.0)
    queries.heartbeat_shard(engine, "cold-1", "http://127.0.0.1:9011", now=107.0)
    shards = queries.list_shards(engine)
    assert [(s.name, s.url, s.healthy, s.heartbeat_at, s.registered_at) for s in shards] == [
        ("cold-0", "http://127.0.0.1:9000", True, 100.0, 100.0),
        ("cold-1", "http://127.0.0.1:9011", True, 107.0, 100.0)]
    # Heartbeats are read on every poll: they never make routers reload the whole table.
    assert queries.routing_version(engine) == version


def test_shard_leaving_is_unhealthy_until_it_beats_again(engine: Engine) -> None:
    queries.heartbeat_shard(engine, "cold-0", "http://127.0.0.1:9000", now=100.0)
    assert queries.leave_shard(engine, "cold-0") is True
    assert queries.leave_shard(engine, "nope") is False
    (shard,) = queries.list_shards(engine)
    assert not shard.healthy and not shard.live(100.0, 10.0)
    queries.heartbeat_shard(engine, "cold-0", "http://127.0.0.1:9000", now=120.0)
    assert queries.list_shards(engine)[0].live(125.0, 10.0)
    assert queries.remove_shard(engine, "cold-0") is True
    assert queries.list_shards(engine) == []


def test_shard_liveness_is_health_and_a_recent_heartbeat(engine: Engine) -> None:
    queries.heartbeat_shard(engine, "cold-0", "http://127.0.0.1:9000", now=100.0)
    queries.heartbeat_shard(engine, "cold-1", "http://127.0.0.1:9001", healthy=False, now=100.0)
    by_name = {s.name: s for s in queries.list_shards(engine)}
    assert by_name["cold-0"].live(110.0, 10.0) and not by_name["cold-0"].live(110.5, 10.0)
    assert not by_name["cold-1"].live(100.0, 10.0)


def test_shard_bad_names_and_urls_are_refused(engine: Engine) -> None:
    with pytest.raises(InvalidArgument):
        queries.heartbeat_shard(engine, "../x", "http://127.0.0.1:1")
    with pytest.raises(InvalidArgument):
        queries.heartbeat_shard(engine, "cold-0", "127.0.0.1:1")
    assert queries.list_shards(engine) == []


def test_shard_table_is_added_to_an_existing_db_without_a_version_bump(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, inspect, text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    queries.make_engine(url).dispose()
    raw = create_engine(url)
    with raw.begin() as conn:
        conn.execute(text("DROP TABLE cold_shards"))
        version = conn.execute(text("SELECT version FROM schema_version")).scalar()
    engine = queries.make_engine(url)  # a db from before the table: created on open
    assert "cold_shards" in inspect(raw).get_table_names()
    with raw.connect() as conn:
        assert conn.execute(text("SELECT version FROM schema_version")).scalar() == version
    queries.heartbeat_shard(engine, "cold-0", "http://127.0.0.1:9000")
    assert [s.name for s in queries.list_shards(engine)] == ["cold-0"]
    engine.dispose()
    raw.dispose()
