"""db errors at the edge: what leaves db/ is tierserve's, never SQLAlchemy's.

Real failures: a bad URL, a PostgreSQL port nobody listens on, a SQLite file whose
write lock another process holds, a removed db folder, and a PostgreSQL database
that goes away and comes back.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import exc as sa

from base.errors import Internal, InvalidArgument, TierserveError, Unavailable
from base.procs import free_port
from db import engine as db_engine
from db import queries
from db.errors import to_tierserve
from testkit.postgres import outage


def _wrapped(cls: type[sa.DBAPIError], message: str) -> sa.DBAPIError:
    return cls("SELECT secret FROM t WHERE x = ?", {"x": 1}, Exception(message))


@pytest.mark.parametrize(("error", "expected"), [
    (_wrapped(sa.OperationalError, "database is locked"), Unavailable),
    (_wrapped(sa.InterfaceError, "connection already closed"), Unavailable),
    (sa.DisconnectionError("gone"), Unavailable),
    (sa.TimeoutError("QueuePool limit reached"), Unavailable),
    (_wrapped(sa.IntegrityError, "duplicate key value"), Unavailable),
    (_wrapped(sa.ProgrammingError, "no such column: x"), Internal),
    (_wrapped(sa.DatabaseError, "file is not a database"), Internal),
])
def test_mapping(error: sa.SQLAlchemyError, expected: type[TierserveError]) -> None:
    mapped = to_tierserve(error)
    assert type(mapped) is expected
    # The driver's reason, without the statement or its parameters.
    assert str(error.orig if isinstance(error, sa.DBAPIError) else error) in mapped.message
    assert "SELECT" not in mapped.message


def test_bad_url_is_invalid_argument_without_the_password() -> None:
    for url in ("nosuch://x", "postgresql+nodriver://u:s3cret@127.0.0.1/db", "garbage"):
        with pytest.raises(InvalidArgument) as info:
            queries.make_engine(url)
        assert "s3cret" not in info.value.message


def test_unreachable_postgresql_is_unavailable() -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(Unavailable, match="db unavailable"):
        queries.make_engine(url)
    engine = queries.make_engine(url, create=False)  # opening alone does not connect
    with pytest.raises(Unavailable):
        queries.routing_version(engine)
    with pytest.raises(Unavailable):
        queries.add_counts(engine, [queries.CountDelta(model="m", minute=1, count=1)])


def test_locked_sqlite_file_refuses_writes_as_unavailable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_engine, "SQLITE_BUSY_TIMEOUT_MS", 200)  # wait less than 10 s
    path = tmp_path / "t.db"
    engine = queries.make_engine(f"sqlite:///{path}")
    queries.set_placement(engine, "m", "hot", "http://127.0.0.1:1")
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Unavailable, match="locked"):
            queries.set_placement(engine, "n", "hot", "http://127.0.0.1:2")
        with pytest.raises(Unavailable, match="locked"):
            queries.add_counts(engine, [queries.CountDelta(model="m", minute=1, count=1)])
        # WAL: readers are not blocked by the writer.
        assert [p.model for p in queries.list_placements(engine)] == ["m"]
    finally:
        other.execute("ROLLBACK")
        other.close()
    queries.set_placement(engine, "n", "hot", "http://127.0.0.1:2")
    assert queries.routing_version(engine) == 2


def test_removed_db_folder_is_unavailable(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    engine = queries.make_engine(f"sqlite:///{folder / 't.db'}")
    queries.set_placement(engine, "m", "hot", "http://127.0.0.1:1")
    engine.dispose()  # new connections only: open ones still see the unlinked file
    for path in sorted(folder.iterdir()):
        path.unlink()
    folder.rmdir()
    with pytest.raises(Unavailable, match="unable to open"):
        queries.routing_version(engine)
    folder.touch()  # a file where the folder was: make_engine cannot create it
    with pytest.raises(Unavailable, match="cannot create"):
        queries.make_engine(f"sqlite:///{folder / 't.db'}")


def test_postgresql_outage_is_unavailable_and_recovers(postgres_db: str) -> None:
    engine = queries.make_engine(postgres_db)
    queries.set_placement(engine, "m", "hot", "http://127.0.0.1:1")
    with outage(postgres_db):
        for call in (lambda: queries.routing_version(engine),
                     lambda: queries.load_routing(engine),
                     lambda: queries.record_event(engine, "m", "promote"),
                     lambda: queries.set_pinned(engine, "m", True)):
            with pytest.raises(Unavailable, match="db unavailable"):
                call()
    # Back: the pool's pre-ping replaces the dead connections.
    assert queries.routing_version(engine) == 1
    queries.set_pinned(engine, "m", True)
    assert queries.list_placements(engine)[0].pinned is True
    engine.dispose()
