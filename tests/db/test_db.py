"""db against real SQLite files: schema, placements, experiments, events, counts."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from base.errors import FailedPrecondition, InvalidArgument, NotFound
from db import histogram, queries
from db.engine import make_engine
from db.schema import SCHEMA_VERSION


def test_sqlite_pragmas_and_schema_version(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'sub' / 't.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10000
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("SELECT version FROM schema_version")).scalar() == SCHEMA_VERSION
    assert queries.routing_version(engine) == 0


def test_reopen_keeps_data_and_refuses_newer_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    queries.set_placement(make_engine(url), "m", "hot", "http://127.0.0.1:1")
    again = make_engine(url)
    assert [p.model for p in queries.list_placements(again)] == ["m"]
    with again.begin() as conn:
        conn.execute(text("UPDATE schema_version SET version = 99"))
    with pytest.raises(FailedPrecondition):
        make_engine(url)


def test_placements_and_version_bumps(engine: Engine) -> None:
    queries.set_placement(engine, "a", "hot", "http://127.0.0.1:9001")
    assert queries.routing_version(engine) == 1
    [p] = queries.list_placements(engine)
    assert (p.model, p.pool, p.endpoint, p.healthy, p.pinned) == (
        "a", "hot", "http://127.0.0.1:9001", True, False)
    # Only the placement still pointing at that endpoint is marked.
    assert not queries.mark_unhealthy(engine, "a", "http://127.0.0.1:1")
    assert queries.mark_unhealthy(engine, "a", "http://127.0.0.1:9001")
    assert not queries.mark_unhealthy(engine, "a", "http://127.0.0.1:9001")
    assert queries.list_placements(engine)[0].healthy is False
    assert queries.routing_version(engine) == 2
    queries.remove_placement(engine, "a")
    assert queries.list_placements(engine) == []
    assert queries.routing_version(engine) == 3
    with pytest.raises(InvalidArgument):
        queries.set_placement(engine, "b", "hot", None)


def test_pin_survives_demotion(engine: Engine) -> None:
    queries.set_pinned(engine, "p", True)
    [p] = queries.list_placements(engine)
    assert (p.pool, p.pinned) == ("cold", True)
    queries.set_placement(engine, "p", "hot", "http://127.0.0.1:2")
    queries.remove_placement(engine, "p")
    [p] = queries.list_placements(engine)
    assert (p.pool, p.endpoint, p.pinned) == ("cold", None, True)
    queries.set_pinned(engine, "p", False)
    assert queries.list_placements(engine) == []


def test_experiments_crud(engine: Engine) -> None:
    spec = {"name": "e", "variants": [{"model": "a", "weight": 100}]}
    assert queries.upsert_experiment(engine, spec) is True
    assert queries.upsert_experiment(engine, {**spec, "sticky": True}) is False
    assert queries.list_experiments(engine) == [{**spec, "sticky": True}]
    snap = queries.load_routing(engine)
    assert snap.version == 2 and snap.experiments["e"]["sticky"] is True
    queries.delete_experiment(engine, "e")
    assert queries.list_experiments(engine) == []
    with pytest.raises(NotFound):
        queries.delete_experiment(engine, "e")
    with pytest.raises(NotFound):
        queries.get_experiment(engine, "e")


def test_events_newest_first(engine: Engine) -> None:
    queries.record_event(engine, "a", "promote", "rate 5/s", "ok", ts=10.0)
    queries.record_event(engine, "b", "demote", "idle", "ok", ts=20.0)
    assert [e.model for e in queries.list_events(engine)] == ["b", "a"]
    assert [e.action for e in queries.list_events(engine, model="a")] == ["promote"]
    assert len(queries.list_events(engine, limit=1)) == 1


def _delta(model: str, minute: int, count: int, latency: float, **kw: object) -> queries.CountDelta:
    hist = histogram.empty()
    hist[histogram.bucket_of(latency)] = count
    return queries.CountDelta(model=model, minute=minute, count=count,
                              latency_sum=latency * count, hist=hist, **kw)  # type: ignore[arg-type]


def test_counts_merge_rates_and_stats(engine: Engine) -> None:
    minute = 1000
    now = minute * 60 + 30.0  # half-way through minute 1000
    queries.add_counts(engine, [_delta("a", minute - 1, 60, 0.01),
                                _delta("a", minute, 30, 0.01),
                                _delta("b", minute, 3, 0.2, errors=1)])
    # A second flush (or a second router) merges into the same rows.
    queries.add_counts(engine, [_delta("a", minute, 30, 0.01)])
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM request_counts")).scalar() == 3
    rates = queries.request_rates(engine, 60.0, now)
    # Window [minute*60-30, now]: half of the previous minute (30) + all 60 of this one.
    assert rates["a"] == pytest.approx(90 / 60)
    assert rates["b"] == pytest.approx(3 / 60)
    stats = queries.model_stats(engine, 120.0, now)
    assert [s.model for s in stats] == ["a", "b"]
    a, b = stats
    assert a.count == 120 and a.errors == 0
    assert a.p50_s == pytest.approx(0.01, rel=0.2) and a.p99_s == pytest.approx(0.01, rel=0.2)
    assert b.error_rate == pytest.approx(1 / 3)


def test_experiment_stats_per_variant_and_shadow(engine: Engine) -> None:
    m = 500
    queries.add_counts(engine, [
        _delta("m1", m, 90, 0.005, experiment="e", variant="control"),
        _delta("m2", m, 10, 0.050, experiment="e", variant="treat", errors=2),
        _delta("m3", m, 20, 0.100, experiment="e", variant="shadow", shadow=True),
        _delta("m1", m, 7, 0.005),
    ])
    stats = queries.experiment_stats(engine, "e", 60.0, m * 60 + 59)
    assert [(s.variant, s.model, s.count, s.shadow) for s in stats] == [
        ("control", "m1", 90, False), ("treat", "m2", 10, False), ("shadow", "m3", 20, True)]
    assert stats[1].error_rate == pytest.approx(0.2)
    # Shadow traffic counts toward load but not toward model stats.
    assert {s.model: s.count for s in queries.model_stats(engine, 60, m * 60 + 59)} == {
        "m1": 97, "m2": 10}


def _writer(url: str, n: int, who: int) -> None:
    engine = make_engine(url)
    for i in range(n):
        queries.add_counts(engine, [_delta("shared", 7, 1, 0.001)])
        # Read-then-write transactions from several processes must wait, not fail.
        queries.set_placement(engine, f"m{i % 3}", "hot", f"http://127.0.0.1:{i + 1}")
        queries.set_pinned(engine, f"p{who}-{i % 3}", bool(i % 2))


def _pin_changes(n: int) -> int:
    """How many of `_writer`'s set_pinned calls change something (and bump the version)."""
    pinned: set[str] = set()
    changes = 0
    for i in range(n):
        model, want = f"m{i % 3}", bool(i % 2)
        changes += want != (model in pinned)
        (pinned.add if want else pinned.discard)(model)
    return changes


def test_several_processes_merge_into_one_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'multi.db'}"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, 30, who)) for who in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count, h00 + h01 + h02 + h03 + h04 + h05 + h06 + h07"
                                 " FROM request_counts")).all()
    assert len(rows) == 1 and rows[0][0] == 120
    assert sum(rows[0][1:]) == 120
    assert queries.routing_version(engine) == 4 * (30 + _pin_changes(30))


def test_concurrent_flushes_into_one_new_row(engine: Engine) -> None:
    """Routers racing to insert the same minute row: one inserts, the others merge."""
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def flush() -> None:
        try:
            barrier.wait()
            for _ in range(5):
                queries.add_counts(engine, [_delta("race", 9, 2, 0.003)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=flush) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    [stats] = queries.model_stats(engine, 60, 9 * 60 + 30)
    assert stats.count == 6 * 5 * 2


def test_histogram_percentiles() -> None:
    counts = histogram.empty()
    for ms in range(1, 101):
        counts[histogram.bucket_of(ms / 1000)] += 1
    assert histogram.percentile(counts, 50) == pytest.approx(0.050, rel=0.25)
    assert histogram.percentile(counts, 99) == pytest.approx(0.099, rel=0.25)
    assert histogram.percentile(histogram.empty(), 50) is None
    assert histogram.bucket_of(1e9) == histogram.N_BUCKETS - 1
    assert histogram.bucket_of(0) == 0
