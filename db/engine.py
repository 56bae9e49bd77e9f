"""Open a tierserve db from any SQLAlchemy URL, creating (or checking) its schema.

SQLite gets WAL (readers never block the writer), a busy timeout (several
processes share the file: the router flushing counts, the orchestrator writing
placements) and foreign keys. Other URLs (PostgreSQL) are used as they come.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, ProgrammingError

from base.errors import FailedPrecondition, InvalidArgument, Unavailable
from db import migrate
from db.errors import db_errors
from db.schema import SCHEMA_VERSION, Base, RoutingVersion, SchemaVersion

SQLITE_BUSY_TIMEOUT_MS = 10_000


WRITE_OPTION = "tierserve_write"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" hook below issue BEGIN itself (pysqlite's own implicit
    # BEGIN is always DEFERRED and breaks SAVEPOINTs).
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # WAL + NORMAL stays consistent after a crash; only the last commits may be lost.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _safe_url(url: str) -> str:
    """`url` without its password, fit for an error message or a log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]


@db_errors
def make_engine(url: str, create: bool = True) -> Engine:
    """An Engine for `url` (e.g. `sqlite:///var/tierserve.db`, `postgresql+psycopg://...`).

    With `create`, missing tables are created and the schema version checked: a db
    written by an older tierserve is migrated (`db.migrate`), one written by a newer
    tierserve is refused rather than misread
    (FailedPrecondition). A bad URL is InvalidArgument; a db that cannot be
    reached, Unavailable.
    """
    try:
        parsed = make_url(url)
        parsed.get_dialect()  # an unknown backend or a missing driver fails here
    except ArgumentError as exc:  # NoSuchModuleError included
        raise InvalidArgument(f"bad db url {_safe_url(url)!r}: {exc}") from exc
    is_sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {"future": True}
    if is_sqlite:
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            folder = Path(database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:  # like SQLite's own "unable to open database file"
                raise Unavailable(f"db unavailable: cannot create {folder}: {exc}") from exc
        # The router calls the db from worker threads.
        kwargs["connect_args"] = {"check_same_thread": False,
                                  "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    if create:
        try:
            create_schema(engine)
        except BaseException:
            engine.dispose()  # no pooled connection left open behind a refused db
            raise
    return engine


def _sqlite_begin(conn: Connection) -> None:
    # A write transaction takes the write lock up front (IMMEDIATE): a DEFERRED one
    # that reads first and writes later fails at once with "database is locked" when
    # another process wrote in between, instead of waiting out the busy timeout.
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextlib.contextmanager
def write(engine: Engine) -> Iterator[Connection]:
    """A write transaction: like `engine.begin()`, but on SQLite it holds the write
    lock from the start, so read-then-write sequences never fail midway."""
    with engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            yield conn


def create_schema(engine: Engine, attempts: int = 5) -> None:
    """Create missing tables and the singleton rows, and migrate an older schema; safe to
    run from several processes."""
    for attempt in range(attempts):
        try:
            Base.metadata.create_all(engine)
            _ensure_singletons(engine)
            return
        except (IntegrityError, OperationalError, ProgrammingError):
            # Another process created a table or row between our check and our write.
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def _ensure_singletons(engine: Engine) -> None:
    with write(engine) as conn:
        # FOR UPDATE (PostgreSQL; SQLite's write lock is already held): a second process
        # waits here until the first has migrated, then sees the new version.
        found = conn.execute(select(SchemaVersion.version).where(SchemaVersion.id == 1)
                             .with_for_update()).scalar()
        if found is None:
            conn.execute(SchemaVersion.__table__.insert().values(id=1, version=SCHEMA_VERSION))
        elif found > SCHEMA_VERSION:
            raise FailedPrecondition(
                f"db schema version {found} is newer than this tierserve's {SCHEMA_VERSION}")
        elif found < SCHEMA_VERSION:
            migrate.upgrade(conn, found, SCHEMA_VERSION)
            conn.execute(SchemaVersion.__table__.update().where(SchemaVersion.id == 1)
                         .values(version=SCHEMA_VERSION))
        if conn.execute(select(RoutingVersion.id).where(RoutingVersion.id == 1)).first() is None:
            conn.execute(RoutingVersion.__table__.insert().values(id=1, version=0))
