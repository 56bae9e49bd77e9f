"""Dbs written by older schemas open migrated in place: schema 1 (per-minute counts,
`placements.pinned`) and schema 2 (errors not split into 4xx and 5xx)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect, text

from base.errors import FailedPrecondition
from db import queries
from db.queries import Engine, make_engine
from db.schema import SCHEMA_VERSION

SPLIT = ("errors_4xx", "errors_5xx")
COUNT_TABLES = ("request_counts", "request_counts_recent")


def _as_schema_2(engine: Engine) -> None:
    """Turn a fresh db back into schema 2's layout: errors not split into 4xx and 5xx."""
    with engine.begin() as conn:
        for table in COUNT_TABLES:
            for column in SPLIT:
                conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(text("UPDATE schema_version SET version = 2"))


def _as_schema_1(engine: Engine) -> None:
    """Turn a fresh db back into schema 1's layout: what an older tierserve left behind."""
    _as_schema_2(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE pins"))
        conn.execute(text("DROP TABLE request_counts_recent"))
        conn.execute(text("ALTER TABLE placements ADD COLUMN pinned BOOLEAN NOT NULL "
                          "DEFAULT false"))
        conn.execute(text("UPDATE schema_version SET version = 1"))
        for model, pool, endpoint, pinned in (("hp", "hot", "http://127.0.0.1:1", True),
                                              ("cp", "cold", None, True),
                                              ("h", "hot", "http://127.0.0.1:2", False)):
            conn.execute(text("INSERT INTO placements (model, pool, endpoint, healthy, pinned, "
                              "updated_at) VALUES (:m, :p, :e, true, :pin, 1.0)"),
                         {"m": model, "p": pool, "e": endpoint, "pin": pinned})


def test_schema_1_db_is_migrated_in_place(engine: Engine) -> None:
    queries.add_counts(engine, [queries.CountDelta(model="a", minute=100, count=60),
                                queries.CountDelta(model="a", minute=101, count=30)])
    _as_schema_1(engine)
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()

    migrated = make_engine(url)
    with migrated.connect() as conn:
        assert conn.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
    columns = {c["name"] for c in inspect(migrated).get_columns("placements")}
    assert "pinned" not in columns
    # Schema 1's pins become policy pins: the next policy load keeps or clears them, as
    # schema 1's orchestrator did.
    assert [(p.model, p.source) for p in queries.list_pins(migrated)] == [
        ("cp", "policy"), ("hp", "policy")]
    assert {p.model: (p.pool, p.pinned_by) for p in queries.list_placements(migrated)} == {
        "cp": ("cold", ("policy",)), "h": ("hot", ()), "hp": ("hot", ("policy",))}
    # The per-minute counts stay readable, and new 5 s buckets add to them.
    queries.add_counts(migrated, [queries.CountDelta.at("a", 101 * 60 + 50, count=6)])
    [stats] = queries.model_stats(migrated, 600, 101 * 60 + 59)
    assert stats.count == 96
    assert queries.minute_series(migrated, 2, 101 * 60 + 59) == {"a": [60, 36]}
    queries.set_placement(migrated, "new", "hot", "http://127.0.0.1:3")
    queries.set_pinned(migrated, "new", True)
    assert queries.list_placements(migrated)[-1].pinned_by == ("admin",)

    again = make_engine(url)  # opening a migrated db again changes nothing
    assert len(queries.list_pins(again)) == 3
    again.dispose()
    migrated.dispose()


def _count_rows(engine: Engine, table: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            f"SELECT model, count, errors, errors_4xx, errors_5xx FROM {table} ORDER BY model"))]


def test_schema_2_db_gets_the_error_split(engine: Engine) -> None:
    minute = 200
    queries.add_counts(engine, [queries.CountDelta(model="old", minute=minute, count=10)])
    queries.add_counts(engine, [queries.CountDelta.at("old", minute * 60 + 1, count=5)])
    _as_schema_2(engine)
    with engine.begin() as conn:  # errors counted by schema 2: a total only
        for table in COUNT_TABLES:
            conn.execute(text(f"UPDATE {table} SET errors = 2"))
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()

    migrated = make_engine(url)
    with migrated.connect() as conn:
        assert conn.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
    for table in COUNT_TABLES:
        assert set(SPLIT) <= {c["name"] for c in inspect(migrated).get_columns(table)}
        # The old errors stay in the total, put in neither class.
        assert _count_rows(migrated, table) == [("old", 10 if table == "request_counts" else 5,
                                                  2, 0, 0)]
    # New requests are split, into the same row as the old ones.
    delta = queries.CountDelta.at("old", minute * 60 + 2)
    for status in (200, 404, 404, 503):
        delta.record(0.001, status)
    queries.add_counts(migrated, [delta])
    assert _count_rows(migrated, "request_counts_recent") == [("old", 9, 5, 2, 1)]
    [stats] = queries.model_stats(migrated, 600, minute * 60 + 30)
    assert (stats.count, stats.errors, stats.errors_4xx, stats.errors_5xx) == (19, 7, 2, 1)
    # A roll-up carries the split into the minute rows.
    queries.roll_up(migrated, (minute + 10) * 60)
    assert _count_rows(migrated, "request_counts") == [("old", 19, 7, 2, 1)]
    migrated.dispose()
    make_engine(url).dispose()  # opening a migrated db again changes nothing


def test_unknown_old_version_is_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = 0"))
    url = engine.url.render_as_string(hide_password=False)
    with pytest.raises(FailedPrecondition, match="no migration from db schema version 0"):
        make_engine(url)


def test_processes_starting_at_once_migrate_once(engine: Engine) -> None:
    _as_schema_1(engine)
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_db() -> None:
        try:
            barrier.wait()
            make_engine(url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_db) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    migrated = make_engine(url)
    assert [(p.model, p.source) for p in queries.list_pins(migrated)] == [
        ("cp", "policy"), ("hp", "policy")]
    migrated.dispose()
